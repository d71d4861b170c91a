"""What a new inbound connection speaks, from its first bytes: a TLS ClientHello (with its SNI
and ALPN list), an HTTP/1 request line, the HTTP/2 preface, or something else (sans-IO).

Theory of operation. PERMISSIVE mTLS serves TLS and plaintext on one port, so before choosing
a filter chain the sidecar looks at what the client sent first, as Envoy's `tls_inspector` and
`http_inspector` listener filters do. `detect(prefix)` is a pure function of every byte
received so far (the caller peeks, or keeps a buffer); it never consumes anything, so the same
bytes go on to the TLS handshake or the HTTP codec untouched.

Rules:
1. Fewer bytes than a decision needs give `NEED_MORE`; the caller waits for more, up to
   `MAX_INSPECT_BYTES` and its own timeout, then treats the connection as `OPAQUE` (a
   server-speaks-first protocol sends nothing at all).
2. TLS is a handshake record (RFC 8446 §5.1, content type 22, legacy version 3.x) carrying a
   ClientHello (§4.1.2), possibly fragmented over several records. Anything that starts like
   TLS but breaks the ClientHello's structure is `OPAQUE`, as tls_inspector leaves such a
   connection's transport protocol as raw bytes.
3. HTTP/2 prior knowledge is the 24-byte connection preface (RFC 9113 §3.4).
4. HTTP/1 is a complete request line `token SP target SP HTTP/1.x CRLF` (RFC 9112 §3);
   a prefix that can still become one is `NEED_MORE`, anything else `OPAQUE`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_INSPECT_BYTES = 64 * 1024
"""Past this many bytes without a decision the connection is OPAQUE (Envoy's ClientHello limit
is 16 KiB; a request line may be longer, within Envoy's 60 KiB header limit)."""

_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_RECORD_HEADER = 5
_MAX_RECORD = 2**14 + 2048  # RFC 8446 §5.2 bound on a TLSCiphertext fragment
_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
# RFC 9110 §5.6.2 tchar: the characters a method may use.
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_MAX_METHOD = 32
# Bytes a request line may hold after the method: visible ASCII, space and obs-text.
_LINE_BYTES = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))


class Kind(enum.Enum):
    """What the first bytes say the connection is."""

    NEED_MORE = "need_more"
    TLS = "tls"
    HTTP1 = "http/1"
    HTTP2 = "h2c"
    OPAQUE = "opaque"


@dataclass(frozen=True, slots=True)
class Detection:
    """The verdict; `sni` and `alpn` are filled only for TLS (as the client offered them)."""

    kind: Kind
    sni: str | None = None
    alpn: tuple[str, ...] = ()


NEED_MORE = Detection(Kind.NEED_MORE)
OPAQUE = Detection(Kind.OPAQUE)


class _Malformed(Exception):
    """The ClientHello breaks its own structure (never escapes this module)."""


def detect(prefix: bytes) -> Detection:
    """The verdict for the first bytes of a connection (all of them, not just the newest)."""
    if not prefix:
        return NEED_MORE
    if prefix[0] == _HANDSHAKE_RECORD:
        verdict = _detect_tls(prefix)
    elif prefix.startswith(_HTTP2_PREFACE[: len(prefix)]):
        verdict = NEED_MORE if len(prefix) < len(_HTTP2_PREFACE) else Detection(Kind.HTTP2)
    else:
        verdict = _detect_http1(prefix)
    if verdict.kind is Kind.NEED_MORE and len(prefix) >= MAX_INSPECT_BYTES:
        return OPAQUE
    return verdict


# --- TLS ----------------------------------------------------------------------------------


def _detect_tls(prefix: bytes) -> Detection:
    handshake = bytearray()
    offset = 0
    while True:
        if len(prefix) - offset < _RECORD_HEADER:
            return NEED_MORE
        content_type, major, minor = prefix[offset], prefix[offset + 1], prefix[offset + 2]
        length = int.from_bytes(prefix[offset + 3 : offset + 5])
        if content_type != _HANDSHAKE_RECORD or major != 3 or minor > 4:
            return OPAQUE
        if length == 0 or length > _MAX_RECORD:
            return OPAQUE
        start = offset + _RECORD_HEADER
        handshake += prefix[start : start + length]
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                return OPAQUE
            wanted = 4 + int.from_bytes(handshake[1:4])
            if wanted > MAX_INSPECT_BYTES:
                return OPAQUE
            if len(handshake) >= wanted:
                try:
                    sni, alpn = _parse_client_hello(bytes(handshake[4:wanted]))
                except _Malformed:
                    return OPAQUE
                return Detection(Kind.TLS, sni, alpn)
        if len(prefix) < start + length:
            return NEED_MORE
        offset = start + length


class _Reader:
    """Bounds-checked reads over one ClientHello field; running past the end is malformed."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Malformed
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, width: int) -> int:
        return int.from_bytes(self.take(width))

    def vector(self, width: int) -> _Reader:
        return _Reader(self.take(self.number(width)))

    def done(self) -> bool:
        return self.pos == len(self.data)


def _parse_client_hello(body: bytes) -> tuple[str | None, tuple[str, ...]]:
    """SNI and ALPN of a ClientHello body (RFC 8446 §4.1.2; SSL 3.0-style hellos too)."""
    hello = _Reader(body)
    hello.take(2 + 32)  # legacy_version, random
    if len(hello.vector(1).data) > 32:  # legacy_session_id
        raise _Malformed
    suites = hello.vector(2)
    if not suites.data or len(suites.data) % 2:
        raise _Malformed
    if not hello.vector(1).data:  # legacy_compression_methods
        raise _Malformed
    if hello.done():
        return None, ()  # no extensions at all
    extensions = hello.vector(2)
    if not hello.done():
        raise _Malformed
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    seen: set[int] = set()
    while not extensions.done():
        ext_type = extensions.number(2)
        data = extensions.vector(2)
        if ext_type in seen:
            raise _Malformed  # RFC 8446 §4.2: at most one extension of each type
        seen.add(ext_type)
        if ext_type == _EXT_SERVER_NAME:
            sni = _server_name(data)
        elif ext_type == _EXT_ALPN:
            alpn = _alpn(data)
    return sni, alpn


def _server_name(data: _Reader) -> str | None:
    """The host_name entry of a server_name extension (RFC 6066 §3)."""
    names = data.vector(2)
    host: str | None = None
    while not names.done():
        name_type = names.number(1)
        name = names.vector(2).data
        if name_type == 0 and host is None:
            if not name:
                raise _Malformed
            host = name.decode("ascii", "backslashreplace")
    return host


def _alpn(data: _Reader) -> tuple[str, ...]:
    """The protocol names offered, in the client's order (RFC 7301 §3.1)."""
    names = data.vector(2)
    offered: list[str] = []
    while not names.done():
        name = names.vector(1).data
        if not name:
            raise _Malformed
        offered.append(name.decode("ascii", "backslashreplace"))
    if not offered:
        raise _Malformed
    return tuple(offered)


# --- HTTP/1 -------------------------------------------------------------------------------


def _detect_http1(prefix: bytes) -> Detection:
    """HTTP/1 once the request line is complete; NEED_MORE while it still can be one."""
    method_end = prefix.find(b" ")
    method = prefix if method_end < 0 else prefix[:method_end]
    if len(method) > _MAX_METHOD or not all(c in _TCHAR for c in method):
        return OPAQUE
    if method_end < 0:
        return NEED_MORE
    if method_end == 0:
        return OPAQUE
    line_end = prefix.find(b"\r\n", method_end)
    if line_end < 0:
        partial = prefix[method_end + 1 :].removesuffix(b"\r")
        # Controls (a bare LF included) never appear in a request line.
        return OPAQUE if partial.translate(None, _LINE_BYTES) else NEED_MORE
    rest = prefix[method_end + 1 : line_end]
    if rest.translate(None, _LINE_BYTES):
        return OPAQUE
    target, _, version = rest.rpartition(b" ")
    if not target or b" " in target or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        return OPAQUE
    return Detection(Kind.HTTP1)
