"""The downstream side of HTTP/1.1: bytes from a client in, request events out.

Rules beyond the shared core (see `http1_core`):
1. The request target counts toward the head limit (431, as Envoy). Methods are the ones Envoy
   accepts (llhttp also knows QUERY and M-SEARCH: 400); CONNECT is 501 (not supported yet).
2. `Expect: 100-continue` is reported only for HTTP/1.1 (RFC 9110 §10.1.1: ignore it on 1.0).
3. An upgrade request yields its head, then `Upgraded(rest)`; no `EndOfMessage` comes between,
   and the parser takes no more input.
4. `Upgrade: h2c` is not an upgrade: as Envoy, the `Upgrade` and `HTTP2-Settings` headers are
   dropped and the request goes on as HTTP/1.1. llhttp has already skipped its body by then, so
   a fresh llhttp parser is primed with a silent head of the same framing and reads it.
"""

from __future__ import annotations

from httptools import HttpRequestParser

from gossamer.codec.http1_core import ParserCore, Phase
from gossamer.codec.http1_events import Event, Limits, RequestHead, Upgraded

_H2C_ONLY = frozenset({b"upgrade", b"http2-settings"})
# Envoy's HTTP/1 method list (what its codec accepts; measured against Envoy 1.40).
_METHODS = frozenset(
    b"ACL BIND CHECKOUT CONNECT COPY DELETE GET HEAD LINK LOCK MERGE MKACTIVITY MKCALENDAR MKCOL "
    b"MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH PURGE PUT REBIND REPORT SEARCH SOURCE "
    b"SUBSCRIBE TRACE UNBIND UNLINK UNLOCK UNSUBSCRIBE".split()
)


class RequestParser(ParserCore):
    """Parses a stream of (possibly pipelined) requests; `feed` returns what each call completed:
    `RequestHead`, `Body`* , `EndOfMessage` per request, or `RequestHead`, `Upgraded`.

    Raises `ProtocolError` (400, 414, 431, 501) for a request that must be answered with that
    status and the connection closed; the parser is then finished. Bytes after a request that
    closes the connection are ignored.
    """

    __slots__ = ("_h2c_framing", "_silent", "_target", "_upgrading")

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__(limits or Limits())
        self._target = b""
        self._upgrading = False
        self._h2c_framing: bytes | None = None  # the framing header of an h2c request's body
        self._silent = False  # parsing the primer head of rule 4: no events
        self._parser = self._new_parser(HttpRequestParser, self)

    def __repr__(self) -> str:
        return f"<RequestParser {self._phase.value}>"

    def feed(self, data: bytes) -> list[Event]:
        """Parse `data`; returns the events it completed, in order (possibly none)."""
        return self._run(data)

    def _start_line_bytes(self) -> int:
        return len(self._target)

    # --- httptools callbacks ---------------------------------------------------------------

    def on_url(self, fragment: bytes) -> None:
        target = self._target + fragment
        self._target = target
        self._head_bytes += len(fragment)
        if len(target) > self._max_bytes:
            raise self._error(431, "request target too long")

    def on_headers_complete(self) -> None:
        if self._silent:
            self._silent = False
            self._target = b""
            self._take_headers()
            return
        self._check_head()
        parser = self._parser
        method: bytes = parser.get_method()
        if method not in _METHODS:
            raise self._error(400, "unsupported method")
        if method == b"CONNECT":
            raise self._error(501, "CONNECT is not supported")
        version = self._version()
        target = self._target
        self._target = b""
        self._keep_alive = keep_alive = parser.should_keep_alive()
        if self._framing:
            head = self._framed_head(method, target, version, keep_alive)
        else:  # hot: no body, no upgrade, no expectation
            self._upgrading = False
            head = RequestHead(method, target, version, self._take_headers(), keep_alive)
        self._events.append(head)

    def _framed_head(
        self, method: bytes, target: bytes, version: bytes, keep_alive: bool
    ) -> RequestHead:
        """The head of a request with framing, upgrade, expectation or connection headers."""
        chunked, content_length = self._body_framing()
        framing = self._framing
        expect = framing.get(b"expect")
        expect_continue = (
            expect is not None and version == b"1.1" and expect.lower() == b"100-continue"
        )
        upgrade: bool = self._parser.should_upgrade()
        self._upgrading = upgrade
        if upgrade and framing.get(b"upgrade", b"").lower() == b"h2c":
            upgrade = False  # rule 4
            self._h2c_framing = (
                b"transfer-encoding: chunked"
                if chunked
                else b"content-length: %d" % (content_length or 0)
            )
            self._items[:] = [item for item in self._items if item[0] not in _H2C_ONLY]
        return RequestHead(
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

    def on_message_complete(self) -> None:
        if not self._upgrading:
            self._end_message()

    def _after_upgrade(self, rest: bytes) -> bytes | None:
        framing = self._h2c_framing
        if framing is not None:  # rule 4: the body and what follows are HTTP/1.1
            self._h2c_framing = None
            self._upgrading = False
            self._parser = self._new_parser(HttpRequestParser, self)
            self._silent = True
            self._in_head = True
            self._parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
            return rest
        self._phase = Phase.UPGRADED
        self._events.append(Upgraded(rest))
        return None
