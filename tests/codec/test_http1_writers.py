"""Writers: heads and chunks as bytes a peer parses back to the same thing; hop-by-hop stripping."""

from __future__ import annotations

from gossamer.codec.headers import Headers
from gossamer.codec.http1 import (
    Body,
    EndOfMessage,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
    chunk_bytes,
    last_chunk_bytes,
    reason_phrase,
    request_head_bytes,
    response_head_bytes,
    strip_hop_by_hop,
)


def test_request_head_bytes_exactly() -> None:
    head = RequestHead(
        b"GET", b"/p?q=%2F", b"1.1", Headers([(b"host", b"a:80"), (b"x-b", b"1"), (b"x-b", b"2")])
    )
    assert request_head_bytes(head) == (
        b"GET /p?q=%2F HTTP/1.1\r\nhost: a:80\r\nx-b: 1\r\nx-b: 2\r\n\r\n"
    )


def test_request_head_round_trips_through_the_parser() -> None:
    head = RequestHead(
        b"POST",
        b"/upload",
        b"1.1",
        Headers([(b"host", b"h"), (b"content-length", b"3"), (b"x-empty", b"")]),
        content_length=3,
    )
    assert RequestParser().feed(request_head_bytes(head) + b"abc") == [
        head,
        Body(b"abc"),
        EndOfMessage(None),
    ]


def test_response_head_bytes_keeps_the_given_reason_and_version() -> None:
    head = ResponseHead(418, b"Short And Stout", b"1.0", Headers([(b"content-length", b"0")]))
    assert response_head_bytes(head) == (
        b"HTTP/1.0 418 Short And Stout\r\ncontent-length: 0\r\n\r\n"
    )


def test_response_head_bytes_fills_an_empty_reason() -> None:
    assert response_head_bytes(ResponseHead(503, b"", b"1.1", Headers())) == (
        b"HTTP/1.1 503 Service Unavailable\r\n\r\n"
    )
    assert response_head_bytes(ResponseHead(299, b"", b"1.1", Headers())) == (
        b"HTTP/1.1 299 Unknown\r\n\r\n"
    )
    assert reason_phrase(404) == b"Not Found"


def test_chunked_body_with_trailers_round_trips() -> None:
    head = ResponseHead(
        200, b"OK", b"1.1", Headers([(b"transfer-encoding", b"chunked")]), chunked=True
    )
    trailers = Headers([(b"grpc-status", b"0"), (b"grpc-message", b"")])
    wire = (
        response_head_bytes(head)
        + chunk_bytes(b"a" * 300)
        + chunk_bytes(b"")
        + chunk_bytes(b"z")
        + last_chunk_bytes(trailers)
    )
    assert chunk_bytes(b"") == b""  # an empty chunk would end the body
    events = ResponseParser().feed(wire)
    assert events == [head, Body(b"a" * 300), Body(b"z"), EndOfMessage(trailers)]


def test_last_chunk_without_trailers() -> None:
    assert last_chunk_bytes(None) == last_chunk_bytes(Headers()) == b"0\r\n\r\n"


class TestStripHopByHop:
    def test_removes_hop_by_hop_and_connection_named_headers(self) -> None:
        headers = Headers(
            [
                (b"host", b"a"),
                (b"connection", b"keep-alive, X-Secret"),
                (b"keep-alive", b"timeout=5"),
                (b"proxy-connection", b"keep-alive"),
                (b"transfer-encoding", b"chunked"),
                (b"upgrade", b"websocket"),
                (b"trailer", b"grpc-status"),
                (b"te", b"gzip"),
                (b"x-secret", b"1"),
                (b"x-kept", b"2"),
            ]
        )
        assert strip_hop_by_hop(headers) == Headers([(b"host", b"a"), (b"x-kept", b"2")])
        assert len(headers) == 10  # the input is left alone

    def test_te_trailers_survives_for_grpc(self) -> None:
        headers = Headers([(b"te", b"gzip, Trailers"), (b"content-type", b"application/grpc")])
        assert strip_hop_by_hop(headers) == Headers(
            [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
        )

    def test_accepted_upgrade_keeps_upgrade_and_connection_upgrade(self) -> None:
        headers = Headers(
            [
                (b"connection", b"keep-alive, Upgrade"),
                (b"upgrade", b"websocket"),
                (b"sec-websocket-key", b"k"),
            ]
        )
        assert strip_hop_by_hop(headers, keep_upgrade=True) == Headers(
            [
                (b"sec-websocket-key", b"k"),
                (b"connection", b"upgrade"),
                (b"upgrade", b"websocket"),
            ]
        )

    def test_nothing_to_strip(self) -> None:
        headers = Headers([(b"host", b"a"), (b"accept", b"*/*")])
        assert strip_hop_by_hop(headers) == headers
