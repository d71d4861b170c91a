"""The upstream side of HTTP/1.1: bytes from a server in, response events out.

Rules beyond the shared core (see `http1_core`):
1. `expect(method)` tells the parser which request the next response answers: a response to
   HEAD has no body whatever its headers say. llhttp cannot be told that, so for HEAD the head
   is cut at its blank line here, fed alone, and a fresh llhttp parser takes what follows.
2. 1xx heads are reported as `ResponseHead`s with no body or end; the final head follows.
   204, 304 and 1xx never have a body (llhttp knows these).
3. A 101 head is followed by `Upgraded(rest)`; the parser takes no more input.
4. A body with neither Content-Length nor chunked framing runs to the connection's end:
   `feed_eof` completes it. EOF anywhere else inside a response is a `ProtocolError`.
5. Every peer error is `ProtocolError(502, ...)`: the status owed downstream.
"""

from __future__ import annotations

from httptools import HttpResponseParser

from gossamer.codec.http1_core import ParserCore, Phase
from gossamer.codec.http1_events import (
    UPSTREAM_LIMITS,
    Event,
    Limits,
    ProtocolError,
    ResponseHead,
    Upgraded,
)

_HEAD_END = b"\r\n\r\n"


class ResponseParser(ParserCore):
    """Parses the responses of one upstream connection, one per request sent.

    Call `expect(method)` before each response whose request was HEAD (other methods need not
    call it). `feed` returns `ResponseHead` (1xx ones too), `Body`*, `EndOfMessage`, or after
    a 101 `Upgraded`. `feed_eof` ends a close-delimited body. Raises `ProtocolError(502)`.
    Without `limits`, Envoy's upstream ones (`UPSTREAM_LIMITS`: 80 KiB heads, 100 headers).
    """

    __slots__ = (
        "_begun",
        "_close_delimited",
        "_head_only",
        "_informational",
        "_pending",
        "_reason",
        "_stale",
    )

    _UPSTREAM = True

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__(limits or UPSTREAM_LIMITS)
        self._reason = b""
        self._head_only = False
        self._pending = b""  # head-only mode: bytes of a head not complete yet
        self._begun = False  # some bytes of the current response arrived
        self._informational = False
        self._close_delimited = False
        self._stale = False  # this llhttp parser saw a HEAD response's head: retire it
        self._parser = self._new_parser(HttpResponseParser, self)

    def __repr__(self) -> str:
        return f"<ResponseParser {self._phase.value}>"

    def expect(self, method: bytes) -> None:
        """The next response answers a `method` request (HEAD: no body)."""
        self._head_only = method == b"HEAD"

    def feed(self, data: bytes) -> list[Event]:
        """Parse `data`; returns the events it completed, in order (possibly none)."""
        if self._head_only:
            return self._feed_head_only(data)
        return self._run(data)

    def feed_eof(self) -> list[Event]:
        """The upstream closed its side: ends a close-delimited body, else raises if a response
        was cut short. Returns [] when the connection closed between responses."""
        phase = self._phase
        if phase is Phase.CLOSED or phase is Phase.UPGRADED:
            return []
        if phase is Phase.FAILED:
            return []
        if self._in_head:
            if not self._begun and not self._pending:
                self._phase = Phase.CLOSED
                return []
            raise self._error(502, "upstream closed before the response head was complete")
        if not self._close_delimited:
            raise self._error(502, "upstream closed in the middle of the response body")
        self._keep_alive = False
        self._end_message()
        events = self._events
        self._events = []
        return events

    def _feed_head_only(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        try:
            return self._cut_heads(data, events)
        except ProtocolError as exc:
            exc.events = events + exc.events
            raise

    def _cut_heads(self, data: bytes, events: list[Event]) -> list[Event]:
        """Rule 1: feed each head alone until the final one, then hand over to a fresh parser."""
        buffer = self._pending + data if self._pending else data
        while self._head_only:
            end = buffer.find(_HEAD_END)
            if end < 0:
                if len(buffer) > self._max_bytes:
                    raise self._error(502, "response head too large")
                self._pending = buffer
                return events
            events += self._run(buffer[: end + 4])
            buffer = buffer[end + 4 :]
        # The final head is out; that llhttp parser still waits for a body that will not come.
        self._pending = b""
        self._parser = self._new_parser(HttpResponseParser, self)
        self._stale = False
        if buffer:
            events += self._run(buffer)
        return events

    def _start_line_bytes(self) -> int:
        return len(self._reason)

    # --- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._begun = True

    def on_status(self, fragment: bytes) -> None:
        self._reason += fragment
        self._head_bytes += len(fragment)
        if len(self._reason) > self._max_bytes:
            raise self._error(502, "reason phrase too long")

    def on_headers_complete(self) -> None:
        self._check_head()
        parser = self._parser
        status: int = parser.get_status_code()
        version = self._version()
        chunked, content_length = self._body_framing()
        reason = self._reason
        self._reason = b""
        informational = status < 200
        head_only = self._head_only and not informational
        if informational and status == 101 and self._head_only:
            raise self._error(502, "101 in answer to HEAD")
        # For HEAD llhttp thinks a body follows, so its keep-alive verdict is not the one.
        keep_alive = self._persistent(version) if head_only else parser.should_keep_alive()
        self._keep_alive = keep_alive
        self._informational = informational
        self._close_delimited = not (
            informational or chunked or content_length is not None or status in (204, 304)
        )
        self._events.append(
            ResponseHead(
                status, reason, version, self._take_headers(), keep_alive, chunked, content_length
            )
        )
        if head_only:
            self._head_only = False
            self._stale = True
            self._end_message()

    def on_message_complete(self) -> None:
        if self._stale:
            return  # a HEAD response with an empty body by its headers: already ended
        if self._informational:
            self._informational = False
            if self._parser.should_upgrade():
                return  # rule 3: Upgraded follows
            self._next_head()  # rule 2: no end for a 1xx
        else:
            self._end_message()
        self._begun = False

    def _after_upgrade(self, rest: bytes) -> None:
        self._phase = Phase.UPGRADED
        self._events.append(Upgraded(rest))

    def _end_message(self) -> None:
        super()._end_message()
        self._begun = False

    def _persistent(self, version: bytes) -> bool:
        """Keep-alive from version and Connection alone (RFC 9112 §9.3)."""
        tokens = {
            token.strip().lower() for token in self._framing.get(b"connection", b"").split(b",")
        }
        if version == b"1.1":
            return b"close" not in tokens
        return b"keep-alive" in tokens
