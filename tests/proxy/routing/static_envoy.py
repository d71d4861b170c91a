"""A real Envoy serving one static RouteConfiguration on 127.0.0.1, for parity tests.

`bootstrap(route_config)` builds the JSON bootstrap (HCM with Istio's cors, fault and router;
optional static clusters) with tests/static_envoy.py; `serving(bootstrap, workdir)` starts
Envoy and yields the listener's port; `send` makes one HTTP/1.1 request to it.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from tests.proxy.routing.requests import route_config
from tests.static_envoy import hcm_listener, router_filter, running, static_bootstrap

CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

Sent = Mapping[str, str] | Sequence[tuple[str, str]]


def static_cluster(name: str, port: int = 1) -> dict[str, Any]:
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
    }


def bootstrap(routes: Mapping[str, Any], clusters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    listener = hcm_listener(
        "parity",
        stat_prefix="parity",
        route_config=json_format.MessageToDict(
            route_config(dict(routes)), preserving_proto_field_name=True
        ),
        http_filters=[
            {"name": "envoy.filters.http.cors", "typed_config": {"@type": CORS}},
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT}},
            router_filter(),
        ],
    )
    return static_bootstrap([listener], clusters)


@contextmanager
def serving(config: Mapping[str, Any], workdir: Path) -> Iterator[int]:
    """Run Envoy until the block ends; yields the port its listener bound."""
    with running(config, workdir) as (_envoy, ports):
        yield ports["parity"]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]  # names lowercased, in wire order
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)


def send(port: int, method: str, host: str, path: str, headers: Sent = ()) -> Reply:
    """One request with exactly these headers (Host first)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return Reply(resp.status, [(n.lower(), v) for n, v in resp.getheaders()], body)
    finally:
        conn.close()
