"""Bodies both ways: chunked streaming, trailers, 100-continue, HEAD, pipelining, WebSocket."""

from __future__ import annotations

import asyncio
import base64
import hashlib

from gossamer.waits import bounded
from tests.proxy.server.harness import fronting, fronting_server
from tests.proxy.server.http_wire import Client, Message, read_body, read_head
from tests.proxy.server.upstreams import Upstream, echo, response_bytes


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with fronting(Upstream("a")) as (port, _):
        client = await Client.connect(port)
        await client.send(b"".join(b"GET /%d HTTP/1.1\r\nhost: svc\r\n\r\n" % i for i in range(10)))
        for i in range(10):
            resp = await client.response()
            assert resp.status == 200
            assert f'"path": "/{i}"'.encode() in resp.body
        await client.close()


async def test_chunked_request_streams_before_the_client_finishes() -> None:
    seen_first = asyncio.Event()
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            received.append(await reader.readexactly(size))
            await reader.readexactly(2)
            seen_first.set()
        writer.write(response_bytes(200, b"|".join(received)))
        await writer.drain()
        writer.close()

    async with fronting_server(serve) as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
        async with asyncio.timeout(5):
            await seen_first.wait()  # the upstream has it; the client has not finished
        await client.send(b"6\r\nsecond\r\n0\r\n\r\n")
        resp = await client.response()
        assert (resp.status, resp.body) == (200, b"first|second")
        await client.close()


async def test_chunked_response_streams_with_trailers() -> None:
    release = asyncio.Event()

    async def chunks(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"5\r\nworld\r\n0\r\nx-checksum: abc\r\n\r\n")

    async with fronting(Upstream("a", handler=chunks)) as (port, _):
        try:
            client = await Client.connect(port)
            await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\nte: trailers\r\n\r\n")
            head = await read_head(client.reader)
            assert head.headers["transfer-encoding"] == "chunked"
            first = await client.reader.readuntil(b"hello\r\n")  # before the upstream finished
            assert first.endswith(b"hello\r\n")
            release.set()
            rest = Message(head.start, {"transfer-encoding": "chunked"}, [])
            await read_body(client.reader, rest, until_eof=False)
            assert rest.body == b"world"
            assert rest.trailers == {"x-checksum": "abc"}
            assert (await client.get("/again", "svc")).status == 200
            await client.close()
        finally:
            release.set()


async def test_request_trailers_reach_the_upstream() -> None:
    up = Upstream("a")
    async with fronting(up) as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n"
        )
        assert (await client.response()).status == 200
        assert up.requests[0].body == b"abc"
        assert up.requests[0].trailers == {"x-sum": "42"}
        await client.close()


async def test_expect_100_continue_is_relayed() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert head.headers.get("expect") == "100-continue"
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        body = await reader.readexactly(int(head.headers["content-length"]))
        writer.write(response_bytes(200, b"got " + body))
        await writer.drain()
        writer.close()

    async with fronting_server(serve) as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"PUT / HTTP/1.1\r\nhost: svc\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
        )
        interim = await client.response()
        assert interim.status == 100
        await client.send(b"data")
        resp = await client.response()
        assert (resp.status, resp.body) == (200, b"got data")
        await client.close()


async def test_head_response_has_no_body_and_keeps_framing() -> None:
    async def head_aware(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        if req.method == "HEAD":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
        else:
            await echo(up, req, writer)

    up = Upstream("a", handler=head_aware)
    async with fronting(up) as (port, _):
        client = await Client.connect(port)
        await client.send(b"HEAD / HTTP/1.1\r\nhost: svc\r\n\r\n")
        resp = await client.response(head=True)
        assert resp.status == 200 and resp.headers["content-length"] == "1234"
        assert (await client.get("/next", "svc")).status == 200
        await client.close()
        assert up.connections == 1


async def test_websocket_upgrade_then_bytes_both_ways() -> None:
    async def ws_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        key = head.headers["sec-websocket-key"]
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
            b"sec-websocket-accept: " + accept + b"\r\n\r\n"
        )
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    async with fronting_server(ws_echo) as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
            b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        resp = await client.response(head=True)
        assert resp.status == 101
        assert resp.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        for word in (b"ping", b"pong" * 1000):
            await client.send(word)
            got = await bounded(client.reader.readexactly(len(word)), 5)
            assert got == word.upper()
        await client.close()


async def test_upgrade_refused_by_the_upstream_is_relayed_then_closed() -> None:
    async def no_ws(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        writer.write(response_bytes(426, b"no websocket here"))

    async with fronting(Upstream("a", handler=no_ws)) as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        )
        resp = await client.response()
        assert (resp.status, resp.body) == (426, b"no websocket here")
        assert resp.headers["connection"] == "close"
        assert await client.at_eof()
        await client.close()
