"""HTTP/1.1 codec values: limits, message heads, body events and the codec's two error kinds.

Heads are mutable (slotted) because routing rewrites `target` and filters edit `headers` in place;
the body events are frozen and `END_OF_MESSAGE` (no trailers) is shared, so the hot path allocates
one small object per body piece and nothing per message end.
"""

from __future__ import annotations

from dataclasses import dataclass

from gossamer.codec.headers import Headers


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-message defences; the defaults are Envoy's (`max_request_headers_kb` 60,
    `max_headers_count` 100). Both apply to heads and to trailers."""

    max_head_bytes: int = 60 * 1024
    max_headers: int = 100


# What Envoy 1.40 accepts from upstreams by default (measured: an 80 KiB response head passes,
# 81 KiB does not; 150 headers do not).
UPSTREAM_LIMITS = Limits(max_head_bytes=80 * 1024)


@dataclass(slots=True)
class RequestHead:
    """A parsed (or to-be-written) request line and headers.

    `target` is the request-target exactly as sent (origin-form, absolute-form or `*`);
    `version` is b"1.1" or b"1.0". `keep_alive` is the connection's fate after this exchange as
    the client asked it (HTTP/1.1 default, HTTP/1.0 only with `Connection: keep-alive`).
    `upgrade` is True when the request asks to switch protocols (`Connection: upgrade` plus
    `Upgrade`); an `Upgraded` event then follows instead of a body. `content_length` is None when
    the header is absent; `chunked` when `Transfer-Encoding: chunked` frames the body.
    """

    method: bytes
    target: bytes
    version: bytes
    headers: Headers
    keep_alive: bool = True
    upgrade: bool = False
    expect_continue: bool = False
    chunked: bool = False
    content_length: int | None = None


@dataclass(slots=True)
class ResponseHead:
    """A parsed (or to-be-written) status line and headers. `reason` may be empty (the writer
    then uses the standard phrase). A 1xx head is informational: no body or end follows it."""

    status: int
    reason: bytes
    version: bytes
    headers: Headers
    keep_alive: bool = True
    chunked: bool = False
    content_length: int | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """A piece of a message body, as it arrived (chunk framing already removed)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The message is complete; `trailers` only after a chunked body that carried some."""

    trailers: Headers | None = None


@dataclass(frozen=True, slots=True)
class Upgraded:
    """The connection switched protocols after the preceding head: `rest` (possibly empty) and
    every later byte belong to the new protocol and are not HTTP/1.1 any more."""

    rest: bytes


Event = RequestHead | ResponseHead | Body | EndOfMessage | Upgraded

END_OF_MESSAGE = EndOfMessage(None)


class ProtocolError(Exception):
    """The peer sent something we will not parse. `status` is the answer owed downstream
    (400, 431, 501 for a request; 502 for a malformed upstream response). The parser that
    raised it is finished: the connection must be answered (if downstream) and closed.
    `events` holds what the failing `feed` completed before the fault."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        # Events the same `feed` completed before the fault, in order: handle them first.
        self.events: list[Event] = []

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class LocalProtocolError(RuntimeError):
    """We misused the codec (fed a parser after it failed, upgraded or was closed)."""
