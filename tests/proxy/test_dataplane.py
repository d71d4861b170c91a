"""The Dataplane end to end on loopback: listeners, capture in explicit mode with real
translator output, upstream pools, and config swaps under load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gossamer.control.translate import build_snapshot
from gossamer.proxy.config.snapshot import ProxyConfig, SnapshotBuilder
from gossamer.proxy.dataplane import Dataplane, DataplaneOptions
from tests.control.translate.worlds import world
from tests.proxy.config.meshes import applied, sidecar
from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, proxy_config, route, static_cluster
from tests.proxy.server.upstreams import Upstream

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec:
  address: 127.0.0.1
  labels: {app: reviews, version: v1}
  ports: {http: REVIEWS_PORT}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080, targetPort: APP_PORT}]
"""


PRODUCTPAGE_IP = "127.0.0.5"


def translated(reviews_port: int, app_port: int) -> ProxyConfig:
    """The ProxyConfig the real control plane sends productpage's sidecar (its pod IP is
    PRODUCTPAGE_IP: inbound traffic goes to the app there)."""
    text = MESH.replace("REVIEWS_PORT", str(reviews_port)).replace("APP_PORT", str(app_port))
    return applied(build_snapshot(world(text), sidecar(INSTANCE_IPS=PRODUCTPAGE_IP)))


async def test_explicit_outbound_routes_by_host_and_absolute_form() -> None:
    reviews = await Upstream("reviews").start()
    app = await Upstream("app", host=PRODUCTPAGE_IP).start()
    options = DataplaneOptions(explicit=True, outbound_port=0, inbound_port=0)
    dataplane = Dataplane(options)
    try:
        await dataplane.apply(translated(reviews.port, app.port))
        outbound = dataplane.address_of("virtualOutbound")
        assert outbound is not None and outbound[0] == "127.0.0.1"
        client = await Client.connect(outbound[1])
        resp = await client.get("/by-host", "reviews:9080")
        assert (resp.status, resp.headers["x-upstream"]) == (200, "reviews")
        await client.send(b"GET http://reviews:9080/absolute?q=1 HTTP/1.1\r\nhost: x\r\n\r\n")
        resp = await client.response()
        assert resp.status == 200
        assert reviews.requests[-1].target == "/absolute?q=1"  # origin-form upstream
        resp = await client.get("/", "reviews")  # no port: 80, no such listener
        assert resp.status == 404
        await client.close()
        inbound = dataplane.address_of("virtualInbound")
        assert inbound is not None
        client = await Client.connect(inbound[1])
        resp = await client.get("/in", "productpage:9080")
        assert (resp.status, resp.headers["x-upstream"]) == (200, "app")
        await client.close()
    finally:
        await dataplane.close()
        await reviews.stop()
        await app.stop()


@asynccontextmanager
async def upstream_a_served(delay: float = 0.0) -> AsyncIterator[tuple[Upstream, int, Dataplane]]:
    """Upstream "a" (answering after `delay`), and a Dataplane whose listener "main" on the
    yielded port routes everything to it."""
    up = await Upstream("a", delay=delay).start()
    port = free_port()
    try:
        async with running(static_cluster("a", up.port), simple(port, "a")) as dataplane:
            yield up, port, dataplane
    finally:
        await up.stop()


async def test_unchanged_cluster_keeps_its_backend_and_pool() -> None:
    up = await Upstream("a").start()
    port = free_port()
    builder = SnapshotBuilder()  # the sidecar's one: unchanged bytes keep compiled objects
    try:
        first = (static_cluster("a", up.port), simple(port, "a"))
        async with running(*first, builder=builder) as dataplane:
            backend = dataplane.backends["a"]
            client = await Client.connect(port)
            assert (await client.get("/", "svc")).status == 200
            other = static_cluster("b", up.port)
            await dataplane.apply(proxy_config(*first, other, builder=builder))
            assert dataplane.backends["a"] is backend
            assert (await client.get("/", "svc")).status == 200  # same downstream connection
            assert up.connections == 1
            await client.close()
    finally:
        await up.stop()


async def test_a_changed_listener_drains_its_connections_so_clients_get_the_new_chain() -> None:
    """As Envoy drains a modified filter chain: the idle keep-alive connection is closed, and
    the client's next connection is served by the new listener (here, other routes)."""
    up = await Upstream("a").start()
    port = free_port()
    builder = SnapshotBuilder()
    try:
        async with running(static_cluster("a", up.port), simple(port, "a"), builder=builder) as dp:
            client = await Client.connect(port)
            assert (await client.get("/", "svc")).status == 200
            moved = simple(port, "a", route("a", prefix="/only"))
            await dp.apply(proxy_config(static_cluster("a", up.port), moved, builder=builder))
            assert await client.at_eof()
            await client.close()
            fresh = await Client.connect(port)
            assert (await fresh.get("/", "svc")).status == 404  # the new routes
            assert (await fresh.get("/only", "svc")).status == 200
            await fresh.close()
    finally:
        await up.stop()


async def test_config_swap_with_50_requests_in_flight_fails_none() -> None:
    first = await Upstream("first", delay=0.3).start()
    second = await Upstream("second").start()
    port = free_port()
    try:
        async with running(static_cluster("a", first.port), simple(port, "a")) as dataplane:
            clients = [await Client.connect(port) for _ in range(50)]

            async def one(client: Client) -> int:
                return (await client.get("/", "svc")).status

            pending = [asyncio.ensure_future(one(c)) for c in clients]
            await first.wait_for_requests(50)
            swapped = proxy_config(
                static_cluster("a", second.port),
                static_cluster("b", second.port),
                simple(port, "b", route("b")),
            )
            await dataplane.apply(swapped)
            statuses = await asyncio.gather(*pending)
            assert statuses == [200] * 50
            # the listener changed: its connections drain; new ones follow the new config
            fresh = await Client.connect(port)
            resp = await fresh.get("/", "svc")
            assert resp.headers["x-upstream"] == "second"
            for client in [*clients, fresh]:
                await client.close()
    finally:
        await first.stop()
        await second.stop()


async def test_removed_listener_stops_accepting_but_finishes_in_flight() -> None:
    async with upstream_a_served(delay=0.3) as (up, port, dataplane):
        client = await Client.connect(port)
        await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        await up.wait_for_requests(1)
        await dataplane.apply(proxy_config(static_cluster("a", up.port)))
        assert (await client.response()).status == 200
        try:
            late = await Client.connect(port)
        except ConnectionRefusedError:
            pass
        else:
            await late.close()
            raise AssertionError("the removed listener still accepts")
        await client.close()


async def test_overlapping_pushes_apply_in_order() -> None:
    other = free_port()
    async with upstream_a_served() as (up, port, dataplane):
        moved = proxy_config(static_cluster("a", up.port), simple(other, "a"))
        back = proxy_config(static_cluster("a", up.port), simple(port, "a"))
        await asyncio.gather(dataplane.apply(moved), dataplane.apply(back))
        assert dataplane.address_of("main") == ("127.0.0.1", port)
        client = await Client.connect(port)
        assert (await client.get("/", "svc")).status == 200
        await client.close()


async def test_forwards_with_envoy_headers_and_reuses_upstream_connections() -> None:
    async with upstream_a_served() as (up, port, _):
        client = await Client.connect(port)
        for i in range(5):
            resp = await client.get(f"/x/{i}", "svc")
            assert (resp.status, resp.headers["x-upstream"]) == (200, "a")
            assert "x-envoy-upstream-service-time" in resp.headers
            assert resp.headers["server"] == "envoy"  # Envoy overwrites it
        await client.close()
        assert up.connections == 1
        assert [r.target for r in up.requests] == [f"/x/{i}" for i in range(5)]
        sent = up.requests[0].headers
        assert sent["host"] == "svc" and sent["x-forwarded-proto"] == "http"
        assert len({r.headers["x-request-id"] for r in up.requests}) == 5


async def test_drain_closes_idle_connections_and_lets_busy_ones_finish() -> None:
    async with upstream_a_served(delay=0.3) as (up, port, dataplane):
        idle = await Client.connect(port)
        assert (await idle.get("/", "svc")).status == 200
        busy = await Client.connect(port)
        await busy.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        await up.wait_for_requests(2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await dataplane.drain(5.0)
        assert loop.time() - t0 < 2.0  # did not wait out the grace period
        resp = await busy.response()
        assert resp.status == 200 and resp.headers["connection"] == "close"
        assert await idle.at_eof() and await busy.at_eof()
        await idle.close()
        await busy.close()


async def test_explicit_dataplanes_on_distinct_loopback_ips_share_port_numbers() -> None:
    """Explicit sidecars bind their capture listeners on their own --ip only."""
    outbound, inbound = free_port(), free_port()
    first = Dataplane(
        DataplaneOptions(
            explicit=True, ip="127.231.0.9", outbound_port=outbound, inbound_port=inbound
        )
    )
    second = Dataplane(
        DataplaneOptions(
            explicit=True, ip="127.231.0.10", outbound_port=outbound, inbound_port=inbound
        )
    )
    try:
        config = translated(free_port(), free_port())
        await first.apply(config)
        await second.apply(config)
        assert first.address_of("virtualOutbound") == ("127.231.0.9", outbound)
        assert first.address_of("virtualInbound") == ("127.231.0.9", inbound)
        assert second.address_of("virtualOutbound") == ("127.231.0.10", outbound)
        assert second.address_of("virtualInbound") == ("127.231.0.10", inbound)
    finally:
        await first.close()
        await second.close()
