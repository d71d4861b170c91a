"""SO_ORIGINAL_DST parsing, and the answer for a socket that was not redirected."""

from __future__ import annotations

import socket
import struct

from gossamer.transport.listen import listening_socket
from gossamer.transport.original_dst import original_destination, parse_sockaddr


def test_parses_sockaddr_in() -> None:
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 9080) + bytes([10, 0, 0, 7])
    assert parse_sockaddr(raw + bytes(8)) == ("10.0.0.7", 9080)


def test_parses_sockaddr_in6() -> None:
    addr = socket.inet_pton(socket.AF_INET6, "fd00::7")
    raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!H", 443) + bytes(4) + addr + bytes(4)
    assert parse_sockaddr(raw) == ("fd00::7", 443)


def test_unredirected_connection_reports_nothing_or_itself() -> None:
    server = listening_socket("127.0.0.1", 0)
    server.setblocking(True)
    try:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            accepted, _ = server.accept()
            with accepted:
                # Without conntrack: no entry. With it: the address the client dialled (us).
                assert original_destination(accepted) in (None, ("127.0.0.1", port))
    finally:
        server.close()
