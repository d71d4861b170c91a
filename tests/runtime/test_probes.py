"""Readiness probes as a kubelet runs them, against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gossamer.runtime.probes import AlwaysReady, HttpProbe, TcpProbe, wait_until
from tests.ports import free_port


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    """/status/<code> answers with that code."""

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="x")

    app = web.Application()
    app.router.add_get("/status/{code}", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_http_probe_reaches_an_ipv6_address() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz/ready", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "::1", 0).start()
    try:
        port = runner.addresses[0][1]
        assert await HttpProbe("::1", port, "/healthz/ready").check()
    finally:
        await runner.cleanup()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """Accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("code", [200, 204, 301, 302, 399])
async def test_http_2xx_and_3xx_are_ready(http_port: int, code: int) -> None:
    assert await HttpProbe("127.0.0.1", http_port, f"/status/{code}").check()


@pytest.mark.parametrize("code", [400, 404, 500, 503])
async def test_http_4xx_and_5xx_are_not_ready(http_port: int, code: int) -> None:
    assert not await HttpProbe("127.0.0.1", http_port, f"/status/{code}").check()


async def test_http_refused_is_not_ready() -> None:
    assert not await HttpProbe("127.0.0.1", free_port(), "/").check()


async def test_http_probe_gives_up_after_its_timeout(silent_port: int) -> None:
    started = time.monotonic()
    assert not await HttpProbe("127.0.0.1", silent_port, "/", timeout=0.3).check()
    assert 0.25 < time.monotonic() - started < 1.5


async def test_tcp_probe_is_ready_when_a_connect_succeeds(silent_port: int) -> None:
    assert await TcpProbe("127.0.0.1", silent_port).check()
    assert not await TcpProbe("127.0.0.1", free_port()).check()


async def test_always_ready_is_ready() -> None:
    assert await AlwaysReady().check()


async def test_wait_until_returns_once_the_server_comes_up() -> None:
    port = free_port()

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def listen_later() -> asyncio.Server:
        await asyncio.sleep(0.3)
        return await asyncio.start_server(accept, "127.0.0.1", port)

    later = asyncio.create_task(listen_later())
    started = time.monotonic()
    assert await wait_until(TcpProbe("127.0.0.1", port), deadline_s=5.0, interval=0.05)
    assert 0.25 < time.monotonic() - started < 2.0
    server = await later
    server.close()
    await server.wait_closed()


async def test_wait_until_gives_up_at_its_deadline() -> None:
    started = time.monotonic()
    assert not await wait_until(TcpProbe("127.0.0.1", free_port()), 0.3, interval=0.05)
    assert 0.25 < time.monotonic() - started < 1.5
