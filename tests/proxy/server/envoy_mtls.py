"""A static Envoy 1.40 on the contract's mTLS shapes, with file certificates instead of SDS:
shared by the tests that put the Python sidecar beside a real Envoy (inbound mTLS, counters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
