"""Upstreams that reset, close early, or frame responses by closing the connection."""

from __future__ import annotations

import asyncio
import contextlib

from tests.proxy.server.harness import fronting_server, running, simple
from tests.proxy.server.http_wire import Client, read_request
from tests.proxy.server.protos import free_port, route, static_cluster
from tests.proxy.server.test_retries import retry_policy
from tests.proxy.server.upstreams import response_bytes

TERMINATION = (
    b"upstream connect error or disconnect/reset before headers. reset reason: "
    b"connection termination"
)


async def test_reset_before_headers_is_503_or_retried() -> None:
    seen = [0]

    async def rude_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        seen[0] += 1
        if seen[0] % 2 == 1:
            writer.transport.abort()  # odd requests: no answer at all
            return
        writer.write(response_bytes(200, b"ok"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(rude_first, "127.0.0.1", 0)
    up = server.sockets[0].getsockname()[1]
    port, retrying = free_port(), free_port()
    try:
        resources = (
            static_cluster("a", up),
            simple(port, "a"),
        )
        async with running(*resources):
            client = await Client.connect(port)
            resp = await client.get("/", "svc")
            assert (resp.status, resp.body) == (503, TERMINATION)
            await client.close()
        entry = route("a", retry_policy=retry_policy("reset", 1))
        async with running(static_cluster("a", up), simple(retrying, "a", entry)):
            client = await Client.connect(retrying)
            resp = await client.get("/", "svc")
            assert (resp.status, resp.body) == (200, b"ok")
            await client.close()
    finally:
        server.close()


async def test_reused_connection_closed_by_the_server_is_retried_once_for_free() -> None:
    connections = [0]

    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connections[0] += 1
        await read_request(reader)
        writer.write(response_bytes(200, b"ok"))  # keep-alive promised ...
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError):
            await read_request(reader)  # ... but the next request is dropped unanswered
        writer.transport.abort()

    async with fronting_server(one_per_connection) as (port, _):
        client = await Client.connect(port)
        for _ in range(3):
            resp = await client.get("/", "svc")
            assert (resp.status, resp.body) == (200, b"ok")
        assert connections[0] >= 3
        await client.close()


async def test_close_delimited_response_is_rechunked_for_http11_clients() -> None:
    async def old_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    async with fronting_server(old_server) as (port, _):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert resp.headers.get("transfer-encoding") == "chunked"
        assert resp.body == b"until the end"
        again = await client.get("/", "svc")  # the client connection stays open
        assert again.body == b"until the end"
        await client.close()


async def test_http10_client_without_keep_alive_is_answered_then_closed() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(response_bytes(200, b"ten"))
            await writer.drain()
        writer.close()

    async with fronting_server(plain) as (port, _):
        client = await Client.connect(port)
        await client.send(b"GET / HTTP/1.0\r\nhost: svc\r\n\r\n")
        resp = await client.response()
        assert (resp.status, resp.body) == (200, b"ten")
        assert resp.headers["connection"] == "close"
        assert await client.at_eof()
        await client.close()
