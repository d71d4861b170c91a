"""Retries as Envoy's router does them: retriable statuses, resets, per-try timeouts, hosts."""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc

from tests.proxy.server.harness import fronting, running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, route, static_cluster
from tests.proxy.server.upstreams import Upstream


def retry_policy(
    retry_on: str, retries: int, per_try: float | None = None, avoid_hosts: bool = False
) -> rc.RetryPolicy:
    out = rc.RetryPolicy(retry_on=retry_on)
    out.num_retries.value = retries
    out.retry_back_off.base_interval.FromMilliseconds(1)
    if per_try is not None:
        out.per_try_timeout.FromMilliseconds(int(per_try * 1000))
    if avoid_hosts:
        out.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts")
        out.host_selection_retry_max_attempts = 5
    return out


async def each_new_client_reaches(port: int, upstream: str, times: int) -> None:
    """`times` GETs, each on a new client connection: every one is a 200 from `upstream`."""
    for _ in range(times):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert resp.status == 200 and resp.headers["x-upstream"] == upstream
        await client.close()


async def test_retries_until_the_upstream_succeeds() -> None:
    up = Upstream("a", fail_first=2)
    entry = route("a", retry_policy=retry_policy("5xx", 3))
    async with fronting(up, entry) as (port, dp):
        client = await Client.connect(port)
        await client.send(b"POST /p HTTP/1.1\r\nhost: svc\r\ncontent-length: 5\r\n\r\nhello")
        resp = await client.response()
        assert resp.status == 200
        assert len(up.requests) == 3
        assert all(r.body == b"hello" for r in up.requests)  # the body was replayed
        assert dp.backends["a"].stats.upstream_rq_retry == 2
        await client.close()


async def test_gives_up_after_num_retries_with_the_last_response() -> None:
    up = Upstream("a", fail_first=10)
    entry = route("a", retry_policy=retry_policy("5xx", 2))
    async with fronting(up, entry) as (port, _):
        client = await Client.connect(port)
        resp = await client.get("/", "svc")
        assert (resp.status, resp.body) == (503, b"failing")
        assert len(up.requests) == 3
        await client.close()


async def test_no_retry_policy_no_retry() -> None:
    up = Upstream("a", fail_first=1)
    async with fronting(up) as (port, _):
        client = await Client.connect(port)
        assert (await client.get("/", "svc")).status == 503
        assert len(up.requests) == 1
        await client.close()


async def test_per_try_timeout_moves_on_to_another_try() -> None:
    slow = await Upstream("slow", delay=2.0).start()
    fast = await Upstream("fast").start()
    port = free_port()
    try:
        policy = retry_policy("5xx,reset", 2, per_try=0.2, avoid_hosts=True)
        entry = route("a", retry_policy=policy)
        cluster = static_cluster("a", slow.port, fast.port)
        async with running(cluster, simple(port, "a", entry)):
            await each_new_client_reaches(port, "fast", 4)
    finally:
        await slow.stop()
        await fast.stop()


async def test_connect_failure_is_retried_on_another_host() -> None:
    good = await Upstream("good").start()
    port, dead = free_port(), free_port()
    try:
        policy = retry_policy("connect-failure", 3, avoid_hosts=True)
        cluster = static_cluster("a", dead, good.port)
        async with running(cluster, simple(port, "a", route("a", retry_policy=policy))):
            await each_new_client_reaches(port, "good", 6)
    finally:
        await good.stop()


async def test_previous_hosts_are_avoided() -> None:
    ups = [await Upstream(f"u{i}", fail_first=1000).start() for i in range(3)]
    port = free_port()
    try:
        policy = retry_policy("5xx", 2, avoid_hosts=True)
        cluster = static_cluster("a", *(u.port for u in ups))
        async with running(cluster, simple(port, "a", route("a", retry_policy=policy))):
            client = await Client.connect(port)
            assert (await client.get("/", "svc")).status == 503
            # three tries, one on each host
            assert sorted(len(u.requests) for u in ups) == [1, 1, 1]
            await client.close()
    finally:
        for u in ups:
            await u.stop()


async def test_rewrites_leave_envoys_original_headers_and_per_try_timeout_is_announced() -> None:
    up = Upstream("a")
    entry = route("a", prefix="/old", retry_policy=retry_policy("5xx", 1, per_try=0.5))
    entry.route.prefix_rewrite = "/new"
    entry.route.host_rewrite_literal = "backend.internal"
    async with fronting(up, entry) as (port, _):
        client = await Client.connect(port)
        assert (await client.get("/old/x?q=1", "svc:80")).status == 200
        sent = up.requests[0]
        assert (sent.target, sent.headers["host"]) == ("/new/x?q=1", "backend.internal")
        assert sent.headers["x-envoy-original-path"] == "/old/x?q=1"
        assert sent.headers["x-envoy-original-host"] == "svc:80"
        assert sent.headers["x-envoy-expected-rq-timeout-ms"] == "500"
        await client.close()
