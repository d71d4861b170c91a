"""What every Bookinfo service shares: the aiohttp app skeleton, request logging, the
upstream client and the headers Istio's sample forwards between services."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What Istio's sample forwards so traces join up and header routing (`end-user`) works.
FORWARDED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    "end-user",
    "user-agent",
    "cookie",
)

CLIENT = web.AppKey("client", aiohttp.ClientSession)
SERVICE = web.AppKey("service", str)
VERSION = web.AppKey("version", str)

# productpage's timeout per upstream call, as the sample (which adds one retry; we do not:
# the mesh may add its own). reviews passes its own, per version.
UPSTREAM_TIMEOUT_S = 3.0


def forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    """The subset of `headers` a service passes on to the services it calls."""
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}


@dataclass(frozen=True)
class Upstream:
    """Where a dependency lives: `http://<name>:9080` unless `<NAME>_HOSTNAME` /
    `<NAME>_SERVICE_PORT` say otherwise (the sample's own overrides)."""

    host: str
    port: int

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Upstream:
        env = os.environ if env is None else env
        prefix = service.upper()
        return cls(
            host=env.get(f"{prefix}_HOSTNAME", service),
            port=int(env.get(f"{prefix}_SERVICE_PORT", "9080")),
        )

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


@dataclass(frozen=True)
class Reply:
    """An upstream's answer; `status` 0 means no answer at all (refused, timed out)."""

    status: int
    body: object

    @property
    def ok(self) -> bool:
        return self.status == 200


def client_session() -> aiohttp.ClientSession:
    """One session per service: `trust_env` makes `http_proxy` (the explicit-mode sidecar)
    apply; without a proxy requests go origin-form with the service name in Host."""
    return aiohttp.ClientSession(trust_env=True)


async def get_json(
    session: aiohttp.ClientSession,
    upstream: Upstream,
    path: str,
    headers: Mapping[str, str],
    timeout_s: float = UPSTREAM_TIMEOUT_S,
) -> Reply:
    """GET a JSON document; any failure becomes a Reply the caller renders as unavailable."""
    limit = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.get(
            upstream.url(path), headers=dict(headers), timeout=limit
        ) as response:
            try:
                body: object = await response.json(content_type=None)
            except ValueError:
                body = None
            return Reply(response.status, body)
    except (aiohttp.ClientError, TimeoutError):
        return Reply(0, None)


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request on stderr: method, path, status, milliseconds."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        took_ms = (time.monotonic() - started) * 1000
        print(
            f'{request.remote} "{request.method} {request.path_qs}" {status} {took_ms:.1f}ms',
            file=sys.stderr,
            flush=True,
        )


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "Healthy"})


def new_app(service: str, version: str) -> web.Application:
    """An app with logging and `/health`; services add their own routes."""
    app = web.Application(middlewares=[log_requests])
    app[SERVICE] = service
    app[VERSION] = version
    app.router.add_get("/health", health)
    return app


def add_client(app: web.Application) -> None:
    """Give `app` a client session (`app[CLIENT]`) for its lifetime."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with client_session() as session:
            app[CLIENT] = session
            yield

    app.cleanup_ctx.append(lifetime)


def pod_name(service: str, version: str) -> str:
    """The sample reports its pod; outside Kubernetes, HOSTNAME or a made-up one stands in."""
    return os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or f"{service}-{version}"
