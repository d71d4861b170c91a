"""The sidecar's small HTTP servers: admin (127.0.0.1), stats (Prometheus) and health.

Not the hot path, so aiohttp. Everything they show comes from an `AdminSource` (the
supervisor), so the same servers front one in-process Dataplane or N workers. `AdminServers`
owns its three listeners: `start()` binds them (OSError escapes, nothing left bound), `stop()`
closes them; handlers never raise into aiohttp except as HTTP errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from gossamer.proxy import admin_render
from gossamer.proxy.admin_stats import Report, Snapshot
from gossamer.proxy.app_health import add_app_health_routes
from gossamer.runtime.probes import Probe
from gossamer.telemetry.prometheus import CONTENT_TYPE, render


class AdminSource(Protocol):
    """What the admin endpoints read; implemented by the supervisor."""

    def ready(self) -> bool:
        """Config complete and applied everywhere, and not draining."""

    def server_info(self) -> dict[str, Any]: ...

    def config_dump(self) -> dict[str, Any]: ...

    async def stats(self) -> Snapshot:
        """Backend stats, merged across workers."""

    async def report(self) -> Report:
        """Backends, listener TLS and RBAC counters, Istio's metrics: merged across workers
        (admin_stats.report_of, merge_reports)."""

    def quit(self) -> None:
        """Begin a graceful drain and exit (POST /quitquitquit); returns at once."""

    def certs(self) -> dict[str, Any]:
        """The workload certificate in Envoy's `/certs` shape."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, indent=2) + "\n", status=status, content_type="application/json"
    )


class AdminServers:
    """Admin, stats and health servers on the given addresses (port 0 = any free port; the
    bound ports are in `ports` after `start()`)."""

    def __init__(
        self,
        source: AdminSource,
        *,
        admin: ListenAddress,
        stats: ListenAddress,
        health: ListenAddress,
        app_probers: Mapping[str, Probe] | None = None,
    ) -> None:
        self._source = source
        self._app_probers = dict(app_probers or {})  # Istio's rewritten app probes, on stats
        self._where = {"admin": admin, "stats": stats, "health": health}
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        apps = {"admin": self._admin_app(), "stats": self._stats_app(), "health": self._health()}
        try:
            for role, app in apps.items():
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                self._runners.append(runner)
                where = self._where[role]
                site = web.TCPSite(runner, where.host, where.port, reuse_address=True)
                await site.start()
                self.ports[role] = int(runner.addresses[0][1])
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    # --- apps -----------------------------------------------------------------------------

    def _admin_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/config_dump", self._config_dump)
        app.router.add_get("/clusters", self._clusters)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/stats/prometheus", self._prometheus)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/server_info", self._server_info)
        app.router.add_get("/certs", self._certs)
        app.router.add_post("/quitquitquit", self._quit)
        return app

    def _stats_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stats/prometheus", self._prometheus)
        app.router.add_get("/healthz/ready", self._healthz)
        add_app_health_routes(app, self._app_probers)
        return app

    def _health(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz/ready", self._healthz)
        return app

    # --- handlers -------------------------------------------------------------------------

    async def _config_dump(self, request: web.Request) -> web.Response:
        return _json(self._source.config_dump())

    async def _clusters(self, request: web.Request) -> web.Response:
        snapshot = await self._source.stats()
        if request.query.get("format") == "json":
            return _json(admin_render.clusters_json(snapshot))
        return web.Response(text=admin_render.clusters_text(snapshot))

    async def _stats(self, request: web.Request) -> web.Response:
        form = request.query.get("format")
        if form == "prometheus":
            return await self._prometheus(request)
        report = await self._source.report()
        try:
            values = admin_render.stats_values(
                report["clusters"], request.query.get("filter"), report["counters"]
            )
        except ValueError as exc:
            return web.Response(text=f"{exc}\n", status=400)
        if form == "json":
            return _json(admin_render.stats_json(values))
        return web.Response(text=admin_render.stats_text(values))

    async def _prometheus(self, request: web.Request) -> web.Response:
        report = await self._source.report()
        families = admin_render.prometheus_families(report["clusters"])
        families += admin_render.counter_families(report["counters"])
        families += admin_render.certificate_families(self._source.certs())
        families += admin_render.istio_families(report["istio"])
        response = web.Response(text=render(families))
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def _ready(self, request: web.Request) -> web.Response:
        # Envoy's /ready: the server state as text, 200 only when LIVE.
        if self._source.ready():
            return web.Response(text="LIVE\n")
        state = self._source.server_info().get("state", "PRE_INITIALIZING")
        return web.Response(text=f"{state}\n", status=503)

    async def _certs(self, request: web.Request) -> web.Response:
        return _json(self._source.certs())

    async def _server_info(self, request: web.Request) -> web.Response:
        return _json(self._source.server_info())

    async def _quit(self, request: web.Request) -> web.Response:
        self._source.quit()
        return web.Response(text="OK\n")

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._source.ready():
            return web.Response(text="ready\n")
        return web.Response(text="not ready\n", status=503)
