"""HTTP/1.1 codec, sans-IO over httptools: parsers that turn bytes into events and writers that
turn heads and body pieces into bytes. The one import point for the rest of the proxy."""

from gossamer.codec.http1_events import (
    END_OF_MESSAGE,
    UPSTREAM_LIMITS,
    Body,
    EndOfMessage,
    Event,
    Limits,
    LocalProtocolError,
    ProtocolError,
    RequestHead,
    ResponseHead,
    Upgraded,
)
from gossamer.codec.http1_request import RequestParser
from gossamer.codec.http1_response import ResponseParser
from gossamer.codec.http1_writers import (
    chunk_bytes,
    last_chunk_bytes,
    reason_phrase,
    request_head_bytes,
    response_head_bytes,
    strip_hop_by_hop,
)

__all__ = [
    "END_OF_MESSAGE",
    "UPSTREAM_LIMITS",
    "Body",
    "EndOfMessage",
    "Event",
    "Limits",
    "LocalProtocolError",
    "ProtocolError",
    "RequestHead",
    "RequestParser",
    "ResponseHead",
    "ResponseParser",
    "Upgraded",
    "chunk_bytes",
    "last_chunk_bytes",
    "reason_phrase",
    "request_head_bytes",
    "response_head_bytes",
    "strip_hop_by_hop",
]
