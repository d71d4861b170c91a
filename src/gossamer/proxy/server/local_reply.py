"""Responses the proxy answers itself (Envoy's local replies), with Envoy's body texts."""

from __future__ import annotations

import time
from email.utils import formatdate

from gossamer.codec.headers import Headers
from gossamer.proxy.server import wire

NO_HEALTHY_UPSTREAM = b"no healthy upstream"
UPSTREAM_TIMEOUT = b"upstream request timeout"
FAULT_ABORT = b"fault filter abort"
_RESET_PREFIX = b"upstream connect error or disconnect/reset before headers. reset reason: "
OVERFLOW = _RESET_PREFIX + b"overflow"
CONNECT_FAILURE = _RESET_PREFIX + b"connection failure"
CONNECTION_TERMINATION = _RESET_PREFIX + b"connection termination"


def overloaded() -> Headers:
    """Envoy marks breaker overflows with `x-envoy-overloaded: true`."""
    return Headers([(b"x-envoy-overloaded", b"true")])


def local_reply(
    status: int,
    body: bytes,
    *,
    close: bool = False,
    head_only: bool = False,
    headers: Headers | None = None,
    extra_lines: bytes = b"",
) -> bytes:
    """A complete response. `headers` (e.g. location, route response_headers_to_add) go first;
    Envoy's `content-type: text/plain` is set when there is a body. `extra_lines`: header lines
    already framed, last (the metadata exchange's)."""
    out = headers.copy() if headers is not None else Headers()
    if body:
        out.set(b"content-length", str(len(body)).encode())
        if out.get(b"content-type") is None:
            out.add(b"content-type", b"text/plain")
    else:
        out.set(b"content-length", b"0")
    out.set(b"date", http_date())
    out.set(b"server", wire.SERVER)
    if close:
        out.set(b"connection", b"close")
    head = wire.response_head(status, out, None, extra_lines)
    return head if head_only or not body else head + body


class _DateCache:
    """The Date header value, formatted at most once per second (local replies are hot too)."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.value = formatdate(second, usegmt=True).encode()
        return self.value


http_date = _DateCache().now
