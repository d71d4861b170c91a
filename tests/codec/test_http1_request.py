"""RequestParser: raw client bytes in, the events a proxy acts on out, or the error it answers."""

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
    RequestHead,
    RequestParser,
    Upgraded,
)

GET = b"GET /reviews/1?x=1 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: curl/8\r\n\r\n"


def parse(data: bytes, limits: Limits | None = None) -> list[Event]:
    return RequestParser(limits).feed(data)


def merged(events: list[Event]) -> list[Event]:
    """Adjacent Body pieces as one (how they are cut depends on how the bytes arrived)."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, Body) and out and isinstance(out[-1], Body):
            out[-1] = Body(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def parse_bytewise(data: bytes) -> list[Event]:
    parser = RequestParser()
    return merged([e for i in range(len(data)) for e in parser.feed(data[i : i + 1])])


def error_of(data: bytes, limits: Limits | None = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(data, limits)
    return caught.value


def test_get_head_has_lowercase_names_and_raw_target() -> None:
    events = parse(b"GET /a%20b?q=1 HTTP/1.1\r\nHost: x\r\nX-Trace-ID: 7 \r\nAccept: */*\r\n\r\n")
    assert events == [
        RequestHead(
            b"GET",
            b"/a%20b?q=1",
            b"1.1",
            Headers([(b"host", b"x"), (b"x-trace-id", b"7"), (b"accept", b"*/*")]),
        ),
        EndOfMessage(None),
    ]


def test_split_anywhere_gives_the_same_events() -> None:
    data = (
        b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n" + GET
    )
    assert parse_bytewise(data) == merged(parse(data))


class TestKeepAlive:
    def test_http11_is_persistent_by_default(self) -> None:
        head = parse(GET)[0]
        assert isinstance(head, RequestHead) and head.keep_alive

    def test_http11_connection_close(self) -> None:
        head = parse(b"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n")[0]
        assert isinstance(head, RequestHead) and not head.keep_alive

    def test_http10_closes_unless_keep_alive(self) -> None:
        plain = parse(b"GET / HTTP/1.0\r\n\r\n")[0]
        asked = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0]
        assert isinstance(plain, RequestHead) and isinstance(asked, RequestHead)
        assert (plain.version, plain.keep_alive) == (b"1.0", False)
        assert (asked.version, asked.keep_alive) == (b"1.0", True)

    def test_bytes_after_a_closing_request_are_ignored(self) -> None:
        parser = RequestParser()
        events = parser.feed(b"GET /1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        assert [type(e) for e in events] == [RequestHead, EndOfMessage]
        assert parser.feed(b"GET /3 HTTP/1.1\r\n\r\n") == []


class TestBodies:
    def test_content_length_body_streams_per_feed(self) -> None:
        parser = RequestParser()
        first = parser.feed(b"PUT /k HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello")
        head = first[0]
        assert isinstance(head, RequestHead) and head.content_length == 10 and not head.chunked
        assert first[1:] == [Body(b"hello")]
        assert parser.feed(b"wor") == [Body(b"wor")]
        assert parser.feed(b"ld") == [Body(b"ld"), EndOfMessage(None)]

    def test_chunked_body_pieces_and_trailers(self) -> None:
        parser = RequestParser()
        events = parser.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n")
        head = events[0]
        assert isinstance(head, RequestHead) and head.chunked and head.content_length is None
        assert events[1:] == [Body(b"abc")]
        assert parser.feed(b"2\r\nde\r\n0\r\nGrpc-Status: 0\r\nX-T:  v \r\n\r\n") == [
            Body(b"de"),
            EndOfMessage(Headers([(b"grpc-status", b"0"), (b"x-t", b"v")])),
        ]

    def test_chunked_without_trailers_ends_with_none(self) -> None:
        events = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert events[1:] == [EndOfMessage(None)]

    def test_expect_100_continue_is_flagged_on_http11_only(self) -> None:
        head11 = parse(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")[0]
        head10 = parse(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")[0]
        assert isinstance(head11, RequestHead) and head11.expect_continue
        assert isinstance(head10, RequestHead) and not head10.expect_continue

    def test_pipelined_requests_come_out_in_order(self) -> None:
        data = (
            b"GET /1 HTTP/1.1\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
            b"\r\nGET /3 HTTP/1.1\r\n\r\n"
        )
        events = parse(data)
        assert [e.target for e in events if isinstance(e, RequestHead)] == [b"/1", b"/2", b"/3"]
        assert [type(e) for e in events] == [
            RequestHead,
            EndOfMessage,
            RequestHead,
            Body,
            EndOfMessage,
            RequestHead,
            EndOfMessage,
        ]


class TestUpgrade:
    def test_websocket_head_then_the_opaque_rest(self) -> None:
        parser = RequestParser()
        events = parser.feed(
            b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n\x81\x05hello"
        )
        head = events[0]
        assert isinstance(head, RequestHead) and head.upgrade
        assert events[1:] == [Upgraded(b"\x81\x05hello")]
        with pytest.raises(LocalProtocolError):
            parser.feed(b"more")

    def test_upgraded_rest_may_be_empty(self) -> None:
        events = parse(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        assert events[1:] == [Upgraded(b"")]

    def test_upgrade_header_without_connection_upgrade_is_plain_http(self) -> None:
        events = parse(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n" + GET)
        assert [type(e) for e in events] == [RequestHead, EndOfMessage] * 2
        head = events[0]
        assert isinstance(head, RequestHead) and not head.upgrade

    def test_h2c_upgrade_is_ignored_and_its_headers_dropped_as_envoy(self) -> None:
        events = parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + GET
        )
        assert [type(e) for e in events] == [RequestHead, EndOfMessage] * 2
        head = events[0]
        assert isinstance(head, RequestHead) and not head.upgrade
        assert head.headers == Headers(
            [(b"host", b"a"), (b"connection", b"Upgrade, HTTP2-Settings")]
        )

    @pytest.mark.parametrize(
        ("framing", "body"),
        [
            (b"Content-Length: 5\r\n", b"hello"),
            (b"Transfer-Encoding: chunked\r\n", b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"),
        ],
    )
    def test_h2c_upgrade_with_a_body_reads_the_body(self, framing: bytes, body: bytes) -> None:
        data = (
            b"POST /p HTTP/1.1\r\nHost: a\r\n"
            + framing
            + b"Connection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + body + GET
        )
        for parsed in (parse(data), parse_bytewise(data)):
            events = merged(parsed)
            head = events[0]
            assert isinstance(head, RequestHead) and not head.upgrade and head.target == b"/p"
            assert events[1:3] == [Body(b"hello"), EndOfMessage(None)]
            assert [type(e) for e in events[3:]] == [RequestHead, EndOfMessage]

    def test_h2c_upgrade_with_connection_close_ignores_what_follows(self) -> None:
        data = (
            b"GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings, close\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + GET
        )
        events = parse(data)
        assert [type(e) for e in events] == [RequestHead, EndOfMessage]
        assert isinstance(events[0], RequestHead) and not events[0].keep_alive

    def test_connect_is_not_implemented(self) -> None:
        assert error_of(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n").status == 501


class TestLimits:
    def test_head_over_max_head_bytes_is_431(self) -> None:
        big = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
        assert error_of(big).status == 431

    def test_head_at_the_limit_passes(self) -> None:
        limits = Limits(max_head_bytes=1000)
        value = b"v" * (1000 - len(b"/") - len(b"x-a"))
        events = parse(b"GET / HTTP/1.1\r\nx-a: " + value + b"\r\n\r\n", limits)
        assert isinstance(events[0], RequestHead)
        assert error_of(b"GET / HTTP/1.1\r\nx-a: " + value + b"v\r\n\r\n", limits).status == 431

    @pytest.mark.parametrize(
        "start",
        [
            pytest.param(b"GET / HTTP/1.1\r\nX-Drip: ", id="header"),
            pytest.param(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: ",
                id="trailer",
            ),
        ],
    )
    def test_endless_line_fails_before_it_ends(self, start: bytes) -> None:
        parser = RequestParser(Limits(max_head_bytes=4096))
        parser.feed(start)
        with pytest.raises(ProtocolError) as caught:
            for _ in range(100):
                parser.feed(b"z" * 1024)
        assert caught.value.status == 431

    def test_big_pipelined_feed_ending_in_a_partial_head_is_fine(self) -> None:
        parser = RequestParser(Limits(max_head_bytes=4096))
        body = b"b" * 100_000
        first = parser.feed(
            b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"
            + body
            + b"GET /next HTTP/1.1\r\nHo"
        )
        assert [type(e) for e in first] == [RequestHead, Body, EndOfMessage]
        second = parser.feed(b"st: a\r\n\r\n")
        assert isinstance(second[0], RequestHead) and second[0].target == b"/next"

    def test_slow_body_is_not_mistaken_for_a_big_head(self) -> None:
        parser = RequestParser(Limits(max_head_bytes=1024))
        parser.feed(b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(50):
            assert parser.feed(b"100\r\n" + b"c" * 256 + b"\r\n") == [Body(b"c" * 256)]
        assert parser.feed(b"0\r\n\r\n") == [EndOfMessage(None)]

    def test_head_split_across_feeds_is_measured_once(self) -> None:
        parser = RequestParser(Limits(max_head_bytes=4096))
        assert parser.feed(b"PUT / HTTP/1.1\r\nContent-Length: 3000\r\nX-V: " + b"v" * 2000) == []
        events = parser.feed(b"v" * 1000 + b"\r\n\r\n" + b"b" * 3000)
        head = events[0]
        assert isinstance(head, RequestHead) and head.headers.get(b"x-v") == b"v" * 3000
        assert events[1:] == [Body(b"b" * 3000), EndOfMessage(None)]

    def test_head_over_the_limit_across_feeds_is_431(self) -> None:
        parser = RequestParser(Limits(max_head_bytes=4096))
        assert parser.feed(b"GET / HTTP/1.1\r\nX-A: " + b"a" * 3000 + b"\r\nX-B: ") == []
        with pytest.raises(ProtocolError) as caught:
            parser.feed(b"b" * 1500 + b"\r\n\r\n")
        assert caught.value.status == 431

    def test_more_than_max_headers_is_431(self) -> None:
        lines = b"".join(b"h%d: v\r\n" % i for i in range(101))
        assert error_of(b"GET / HTTP/1.1\r\n" + lines + b"\r\n").status == 431
        ok = parse(b"GET / HTTP/1.1\r\n" + lines[: lines.index(b"h100")] + b"\r\n")
        assert isinstance(ok[0], RequestHead) and len(ok[0].headers) == 100

    def test_long_request_target_is_431_as_envoy(self) -> None:
        parser = RequestParser()
        parser.feed(b"GET /")
        with pytest.raises(ProtocolError) as caught:
            for _ in range(100):
                parser.feed(b"a" * 1024)
        assert caught.value.status == 431

    def test_trailers_count_against_the_limits(self) -> None:
        trailers = b"".join(b"t%d: v\r\n" % i for i in range(101))
        data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers + b"\r\n"
        assert error_of(data).status == 431


class TestSmugglingDefences:
    @pytest.mark.parametrize(
        "framing",
        [
            b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            b"Content-Length: 3\r\nContent-Length: 4\r\n",
            b"Content-Length: 3\r\nContent-Length: 3\r\n",  # llhttp refuses even identical ones
            b"Content-Length: 3, 3\r\n",
            b"Content-Length: -1\r\n",
            b"Content-Length: +3\r\n",
            b"Content-Length: 99999999999999999999999\r\n",
        ],
    )
    def test_ambiguous_length_is_400(self, framing: bytes) -> None:
        assert error_of(b"POST / HTTP/1.1\r\nHost: a\r\n" + framing + b"\r\nabc").status == 400

    @pytest.mark.parametrize(
        "coding",
        [b"gzip, chunked", b"chunked, gzip", b"xchunked", b"identity", b"chunked\r\nTE2: x"],
    )
    def test_transfer_encoding_other_than_chunked_is_501(self, coding: bytes) -> None:
        coding = coding.replace(b"TE2", b"Transfer-Encoding")
        data = b"POST / HTTP/1.1\r\nTransfer-Encoding: " + coding + b"\r\n\r\n0\r\n\r\n"
        assert error_of(data).status == 501

    def test_chunked_on_http10_is_accepted_as_envoy_does(self) -> None:
        events = parse(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        assert events[1:] == [Body(b"hi"), EndOfMessage(None)]

    @pytest.mark.parametrize(
        "data",
        [
            b"GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",  # obs-fold
            b"GET / HTTP/1.1\r\nX-A: b\r\n\tc\r\n\r\n",  # obs-fold with a tab
            b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",  # NUL in a value
            b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",  # bare CR in a value
            b"GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n",  # DEL in a value
            b"GET / HTTP/1.1\r\nX A: b\r\n\r\n",  # space in a name
            b"GET / HTTP/1.1\r\nX-A : b\r\n\r\n",  # space before the colon
            b"GET / HTTP/1.1\r\n: b\r\n\r\n",  # empty name
            b"GET / HTTP/1.1\r\nnocolon\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",  # bare LF line ends
            b"GET /a b HTTP/1.1\r\n\r\n",  # space in the target
            b"GET /a\x01 HTTP/1.1\r\n\r\n",  # control byte in the target
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
            b"get / HTTP/1.1\r\n\r\n",
            b"FOO / HTTP/1.1\r\n\r\n",
            b"QUERY / HTTP/1.1\r\n\r\n",  # llhttp knows it, Envoy does not
            b"M-SEARCH * HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET /\r\n\r\n",  # HTTP/0.9
        ],
    )
    def test_malformed_heads_are_400(self, data: bytes) -> None:
        assert error_of(data).status == 400

    @pytest.mark.parametrize(
        "body", [b"zz\r\nabc\r\n0\r\n\r\n", b"3 \r\nabc\r\n0\r\n\r\n", b"3\r\nabcd\r\n0\r\n\r\n"]
    )
    def test_bad_chunk_framing_is_400(self, body: bytes) -> None:
        assert (
            error_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body).status == 400
        )

    def test_requests_before_a_malformed_one_ride_on_the_error(self) -> None:
        with pytest.raises(ProtocolError) as caught:
            parse(GET + b"POST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok" + b"GARBAGE\x00\r\n\r\n")
        assert caught.value.status == 400
        assert [type(e) for e in caught.value.events] == [
            RequestHead,
            EndOfMessage,
            RequestHead,
            Body,
            EndOfMessage,
        ]

    def test_body_before_bad_chunk_rides_on_the_error(self) -> None:
        parser = RequestParser()
        parser.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        with pytest.raises(ProtocolError) as caught:
            parser.feed(b"2\r\nok\r\nnope\r\n")
        assert caught.value.events == [Body(b"ok")]

    def test_parser_refuses_input_after_an_error(self) -> None:
        parser = RequestParser()
        with pytest.raises(ProtocolError):
            parser.feed(b"BAD\x00\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            parser.feed(GET)
