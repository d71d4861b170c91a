"""Network RBAC filters in the sidecar, against a real Envoy given the same listener protos.

The upstream greets first (a server-first protocol, as MySQL does) and then echoes upper-cased
lines: Envoy connects upstream at once and decides on the client's first bytes, so a denied
client still reads the greeting, then the connection closes and its bytes never reach the
upstream. The same filters in front of an HCM close the connection without an HTTP response.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gossamer.control.translate import listeners
from tests.ports import free_port
from tests.proxy.server.harness import running
from tests.proxy.server.protos import route, routes, static_cluster
from tests.proxy.server.rbac_listeners import (
    ALLOW_ALL,
    ANY,
    envoy_serving,
    exchange,
    network_rbac_filter,
    tcp_rbac_listener,
)
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

FROM_LOOPBACK = {
    "action": "DENY",
    "policies": {
        "loopback": {
            "permissions": [ANY],
            "principals": [{"remote_ip": {"address_prefix": "127.0.0.0", "prefix_len": 8}}],
        }
    },
}
TCP: dict[str, list[dict[str, Any]]] = {
    "tcp_allow": [{"stat_prefix": "allow.", "rules": ALLOW_ALL}],
    "tcp_nothing": [{"stat_prefix": "nothing.", "rules": {}}],
    "tcp_deny_loopback": [
        {"stat_prefix": "first.", "rules": ALLOW_ALL},
        {"stat_prefix": "second.", "rules": FROM_LOOPBACK},
    ],
    "tcp_shadow": [{"stat_prefix": "shadow.", "shadow_rules": {}}],
}


@dataclass(frozen=True)
class Conversation:
    received: bytes  # everything the client read until the close (or 3 s)
    closed: bool


class Greeter:
    """Greets each connection, then echoes lines upper-cased; records what it was sent."""

    def __init__(self) -> None:
        self.got = bytearray()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"greeting\n")
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                self.got += line
                writer.write(line.upper())
        writer.close()


async def converse(port: int) -> Conversation:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    closed = False
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                received += await reader.readuntil(b"\n")
        writer.write(b"ping\n")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                while len(received) < len(b"greeting\nPING\n"):
                    chunk = await reader.read(100)
                    if not chunk:
                        closed = True
                        break
                    received += chunk
    except (ConnectionError, asyncio.IncompleteReadError):
        closed = True
    finally:
        writer.close()
    return Conversation(bytes(received), closed)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("network-rbac-envoy")


def hcm_behind_network_rbac(name: str, port: int, rbac: dict[str, Any]) -> Any:
    table = routes(name, (["*"], [route("backend")]))
    filters = [network_rbac_filter(rbac), listeners.inline_routes_filter(name, table)]
    return listeners.socket_listener(name, "127.0.0.1", port, filters, bind=True)


async def test_tcp_connections_get_what_envoy_gives_them(workdir: Path) -> None:
    greeter = Greeter()
    cluster = static_cluster("backend", await greeter.start())
    ours_ports = {name: free_port() for name in TCP}
    ours = [tcp_rbac_listener(name, ours_ports[name], c) for name, c in TCP.items()]
    try:
        with envoy_serving(ours, [cluster], workdir) as (_envoy, envoy_ports):
            async with running(cluster, *ours):
                results = {}
                for name in TCP:
                    theirs = await converse(envoy_ports[name])
                    envoy_got = bytes(greeter.got)
                    greeter.got.clear()
                    mine = await converse(ours_ports[name])
                    assert (mine, bytes(greeter.got)) == (theirs, envoy_got), name
                    greeter.got.clear()
                    results[name] = mine
    finally:
        assert greeter.server is not None
        greeter.server.close()
    assert results["tcp_allow"] == Conversation(b"greeting\nPING\n", False)
    assert results["tcp_nothing"] == Conversation(b"greeting\n", True)
    assert results["tcp_deny_loopback"].closed
    assert results["tcp_shadow"] == results["tcp_allow"]


async def test_network_rbac_before_an_hcm_closes_without_a_response(workdir: Path) -> None:
    greeter = Greeter()  # never reached: requests are denied or fail upstream alike
    cluster = static_cluster("backend", await greeter.start())
    deny = hcm_behind_network_rbac("hcm_nothing", free_port(), {"stat_prefix": "n.", "rules": {}})
    try:
        with envoy_serving([deny], [cluster], workdir) as (_envoy, envoy_ports):
            async with running(cluster, deny):
                wire = b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n"
                theirs = await exchange(envoy_ports["hcm_nothing"], wire)
                mine = await exchange(deny.address.socket_address.port_value, wire)
    finally:
        assert greeter.server is not None
        greeter.server.close()
    assert mine == theirs
    assert mine.status is None
