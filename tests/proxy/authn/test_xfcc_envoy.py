"""x-forwarded-client-cert on an mTLS connection, compared with a real Envoy.

Both planes get the translator's inbound connection manager (APPEND_FORWARD; subject, DNS and
URI details, as Istio's sidecar inbound). Envoy terminates TLS with a static
DownstreamTlsContext from files; our chain is served over TLS by an `HttpConnection` on a
server we start with the same certificate (the sidecar's own inbound TLS path is built
elsewhere). A client with a mesh certificate sends requests with and without an XFCC header;
the upstream must receive the same value from both, which names our identity (`By`), the
client certificate's SHA-256 (`Hash`) and the client's SPIFFE id (`URI`). On plaintext both
remove a client-supplied XFCC header. Every forwarding mode (SANITIZE, FORWARD_ONLY,
ALWAYS_FORWARD_ONLY, SANITIZE_SET with the PEM, APPEND_FORWARD without details) is then compared
on both transports."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from google.protobuf import json_format

from gossamer.control.ca import SpiffeId, open_ca
from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.proxy.dataplane import Dataplane
from gossamer.proxy.server.context import ChainRoutes
from gossamer.proxy.server.downstream import HttpConnection
from gossamer.transport.tls import IdentityMaterial
from tests.ports import free_port
from tests.proxy.authn.parity import jwt_listener
from tests.proxy.server.harness import running
from tests.proxy.server.protos import static_cluster
from tests.proxy.server.rbac_listeners import envoy_serving
from tests.proxy.server.upstreams import Upstream
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY
SERVER = SpiffeId("foo", "server")
CLIENT = SpiffeId("foo", "client")


def _material(authority: object, identity: SpiffeId) -> IdentityMaterial:
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity)  # type: ignore[attr-defined]
    return IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )


def _write(tmp_path: Path, server: IdentityMaterial, client: IdentityMaterial) -> dict[str, Path]:
    """PEM files: Envoy's certificate, key and roots, and the client's certificate and key."""
    texts = {
        "chain": server.cert_chain_pem,
        "key": server.private_key_pem,
        "roots": server.trust_bundle_pem,
        "client_chain": client.cert_chain_pem,
        "client_key": client.private_key_pem,
    }
    files = {name: tmp_path / f"{name}.pem" for name in texts}
    for name, text in texts.items():
        files[name].write_text(text)
    return files


def _client_context(files: dict[str, Path], client: IdentityMaterial) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=client.trust_bundle_pem)
    context.load_cert_chain(files["client_chain"], files["client_key"])
    return context


def _with_tls(listener: listener_pb2.Listener, files: dict[str, Path]) -> listener_pb2.Listener:
    context = tls_pb2.DownstreamTlsContext()
    context.require_client_certificate.value = True
    common = context.common_tls_context
    common.tls_params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_3
    cert = common.tls_certificates.add()
    cert.certificate_chain.filename = str(files["chain"])
    cert.private_key.filename = str(files["key"])
    common.validation_context.trusted_ca.filename = str(files["roots"])
    out = listener_pb2.Listener()
    out.CopyFrom(listener)
    socket = out.filter_chains[0].transport_socket
    socket.name = "envoy.transport_sockets.tls"
    socket.typed_config.Pack(context)
    return out


def _pki(
    tmp_path: Path,
) -> tuple[IdentityMaterial, IdentityMaterial, dict[str, Path], ssl.SSLContext]:
    """A fresh mesh CA's certificates for SERVER and CLIENT, written out (`_write`), and the
    client's TLS context: (server, client, files, client TLS)."""
    authority = open_ca(tmp_path / "ca")
    server, client = _material(authority, SERVER), _material(authority, CLIENT)
    files = _write(tmp_path, server, client)
    return server, client, files, _client_context(files, client)


# Each XFCC comparison sends a request without the header, and one with a client-supplied one.
SENT: list[tuple[tuple[str, str], ...]] = [
    (),
    (("x-forwarded-client-cert", "By=spiffe://earlier;URI=spiffe://first"),),
]


async def _served_over_tls(dataplane: Dataplane, chain: Any) -> asyncio.Server:
    """Our `chain` served by an `HttpConnection` on a free port, over TLS with the sidecar's
    own certificate."""
    return await asyncio.get_running_loop().create_server(
        lambda: HttpConnection(dataplane, ChainRoutes(chain), None),
        "127.0.0.1",
        0,
        ssl=dataplane.identity.server() if dataplane.identity else None,
    )


async def _upstream_xfcc(
    port: int, headers: Sequence[tuple[str, str]], tls: ssl.SSLContext | None
) -> str | None:
    """The XFCC header the echo upstream received for one GET through `port`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    try:
        lines = ["GET / HTTP/1.1", "host: svc", *(f"{n}: {v}" for n, v in headers)]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(5):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = next(
                int(line.split(":", 1)[1])
                for line in head.split("\r\n")
                if line.lower().startswith("content-length:")
            )
            body = await reader.readexactly(length)
    finally:
        writer.close()
    assert head.startswith("HTTP/1.1 200"), head
    value = json.loads(body)["headers"].get("x-forwarded-client-cert")
    return value if value is None else str(value)


async def test_xfcc_matches_envoy_on_mtls_and_is_removed_on_plaintext(tmp_path: Path) -> None:
    server, client, files, client_tls = _pki(tmp_path)

    upstream = await Upstream("backend").start()
    cluster = static_cluster("backend", upstream.port)
    plain = jwt_listener("plain", free_port(), [])
    tls = _with_tls(jwt_listener("mtls", 0, []), files)
    try:
        with envoy_serving([plain, tls], [cluster], tmp_path / "envoy") as (_e, envoy_ports):
            async with running(cluster, plain) as dataplane:
                dataplane.set_identity(server)
                assert dataplane.config is not None
                chain = dataplane.config.listeners["plain"].chains[0].handler
                ours = await _served_over_tls(dataplane, chain)
                our_tls_port = ours.sockets[0].getsockname()[1]
                try:
                    theirs = [
                        await _upstream_xfcc(envoy_ports["mtls"], h, client_tls) for h in SENT
                    ]
                    mine = [await _upstream_xfcc(our_tls_port, h, client_tls) for h in SENT]
                    plain_theirs = await _upstream_xfcc(envoy_ports["plain"], SENT[1], None)
                    plain_mine = await _upstream_xfcc(
                        plain.address.socket_address.port_value, SENT[1], None
                    )
                finally:
                    ours.close()
    finally:
        await upstream.stop()
    assert mine == theirs
    assert plain_mine is None and plain_theirs is None
    client_der = _leaf_der(client.cert_chain_pem)
    expected = (
        f'By={SERVER.uri};Hash={hashlib.sha256(client_der).hexdigest()};Subject="";URI={CLIENT.uri}'
    )
    assert mine == [expected, "By=spiffe://earlier;URI=spiffe://first," + expected]


def _leaf_der(chain_pem: str) -> bytes:
    return x509.load_pem_x509_certificate(chain_pem.encode()).public_bytes(Encoding.DER)


MODES: dict[str, dict[str, Any]] = {
    "sanitize": {"forward_client_cert_details": "SANITIZE"},
    "forward_only": {"forward_client_cert_details": "FORWARD_ONLY"},
    "always_forward_only": {"forward_client_cert_details": "ALWAYS_FORWARD_ONLY"},
    "sanitize_set": {
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"uri": True, "cert": True},
    },
    "append_bare": {"forward_client_cert_details": "APPEND_FORWARD"},
}


def _listener_with(name: str, port: int, fields: dict[str, Any]) -> listener_pb2.Listener:
    out = jwt_listener(name, port, [])
    network_filter = out.filter_chains[0].filters[0]
    hcm = hcm_pb2.HttpConnectionManager()
    network_filter.typed_config.Unpack(hcm)
    hcm.ClearField("set_current_client_cert_details")
    json_format.ParseDict(fields, hcm)
    network_filter.typed_config.Pack(hcm)
    return out


async def test_every_forwarding_mode_matches_envoy(tmp_path: Path) -> None:
    server, _client, files, client_tls = _pki(tmp_path)
    upstream = await Upstream("backend").start()
    cluster = static_cluster("backend", upstream.port)
    plain = {name: _listener_with(name, free_port(), f) for name, f in MODES.items()}
    tls = {name: _with_tls(_listener_with(f"{name}_tls", 0, f), files) for name, f in MODES.items()}
    mismatches = []
    try:
        envoy_listeners = [*plain.values(), *tls.values()]
        with envoy_serving(envoy_listeners, [cluster], tmp_path / "envoy") as (_e, ports):
            async with running(cluster, *plain.values()) as dataplane:
                dataplane.set_identity(server)
                assert dataplane.config is not None and dataplane.identity is not None
                for name in MODES:
                    chain = dataplane.config.listeners[name].chains[0].handler
                    ours = await _served_over_tls(dataplane, chain)
                    try:
                        our_port = ours.sockets[0].getsockname()[1]
                        our_plain = plain[name].address.socket_address.port_value
                        for headers in SENT:
                            theirs = (
                                await _upstream_xfcc(ports[f"{name}_tls"], headers, client_tls),
                                await _upstream_xfcc(ports[name], headers, None),
                            )
                            mine = (
                                await _upstream_xfcc(our_port, headers, client_tls),
                                await _upstream_xfcc(our_plain, headers, None),
                            )
                            if mine != theirs:
                                mismatches.append((name, headers, theirs, mine))
                    finally:
                        ours.close()
    finally:
        await upstream.stop()
    assert mismatches == [], "\n".join(map(repr, mismatches))
