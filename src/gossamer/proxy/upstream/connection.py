"""One upstream HTTP/1.1 connection as an asyncio Protocol: bytes to its parser, events to the
exchange holding it (`sink`), or opaque bytes to `raw` after an upgrade.

The connection decides nothing about reuse; its owner (upstream/pool.py) does. It only tells the
owner when it is gone (`forget`) and the breaker exactly once (`end_connection`). Opening the
socket and the TLS handshake are upstream/connect.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from gossamer.codec.http1 import Limits, ResponseParser
from gossamer.proxy.authz.gate import PeerFacts, peer_facts
from gossamer.proxy.upstream.connect import TlsCounters
from gossamer.proxy.upstream.tls_context import UpstreamTls
from gossamer.transport.flow import WriteFlow
from gossamer.transport.nodelay import set_nodelay
from gossamer.transport.tls_sessions import remember_session

PoolKey = tuple[str, str, int]  # (backend name, endpoint host, port)


class ConnectionBreaker(Protocol):
    def try_connection(self) -> bool: ...

    def end_connection(self) -> None: ...

    def try_pending(self) -> bool: ...

    def end_pending(self) -> None: ...

    @property
    def stats(self) -> TlsCounters: ...


class ResponseSink(Protocol):
    """The exchange currently using a connection."""

    def on_events(self, events: Sequence[object]) -> None: ...

    def on_lost(self, exc: Exception | None) -> None: ...


class ConnectionOwner(Protocol):
    """The pool a connection belongs to: told when the connection is gone."""

    def forget(self, conn: UpstreamConnection) -> None: ...


class UpstreamConnection(WriteFlow, asyncio.Protocol):
    """One upstream connection: feeds bytes to its ResponseParser and the events to `sink`."""

    __slots__ = (
        "_peer",
        "_read_paused",
        "_session_unsaved",
        "breaker",
        "closed",
        "idle_deadline",
        "key",
        "loop",
        "metadata_sent",
        "parser",
        "peer_metadata",
        "pool",
        "raw",
        "requests",
        "sink",
        "tls",
        "transport",
    )

    def __init__(
        self,
        pool: ConnectionOwner,
        key: PoolKey,
        breaker: ConnectionBreaker,
        limits: Limits,
        tls: UpstreamTls | None = None,
    ) -> None:
        self.pool = pool
        self.key = key
        self.tls = tls  # what the connection was opened with (None: plaintext)
        self.breaker = breaker
        self.parser = ResponseParser(limits)
        self.transport: asyncio.Transport | None = None
        # Kept: asyncio.get_running_loop() is a getpid() system call per call on CPython 3.11.
        self.loop = asyncio.get_running_loop()
        self.sink: ResponseSink | None = None
        # After an upgrade (101) the bytes are opaque: they go to `raw` (None for EOF).
        self.raw: Callable[[bytes | None], None] | None = None
        self.closed = False
        self.requests = 0
        self._init_flow()
        self._read_paused = False
        self.idle_deadline = 0.0  # loop time after which an idle connection is closed
        # A TLS server's session ticket precedes its first response byte: keep it then.
        self._session_unsaved = tls is not None
        self._peer: PeerFacts | None = None
        # Metadata exchange, once per connection: ours went out with its first request; the
        # server sidecar's came back on its first response (telemetry/peer_metadata.py).
        self.metadata_sent = False
        self.peer_metadata: bytes | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("busy" if self.sink else "idle")
        return f"<UpstreamConnection {self.key[0]} {self.key[1]}:{self.key[2]} {state}>"

    @property
    def peer(self) -> PeerFacts:
        """The server's identity (NO_PEER over plaintext), looked up once, for metrics."""
        facts = self._peer
        if facts is None:
            facts = self._peer = peer_facts(self.transport)
        return facts

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        if self._session_unsaved:
            self._session_unsaved = False
            remember_session(self.transport)
        if self.raw is not None:
            self.raw(data)
            return
        sink = self.sink
        if sink is None:
            self.close()  # stray bytes on an idle connection: framing lost
            return
        try:
            events = self.parser.feed(data)
        except Exception as exc:  # a malformed response: the exchange answers 503
            self.sink = None
            self.close()
            sink.on_lost(exc)
            return
        if events:
            sink.on_events(events)

    def eof_received(self) -> bool | None:
        if self.raw is not None:
            self.raw(None)
            return True  # half-close: the other direction may still flow
        sink = self.sink
        if sink is not None:
            try:
                events = self.parser.feed_eof()
            except Exception as exc:
                self.sink = None
                sink.on_lost(exc)
                return None
            if events:
                sink.on_events(events)
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.breaker.end_connection()
        self.pool.forget(self)
        self._release_drain()
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.on_lost(exc)
        raw, self.raw = self.raw, None
        if raw is not None:
            raw(None)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        # Called at every release: only a paused transport is asked (the call is not free).
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
