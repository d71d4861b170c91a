"""What the agent's tests share: a real certificate service (15012) from a real CA, Envoy
configs whose TLS contexts take their secrets from SDS as the translator's do, and an mTLS
client that reports what the server presented."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from gossamer.control.ca import Authority, SpiffeId, key_pem, make_csr, new_key
from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.runtime import envoy_bootstrap
from gossamer.runtime.registration import write_identity_files
from tests.mesh_contract import sds_reference as sds_secret

REVIEWS = SpiffeId("default", "reviews")
PRODUCTPAGE = SpiffeId("default", "productpage")
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


@dataclass
class CertService:
    """A real control plane's certificate service (15012) and its CA."""

    plane: ControlPlane

    @property
    def authority(self) -> Authority:
        assert self.plane.ca is not None, self.plane.ca_error
        return self.plane.ca

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.plane.ca_port}"

    def pod_files(self, directory: Path, identity: SpiffeId) -> tuple[Path, Path]:
        """The runtime's files for a pod with `identity`: (credential, root cert)."""
        credential = self.plane.credentials.issue(identity)
        write_identity_files(directory, credential, self.authority.bundle.pem().decode())
        return directory / "credential", directory / "root-cert.pem"


@contextlib.asynccontextmanager
async def cert_service(home: Path, ttl: timedelta | None = None) -> AsyncIterator[CertService]:
    """A control plane serving 15012 on a free port; `ttl`: its workload certificates' life."""
    config = PlaneConfig(home=home, xds_port=0, api_port=0, ca_port=0)
    if ttl is not None:
        config = dataclasses.replace(config, workload_cert_ttl=ttl)
    plane = ControlPlane(config)
    await plane.start()
    try:
        yield CertService(plane)
    finally:
        await plane.stop()


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A directory whose paths fit a Unix socket (pytest's tmp_path can be too long)."""
    path = Path(tempfile.mkdtemp(prefix="gsm-sds-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mesh_listener(name: str = "inbound", port: int = 0) -> dict[str, Any]:
    """A listener with the mesh DownstreamTlsContext (client certificate required, secrets
    `default` and `ROOTCA` over SDS) answering 200 with the client's SPIFFE id in `x-peer`."""
    hcm = {
        "@type": f"type.googleapis.com/{HCM}",
        "stat_prefix": name,
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "any",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}],
                    "response_headers_to_add": [
                        {"header": {"key": "x-peer", "value": "%DOWNSTREAM_PEER_URI_SAN%"}}
                    ],
                }
            ]
        },
        "http_filters": [
            {"name": "router", "typed_config": {"@type": f"type.googleapis.com/{ROUTER}"}}
        ],
    }
    tls = {
        "@type": f"type.googleapis.com/{DOWNSTREAM_TLS}",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_2",
                "tls_maximum_protocol_version": "TLSv1_3",
            },
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificate_sds_secret_configs": [sds_secret("default")],
            "combined_validation_context": {
                "default_validation_context": {},
                "validation_context_sds_secret_config": sds_secret("ROOTCA"),
            },
        },
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [{"name": "hcm", "typed_config": hcm}],
                "transport_socket": {"name": "tls", "typed_config": tls},
            }
        ],
    }


UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def mesh_cluster(name: str, port: int, peer: SpiffeId) -> dict[str, Any]:
    """A cluster to 127.0.0.1:`port` with the mesh UpstreamTlsContext of the wiring contract
    (our `default` certificate, `ROOTCA` plus the peer's SPIFFE id to check the server)."""
    tls = {
        "@type": f"type.googleapis.com/{UPSTREAM_TLS}",
        "sni": f"outbound_.{port}_._.{name}.default.svc.cluster.local",
        "common_tls_context": {
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_2",
                "tls_maximum_protocol_version": "TLSv1_3",
            },
            "alpn_protocols": ["istio-http/1.1", "istio", "http/1.1"],
            "tls_certificate_sds_secret_configs": [sds_secret("default")],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [
                        {"san_type": "URI", "matcher": {"exact": peer.uri}}
                    ]
                },
                "validation_context_sds_secret_config": sds_secret("ROOTCA"),
            },
        },
    }
    endpoint = {
        "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    }
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]},
        "transport_socket": {"name": "tls", "typed_config": tls},
    }


def plain_listener(name: str, cluster: str) -> dict[str, Any]:
    """Plain HTTP on 127.0.0.1 (any port) routed to `cluster`."""
    hcm = {
        "@type": f"type.googleapis.com/{HCM}",
        "stat_prefix": name,
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "any",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
                }
            ]
        },
        "http_filters": [
            {"name": "router", "typed_config": {"@type": f"type.googleapis.com/{ROUTER}"}}
        ],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}],
    }


def envoy_config(sds_socket: Path, admin_port: int = 0, listener_port: int = 0) -> dict[str, Any]:
    return {
        "node": {
            "id": "sidecar~127.0.0.1~reviews-0.default~default.svc.cluster.local",
            "cluster": "reviews.default",
        },
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [mesh_listener(port=listener_port)],
            "clusters": [envoy_bootstrap.sds_cluster(sds_socket)],
        },
    }


def client_context(
    authority: Authority | None, identity: SpiffeId, workdir: Path
) -> ssl.SSLContext:
    """A TLS 1.3 client trusting `authority`'s roots; with a certificate for `identity` from it
    unless `authority` is None (then no client certificate, and no CA check of the server)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["http/1.1"])
    if authority is None:
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx.load_verify_locations(cadata=authority.bundle.pem().decode())
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity, timedelta(hours=1))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "client-chain.pem").write_bytes(issued.chain_pem())
    (workdir / "client-key.pem").write_bytes(key_pem(key))
    ctx.load_cert_chain(workdir / "client-chain.pem", workdir / "client-key.pem")
    return ctx


@dataclass(frozen=True)
class Reply:
    status: str
    peer: str | None  # the client's SPIFFE id as Envoy saw it
    server_identity: str | None  # the SPIFFE id Envoy presented
    server_serial: int


def https_get(port: int, ctx: ssl.SSLContext) -> Reply:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
        assert der is not None
        leaf = x509.load_der_x509_certificate(der)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        conn.sendall(b"GET / HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    peer = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("x-peer:")), None)
    return Reply(lines[0], peer, uris[0] if uris else None, leaf.serial_number)
