"""`gate.peer_identity_of`: the verified client's SPIFFE id of a live connection, for RBAC, XFCC
and metrics, on any TLS server transport (recorded by the inbound accept path or not)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from gossamer.proxy.authz import gate
from gossamer.transport.tls import MeshTls
from gossamer.waits import bounded
from tests.proxy.server.mtls_world import PRODUCTPAGE, SERVER, Identities, mesh_client_context

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class Keep(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[asyncio.BaseTransport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.set_result(transport)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_peer_identity_of_tls_and_plaintext_transports(loop_name: str, tmp_path: Path) -> None:
    ids = Identities.create(tmp_path)
    server_tls = MeshTls(ids.of(SERVER)).server()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        for context, expected in ((server_tls, PRODUCTPAGE.uri), (None, None)):
            made: asyncio.Future[asyncio.BaseTransport] = loop.create_future()
            server = await loop.create_server(
                lambda made=made: Keep(made), "127.0.0.1", 0, ssl=context
            )
            port = server.sockets[0].getsockname()[1]
            client_tls = mesh_client_context(ids.of(PRODUCTPAGE)) if context else None
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_tls, server_hostname="reviews" if context else None
            )
            transport = await bounded(made, 5)
            assert gate.peer_identity_of(transport) == expected
            facts = gate.tcp_connection("127.0.0.1", transport, None)
            assert facts.peer_principal == (expected.encode() if expected else None)
            writer.close()
            transport.close()
            server.close()

    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(scenario())
