"""A static Envoy whose listeners carry our RBAC filters, for acceptance and real decisions.

Every listener binds 127.0.0.1:0; the bound ports are read back from the admin API.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from tests import static_envoy

# The modules that start Envoy: skipped, with the reason, where its binary is absent.
SKIP_WITHOUT_ENVOY = pytest.mark.skipif(
    static_envoy.ENVOY is None, reason="Envoy binary absent (make envoy)"
)

_TYPES = "type.googleapis.com/envoy.extensions."
HCM_TYPE = _TYPES + "filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_TYPE = _TYPES + "filters.http.router.v3.Router"
TCP_PROXY_TYPE = _TYPES + "filters.network.tcp_proxy.v3.TcpProxy"
TIMEOUT = 5.0


def _as_json(message: hcm_pb2.HttpFilter | lc.Filter) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _address(port: int = 0) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def http_listener(
    name: str,
    filters: Sequence[hcm_pb2.HttpFilter],
    before: Sequence[Mapping[str, Any]] = (),
    tls: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """HCM → `before` (e.g. jwt_authn) → RBAC → 200 "ok"; `tls` is the chain's transport
    socket (mTLS). Like Istio's inbound HCM it keeps the port in :authority."""
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
    }
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": name,
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
        "http_filters": [
            *before,
            *(_as_json(f) for f in filters),
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
        ],
    }
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    }
    if tls is not None:
        chain["transport_socket"] = dict(tls)
    return {"name": name, "address": _address(), "filter_chains": [chain]}


def tcp_listener(name: str, filters: Sequence[lc.Filter], cluster: str) -> dict[str, Any]:
    """Network RBAC → tcp_proxy to `cluster`."""
    proxy = {"@type": TCP_PROXY_TYPE, "stat_prefix": name, "cluster": cluster}
    chain = [
        *(_as_json(f) for f in filters),
        {"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy},
    ]
    return {"name": name, "address": _address(), "filter_chains": [{"filters": chain}]}


def static_cluster(name: str, port: int) -> dict[str, Any]:
    endpoint = {"endpoint": {"address": _address(port)}}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]},
    }


def bootstrap(
    listeners: Sequence[Mapping[str, Any]], clusters: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    return {
        "node": {"id": "authz-test", "cluster": "authz-test"},
        "admin": {"address": _address()},
        "static_resources": {"listeners": list(listeners), "clusters": list(clusters)},
    }


@contextmanager
def running(config: Mapping[str, Any], workdir: Path) -> Iterator[dict[str, int]]:
    """Start Envoy on `config`; yield {listener name: bound port}; stop it (by its PID)."""
    with static_envoy.running(config, workdir) as (_envoy, ports):
        yield ports


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def get(
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """One request on a fresh connection (HTTPS with `tls`, a client certificate context)."""
    connection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT, context=tls)
        if tls is not None
        else http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    )
    try:
        connection.request(method, path, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, response.read().decode())
    finally:
        connection.close()


@contextmanager
def greeter() -> Iterator[int]:
    """A TCP server on 127.0.0.1:0 answering b"hello" to a connection's first bytes; yields its
    port. Client-first on purpose: Envoy's network RBAC decides on the first downstream byte."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                try:
                    if conn.recv(1024):
                        conn.sendall(b"hello")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(TIMEOUT)
        server.close()


def tcp_greeting(port: int) -> bytes:
    """What a TCP connection to `port` receives for b"ping" before it is closed (b"" when the
    connection is closed unanswered)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(b"ping")
            while chunk := sock.recv(1024):
                received += chunk
        except ConnectionResetError:
            pass
    return received
