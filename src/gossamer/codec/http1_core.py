"""What the request and response parsers share: header collection, limits, trailers, framing
checks, and the feed loop that turns httptools' exceptions into `ProtocolError`.

Theory of operation. httptools (llhttp) calls back into the parser object as bytes are fed;
callbacks append events to a list that `feed` hands back. llhttp is strict by default (no bare
LF, no obs-fold, no CL+TE, no duplicate Content-Length, token-only header names, no CTL in
values); on top of it:

1. Header names are lowercased once; values lose trailing whitespace (llhttp keeps it).
2. Head size (target or reason + names + values, Envoy's accounting) and header count are checked
   once the head is complete; sizes are only summed in feeds big enough to matter. Bytes of a
   head still incomplete at the end of a feed are counted too (and those of trailers), so one
   endless header line cannot grow memory: httptools accumulates a header until it ends.
3. Transfer-Encoding other than exactly `chunked` is answered 501, as Envoy does. llhttp's own
   Transfer-Encoding leniency switch is turned on so that every such value reaches this one
   check instead of some failing inside llhttp with 400 and others being accepted
   (`gzip, chunked`).
4. Headers after the last chunk are trailers, reported with `EndOfMessage`.
5. After a message that closes the connection, further bytes are ignored (RFC 9112 §9.6).
6. Any other parse error is final: the parser refuses further input. Events completed before
   the fault ride on `ProtocolError.events` (Envoy answers pipelined requests that preceded a
   malformed one before it answers 400).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade

from gossamer.codec.headers import Headers
from gossamer.codec.http1_events import (
    END_OF_MESSAGE,
    Body,
    EndOfMessage,
    Event,
    Limits,
    LocalProtocolError,
    ProtocolError,
)

# Headers whose values decide framing or connection fate; repeated ones are joined with ",".
_FRAMING = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
)
_VERSIONS = {"1.1": b"1.1", "1.0": b"1.0"}


class Phase(Enum):
    OPEN = "open"
    CLOSED = "closed"  # a message without keep-alive completed: later bytes are ignored
    UPGRADED = "upgraded"  # later bytes are another protocol's
    FAILED = "failed"  # a ProtocolError was raised


class ParserCore:
    """Callbacks and feed loop shared by `RequestParser` and `ResponseParser`.

    Subclasses set `_parser` (an httptools parser with `self` as protocol) and implement
    `on_headers_complete`, `on_message_complete` and `_after_upgrade`.
    """

    __slots__ = (
        "_counting",
        "_events",
        "_framing",
        "_fresh_head",
        "_head_bytes",
        "_in_head",
        "_items",
        "_keep_alive",
        "_max_bytes",
        "_max_headers",
        "_parser",
        "_phase",
        "_raw_head",
        "_trailer_bytes",
        "_trailers",
    )

    # Response parsers report every peer error as 502: the status owed to the downstream.
    _UPSTREAM = False

    def __init__(self, limits: Limits) -> None:
        self._max_bytes = limits.max_head_bytes
        self._max_headers = limits.max_headers
        self._parser: Any = None
        self._events: list[Event] = []
        self._items: list[tuple[bytes, bytes]] = []
        self._framing: dict[bytes, bytes] = {}
        self._head_bytes = 0  # start line + names + values of the head, while `_counting`
        # A head can only outgrow the limit in a feed that, with the bytes of the head before
        # it, is larger than the limit; only such feeds pay for per-header counting.
        self._counting = False
        self._in_head = True  # between messages or inside a head
        self._raw_head = 0  # bytes fed while this head stayed incomplete across feeds
        self._fresh_head = False  # this head began inside the current feed
        self._trailers: Headers | None = None
        self._trailer_bytes = 0
        self._keep_alive = True
        self._phase = Phase.OPEN

    @staticmethod
    def _new_parser(kind: Any, protocol: object) -> Any:
        parser = kind(protocol)
        parser.set_dangerous_leniencies(lenient_transfer_encoding=True)  # rule 3
        return parser

    def _error(self, status: int, reason: str) -> ProtocolError:
        self._phase = Phase.FAILED
        return ProtocolError(502 if self._UPSTREAM else status, reason)

    # --- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            self._add_trailer(name, value)
            return
        lname = name.lower()
        value = value.rstrip(b" \t")
        self._items.append((lname, value))
        if self._counting:
            self._head_bytes += len(name) + len(value)
        if lname in _FRAMING:
            framing = self._framing
            seen = framing.get(lname)
            framing[lname] = value if seen is None else seen + b"," + value

    def on_body(self, data: bytes) -> None:
        self._events.append(Body(data))

    def _add_trailer(self, name: bytes, value: bytes) -> None:
        if self._trailers is None:
            self._trailers = Headers()
        self._trailers.add(name.lower(), value.rstrip(b" \t"))
        self._trailer_bytes += len(name) + len(value)
        if self._trailer_bytes > self._max_bytes or len(self._trailers) > self._max_headers:
            raise self._error(431, "trailers too large")

    # --- helpers for subclasses ------------------------------------------------------------

    def _start_line_bytes(self) -> int:
        """Bytes of the target (or reason) parsed so far for the current head."""
        raise NotImplementedError

    def _count_from_here(self) -> None:
        """Turn per-header counting on for this feed, catching up on the head so far."""
        self._counting = True
        self._head_bytes = self._start_line_bytes() + sum(
            len(name) + len(value) for name, value in self._items
        )

    def _check_head(self) -> None:
        if self._counting and self._head_bytes > self._max_bytes:
            raise self._error(431, "headers too large")
        if len(self._items) > self._max_headers:
            raise self._error(431, "too many headers")

    def _version(self) -> bytes:
        version = _VERSIONS.get(self._parser.get_http_version())
        if version is None:
            raise self._error(400, "unsupported HTTP version")
        return version

    def _body_framing(self) -> tuple[bool, int | None]:
        """(chunked, content_length) of the head just parsed; llhttp already refused CL + TE,
        duplicate or malformed Content-Length."""
        framing = self._framing
        if not framing:
            return False, None
        te = framing.get(b"transfer-encoding")
        if te is not None and te.lower() != b"chunked":
            raise self._error(501, "unsupported transfer-encoding")
        length = framing.get(b"content-length")
        return te is not None, None if length is None else int(length)

    def _take_headers(self) -> Headers:
        """The head's headers; resets per-head state for the body that follows."""
        items = self._items
        self._items = []
        if self._framing:
            self._framing = {}
        self._head_bytes = 0
        self._in_head = False
        return Headers.adopt(items)

    def _end_message(self) -> None:
        trailers = self._trailers
        if trailers is None:
            self._events.append(END_OF_MESSAGE)
        else:
            self._events.append(EndOfMessage(trailers))
            self._trailers = None
            self._trailer_bytes = 0
        self._next_head()
        if not self._keep_alive:
            self._phase = Phase.CLOSED

    def _next_head(self) -> None:
        self._in_head = True
        self._raw_head = 0
        self._fresh_head = True

    def _after_upgrade(self, rest: bytes) -> bytes | None:
        """llhttp paused after an upgrading head; return the bytes to keep parsing as HTTP/1.1,
        or None once `rest` has been handed over as `Upgraded`."""
        raise NotImplementedError

    # --- the feed loop ---------------------------------------------------------------------

    def _run(self, data: bytes) -> list[Event]:
        phase = self._phase
        if phase is not Phase.OPEN:
            if phase is Phase.CLOSED:
                return []
            raise LocalProtocolError(f"parser is {phase.value}: nothing more can be fed")
        self._fresh_head = False
        if len(data) + self._raw_head > self._max_bytes:
            self._count_from_here()
        elif self._counting:
            self._counting = False
        chunk = data
        try:
            while True:
                try:
                    self._parser.feed_data(chunk)
                    break
                except HttpParserUpgrade as upgrade:
                    more = self._after_upgrade(chunk[upgrade.args[0] :])
                    if more is None or self._phase is not Phase.OPEN:
                        break
                    chunk = more  # `_after_upgrade` may have replaced `_parser`
                except HttpParserCallbackError as exc:
                    self._phase = Phase.FAILED
                    cause = exc.__context__
                    if isinstance(cause, ProtocolError):
                        raise cause from None
                    raise  # our own bug: crash loudly
                except HttpParserError as exc:
                    if self._phase is Phase.CLOSED:
                        break  # rule 5
                    raise self._error(400, str(exc) or "malformed message") from None
        except ProtocolError as exc:
            exc.events = self._events  # what came before the fault is still owed an answer
            self._events = []
            raise
        events = self._events
        if self._phase is Phase.OPEN:
            # Rule 2: a feed that leaves a head incomplete belonged wholly to that head (unless
            # the head began inside it); a feed that yields nothing inside a body was framing,
            # chunk extensions or trailers, which httptools also accumulates.
            if self._in_head:
                if not self._fresh_head:
                    self._raw_head += len(data)
            elif events:
                self._raw_head = 0
            else:
                self._raw_head += len(data)
            if self._raw_head > self._max_bytes:
                too_large = self._error(431, "headers or trailers too large")
                too_large.events = events
                self._events = []
                raise too_large
        self._events = []
        return events
