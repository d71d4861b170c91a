"""HTTP/1.1 bytes to write: heads exactly as given, chunk framing, and Envoy's hop-by-hop strip.

The writers never add or drop a header: framing and connection headers are the caller's choice.
Values are trusted: the parser refused CR, LF and NUL in what it read, and configured headers are
checked when the configuration is compiled.
"""

from __future__ import annotations

from http import HTTPStatus

from gossamer.codec.headers import Headers
from gossamer.codec.http1_events import RequestHead, ResponseHead

_REASONS: dict[int, bytes] = {status.value: status.phrase.encode() for status in HTTPStatus}
_STATUS_LINES: dict[tuple[bytes, int], bytes] = {}

# RFC 9110 §7.6.1 plus the legacy ones Envoy also removes; `te` is handled apart (see below).
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"te",
    }
)


def reason_phrase(status: int) -> bytes:
    """The standard phrase for `status` (b"Unknown" for unregistered codes, as Envoy writes)."""
    return _REASONS.get(status, b"Unknown")


def request_head_bytes(head: RequestHead) -> bytes:
    """`METHOD target HTTP/x.y` and the headers in order; the target is written as given."""
    parts = [head.method, b" ", head.target, b" HTTP/", head.version, b"\r\n"]
    for name, value in head.headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head_bytes(head: ResponseHead) -> bytes:
    """Status line and headers in order; an empty `reason` becomes the standard phrase."""
    if head.reason:
        line = b"HTTP/%b %d %b\r\n" % (head.version, head.status, head.reason)
    else:
        key = (head.version, head.status)
        line = _STATUS_LINES.get(key) or _status_line(key)
    parts = [line]
    for name, value in head.headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _status_line(key: tuple[bytes, int]) -> bytes:
    version, status = key
    line = b"HTTP/%b %d %b\r\n" % (version, status, reason_phrase(status))
    if len(_STATUS_LINES) < 1024:  # bounded: statuses come from upstreams
        _STATUS_LINES[key] = line
    return line


def chunk_bytes(data: bytes) -> bytes:
    """One chunk carrying `data`; b"" for empty data (an empty chunk would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk_bytes(trailers: Headers | None = None) -> bytes:
    """The zero-size chunk, then `trailers` (if any) and the final blank line."""
    if not trailers:
        return b"0\r\n\r\n"
    parts = [b"0\r\n"]
    for name, value in trailers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def strip_hop_by_hop(headers: Headers, keep_upgrade: bool = False) -> Headers:
    """A copy of `headers` without what concerns only this hop, as Envoy forwards:
    Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, Trailer, every header
    named in Connection, and TE unless it asks for `trailers` (then only `te: trailers` stays,
    which gRPC needs). With `keep_upgrade` (an accepted upgrade) `Upgrade` stays and Connection
    becomes `upgrade`.
    """
    drop: frozenset[bytes] | set[bytes] = _HOP_BY_HOP
    connection = headers.joined(b"connection")
    if connection:
        named = {token.strip().lower() for token in connection.split(b",")}
        named.discard(b"")
        if named:
            drop = _HOP_BY_HOP | named
    out = Headers([item for item in headers if item[0] not in drop])
    te = headers.joined(b"te")
    if te is not None and b"trailers" in {t.strip().lower() for t in te.split(b",")}:
        out.add(b"te", b"trailers")
    if keep_upgrade:
        upgrade = headers.joined(b"upgrade")
        if upgrade is not None:
            out.add(b"connection", b"upgrade")
            out.add(b"upgrade", upgrade)
    return out
