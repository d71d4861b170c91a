"""TCP_NODELAY on a connection's socket: the proxy writes whole heads and body chunks itself,
so Nagle's algorithm would only add latency (Envoy sets it on both sides too)."""

from __future__ import annotations

import asyncio
import contextlib
import socket


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Best effort: a transport without a socket, or a socket that refuses, is left as it is."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
