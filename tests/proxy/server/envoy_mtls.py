"""A static Envoy 1.40 on the contract's mTLS shapes, with file certificates instead of SDS:
shared by the tests that put the Python sidecar beside a real Envoy (inbound mTLS, counters)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime.envoy import EnvoyNotFound, EnvoyProcess, envoy_binary
from gossamer.transport.tls import IdentityMaterial

TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
LOOPBACK = {"socket_address": {"address": "127.0.0.1", "port_value": 0}}
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
MESH_SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"


@pytest.fixture
def envoy_present() -> Iterator[None]:
    try:
        envoy_binary()
    except EnvoyNotFound as exc:
        pytest.skip(str(exc))
    yield


def tls_files(material: IdentityMaterial, folder: Path) -> dict[str, str]:
    """The identity as the files Envoy reads: `chain`, `key` (0600) and `root`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in (
        ("chain", material.cert_chain_pem),
        ("key", material.private_key_pem),
        ("root", material.trust_bundle_pem),
    ):
        path = folder / f"{name}.pem"
        path.write_text(text)
        path.chmod(0o600)
        paths[name] = str(path)
    return paths


def common_tls(files: dict[str, str], alpn: list[str], sans: list[str]) -> dict[str, Any]:
    """Envoy's CommonTlsContext from files: TLS 1.2-1.3, URI SANs checked when given."""
    validation: dict[str, Any] = {"trusted_ca": {"filename": files["root"]}}
    if sans:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": san}} for san in sans
        ]
    return {
        "alpn_protocols": alpn,
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_2",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "tls_certificates": [
            {
                "certificate_chain": {"filename": files["chain"]},
                "private_key": {"filename": files["key"]},
            }
        ],
        "validation_context": validation,
    }


def strict_server_bootstrap(files: dict[str, str], filters: list[dict[str, Any]]) -> Any:
    """Envoy as a STRICT inbound: the contract's mTLS chain (client certificate required,
    ALPN h2/http1.1) in front of `filters`, on a free loopback port."""
    listener = {
        "name": "strict",
        "address": LOOPBACK,
        "listener_filters": [{"name": "tls_inspector", "typed_config": {"@type": INSPECTOR}}],
        "filter_chains": [
            {
                "filter_chain_match": {"transport_protocol": "tls"},
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": TLS + "DownstreamTlsContext",
                        "require_client_certificate": True,
                        "common_tls_context": common_tls(files, ["h2", "http/1.1"], []),
                    },
                },
                "filters": filters,
            }
        ],
    }
    return {
        "node": {"id": "server", "cluster": "server"},
        "admin": {"address": LOOPBACK},
        "static_resources": {"listeners": [listener]},
    }


def listener_ports(envoy: EnvoyProcess) -> dict[str, int]:
    """Where each of a running Envoy's listeners (bound to port 0) listens."""
    _, body = envoy.admin_get("/listeners?format=json")
    return {
        status["name"]: int(status["local_address"]["socket_address"]["port_value"])
        for status in json.loads(body)["listener_statuses"]
    }


@asynccontextmanager
async def envoy_running(
    bootstrap: Any, folder: Path
) -> AsyncIterator[tuple[EnvoyProcess, dict[str, int]]]:
    """Envoy on `bootstrap`, started and ready, with its listeners' ports by name; stopped
    after."""
    envoy = EnvoyProcess(bootstrap, folder)
    try:
        envoy.start()
        await asyncio.to_thread(envoy.wait_ready)
        yield envoy, await asyncio.to_thread(listener_ports, envoy)
    finally:
        envoy.stop()


def hcm(routes: list[dict[str, Any]], stat_prefix: str = "client") -> dict[str, Any]:
    """An HTTP/1.1 connection manager with one virtual host holding `routes`."""
    return {
        "name": "hcm",
        "typed_config": {
            "@type": HCM + "HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "codec_type": "HTTP1",
            "route_config": {
                "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]
            },
            "http_filters": [{"name": "router", "typed_config": {"@type": ROUTER}}],
        },
    }


def outbound_listener(routes: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A plaintext listener `outbound` routing each (path prefix, cluster) in order."""
    table = [{"match": {"prefix": prefix}, "route": {"cluster": c}} for prefix, c in routes]
    return {"name": "outbound", "address": LOOPBACK, "filter_chains": [{"filters": [hcm(table)]}]}


def mesh_cluster(
    name: str,
    port: int,
    files: dict[str, str],
    sans: list[str],
    *,
    alpn: Sequence[str],
    per_connection: int | None = None,
) -> dict[str, Any]:
    """ISTIO_MUTUAL to 127.0.0.1:`port` with file certificates: the server's SPIFFE id checked
    against `sans`, Istio's ALPN, TLS 1.3 as the contract says for Envoy upstreams (Envoy's
    default maximum is 1.2); `per_connection` caps requests per connection."""
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    common = common_tls(files, list(alpn), sans)
    common["tls_params"]["tls_minimum_protocol_version"] = "TLSv1_3"
    options = {}
    if per_connection is not None:
        options[HTTP_OPTIONS] = {
            "@type": "type.googleapis.com/" + HTTP_OPTIONS,
            "common_http_protocol_options": {"max_requests_per_connection": per_connection},
            "explicit_http_config": {"http_protocol_options": {}},
        }
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "typed_extension_protocol_options": options,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": TLS + "UpstreamTlsContext",
                "sni": MESH_SNI,
                "common_tls_context": common,
            },
        },
    }


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET 127.0.0.1:`port``path`: (status, body), error statuses included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
