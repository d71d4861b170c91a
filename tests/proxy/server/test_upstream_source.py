"""Upstream connections bind the cluster's upstream_bind_config source address: the
translator's inbound cluster reaches the app from 127.0.0.6, over HTTP and TCP (real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gossamer.control.translate.clusters import inbound
from gossamer.control.world import ServicePort
from gossamer.waits import bounded
from tests.proxy.server.harness import running
from tests.proxy.server.protos import (
    free_port,
    http_listener,
    proxy_config,
    route,
    routes,
    static_cluster,
    tcp_listener,
)

HTTP_PORT = ServicePort(number=80, name="http", protocol="HTTP")
TCP_PORT = ServicePort(number=5432, name="tcp-db", protocol="TCP")


@asynccontextmanager
async def peer_reporting_app(http: bool) -> AsyncIterator[tuple[int, list[str]]]:
    """An app on 127.0.0.1 that answers each connection with the peer IP it saw."""
    peers: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername")[0])
        peers.append(peer)
        try:
            while True:
                if http:
                    await reader.readuntil(b"\r\n\r\n")
                    body = peer.encode()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
                    writer.write(body)
                else:
                    await reader.read(100)
                    writer.write(peer.encode())
                    writer.write_eof()
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), peers
    finally:
        server.close()


async def http_get(port: int) -> tuple[bytes, bytes]:
    """(status line, body) of GET / through the proxy; a fresh client connection each time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
        head = await bounded(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await bounded(reader.readexactly(length), 5)
        return head.split(b"\r\n")[0], body
    finally:
        writer.close()


async def test_http_upstream_connections_come_from_127_0_0_6() -> None:
    async with peer_reporting_app(http=True) as (app_port, peers):
        cluster = inbound(80, app_port, HTTP_PORT, "127.0.0.1")
        port = free_port()
        table = routes("main", (["*"], [route(cluster.name)]))
        async with running(cluster, http_listener("main", port, table)):
            assert await http_get(port) == (b"HTTP/1.1 200 OK", b"127.0.0.6")
            assert await http_get(port) == (b"HTTP/1.1 200 OK", b"127.0.0.6")
    assert peers == ["127.0.0.6"]  # the pooled connection served both requests


async def test_tcp_upstream_connections_come_from_127_0_0_6() -> None:
    async with peer_reporting_app(http=False) as (app_port, peers):
        cluster = inbound(5432, app_port, TCP_PORT, "127.0.0.1")
        port = free_port()
        async with running(cluster, tcp_listener("db", port, cluster.name)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello")
            assert await bounded(reader.read(), 5) == b"127.0.0.6"
            writer.close()
    assert peers == ["127.0.0.6"]


async def test_a_cluster_gaining_a_source_address_drops_its_idle_connections() -> None:
    async with peer_reporting_app(http=True) as (app_port, peers):
        plain = static_cluster("app", app_port)
        bound = static_cluster("app", app_port)
        bound.upstream_bind_config.source_address.address = "127.0.0.6"
        port = free_port()
        listener = http_listener("main", port, routes("main", (["*"], [route("app")])))
        async with running(plain, listener) as dataplane:
            assert await http_get(port) == (b"HTTP/1.1 200 OK", b"127.0.0.1")
            await dataplane.apply(proxy_config(bound, listener))
            assert await http_get(port) == (b"HTTP/1.1 200 OK", b"127.0.0.6")
    assert peers == ["127.0.0.1", "127.0.0.6"]
