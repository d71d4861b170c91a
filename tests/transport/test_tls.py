"""Mesh mTLS with real sockets on 127.0.0.1, on asyncio and uvloop: PERMISSIVE serves TLS and
plaintext on one port, STRICT refuses what it must, clients check SPIFFE identities, and a
certificate rotation drops nothing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import socket
import ssl
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import uvloop
from cryptography import x509

from gossamer.codec.detect import Detection, Kind
from gossamer.runtime.envoy import EnvoyNotFound, EnvoyProcess, envoy_binary
from gossamer.transport.peek import sniff
from gossamer.transport.svid import peer_identity
from gossamer.transport.tls import (
    CLIENT_ALPN_HTTP1,
    CLIENT_ALPN_TCP,
    IdentityMaterial,
    IdentityMaterialInvalid,
    MeshTls,
    PeerIdentityRejected,
    client_context,
    server_context,
)
from tests.proxy.server.envoy_mtls import (
    INSPECTOR,
    LOOPBACK,
    TLS,
    common_tls,
    hcm,
    http_get,
    mesh_cluster,
    outbound_listener,
    tls_files,
)
from tests.transport.certs import TestCA
from tests.transport.loops import LOOPS, Run

SERVER_ID = "spiffe://cluster.local/ns/default/sa/reviews"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/productpage"
SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"


# --- an inbound server as the sidecar will wire it ----------------------------------------


class Reply(asyncio.Protocol):
    """Answers every chunk with `<security> <peer> <chunk>`."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no asyncio.Transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.prefix = f"mutual_tls {peer_identity(ssl_object)} ".encode()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(self.prefix + data)


class HttpReply(Reply):
    """Answers each HTTP/1.1 request head with 200 and `<security> <peer>` as the body."""

    def __init__(self, prefix: bytes) -> None:
        super().__init__(prefix)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            body = self.prefix.strip()
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n"
            self.transport.write(head.encode() + body)


MESH_ALPN = frozenset(
    {"istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"}
)  # offered by sidecars only: what Istio's inbound chains match as mesh mTLS


def is_mesh_tls(detection: Detection) -> bool:
    return detection.kind is Kind.TLS and not MESH_ALPN.isdisjoint(detection.alpn)


@dataclass
class Inbound:
    """An inbound listener as the sidecar will wire it: accept, sniff the first bytes, then
    hand the socket to the loop with TLS (`connect_accepted_socket(ssl=...)`) or without.
    STRICT closes plaintext. Every task it starts is awaited by `stop`."""

    mesh: MeshTls
    strict: bool
    reply: type[Reply] = Reply
    verdicts: list[Detection] = field(default_factory=list)
    peers: list[str | None] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    transports: list[asyncio.BaseTransport] = field(default_factory=list)

    async def serve(self) -> int:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.tasks.add(asyncio.get_running_loop().create_task(self._accept_loop()))
        return int(self.listener.getsockname()[1])

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self.listener)
            self.tasks.add(loop.create_task(self._connection(sock)))

    async def _connection(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        verdict = await sniff(sock)
        self.verdicts.append(verdict)
        # STRICT terminates every TLS connection; PERMISSIVE only a sidecar's (mesh ALPN), and
        # passes the app's own TLS and plaintext through.
        terminate = verdict.kind is Kind.TLS and (self.strict or is_mesh_tls(verdict))
        if self.strict and not terminate:
            self.refused.append("plaintext")
            sock.close()
            return
        context = self.mesh.server() if terminate else None
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: self.reply(b"none - "),
                sock,
                ssl=context,
                ssl_handshake_timeout=5 if context else None,
            )
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
            sock.close()
            return
        self.transports.append(transport)
        if context is not None:
            self.peers.append(peer_identity(transport.get_extra_info("ssl_object")))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for transport in self.transports:
            transport.close()
        self.listener.close()


async def exchange(
    port: int, ssl_context: ssl.SSLContext | None, payload: bytes = b"ping"
) -> tuple[bytes, asyncio.StreamWriter]:
    """Connect, send `payload`, return the answer (b"" when the server closed) and the writer."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl_context, server_hostname=SNI if ssl_context else None
    )
    writer.write(payload)
    await writer.drain()
    try:
        answer = await reader.read(4096)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    return answer, writer


async def closed(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ssl.SSLError, ConnectionError):
        await writer.wait_closed()


# --- identity material ---------------------------------------------------------------------


def test_material_names_its_spiffe_identity_and_serial(ca: TestCA) -> None:
    material = ca.issue(SERVER_ID)
    assert material.identity == SERVER_ID
    assert material.serial == material.leaf().serial_number
    assert SERVER_ID in repr(MeshTls(material))


def test_bad_material_is_refused_and_a_rotation_to_it_keeps_the_old(ca: TestCA) -> None:
    good, other = ca.issue(SERVER_ID), ca.issue(CLIENT_ID)
    mismatched = IdentityMaterial(good.cert_chain_pem, other.private_key_pem, ca.root_pem)
    with pytest.raises(IdentityMaterialInvalid):
        server_context(mismatched, require_client_cert=True)
    with pytest.raises(IdentityMaterialInvalid):
        server_context(
            IdentityMaterial(good.cert_chain_pem, good.private_key_pem, ""),
            require_client_cert=True,
        )
    mesh = MeshTls(good)
    with pytest.raises(IdentityMaterialInvalid):
        mesh.rotate(mismatched)
    assert (mesh.material, mesh.generation) == (good, 1)


def test_contexts_speak_tls13_only(ca: TestCA) -> None:
    material = ca.issue(SERVER_ID)
    for ctx in (
        server_context(material, require_client_cert=True),
        client_context(material, [SERVER_ID]).ssl_context,
    ):
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_3
        assert ctx.maximum_version is ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode is ssl.CERT_REQUIRED


# --- PERMISSIVE and STRICT ------------------------------------------------------------------


def test_permissive_serves_mtls_and_plaintext_on_one_port(run: Run, ca: TestCA) -> None:
    async def scenario() -> None:
        inbound = Inbound(MeshTls(ca.issue(SERVER_ID)), strict=False)
        port = await inbound.serve()
        client = client_context(ca.issue(CLIENT_ID), [SERVER_ID])
        async with asyncio.timeout(10):
            secure_answer, secure = await exchange(port, client.ssl_context)
            assert client.verify_peer(secure.get_extra_info("ssl_object")) == SERVER_ID
            assert secure.get_extra_info("ssl_object").version() == "TLSv1.3"
            assert secure.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
            # A TCP upstream offers only "istio": no overlap, the handshake goes on without ALPN.
            tcp = MeshTls(ca.issue(CLIENT_ID)).client([SERVER_ID], alpn=CLIENT_ALPN_TCP)
            tcp_answer, tcp_writer = await exchange(port, tcp.ssl_context)
            assert tcp_writer.get_extra_info("ssl_object").selected_alpn_protocol() is None
            await closed(tcp_writer)
            plain_answer, plain = await exchange(port, None, b"GET / HTTP/1.1\r\n\r\n")
            await closed(secure)
            await closed(plain)
            await inbound.stop()
        assert secure_answer == tcp_answer == f"mutual_tls {CLIENT_ID} ping".encode()
        assert plain_answer == b"none - GET / HTTP/1.1\r\n\r\n"
        assert [v.kind for v in inbound.verdicts] == [Kind.TLS, Kind.TLS, Kind.HTTP1]
        assert inbound.verdicts[0].sni == SNI
        assert inbound.verdicts[0].alpn == CLIENT_ALPN_HTTP1

    run(scenario())


def _hello(alpn: list[str] | None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with pytest.raises(ssl.SSLWantReadError):
        ctx.wrap_bio(incoming, outgoing, server_hostname=SNI).do_handshake()
    return outgoing.read()


def test_permissive_passes_the_apps_own_tls_through(run: Run, ca: TestCA) -> None:
    """TLS without a mesh ALPN is the app's (it terminates TLS itself): not ours to end."""
    hello = _hello(["h2", "http/1.1"])

    async def scenario() -> None:
        inbound = Inbound(MeshTls(ca.issue(SERVER_ID)), strict=False)
        port = await inbound.serve()
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(hello)
            answer = await reader.readexactly(len(b"none - ") + len(hello))
            await closed(writer)
            await inbound.stop()
        assert answer == b"none - " + hello
        assert inbound.peers == []
        assert not is_mesh_tls(inbound.verdicts[0])

    run(scenario())


def test_a_logged_material_never_shows_its_key(ca: TestCA) -> None:
    material = ca.issue(SERVER_ID)
    assert "PRIVATE KEY" not in repr(material)
    assert "PRIVATE KEY" not in repr(MeshTls(material))


def _no_cert_client(ca: TestCA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=ca.root_pem)
    return ctx


REFUSAL_REASON = {
    "plaintext": "plaintext",
    "no certificate": "peer did not return a certificate",
    "other CA": "unable to get local issuer certificate",
    "expired": "certificate has expired",
}


@pytest.mark.parametrize("client_kind", sorted(REFUSAL_REASON))
def test_strict_refuses(run: Run, ca: TestCA, client_kind: str) -> None:
    async def scenario() -> None:
        inbound = Inbound(MeshTls(ca.issue(SERVER_ID)), strict=True)
        port = await inbound.serve()
        client: ssl.SSLContext | None
        if client_kind == "plaintext":
            client = None
        elif client_kind == "no certificate":
            client = _no_cert_client(ca)
        elif client_kind == "other CA":
            stranger = TestCA.create("another mesh").issue(CLIENT_ID, trust_bundle_pem=ca.root_pem)
            client = client_context(stranger, [SERVER_ID]).ssl_context
        else:
            long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
            expired = ca.issue(CLIENT_ID, valid_from=long_ago, valid_for=datetime.timedelta(days=1))
            client = client_context(expired, [SERVER_ID]).ssl_context
        async with asyncio.timeout(10):
            answer, writer = await exchange(port, client, b"GET / HTTP/1.1\r\n\r\n")
            await closed(writer)
            await inbound.stop()
        assert answer == b""
        assert inbound.peers == []
        assert len(inbound.refused) == 1
        assert REFUSAL_REASON[client_kind] in inbound.refused[0]

    run(scenario())


def test_client_refuses_a_server_with_an_unexpected_identity(run: Run, ca: TestCA) -> None:
    async def scenario() -> None:
        inbound = Inbound(MeshTls(ca.issue("spiffe://cluster.local/ns/default/sa/impostor")), True)
        port = await inbound.serve()
        client = client_context(ca.issue(CLIENT_ID), [SERVER_ID])
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client.ssl_context, server_hostname=SNI
            )
            with pytest.raises(PeerIdentityRejected) as rejected:
                client.verify_peer(writer.get_extra_info("ssl_object"))
            await closed(writer)
            await inbound.stop()
        assert rejected.value.got == "spiffe://cluster.local/ns/default/sa/impostor"

    run(scenario())


def test_client_refuses_a_server_from_another_ca(run: Run, ca: TestCA) -> None:
    async def scenario() -> None:
        stranger = TestCA.create("another mesh").issue(SERVER_ID)
        inbound = Inbound(MeshTls(stranger), strict=False)
        port = await inbound.serve()
        client = client_context(ca.issue(CLIENT_ID), [SERVER_ID])
        async with asyncio.timeout(10):
            with pytest.raises(ssl.SSLCertVerificationError):
                await exchange(port, client.ssl_context)
            await inbound.stop()

    run(scenario())


# --- rotation ----------------------------------------------------------------------------


def _server_serial(writer: asyncio.StreamWriter) -> int:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return int(x509.load_der_x509_certificate(der).serial_number)


def test_rotation_keeps_open_connections_and_new_ones_get_the_new_cert(
    run: Run, ca: TestCA
) -> None:
    async def scenario() -> None:
        first, second = ca.issue(SERVER_ID), ca.issue(SERVER_ID)
        mesh = MeshTls(first)
        inbound = Inbound(mesh, strict=True)
        port = await inbound.serve()
        client = client_context(ca.issue(CLIENT_ID), [SERVER_ID])
        async with asyncio.timeout(10):
            reader, old = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client.ssl_context, server_hostname=SNI
            )
            old.write(b"before")
            assert await reader.read(4096) == f"mutual_tls {CLIENT_ID} before".encode()
            mesh.rotate(second)
            old.write(b"after")
            assert await reader.read(4096) == f"mutual_tls {CLIENT_ID} after".encode()
            assert _server_serial(old) == first.serial
            answer, new = await exchange(port, client.ssl_context)
            assert answer == f"mutual_tls {CLIENT_ID} ping".encode()
            assert _server_serial(new) == second.serial
            await closed(old)
            await closed(new)
            await inbound.stop()
        assert mesh.generation == 2

    run(scenario())


# --- cost (printed for the report, never asserted) ---------------------------------------


async def _thread_cpu() -> float:
    return time.thread_time()


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_handshake_cost_per_connection(loop_name: str, ca: TestCA) -> None:
    """The server runs on its own thread and loop, so its thread CPU time is the inbound
    sidecar's cost alone: accept, sniff, mTLS handshake, peer identity, one echo, close."""
    count = 200
    server_loop = LOOPS[loop_name]()
    thread = threading.Thread(target=server_loop.run_forever, name="tls-server")
    thread.start()

    def on_server(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, server_loop).result(30)

    inbound = Inbound(MeshTls(ca.issue(SERVER_ID)), strict=True)
    try:
        port = on_server(inbound.serve())
        client = client_context(ca.issue(CLIENT_ID), [SERVER_ID])

        async def connect_many() -> None:
            for _ in range(count):
                answer, writer = await exchange(port, client.ssl_context)
                assert answer.startswith(b"mutual_tls")
                client.verify_peer(writer.get_extra_info("ssl_object"))
                await closed(writer)

        with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
            runner.run(connect_many())  # warm up: first handshakes load code and tables
            wall, cpu = time.perf_counter(), on_server(_thread_cpu())
            runner.run(connect_many())
            wall, cpu = time.perf_counter() - wall, on_server(_thread_cpu()) - cpu
        on_server(inbound.stop())
    finally:
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(10)
        server_loop.close()
    assert len(inbound.peers) == 2 * count
    print(
        f"\n{loop_name}: inbound mTLS server CPU {cpu / count * 1e6:.0f} us per connection "
        f"(accept, sniff, handshake, peer id, echo, close); {wall / count * 1e3:.2f} ms wall "
        "per sequential connection, client included"
    )


def test_a_root_rotation_overlap_lets_old_and_new_certificates_meet(run: Run, ca: TestCA) -> None:
    """During a root rotation the bundle holds both roots: a workload still on the old root
    and one already on the new root accept each other."""
    new_root = TestCA.create("gossamer test root 2")
    bundle = ca.root_pem + new_root.root_pem

    async def scenario() -> None:
        inbound = Inbound(MeshTls(new_root.issue(SERVER_ID, trust_bundle_pem=bundle)), strict=True)
        port = await inbound.serve()
        client = client_context(ca.issue(CLIENT_ID, trust_bundle_pem=bundle), [SERVER_ID])
        async with asyncio.timeout(10):
            answer, writer = await exchange(port, client.ssl_context)
            assert client.verify_peer(writer.get_extra_info("ssl_object")) == SERVER_ID
            await closed(writer)
            await inbound.stop()
        assert answer == f"mutual_tls {CLIENT_ID} ping".encode()

    run(scenario())


# --- Envoy interop: a Gossamer sidecar and an Envoy sidecar agree both ways --------------

ENVOY_ID = "spiffe://cluster.local/ns/default/sa/ratings"


def _envoy_bootstrap(files: dict[str, str], gossamer_port: int) -> dict[str, Any]:
    """Envoy as an Istio sidecar would be: an mTLS inbound chain matched on the mesh ALPN
    (answering with the client's URI SAN in `x-peer`), and a plaintext outbound listener whose
    clusters originate ISTIO_MUTUAL to Gossamer (`/wrong` expects another identity)."""
    answer = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200},
        "response_headers_to_add": [
            {"header": {"key": "x-peer", "value": "%DOWNSTREAM_PEER_URI_SAN%"}}
        ],
    }
    inbound = {
        "name": "inbound",
        "address": LOOPBACK,
        "listener_filters": [{"name": "tls_inspector", "typed_config": {"@type": INSPECTOR}}],
        "filter_chains": [
            {
                "filter_chain_match": {
                    "transport_protocol": "tls",
                    "application_protocols": ["istio-http/1.0", "istio-http/1.1", "istio-h2"],
                },
                "transport_socket": {
                    "name": "tls",
                    "typed_config": {
                        "@type": TLS + "DownstreamTlsContext",
                        "require_client_certificate": True,
                        "common_tls_context": common_tls(files, ["h2", "http/1.1"], []),
                    },
                },
                "filters": [hcm([answer], stat_prefix="interop")],
            }
        ],
    }
    alpn = CLIENT_ALPN_HTTP1
    return {
        "node": {"id": "tls-interop", "cluster": "tls-interop"},
        "admin": {"address": LOOPBACK},
        "static_resources": {
            "listeners": [inbound, outbound_listener([("/wrong", "wrong"), ("/", "gossamer")])],
            "clusters": [
                mesh_cluster("gossamer", gossamer_port, files, [SERVER_ID], alpn=alpn),
                mesh_cluster("wrong", gossamer_port, files, [CLIENT_ID], alpn=alpn),
            ],
        },
    }


def test_gossamer_and_envoy_sidecars_agree_both_ways(ca: TestCA, tmp_path: Path) -> None:
    try:
        envoy_binary()
    except EnvoyNotFound:
        pytest.skip("no Envoy binary")

    async def scenario() -> None:
        inbound = Inbound(MeshTls(ca.issue(SERVER_ID)), strict=True, reply=HttpReply)
        gossamer_port = await inbound.serve()
        files = tls_files(ca.issue(ENVOY_ID), tmp_path / "envoy-certs")
        envoy = EnvoyProcess(_envoy_bootstrap(files, gossamer_port), tmp_path)
        try:
            envoy.start()
            await asyncio.to_thread(envoy.wait_ready)
            _, body = await asyncio.to_thread(envoy.admin_get, "/listeners?format=json")
            ports = {
                status["name"]: int(status["local_address"]["socket_address"]["port_value"])
                for status in json.loads(body)["listener_statuses"]
            }
            async with asyncio.timeout(20):
                # Gossamer client -> Envoy inbound (mesh ALPN picks Envoy's mTLS chain).
                client = MeshTls(ca.issue(CLIENT_ID)).client([ENVOY_ID])
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", ports["inbound"], ssl=client.ssl_context, server_hostname=SNI
                )
                ssl_object = writer.get_extra_info("ssl_object")
                assert client.verify_peer(ssl_object) == ENVOY_ID
                assert ssl_object.selected_alpn_protocol() == "http/1.1"
                assert ssl_object.version() == "TLSv1.3"
                writer.write(b"GET / HTTP/1.1\r\nhost: ratings\r\n\r\n")
                head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
                await closed(writer)
                assert head.startswith("http/1.1 200")
                assert f"x-peer: {CLIENT_ID}\r\n" in head
                # Envoy client (ISTIO_MUTUAL cluster) -> Gossamer inbound (STRICT).
                assert await asyncio.to_thread(http_get, ports["outbound"], "/") == (
                    200,
                    f"mutual_tls {ENVOY_ID}",
                )
                # Envoy refuses Gossamer when its SAN is not the one expected.
                status, _ = await asyncio.to_thread(http_get, ports["outbound"], "/wrong")
                assert status == 503
        finally:
            envoy.stop()
            await inbound.stop()
        assert inbound.verdicts[0].alpn == CLIENT_ALPN_HTTP1
        assert inbound.verdicts[0].sni == SNI
        assert is_mesh_tls(inbound.verdicts[0])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
