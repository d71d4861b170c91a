"""Gossamer ↔ Gossamer: one Dataplane's outbound mTLS (this directory's subject) to another
Dataplane's inbound chains (STRICT and PERMISSIVE, the wiring contract's shapes), both on
uvloop with certificates from the real mesh CA. RBAC on the server decides by the SPIFFE id the
client sidecar presented."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gossamer.proxy.dataplane import Dataplane
from tests.proxy.config.mtls_listeners import Mode
from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.mtls_world import (
    PRODUCTPAGE,
    RATINGS,
    SERVER,
    Identities,
    clusters,
    inbound,
)
from tests.proxy.server.protos import free_port
from tests.proxy.server.test_inbound_mtls import ALLOW_PRODUCTPAGE
from tests.proxy.server.upstreams import Upstream
from tests.proxy.upstream.tls.world import (
    assignment,
    eds_cluster,
    mesh_context,
    mesh_sni,
)


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return Identities.create(tmp_path)


@asynccontextmanager
async def server_sidecar(ids: Identities, mode: Mode) -> AsyncIterator[int]:
    """reviews' sidecar: inbound chains in `mode` with RBAC allowing productpage only."""
    async with server_dataplane(ids, mode) as (port, _):
        yield port


@asynccontextmanager
async def server_dataplane(ids: Identities, mode: Mode) -> AsyncIterator[tuple[int, Dataplane]]:
    """`server_sidecar`, with its Dataplane (for its listener counters)."""
    app = await Upstream("reviews-app").start()
    port = free_port()
    try:
        async with running(
            *clusters(app.port, free_port()), inbound(mode, port, [{"rules": ALLOW_PRODUCTPAGE}])
        ) as dp:
            dp.set_identity(ids.of(SERVER))
            yield port, dp
    finally:
        await app.stop()


def client_resources(
    server_port: int, listen: int, *, meshed: bool, per_connection: int | None = None
) -> list[object]:
    """productpage's outbound: auto mTLS to reviews (the endpoint carries tlsMode: istio when
    `meshed`)."""
    context = mesh_context(mesh_sni(9080), [SERVER.uri])
    return [
        eds_cluster("reviews", auto_mtls=context, max_requests_per_connection=per_connection),
        assignment("reviews", server_port, meshed=[server_port] if meshed else []),
        simple(listen, "reviews"),
    ]


async def get(port: int) -> tuple[int, bytes]:
    client = await Client.connect(port)
    try:
        resp = await client.get("/", "reviews")
        return resp.status, resp.body
    finally:
        await client.close()


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE"])
async def test_a_client_sidecar_reaches_a_server_sidecar_over_mtls(
    ids: Identities, mode: Mode
) -> None:
    async with server_sidecar(ids, mode) as server_port:
        listen = free_port()
        async with running(*client_resources(server_port, listen, meshed=True)) as client:
            client.set_identity(ids.of(PRODUCTPAGE))
            for _ in range(2):
                status, body = await get(listen)
                assert status == 200
                seen = json.loads(body)  # what the app behind reviews' sidecar received
                assert seen["upstream"] == "reviews-app"
                xfcc = seen["headers"]["x-forwarded-client-cert"]
                assert f"By={SERVER.uri};" in xfcc and xfcc.endswith(f"URI={PRODUCTPAGE.uri}")
            counters = client.backends["reviews"].stats.counters()
            assert counters["ssl.handshake"] == 1  # the pooled connection served both


async def test_the_server_sidecar_authorizes_the_identity_the_client_presents(
    ids: Identities,
) -> None:
    async with server_sidecar(ids, "STRICT") as server_port:
        listen = free_port()
        # One request per upstream connection: each request shows the identity current then.
        resources = client_resources(server_port, listen, meshed=True, per_connection=1)
        async with running(*resources) as client:
            client.set_identity(ids.of(RATINGS))
            assert await get(listen) == (403, b"RBAC: access denied")
            client.set_identity(ids.of(PRODUCTPAGE))  # the agent hands over another identity
            status, _ = await get(listen)
            assert status == 200


async def test_strict_refuses_a_client_sidecar_that_sends_plaintext(ids: Identities) -> None:
    async with server_sidecar(ids, "STRICT") as server_port:
        listen = free_port()
        # No tlsMode on the endpoint: auto mTLS sends plaintext, which STRICT closes.
        async with running(*client_resources(server_port, listen, meshed=False)) as client:
            client.set_identity(ids.of(PRODUCTPAGE))
            status, _ = await get(listen)
            assert status == 503
        async with running(*client_resources(server_port, listen, meshed=True)) as client:
            client.set_identity(ids.of(PRODUCTPAGE))
            assert (await get(listen))[0] == 200


async def test_new_connections_resume_their_session_and_keep_the_callers_identity(
    ids: Identities,
) -> None:
    """One request per upstream connection (a new handshake each): after the first, the client
    sidecar offers its session and the server resumes it, as between two Envoys; RBAC still
    sees productpage's identity on every resumed connection, and `ssl.session_reused` counts
    on both sides."""
    async with server_dataplane(ids, "STRICT") as (server_port, server):
        listen = free_port()
        resources = client_resources(server_port, listen, meshed=True, per_connection=1)
        async with running(*resources) as client:
            client.set_identity(ids.of(PRODUCTPAGE))
            for _ in range(4):
                status, body = await get(listen)
                assert status == 200  # allowed: the caller is productpage
                xfcc = json.loads(body)["headers"]["x-forwarded-client-cert"]
                assert xfcc.endswith(f"URI={PRODUCTPAGE.uri}")
            counters = client.backends["reviews"].stats.counters()
            prefix = f"listener.127.0.0.1_{server_port}."
            inbound_counters = server.listener_counters
            assert (counters["ssl.handshake"], counters["ssl.session_reused"]) == (4, 3)
            assert inbound_counters[prefix + "ssl.handshake"] == 4
            assert inbound_counters[prefix + "ssl.session_reused"] == 3
