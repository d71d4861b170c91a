"""The Dataplane end to end on loopback: listeners, routing, upstream pools, config swaps."""

from __future__ import annotations

import asyncio

from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, static_cluster
from tests.proxy.server.upstreams import Upstream


async def test_forwards_and_reuses_upstream_connections() -> None:
    up = await Upstream("a").start()
    port = free_port()
    try:
        async with running(static_cluster("a", up.port), simple(port, "a")):
            client = await Client.connect(port)
            for i in range(5):
                resp = await client.get(f"/x/{i}", "svc")
                assert resp.status == 200
                assert resp.headers["x-upstream"] == "a"
                assert "x-envoy-upstream-service-time" in resp.headers
            await client.close()
            assert up.connections == 1
            assert [r.target for r in up.requests] == [f"/x/{i}" for i in range(5)]
            assert all("x-request-id" in r.headers for r in up.requests)
    finally:
        await up.stop()
