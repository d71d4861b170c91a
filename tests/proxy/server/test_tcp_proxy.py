"""TcpChain listeners: bytes both ways to the cluster's endpoint, half-close honoured."""

from __future__ import annotations

import asyncio

from gossamer.waits import bounded
from tests.proxy.server.harness import running
from tests.proxy.server.protos import free_port, static_cluster, tcp_listener


async def _upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read()  # until the client half-closes
    writer.write(data.upper())
    await writer.drain()
    writer.close()


async def test_bytes_flow_both_ways_and_half_close_is_passed_on() -> None:
    server = await asyncio.start_server(_upper_echo, "127.0.0.1", 0)
    port = free_port()
    try:
        cluster = static_cluster("db", server.sockets[0].getsockname()[1])
        async with running(cluster, tcp_listener("db", port, "db")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            payload = b"select 1;" * 50000
            writer.write(payload)
            writer.write_eof()
            got = await bounded(reader.read(), 10)
            assert got == payload.upper()
            writer.close()
    finally:
        server.close()


async def test_unreachable_upstream_closes_the_downstream() -> None:
    port, dead = free_port(), free_port()
    async with running(static_cluster("db", dead), tcp_listener("db", port, "db")):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await bounded(reader.read(), 5) == b""
        writer.close()
