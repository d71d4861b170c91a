"""One listener proto for both planes: the translator's jwt_authn filter (and RBAC filters)
in an HCM whose inline routes send host `svc` to cluster `backend` (an echo upstream).

`observe(port, wire)` sends one raw request and returns what a client and the upstream saw:
status, body, content-type, `www-authenticate`, and for a forwarded request the path and the
token-related headers that reached the upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate import listeners
from tests.proxy.server.protos import route, routes

UPSTREAM_HEADERS = ("authorization", "x-token", "x-jwt-payload", "x-sub", "x-groups")


def jwt_listener(
    name: str, port: int, filters: Sequence[hcm_pb2.HttpFilter]
) -> listener_pb2.Listener:
    table = routes(name, (["svc"], [route("backend")]))
    hcm = listeners.inline_routes_filter(name, table, filters)
    return listeners.socket_listener(name, "127.0.0.1", port, [hcm], bind=True)


@dataclass(frozen=True)
class Observed:
    status: int | None
    body: bytes
    content_type: str | None
    www_authenticate: str | None
    closes: bool
    upstream_path: str | None = None
    upstream_headers: tuple[tuple[str, str | None], ...] = ()


def request(target: str = "/", *headers: tuple[str, str], host: str = "svc") -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"host: {host}", *(f"{n}: {v}" for n, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def observe(port: int, wire: bytes) -> Observed:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(wire)
        async with asyncio.timeout(5):
            try:
                head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
            except (asyncio.IncompleteReadError, ConnectionError):
                return Observed(None, b"", None, None, True)
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {
                n.strip().lower(): v.strip() for n, _, v in (x.partition(":") for x in lines)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    path: str | None = None
    seen: tuple[tuple[str, str | None], ...] = ()
    if body.startswith(b'{"upstream"'):
        echoed = json.loads(body)
        path = echoed["path"]
        seen = tuple((h, echoed["headers"].get(h)) for h in UPSTREAM_HEADERS)
        body = b"(from the upstream)"
    return Observed(
        int(status_line.split()[1]),
        body,
        headers.get("content-type"),
        headers.get("www-authenticate"),
        headers.get("connection") == "close",
        path,
        seen,
    )
