"""First-bytes detection: real ClientHellos from `ssl`, HTTP/1 request lines, the h2c preface,
split reads and garbage."""

from __future__ import annotations

import random
import ssl

import pytest

from gossamer.codec.detect import MAX_INSPECT_BYTES, Detection, Kind, detect


def client_hello(
    *, sni: str | None = None, alpn: list[str] | None = None, tls13_only: bool = False
) -> bytes:
    """The bytes a real `ssl` client sends first (a handshake started into a memory BIO)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls13_only:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


MESH_ALPN = ["istio-http/1.1", "istio", "http/1.1"]
SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"


def test_a_mesh_client_hello_gives_its_sni_and_alpn_in_order() -> None:
    hello = client_hello(sni=SNI, alpn=MESH_ALPN, tls13_only=True)
    assert detect(hello) == Detection(Kind.TLS, SNI, tuple(MESH_ALPN))


def test_a_client_hello_without_sni_or_alpn_is_still_tls() -> None:
    assert detect(client_hello()) == Detection(Kind.TLS, None, ())


def test_an_ip_address_target_sends_no_sni() -> None:
    # ssl omits SNI for IP literals (RFC 6066 §3); detection must not invent one.
    assert detect(client_hello(sni="127.0.0.1", alpn=["h2"])) == Detection(Kind.TLS, None, ("h2",))


@pytest.mark.parametrize("alpn", [None, ["h2", "http/1.1"], MESH_ALPN])
def test_every_prefix_of_a_client_hello_needs_more(alpn: list[str] | None) -> None:
    hello = client_hello(sni=SNI, alpn=alpn)
    for size in range(len(hello)):
        assert detect(hello[:size]).kind is Kind.NEED_MORE, size
    assert detect(hello).kind is Kind.TLS


def test_bytes_after_the_client_hello_do_not_change_the_verdict() -> None:
    hello = client_hello(sni=SNI, alpn=MESH_ALPN)
    assert detect(hello + b"\x17\x03\x03\x00\x10" + bytes(16)) == detect(hello)


def test_a_client_hello_fragmented_over_records_is_reassembled() -> None:
    # RFC 8446 §5.1: a handshake message may span records; tls_inspector reassembles.
    hello = client_hello(sni=SNI, alpn=MESH_ALPN)
    body = hello[5:]
    records = b""
    for start in range(0, len(body), 100):
        chunk = body[start : start + 100]
        records += b"\x16\x03\x01" + len(chunk).to_bytes(2) + chunk
    assert detect(records) == detect(hello)
    for size in range(len(records)):
        assert detect(records[:size]).kind is Kind.NEED_MORE, size


@pytest.mark.parametrize(
    "first",
    [
        b"GET / HTTP/1.1\r\n",
        b"POST /api/v1/ratings?x=1 HTTP/1.0\r\nHost: a\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        b"CONNECT reviews:9080 HTTP/1.1\r\n",
    ],
)
def test_an_http1_request_line_is_http1_once_complete(first: bytes) -> None:
    assert detect(first) == Detection(Kind.HTTP1)
    line = first[: first.index(b"\r\n")]
    for size in range(1, len(line) + 2):  # the request line, then its CR without LF
        assert detect(first[:size]).kind is Kind.NEED_MORE, first[:size]


def test_the_http2_preface_is_h2c_and_its_prefixes_need_more() -> None:
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    assert detect(preface + b"\x00\x00\x12\x04").kind is Kind.HTTP2
    for size in range(1, len(preface)):
        assert detect(preface[:size]).kind is Kind.NEED_MORE


@pytest.mark.parametrize(
    "first",
    [
        b"\x00\x00\x00\x01",  # a binary protocol
        b"SSH-2.0-OpenSSH_9.2\r\n",  # the line ends before any space: no request line
        b"GET / HTTP/2.0\r\n",  # not an HTTP/1 version
        b"GET /a b HTTP/1.1\r\n",  # a space in the target
        b"GET / HTTP/1.1\n",  # bare LF: a control inside the line
        b" GET / HTTP/1.1\r\n",
        b"G(T / HTTP/1.1\r\n",  # "(" is no token character
        b"*1\r\n$4\r\nPING\r\n",  # Redis
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",  # a handshake that is no ClientHello
        b"\x16\x03\x07\x00\x05",  # an impossible record version
        b"\x16\x03\x01\x00\x00",  # an empty record
        b"\x17\x03\x03\x00\x10",  # application data before any hello
    ],
)
def test_anything_else_is_opaque(first: bytes) -> None:
    assert detect(first).kind is Kind.OPAQUE


def test_silence_needs_more_and_too_much_without_a_decision_is_opaque() -> None:
    assert detect(b"").kind is Kind.NEED_MORE
    long_target = b"GET /" + b"a" * MAX_INSPECT_BYTES
    assert detect(long_target[:1000]).kind is Kind.NEED_MORE
    assert detect(long_target).kind is Kind.OPAQUE


def test_a_client_hello_with_inconsistent_lengths_is_opaque() -> None:
    hello = bytearray(client_hello(sni=SNI, alpn=MESH_ALPN))
    hello[5 + 4 + 34] = 33  # a session id longer than RFC 8446 allows
    assert detect(bytes(hello)).kind is Kind.OPAQUE


def test_garbage_and_mutated_hellos_never_raise() -> None:
    """Untrusted bytes: every input yields a verdict, and a TLS verdict carries text."""
    rng = random.Random(5)
    hello = client_hello(sni=SNI, alpn=MESH_ALPN)
    for _ in range(3000):
        mutated = bytearray(hello)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cut = rng.randint(0, len(mutated))
        for data in (bytes(mutated), bytes(mutated[:cut]), rng.randbytes(rng.randint(0, 600))):
            verdict = detect(data)
            assert isinstance(verdict.kind, Kind)
            if verdict.kind is Kind.TLS:
                assert all(isinstance(name, str) and name for name in verdict.alpn)
