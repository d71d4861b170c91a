"""The codec against real HTTP/1.1 peers over loopback sockets: the stdlib's server and client."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gossamer.codec.headers import Headers
from gossamer.codec.http1 import (
    Body,
    EndOfMessage,
    Event,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
    chunk_bytes,
    last_chunk_bytes,
    request_head_bytes,
    response_head_bytes,
)

TIMEOUT = 5.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/stream":  # no length: the body runs to the connection's end
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-eof")
            self.close_connection = True
            return
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "12345")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)


def _exchange(
    sock: socket.socket, parser: ResponseParser, method: bytes, path: bytes
) -> list[Event]:
    """Send one request, read until its response ended (or the peer closed)."""
    head = RequestHead(method, path, b"1.1", Headers([(b"host", b"test")]))
    parser.expect(method)
    sock.sendall(request_head_bytes(head))
    events: list[Event] = []
    for _ in range(100):
        data = sock.recv(65536)
        events += parser.feed(data) if data else parser.feed_eof()
        if not data or (events and isinstance(events[-1], EndOfMessage)):
            return events
    raise AssertionError("response never ended")


def test_response_parser_against_a_real_server(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        parser = ResponseParser()
        head_events = _exchange(sock, parser, b"HEAD", b"/big")
        get_events = _exchange(sock, parser, b"GET", b"/a")
        stream_events = _exchange(sock, parser, b"GET", b"/stream")
    head = head_events[0]
    assert isinstance(head, ResponseHead) and head.status == 200 and head.keep_alive
    assert head.content_length == 12345 and head_events[1:] == [EndOfMessage(None)]
    assert b"".join(e.data for e in get_events if isinstance(e, Body)) == b"hello /a"
    stream_head = stream_events[0]
    assert isinstance(stream_head, ResponseHead) and not stream_head.keep_alive
    assert b"".join(e.data for e in stream_events if isinstance(e, Body)) == b"until-eof"
    assert stream_events[-1] == EndOfMessage(None)


def _serve_one(listener: socket.socket, seen: list[Event]) -> None:
    """Parse one request with RequestParser and answer with the codec's writers (chunked)."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        parser = RequestParser()
        for _ in range(100):
            data = conn.recv(65536)
            if not data:
                return
            seen += parser.feed(data)
            if seen and isinstance(seen[-1], EndOfMessage):
                break
        body = b"".join(e.data for e in seen if isinstance(e, Body))
        head = ResponseHead(
            201, b"", b"1.1", Headers([(b"transfer-encoding", b"chunked")]), chunked=True
        )
        conn.sendall(
            response_head_bytes(head)
            + chunk_bytes(b"got:")
            + chunk_bytes(body)
            + last_chunk_bytes(Headers([(b"x-sum", b"%d" % len(body))]))
        )


def test_request_parser_and_writers_against_a_real_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        seen: list[Event] = []
        thread = threading.Thread(target=_serve_one, args=(listener, seen), daemon=True)
        thread.start()
        host, port = listener.getsockname()[:2]
        client = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        try:
            client.request(
                "POST",
                "/upload?x=1",
                body=iter([b"abc", b"defg"]),
                headers={"X-Mixed-Case": "v"},
                encode_chunked=True,
            )
            response = client.getresponse()
            assert (response.status, response.reason) == (201, "Created")
            assert response.read() == b"got:abcdefg"
        finally:
            client.close()
        thread.join(TIMEOUT)
    head = seen[0]
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.chunked) == (b"POST", b"/upload?x=1", True)
    assert head.headers.get(b"x-mixed-case") == b"v"
    assert seen[-1] == EndOfMessage(None)
