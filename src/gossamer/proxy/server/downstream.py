"""One downstream HTTP/1.1 connection: parse requests, answer them in order, keep alive.

Theory of operation:
1. `data_received` feeds the codec; each RequestHead becomes a `Request` with its own body
   channel, queued in arrival order (pipelining). Body events go to the request still receiving.
2. One task per connection (not per request) answers the queue head first: `exchange.handle`.
   Responses therefore leave in request order. Between requests the task waits on a future,
   so a keep-alive request costs a future, not a Task.
3. A codec ProtocolError is answered with its status and `connection: close` once every earlier
   request is answered; nothing after the bad bytes is read.
4. A request head must complete within `head_timeout` of its first byte (slowloris), else 408.
   A connection with no request in flight and no bytes for `idle_timeout` is closed (Envoy's
   downstream idle timeout, 1 h by default): one timer per connection, re-armed lazily.
5. After an upgrade (101), bytes are spliced by `exchange`; this object only forwards them.
The transport is closed here and only here (`close`); errors never escape to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from gossamer.codec.http1 import (
    END_OF_MESSAGE,
    Body,
    EndOfMessage,
    ProtocolError,
    RequestHead,
    RequestParser,
    Upgraded,
)
from gossamer.proxy.authz.gate import PeerFacts, peer_facts
from gossamer.proxy.server import local_reply
from gossamer.proxy.server.channel import ChannelClosed, EventChannel
from gossamer.transport.flow import WriteFlow
from gossamer.transport.nodelay import set_nodelay

if TYPE_CHECKING:
    from gossamer.proxy.server.context import RouteResolver, ServerContext

log = logging.getLogger(__name__)
_MAX_PIPELINED = 32
# Envoy's HCM `delayed_close_timeout` default (the control plane leaves it unset): after
# resetting a response mid-body, Envoy closes the connection only this much later.
DELAYED_CLOSE_TIMEOUT = 1.0


class Request:
    """A request as the exchange sees it: its head and its (streamed) body events."""

    __slots__ = ("answered", "body", "ended", "head", "on_end")

    def __init__(self, head: RequestHead, body: EventChannel) -> None:
        self.head = head
        self.body = body
        self.ended = False  # EndOfMessage seen
        self.answered = False  # a response head was written for it
        # Called once when the request ends after it was handed on (starts the route timeout).
        self.on_end: Callable[[], None] | None = None

    def end(self) -> None:
        self.ended = True
        on_end = self.on_end
        if on_end is not None:
            self.on_end = None
            on_end()


class HttpConnection(WriteFlow, asyncio.Protocol):
    """See the module docstring. `original_dst` is where the client meant to connect."""

    def __init__(
        self,
        ctx: ServerContext,
        resolver: RouteResolver,
        original_dst: tuple[str, int] | None,
    ) -> None:
        self.ctx = ctx
        self.resolver = resolver
        self.original_dst = original_dst
        self.parser = RequestParser(ctx.options.limits)
        self.transport: asyncio.Transport | None = None
        # Kept: asyncio.get_running_loop() is a getpid() system call per call on CPython 3.11.
        self.loop = asyncio.get_running_loop()
        self.peer_ip = ""
        self.closed = False
        # The chain's network RBAC allowed this connection (it decides once per connection).
        self.network_authorized = False
        self._queue: deque[Request] = deque()
        self._receiving: Request | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None  # the idle task waits on it
        self._error: ProtocolError | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        self._init_flow()
        self._read_paused = False
        self._draining = False
        self._delayed_close: asyncio.TimerHandle | None = None
        # After an upgrade: where downstream bytes go (set by the exchange).
        self.splice_to: Callable[[bytes | None], None] | None = None
        self._upgrade_buffer: list[bytes] = []
        self._peer: PeerFacts | None = None
        self.peer_metadata: bytes | None = None  # a client sidecar's, from its first request

    @property
    def peer(self) -> PeerFacts:
        """Who the client is (its SPIFFE id and SNI; NO_PEER without TLS), looked up once per
        connection for RBAC, XFCC and metrics alike."""
        facts = self._peer
        if facts is None:
            facts = self._peer = peer_facts(self.transport)
        return facts

    def __repr__(self) -> str:
        return f"<HttpConnection peer={self.peer_ip} queued={len(self._queue)}>"

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if peer else ""
        set_nodelay(transport)
        self.ctx.connection_opened(self)
        loop = self.loop
        self._last_activity = loop.time()
        self._idle_timer = loop.call_later(self.ctx.options.idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        self._last_activity = self.loop.time()
        if self.splice_to is not None:
            self.splice_to(data)
            return
        if self._error is not None or self.closed:
            return
        if self._upgrade_buffer or (self._receiving is None and self._queue_upgraded()):
            self._upgrade_buffer.append(data)
            return
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            for event in exc.events:  # requests before the fault are answered first (Envoy)
                self._event(event)
            self._protocol_error(exc)
            return
        for event in events:
            self._event(event)
        if not events and self._receiving is None and self._error is None:
            self._arm_head_timer()  # bytes of a head that is not complete yet

    def eof_received(self) -> bool | None:
        if self.splice_to is not None:
            self.splice_to(None)
            return True  # half-close: keep sending the upstream's bytes
        # As Envoy (no HTTP half-close): a client's FIN ends the connection, and requests still
        # in flight are reset upstream (`downstream_cx_destroy_remote_active_rq`).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_head_timer()
        if self._delayed_close is not None:
            self._delayed_close.cancel()
            self._delayed_close = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for request in self._queue:
            if not request.ended:
                request.body.fail(ChannelClosed("downstream connection lost"))
        self._release_drain()
        if self.splice_to is not None:
            self.splice_to(None)
        if self._task is not None:
            self._task.cancel()  # nobody to answer: stop waiting for the upstream
        self.ctx.connection_closed(self)

    # --- used by the exchange -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def wake_writer(self) -> None:
        """Wake a writer waiting in `drain` though the socket is still full: its request timed
        out and it is about to close the connection instead."""
        self._release_drain()

    def close(self) -> None:
        if self._delayed_close is None:
            self._close_transport()

    def close_delayed(self, delay: float = DELAYED_CLOSE_TIMEOUT) -> None:
        """Close `delay` seconds from now, reading and writing nothing meanwhile (Envoy's delayed
        close after a response cut mid-body); `close` calls until then do nothing."""
        if self.closed or self._delayed_close is not None:
            return
        self.pause_reading()
        self._delayed_close = self.loop.call_later(delay, self._delay_over)

    def _delay_over(self) -> None:
        self._delayed_close = None
        self._close_transport()

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def start_draining(self) -> None:
        """Shutdown: an idle connection closes now; a busy one answers what it was asked with
        `connection: close` and then closes (as Envoy's drain does for HTTP/1.1)."""
        self._draining = True
        for request in self._queue:
            request.head.keep_alive = False
        if not self._queue and self.splice_to is None:
            self.close()

    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()

    def take_upgrade_bytes(self) -> bytes:
        """Bytes that arrived after an upgrade request, before the splice was set up."""
        data = b"".join(self._upgrade_buffer)
        self._upgrade_buffer.clear()
        return data

    def upgrade_refused(self) -> None:
        """The upgrade did not happen: nothing after that request can be parsed, so close."""
        self._error = ProtocolError(400, "upgrade refused")

    # --- internals ----------------------------------------------------------------------

    def _queue_upgraded(self) -> bool:
        return bool(self._queue) and self._queue[-1].head.upgrade and self._queue[-1].ended

    def _event(self, event: object) -> None:
        if isinstance(event, RequestHead):
            self._cancel_head_timer()
            request = Request(
                event, EventChannel(self.pause_reading, self.resume_reading, self.loop)
            )
            self._queue.append(request)
            self._receiving = request
            if self._draining:
                event.keep_alive = False
            if len(self._queue) > _MAX_PIPELINED:
                self.pause_reading()
            if self._task is None:
                self._task = self.loop.create_task(self._serve())
            else:
                self._wake_up()
        elif isinstance(event, Body):
            if self._receiving is not None:
                self._receiving.body.put(event, len(event.data))
        elif isinstance(event, EndOfMessage):
            receiving = self._receiving
            if receiving is not None:
                self._receiving = None
                receiving.body.put(event)
                receiving.end()
        elif isinstance(event, Upgraded):
            upgrading = self._receiving
            if upgrading is not None:
                self._receiving = None
                upgrading.body.put(END_OF_MESSAGE)
                upgrading.end()
            if event.rest:
                self._upgrade_buffer.append(event.rest)
            else:
                self._upgrade_buffer.append(b"")

    def _protocol_error(self, exc: ProtocolError) -> None:
        self._error = exc
        self._cancel_head_timer()
        if self._receiving is not None:
            self._receiving.body.fail(ChannelClosed(f"bad request: {exc}"))
            self._receiving = None
        self.pause_reading()
        if not self._queue:
            self._answer_error()

    def _answer_error(self) -> None:
        error = self._error
        status = getattr(error, "status", 400)
        self.write(local_reply.local_reply(int(status), b"", close=True))
        self.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.ctx.options.head_timeout, self._head_timeout
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _idle_check(self) -> None:
        loop = self.loop
        idle_for = loop.time() - self._last_activity
        limit = self.ctx.options.idle_timeout
        busy = bool(self._queue) or self.splice_to is not None
        if not busy and idle_for >= limit:
            self._idle_timer = None
            self.close()
        else:
            wait = limit if busy else limit - idle_for
            self._idle_timer = loop.call_later(wait, self._idle_check)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._receiving is None and not self.closed and self._error is None:
            self._error = ProtocolError(408, "request head timeout")
            if not self._queue:
                self._answer_error()

    def _wake_up(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _serve(self) -> None:
        from gossamer.proxy.server.exchange import handle

        loop = self.loop
        queue = self._queue
        try:
            while not self.closed:
                if not queue:
                    self._wake = loop.create_future()
                    await self._wake
                    self._wake = None
                    continue
                request = queue[0]
                outcome = handle(self, request)
                keep_alive = outcome if isinstance(outcome, bool) else await outcome
                request.body.release()
                queue.popleft()
                if not keep_alive:
                    if self._error is not None and not request.answered:
                        self._answer_error()
                    self.close()
                    return
                if self._read_paused and len(queue) <= _MAX_PIPELINED:
                    self.resume_reading()
                if not queue and self._error is not None:
                    self._answer_error()
                    return
        except asyncio.CancelledError:
            self.close()
        except Exception:
            log.exception("request handling failed; closing the connection")
            self.close()
