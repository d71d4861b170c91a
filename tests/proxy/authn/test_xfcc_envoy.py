"""x-forwarded-client-cert on an mTLS connection, compared with a real Envoy.

Both planes get the translator's inbound connection manager (APPEND_FORWARD; subject, DNS and
URI details, as Istio's sidecar inbound). Envoy terminates TLS with a static
DownstreamTlsContext from files; our chain is served over TLS by an `HttpConnection` on a
server we start with the same certificate (the sidecar's own inbound TLS path is built
elsewhere). A client with a mesh certificate sends requests with and without an XFCC header;
the upstream must receive the same value from both, which names our identity (`By`), the
client certificate's SHA-256 (`Hash`) and the client's SPIFFE id (`URI`). On plaintext both
remove a client-supplied XFCC header."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from gossamer.control.ca import SpiffeId, open_ca
from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.proxy.server.context import ChainRoutes
from gossamer.proxy.server.downstream import HttpConnection
from gossamer.transport.tls import IdentityMaterial
from tests.ports import free_port
from tests.proxy.authn.parity import jwt_listener
from tests.proxy.routing.static_envoy import NEEDS_ENVOY
from tests.proxy.server.harness import running
from tests.proxy.server.protos import static_cluster
from tests.proxy.server.rbac_listeners import envoy_serving
from tests.proxy.server.upstreams import Upstream

pytestmark = NEEDS_ENVOY
SERVER = SpiffeId("foo", "server")
CLIENT = SpiffeId("foo", "client")


def _material(authority: object, identity: SpiffeId) -> IdentityMaterial:
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity)  # type: ignore[attr-defined]
    return IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )


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
    authority = open_ca(tmp_path / "ca")
    server, client = _material(authority, SERVER), _material(authority, CLIENT)
    files = {"chain": tmp_path / "chain.pem", "key": tmp_path / "key.pem"}
    files["roots"] = tmp_path / "roots.pem"
    files["chain"].write_text(server.cert_chain_pem)
    files["key"].write_text(server.private_key_pem)
    files["roots"].write_text(server.trust_bundle_pem)
    files["client_chain"] = tmp_path / "client.pem"
    files["client_key"] = tmp_path / "client-key.pem"
    files["client_chain"].write_text(client.cert_chain_pem)
    files["client_key"].write_text(client.private_key_pem)
    client_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_tls.check_hostname = False
    client_tls.load_verify_locations(cadata=client.trust_bundle_pem)
    client_tls.load_cert_chain(files["client_chain"], files["client_key"])

    upstream = await Upstream("backend").start()
    cluster = static_cluster("backend", upstream.port)
    plain = jwt_listener("plain", free_port(), [])
    tls = _with_tls(jwt_listener("mtls", 0, []), files)
    sent = [(), (("x-forwarded-client-cert", "By=spiffe://earlier;URI=spiffe://first"),)]
    try:
        with envoy_serving([plain, tls], [cluster], tmp_path / "envoy") as (_e, envoy_ports):
            async with running(cluster, plain) as dataplane:
                dataplane.set_identity(server)
                assert dataplane.config is not None
                chain = dataplane.config.listeners["plain"].chains[0].handler
                ours = await asyncio.get_running_loop().create_server(
                    lambda: HttpConnection(dataplane, ChainRoutes(chain), None),  # type: ignore[arg-type]
                    "127.0.0.1",
                    0,
                    ssl=dataplane.identity.server() if dataplane.identity else None,
                )
                our_tls_port = ours.sockets[0].getsockname()[1]
                try:
                    theirs = [
                        await _upstream_xfcc(envoy_ports["mtls"], h, client_tls) for h in sent
                    ]
                    mine = [await _upstream_xfcc(our_tls_port, h, client_tls) for h in sent]
                    plain_theirs = await _upstream_xfcc(envoy_ports["plain"], sent[1], None)
                    plain_mine = await _upstream_xfcc(
                        plain.address.socket_address.port_value, sent[1], None
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
