"""DestinationRule SIMPLE/MUTUAL TLS origination from files, and the TCP proxy over mesh mTLS,
through a real Dataplane on uvloop to real TLS servers."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from gossamer.proxy.dataplane import Dataplane
from gossamer.waits import bounded
from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, tcp_listener
from tests.proxy.upstream.tls.world import (
    ALPN_TCP,
    MeshCa,
    TlsUpstream,
    assignment,
    eds_cluster,
    file_context,
    mesh_context,
    mesh_sni,
    spiffe,
    tls_socket,
    uri_matchers,
)


def dns_matcher(name: str) -> common_pb2.SubjectAltNameMatcher:
    return common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.DNS,
        matcher=string_pb2.StringMatcher(exact=name),
    )


def to_external(
    port: int, upstream: int, context: tls_pb2.UpstreamTlsContext
) -> AbstractAsyncContextManager[Dataplane]:
    """A sidecar whose HTTP listener on `port` sends host `external` to its one endpoint on
    `upstream`, originating TLS with `context`."""
    cluster = eds_cluster("external", transport=tls_socket(context))
    return running(cluster, assignment("external", upstream), simple(port, "external"))


def to_mysql(
    port: int, upstream: int, context: tls_pb2.UpstreamTlsContext
) -> AbstractAsyncContextManager[Dataplane]:
    """A sidecar whose TCP listener on `port` proxies to mysql's one endpoint on `upstream`,
    over TLS with `context`."""
    cluster = eds_cluster("mysql", transport=tls_socket(context))
    return running(cluster, assignment("mysql", upstream), tcp_listener("db", port, "mysql"))


async def get_once(port: int) -> tuple[int, dict[str, str], bytes]:
    client = await Client.connect(port)
    try:
        resp = await client.get("/", "external")
        return resp.status, resp.headers, resp.body
    finally:
        await client.close()


async def test_simple_tls_with_a_file_ca_verifies_the_server_and_sends_the_sni(
    ca: MeshCa, tmp_path: Path
) -> None:
    server = await TlsUpstream(ca.material("external"), mutual=False).start()
    _, _, root = ca.files("unused", tmp_path / "certs")
    port = free_port()
    context = file_context(
        sni="api.example.com", ca_file=root, sans=uri_matchers([spiffe("external")])
    )
    try:
        async with to_external(port, server.port, context) as dp:
            status, headers, _ = await get_once(port)
            assert (status, headers["x-peer"]) == (200, "None")  # SIMPLE: no client certificate
            assert server.seen[0].sni == "api.example.com"
            assert server.seen[0].alpn is None  # the DR sets no ALPN for HTTP/1.1
            assert dp.backends["external"].stats.counters()["ssl.handshake"] == 1
    finally:
        await server.stop()


async def test_simple_tls_refuses_a_server_whose_sans_do_not_match(
    ca: MeshCa, tmp_path: Path
) -> None:
    server = await TlsUpstream(ca.material("external"), mutual=False).start()
    _, _, root = ca.files("unused", tmp_path / "certs")
    port = free_port()
    context = file_context(ca_file=root, sans=[dns_matcher("api.example.com")])
    try:
        async with to_external(port, server.port, context) as dp:
            assert (await get_once(port))[0] == 503
            counters = dp.backends["external"].stats.counters()
            assert (counters["ssl.fail_verify_san"], counters["upstream_cx_connect_fail"]) == (1, 1)
            assert server.requests == 0
    finally:
        await server.stop()


async def test_simple_tls_refuses_a_server_its_ca_file_does_not_vouch_for(
    ca: MeshCa, tmp_path: Path
) -> None:
    stranger = MeshCa.open(tmp_path / "elsewhere")
    server = await TlsUpstream(stranger.material("external"), mutual=False).start()
    _, _, root = ca.files("unused", tmp_path / "certs")
    port = free_port()
    try:
        async with to_external(port, server.port, file_context(ca_file=root)) as dp:
            assert (await get_once(port))[0] == 503
            assert dp.backends["external"].stats.counters()["ssl.fail_verify_error"] == 1
    finally:
        await server.stop()


async def test_mutual_tls_presents_the_certificate_files(ca: MeshCa, tmp_path: Path) -> None:
    server = await TlsUpstream(ca.material("external"), mutual=True).start()
    chain, key, root = ca.files("egress-client", tmp_path / "certs")
    port = free_port()
    context = file_context(ca_file=root, cert_files=(chain, key))
    try:
        async with to_external(port, server.port, context):
            status, headers, _ = await get_once(port)
            assert (status, headers["x-peer"]) == (200, spiffe("egress-client"))
    finally:
        await server.stop()


async def test_tcp_proxy_over_mesh_mtls(ca: MeshCa) -> None:
    db = await TlsUpstream(ca.material("mysql"), raw_echo=True).start()
    port = free_port()
    context = mesh_context(
        mesh_sni(3306, "mysql.default.svc.cluster.local"), [spiffe("mysql")], ALPN_TCP
    )
    try:
        async with to_mysql(port, db.port, context) as dp:
            dp.set_identity(ca.material("productpage"))
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"select 1;")
            expected = f"[{spiffe('productpage')}]select 1;".encode()
            got = b""
            async with asyncio.timeout(10):
                while len(got) < len(expected):
                    got += await reader.read(65536)
            assert got == expected
            writer.close()
            assert db.seen[0].alpn is None  # "istio" only: an ssl server offering http/1.1
            assert db.seen[0].sni == mesh_sni(3306, "mysql.default.svc.cluster.local")
    finally:
        await db.stop()


async def test_tcp_proxy_closes_the_client_when_the_server_identity_is_wrong(ca: MeshCa) -> None:
    db = await TlsUpstream(ca.material("not-mysql"), raw_echo=True).start()
    port = free_port()
    context = mesh_context("", [spiffe("mysql")], ALPN_TCP)
    try:
        async with to_mysql(port, db.port, context) as dp:
            dp.set_identity(ca.material("productpage"))
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"select 1;")
            assert await bounded(reader.read(), 5) == b""
            writer.close()
            counters = dp.backends["mysql"].stats.counters()
            assert (counters["ssl.fail_verify_san"], counters["upstream_cx_connect_fail"]) == (1, 1)
            assert db.received == b""  # refused before a byte of the client's went out
    finally:
        await db.stop()
