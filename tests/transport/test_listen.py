"""Listening sockets: rebindable at once, shareable with SO_REUSEPORT, IPv4 and IPv6."""

from __future__ import annotations

import socket

import pytest

from gossamer.transport.listen import listening_socket


def test_accepts_a_loopback_connection() -> None:
    server = listening_socket("127.0.0.1", 0)
    try:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            server.setblocking(True)
            peer, _ = server.accept()
            peer.close()
    finally:
        server.close()


def test_reuse_port_lets_two_sockets_share_a_port() -> None:
    first = listening_socket("127.0.0.1", 0, reuse_port=True)
    try:
        port = first.getsockname()[1]
        second = listening_socket("127.0.0.1", port, reuse_port=True)
        second.close()
    finally:
        first.close()


def test_port_in_use_without_reuse_port_raises_and_leaks_nothing() -> None:
    first = listening_socket("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        server = listening_socket("::1", 0)
    except OSError as e:
        pytest.skip(f"::1 not configured: {e}")
    try:
        assert server.family == socket.AF_INET6
        with socket.create_connection(("::1", server.getsockname()[1]), timeout=2):
            pass
    finally:
        server.close()
