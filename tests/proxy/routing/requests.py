"""Requests and route configurations for routing tests: JSON-shaped dicts → real protos."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401  (Any type registry)
from envoy.extensions.retry.host.previous_hosts.v3 import (  # noqa: F401
    previous_hosts_pb2,
)
from google.protobuf import json_format

from gossamer.codec.headers import Headers
from gossamer.codec.http1 import RequestHead
from gossamer.proxy.routing import Route, RouteTable, compile_route_config


def request(
    target: str = "/",
    host: str = "example.com",
    method: str = "GET",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> RequestHead:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    items = [(b"host", host.encode())] + [(n.lower().encode(), v.encode()) for n, v in pairs]
    return RequestHead(method.encode(), target.encode(), b"1.1", Headers(items))


def route_config(config: dict[str, Any]) -> route_pb2.RouteConfiguration:
    return json_format.ParseDict(config, route_pb2.RouteConfiguration())


def table(config: dict[str, Any]) -> RouteTable:
    return compile_route_config(route_config(config))


def one_vhost(*routes: dict[str, Any], **vhost: Any) -> RouteTable:
    """A table with one catch-all virtual host named "vh" holding `routes`."""
    return table(
        {
            "name": "rc",
            "virtual_hosts": [{"name": "vh", "domains": ["*"], "routes": routes, **vhost}],
        }
    )


def to(cluster: str, match: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A forwarding route to `cluster` (match defaults to prefix "/")."""
    action = {"cluster": cluster, **extra.pop("action", {})}
    return {"name": cluster, "match": match or {"prefix": "/"}, "route": action, **extra}


def pick(t: RouteTable, target: str = "/", host: str = "example.com", **kw: Any) -> str | None:
    """The name of the route a request selects (None: no route)."""
    route = t.select(request(target, host, **kw), host.encode())
    return None if route is None else route.name


def selected(t: RouteTable, target: str = "/", host: str = "example.com", **kw: Any) -> Route:
    route = t.select(request(target, host, **kw), host.encode())
    assert route is not None
    return route
