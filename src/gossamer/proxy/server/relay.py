"""Relaying an upstream response downstream: head, streamed body, trailers; or an upgrade.

Framing is chosen per hop (RFC 9112 §6): a content-length stays; chunked or close-delimited
bodies go chunked to HTTP/1.1 clients (trailers pass through) and close-delimited to 1.0 ones.
HEAD, 204 and 304 carry no body. Back-pressure: while the downstream socket buffer is full we
stop taking events, the channel fills and the upstream socket stops being read. The route
timeout covers the body too: when it fails the call mid-body the caller closes the downstream
connection (Envoy resets the stream), so the client sees an incomplete body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gossamer.codec.http1 import Body, EndOfMessage, Upgraded
from gossamer.proxy.server import wire
from gossamer.proxy.server.attempt import UpstreamReset, UpstreamTimeout
from gossamer.telemetry import istio_metrics

if TYPE_CHECKING:
    from gossamer.codec.http1 import ResponseHead
    from gossamer.proxy.server.attempt import UpstreamCall
    from gossamer.proxy.server.downstream import HttpConnection, Request


def _service_time(elapsed: float) -> bytes:
    return b"%d" % int(elapsed * 1000)


async def relay_response(
    conn: HttpConnection,
    request: Request,
    call: UpstreamCall,
    resp: ResponseHead,
    route: Any,
    cluster: str,
    elapsed: float,
) -> tuple[bool, bool]:
    """Write the response; (downstream keep-alive, upstream connection reusable)."""
    head = request.head
    headers = wire.end_to_end(resp.headers, wire.RESPONSE_DROP)
    route.finish_response(headers, head, cluster)
    headers.add(b"x-envoy-upstream-service-time", _service_time(elapsed))
    headers.add(b"server", wire.SERVER)
    keep_alive = head.keep_alive and resp.status != 101
    no_body = head.method == b"HEAD" or resp.status in (204, 304)
    chunked = False
    if resp.content_length is not None:
        if resp.status != 204:
            headers.add(b"content-length", b"%d" % resp.content_length)
    elif not no_body:
        if head.version == b"1.1":
            chunked = True
            headers.add(b"transfer-encoding", b"chunked")
        else:
            keep_alive = False  # close-delimited for an HTTP/1.0 client
    if not keep_alive:
        headers.add(b"connection", b"close")
    elif head.version != b"1.1":
        headers.add(b"connection", b"keep-alive")
    request.answered = True
    # What already arrived leaves with the head in one write (one syscall per small response).
    exchange = istio_metrics.answer_lines(conn, request)
    out = [wire.response_head(resp.status, headers, resp.reason, exchange)]
    events = call.events
    ended = False
    try:
        while True:
            if events.ready():
                event = events.get_nowait()
            else:
                if out:
                    conn.write(b"".join(out))
                    out.clear()
                    if conn.write_paused:
                        await conn.drain()
                        if call.timed_out:  # woken by the route timeout, not by the reader
                            raise UpstreamTimeout
                event = await events.get()
            if isinstance(event, Body):
                if event.data:
                    out.append(wire.chunk(event.data) if chunked else event.data)
            elif isinstance(event, EndOfMessage):
                if chunked:
                    out.append(wire.last_chunk(event.trailers))
                ended = True
                break
    except (UpstreamReset, UpstreamTimeout):
        # Headers are gone already: all we can do is cut the downstream connection too (the
        # caller tells a route timeout by `call.timed_out`).
        return False, False
    if out:
        conn.write(b"".join(out))
    if conn.closed or not ended:
        return False, False
    reusable = resp.keep_alive and not call.conn.closed
    return keep_alive and request.ended, reusable


async def splice_upgrade(
    conn: HttpConnection,
    call: UpstreamCall,
    resp: ResponseHead,
    route: Any,
    cluster: str,
    elapsed: float,
) -> None:
    """After a 101: relay the head, then copy bytes both ways until both sides are done."""
    upstream = call.conn
    headers = wire.end_to_end(resp.headers, wire.RESPONSE_DROP)
    route.mutate_response(headers, cluster)
    headers.set(b"connection", b"upgrade")
    headers.set(b"upgrade", resp.headers.get(b"upgrade") or b"")
    headers.set(b"x-envoy-upstream-service-time", _service_time(elapsed))
    headers.set(b"server", wire.SERVER)
    conn.write(wire.response_head(101, headers, resp.reason))
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    open_sides = [True, True]  # downstream → upstream, upstream → downstream

    def finish(side: int) -> None:
        open_sides[side] = False
        if not any(open_sides) and not done.done():
            done.set_result(None)

    def to_upstream(data: bytes | None) -> None:
        if data is None:
            if open_sides[0]:
                if upstream.transport is not None and upstream.transport.can_write_eof():
                    upstream.transport.write_eof()
                finish(0)
                if conn.closed:
                    upstream.close()
                    finish(1)
        else:
            upstream.write(data)
            _hold_back(upstream.writable(), conn.pause_reading, conn.resume_reading)

    def to_downstream(data: bytes | None) -> None:
        if data is None:
            if open_sides[1]:
                transport = conn.transport
                if transport is not None and transport.can_write_eof() and not conn.closed:
                    transport.write_eof()
                finish(1)
                if upstream.closed:
                    conn.close()
                    finish(0)
        else:
            conn.write(data)
            _hold_back(conn.writable(), upstream.pause_reading, upstream.resume_reading)

    # Events parsed before the switch: the rest of the 101's packet.
    while call.events.ready():
        event = call.events.get_nowait()
        if isinstance(event, Upgraded) and event.rest:
            conn.write(event.rest)
    upstream.sink = None
    upstream.raw = to_downstream
    early = conn.take_upgrade_bytes()
    if early:
        upstream.write(early)
    conn.splice_to = to_upstream
    if upstream.closed:
        to_downstream(None)
    if conn.closed:
        to_upstream(None)
    try:
        await done
    finally:
        upstream.close()
        conn.close()


def _hold_back(
    writable: asyncio.Future[None] | None, pause: Callable[[], None], resume: Callable[[], None]
) -> None:
    """Splice back-pressure: while one side cannot take more, stop reading the other."""
    if writable is not None:
        pause()
        writable.add_done_callback(lambda _: resume())
