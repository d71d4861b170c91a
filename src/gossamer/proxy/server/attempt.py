"""One upstream try: send the request head and body on a pooled connection, await the head.

The request body is read from the downstream channel once; the first `REPLAY_LIMIT` bytes are
kept so a retry can send them again (Envoy buffers for retries the same way, and gives up on
retrying when the body outgrows its buffer)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from gossamer.codec.http1 import Body, EndOfMessage, ResponseHead
from gossamer.proxy.server import wire
from gossamer.proxy.server.channel import ChannelClosed, EventChannel
from gossamer.proxy.upstream.connection import UpstreamConnection

if TYPE_CHECKING:
    from gossamer.codec.headers import Headers
    from gossamer.proxy.server.downstream import HttpConnection, Request
    from gossamer.proxy.server.route_timer import RouteTimer
    from gossamer.proxy.upstream.endpoints import Endpoint

REPLAY_LIMIT = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class UpstreamReset(Exception):
    """The upstream connection closed or sent garbage; `received` if any response byte came."""

    def __init__(self, received: bool) -> None:
        super().__init__("upstream reset")
        self.received = received


class UpstreamTimeout(Exception):
    """A per-try timeout before the response head, or the route timeout (head or body)."""


class UpstreamCall:
    """The ResponseSink of one exchange on one upstream connection."""

    __slots__ = ("conn", "events", "received", "timed_out")

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        self.events = EventChannel(conn.pause_reading, conn.resume_reading, conn.loop)
        self.received = False
        self.timed_out = False
        conn.sink = self

    def on_events(self, events: Sequence[object]) -> None:
        self.received = True
        put = self.events.put
        for event in events:
            put(event, len(event.data) if isinstance(event, Body) else 0)

    def on_lost(self, exc: Exception | None) -> None:
        self.events.fail(UpstreamReset(self.received))

    def time_out(self) -> None:
        self.timed_out = True
        self.events.fail(UpstreamTimeout())


class RequestBody:
    """The downstream body as upstream tries see it: streamed once, replayable if small."""

    __slots__ = ("chunked", "done", "failed", "kept", "kept_size", "replayable", "trailers")

    def __init__(self, chunked: bool) -> None:
        self.chunked = chunked
        self.kept: list[bytes] = []
        self.kept_size = 0
        self.replayable = True
        self.done = False  # the whole body was read from downstream
        self.failed = False  # downstream went away mid-body
        self.trailers: Headers | None = None

    def frame(self, data: bytes) -> bytes:
        return wire.chunk(data) if self.chunked else data

    def end_bytes(self) -> bytes:
        return wire.last_chunk(self.trailers) if self.chunked else b""

    def keep(self, data: bytes) -> None:
        if self.replayable:
            self.kept_size += len(data)
            if self.kept_size > REPLAY_LIMIT:
                self.replayable = False
                self.kept.clear()
            else:
                self.kept.append(data)

    def replay(self) -> bytes:
        """Everything already sent, framed again (only when `done` and `replayable`)."""
        out = [self.frame(d) for d in self.kept if d]
        out.append(self.end_bytes())
        return b"".join(out)


def ready_body(request: Request, body: RequestBody) -> tuple[bytes, bool]:
    """(framed bytes the downstream already sent, whether the body is complete): written
    together with the request head, one syscall for the common bodiless request."""
    channel = request.body
    out: list[bytes] = []
    while channel.ready():
        event = channel.get_nowait()
        if isinstance(event, Body):
            if event.data:
                body.keep(event.data)
                out.append(body.frame(event.data))
        elif isinstance(event, EndOfMessage):
            body.trailers = event.trailers
            body.done = True
            out.append(body.end_bytes())
            return b"".join(out), True
    return b"".join(out), False


async def pump_body(request: Request, body: RequestBody, conn: UpstreamConnection) -> None:
    """Stream the rest of the downstream body upstream, at the upstream's pace."""
    channel: EventChannel = request.body
    try:
        while True:
            event = await channel.get()
            if isinstance(event, Body):
                if event.data:
                    body.keep(event.data)
                    conn.write(body.frame(event.data))
                    await conn.drain()
            elif isinstance(event, EndOfMessage):
                body.trailers = event.trailers
                body.done = True
                conn.write(body.end_bytes())
                return
    except ChannelClosed:
        body.failed = True
        conn.close()


def is_final_head(event: object) -> TypeGuard[ResponseHead]:
    return isinstance(event, ResponseHead) and (event.status >= 200 or event.status == 101)


async def await_head(
    call: UpstreamCall, downstream: HttpConnection, relay_continue: bool, first: object = None
) -> ResponseHead:
    """The final response head; 100 Continue is relayed downstream once when the client asked
    (RFC 9110 §10.1.1), other 1xx are dropped. Raises UpstreamReset. `first`: an event the
    caller took already (it awaits the first event itself: most first heads are final)."""
    continued = False
    event = first
    while True:
        if event is None:
            event = await call.events.get()
        if isinstance(event, ResponseHead):
            if event.status == 101 or event.status >= 200:
                return event
            if event.status == 100 and relay_continue and not continued:
                continued = True
                downstream.write(CONTINUE)
        event = None


def cancel_quietly(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()


def cluster_key(backend: Any) -> str:
    """The pool's name for a backend's connections."""
    return str(backend.config.name)


async def acquire(
    pool: Any, backend: Any, endpoint: Endpoint, timer: RouteTimer | None
) -> tuple[Any, bool]:
    """A pooled connection; the route timeout covers waiting as a pending request too (Envoy),
    including a timeout that only starts while waiting (the request body ends meanwhile)."""
    async with asyncio.timeout_at(timer.when if timer is not None else None) as scope:
        if timer is not None:
            if timer.expired:
                raise TimeoutError
            timer.scope = scope
        try:
            config = backend.config
            upstream, reused = await pool.acquire(
                cluster_key(backend),
                endpoint,
                backend.breaker,
                config.connect_timeout,
                config.source_address,
            )
        finally:
            if timer is not None:
                timer.scope = None
    return upstream, reused
