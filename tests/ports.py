"""Ports for listeners a test cannot bind to 0 itself (a child process binds them later).

Chosen below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768-60999 by
default): the kernel never hands those out for port-0 binds or outgoing connections, so another
process cannot take the port between our check and the child's bind, which is what made
port-0-then-reuse flaky on a busy machine.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_FALLBACK_LOW = 32768


def _ephemeral_low() -> int:
    try:
        return int(_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_LOW


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, outside the kernel's ephemeral range."""
    low, high = 20000, min(_ephemeral_low(), 32768)
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high} on {host}")
