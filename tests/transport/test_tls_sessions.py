"""Session resumption between mesh contexts over real loopback TLS 1.3, on asyncio and uvloop:
the second connection to an endpoint resumes, both sides still know each other's SPIFFE id,
and nothing resumes across a rotation, across endpoints, or with an expired identity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

from cryptography import x509

from gossamer.transport.svid import peer_identity
from gossamer.transport.tls import MeshTls
from gossamer.transport.tls_sessions import (
    ResumingClientContext,
    remember_session,
    resuming_to,
)
from gossamer.waits import bounded
from tests.transport.certs import TestCA
from tests.transport.loops import Run

SERVER_ID = "spiffe://cluster.local/ns/default/sa/reviews"
OTHER_SERVER_ID = "spiffe://cluster.local/ns/default/sa/ratings"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/productpage"
SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"


@dataclass
class Seen:
    """What the server saw of one connection."""

    resumed: bool
    peer: str | None
    serial: int


@dataclass
class Server:
    """A mesh mTLS server answering each chunk with `ok`; records every connection."""

    mesh: MeshTls
    seen: list[Seen] = field(default_factory=list)

    async def start(self, port: int = 0) -> int:
        server = self

        class Answer(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.Transport, transport)
                ssl_object = transport.get_extra_info("ssl_object")
                der = ssl_object.getpeercert(binary_form=True)
                serial = x509.load_der_x509_certificate(der).serial_number if der else 0
                peer = peer_identity(ssl_object)
                server.seen.append(Seen(ssl_object.session_reused, peer, serial))

            def data_received(self, data: bytes) -> None:
                self.transport.write(b"ok")

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            Answer, "127.0.0.1", port, ssl=self.mesh.server(), ssl_handshake_timeout=5
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


@asynccontextmanager
async def serving(mesh: MeshTls, port: int = 0) -> AsyncIterator[tuple[int, Server]]:
    server = Server(mesh)
    bound = await server.start(port)
    try:
        yield bound, server
    finally:
        await server.stop()


@dataclass
class Connected:
    resumed: bool
    peer: str | None


async def connect(context: ResumingClientContext, port: int, *, endpoint: bool = True) -> Connected:
    """One connection as the sidecar opens it: within `resuming_to` (unless told not to), the
    session kept once the server's first bytes are read."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    class Client(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            cast(asyncio.Transport, transport).write(b"hello")

        def data_received(self, data: bytes) -> None:
            if not done.done():
                done.set_result(None)

    async def open_() -> asyncio.BaseTransport:
        transport, _ = await loop.create_connection(
            Client, "127.0.0.1", port, ssl=context, server_hostname=SNI
        )
        return transport

    if endpoint:
        with resuming_to("127.0.0.1", port):
            transport = await open_()
    else:
        transport = await open_()
    await bounded(done, 5)
    remember_session(transport)
    ssl_object = transport.get_extra_info("ssl_object")
    result = Connected(ssl_object.session_reused, peer_identity(ssl_object))
    transport.close()
    return result


def test_a_second_connection_resumes_and_both_sides_still_know_each_other(
    run: Run, ca: TestCA
) -> None:
    async def scenario() -> None:
        client = _client(MeshTls(ca.issue(CLIENT_ID)))
        async with serving(MeshTls(ca.issue(SERVER_ID))) as (port, server):
            first = await connect(client, port)
            kept = dict(client._sessions)
            second, third = [await connect(client, port) for _ in range(2)]
        # The first ticket serves every resumption (none is read back from resumed ones).
        assert len(kept) == 1 and all(client._sessions[k] is v for k, v in kept.items())
        assert (first.resumed, second.resumed, third.resumed) == (False, True, True)
        # The identities travel in the session: SAN checks and principals work as before.
        assert first.peer == second.peer == third.peer == SERVER_ID
        assert [s.peer for s in server.seen] == [CLIENT_ID] * 3
        assert [s.resumed for s in server.seen] == [False, True, True]

    run(scenario())


def test_sessions_are_kept_per_endpoint(run: Run, ca: TestCA) -> None:
    """Two endpoints of one cluster (same SNI), alternately, as round robin does: each resumes
    its own session instead of being offered the other's."""

    async def scenario() -> None:
        client = _client(MeshTls(ca.issue(CLIENT_ID)))
        async with (
            serving(MeshTls(ca.issue(SERVER_ID))) as (one, _),
            serving(MeshTls(ca.issue(SERVER_ID))) as (two, _),
        ):
            resumed = [(await connect(client, port)).resumed for port in (one, two, one, two)]
        assert resumed == [False, False, True, True]
        assert client.remembered == 2

    run(scenario())


def test_a_client_rotation_starts_with_a_full_handshake_presenting_the_new_certificate(
    run: Run, ca: TestCA
) -> None:
    async def scenario() -> None:
        mesh = MeshTls(ca.issue(CLIENT_ID))
        async with serving(MeshTls(ca.issue(SERVER_ID))) as (port, server):
            before = [await connect(_client(mesh), port) for _ in range(2)]
            mesh.rotate(ca.issue(CLIENT_ID))
            after = [await connect(_client(mesh), port) for _ in range(2)]
        assert [c.resumed for c in before + after] == [False, True, False, True]
        serials = [s.serial for s in server.seen]
        assert serials[0] == serials[1] != serials[2] == serials[3]
        assert serials[2] == mesh.material.serial  # resumed or not, the new certificate

    run(scenario())


def test_a_server_rotation_turns_an_old_ticket_into_a_full_handshake(run: Run, ca: TestCA) -> None:
    async def scenario() -> None:
        server_mesh = MeshTls(ca.issue(SERVER_ID))
        client = _client(MeshTls(ca.issue(CLIENT_ID)))
        async with serving(server_mesh) as (port, _):
            assert [(await connect(client, port)).resumed for _ in range(2)] == [False, True]
        server_mesh.rotate(ca.issue(SERVER_ID))
        # The same endpoint serving its new certificate: the old ticket is offered, the server
        # cannot open it (new ticket keys), so it costs a full handshake and nothing else.
        async with serving(server_mesh, port):
            after = [await connect(client, port) for _ in range(2)]
        assert [c.resumed for c in after] == [False, True]
        assert [c.peer for c in after] == [SERVER_ID, SERVER_ID]

    run(scenario())


def test_an_expired_identity_offers_no_session(run: Run, ca: TestCA) -> None:
    async def scenario() -> None:
        client = _client(MeshTls(ca.issue(CLIENT_ID)))
        async with serving(MeshTls(ca.issue(SERVER_ID))) as (port, _):
            assert (await connect(client, port)).resumed is False
            client.offer_until = time.time() - 1  # the client's own certificate expired
            assert (await connect(client, port)).resumed is False

    run(scenario())


def test_a_connection_outside_resuming_to_offers_and_keeps_nothing(run: Run, ca: TestCA) -> None:
    async def scenario() -> None:
        client = _client(MeshTls(ca.issue(CLIENT_ID)))
        async with serving(MeshTls(ca.issue(SERVER_ID))) as (port, _):
            resumed = [(await connect(client, port, endpoint=False)).resumed for _ in range(2)]
        assert resumed == [False, False]
        assert client.remembered == 0

    run(scenario())


def test_mesh_client_contexts_stop_offering_when_their_certificate_expires(ca: TestCA) -> None:
    mesh = MeshTls(ca.issue(CLIENT_ID))
    client = _client(mesh)
    assert client.offer_until == mesh.material.leaf().not_valid_after_utc.timestamp()


def _client(mesh: MeshTls) -> ResumingClientContext:
    return cast(ResumingClientContext, mesh.client([SERVER_ID]).ssl_context)
