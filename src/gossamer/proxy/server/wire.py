"""HTTP/1.1 bytes the proxy writes itself: heads whose framing headers we already chose.

The codec's writers are not used here on purpose: the server decides framing (content-length,
chunked, close-delimited) per hop, and these functions only serialise what they are given."""

from __future__ import annotations

from http import HTTPStatus

from gossamer.codec.headers import Headers
from gossamer.telemetry import peer_metadata

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}
_REASONS[408] = b"Request Timeout"


def reason(status: int) -> bytes:
    return _REASONS.get(status, b"Unknown")


def request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers.items():
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head(
    status: int, headers: Headers, reason_phrase: bytes | None = None, extra_lines: bytes = b""
) -> bytes:
    """The head; `extra_lines` are header lines already framed (`name: value\\r\\n`)."""
    phrase = reason_phrase if reason_phrase else reason(status)
    parts = [b"HTTP/1.1 ", str(status).encode(), b" ", phrase, b"\r\n"]
    for name, value in headers.items():
        parts += (name, b": ", value, b"\r\n")
    parts += (extra_lines, b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(trailers: Headers | None) -> bytes:
    if not trailers:
        return b"0\r\n\r\n"
    parts = [b"0\r\n"]
    for name, value in trailers.items():
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


# Hop-by-hop headers (RFC 9110 §7.6.1) that Envoy drops when it forwards in either direction;
# `te` survives only as `te: trailers` (RFC 9110 §10.1.4), as in Envoy.
HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"content-length",  # re-added by the proxy with the framing it chose
    )
)
# Headers the proxy sets itself on each hop; a peer's copy is dropped, ours is added.
# The peer metadata headers are a sidecar's to the next sidecar: never an app's, never passed on
# (telemetry/peer_metadata.py); this hop adds its own where the peer is a sidecar.
REQUEST_DROP = HOP_BY_HOP | {b"x-envoy-expected-rq-timeout-ms"} | peer_metadata.HEADERS
# Envoy's default server_header_transformation is OVERWRITE: every response says `server: envoy`.
RESPONSE_DROP = HOP_BY_HOP | {b"x-envoy-upstream-service-time", b"server"} | peer_metadata.HEADERS
SERVER = b"envoy"


def end_to_end(headers: Headers, drop: frozenset[bytes] = HOP_BY_HOP) -> Headers:
    """A copy without the `drop` headers nor any header named in `Connection`: one pass (plus a
    second only when Connection names extra headers)."""
    out: list[tuple[bytes, bytes]] = []
    named = b""
    for pair in headers.items():
        name = pair[0]
        if name in drop:
            if name == b"connection":
                named = named + b"," + pair[1] if named else pair[1]
            elif name == b"te" and pair[1].strip().lower() == b"trailers":
                out.append(pair)
            continue
        out.append(pair)
    if named:
        extra = {t.strip().lower() for t in named.split(b",")} - {b"close", b"keep-alive", b""}
        if extra:
            out = [p for p in out if p[0] not in extra]
    return Headers.adopt(out)
