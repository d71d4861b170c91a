"""The downstream side of HTTP/1.1: bytes from a client in, request events out.

Rules beyond the shared core (see `http1_core`):
1. A request target longer than the head limit is 414; CONNECT is 501 (not supported yet).
2. Chunked framing on an HTTP/1.0 request is refused (RFC 9112 §6.1: faulty framing).
3. `Expect: 100-continue` is reported only for HTTP/1.1 (RFC 9110 §10.1.1: ignore it on 1.0).
4. An upgrade request yields its head, then `Upgraded(rest)`; no `EndOfMessage` comes between,
   and the parser takes no more input. `Upgrade: h2c` is not an upgrade: as Envoy, the
   `Upgrade` and `HTTP2-Settings` headers are dropped and the request goes on as HTTP/1.1.
"""

from __future__ import annotations

from httptools import HttpRequestParser

from gossamer.codec.http1_core import ParserCore, Phase
from gossamer.codec.http1_events import Event, Limits, RequestHead, Upgraded

_H2C_ONLY = frozenset({b"upgrade", b"http2-settings"})


class RequestParser(ParserCore):
    """Parses a stream of (possibly pipelined) requests; `feed` returns what each call completed:
    `RequestHead`, `Body`* , `EndOfMessage` per request, or `RequestHead`, `Upgraded`.

    Raises `ProtocolError` (400, 414, 431, 501) for a request that must be answered with that
    status and the connection closed; the parser is then finished. Bytes after a request that
    closes the connection are ignored.
    """

    __slots__ = ("_h2c", "_target", "_upgrading")

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__(limits or Limits())
        self._target = b""
        self._upgrading = False
        self._h2c = False
        self._parser = self._new_parser(HttpRequestParser, self)

    def __repr__(self) -> str:
        return f"<RequestParser {self._phase.value}>"

    def feed(self, data: bytes) -> list[Event]:
        """Parse `data`; returns the events it completed, in order (possibly none)."""
        return self._run(data)

    # --- httptools callbacks ---------------------------------------------------------------

    def on_url(self, fragment: bytes) -> None:
        target = self._target + fragment
        self._target = target
        self._head_bytes += len(fragment)
        if len(target) > self._max_bytes:
            raise self._error(414, "request target too long")

    def on_headers_complete(self) -> None:
        self._check_head()
        parser = self._parser
        method: bytes = parser.get_method()
        version = self._version()
        if method == b"CONNECT":
            raise self._error(501, "CONNECT is not supported")
        chunked, content_length = self._body_framing()
        if chunked and version == b"1.0":
            raise self._error(400, "transfer-encoding on an HTTP/1.0 request")
        framing = self._framing
        expect = framing.get(b"expect")
        expect_continue = (
            expect is not None and version == b"1.1" and expect.lower() == b"100-continue"
        )
        upgrade: bool = parser.should_upgrade()
        if upgrade and framing.get(b"upgrade", b"").lower() == b"h2c":
            if chunked or content_length:
                raise self._error(400, "h2c upgrade request with a body")
            upgrade = False
            self._h2c = True
            self._items[:] = [item for item in self._items if item[0] not in _H2C_ONLY]
        self._keep_alive = keep_alive = parser.should_keep_alive()
        self._upgrading = upgrade
        target = self._target
        self._target = b""
        self._events.append(
            RequestHead(
                method,
                target,
                version,
                self._take_headers(),
                keep_alive,
                upgrade,
                expect_continue,
                chunked,
                content_length,
            )
        )

    def on_message_complete(self) -> None:
        if not self._upgrading:
            self._end_message()

    def _after_upgrade(self, rest: bytes) -> bytes | None:
        if self._h2c:
            self._h2c = False
            return rest  # rule 4: go on parsing what follows as HTTP/1.1
        self._phase = Phase.UPGRADED
        self._events.append(Upgraded(rest))
        return None
