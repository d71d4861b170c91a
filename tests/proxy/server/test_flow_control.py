"""Back-pressure: a slow reader on one side stops the proxy reading the other side, so large
bodies flow at the slowest peer's pace instead of piling up in the proxy."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tests.proxy.server.harness import fronting_server
from tests.proxy.server.http_wire import Client, read_head

BIG = 64 * 1024 * 1024


@dataclass
class Firehose:
    """An upstream that answers any request with `head`, then `size` bytes of `fill` in 1 MiB
    blocks as fast as it may write them; `finished` once all are written."""

    head: bytes
    size: int
    fill: bytes
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        self.writers.append(writer)
        writer.write(self.head)
        block = self.fill * (1024 * 1024)
        for _ in range(self.size // len(block)):
            writer.write(block)
            await writer.drain()
        self.finished.set()


async def read_up_to(client: Client, size: int) -> int:
    """How many bytes the client reads until it has `size` (60 s at most)."""
    received = 0
    async with asyncio.timeout(60):
        while received < size:
            received += len(await client.reader.read(1 << 20))
    return received


async def test_slow_client_pauses_the_upstream() -> None:
    hose = Firehose(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % BIG, BIG, b"x")
    async with fronting_server(hose.serve) as (port, _):
        client = await Client.connect(port)
        await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        await asyncio.sleep(1.0)  # the client reads nothing meanwhile
        assert not hose.finished.is_set()  # the upstream is held back ...
        assert hose.writers[0].transport.get_write_buffer_size() > 0
        head = await read_head(client.reader)
        assert head.headers["content-length"] == str(BIG)
        received = await read_up_to(client, BIG)
        assert received == BIG  # ... and everything arrives once the client reads
        await client.close()


async def test_slow_upstream_pauses_the_client() -> None:
    reading = asyncio.Event()
    total = [0]

    async def sluggish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reading.wait()
        while total[0] < BIG:
            data = await reader.read(1 << 20)
            if not data:
                break
            total[0] += len(data)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()

    async with fronting_server(sluggish) as (port, _):
        client = await Client.connect(port)
        client.writer.write(b"POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: %d\r\n\r\n" % BIG)
        block = b"y" * (1024 * 1024)
        sent = 0
        try:
            async with asyncio.timeout(1.0):
                while sent < BIG:
                    client.writer.write(block)
                    sent += len(block)
                    await client.writer.drain()
        except TimeoutError:
            pass
        assert sent < BIG // 2  # the proxy stopped taking bytes the upstream does not read
        reading.set()
        async with asyncio.timeout(60):
            while sent < BIG:
                client.writer.write(block)
                sent += len(block)
                await client.writer.drain()
            resp = await client.response()
        assert (resp.status, total[0]) == (200, BIG)
        await client.close()


async def test_upgraded_connection_has_back_pressure_too() -> None:
    size = 32 * 1024 * 1024
    switching = (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )
    hose = Firehose(switching, size, b"z")
    async with fronting_server(hose.serve) as (port, _):
        client = await Client.connect(port)
        await client.send(
            b"GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        )
        head = await read_head(client.reader)
        assert head.status == 101
        await asyncio.sleep(1.0)
        assert not hose.finished.is_set()
        assert hose.writers[0].transport.get_write_buffer_size() > 0
        received = await read_up_to(client, size)
        assert received == size
        await client.close()
