"""A real Envoy accepts the CA's certificates both ways: as an mTLS server (checking the client's
SPIFFE ID with match_typed_subject_alt_names) and as an mTLS client to a Python `ssl` server.
This is the shape SDS will later deliver; here the files are given inline."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gossamer.control.ca import Authority, IssuedCert, SpiffeId, key_pem, open_ca
from gossamer.runtime import envoy as rt
from tests.control.ca.support import Issue, peer_uris

pytestmark = [pytest.mark.envoy, pytest.mark.e2e]

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
PRODUCTPAGE = SpiffeId("default", "productpage")
REVIEWS = SpiffeId("default", "reviews")


def tls_context(issued: tuple[ec.EllipticCurvePrivateKey, IssuedCert], peer: SpiffeId) -> Any:
    """Envoy's CommonTlsContext: our chain and key, the bundle, and the peer's SPIFFE ID."""
    key, cert = issued
    return {
        # Both bounds: an Envoy client's default maximum is TLS 1.2, so a minimum of 1.3 alone
        # fails every upstream handshake with NO_SUPPORTED_VERSIONS_ENABLED.
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_3",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "tls_certificates": [
            {
                "certificate_chain": {"inline_bytes": _b64(cert.chain_pem())},
                "private_key": {"inline_bytes": _b64(key_pem(key))},
            }
        ],
        "validation_context": {
            "trusted_ca": {"inline_bytes": _b64(cert.bundle_pem())},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": peer.uri}}],
        },
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hcm(name: str, route: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "hcm",
        "typed_config": {
            "@type": f"type.googleapis.com/{HCM}",
            "stat_prefix": name,
            "route_config": {
                "virtual_hosts": [
                    {
                        "name": "any",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, **route}],
                        "response_headers_to_add": [
                            {"header": {"key": "x-peer", "value": "%DOWNSTREAM_PEER_URI_SAN%"}}
                        ],
                    }
                ]
            },
            "http_filters": [
                {"name": "router", "typed_config": {"@type": f"type.googleapis.com/{ROUTER}"}}
            ],
        },
    }


def listener(name: str, route: dict[str, Any], tls: Any | None) -> dict[str, Any]:
    chain: dict[str, Any] = {"filters": [hcm(name, route)]}
    if tls is not None:
        chain["transport_socket"] = {
            "name": "tls",
            "typed_config": {
                "@type": f"type.googleapis.com/{DOWNSTREAM_TLS}",
                "require_client_certificate": True,
                "common_tls_context": tls,
            },
        }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [chain],
    }


@pytest.fixture
def envoy_binary() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


@contextmanager
def run_envoy(config: dict[str, Any], workdir: Path, binary: Path) -> Iterator[dict[str, int]]:
    """Start Envoy, yield its listeners' bound ports by name, stop it by its PID."""
    with rt.EnvoyProcess(config, workdir, binary=binary) as envoy:
        envoy.wait_ready()
        _, body = envoy.admin_get("/listeners?format=json")
        statuses = json.loads(body)["listener_statuses"]
        yield {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}


def bootstrap(listeners: list[dict[str, Any]], clusters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def client_context(issued: tuple[ec.EllipticCurvePrivateKey, IssuedCert], workdir: Path) -> Any:
    key, cert = issued
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=cert.bundle_pem().decode())
    (workdir / "client-chain.pem").write_bytes(cert.chain_pem())
    (workdir / "client-key.pem").write_bytes(key_pem(key))
    ctx.load_cert_chain(workdir / "client-chain.pem", workdir / "client-key.pem")
    return ctx


def https_get(port: int, ctx: ssl.SSLContext) -> tuple[str, str | None, str | None]:
    """(status line, x-peer header, Envoy's SPIFFE ID as the client saw it)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as conn,
    ):
        server_uri = next(iter(peer_uris(conn)), None)
        conn.sendall(b"GET / HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    peer = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("x-peer:")), None)
    return lines[0], peer, server_uri


def test_envoy_server_accepts_our_client_and_reads_its_identity(
    authority: Authority, issue: Issue, tmp_path: Path, envoy_binary: Path
) -> None:
    envoy_cert = issue(authority, sa="reviews")
    config = bootstrap(
        [
            listener(
                "in", {"direct_response": {"status": 200}}, tls_context(envoy_cert, PRODUCTPAGE)
            )
        ],
        [],
    )
    with run_envoy(config, tmp_path / "envoy", envoy_binary) as ports:
        ok = client_context(issue(authority, sa="productpage"), tmp_path)
        status, peer, server_uri = https_get(ports["in"], ok)
        assert status == "HTTP/1.1 200 OK"
        assert peer == PRODUCTPAGE.uri
        assert server_uri == REVIEWS.uri

        wrong_identity = client_context(issue(authority, sa="ratings"), tmp_path)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(ports["in"], wrong_identity)

        stranger = open_ca(tmp_path / "elsewhere" / "ca")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(ports["in"], client_context(issue(stranger, sa="productpage"), tmp_path))


def serve_mtls(
    issued: tuple[ec.EllipticCurvePrivateKey, IssuedCert], workdir: Path
) -> tuple[socket.socket, threading.Thread, list[str]]:
    """A Python mTLS HTTP server answering one request with the client's SPIFFE ID."""
    key, cert = issued
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cert.bundle_pem().decode())
    (workdir / "server-chain.pem").write_bytes(cert.chain_pem())
    (workdir / "server-key.pem").write_bytes(key_pem(key))
    ctx.load_cert_chain(workdir / "server-chain.pem", workdir / "server-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    seen: list[str] = []

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            raw.settimeout(10)
            with ctx.wrap_socket(raw, server_side=True) as conn:
                seen.extend(peer_uris(conn))
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                body = seen[0].encode() if seen else b""
                head = (
                    f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
                )
                conn.sendall(head.encode() + body)
        except (OSError, ssl.SSLError) as exc:
            seen.append(f"error: {exc}")

    thread = threading.Thread(target=serve)
    thread.start()
    return listener, thread, seen


def upstream_cluster(port: int, tls: Any) -> dict[str, Any]:
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    return {
        "name": "reviews",
        "type": "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": "reviews",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
        "transport_socket": {
            "name": "tls",
            "typed_config": {
                "@type": f"type.googleapis.com/{UPSTREAM_TLS}",
                "common_tls_context": tls,
            },
        },
    }


def get_through_envoy(
    upstream_cert: tuple[ec.EllipticCurvePrivateKey, IssuedCert],
    envoy_tls: Any,
    workdir: Path,
    binary: Path,
) -> tuple[int, str, list[str]]:
    """GET through Envoy's plaintext listener to a Python mTLS server: (status, body, what
    the server saw of Envoy's identity)."""
    upstream, thread, seen = serve_mtls(upstream_cert, workdir)
    try:
        cluster = upstream_cluster(upstream.getsockname()[1], envoy_tls)
        config = bootstrap([listener("out", {"route": {"cluster": "reviews"}}, None)], [cluster])
        with run_envoy(config, workdir / "envoy", binary) as ports:
            url = f"http://127.0.0.1:{ports['out']}/"
            try:
                with urllib.request.urlopen(url, timeout=20) as response:
                    return response.status, response.read().decode(), seen
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode(), seen
    finally:
        thread.join(30)
        upstream.close()


def test_envoy_client_presents_its_identity_to_our_server(
    authority: Authority, issue: Issue, tmp_path: Path, envoy_binary: Path
) -> None:
    envoy_tls = tls_context(issue(authority, sa="productpage"), REVIEWS)
    status, body, seen = get_through_envoy(
        issue(authority, sa="reviews"), envoy_tls, tmp_path, envoy_binary
    )
    assert (status, body) == (200, PRODUCTPAGE.uri)
    assert seen == [PRODUCTPAGE.uri]


def test_envoy_client_refuses_a_server_with_another_identity(
    authority: Authority, issue: Issue, tmp_path: Path, envoy_binary: Path
) -> None:
    envoy_tls = tls_context(issue(authority, sa="productpage"), REVIEWS)
    status, _, seen = get_through_envoy(
        issue(authority, sa="ratings"), envoy_tls, tmp_path, envoy_binary
    )
    assert status == 503
    assert len(seen) == 1 and seen[0].startswith("error:")
