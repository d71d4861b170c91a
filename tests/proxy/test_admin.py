"""Admin, stats and health servers on real sockets, fed by real Backends and translated config.

The source here stands in for the supervisor (the AdminSource seam): its backends are real
`Backend`s compiled from the clusters and assignments the control plane translates, and the
requests they count went through `started`/`finished` as the data plane reports them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from gossamer.control.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from gossamer.proxy import admin_render
from gossamer.proxy.admin import AdminServers, ListenAddress
from gossamer.proxy.admin_stats import Report, Snapshot, merge_snapshots, snapshot_backends
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.proxy.upstream import Backend
from gossamer.proxy.upstream.cluster import compile_cluster
from gossamer.proxy.upstream.endpoints import compile_assignment
from tests.proxy.config.meshes import protos, snapshot
from tests.telemetry.prometheus_text import parse

REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"
MYSQL = "outbound|3306||mysql.default.svc.cluster.local"


@dataclass
class Plane:
    """What snapshot_backends reads from a Dataplane: its live backends by cluster name."""

    backends: dict[str, Backend] = field(default_factory=dict)


def translated_plane() -> tuple[Plane, dict[str, dict[str, Any]]]:
    snap = snapshot()
    by_type = {t: protos(snap, t) for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)}
    plane = Plane()
    for name in (REVIEWS, MYSQL):
        config = compile_cluster(by_type[CLUSTER][name])
        endpoints = compile_assignment(by_type[ENDPOINT][name])
        plane.backends[name] = Backend(config, endpoints, rng=random.Random(1))
    return plane, by_type


def serve(backend: Backend, statuses: list[int | None], latency: float = 0.004) -> None:
    """Requests as the data plane reports them: picked, started, finished."""
    for status in statuses:
        endpoint = backend.pick()
        assert endpoint is not None
        backend.started(endpoint)
        backend.finished(endpoint, status, latency, None if status else "connect-failure")


@dataclass
class Source:
    plane: Plane
    resources: Mapping[str, Mapping[str, Any]]
    is_ready: bool = False
    quits: int = 0
    identity: IdentityAgent | None = None  # the certificate keeper, when the test gives one

    def ready(self) -> bool:
        return self.is_ready

    def server_info(self) -> dict[str, Any]:
        return {"state": "LIVE" if self.is_ready else "PRE_INITIALIZING"}

    def config_dump(self) -> dict[str, Any]:
        versions = {t: "r7" for t in self.resources}
        return admin_render.config_dump(self.resources, versions, {LISTENER: 1_700_000_000.0})

    async def stats(self) -> Snapshot:
        return snapshot_backends(self.plane)

    async def report(self) -> Report:
        return {"clusters": snapshot_backends(self.plane), "counters": {}, "istio": {}}

    def quit(self) -> None:
        self.quits += 1

    def certs(self) -> dict[str, Any]:
        return self.identity.certs() if self.identity is not None else {"certificates": []}


@dataclass
class Running:
    source: Source
    servers: AdminServers
    http: aiohttp.ClientSession

    def url(self, role: str, path: str) -> str:
        return f"http://127.0.0.1:{self.servers.ports[role]}{path}"

    async def get(self, role: str, path: str) -> tuple[int, str]:
        async with self.http.get(self.url(role, path)) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    plane, by_type = translated_plane()
    source = Source(plane, by_type)
    loopback = ListenAddress("127.0.0.1", 0)
    servers = AdminServers(source, admin=loopback, stats=loopback, health=loopback)
    await servers.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Running(source, servers, http)
    finally:
        await servers.stop()


async def test_health_turns_ready_when_the_source_is(running: Running) -> None:
    assert await running.get("health", "/healthz/ready") == (503, "not ready\n")
    assert await running.get("admin", "/ready") == (503, "PRE_INITIALIZING\n")
    running.source.is_ready = True
    assert await running.get("health", "/healthz/ready") == (200, "ready\n")
    assert await running.get("stats", "/healthz/ready") == (200, "ready\n")
    assert await running.get("admin", "/ready") == (200, "LIVE\n")


async def test_clusters_lists_every_host_with_its_counters(running: Running) -> None:
    serve(running.source.plane.backends[REVIEWS], [200, 200, 503, None])
    status, text = await running.get("admin", "/clusters")
    assert status == 200
    lines = set(text.splitlines())
    hosts = {line.split("::")[1] for line in lines if line.startswith(f"{REVIEWS}::127.")}
    assert hosts == {"127.0.0.1:19001", "127.0.0.2:19002"}
    totals = {h: 0 for h in hosts}
    for line in lines:
        parts = line.split("::")
        if parts[0] == REVIEWS and parts[1] in hosts and parts[2] == "rq_total":
            totals[parts[1]] = int(parts[3])
    assert sum(totals.values()) == 4
    for host in hosts:
        assert f"{REVIEWS}::{host}::health_flags::healthy" in lines
        assert f"{REVIEWS}::{host}::weight::1" in lines
        assert f"{REVIEWS}::{host}::rq_active::0" in lines
    errors = sum(int(x.rsplit("::", 1)[1]) for x in lines if "::rq_error::" in x)
    assert errors == 2  # the 503 and the connect failure
    assert f"{MYSQL}::127.0.0.3:3306::rq_total::0" in lines


async def test_clusters_json_has_envoy_shape(running: Running) -> None:
    serve(running.source.plane.backends[MYSQL], [200])
    async with running.http.get(running.url("admin", "/clusters?format=json")) as resp:
        body = await resp.json()
    statuses = {c["name"]: c for c in body["cluster_statuses"]}
    (host,) = statuses[MYSQL]["host_statuses"]
    assert host["address"] == {"socket_address": {"address": "127.0.0.3", "port_value": 3306}}
    stats = {s["name"]: s["value"] for s in host["stats"]}
    assert stats["rq_total"] == "1" and stats["rq_success"] == "1"


async def test_stats_prints_envoy_counter_names(running: Running) -> None:
    serve(running.source.plane.backends[REVIEWS], [200, 200, 503])
    status, text = await running.get("admin", "/stats")
    assert status == 200
    lines = set(text.splitlines())
    assert f"cluster.{REVIEWS}.upstream_rq_200: 2" in lines
    assert f"cluster.{REVIEWS}.upstream_rq_503: 1" in lines
    assert f"cluster.{REVIEWS}.upstream_rq_5xx: 1" in lines
    assert f"cluster.{REVIEWS}.upstream_rq_total: 3" in lines
    assert f"cluster.{REVIEWS}.membership_healthy: 2" in lines
    assert text.splitlines() == sorted(text.splitlines())


async def test_stats_filter_and_json(running: Running) -> None:
    serve(running.source.plane.backends[MYSQL], [200])
    status, text = await running.get("admin", "/stats?filter=mysql.*rq_(total|200)$")
    assert status == 200
    assert text.splitlines() == [
        f"cluster.{MYSQL}.upstream_rq_200: 1",
        f"cluster.{MYSQL}.upstream_rq_total: 1",
    ]
    async with running.http.get(running.url("admin", "/stats?format=json&filter=mysql")) as resp:
        body = await resp.json()
    values = {s["name"]: s["value"] for s in body["stats"]}
    assert values[f"cluster.{MYSQL}.upstream_rq_total"] == 1
    assert all(name.startswith(f"cluster.{MYSQL}.") for name in values)
    status, text = await running.get("admin", "/stats?filter=(")
    assert status == 400 and "invalid regex" in text


async def test_prometheus_on_the_stats_port_parses_strictly(running: Running) -> None:
    backend = running.source.plane.backends[REVIEWS]
    serve(backend, [200, 200, 503], latency=0.004)
    backend.stats.upstream_rq_pending_overflow += 2  # as the breaker counts an overflow
    async with running.http.get(running.url("stats", "/stats/prometheus")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        parsed = parse(await resp.text())
    label = {"envoy_cluster_name": REVIEWS}
    assert parsed.types["envoy_cluster_upstream_rq"] == "counter"
    assert parsed.value("envoy_cluster_upstream_rq", envoy_response_code="200", **label) == 2
    assert parsed.value("envoy_cluster_upstream_rq", envoy_response_code="503", **label) == 1
    assert parsed.value("envoy_cluster_upstream_rq_xx", envoy_response_code_class="5", **label) == 1
    assert parsed.value("envoy_cluster_upstream_rq_total", **label) == 3
    assert parsed.value("envoy_cluster_upstream_rq_pending_overflow", **label) == 2
    assert parsed.value("envoy_cluster_outlier_detection_ejections_enforced_total", **label) == 0
    assert parsed.types["envoy_cluster_upstream_rq_time"] == "histogram"
    assert parsed.value("envoy_cluster_upstream_rq_time_count", **label) == 3
    assert parsed.value("envoy_cluster_upstream_rq_time_bucket", le="1", **label) == 0
    assert parsed.value("envoy_cluster_upstream_rq_time_bucket", le="5", **label) == 3
    assert parsed.value("envoy_cluster_membership_healthy", **label) == 2


async def test_config_dump_lists_what_the_control_plane_sent(running: Running) -> None:
    async with running.http.get(running.url("admin", "/config_dump")) as resp:
        dump = await resp.json()
    kinds = [c["@type"].rsplit(".", 1)[1] for c in dump["configs"]]
    assert kinds == [
        "ClustersConfigDump",
        "ListenersConfigDump",
        "RoutesConfigDump",
        "EndpointsConfigDump",
    ]
    clusters, listeners, routes, endpoints = dump["configs"]
    names = {entry["name"] for entry in listeners["dynamic_listeners"]}
    assert {"virtualOutbound", "virtualInbound", "0.0.0.0_9080"} <= names
    outbound = next(e for e in listeners["dynamic_listeners"] if e["name"] == "virtualOutbound")
    state = outbound["active_state"]
    assert state["version_info"] == "r7"
    assert state["last_updated"].startswith("2023-11-14T22:13:20")
    assert state["listener"]["@type"].endswith("envoy.config.listener.v3.Listener")
    assert state["listener"]["address"]["socketAddress"]["portValue"] == 15001
    cluster_names = {c["cluster"]["name"] for c in clusters["dynamic_active_clusters"]}
    assert REVIEWS in cluster_names
    assert [r["route_config"]["name"] for r in routes["dynamic_route_configs"]] == ["9080"]
    assert len(endpoints["dynamic_endpoint_configs"]) == 6


async def test_quitquitquit_needs_post(running: Running) -> None:
    assert (await running.get("admin", "/quitquitquit"))[0] == 405
    assert running.source.quits == 0
    async with running.http.post(running.url("admin", "/quitquitquit")) as resp:
        assert resp.status == 200
    assert running.source.quits == 1


def test_workers_merge_counters_sum_and_failures_win() -> None:
    first, _ = translated_plane()
    second, _ = translated_plane()
    serve(first.backends[REVIEWS], [200, 200])
    serve(second.backends[REVIEWS], [200, 503, 503])
    one, two = snapshot_backends(first), snapshot_backends(second)
    # The second worker's detector ejected a host the first still routes to.
    two[REVIEWS]["hosts"][0]["health_flags"] = ["/failed_outlier_check"]
    merged = merge_snapshots([one, two])
    reviews = merged[REVIEWS]
    assert reviews["counters"]["upstream_rq_total"] == 5
    assert reviews["counters"]["upstream_rq_200"] == 3
    assert reviews["counters"]["upstream_rq_503"] == 2
    assert sum(reviews["latency_ms"]["counts"]) == 5
    assert sum(h["rq_total"] for h in reviews["hosts"]) == 5
    assert [h["health_flags"] for h in reviews["hosts"]] == [["/failed_outlier_check"], ["healthy"]]
    assert one[REVIEWS]["counters"]["upstream_rq_total"] == 2  # inputs are left alone
    text = admin_render.clusters_text(merged)
    flagged = reviews["hosts"][0]["address"]
    assert f"{REVIEWS}::{flagged}::health_flags::/failed_outlier_check" in text
