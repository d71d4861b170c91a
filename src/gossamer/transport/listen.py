"""Listening sockets for the sidecar: bound by us, so SO_REUSEADDR/SO_REUSEPORT are set before
bind (a restarted proxy must rebind its ports at once, and several workers may share one)."""

from __future__ import annotations

import ipaddress
import socket


def listening_socket(
    host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024
) -> socket.socket:
    """A non-blocking socket listening on host:port (IPv4 or IPv6 by the address' form).

    The caller owns the socket (hand it to `loop.create_server(sock=...)`). OSError escapes
    (address in use, permission); the socket is closed before it does."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "::" serves IPv6 only, as Envoy's listeners do unless ipv4_compat is set.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
