"""Istio's probe rewrite on the sidecar's status port: the prober asks 15020, the sidecar runs
the app's real probe (a real app server, a real admin server on free ports)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gossamer.proxy.admin import AdminServers, ListenAddress
from gossamer.proxy.app_health import parse_app_probers
from tests.ports import free_port


class _Source:
    """Just enough of an AdminSource for the stats port."""

    def ready(self) -> bool:
        return True


@pytest.fixture
async def app_port() -> AsyncIterator[int]:
    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def status_of(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def test_the_status_port_answers_the_apps_real_probes(app_port: int) -> None:
    closed = free_port()
    probers = parse_app_probers(
        json.dumps(
            {
                "/app-health/reviews/readyz": {"httpGet": {"path": "/health", "port": app_port}},
                "/app-health/db/readyz": {"tcpSocket": {"port": closed}},
                "/app-health/missing/readyz": {"httpGet": {"path": "/nope", "port": app_port}},
            }
        ),
        "127.0.0.1",
    )
    stats = free_port()
    servers = AdminServers(
        _Source(),  # type: ignore[arg-type]
        admin=ListenAddress("127.0.0.1", 0),
        stats=ListenAddress("127.0.0.1", stats),
        health=ListenAddress("127.0.0.1", 0),
        app_probers=probers,
    )
    await servers.start()
    try:
        base = f"http://127.0.0.1:{stats}"
        assert await status_of(base + "/app-health/reviews/readyz") == 200
        assert await status_of(base + "/app-health/db/readyz") == 503  # nothing listens
        assert await status_of(base + "/app-health/missing/readyz") == 503  # the app's 404
        assert await status_of(base + "/app-health/other/readyz") == 404
    finally:
        await servers.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "a JSON object"),
        ('{"/health": {"tcpSocket": {"port": 1}}}', "must start with /app-health/"),
        ('{"/app-health/a/readyz": {}}', "exactly one of httpGet or tcpSocket"),
        ('{"/app-health/a/readyz": {"tcpSocket": {"port": 0}}}', "port must be"),
        ('{"/app-health/a/readyz": {"httpGet": {"port": 1, "scheme": "HTTPS"}}}', "scheme HTTP"),
    ],
)
def test_bad_probers_are_refused_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_app_probers(text, "127.0.0.1")


def test_no_probers_is_fine() -> None:
    assert parse_app_probers("", "127.0.0.1") == {}
