"""server/accept.inspect: Envoy's tls_inspector decision on real sockets (nothing consumed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from pathlib import Path

from gossamer.codec.detect import Kind
from gossamer.proxy.server.accept import inspect
from gossamer.waits import bounded
from tests.proxy.server.mtls_world import PRODUCTPAGE, Identities, mesh_client_context


def client_hello(tmp_path: Path) -> bytes:
    """The first flight of a meshed client (a real ClientHello with SNI and Istio's ALPN)."""
    context = mesh_client_context(Identities.create(tmp_path).of(PRODUCTPAGE))
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="reviews.default")
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the server's answer
        tls.do_handshake()
    return outgoing.read()


async def test_a_client_hello_split_over_segments_is_waited_for(tmp_path: Path) -> None:
    hello = client_hello(tmp_path)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        theirs.sendall(hello[:1])
        pending = asyncio.ensure_future(inspect(ours))
        await asyncio.sleep(0.05)
        assert not pending.done()
        theirs.sendall(hello[1:])
        verdict = await bounded(pending, 5)
        assert (verdict.kind, verdict.sni) == (Kind.TLS, "reviews.default")
        assert verdict.alpn == ("istio-http/1.1", "istio", "http/1.1")
        assert ours.recv(len(hello) + 1) == hello  # nothing was consumed


async def test_plaintext_silence_and_early_close_are_not_tls() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        theirs.sendall(b"G")  # decided on the first byte, no wait for a request line
        assert (await bounded(inspect(ours), 1)).kind is Kind.OPAQUE
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        assert (await inspect(ours, give_up_after=0.1)).kind is Kind.OPAQUE  # silence
        theirs.close()
        assert (await bounded(inspect(ours), 1)).kind is Kind.OPAQUE  # closed
