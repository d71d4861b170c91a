"""The route timeout spans what Envoy's spans: from the downstream end of request to the end of
the upstream response. Real sockets: a proxy, in-process upstreams, raw clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gossamer.proxy.dataplane import Dataplane
from tests.proxy.server.harness import fronting
from tests.proxy.server.http_wire import Client, Message, read_head
from tests.proxy.server.protos import route, seconds
from tests.proxy.server.test_retries import retry_policy
from tests.proxy.server.upstreams import Handler, Upstream, echo

TIMEOUT = 0.3


@asynccontextmanager
async def proxied(handler: Handler = echo, **action: Any) -> AsyncIterator[tuple[int, Dataplane]]:
    """A proxy on a free port whose one route goes to an upstream serving `handler`, with the
    route timeout TIMEOUT unless `action` says otherwise."""
    action.setdefault("timeout", seconds(TIMEOUT))
    async with fronting(Upstream("a", handler=handler), route("a", **action)) as front:
        yield front


def stalling_body(sent: bytes, total: int, stall: float, chunked: bool = False) -> Handler:
    """A handler that sends the head and `sent` at once, then stalls before the rest."""

    async def handler(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        if chunked:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(b"%x\r\n%s\r\n" % (len(sent), sent))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (total, sent))
        await writer.drain()
        await asyncio.sleep(stall)
        rest = b"x" * (total - len(sent))
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest) if chunked else rest)

    return handler


async def read_until_closed(client: Client, within: float = 5.0) -> bytes:
    out = bytearray()
    async with asyncio.timeout(within):
        while data := await client.reader.read(65536):
            out += data
    return bytes(out)


async def test_a_slow_upload_does_not_use_up_the_route_timeout() -> None:
    async with proxied() as (port, _):
        client = await Client.connect(port)
        await client.send(b"POST /up HTTP/1.1\r\nhost: svc\r\ncontent-length: 6\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef"):  # 0.75 s of upload, 2.5x the route timeout
            await asyncio.sleep(0.25)
            await client.send(piece)
        resp = await client.response()
        assert resp.status == 200
        assert b'"body": "abcdef"' in resp.body
        await client.close()


async def test_the_route_timeout_starts_at_the_end_of_a_slow_upload() -> None:
    async def late(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)
        await echo(up, req, writer)

    async with proxied(late) as (port, dp):
        client = await Client.connect(port)
        await client.send(b"POST /up HTTP/1.1\r\nhost: svc\r\ncontent-length: 4\r\n\r\nab")
        await asyncio.sleep(0.5)
        await client.send(b"cd")
        ended = time.monotonic()
        resp = await client.response()
        waited = time.monotonic() - ended
        assert (resp.status, resp.body) == (504, b"upstream request timeout")
        assert TIMEOUT - 0.05 <= waited < TIMEOUT + 0.4
        assert dp.backends["a"].stats.upstream_rq_timeout == 1
        await client.close()


async def test_a_body_that_stalls_past_the_route_timeout_is_cut() -> None:
    async with proxied(stalling_body(b"hello", 10, stall=3.0)) as (port, dp):
        client = await Client.connect(port)
        started = time.monotonic()
        await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        head = await read_head(client.reader)
        assert head.status == 200 and head.headers["content-length"] == "10"
        body = await read_until_closed(client)
        assert body == b"hello"  # 5 of 10 bytes, then the connection closed
        # ... after Envoy's delayed close: 1 s after the timeout, long before the stall ends
        assert TIMEOUT + 0.95 <= time.monotonic() - started < TIMEOUT + 1.5
        stats = dp.backends["a"].stats
        assert stats.upstream_rq_timeout == 1
        assert stats.counter("upstream_rq_200") == 1  # charged at the head, as Envoy
        await client.close()


async def test_a_chunked_body_cut_by_the_route_timeout_lacks_its_last_chunk() -> None:
    async with proxied(stalling_body(b"part", 10, stall=3.0, chunked=True)) as (port, dp):
        client = await Client.connect(port)
        await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        head = await read_head(client.reader)
        assert head.headers["transfer-encoding"] == "chunked"
        body = await read_until_closed(client)
        assert body == b"4\r\npart\r\n"  # no terminating 0-size chunk: visibly incomplete
        assert dp.backends["a"].stats.upstream_rq_timeout == 1
        await client.close()


async def test_a_body_that_completes_in_time_is_whole_and_the_connection_kept() -> None:
    async with proxied(stalling_body(b"hello", 10, stall=0.1)) as (port, dp):
        client = await Client.connect(port)
        for _ in range(2):
            resp = await client.get("/", "svc")
            assert (resp.status, resp.body) == (200, b"helloxxxxx")
        assert dp.backends["a"].stats.upstream_rq_timeout == 0
        await client.close()


async def test_a_reader_too_slow_for_the_route_timeout_is_cut() -> None:
    size = 64 * 1024 * 1024  # more than loopback socket buffers hold
    upstream_cut = asyncio.Event()

    async def large(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        chunk = b"x" * 65536
        try:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            upstream_cut.set()
            raise

    async with proxied(large) as (port, dp):
        client = await Client.connect(port)
        await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        # Not reading: the proxy's writes back up, yet the timeout still ends the exchange.
        async with asyncio.timeout(TIMEOUT + 1.0):
            await upstream_cut.wait()
        assert dp.backends["a"].stats.upstream_rq_timeout == 1
        head = await read_head(client.reader)
        assert head.status == 200
        body = await read_until_closed(client)
        assert len(body) < size
        await client.close()


async def test_no_route_timeout_lets_a_slow_body_finish() -> None:
    async with proxied(stalling_body(b"hello", 10, stall=0.6), timeout=seconds(0)) as (port, _):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (200, b"helloxxxxx")
        await client.close()


async def test_a_per_try_timeout_ends_at_the_head_and_does_not_cut_the_body() -> None:
    policy = retry_policy("5xx,reset", 2, per_try=0.2)
    handler = stalling_body(b"hello", 10, stall=0.5)
    async with proxied(handler, timeout=seconds(2.0), retry_policy=policy) as (port, dp):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (200, b"helloxxxxx")
        stats = dp.backends["a"].stats
        assert (stats.upstream_rq_timeout, stats.upstream_rq_retry) == (0, 0)
        await client.close()


async def test_a_per_try_timeout_before_the_head_is_retried_within_the_route_timeout() -> None:
    calls = 0

    async def slow_first(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)
        await echo(up, req, writer)

    policy = retry_policy("5xx,reset", 2, per_try=0.2)
    async with proxied(slow_first, timeout=seconds(2.0), retry_policy=policy) as (port, dp):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert resp.status == 200
        assert dp.backends["a"].stats.upstream_rq_retry == 1
        await client.close()
