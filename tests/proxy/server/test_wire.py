"""What crosses a hop: hop-by-hop headers and headers named by Connection stay behind."""

from __future__ import annotations

from gossamer.codec.headers import Headers
from gossamer.proxy.server import wire


def test_hop_by_hop_and_connection_named_headers_are_dropped() -> None:
    headers = Headers(
        [
            (b"host", b"svc"),
            (b"connection", b"keep-alive, x-private"),
            (b"x-private", b"secret"),
            (b"keep-alive", b"timeout=5"),
            (b"transfer-encoding", b"chunked"),
            (b"te", b"trailers"),
            (b"x-envoy-expected-rq-timeout-ms", b"1"),
            (b"x-kept", b"1"),
        ]
    )
    out = wire.end_to_end(headers, wire.REQUEST_DROP)
    assert out.items() == [(b"host", b"svc"), (b"te", b"trailers"), (b"x-kept", b"1")]


def test_te_other_than_trailers_is_dropped() -> None:
    assert wire.end_to_end(Headers([(b"te", b"gzip")])).items() == []


def test_heads_and_chunks_serialise_as_given() -> None:
    head = wire.response_head(200, Headers([(b"a", b"1")]))
    assert head == b"HTTP/1.1 200 OK\r\na: 1\r\n\r\n"
    assert wire.chunk(b"hello") == b"5\r\nhello\r\n"
    assert wire.last_chunk(Headers([(b"x-sum", b"1")])) == b"0\r\nx-sum: 1\r\n\r\n"
    assert wire.last_chunk(None) == b"0\r\n\r\n"
