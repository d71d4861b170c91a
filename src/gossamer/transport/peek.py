"""Peeking at an accepted socket's first bytes before any transport owns it.

PERMISSIVE inbound and Envoy's tls_inspector choose a filter chain by what the client speaks
(a ClientHello with its SNI and ALPN, HTTP/1, h2c, or opaque bytes), so the bytes must stay
unread: MSG_PEEK on the raw, non-blocking socket, woken by the loop's reader callback. Both
asyncio 3.11 and uvloop start reading right after `connection_made`, so the socket is accepted
with `loop.sock_accept` and handed on with `loop.connect_accepted_socket` afterwards.
"""

from __future__ import annotations

import asyncio
import socket

from gossamer.codec.detect import MAX_INSPECT_BYTES, OPAQUE, Detection, Kind, detect


async def sniff(
    sock: socket.socket, *, give_up_after: float = 5.0, retry_interval: float = 0.002
) -> Detection:
    """Peek at an accepted, non-blocking socket's first bytes (MSG_PEEK: nothing is consumed)
    until `codec.detect` decides. Silence past `give_up_after` s, and a close or reset before
    any byte, are OPAQUE. No transport may own the socket yet (it would read the bytes).

    While bytes wait unread the socket stays readable, so a split ClientHello is re-peeked
    every `retry_interval` seconds rather than spun on."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(give_up_after):
            while True:
                await readable(loop, sock)
                try:
                    data = sock.recv(MAX_INSPECT_BYTES, socket.MSG_PEEK)
                except BlockingIOError:
                    continue
                if not data:
                    return OPAQUE
                verdict = detect(data)
                if verdict.kind is not Kind.NEED_MORE:
                    return verdict
                await asyncio.sleep(retry_interval)
    except (TimeoutError, ConnectionError):
        return OPAQUE


async def readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Until `sock` has bytes to read (or is closed), without reading them."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
