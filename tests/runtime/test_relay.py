"""The xDS relay: every connection to it is copied, both ways, to its target (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from gossamer.runtime.relay import TcpRelay
from gossamer.waits import bounded

WAIT = 5.0  # seconds any single step may take at most


@dataclass
class Target:
    """A server that echoes each chunk, then on EOF answers `got <n> bytes` and closes."""

    port: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        total = 0
        try:
            while chunk := await reader.read(65536):
                total += len(chunk)
                writer.write(chunk)
                await writer.drain()
            writer.write(f"got {total} bytes".encode())
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.ended.set()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    server.close()
    await server.wait_closed()


@pytest.fixture
async def relay(target: Target) -> AsyncIterator[TcpRelay]:
    relay = TcpRelay("127.0.0.1", 0, "127.0.0.1", target.port)
    await relay.start()
    yield relay
    await relay.stop()


async def test_start_on_port_zero_reports_the_bound_port(relay: TcpRelay) -> None:
    assert relay.port != 0


async def test_bytes_flow_both_ways(relay: TcpRelay) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    payload = bytes(range(256)) * 1024  # larger than one read
    writer.write(payload)
    await writer.drain()
    echoed = await bounded(reader.readexactly(len(payload)), WAIT)
    assert echoed == payload
    writer.close()


async def test_half_close_reaches_the_target_and_its_answer_still_comes_back(
    relay: TcpRelay, target: Target
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    writer.write(b"hello")
    writer.write_eof()
    answer = await bounded(reader.read(), WAIT)  # to EOF
    assert answer == b"hello" + b"got 5 bytes"
    writer.close()


async def test_an_unreachable_target_closes_the_client() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    relay = TcpRelay("127.0.0.1", 0, "127.0.0.1", closed_port)
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await bounded(reader.read(), WAIT) == b""
        writer.close()
    finally:
        await relay.stop()


async def test_stop_ends_live_connections_at_both_ends_and_refuses_new_ones(
    relay: TcpRelay, target: Target
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    writer.write(b"ping")
    assert await bounded(reader.readexactly(4), WAIT) == b"ping"
    await bounded(relay.stop(), WAIT)
    try:
        rest = await bounded(reader.read(), WAIT)
    except ConnectionResetError:
        rest = b""
    assert rest == b""  # the client sees its connection end
    await bounded(target.ended.wait(), WAIT)  # and so does the target
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", relay.port)
