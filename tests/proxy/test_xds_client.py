"""XdsClient against our real ADS server in process: readiness, pushes, NACKs, reconnects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gossamer.control.snapshots import TranslatingSource
from gossamer.control.translate import listeners as translate
from gossamer.control.world import World
from gossamer.control.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, AdsServer
from gossamer.proxy.xds_client import Backoff
from tests.control.xds.xds_world import StaticSource, cluster, endpoints
from tests.polling import until
from tests.proxy.config.meshes import REVIEWS_V1, REVIEWS_V2, endpoint_addresses, world
from tests.proxy.xds.clients import (
    REVIEWS,
    cluster_for,
    fast_server,
    node_view,
    our_view,
    running_client,
    synced,
    tcp_world,
    with_added,
)


@dataclass
class Plane:
    """An in-process AdsServer translating a World that tests replace."""

    current: World
    server: AdsServer

    def publish(self, new: World) -> None:
        self.current = new
        self.server.notify(new.revision)


@pytest.fixture
async def plane() -> AsyncIterator[Plane]:
    holder: list[Plane] = []
    source = TranslatingSource(lambda: holder[0].current)
    server = fast_server(source)
    holder.append(Plane(world(REVIEWS_V1), server))
    await server.start()
    yield holder[0]
    await server.stop(None)


async def test_reaches_complete_and_the_server_sees_every_type_acked(plane: Plane) -> None:
    async with running_client(plane.server.port) as running:
        config = await running.published.until(lambda c: c.complete)
        assert {"virtualOutbound", "virtualInbound", "0.0.0.0_9080"} <= set(config.listeners)
        v1 = f"outbound|9080|v1|{REVIEWS}"
        assert endpoint_addresses(config, v1) == [("127.0.0.1", 19001)]
        assert cluster_for(config, b"reviews:9080") == v1
        await until(lambda: synced(plane.server))
        view = our_view(plane.server)
        for short, type_url in (
            ("lds", LISTENER),
            ("rds", ROUTE),
            ("cds", CLUSTER),
            ("eds", ENDPOINT),
        ):
            assert view.types[short].acked_version == config.versions[type_url]
        status = running.client.status()
        assert status.connected and status.complete and status.last_nack is None


async def test_a_virtual_service_change_routes_differently(plane: Plane) -> None:
    async with running_client(plane.server.port) as running:
        first = await running.published.until(lambda c: c.complete)
        assert cluster_for(first, b"reviews") == f"outbound|9080|v1|{REVIEWS}"
        plane.publish(world(REVIEWS_V2, revision=2))
        v2 = f"outbound|9080|v2|{REVIEWS}"
        second = await running.published.until(lambda c: cluster_for(c, b"reviews") == v2)
        assert second.complete
        # Unchanged listeners keep their compiled objects (the dataplane keeps their state).
        assert second.listeners["virtualOutbound"] is first.listeners["virtualOutbound"]


@pytest.fixture
async def static_plane() -> AsyncIterator[tuple[StaticSource, AdsServer]]:
    source = StaticSource(tcp_world(7000, 17000))
    server = fast_server(source)
    await server.start()
    yield source, server
    await server.stop(None)


async def test_a_bad_listener_is_nacked_and_never_applied(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    async with running_client(server.port) as running:
        good = await running.published.until(lambda c: c.complete)
        assert set(good.listeners) == {"db"}
        assert endpoint_addresses(good, "db") == [("127.0.0.1", 17000)]
        # The push moves "db" and adds a broken "web": as Envoy, "db" moves, "web" is NACKed.
        source.current = tcp_world(7005, 17000, bad=True)
        server.notify(2)

        def nacked() -> bool:
            view = node_view(server)
            return view is not None and view.status("lds").name == "NACKED"

        await until(nacked)
        view = our_view(server)
        nack = view.types["lds"].last_nack
        assert nack is not None and nack.code == 13
        assert 'listener "web"' in nack.message and "router filter must be the last" in nack.message
        assert view.types["lds"].acked_version == good.versions[LISTENER]
        status = running.client.status()
        assert status.nacks == 1 and status.last_nack is not None
        assert "router filter must be the last" in status.last_nack
        partial = running.published.last
        assert set(partial.listeners) == {"db"} and partial.listeners["db"].port == 7005
        assert status.versions[LISTENER] == good.versions[LISTENER]  # version did not advance

        # A fixed push is accepted again.
        source.current = tcp_world(7001, 17000)
        server.notify(3)
        fixed = await running.published.until(lambda c: c.listeners["db"].port == 7001)
        assert fixed.complete
        await until(lambda: synced(server, ("lds", "cds", "eds")))


async def test_reconnects_to_a_restarted_server_and_resyncs(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    async with running_client(server.port) as running:
        good = await running.published.until(lambda c: c.complete)
        port = server.port
        await server.stop(None)
        await until(lambda: not running.client.status().connected)
        assert running.published.last is good  # the last config stays in force
        restarted = fast_server(source)
        await restarted.start(port=port)
        try:
            await until(lambda: synced(restarted, ("lds", "cds", "eds")))
            status = running.client.status()
            assert status.connected and status.streams >= 2
            source.current = tcp_world(7002, 17000)
            restarted.notify(5)
            await running.published.until(lambda c: c.listeners["db"].port == 7002)
        finally:
            await restarted.stop(None)


async def test_keeps_retrying_while_nothing_listens() -> None:
    from tests.ports import free_port

    async with running_client(free_port()) as running:
        await until(lambda: running.client.status().last_error is not None)
        await asyncio.sleep(0.5)
        status = running.client.status()
        assert not status.connected and status.streams >= 3
        assert running.published.configs == []


def test_backoff_doubles_to_the_cap_with_full_jitter() -> None:
    top = Backoff(0.1, 10.0, rand=lambda: 1.0)
    assert [round(top.next(), 3) for _ in range(9)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10]
    top.reset()
    assert top.next() == pytest.approx(0.1)
    low = Backoff(0.1, 10.0, rand=lambda: 0.0)
    assert low.next() == pytest.approx(0.01)  # never a busy loop


async def test_accepts_responses_larger_than_grpcs_default_limit(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    big = cluster("big")
    big.metadata.filter_metadata["note"].update({"text": "x" * (5 << 20)})  # 5 MiB
    source.current = with_added(source.current, big, endpoints("big", 1), revision=9)
    async with running_client(server.port) as running:
        config = await running.published.until(lambda c: c.complete and "big" in c.clusters)
        assert {"big", "db"} <= set(config.clusters)


RATINGS = """
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1, namespace: default}
spec:
  address: 127.0.0.4
  labels: {app: ratings}
  ports: {http: 19004}
"""


def eds_names(server: AdsServer) -> set[str]:
    return set(our_view(server).types["eds"].names)


async def test_eds_subscription_follows_the_clusters(plane: Plane) -> None:
    ratings = "outbound|9080||ratings.default.svc.cluster.local"
    async with running_client(plane.server.port) as running:
        await running.published.until(lambda c: c.complete)
        await until(lambda: synced(plane.server))
        assert ratings not in eds_names(plane.server)
        plane.publish(world(REVIEWS_V1, RATINGS, revision=2))
        config = await running.published.until(
            lambda c: c.complete and c.endpoints_for(ratings) is not None
        )
        assert endpoint_addresses(config, ratings) == [("127.0.0.4", 19004)]
        assert cluster_for(config, b"ratings:9080") == ratings
        await until(lambda: ratings in eds_names(plane.server))
        plane.publish(world(REVIEWS_V1, revision=3))
        gone = await running.published.until(lambda c: ratings not in c.clusters)
        assert ratings not in gone.endpoints and gone.complete
        await until(lambda: ratings not in eds_names(plane.server) and synced(plane.server))


async def test_initial_fetch_timeout_initializes_without_a_missing_route(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    hcm = translate.rds_filter("nowhere")  # the control plane never sends this RDS
    web = translate.socket_listener("web", "127.0.0.1", 9080, [hcm], bind=True)
    source.current = with_added(source.current, web, revision=4)
    async with running_client(server.port, initial_fetch_timeout=0.3) as running:
        waiting = await running.published.until(lambda c: c.missing == {"rds/nowhere"})
        assert not waiting.initialized
        began = time.monotonic()
        config = await running.published.until(lambda c: c.initialized)
        assert time.monotonic() - began > 0.1
        assert not config.complete and config.missing == {"rds/nowhere"}
        assert running.client.status().initialized


def test_runs_on_uvloop() -> None:
    """The process entry point runs the client on uvloop (grpc.aio created after the policy)."""
    import uvloop

    async def scenario() -> tuple[bool, set[str]]:
        server = fast_server(StaticSource(tcp_world(7000, 17000)))
        await server.start()
        try:
            async with running_client(server.port) as running:
                config = await running.published.until(lambda c: c.complete)
                loop_is_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
                return loop_is_uvloop, set(config.listeners)
        finally:
            await server.stop(None)

    assert uvloop.run(scenario()) == (True, {"db"})
