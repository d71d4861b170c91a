"""The CA's certificates in real TLS: an `ssl` server and client on loopback, TLS 1.3, both
sides presenting and verifying certificates (mTLS), each reading the other's SPIFFE ID."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gossamer.control.ca import (
    Authority,
    IssuedCert,
    begin_root_rotation,
    finish_root_rotation,
    key_pem,
    open_ca,
)
from tests.control.ca.support import Issue, WritePlugin, peer_uris


@dataclass
class Party:
    chain: bytes
    key: bytes
    bundle: bytes


@dataclass
class Outcome:
    peer_uri: str | None = None
    version: str | None = None
    error: str | None = None


def party(
    issued: tuple[ec.EllipticCurvePrivateKey, IssuedCert], trust: bytes | None = None
) -> Party:
    key, cert = issued
    return Party(cert.chain_pem(), key_pem(key), trust or cert.bundle_pem())


def context(side: Party, server: bool, workdir: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # mesh peers are named by SPIFFE ID, checked by the caller
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=side.bundle.decode())
    name = "server" if server else "client"
    (workdir / f"{name}-chain.pem").write_bytes(side.chain)
    (workdir / f"{name}-key.pem").write_bytes(side.key)
    ctx.load_cert_chain(workdir / f"{name}-chain.pem", workdir / f"{name}-key.pem")
    return ctx


def peer_uri(conn: ssl.SSLSocket) -> str | None:
    uris = peer_uris(conn)
    return uris[0] if uris else None


def exchange(server: Party, client: Party, workdir: Path) -> tuple[Outcome, Outcome]:
    """One mTLS connection: the server answers its view of the peer, the client reads it."""
    server_ctx = context(server, True, workdir)
    client_ctx = context(client, False, workdir)
    seen_by_server = Outcome()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            raw.settimeout(10)
            with server_ctx.wrap_socket(raw, server_side=True) as conn:
                seen_by_server.peer_uri = peer_uri(conn)
                seen_by_server.version = conn.version()
                conn.sendall(b"hello")
        except (OSError, ssl.SSLError) as exc:
            seen_by_server.error = str(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    seen_by_client = Outcome()
    try:
        raw = socket.create_connection(listener.getsockname(), timeout=10)
        with client_ctx.wrap_socket(raw) as conn:
            seen_by_client.peer_uri = peer_uri(conn)
            seen_by_client.version = conn.version()
            if conn.recv(5) != b"hello":  # TLS 1.3: a refused client learns it here
                seen_by_client.error = "connection closed"
    except (OSError, ssl.SSLError) as exc:
        seen_by_client.error = str(exc)
    finally:
        thread.join(15)
        listener.close()
    assert not thread.is_alive()
    return seen_by_server, seen_by_client


def test_mutual_tls_13_between_two_workloads(
    authority: Authority, issue: Issue, tmp_path: Path
) -> None:
    server = party(issue(authority, ns="default", sa="reviews"))
    client = party(issue(authority, ns="default", sa="productpage"))
    seen_by_server, seen_by_client = exchange(server, client, tmp_path)
    assert seen_by_server.error is None and seen_by_client.error is None
    assert seen_by_server.version == seen_by_client.version == "TLSv1.3"
    assert seen_by_server.peer_uri == "spiffe://cluster.local/ns/default/sa/productpage"
    assert seen_by_client.peer_uri == "spiffe://cluster.local/ns/default/sa/reviews"


def test_client_from_another_ca_is_refused(
    authority: Authority, issue: Issue, tmp_path: Path
) -> None:
    stranger_ca = open_ca(tmp_path / "elsewhere" / "ca")
    server = party(issue(authority, sa="reviews"))
    client = party(issue(stranger_ca, sa="productpage"), trust=authority.bundle.pem())
    seen_by_server, seen_by_client = exchange(server, client, tmp_path)
    assert seen_by_server.error is not None and "certificate verify failed" in seen_by_server.error
    assert seen_by_server.peer_uri is None
    assert seen_by_client.error is not None


def test_server_from_another_ca_is_refused(
    authority: Authority, issue: Issue, tmp_path: Path
) -> None:
    stranger_ca = open_ca(tmp_path / "elsewhere" / "ca")
    server = party(issue(stranger_ca, sa="reviews"), trust=authority.bundle.pem())
    client = party(issue(authority, sa="productpage"))
    seen_by_server, seen_by_client = exchange(server, client, tmp_path)
    assert seen_by_client.error is not None and "certificate verify failed" in seen_by_client.error
    assert seen_by_server.error is not None


def test_expired_client_certificate_is_refused(ca_dir: Path, issue: Issue, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    authority = open_ca(ca_dir, now=now - timedelta(days=1))
    server = party(issue(authority, sa="reviews"))
    expired = issue(
        authority, sa="productpage", ttl=timedelta(hours=1), now=now - timedelta(hours=2)
    )
    seen_by_server, seen_by_client = exchange(server, party(expired), tmp_path)
    assert seen_by_server.error is not None and "certificate has expired" in seen_by_server.error
    assert seen_by_client.error is not None


def test_plugin_ca_chain_is_accepted_over_tls(
    ca_dir: Path, write_plugin: WritePlugin, issue: Issue, tmp_path: Path
) -> None:
    write_plugin()
    authority = open_ca(ca_dir)
    assert authority.plugged
    server = party(issue(authority, sa="reviews"))
    client = party(issue(authority, sa="productpage"))
    seen_by_server, seen_by_client = exchange(server, client, tmp_path)
    assert seen_by_server.error is None and seen_by_client.error is None
    assert seen_by_server.peer_uri == "spiffe://cluster.local/ns/default/sa/productpage"


def test_old_and_new_roots_talk_during_rotation_overlap(
    ca_dir: Path, issue: Issue, tmp_path: Path
) -> None:
    old_leaf = issue(open_ca(ca_dir), sa="ratings")
    begin_root_rotation(ca_dir, timedelta(days=1), promote=True)
    rotated = open_ca(ca_dir)
    new_leaf = issue(rotated, sa="reviews")
    overlap = rotated.bundle.pem()
    seen_by_server, seen_by_client = exchange(
        party(new_leaf, trust=overlap), party(old_leaf, trust=overlap), tmp_path
    )
    assert seen_by_server.peer_uri == "spiffe://cluster.local/ns/default/sa/ratings"
    assert seen_by_client.peer_uri == "spiffe://cluster.local/ns/default/sa/reviews"

    finish_root_rotation(ca_dir, force=True)
    steady = open_ca(ca_dir).bundle.pem()
    seen_by_server, _ = exchange(
        party(new_leaf, trust=steady), party(old_leaf, trust=steady), tmp_path
    )
    assert seen_by_server.error is not None and "certificate verify failed" in seen_by_server.error
