"""AdsServer over a real grpc.aio channel: bookkeeping, debounce and coalescing, resync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from gossamer.control.xds import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    AdsServer,
    Snapshot,
    SyncState,
)
from gossamer.waits import bounded
from tests.control.xds.xds_client import AdsTestClient
from tests.control.xds.xds_world import HOST, ROUTE_NAME, StaticSource, cluster, world
from tests.polling import until

BACKENDS = {"a": 9001, "b": 9002}
LISTENER_NAME = f"{HOST}:8080"


@pytest.fixture
def source() -> StaticSource:
    return StaticSource(world(BACKENDS, {"a": 50, "b": 50}))


@pytest.fixture
async def server(source: StaticSource) -> AsyncIterator[AdsServer]:
    srv = AdsServer(source, debounce=0.05, max_delay=0.5)
    await srv.start()
    yield srv
    await srv.stop(None)


@pytest.fixture
async def client(server: AdsServer) -> AsyncIterator[AdsTestClient]:
    c = AdsTestClient.connect(server.port)
    yield c
    await c.close()


async def sync_proxyless(c: AdsTestClient) -> dict[str, discovery_pb2.DiscoveryResponse]:
    """Subscribe like a gRPC client (LDS → RDS → CDS → EDS), ACKing each response."""
    got = {}
    for type_url, names in (
        (LISTENER, [LISTENER_NAME]),
        (ROUTE, [ROUTE_NAME]),
        (CLUSTER, ["a", "b"]),
        (ENDPOINT, ["a", "b"]),
    ):
        await c.request(type_url, names)
        got[type_url] = r = await c.recv()
        assert r.type_url == type_url and r.nonce and r.version_info
        await c.ack(r, names)
    return got


async def test_subscribe_ack_and_status(server: AdsServer, client: AdsTestClient) -> None:
    got = await sync_proxyless(client)
    assert [a.Is(route_pb2.RouteConfiguration.DESCRIPTOR) for a in got[ROUTE].resources] == [True]
    assert len(got[CLUSTER].resources) == 2
    await until(
        lambda: all(
            v.status(s) is SyncState.SYNCED
            for v in server.connections()
            for s in ("lds", "rds", "cds", "eds")
        )
    )
    [view] = server.connections()
    assert (view.kind, view.namespace) == ("proxyless", "default")
    assert view.row() == {
        "NAME": view.node_id,
        "KIND": "proxyless",
        "NAMESPACE": "default",
        "CDS": "SYNCED",
        "EDS": "SYNCED",
        "LDS": "SYNCED",
        "RDS": "SYNCED",
        "SDS": "NOT SENT",
    }
    lds = view.types["lds"]
    assert not lds.wildcard and lds.names == (LISTENER_NAME,)
    assert lds.acked_version == got[LISTENER].version_info
    assert set(server.sent_resources(view.stream_id)) == {LISTENER, ROUTE, CLUSTER, ENDPOINT}


async def test_nack_recorded_and_not_resent(server: AdsServer, client: AdsTestClient) -> None:
    got = await sync_proxyless(client)
    server.notify(2)  # unchanged config: nothing to send
    assert await client.silent(0.2)
    # A new route the client rejects.
    source: StaticSource = server._source  # type: ignore[assignment]
    source.current = world(BACKENDS, {"a": 10, "b": 90}, revision=3)
    server.notify(3)
    r = await client.recv()
    assert r.type_url == ROUTE and r.version_info != got[ROUTE].version_info
    await client.nack(r, "weights rejected", [ROUTE_NAME], version=got[ROUTE].version_info)
    await until(lambda: server.connections()[0].status("rds") is SyncState.NACKED)
    rds = server.connections()[0].types["rds"]
    assert rds.last_nack is not None
    assert (rds.last_nack.message, rds.last_nack.version) == ("weights rejected", r.version_info)
    assert rds.acked_version == got[ROUTE].version_info and rds.sent_revision == 3
    assert await client.silent(0.2)  # no resend loop


async def test_debounce_coalesces_a_burst(server: AdsServer, client: AdsTestClient) -> None:
    await sync_proxyless(client)
    source: StaticSource = server._source  # type: ignore[assignment]
    calls = source.calls
    for i in range(5):
        source.current = world(BACKENDS, {"a": 10 + i, "b": 90 - i}, revision=10 + i)
        server.notify(10 + i)
        await asyncio.sleep(0.01)
    last = time.monotonic()
    r = await client.recv()
    assert time.monotonic() - last >= 0.04  # the quiet period ran after the last change
    assert r.type_url == ROUTE
    [rc] = [route_pb2.RouteConfiguration.FromString(a.value) for a in r.resources]
    weights = [
        c.weight.value for c in rc.virtual_hosts[0].routes[0].route.weighted_clusters.clusters
    ]
    assert weights == [14, 86]
    assert source.calls == calls + 1 and server.revision == 14
    await client.ack(r, [ROUTE_NAME])
    assert await client.silent(0.2)


async def test_max_delay_bounds_a_long_burst(source: StaticSource) -> None:
    srv = AdsServer(source, debounce=0.1, max_delay=0.2)
    port = await srv.start()
    c = AdsTestClient.connect(port)
    try:
        await sync_proxyless(c)
        start = time.monotonic()
        got = None
        for i in range(40):  # a change every 25 ms for up to 1 s: never quiet for 100 ms
            source.current = world(BACKENDS, {"a": 1 + i, "b": 99 - i}, revision=i + 2)
            srv.notify(i + 2)
            try:
                got = await c.recv(0.025)
                break
            except TimeoutError:
                pass
        assert got is not None and got.type_url == ROUTE
        assert 0.15 <= time.monotonic() - start < 0.9  # fired inside the 1 s burst
    finally:
        await c.close()
        await srv.stop(None)


async def test_unsubscribed_types_are_not_pushed(server: AdsServer, client: AdsTestClient) -> None:
    await client.request(CLUSTER)  # Envoy-style wildcard CDS only
    r = await client.recv()
    assert sorted(cluster_name(a) for a in r.resources) == ["a", "b"]
    await client.ack(r)
    source: StaticSource = server._source  # type: ignore[assignment]
    source.current = world(BACKENDS, {"a": 0, "b": 100}, revision=5)  # a route change only
    server.notify(5)
    assert await client.silent(0.3)
    source.current = world({**BACKENDS, "c": 9003}, {"a": 0, "b": 100}, revision=6)
    server.notify(6)
    r = await client.recv()
    assert sorted(cluster_name(a) for a in r.resources) == ["a", "b", "c"]


def cluster_name(packed: object) -> str:
    return str(cluster("x").FromString(packed.value).name)  # type: ignore[attr-defined]


async def test_streams_share_cached_responses(server: AdsServer) -> None:
    clients = [AdsTestClient.connect(server.port) for _ in range(3)]
    try:
        for c in clients:
            await sync_proxyless(c)
        # The first stream serialized each (type, version); the others reused the bytes.
        assert server.cache.misses == 4 and server.cache.hits == 8
    finally:
        for c in clients:
            await c.close()


async def test_restarted_control_plane_resyncs(source: StaticSource) -> None:
    first = AdsServer(source, debounce=0.01)
    port = await first.start()
    c = AdsTestClient.connect(port)
    got = await sync_proxyless(c)
    await first.stop(None)
    with pytest.raises((grpc.aio.AioRpcError, EOFError)):
        await c.recv()
    await c.close()
    second = AdsServer(source, debounce=0.01)
    assert await second.start(port=port) == port
    c = AdsTestClient.connect(port)
    try:
        # The client comes back with the versions and nonces of the old control plane.
        for type_url, names in ((LISTENER, [LISTENER_NAME]), (CLUSTER, ["a", "b"])):
            old = got[type_url]
            await c.request(type_url, names, version=old.version_info, nonce=old.nonce)
            r = await c.recv()
            assert r.version_info == old.version_info  # same config, same version
            assert r.nonce != old.nonce
    finally:
        await c.close()
        await second.stop(None)


async def test_protocol_errors_end_the_stream(server: AdsServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(ch)
        call = stub.StreamAggregatedResources()
        await call.write(discovery_pb2.DiscoveryRequest(type_url=LISTENER))  # no node
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        delta = stub.DeltaAggregatedResources()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await delta.read()
        assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert server.connections() == []


def padded_clusters(revision: int, count: int = 100, kib: int = 64) -> Snapshot:
    """~6 MiB of clusters: more than the transport buffers for a client that does not read."""
    messages = []
    for i in range(count):
        c = cluster(f"c{i}")
        c.metadata.filter_metadata["pad"].update({"x": "y" * (kib * 1024), "rev": revision})
        messages.append(c)
    return Snapshot.build(messages, revision=revision)


async def test_slow_stream_delays_nobody_and_coalesces() -> None:
    source = StaticSource(padded_clusters(1))
    srv = AdsServer(source, debounce=0.01)
    port = await srv.start()
    big = [("grpc.max_receive_message_length", -1)]
    # The slow client keeps its HTTP/2 windows small (no BDP growth), so the server's writes
    # to it block once a response fills the socket buffers.
    small_windows = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65536)]
    slow_channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=big + small_windows)
    fast = AdsTestClient(
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=big), base_pb2.Node(id="fast")
    )
    try:
        slow = ads_pb2_grpc.AggregatedDiscoveryServiceStub(slow_channel).StreamAggregatedResources()
        await slow.write(
            discovery_pb2.DiscoveryRequest(type_url=CLUSTER, node=base_pb2.Node(id="slow"))
        )
        await fast.request(CLUSTER)
        await fast.ack(await fast.recv())
        for revision in range(2, 6):  # the slow client reads nothing meanwhile
            source.current = padded_clusters(revision)
            srv.notify(revision)
            r = await fast.recv()
            await fast.ack(r)
        latest = r.version_info
        sent = {v.node_id: v.types["cds"].sent_count for v in srv.connections()}
        assert sent["fast"] == 5 and sent["slow"] < 5  # the slow one is stuck in a write
        # Once it reads, it gets what was in flight and then only the latest version.
        versions = []
        for _ in range(5):
            m = await bounded(slow.read(), 5)
            versions.append(m.version_info)
            await slow.write(
                discovery_pb2.DiscoveryRequest(
                    type_url=CLUSTER, version_info=m.version_info, response_nonce=m.nonce
                )
            )
            if m.version_info == latest:
                break
        assert versions[-1] == latest and len(versions) <= 3, versions
    finally:
        await fast.close()
        await slow_channel.close()
        await srv.stop(None)
