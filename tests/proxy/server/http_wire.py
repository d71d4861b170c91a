"""A deliberately small HTTP/1.1 reader for tests (independent of gossamer.codec)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Message:
    """A request or response as read off the wire; header names lowercase, last value wins
    in `headers`, every value in `all_headers`."""

    start: list[str]
    headers: dict[str, str]
    all_headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.start[1])

    @property
    def method(self) -> str:
        return self.start[0]

    @property
    def target(self) -> str:
        return self.start[1]


async def read_head(reader: asyncio.StreamReader) -> Message:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    start = lines[0].split(" ", 2)
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            pairs.append((name.strip().lower(), value.strip()))
    return Message(start, dict(pairs), pairs)


async def read_body(reader: asyncio.StreamReader, msg: Message, *, until_eof: bool) -> None:
    if msg.headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while True:
                    line = await reader.readuntil(b"\r\n")
                    if line == b"\r\n":
                        return
                    name, _, value = line.decode().partition(":")
                    msg.trailers[name.strip().lower()] = value.strip()
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            msg.chunks.append(data)
            msg.body += data
    elif "content-length" in msg.headers:
        msg.body = await reader.readexactly(int(msg.headers["content-length"]))
    elif until_eof:
        msg.body = await reader.read()


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> Message:
    """The next response; 1xx heads are returned as they come (the caller reads again)."""
    msg = await read_head(reader)
    if head or msg.status in (204, 304) or 100 <= msg.status < 200:
        return msg
    await read_body(reader, msg, until_eof=True)
    return msg


async def read_request(reader: asyncio.StreamReader) -> Message:
    msg = await read_head(reader)
    await read_body(reader, msg, until_eof=False)
    return msg


class Client:
    """One downstream connection to the proxy."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> Client:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def get(self, path: str, host: str, extra: str = "") -> Message:
        await self.send(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}\r\n".encode())
        return await self.response()

    async def response(self, *, head: bool = False, within: float = 10.0) -> Message:
        async with asyncio.timeout(within):
            return await read_response(self.reader, head=head)

    async def at_eof(self, within: float = 5.0) -> bool:
        """True when the proxy closed the connection (after any bytes still queued)."""
        async with asyncio.timeout(within):
            while await self.reader.read(65536):
                pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
