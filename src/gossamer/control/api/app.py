"""The REST API (aiohttp): config, proxies and registry, behind a bearer token.

Every error is JSON: `{"error": {"code", "message", "findings"?}}`. Only `/healthz` and
`/openapi.json` answer without the token.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gossamer.control.store.base import Conflict, StoreError
from gossamer.spec.findings import ConfigError

if TYPE_CHECKING:
    from gossamer.control.plane import ControlPlane

log = logging.getLogger("gossamer.api")

PLANE: web.AppKey[ControlPlane] = web.AppKey("plane")
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/metrics"})  # metrics: as istiod
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def json_ok(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_dumps)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, str(exc), **exc.extra)
    except ConfigError as exc:
        return error_response(
            422,
            "invalid",
            "the configuration was refused; nothing was changed",
            findings=[f.as_json() for f in exc.findings],
        )
    except Conflict as exc:
        return error_response(409, "conflict", str(exc))
    except StoreError as exc:
        return error_response(503, "store", str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(
                exc.status, exc.reason.lower().replace(" ", "-"), exc.text or exc.reason
            )
        raise
    except Exception:
        log.exception("API handler failed: %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error (see the control plane's log)")


def auth(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response(
                401, "unauthorized", "missing or wrong bearer token (see $GOSSAMER_HOME/token)"
            )
        return await handler(request)

    return check


def make_app(plane: ControlPlane) -> web.Application:
    from gossamer.control.api import ca, openapi, pods, proxies, registry, resources

    app = web.Application(middlewares=[errors, auth(plane.token)], client_max_size=8 * 1024**2)
    app[PLANE] = plane
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi.document)
    resources.add_routes(app)
    proxies.add_routes(app)
    registry.add_routes(app)
    pods.add_routes(app)
    ca.add_routes(app)
    return app


async def healthz(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    return json_ok(
        {"status": "ok", "revision": plane.store_revision, "proxies": len(plane.xds.connections())}
    )


async def start_api(plane: ControlPlane, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the API; returns the runner (call `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(make_app(plane), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = port
    for address in runner.addresses:  # the bound socket tells the real port when 0 was asked
        bound = int(address[1])
    return runner, bound
