"""A real Envoy enforcing RBAC configs, the oracle the Python evaluator is checked against.

`oracle_bootstrap(cases)` builds one static Envoy (tests/static_envoy.py) with a listener per
case on 127.0.0.1:0: [network filters] → HCM (stat prefix = case name) → [set_metadata] → RBAC
filter(s) → router with a direct_response 200; `static_envoy.running` starts it. `Probe` is one
raw HTTP/1.1 request from a chosen loopback address; `probe.send(port)` says what Envoy did,
`probe.request(port)` is the `AuthzRequest` the sidecar would build for it.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from gossamer.codec.headers import Headers
from gossamer.proxy.authz import AuthzRequest, downstream_remote_ip, origin_form
from gossamer.runtime.envoy import EnvoyProcess
from tests.static_envoy import hcm_listener, router_filter, static_bootstrap

HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
SET_METADATA = "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config"
LISTENER_IP = ip_address("127.0.0.1")


@dataclass(frozen=True)
class Case:
    """One listener: its RBAC filters (typed_config dicts, JSON names) and dynamic metadata."""

    name: str
    http_rbac: Sequence[Mapping[str, Any]] = ()
    network_rbac: Sequence[Mapping[str, Any]] = ()
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _listener(case: Case) -> dict[str, Any]:
    http_filters: list[dict[str, Any]] = []
    for namespace, value in case.metadata.items():
        config = {
            "@type": SET_METADATA,
            "metadata": [{"metadata_namespace": namespace, "value": value}],
        }
        http_filters.append({"name": "envoy.filters.http.set_metadata", "typed_config": config})
    for i, rbac in enumerate(case.http_rbac):
        typed = {"@type": HTTP_RBAC, **rbac}
        http_filters.append({"name": f"envoy.filters.http.rbac.{i}", "typed_config": typed})
    http_filters.append(router_filter())
    route = {
        "match": {"prefix": ""},
        "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
    }
    network_filters = [
        {"name": f"envoy.filters.network.rbac.{i}", "typed_config": {"@type": NETWORK_RBAC, **rbac}}
        for i, rbac in enumerate(case.network_rbac)
    ]
    return hcm_listener(
        case.name,
        stat_prefix=case.name,
        route_config={"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
        http_filters=http_filters,
        network_filters=network_filters,
    )


def oracle_bootstrap(cases: Sequence[Case]) -> dict[str, Any]:
    return static_bootstrap([_listener(c) for c in cases])


def rbac_counters(envoy: EnvoyProcess, prefixes: Sequence[str]) -> dict[str, int]:
    """Envoy's non-zero counters whose names start with one of `prefixes`."""
    _, text = envoy.admin_get("/stats?format=json")
    out: dict[str, int] = {}
    for stat in json.loads(text)["stats"]:
        name = stat.get("name", "")
        if stat.get("value") and any(name.startswith(p) for p in prefixes):
            out[name] = int(stat["value"])
    return out


@dataclass(frozen=True)
class Response:
    """What came back: None for a connection closed before any response."""

    status: int | None
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True)
class Probe:
    """One HTTP/1.1 request exactly as written; `source` is the client's loopback address."""

    method: str = "GET"
    target: str = "/"
    host: str = "example.com"
    headers: Sequence[tuple[str, str]] = ()
    source: str = "127.0.0.1"

    def wire(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{n}: {v}" for n, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def send(self, port: int) -> Response:
        with socket.create_connection(
            ("127.0.0.1", port), timeout=5, source_address=(self.source, 0)
        ) as sock:
            sock.sendall(self.wire())
            return _read_response(sock, head_only=self.method == "HEAD")

    def request(self, port: int, *, http: bool = True) -> AuthzRequest:
        """The request context the sidecar would hand the evaluator, with the two headers
        Envoy's HCM adds before any filter runs (x-forwarded-proto, x-request-id)."""
        headers = Headers([(n.lower().encode(), v.encode()) for n, v in self.headers])
        if http:
            headers.set(b"x-forwarded-proto", b"http")
            if headers.get(b"x-request-id") is None:
                headers.add(b"x-request-id", str(uuid.uuid4()).encode())
        source = ip_address(self.source)
        target, authority = origin_form(self.target.encode(), self.host.encode())
        return AuthzRequest(
            method=self.method.encode() if http else b"",
            target=target if http else b"",
            authority=authority if http else b"",
            headers=headers if http else Headers(),
            destination_ip=LISTENER_IP,
            destination_port=port,
            remote_ip=downstream_remote_ip(source, headers) if http else source,
            direct_remote_ip=source,
            http=http,
        )


def _read_response(sock: socket.socket, *, head_only: bool) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return Response(None, [], data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = [(n.strip().lower(), v.strip()) for n, _, v in (ln.partition(b":") for ln in lines)]
    length = next((int(v) for n, v in headers if n == b"content-length"), 0)
    while not head_only and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Response(int(status_line.split()[1]), headers, body)
