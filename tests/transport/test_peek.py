"""Peeking at an accepted socket's first bytes, on asyncio and uvloop: nothing is consumed, a
split ClientHello is waited for, silence and an early close are opaque."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from gossamer.codec.detect import Detection, Kind
from gossamer.transport.peek import sniff
from gossamer.transport.tls import CLIENT_ALPN_HTTP1
from gossamer.waits import bounded
from tests.transport.loops import Run

SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"


def test_sniff_waits_for_a_split_client_hello_and_gives_up_on_silence(run: Run) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(list(CLIENT_ALPN_HTTP1))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with pytest.raises(ssl.SSLWantReadError):
        ctx.wrap_bio(incoming, outgoing, server_hostname=SNI).do_handshake()
    hello = outgoing.read()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            address = listener.getsockname()
            with socket.create_connection(address) as split:
                accepted, _ = await loop.sock_accept(listener)
                with accepted:
                    split.sendall(hello[:60])
                    pending = asyncio.ensure_future(sniff(accepted))
                    await asyncio.sleep(0.05)
                    assert not pending.done()  # 60 bytes of a ClientHello decide nothing
                    split.sendall(hello[60:])
                    verdict = await bounded(pending, 5)
                    assert verdict == Detection(Kind.TLS, SNI, CLIENT_ALPN_HTTP1)
                    # Nothing was consumed: the whole hello is still there to read.
                    assert accepted.recv(len(hello) + 10, socket.MSG_PEEK) == hello
            with socket.create_connection(address) as silent:
                accepted, _ = await loop.sock_accept(listener)
                with accepted:
                    verdict = await sniff(accepted, give_up_after=0.1)
                    assert verdict.kind is Kind.OPAQUE
                silent.close()
            with socket.create_connection(address) as closing:
                accepted, _ = await loop.sock_accept(listener)
                closing.close()
                with accepted:
                    assert (await sniff(accepted)).kind is Kind.OPAQUE

    run(scenario())
