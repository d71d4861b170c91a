"""ResponseParser: raw upstream bytes in, the events relayed downstream out (or a 502)."""

from __future__ import annotations

import pytest

from gossamer.codec.headers import Headers
from gossamer.codec.http1 import (
    Body,
    EndOfMessage,
    Event,
    Limits,
    LocalProtocolError,
    ProtocolError,
    ResponseHead,
    ResponseParser,
    Upgraded,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
# Events of a response without a body followed by OK on the same connection.
BODYLESS_THEN_OK = [ResponseHead, EndOfMessage, ResponseHead, Body, EndOfMessage]


def parse(data: bytes, method: bytes = b"GET") -> list[Event]:
    parser = ResponseParser()
    parser.expect(method)
    return parser.feed(data)


def statuses(events: list[Event]) -> list[int]:
    return [e.status for e in events if isinstance(e, ResponseHead)]


def error_of(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(data)
    return caught.value


def test_content_length_response() -> None:
    events = parse(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-B: v\t\r\n\r\nhi")
    assert events == [
        ResponseHead(
            201,
            b"Created",
            b"1.1",
            Headers([(b"content-length", b"2"), (b"x-b", b"v")]),
            keep_alive=True,
            content_length=2,
        ),
        Body(b"hi"),
        EndOfMessage(None),
    ]


def test_missing_reason_phrase_is_empty() -> None:
    head = parse(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")[0]
    assert isinstance(head, ResponseHead) and head.reason == b""


def test_keep_alive_responses_one_after_another() -> None:
    parser = ResponseParser()
    assert statuses(parser.feed(OK)) == [200]
    parser.expect(b"POST")
    events = parser.feed(b"HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n")
    head = events[0]
    assert isinstance(head, ResponseHead) and head.chunked and head.keep_alive
    assert parser.feed(b"4\r\nbusy\r\n0\r\ngrpc-status: 14\r\n\r\n") == [
        Body(b"busy"),
        EndOfMessage(Headers([(b"grpc-status", b"14")])),
    ]


def test_connection_close_response_is_not_kept_alive() -> None:
    head = parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")[0]
    assert isinstance(head, ResponseHead) and not head.keep_alive


def test_http10_response_without_keep_alive_closes() -> None:
    head = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")[0]
    assert isinstance(head, ResponseHead) and head.version == b"1.0" and not head.keep_alive


class TestNoBody:
    def test_head_response_has_no_body_whatever_its_length_says(self) -> None:
        parser = ResponseParser()
        parser.expect(b"HEAD")
        events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        head = events[0]
        assert isinstance(head, ResponseHead) and head.content_length == 1234 and head.keep_alive
        assert events[1:] == [EndOfMessage(None)]
        assert parser.feed(OK)[1:] == [Body(b"hi"), EndOfMessage(None)]  # the next (GET) one

    def test_head_response_split_across_feeds_and_followed_by_the_next(self) -> None:
        parser = ResponseParser()
        parser.expect(b"HEAD")
        assert parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chu") == []
        assert parser.feed(b"nked\r\n\r") == []
        events = parser.feed(b"\n" + OK)
        assert statuses(events) == [200, 200]
        assert [type(e) for e in events] == BODYLESS_THEN_OK

    def test_head_response_without_length_stays_persistent(self) -> None:
        events = parse(b"HTTP/1.1 200 OK\r\n\r\n", b"HEAD")
        head = events[0]
        assert isinstance(head, ResponseHead) and head.keep_alive
        assert events[1:] == [EndOfMessage(None)]

    def test_head_response_with_zero_length_ends_once(self) -> None:
        events = parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", b"HEAD")
        assert [type(e) for e in events] == [ResponseHead, EndOfMessage]

    @pytest.mark.parametrize("status", [204, 304])
    def test_204_and_304_have_no_body(self, status: int) -> None:
        data = b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status + OK
        events = parse(data)
        assert statuses(events) == [status, 200]
        assert [type(e) for e in events] == BODYLESS_THEN_OK


class TestInformational:
    def test_100_continue_is_its_own_head_then_the_final_one(self) -> None:
        parser = ResponseParser()
        parser.expect(b"POST")
        first = parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert statuses(first) == [100] and len(first) == 1  # no end for a 1xx
        assert parser.feed(OK)[1:] == [Body(b"hi"), EndOfMessage(None)]

    def test_several_1xx_before_a_head_response(self) -> None:
        data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        events = parse(data + b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", b"HEAD")
        assert statuses(events) == [100, 103, 200]
        assert isinstance(events[-1], EndOfMessage)

    def test_101_switches_protocols(self) -> None:
        parser = ResponseParser()
        events = parser.feed(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Accept: x\r\n\r\n\x81\x02hi"
        )
        assert statuses(events) == [101]
        assert events[1:] == [Upgraded(b"\x81\x02hi")]
        with pytest.raises(LocalProtocolError):
            parser.feed(b"\x81\x02yo")

    def test_101_without_upgrade_header_is_502(self) -> None:
        assert error_of(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").status == 502


class TestEndOfStream:
    def test_close_delimited_body_ends_at_eof(self) -> None:
        parser = ResponseParser()
        events = parser.feed(b"HTTP/1.1 200 OK\r\n\r\nstream")
        head = events[0]
        assert isinstance(head, ResponseHead) and not head.keep_alive
        assert head.content_length is None and not head.chunked
        assert events[1:] == [Body(b"stream")]
        assert parser.feed(b"ing") == [Body(b"ing")]
        assert parser.feed_eof() == [EndOfMessage(None)]
        assert parser.feed_eof() == []

    def test_eof_between_responses_is_clean(self) -> None:
        parser = ResponseParser()
        parser.feed(OK)
        assert parser.feed_eof() == []

    def test_eof_on_a_fresh_connection_is_clean(self) -> None:
        assert ResponseParser().feed_eof() == []

    @pytest.mark.parametrize(
        "partial",
        [
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ],
    )
    def test_eof_inside_a_response_is_502(self, partial: bytes) -> None:
        parser = ResponseParser()
        parser.feed(partial)
        with pytest.raises(ProtocolError) as caught:
            parser.feed_eof()
        assert caught.value.status == 502

    def test_eof_inside_a_head_response_head_is_502(self) -> None:
        parser = ResponseParser()
        parser.expect(b"HEAD")
        parser.feed(b"HTTP/1.1 200 OK\r\n")
        with pytest.raises(ProtocolError):
            parser.feed_eof()


class TestMalformed:
    @pytest.mark.parametrize(
        "data",
        [
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
        ],
    )
    def test_malformed_responses_are_502(self, data: bytes) -> None:
        assert error_of(data).status == 502

    def test_informational_heads_before_a_bad_head_ride_on_the_error(self) -> None:
        parser = ResponseParser()
        parser.expect(b"HEAD")
        with pytest.raises(ProtocolError) as caught:
            parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: \x00\r\n\r\n")
        assert statuses(caught.value.events) == [100]

    def test_oversized_head_is_502(self) -> None:
        parser = ResponseParser(Limits(max_head_bytes=2048))
        with pytest.raises(ProtocolError) as caught:
            parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 4096 + b"\r\n\r\n")
        assert caught.value.status == 502

    def test_oversized_head_response_head_is_502(self) -> None:
        parser = ResponseParser(Limits(max_head_bytes=2048))
        parser.expect(b"HEAD")
        parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
        with pytest.raises(ProtocolError):
            for _ in range(10):
                parser.feed(b"b" * 1024)
