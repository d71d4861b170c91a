"""Request mirroring: the shadow sees a copy with a `-shadow` host; the client never waits."""

from __future__ import annotations

import asyncio

from envoy.config.route.v3 import route_components_pb2 as rc

from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, route, static_cluster
from tests.proxy.server.upstreams import Upstream


def mirrored(cluster: str, shadow: str) -> rc.Route:
    entry = route(cluster)
    policy = entry.route.request_mirror_policies.add(cluster=shadow)
    policy.runtime_fraction.default_value.numerator = 100
    return entry


async def test_mirror_gets_a_shadow_copy() -> None:
    main = await Upstream("main").start()
    shadow = await Upstream("shadow").start()
    port = free_port()
    try:
        resources = (
            static_cluster("main", main.port),
            static_cluster("shadow", shadow.port),
            simple(port, "main", mirrored("main", "shadow")),
        )
        async with running(*resources):
            client = await Client.connect(port)
            await client.send(
                b"POST /m HTTP/1.1\r\nhost: reviews:9080\r\ncontent-length: 2\r\n\r\nhi"
            )
            resp = await client.response()
            assert resp.headers["x-upstream"] == "main"
            await shadow.wait_for_requests(1)
            copy = shadow.requests[0]
            assert (copy.target, copy.headers["host"], copy.body) == (
                "/m",
                "reviews-shadow:9080",
                b"hi",
            )
            assert main.requests[0].headers["host"] == "reviews:9080"
            await client.close()
    finally:
        await main.stop()
        await shadow.stop()


async def test_dead_or_slow_mirror_does_not_delay_the_client() -> None:
    main = await Upstream("main").start()
    slow = await Upstream("slow", delay=3.0).start()
    port, dead = free_port(), free_port()
    try:
        entry = mirrored("main", "slow")
        entry.route.request_mirror_policies.add(
            cluster="dead"
        ).runtime_fraction.default_value.numerator = 100
        resources = (
            static_cluster("main", main.port),
            static_cluster("slow", slow.port),
            static_cluster("dead", dead),
            simple(port, "main", entry),
        )
        async with running(*resources):
            client = await Client.connect(port)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for _ in range(3):
                assert (await client.get("/", "svc")).status == 200
            assert loop.time() - t0 < 1.0
            await client.close()
    finally:
        await main.stop()
        await slow.stop()
