"""End to end: a real Envoy sidecar programmed by a real `gossamer controlplane` over ADS.

One module-scoped mesh: the control plane (child process), three HTTP services backed by
WorkloadEntries at 127.0.0.1 (reviews v1/v2, ratings, flaky), and one Envoy sidecar with
INTERCEPTION_MODE NONE, so its outbound listeners bind 127.0.0.1:<service port> and a client
sends `Host: <svc>.default.svc.cluster.local:<port>` straight to it. Each test applies its own
VirtualService and tags it with a response header `x-config: <tag>`: measurements start only once
a reply shows the tag (an ACK can precede Envoy's switch by a few ms) and every measured reply
must carry it, so no reply is attributed to the wrong config.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from gossamer.runtime.envoy import EnvoyProcess
from gossamer.runtime.envoy_bootstrap import node_id, node_metadata
from tests.ads_envoy import diagnostics, ready, start_ads_envoy
from tests.e2e.harness import (
    Backends,
    BackendSpec,
    BackgroundLoad,
    ControlPlane,
    HttpClient,
    Reply,
    free_port,
    send,
    tally,
    until,
)
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

NS = "default"
NODE_ID = node_id("sidecar", "127.0.0.1", "e2e-client", NS)
SERVICES = ("reviews", "ratings", "flaky")
FLAKY_FAILURES = 2  # the flaky backend answers 503 to the first 2 attempts of each request


def fqdn(service: str) -> str:
    return f"{service}.{NS}.svc.cluster.local"


@dataclass
class Mesh:
    cp: ControlPlane
    backends: Backends
    envoy: EnvoyProcess
    ports: dict[str, int]  # service name -> service port (= Envoy's outbound listener port)

    def host(self, service: str) -> str:
        return f"{fqdn(service)}:{self.ports[service]}"

    def get(self, service: str, headers: dict[str, str] | None = None) -> Reply:
        client = HttpClient(self.ports[service])
        try:
            return client.get(self.host(service), headers=headers)
        finally:
            client.close()

    def send(self, service: str, count: int, **kw: object) -> list[Reply]:
        return send(self.ports[service], self.host(service), count, **kw)  # type: ignore[arg-type]

    def apply_routes(self, yaml_text: str, tag: str, service: str, within: float = 15.0) -> float:
        """Apply a VirtualService tagged `x-config: tag`; wait until Envoy ACKed the RDS push
        and a reply for `service` shows the tag. Returns seconds from apply to that reply."""
        began = time.monotonic()
        revision = self.cp.apply(yaml_text)
        self.cp.wait_synced(NODE_ID, ("rds",), revision=revision, within=within)
        seen: list[Reply] = []

        def tagged() -> bool:
            reply = self.get(service, {"x-fail-key": uuid.uuid4().hex})
            seen[:] = [reply]
            return reply.headers.get("x-config") == tag

        try:
            until(tagged, within, f"a reply tagged {tag}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last reply {seen}\n{self.diagnostics()}") from None
        return time.monotonic() - began

    def diagnostics(self) -> str:
        return diagnostics(self.envoy, self.cp)


def _services_yaml(ports: dict[str, int], backend_ports: dict[str, int]) -> str:
    docs = []
    for svc in SERVICES:
        docs.append(
            f"""apiVersion: v1
kind: Service
metadata: {{name: {svc}, namespace: {NS}}}
spec:
  selector: {{app: {svc}}}
  ports: [{{name: http, port: {ports[svc]}}}]
"""
        )
    instances = [("reviews", "v1"), ("reviews", "v2"), ("ratings", "v1"), ("flaky", "v1")]
    for app, version in instances:
        docs.append(
            f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {app}-{version}, namespace: {NS}}}
spec:
  address: 127.0.0.1
  labels: {{app: {app}, version: {version}}}
  ports: {{http: {backend_ports[f"{app}-{version}"]}}}
"""
        )
    docs.append(
        f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: {NS}}}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"""
    )
    return "---\n".join(docs)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Control plane, backends and Envoy, each stopped by its own PID at teardown."""
    root = tmp_path_factory.mktemp("envoy-e2e")
    with ExitStack() as stack:
        cp = ControlPlane(root / "home", debounce_ms=20)
        stack.callback(cp.stop)
        cp.start()
        backends = Backends(
            [
                BackendSpec("reviews-v1", "v1"),
                BackendSpec("reviews-v2", "v2"),
                BackendSpec("ratings-v1", "v1"),
                BackendSpec("flaky-v1", "v1", fail_first=FLAKY_FAILURES, fail_status=503),
            ]
        )
        stack.callback(backends.stop)
        backends.start()
        ports = {svc: free_port() for svc in SERVICES}
        revision = cp.apply(_services_yaml(ports, backends.ports))
        envoy = start_ads_envoy(
            stack,
            root / "envoy",
            node=NODE_ID,
            cluster=f"e2e-client.{NS}",
            metadata=node_metadata(
                namespace=NS,
                labels={"app": "e2e-client"},
                interception_mode="NONE",
                workload_name="e2e-client",
                pod_name="e2e-client",
                instance_ips=["127.0.0.1"],
            ),
            xds_host=cp.xds_host,
            xds_port=cp.xds_port,
            concurrency=2,
        )
        m = Mesh(cp, backends, envoy, ports)
        ready(envoy, cp, NODE_ID, revision)
        yield m


def _vs(service: str, tag: str, *routes: dict[str, Any]) -> str:
    """A VirtualService for `service` whose every route sets `x-config: tag` on responses."""
    tagged = [{**r, "headers": {"response": {"set": {"x-config": tag}}}} for r in routes]
    doc = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": service, "namespace": NS},
        "spec": {"hosts": [service], "http": tagged},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _to(host: str, subset: str = "", weight: int | None = None) -> dict[str, Any]:
    dest: dict[str, Any] = {"destination": {"host": host}}
    if subset:
        dest["destination"]["subset"] = subset
    if weight is not None:
        dest["weight"] = weight
    return dest


def test_envoy_acks_show_synced(mesh: Mesh) -> None:
    view = mesh.cp.proxy(NODE_ID)
    assert view is not None, mesh.cp.proxies()
    assert view["kind"] == "sidecar"
    row = view["row"]
    assert {row[t] for t in ("CDS", "EDS", "LDS", "RDS")} == {"SYNCED"}, row
    for short, t in view["types"].items():
        assert t["last_nack"] is None, (short, t["last_nack"])
    # And Envoy agrees: a LIVE server with a listener on each service port.
    assert mesh.envoy.server_state() == "LIVE"
    _, listeners = mesh.envoy.admin_get("/listeners")
    for svc, port in mesh.ports.items():
        assert f"127.0.0.1:{port}" in listeners, (svc, listeners)


def test_weighted_split_80_20(mesh: Mesh) -> None:
    """1000 requests; v2's count is Binomial(1000, 0.2): mean 200, sd 12.6; allow 4 sd."""
    split = {"name": "split", "route": [_to("reviews", "v1", 80), _to("reviews", "v2", 20)]}
    mesh.apply_routes(_vs("reviews", "split-80-20", split), "split-80-20", "reviews")
    n, p = 1000, 0.2
    replies = mesh.send("reviews", n, within=60)
    assert len(replies) == n
    assert all(r.status == 200 for r in replies), tally(replies)
    assert {r.headers.get("x-config") for r in replies} == {"split-80-20"}
    counts = tally(replies)
    sd = math.sqrt(n * p * (1 - p))
    assert abs(counts["v2"] - n * p) <= 4 * sd, counts
    assert counts["v1"] + counts["v2"] == n, counts


def test_header_match_routing(mesh: Mesh) -> None:
    jason_route = {
        "name": "jason",
        "match": [{"headers": {"end-user": {"exact": "jason"}}}],
        "route": [_to("reviews", "v2")],
    }
    others_route = {"name": "everyone-else", "route": [_to("reviews", "v1")]}
    mesh.apply_routes(_vs("reviews", "by-user", jason_route, others_route), "by-user", "reviews")
    jason = mesh.send("reviews", 100, headers={"end-user": "jason"})
    others = mesh.send("reviews", 100)
    near = mesh.send("reviews", 50, headers={"end-user": "jasonx"})  # exact, not prefix
    assert len(jason) == len(others) == 100 and len(near) == 50
    assert tally(jason) == {"v2": 100}
    assert tally(others) == {"v1": 100}
    assert tally(near) == {"v1": 50}
    assert {r.headers.get("x-config") for r in jason + others + near} == {"by-user"}


def test_fault_abort_never_reaches_backend(mesh: Mesh) -> None:
    abort = {
        "name": "abort",
        "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}},
        "route": [_to("ratings")],
    }
    mesh.apply_routes(_vs("ratings", "abort-418", abort), "abort-418", "ratings")
    before = mesh.backends.hits("ratings-v1")["total"]
    replies = mesh.send("ratings", 100)
    assert len(replies) == 100
    assert tally(replies) == {"status 418": 100}
    assert {r.headers.get("x-config") for r in replies} == {"abort-418"}  # local replies too
    assert mesh.backends.hits("ratings-v1")["total"] == before


def test_fault_fixed_delay(mesh: Mesh) -> None:
    delay = {
        "name": "delay",
        "fault": {"delay": {"fixedDelay": "300ms", "percentage": {"value": 100}}},
        "route": [_to("ratings")],
    }
    mesh.apply_routes(_vs("ratings", "delay-300ms", delay), "delay-300ms", "ratings")
    replies = mesh.send("ratings", 20, concurrency=10, within=30)
    assert len(replies) == 20
    assert tally(replies) == {"v1": 20}
    assert {r.headers.get("x-config") for r in replies} == {"delay-300ms"}
    elapsed = sorted(r.elapsed for r in replies)
    # Envoy arms the timer from its event loop's cached clock, so it can fire a millisecond or
    # two before 300 ms of wall time have passed since our send: allow 5 ms of that, no more.
    assert elapsed[0] >= 0.3 - 0.005, elapsed
    assert elapsed[len(elapsed) // 2] >= 0.3, elapsed
    assert elapsed[-1] < 0.3 + 2.0, elapsed  # delayed, not stuck


def test_retries_mask_a_flaky_backend(mesh: Mesh) -> None:
    """Each request carries its own x-fail-key: the backend fails its first 2 attempts."""
    retry = {"name": "retry", "retries": {"attempts": 3, "retryOn": "5xx"}, "route": [_to("flaky")]}
    mesh.apply_routes(_vs("flaky", "retry-3", retry), "retry-3", "flaky")
    keys = [uuid.uuid4().hex for _ in range(20)]
    replies = [mesh.get("flaky", {"x-fail-key": k}) for k in keys]
    assert tally(replies) == {"v1": 20}
    assert [r.body["attempt"] for r in replies if r.body] == [FLAKY_FAILURES + 1] * 20
    seen = mesh.backends.hits("flaky-v1")["keys"]
    assert [seen[k] for k in keys] == [FLAKY_FAILURES + 1] * 20


def test_retries_off_shows_the_failure(mesh: Mesh) -> None:
    no_retry = {"name": "no-retry", "retries": {"attempts": 0}, "route": [_to("flaky")]}
    mesh.apply_routes(_vs("flaky", "retry-0", no_retry), "retry-0", "flaky")
    keys = [uuid.uuid4().hex for _ in range(20)]
    replies = [mesh.get("flaky", {"x-fail-key": k}) for k in keys]
    assert tally(replies) == {"status 503": 20}
    assert {r.headers.get("x-config") for r in replies} == {"retry-0"}
    seen = mesh.backends.hits("flaky-v1")["keys"]
    assert [seen[k] for k in keys] == [1] * 20


def test_live_weight_change_without_failures(mesh: Mesh) -> None:
    """Steady load while v1 → v2 is applied: no failed request, the switch lands in < 1 s,
    and each reply's version matches the config that tagged it."""
    http_a = {"name": "all", "route": [_to("reviews", "v1", 100), _to("reviews", "v2", 0)]}
    http_b = {"name": "all", "route": [_to("reviews", "v1", 0), _to("reviews", "v2", 100)]}
    mesh.apply_routes(_vs("reviews", "live-a", http_a), "live-a", "reviews")
    load = BackgroundLoad(
        mesh.ports["reviews"], mesh.host("reviews"), concurrency=4, max_seconds=60
    )
    load.start()
    try:
        until(lambda: load.count() >= 300, 20, "300 replies before the change")
        applied_at = time.monotonic()
        revision = mesh.cp.apply(_vs("reviews", "live-b", http_b))
        mesh.cp.wait_synced(NODE_ID, ("rds",), revision=revision, within=15)
        synced_at = time.monotonic()
        until(lambda: len(load.since(synced_at)) >= 500, 30, "500 replies after the ACK")
    finally:
        timed = load.stop()
    replies = [r for _, r in timed]
    assert all(r.status == 200 for r in replies), tally(replies)
    by_tag = {
        tag: tally(r for r in replies if r.headers.get("x-config") == tag)
        for tag in ("live-a", "live-b")
    }
    assert set(by_tag["live-a"]) == {"v1"} and set(by_tag["live-b"]) == {"v2"}, by_tag
    assert sum(by_tag["live-a"].values()) + sum(by_tag["live-b"].values()) == len(replies)
    first_b = min(t for t, r in timed if r.headers.get("x-config") == "live-b")
    print(f"apply → first live-b reply: {first_b - applied_at:.3f}s")
    assert first_b - applied_at < 1.0, f"switch took {first_b - applied_at:.3f}s"
    last = [r.headers.get("x-config") for r in replies[-200:]]
    assert set(last) == {"live-b"}


# --- the same control plane serving a second Envoy as an Istio ingress gateway -----------------

GATEWAY_NS = "istio-system"
GATEWAY_NODE_ID = node_id("router", "127.0.0.1", "ingress-e2e", GATEWAY_NS)


@dataclass
class Ingress:
    envoy: EnvoyProcess
    port: int  # the Gateway server's port: Envoy's listener (the translator binds 0.0.0.0)


@pytest.fixture(scope="module")
def ingress(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    """A router Envoy selected by an Istio Gateway (selector istio: ingressgateway) listening on
    a free port, beside the sidecar; stopped by its PID at teardown."""
    port = free_port()
    gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "ingress", "namespace": GATEWAY_NS},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": port, "name": "http", "protocol": "HTTP"},
                    "hosts": ["*/reviews.example.com"],
                }
            ],
        },
    }
    routes = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews-ingress", "namespace": NS},
        "spec": {
            "hosts": ["reviews.example.com"],
            "gateways": [f"{GATEWAY_NS}/ingress"],
            "http": [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "route": [_to(fqdn("reviews"), "v2")],
                },
                {"route": [_to(fqdn("reviews"), "v1")]},
            ],
        },
    }
    revision = mesh.cp.apply(yaml.safe_dump_all([gateway, routes], sort_keys=False))
    root = tmp_path_factory.mktemp("ingress")
    with ExitStack() as stack:
        envoy = start_ads_envoy(
            stack,
            root,
            node=GATEWAY_NODE_ID,
            cluster=f"istio-ingressgateway.{GATEWAY_NS}",
            metadata=node_metadata(
                namespace=GATEWAY_NS,
                labels={"istio": "ingressgateway", "app": "istio-ingressgateway"},
                workload_name="istio-ingressgateway",
                pod_name="ingress-e2e",
                instance_ips=["127.0.0.1"],
            ),
            xds_host=mesh.cp.xds_host,
            xds_port=mesh.cp.xds_port,
        )
        try:
            envoy.wait_ready(60)
            mesh.cp.wait_synced(GATEWAY_NODE_ID, revision=revision, within=30)
            client = HttpClient(port)
            until(
                lambda: client.get("reviews.example.com").status == 200,
                10,
                "the gateway listener to answer",
            )
            client.close()
            yield Ingress(envoy, port)
        except (AssertionError, TimeoutError) as e:
            raise AssertionError(f"{e}\n--- gateway envoy log ---\n{envoy.log_tail()}") from None


def test_ingress_gateway_routes_by_host_and_header(mesh: Mesh, ingress: Ingress) -> None:
    view = mesh.cp.proxy(GATEWAY_NODE_ID)
    assert view is not None and view["kind"] == "router"
    jason = send(ingress.port, "reviews.example.com", 50, headers={"end-user": "jason"})
    others = send(ingress.port, f"reviews.example.com:{ingress.port}", 50)
    unknown = send(ingress.port, "ratings.example.com", 10)
    assert tally(jason) == {"v2": 50}
    assert tally(others) == {"v1": 50}
    assert tally(unknown) == {"status 404": 10}  # no VirtualService for that host (Istio §1.2)
