"""XdsClient against our real ADS server (in process) and the real `gossamer controlplane`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import discovery_pb2

from gossamer.codec.headers import Headers
from gossamer.control.snapshots import TranslatingSource
from gossamer.control.translate import listeners as translate
from gossamer.control.world import World
from gossamer.control.xds import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    AdsServer,
    Snapshot,
)
from gossamer.proxy.config.snapshot import ProxyConfig
from gossamer.proxy.xds_client import Backoff, XdsClient, make_node
from gossamer.runtime.envoy import node_id, node_metadata
from tests.control.xds.xds_world import StaticSource, cluster, endpoints
from tests.proxy.config.meshes import REVIEWS_V1, REVIEWS_V2, SERVICES, world

NODE_ID = node_id("sidecar", "10.0.0.9", "productpage-1")
REVIEWS = "reviews.default.svc.cluster.local"


def sidecar_node() -> Any:
    meta = node_metadata(labels={"app": "productpage"}, instance_ips=["10.0.0.9"])
    return make_node(NODE_ID, "productpage.default", meta)


@dataclass
class Published:
    """Every ProxyConfig the client published, and a bounded wait for one that satisfies a test."""

    configs: list[ProxyConfig] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, config: ProxyConfig) -> None:
        self.configs.append(config)
        self.changed.set()

    @property
    def last(self) -> ProxyConfig:
        return self.configs[-1]

    async def until(
        self, check: Callable[[ProxyConfig], bool], within: float = 10.0
    ) -> ProxyConfig:
        deadline = time.monotonic() + within
        while not (self.configs and check(self.configs[-1])):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                last = self.configs[-1] if self.configs else None
                raise AssertionError(f"no such config within {within}s; last {last!r}")
            try:
                async with asyncio.timeout(left):
                    await self.changed.wait()
            except TimeoutError:
                pass
        return self.configs[-1]


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@dataclass
class Running:
    client: XdsClient
    published: Published
    task: asyncio.Task[None]


async def start_client(port: int, initial_fetch_timeout: float = 15.0) -> Running:
    published = Published()
    client = XdsClient(
        f"127.0.0.1:{port}",
        sidecar_node(),
        published,
        backoff=Backoff(0.05, 0.2),
        initial_fetch_timeout=initial_fetch_timeout,
    )
    return Running(client, published, asyncio.create_task(client.run()))


async def stop_client(running: Running) -> None:
    await running.client.stop()
    await asyncio.wait_for(running.task, 5)


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
    server = AdsServer(source, debounce=0.01, max_delay=0.1)
    holder.append(Plane(world(REVIEWS_V1), server))
    await server.start()
    yield holder[0]
    await server.stop(None)


def synced(server: AdsServer) -> bool:
    views = [v for v in server.connections() if v.node_id == NODE_ID]
    shorts = ("lds", "rds", "cds", "eds")
    return bool(views) and all(views[-1].status(s).name == "SYNCED" for s in shorts)


@dataclass
class Call:
    """A request head as routing reads it (routing.request.RequestView)."""

    target: bytes = b"/"
    method: bytes = b"GET"
    headers: Headers = field(default_factory=Headers)


def cluster_for(config: ProxyConfig, authority: bytes, port: int = 9080) -> str:
    """Where the outbound listener for `port` sends a GET / with this Host."""
    listener = config.listeners[f"0.0.0.0_{port}"]
    chain = listener.chain_for(port)
    assert chain is not None
    table = config.route_table(chain.handler)  # type: ignore[arg-type]
    assert table is not None
    route = table.select(Call(), authority)
    assert route is not None
    return str(route.action.pick_cluster(0.5))


async def test_reaches_complete_and_the_server_sees_every_type_acked(plane: Plane) -> None:
    running = await start_client(plane.server.port)
    try:
        config = await running.published.until(lambda c: c.complete)
        assert {"virtualOutbound", "virtualInbound", "0.0.0.0_9080"} <= set(config.listeners)
        v1 = f"outbound|9080|v1|{REVIEWS}"
        assert [(e.host, e.port) for e in config.endpoints_for(v1).endpoints] == [
            ("127.0.0.1", 19001)
        ]
        assert cluster_for(config, b"reviews:9080") == v1
        await eventually(lambda: synced(plane.server))
        view = next(v for v in plane.server.connections() if v.node_id == NODE_ID)
        for short, type_url in (
            ("lds", LISTENER),
            ("rds", ROUTE),
            ("cds", CLUSTER),
            ("eds", ENDPOINT),
        ):
            assert view.types[short].acked_version == config.versions[type_url]
        status = running.client.status()
        assert status.connected and status.complete and status.last_nack is None
    finally:
        await stop_client(running)


async def test_a_virtual_service_change_routes_differently(plane: Plane) -> None:
    running = await start_client(plane.server.port)
    try:
        first = await running.published.until(lambda c: c.complete)
        assert cluster_for(first, b"reviews") == f"outbound|9080|v1|{REVIEWS}"
        plane.publish(world(REVIEWS_V2, revision=2))
        v2 = f"outbound|9080|v2|{REVIEWS}"
        second = await running.published.until(lambda c: cluster_for(c, b"reviews") == v2)
        assert second.complete
        # Unchanged listeners keep their compiled objects (the dataplane keeps their state).
        assert second.listeners["virtualOutbound"] is first.listeners["virtualOutbound"]
    finally:
        await stop_client(running)


def tcp_world(listener_port: int, backend_port: int, *, bad: bool = False) -> Snapshot:
    """A TCP listener to one EDS cluster; `bad` adds an HTTP listener Envoy would NACK."""
    tcp = translate.tcp_proxy_filter("db", [("db", 1)])
    messages: list[Any] = [
        translate.socket_listener("db", "127.0.0.1", listener_port, [tcp], bind=True),
        cluster("db"),
        endpoints("db", backend_port),
    ]
    if bad:
        hcm = translate.rds_filter("9080")
        broken = translate.socket_listener("web", "127.0.0.1", 9080, [hcm], bind=True)
        config = hcm_pb2.HttpConnectionManager()
        broken.filter_chains[0].filters[0].typed_config.Unpack(config)
        config.http_filters.reverse()  # router first
        broken.filter_chains[0].filters[0].typed_config.Pack(config)
        messages.append(broken)
    return Snapshot.build(messages, revision=2 if bad else 1)


@pytest.fixture
async def static_plane() -> AsyncIterator[tuple[StaticSource, AdsServer]]:
    source = StaticSource(tcp_world(7000, 17000))
    server = AdsServer(source, debounce=0.01, max_delay=0.1)
    await server.start()
    yield source, server
    await server.stop(None)


async def test_a_bad_listener_is_nacked_and_never_applied(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    running = await start_client(server.port)
    try:
        good = await running.published.until(lambda c: c.complete)
        assert set(good.listeners) == {"db"}
        assert [(e.host, e.port) for e in good.endpoints_for("db").endpoints] == [
            ("127.0.0.1", 17000)
        ]
        # The push moves "db" and adds a broken "web": as Envoy, "db" moves, "web" is NACKed.
        source.current = tcp_world(7005, 17000, bad=True)
        server.notify(2)

        def nacked() -> bool:
            view = next((v for v in server.connections() if v.node_id == NODE_ID), None)
            return view is not None and view.status("lds").name == "NACKED"

        await eventually(nacked)
        view = next(v for v in server.connections() if v.node_id == NODE_ID)
        nack = view.types["lds"].last_nack
        assert nack is not None and nack.code == 3
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
        await eventually(lambda: synced_types(server, ("lds", "cds", "eds")))
    finally:
        await stop_client(running)


def synced_types(server: AdsServer, shorts: tuple[str, ...]) -> bool:
    views = [v for v in server.connections() if v.node_id == NODE_ID]
    return bool(views) and all(views[-1].status(s).name == "SYNCED" for s in shorts)


async def test_reconnects_to_a_restarted_server_and_resyncs(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    running = await start_client(server.port)
    try:
        good = await running.published.until(lambda c: c.complete)
        port = server.port
        await server.stop(None)
        await eventually(lambda: not running.client.status().connected)
        assert running.published.last is good  # the last config stays in force
        restarted = AdsServer(source, debounce=0.01, max_delay=0.1)
        await restarted.start(port=port)
        try:
            await eventually(lambda: synced_types(restarted, ("lds", "cds", "eds")))
            status = running.client.status()
            assert status.connected and status.streams >= 2
            source.current = tcp_world(7002, 17000)
            restarted.notify(5)
            await running.published.until(lambda c: c.listeners["db"].port == 7002)
        finally:
            await restarted.stop(None)
    finally:
        await stop_client(running)


async def test_keeps_retrying_while_nothing_listens() -> None:
    from tests.e2e.harness import free_port

    running = await start_client(free_port())
    try:
        await eventually(lambda: running.client.status().last_error is not None)
        await asyncio.sleep(0.5)
        status = running.client.status()
        assert not status.connected and status.streams >= 3
        assert running.published.configs == []
    finally:
        await stop_client(running)


def test_backoff_doubles_to_the_cap_with_full_jitter() -> None:
    top = Backoff(0.1, 10.0, rand=lambda: 1.0)
    assert [round(top.next(), 3) for _ in range(9)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10]
    top.reset()
    assert top.next() == pytest.approx(0.1)
    low = Backoff(0.1, 10.0, rand=lambda: 0.0)
    assert low.next() == pytest.approx(0.01)  # never a busy loop


@pytest.mark.e2e
async def test_real_control_plane_kill_and_restart(tmp_path: Path) -> None:
    from tests.e2e.harness import ControlPlane

    cp = ControlPlane(tmp_path / "home", debounce_ms=20, log_level="warning")
    await asyncio.to_thread(cp.start)
    running: Running | None = None
    try:
        await asyncio.to_thread(cp.apply, SERVICES + "---\n" + REVIEWS_V1)
        running = await start_client(cp.xds_port)
        first = await running.published.until(lambda c: c.complete, within=30)
        assert cluster_for(first, b"reviews") == f"outbound|9080|v1|{REVIEWS}"
        view = await asyncio.to_thread(cp.wait_synced, NODE_ID)
        assert view["types"]["lds"]["status"] == "SYNCED"

        await asyncio.to_thread(cp.kill)
        await eventually(lambda: not running.client.status().connected)
        assert running.published.last is first  # still serving the last config
        await asyncio.to_thread(cp.start)
        await asyncio.to_thread(cp.wait_synced, NODE_ID)
        revision = await asyncio.to_thread(cp.apply, REVIEWS_V2)
        v2 = f"outbound|9080|v2|{REVIEWS}"
        await running.published.until(lambda c: cluster_for(c, b"reviews") == v2, within=30)
        # Only RDS changed: the other types are not resent, so only RDS is at the new revision.
        await asyncio.to_thread(cp.wait_synced, NODE_ID, ("rds",), revision=revision)
    finally:
        if running is not None:
            await stop_client(running)
        await asyncio.to_thread(cp.stop)


async def test_accepts_responses_larger_than_grpcs_default_limit(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    big = cluster("big")
    big.metadata.filter_metadata["note"].update({"text": "x" * (5 << 20)})  # 5 MiB
    present = [r for of_type in source.current.resources.values() for r in of_type.values()]
    source.current = Snapshot.build([big, endpoints("big", 1), *present], revision=9)
    running = await start_client(server.port)
    try:
        config = await running.published.until(lambda c: c.complete and "big" in c.clusters)
        assert {"big", "db"} <= set(config.clusters)
    finally:
        await stop_client(running)


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
    view = next(v for v in server.connections() if v.node_id == NODE_ID)
    return set(view.types["eds"].names)


async def test_eds_subscription_follows_the_clusters(plane: Plane) -> None:
    ratings = "outbound|9080||ratings.default.svc.cluster.local"
    running = await start_client(plane.server.port)
    try:
        await running.published.until(lambda c: c.complete)
        await eventually(lambda: synced(plane.server))
        assert ratings not in eds_names(plane.server)
        plane.publish(world(REVIEWS_V1, RATINGS, revision=2))
        config = await running.published.until(
            lambda c: c.complete and c.endpoints_for(ratings) is not None
        )
        assert [(e.host, e.port) for e in config.endpoints_for(ratings).endpoints] == [
            ("127.0.0.4", 19004)
        ]
        assert cluster_for(config, b"ratings:9080") == ratings
        await eventually(lambda: ratings in eds_names(plane.server))
        plane.publish(world(REVIEWS_V1, revision=3))
        gone = await running.published.until(lambda c: ratings not in c.clusters)
        assert ratings not in gone.endpoints and gone.complete
        await eventually(lambda: ratings not in eds_names(plane.server) and synced(plane.server))
    finally:
        await stop_client(running)


async def test_initial_fetch_timeout_initializes_without_a_missing_route(
    static_plane: tuple[StaticSource, AdsServer],
) -> None:
    source, server = static_plane
    hcm = translate.rds_filter("nowhere")  # the control plane never sends this RDS
    web = translate.socket_listener("web", "127.0.0.1", 9080, [hcm], bind=True)
    present = [r for of_type in source.current.resources.values() for r in of_type.values()]
    source.current = Snapshot.build([web, *present], revision=4)
    running = await start_client(server.port, initial_fetch_timeout=0.3)
    try:
        waiting = await running.published.until(lambda c: c.missing == {"rds/nowhere"})
        assert not waiting.initialized
        began = time.monotonic()
        config = await running.published.until(lambda c: c.initialized)
        assert time.monotonic() - began > 0.1
        assert not config.complete and config.missing == {"rds/nowhere"}
        assert running.client.status().initialized
    finally:
        await stop_client(running)


def test_runs_on_uvloop() -> None:
    """The process entry point runs the client on uvloop (grpc.aio created after the policy)."""
    import uvloop

    async def scenario() -> tuple[bool, set[str]]:
        server = AdsServer(StaticSource(tcp_world(7000, 17000)), debounce=0.01, max_delay=0.1)
        await server.start()
        try:
            running = await start_client(server.port)
            try:
                config = await running.published.until(lambda c: c.complete)
                loop_is_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
                return loop_is_uvloop, set(config.listeners)
            finally:
                await stop_client(running)
        finally:
            await server.stop(None)

    assert uvloop.run(scenario()) == (True, {"db"})


class RecordingAds:
    """A scripted ADS server: records every request and sends the responses a test queues."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.server: Any = None
        self.port = 0

    async def start(self) -> None:
        async def stream(requests: Any, context: Any) -> Any:
            async def record() -> None:
                async for request in requests:
                    self.requests.put_nowait(request)

            reader = asyncio.create_task(record())
            try:
                while True:
                    yield await self.responses.get()
            finally:
                reader.cancel()

        handler = grpc.stream_stream_rpc_method_handler(
            stream,
            request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
        )
        service = "envoy.service.discovery.v3.AggregatedDiscoveryService"
        generic = grpc.method_handlers_generic_handler(
            service, {"StreamAggregatedResources": handler}
        )
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((generic,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    def send(self, type_url: str, version: str, nonce: str, *messages: Any) -> None:
        response = discovery_pb2.DiscoveryResponse(
            type_url=type_url, version_info=version, nonce=nonce
        )
        for m in messages:
            response.resources.add().Pack(m)
        self.responses.put_nowait(response)

    async def next_request(self, type_url: str) -> Any:
        """The next request of this type (others are skipped), within 5 s."""
        async with asyncio.timeout(5):
            while True:
                request = await self.requests.get()
                if request.type_url == type_url:
                    return request


@pytest.fixture
async def scripted() -> AsyncIterator[RecordingAds]:
    ads = RecordingAds()
    await ads.start()
    yield ads
    await ads.server.stop(None)


def broken_listener(port: int) -> Any:
    return tcp_world(port, 1, bad=True).resources[LISTENER]["web"]


async def test_requests_on_the_wire_are_envoys(scripted: RecordingAds) -> None:
    """Node on the first request only; ACK = version + nonce; NACK = the last ACCEPTED version,
    the rejected nonce and google.rpc INVALID_ARGUMENT naming the resource."""
    running = await start_client(scripted.port)
    try:
        first = await scripted.next_request(CLUSTER)
        assert first.HasField("node") and first.node.id == NODE_ID
        assert list(first.resource_names) == [] and first.response_nonce == ""
        lds = await scripted.next_request(LISTENER)
        assert not lds.HasField("node")

        scripted.send(CLUSTER, "c1", "n1", cluster("db"))
        ack = await scripted.next_request(CLUSTER)
        assert (ack.version_info, ack.response_nonce) == ("c1", "n1")
        assert not ack.HasField("error_detail")
        eds = await scripted.next_request(ENDPOINT)  # follows the EDS cluster
        assert list(eds.resource_names) == ["db"] and eds.response_nonce == ""

        web = listener_pb2.Listener()
        broken_listener(9080).any.Unpack(web)
        scripted.send(LISTENER, "l1", "n2", web)
        nack = await scripted.next_request(LISTENER)
        assert (nack.version_info, nack.response_nonce) == ("", "n2")  # nothing accepted yet
        assert nack.error_detail.code == 3
        assert nack.error_detail.message.startswith('listener "web"')

        good = tcp_world(7000, 1).resources[LISTENER]["db"]
        db = listener_pb2.Listener()
        good.any.Unpack(db)
        scripted.send(LISTENER, "l2", "n3", db)
        ack = await scripted.next_request(LISTENER)
        assert (ack.version_info, ack.response_nonce) == ("l2", "n3")
        scripted.send(LISTENER, "l3", "n4", db, web)
        nack = await scripted.next_request(LISTENER)
        assert (nack.version_info, nack.response_nonce) == ("l2", "n4")
        assert nack.error_detail.code == 3
    finally:
        await stop_client(running)
