"""Malformed and abusive downstream traffic: answered or closed, never felt by other clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.proxy.server.harness import fronting
from tests.proxy.server.http_wire import Client
from tests.proxy.server.upstreams import Upstream


@asynccontextmanager
async def proxy(**options: float) -> AsyncIterator[tuple[int, Upstream]]:
    up = Upstream("a")
    async with fronting(up, **options) as (port, _):
        yield port, up


async def _answer(port: int, raw: bytes) -> tuple[int | None, bool]:
    """(status or None, closed) for one hostile connection."""
    client = await Client.connect(port)
    await client.send(raw)
    try:
        resp = await client.response(within=5)
        status: int | None = resp.status
    except (asyncio.IncompleteReadError, ConnectionError):
        status = None
    closed = await client.at_eof()
    await client.close()
    return status, closed


async def _good_client_works(port: int) -> None:
    client = await Client.connect(port)
    assert (await client.get("/ok", "svc")).status == 200
    await client.close()


async def test_request_smuggling_is_refused_with_400_and_close() -> None:
    async with proxy() as (port, up):
        good = await Client.connect(port)
        raw = (
            b"POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 4\r\n"
            b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            b"GET /smuggled HTTP/1.1\r\nhost: svc\r\n\r\n"
        )
        assert await _answer(port, raw) == (400, True)
        assert (await good.get("/still", "svc")).status == 200
        await good.close()
        assert all(r.target != "/smuggled" for r in up.requests)


async def test_oversized_head_is_431() -> None:
    async with proxy() as (port, _):
        raw = b"GET / HTTP/1.1\r\nhost: svc\r\n" + b"x-big: " + b"a" * 70000 + b"\r\n\r\n"
        status, closed = await _answer(port, raw)
        assert status == 431 and closed
        await _good_client_works(port)


async def test_garbage_is_400_and_closed() -> None:
    async with proxy() as (port, _):
        assert await _answer(
            port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"
        ) == (
            400,
            True,
        )
        await _good_client_works(port)


async def test_slowloris_gets_408_while_others_are_served() -> None:
    async with proxy(head_timeout=0.5) as (port, _):
        slow = await Client.connect(port)
        await slow.send(b"GET / HTTP/1.1\r\nhost: s")
        await _good_client_works(port)
        resp = await slow.response(within=5)
        assert resp.status == 408
        assert await slow.at_eof()
        await slow.close()


async def test_idle_keep_alive_connection_is_not_timed_out_as_slowloris() -> None:
    async with proxy(head_timeout=0.3) as (port, _):
        client = await Client.connect(port)
        assert (await client.get("/1", "svc")).status == 200
        await asyncio.sleep(0.6)
        assert (await client.get("/2", "svc")).status == 200
        await client.close()


async def test_client_vanishing_mid_body_does_not_disturb_others() -> None:
    async with proxy() as (port, _):
        rude = await Client.connect(port)
        await rude.send(b"POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 100000\r\n\r\npartial")
        await asyncio.sleep(0.05)
        rude.writer.transport.abort()
        await _good_client_works(port)


async def test_idle_connection_is_closed_after_the_idle_timeout() -> None:
    async with proxy(idle_timeout=0.3) as (port, _):
        client = await Client.connect(port)
        assert (await client.get("/", "svc")).status == 200
        assert await client.at_eof(within=3)
        await client.close()


async def test_client_leaving_mid_request_resets_the_upstream_side() -> None:
    up = Upstream("slow", delay=2.0)
    async with fronting(up) as (port, dataplane):
        client = await Client.connect(port)
        await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        await up.wait_for_requests(1)
        stats = dataplane.backends["a"].stats
        assert (stats.rq_active, stats.cx_active) == (1, 1)
        client.writer.transport.abort()
        # well before the upstream would answer (polling counters: nothing to wait on)
        async with asyncio.timeout(1):
            while stats.rq_active or stats.cx_active:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await _good_client_works_on(port, up)


async def _good_client_works_on(port: int, up: Upstream) -> None:
    up.delay = 0.0
    await _good_client_works(port)


async def test_pipelined_good_request_before_a_bad_one_is_answered_first() -> None:
    async with proxy() as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"GET /good HTTP/1.1\r\nhost: svc\r\n\r\n"
            b"GET /bad HTTP/1.1\r\nhost: svc\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"
        )
        first = await client.response()
        assert first.status == 200 and b'"/good"' in first.body
        second = await client.response()
        assert second.status == 400 and second.headers["connection"] == "close"
        assert await client.at_eof()
        await client.close()
