"""Clusters and endpoints: DestinationRule policies with Istio's defaults, lookup and merge."""

from __future__ import annotations

from datetime import timedelta

from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo

from tests.control.translate.simulate import Simulator
from tests.control.translate.worlds import cluster, node, pod, simulate, world

UNLIMITED = 2**32 - 1
H2 = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
SVC = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}, {name: grpc-api, port: 90}]
"""


def dr(spec: str, name: str = "web", namespace: str = "default") -> str:
    return f"""
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {namespace}}}
spec:
{spec}
"""


def test_defaults_unlimited_breakers_10s_connect_least_request_no_outlier() -> None:
    sim = simulate(world(SVC), node("sidecar"))
    c = sim.cluster(cluster("web", 80)).cluster
    assert sim.cluster(cluster("web", 80)).lb_policy == "LEAST_REQUEST"
    t = c.circuit_breakers.thresholds[0]
    assert [
        t.max_connections.value,
        t.max_pending_requests.value,
        t.max_requests.value,
        t.max_retries.value,
    ] == [UNLIMITED] * 4
    assert c.connect_timeout.ToTimedelta() == timedelta(seconds=10)
    assert not c.HasField("outlier_detection")
    assert c.type == c.EDS and c.eds_cluster_config.eds_config.HasField("ads")


def upstream_protocol(sim: Simulator, name: str) -> str | None:
    options = hpo.HttpProtocolOptions()
    sim.cluster(name).cluster.typed_extension_protocol_options[H2].Unpack(options)
    kind: str | None = options.explicit_http_config.WhichOneof("protocol_config")
    return kind


def test_grpc_ports_get_http2_upstream() -> None:
    sim = simulate(world(SVC), node("sidecar"))
    assert upstream_protocol(sim, cluster("web", 90)) == "http2_protocol_options"
    assert upstream_protocol(sim, cluster("web", 80)) == "http_protocol_options"


def test_pool_outlier_and_consistent_hash() -> None:
    text = SVC + dr(
        """  host: web
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
    connectionPool: {tcp: {maxConnections: 7, connectTimeout: 2s}, http: {maxRetries: 9}}
    outlierDetection: {interval: 1s}
"""
    )
    sim = simulate(world(text), node("sidecar"))
    view = sim.cluster(cluster("web", 80))
    assert view.lb_policy == "RING_HASH"
    t = view.cluster.circuit_breakers.thresholds[0]
    assert (t.max_connections.value, t.max_retries.value, t.max_requests.value) == (7, 9, UNLIMITED)
    assert view.cluster.connect_timeout.ToTimedelta() == timedelta(seconds=2)
    od = view.cluster.outlier_detection
    assert od.consecutive_5xx.value == 5 and od.interval.ToTimedelta() == timedelta(seconds=1)
    assert od.base_ejection_time.ToTimedelta() == timedelta(seconds=30)
    assert od.max_ejection_percent.value == 10 and od.enforcing_success_rate.value == 0
    assert view.cluster.common_lb_config.healthy_panic_threshold.value == 0
    out = sim.call("80", "web", "/")
    assert [h.header.header_name for h in out.hash_policies] == ["x-user"]
    assert out.retry is not None and not out.retry.retry_host_predicate  # no previous_hosts


def test_cookie_hash_with_ttl_and_maglev_become_ring_hash_for_proxyless() -> None:
    text = SVC + dr(
        """  host: web
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: s, ttl: 60s}, maglev: {tableSize: 65537}}}
"""
    )
    sidecar = simulate(world(text), node("sidecar"))
    assert sidecar.cluster(cluster("web", 80)).lb_policy == "MAGLEV"
    cookie = sidecar.call("80", "web", "/").hash_policies[0].cookie
    assert (cookie.name, cookie.ttl.ToTimedelta()) == ("s", timedelta(seconds=60))
    grpc = simulate(world(text), node("proxyless"))
    assert grpc.cluster(cluster("web", 90)).lb_policy == "RING_HASH"


def test_proxyless_least_request_and_random_become_round_robin() -> None:
    text = SVC + dr(
        """  host: web
  trafficPolicy:
    portLevelSettings: [{port: {number: 90}, loadBalancer: {simple: RANDOM}}]
"""
    )
    grpc = simulate(world(text), node("proxyless"))
    assert grpc.cluster(cluster("web", 80)).lb_policy == "ROUND_ROBIN"
    assert grpc.cluster(cluster("web", 90)).lb_policy == "ROUND_ROBIN"
    sidecar = simulate(world(text), node("sidecar"))
    assert sidecar.cluster(cluster("web", 90)).lb_policy == "RANDOM"


def test_subset_policy_overrides_per_block() -> None:
    text = SVC + dr(
        """  host: web
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 3}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {loadBalancer: {simple: RANDOM}}
"""
    )
    sim = simulate(world(text), node("sidecar"))
    v1 = sim.cluster(cluster("web", 80, "v1"))
    assert v1.lb_policy == "RANDOM"
    assert v1.cluster.circuit_breakers.thresholds[0].max_connections.value == 3


def test_lookup_order_client_namespace_then_service_then_root_and_merge() -> None:
    text = (
        SVC
        + dr(
            "  host: web.default.svc.cluster.local\n  subsets: [{name: root, labels: {a: b}}]",
            "r",
            "istio-system",
        )
        + dr(
            "  host: web\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"
            "  subsets: [{name: s1, labels: {v: '1'}}]",
            "d1",
        )
        + dr(
            "  host: web\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n"
            "  subsets: [{name: s2, labels: {v: '2'}}]",
            "d2",
        )
        + dr(
            "  host: web.default.svc.cluster.local\n  subsets: [{name: mine, labels: {v: '3'}}]",
            "c",
            "client",
        )
    )
    w = world(text)
    default = simulate(w, node("sidecar"))
    assert {n for n in default.clusters if n.startswith("outbound|80|")} == {
        cluster("web", 80, s) for s in ("", "s1", "s2")
    }
    assert default.cluster(cluster("web", 80)).lb_policy == "RANDOM"  # the oldest policy wins
    other = simulate(w, node("sidecar", namespace="client"))
    assert cluster("web", 80, "mine") in other.clusters
    assert cluster("web", 80, "s1") not in other.clusters
    elsewhere = simulate(w, node("sidecar", namespace="x"))
    assert cluster("web", 80, "s1") in elsewhere.clusters  # the service's namespace


def test_dr_export_to_dot_hides_it_from_other_namespaces() -> None:
    text = SVC + dr("  host: web\n  exportTo: ['.']\n  subsets: [{name: s1, labels: {v: '1'}}]")
    assert cluster("web", 80, "s1") in simulate(world(text), node("sidecar")).clusters
    assert (
        cluster("web", 80, "s1")
        not in simulate(world(text), node("sidecar", namespace="x")).clusters
    )


def test_workload_entries_localities_and_weights() -> None:
    entries = """
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: e1}
spec: {address: 10.1.0.1, labels: {app: web, version: v1}, locality: us/east/a, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: e2}
spec: {address: 10.1.0.2, labels: {app: web, version: v2}, locality: us/east/a, ports: {http: 8080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: e3}
spec: {address: 10.1.0.3, labels: {app: web, version: v2}, locality: eu/west}
"""
    text = SVC + entries + dr("  host: web\n  subsets: [{name: v2, labels: {version: v2}}]")
    sim = simulate(
        world(text, workloads=(pod("p", "10.2.0.1", {"app": "other"}),)), node("proxyless")
    )
    all_ = sim.cluster(cluster("web", 80))
    assert sorted(all_.endpoints) == [
        ("10.1.0.1", 80, "us/east/a", 3),
        ("10.1.0.2", 8080, "us/east/a", 1),
        ("10.1.0.3", 80, "eu/west", 1),
    ]
    assert all_.locality_weights == {"us/east/a": 4, "eu/west": 1}
    v2 = sim.cluster(cluster("web", 80, "v2"))
    assert sorted(e[0] for e in v2.endpoints) == ["10.1.0.2", "10.1.0.3"]
    assert all(w > 0 for w in v2.locality_weights.values())
