"""In-process upstream HTTP/1.1 servers for proxy tests, with counters a test can assert on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.proxy.server.http_wire import Message, read_request

Handler = Callable[["Upstream", Message, asyncio.StreamWriter], Awaitable[None]]


def response_bytes(
    status: int, body: bytes, headers: dict[str, str] | None = None, reason: str = "OK"
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def echo(up: Upstream, req: Message, writer: asyncio.StreamWriter) -> None:
    """200 with a JSON body naming the upstream, the request's target, host and body."""
    body = json.dumps(
        {
            "upstream": up.name,
            "method": req.method,
            "path": req.target,
            "host": req.headers.get("host"),
            "body": req.body.decode("latin-1"),
            "headers": req.headers,
            "trailers": req.trailers,
        }
    ).encode()
    writer.write(response_bytes(200, body, {"x-upstream": up.name, "server": "upstream"}))


@dataclass
class Upstream:
    """Serves `handler` on `host` with keep-alive; `fail_first` requests get 503 first."""

    name: str = "up"
    handler: Handler = echo
    fail_first: int = 0
    fail_status: int = 503
    delay: float = 0.0
    connections: int = 0
    requests: list[Message] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    host: str = "127.0.0.1"

    async def wait_for_requests(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def start(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while True:
                try:
                    req = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(req)
                self.arrived.set()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if len(self.requests) <= self.fail_first:
                    writer.write(response_bytes(self.fail_status, b"failing", reason="Fail"))
                else:
                    await self.handler(self, req, writer)
                await writer.drain()
                if req.headers.get("connection", "").lower() == "close":
                    return
        except ConnectionError:
            return
        finally:
            self.writers.discard(writer)
            writer.close()
