"""Answers the proxy gives itself, with Envoy's statuses and body texts."""

from __future__ import annotations

import asyncio

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.v3 import percent_pb2

from gossamer.control.translate.policies import FAULT_FILTER, packed
from tests.proxy.server.harness import fronting, running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import (
    free_port,
    http_listener,
    route,
    routes,
    seconds,
    static_cluster,
)
from tests.proxy.server.upstreams import Upstream

UPSTREAM_RESET = "upstream connect error or disconnect/reset before headers. reset reason: "


async def test_no_route_is_404_with_an_empty_body() -> None:
    port = free_port()
    async with running(static_cluster("a", 1), simple(port, "a", domains=["known"])):
        client = await Client.connect(port)
        resp = await client.get("/", "unknown")
        assert (resp.status, resp.body) == (404, b"")
        resp = await client.get("/", "unknown")  # the connection stays usable
        assert resp.status == 404
        await client.close()


async def test_unknown_cluster_is_503_nc() -> None:
    port = free_port()
    table = routes("r", (["*"], [route("missing")]))
    table.validate_clusters.value = False  # as RDS sends it (Envoy rejects inline ones)
    async with running(static_cluster("a", 1), http_listener("main", port, table)):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (503, b"")
        await client.close()


async def test_no_endpoints_is_503_no_healthy_upstream() -> None:
    port = free_port()
    async with running(static_cluster("a"), simple(port, "a")):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (503, b"no healthy upstream")
        await client.close()


async def test_refused_connection_is_503_connection_failure() -> None:
    port, dead = free_port(), free_port()
    async with running(static_cluster("a", dead), simple(port, "a")):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert resp.status == 503
        assert resp.body == (UPSTREAM_RESET + "connection failure").encode()
        await client.close()


async def test_route_timeout_is_504_upstream_request_timeout() -> None:
    up = Upstream("slow", delay=2.0)
    entry = route("a", timeout=seconds(0.2))
    async with fronting(up, entry) as (port, _):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (504, b"upstream request timeout")
        await client.close()


async def test_request_breaker_overflow_is_503_uo() -> None:
    up = await Upstream("slow", delay=0.5).start()
    port = free_port()
    cluster = static_cluster("a", up.port)
    cluster.circuit_breakers.thresholds.add().max_requests.value = 1
    try:
        async with running(cluster, simple(port, "a")) as dataplane:
            first = await Client.connect(port)
            await first.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
            await asyncio.sleep(0.1)
            second = await Client.connect(port)
            resp = await second.get("/", "svc")
            assert resp.status == 503
            assert resp.body == (UPSTREAM_RESET + "overflow").encode()
            assert resp.headers["x-envoy-overloaded"] == "true"
            assert (await first.response()).status == 200
            assert dataplane.backends["a"].stats.upstream_rq_pending_overflow == 1
            await first.close()
            await second.close()
    finally:
        await up.stop()


def _fault(abort: int | None = None, delay: float | None = None) -> rc.Route:
    fault = fault_pb2.HTTPFault()
    hundred = percent_pb2.FractionalPercent(numerator=100)
    if abort is not None:
        fault.abort.http_status = abort
        fault.abort.percentage.CopyFrom(hundred)
    if delay is not None:
        fault.delay.fixed_delay.CopyFrom(seconds(delay))
        fault.delay.percentage.CopyFrom(hundred)
    entry = route("a")
    entry.typed_per_filter_config[FAULT_FILTER].CopyFrom(packed(fault))
    return entry


async def test_fault_abort_answers_without_reaching_the_upstream() -> None:
    up = Upstream("a")
    async with fronting(up, _fault(abort=418)) as (port, _):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (418, b"fault filter abort")
        assert up.requests == []
        await client.close()


async def test_fault_delay_then_forward() -> None:
    async with fronting(Upstream("a"), _fault(delay=0.3)) as (port, _):
        client = await Client.connect(port)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        resp = await client.get("/", "svc")
        assert resp.status == 200
        assert loop.time() - t0 >= 0.29
        await client.close()


async def test_redirect_and_direct_response() -> None:
    port = free_port()
    moved = rc.Route(match=rc.RouteMatch(prefix="/old"))
    moved.redirect.path_redirect = "/new"
    moved.redirect.host_redirect = "example.com"
    direct = rc.Route(match=rc.RouteMatch(prefix="/hello"))
    direct.direct_response.status = 200
    direct.direct_response.body.inline_string = "hi there"
    table = routes("r", (["*"], [moved, direct]))
    async with running(static_cluster("a", 1), http_listener("main", port, table)):
        client = await Client.connect(port)
        resp = await client.get("/old", "svc")
        assert resp.status == 301
        assert resp.headers["location"] == "http://example.com/new"
        resp = await client.get("/hello", "svc")
        assert (resp.status, resp.body) == (200, b"hi there")
        await client.send(b"HEAD /hello HTTP/1.1\r\nhost: svc\r\n\r\n")
        resp = await client.response(head=True)
        assert resp.status == 200 and resp.body == b""
        resp = await client.get("/hello", "svc")  # framing intact after HEAD
        assert resp.body == b"hi there"
        await client.close()


async def test_connection_breaker_queues_one_pending_and_refuses_the_rest() -> None:
    up = await Upstream("slow", delay=0.3).start()
    port = free_port()
    cluster = static_cluster("a", up.port)
    limits = cluster.circuit_breakers.thresholds.add()
    limits.max_connections.value = 1
    limits.max_pending_requests.value = 1
    try:
        async with running(cluster, simple(port, "a")):
            clients = [await Client.connect(port) for _ in range(3)]
            for client in clients:
                await client.send(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
                await asyncio.sleep(0.05)
            replies = [await c.response() for c in clients]
            assert [r.status for r in replies] == [200, 200, 503]
            assert replies[2].headers["x-envoy-overloaded"] == "true"
            assert up.connections == 1  # the pending request reused the only connection
            for client in clients:
                await client.close()
    finally:
        await up.stop()
