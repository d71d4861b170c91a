"""The pool never hands a connection to a use with another TLS setting: plaintext to TLS, TLS to
plaintext, or TLS verified against other SANs (real sockets, real TLS)."""

from __future__ import annotations

import asyncio

import pytest

from gossamer.proxy.upstream import compile_cluster
from gossamer.proxy.upstream.breaker import CircuitBreaker
from gossamer.proxy.upstream.cluster import Thresholds
from gossamer.proxy.upstream.connect import ConnectFailure
from gossamer.proxy.upstream.connection import UpstreamConnection
from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.proxy.upstream.pool import ConnectionPool
from gossamer.proxy.upstream.stats import ClusterStats
from gossamer.proxy.upstream.tls_context import UpstreamTls
from gossamer.transport.tls import MeshTls
from tests.proxy.server.upstreams import Upstream
from tests.proxy.upstream.tls.world import (
    MeshCa,
    TlsUpstream,
    eds_cluster,
    mesh_context,
    spiffe,
    tls_socket,
)


def mesh_tls(*sans: str) -> UpstreamTls:
    config = compile_cluster(eds_cluster("c", transport=tls_socket(mesh_context("", sans))))
    assert config.transport is not None and config.transport.default is not None
    return config.transport.default


async def roundtrip(conn: UpstreamConnection) -> None:
    done = asyncio.Event()

    class Sink:
        def on_events(self, events: object) -> None:
            done.set()

        def on_lost(self, exc: Exception | None) -> None:
            done.set()

    conn.sink = Sink()
    conn.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    async with asyncio.timeout(5):
        await done.wait()
    await asyncio.sleep(0.01)  # the rest of the response (a short body) is read too


async def test_a_plaintext_connection_never_serves_a_tls_endpoint(ca: MeshCa) -> None:
    plain = await Upstream("plain").start()
    stats = ClusterStats()
    cb = CircuitBreaker(Thresholds(), stats)
    mesh = MeshTls(ca.material("productpage"))
    pool = ConnectionPool(identity=lambda: mesh)
    try:
        endpoint = Endpoint("127.0.0.1", plain.port)
        conn, _ = await pool.acquire("c", endpoint, cb, 2.0)
        await roundtrip(conn)
        pool.release(conn, True)
        assert pool.take_idle("c", endpoint.using(mesh_tls(spiffe("reviews")))) is None
        assert conn.closed or conn.transport is None or conn.transport.is_closing()
        with pytest.raises(ConnectFailure):  # a TLS use dials TLS: no plain HTTP goes out
            await pool.acquire("c", endpoint.using(mesh_tls(spiffe("reviews"))), cb, 0.3)
        assert len(plain.requests) == 1
    finally:
        pool.close()
        await plain.stop()


async def test_tls_connections_are_reused_only_for_the_same_setting(ca: MeshCa) -> None:
    server = await TlsUpstream(ca.material("reviews")).start()
    cb = CircuitBreaker(Thresholds(), ClusterStats())
    mesh = MeshTls(ca.material("productpage"))
    pool = ConnectionPool(identity=lambda: mesh)
    wide = mesh_tls(spiffe("reviews"), spiffe("reviews-v2"))
    try:
        endpoint = Endpoint("127.0.0.1", server.port).using(wide)
        conn, _ = await pool.acquire("c", endpoint, cb, 2.0)
        await roundtrip(conn)
        pool.release(conn, True)
        same = Endpoint("127.0.0.1", server.port).using(
            mesh_tls(spiffe("reviews"), spiffe("reviews-v2"))
        )
        assert pool.take_idle("c", same) is conn  # an equal setting (a re-push) reuses it
        pool.release(conn, True)
        assert pool.take_idle("c", Endpoint("127.0.0.1", server.port)) is None  # plaintext
        assert len(server.seen) == 1
        mesh.rotate(ca.material("productpage"))  # a rotation alone retires nothing
        _, reused = await pool.acquire("c", endpoint, cb, 2.0)
        assert not reused  # the plaintext take closed the first
        await server.wait_seen(2)
        assert server.seen[1].serial == mesh.material.serial
    finally:
        pool.close()
        await server.stop()


async def test_a_server_answering_a_client_hello_in_plaintext_is_an_ssl_connection_error(
    ca: MeshCa,
) -> None:
    async def http_only(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http_only, "127.0.0.1", 0)
    stats = ClusterStats()
    mesh = MeshTls(ca.material("productpage"))
    pool = ConnectionPool(identity=lambda: mesh)
    try:
        endpoint = Endpoint("127.0.0.1", server.sockets[0].getsockname()[1])
        with pytest.raises(ConnectFailure):
            await pool.acquire(
                "c", endpoint.using(mesh_tls()), CircuitBreaker(Thresholds(), stats), 2.0
            )
        assert (stats.ssl_connection_error, stats.ssl_handshake, stats.cx_active) == (1, 0, 0)
    finally:
        pool.close()
        server.close()
