"""Listeners with RBAC filters, one proto for both planes: our Dataplane and a static Envoy.

`http_rbac_listener(name, port, rbac_configs)` is an HCM whose inline routes send host `svc`
to cluster `backend` (any other host is unrouted), with the RBAC filters first, as the
translator emits them; `tcp_rbac_listener` puts network RBAC filters before a tcp_proxy.
RBAC configs are JSON dicts in Envoy's own field names (as in Envoy's docs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from google.protobuf import json_format

from gossamer.control.translate import listeners
from gossamer.control.translate.policies import packed
from gossamer.runtime.envoy import EnvoyProcess
from tests.proxy.server.protos import route, routes
from tests.static_envoy import running, static_bootstrap

ANY = {"any": True}
ALLOW_ALL = {"action": "ALLOW", "policies": {"all": {"permissions": [ANY], "principals": [ANY]}}}


def policy(action: str, permissions: Sequence[Any], name: str = "p") -> dict[str, Any]:
    """`rules` with one policy: any of `permissions`, from anyone."""
    return {"action": action, "policies": {name: {"permissions": permissions, "principals": [ANY]}}}


def header(name: str, **match: Any) -> dict[str, Any]:
    return {"header": {"name": name, **match}}


def path_prefix(prefix: str) -> dict[str, Any]:
    return {"url_path": {"path": {"prefix": prefix}}}


def both(*rules: Any) -> dict[str, Any]:
    return {"and_rules": {"rules": list(rules)}}


def http_rbac_filter(config: Mapping[str, Any], i: int = 0) -> hcm_pb2.HttpFilter:
    message = json_format.ParseDict(config, http_rbac_pb2.RBAC())
    return hcm_pb2.HttpFilter(name=f"envoy.filters.http.rbac.{i}", typed_config=packed(message))


def network_rbac_filter(config: Mapping[str, Any], i: int = 0) -> lc.Filter:
    message = json_format.ParseDict(config, network_rbac_pb2.RBAC())
    return lc.Filter(name=f"envoy.filters.network.rbac.{i}", typed_config=packed(message))


def http_rbac_listener(
    name: str, port: int, rbac: Sequence[Mapping[str, Any]]
) -> listener_pb2.Listener:
    table = routes(name, (["svc"], [route("backend")]))
    filters = [http_rbac_filter(c, i) for i, c in enumerate(rbac)]
    hcm = listeners.inline_routes_filter(name, table, filters)
    return listeners.socket_listener(name, "127.0.0.1", port, [hcm], bind=True)


def tcp_rbac_listener(
    name: str, port: int, rbac: Sequence[Mapping[str, Any]]
) -> listener_pb2.Listener:
    filters = [network_rbac_filter(c, i) for i, c in enumerate(rbac)]
    filters.append(listeners.tcp_proxy_filter(name, [("backend", 1)]))
    return listeners.socket_listener(name, "127.0.0.1", port, filters, bind=True)


def as_json(pb: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(pb, preserving_proto_field_name=True)
    return out


@contextmanager
def envoy_serving(
    listener_pbs: Sequence[listener_pb2.Listener], clusters: Sequence[Any], workdir: Path
) -> Iterator[tuple[EnvoyProcess, dict[str, int]]]:
    """A static Envoy with these listeners (moved to port 0) and clusters; yields the process
    and each listener's bound port by name."""
    config_listeners = []
    for pb in listener_pbs:
        moved = listener_pb2.Listener()
        moved.CopyFrom(pb)
        moved.address.socket_address.port_value = 0
        config_listeners.append(as_json(moved))
    config = static_bootstrap(config_listeners, [as_json(c) for c in clusters])
    with running(config, workdir) as (envoy, ports):
        yield envoy, ports


@dataclass(frozen=True)
class Seen:
    """What a client observes of one request: None status = closed without a response."""

    status: int | None
    body: bytes
    content_type: str | None
    closes: bool  # the response said `connection: close`
    reused: bool  # a second request on the same connection was answered


async def exchange(port: int, wire: bytes) -> Seen:
    """Send `wire` (one request), read the response, then try a second request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(wire)
        head = await _read_until(reader, b"\r\n\r\n")
        if head is None:
            return Seen(None, b"", None, True, False)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {n.strip().lower(): v.strip() for n, _, v in (x.partition(":") for x in lines)}
        length = 0 if wire.startswith(b"HEAD ") else int(headers.get("content-length", "0"))
        async with asyncio.timeout(5):
            body = await reader.readexactly(length)
        writer.write(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        again = await _read_until(reader, b"\r\n\r\n")
        if body.startswith(b'{"upstream"'):  # the echo: its request id is random
            body = b"(from the upstream)"
        return Seen(
            int(status_line.split()[1]),
            body,
            headers.get("content-type"),
            headers.get("connection") == "close",
            again is not None,
        )
    finally:
        writer.close()


async def _read_until(reader: asyncio.StreamReader, mark: bytes) -> bytes | None:
    try:
        async with asyncio.timeout(5):
            return (await reader.readuntil(mark))[: -len(mark)]
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
