"""The destination a connection had before iptables REDIRECT sent it to us (SO_ORIGINAL_DST).

Linux netfilter keeps it in the conntrack entry; `getsockopt(SOL_IP, SO_ORIGINAL_DST)` returns
it as a `sockaddr_in` (IP6T_SO_ORIGINAL_DST on SOL_IPV6 for IPv6, a `sockaddr_in6`). A connection
that was not redirected has no entry (ENOENT) or reports the listening address itself."""

from __future__ import annotations

import socket
import struct
from typing import Protocol

SOL_IP = 0
SOL_IPV6 = 41
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IP6T_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv6/ip6_tables.h
_SOCKADDR_IN = 16
_SOCKADDR_IN6 = 28


class SocketLike(Protocol):
    """A socket or asyncio's TransportSocket (what `get_extra_info("socket")` returns)."""

    @property
    def family(self) -> int: ...

    def getsockopt(self, level: int, optname: int, buflen: int, /) -> bytes: ...


def parse_sockaddr(raw: bytes) -> tuple[str, int] | None:
    """(ip, port) of a raw sockaddr_in / sockaddr_in6; None for another family."""
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None


def original_destination(sock: SocketLike) -> tuple[str, int] | None:
    """(ip, port) the client connected to before redirection; None when the kernel has none
    (no conntrack entry, not a TCP/IP socket). Never raises for an unredirected socket."""
    try:
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST, _SOCKADDR_IN6)
        else:
            raw = sock.getsockopt(SOL_IP, SO_ORIGINAL_DST, _SOCKADDR_IN)
    except OSError:
        return None
    return parse_sockaddr(raw)
