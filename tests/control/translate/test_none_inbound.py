"""INTERCEPTION_MODE NONE inbound (no iptables): a sidecar on its own instance IP gets one bound
`<ip>_<port>` listener per application port, with the same per-PeerAuthentication chains and
RBAC/jwt filters a capture-mode sidecar gets in virtualInbound, and delivers to the app on
localhost. On localhost itself (where the app listens) it gets none, as before."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate import build_snapshot
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import Snapshot
from gossamer.xdstypes import CLUSTER, LISTENER
from tests.control.translate.worlds import node, pod, world

MESH = """
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}, {name: tcp-db, port: 3306}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9090}]
"""
PODS = (pod("ratings-0", "127.0.0.12", {"app": "ratings"}, ports={"http": 9080, "tcp-db": 3306}),)
GET_ONLY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
"""
STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec: {mtls: {mode: STRICT}}
"""


def none_node(ip: str, *, sds: bool = True) -> ProxyNode:
    if sds:
        return node("sidecar", ip=ip, INTERCEPTION_MODE="NONE", INSTANCE_IPS=ip, SDS="true")
    return node("sidecar", ip=ip, INTERCEPTION_MODE="NONE", INSTANCE_IPS=ip)


def listeners_of(snap: Snapshot) -> dict[str, listener_pb2.Listener]:
    out = {}
    for name, resource in snap.of_type(LISTENER).items():
        parsed = listener_pb2.Listener()
        parsed.ParseFromString(resource.any.value)
        out[name] = parsed
    return out


def cluster(snap: Snapshot, name: str) -> cluster_pb2.Cluster:
    parsed = cluster_pb2.Cluster()
    parsed.ParseFromString(snap.of_type(CLUSTER)[name].any.value)
    return parsed


def http_filters(listener: listener_pb2.Listener, chain: int = 0) -> list[str]:
    hcm = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[chain].filters[0].typed_config.Unpack(hcm)
    return [f.name for f in hcm.http_filters]


def test_each_app_port_gets_a_bound_inbound_listener_on_the_instance_ip() -> None:
    snap = build_snapshot(world(MESH, GET_ONLY, workloads=PODS), none_node("127.0.0.12"))
    found = listeners_of(snap)
    assert {"127.0.0.12_9080", "127.0.0.12_3306"} <= set(found)
    http = found["127.0.0.12_9080"]
    assert http.address.socket_address.address == "127.0.0.12"
    assert http.address.socket_address.port_value == 9080
    assert http.traffic_direction == base_pb2.INBOUND
    assert not http.HasField("bind_to_port")  # binds (the default)
    assert "virtualInbound" not in found and "virtualOutbound" not in found
    # The inbound chain's RBAC comes first, as in virtualInbound.
    assert http_filters(http)[0] == "envoy.filters.http.rbac"
    tcp = found["127.0.0.12_3306"]
    assert tcp.filter_chains[0].filters[0].name == "envoy.filters.network.rbac"


def test_the_app_is_reached_on_localhost_and_outbound_binds_the_instance_ip() -> None:
    snap = build_snapshot(world(MESH, workloads=PODS), none_node("127.0.0.12"))
    app = cluster(snap, "inbound|9080||").load_assignment.endpoints[0].lb_endpoints[0]
    assert app.endpoint.address.socket_address.address == "127.0.0.1"
    assert app.endpoint.address.socket_address.port_value == 9080
    # Host processes sharing the loopback each keep to their own 127.0.0.x; an app port's
    # inbound listener wins over the outbound one of the same address.
    found = listeners_of(snap)
    assert found["127.0.0.12_9090"].traffic_direction == base_pb2.OUTBOUND
    assert found["127.0.0.12_9080"].traffic_direction == base_pb2.INBOUND


def test_strict_serves_only_mtls_and_inspects_the_first_bytes() -> None:
    snap = build_snapshot(world(MESH, STRICT, workloads=PODS), none_node("127.0.0.12"))
    http = listeners_of(snap)["127.0.0.12_9080"]
    assert [c.filter_chain_match.transport_protocol for c in http.filter_chains] == ["tls"]
    assert http.filter_chains[0].HasField("transport_socket")
    assert [f.name for f in http.listener_filters] == ["envoy.filters.listener.tls_inspector"]


def test_permissive_serves_mtls_plaintext_and_the_apps_own_tls() -> None:
    snap = build_snapshot(world(MESH, workloads=PODS), none_node("127.0.0.12"))
    http = listeners_of(snap)["127.0.0.12_9080"]
    assert [c.filter_chain_match.transport_protocol for c in http.filter_chains] == [
        "tls",
        "raw_buffer",
        "tls",
    ]


def test_strict_without_a_certificate_closes_every_connection() -> None:
    snap = build_snapshot(world(MESH, STRICT, workloads=PODS), none_node("127.0.0.12", sds=False))
    http = listeners_of(snap)["127.0.0.12_9080"]
    assert [c.name for c in http.filter_chains] == ["BlackHoleCluster"]


def test_on_localhost_no_inbound_listener_takes_the_apps_address() -> None:
    pods = (pod("ratings-0", "127.0.0.1", {"app": "ratings"}, ports={"http": 9080}),)
    snap = build_snapshot(world(MESH, workloads=pods), none_node("127.0.0.1"))
    found = listeners_of(snap)
    assert all(lst.traffic_direction != base_pb2.INBOUND for lst in found.values())
    assert "127.0.0.1_9080" in found  # the outbound listener, as before


def test_outbound_stays_on_127_0_0_1_for_other_instance_ips() -> None:
    for ip in ("10.0.0.7", "::1"):
        proxy = node("sidecar", ip=ip, INTERCEPTION_MODE="NONE", INSTANCE_IPS=ip)
        snap = build_snapshot(world(MESH), proxy)
        outbound = [
            lst for lst in listeners_of(snap).values() if lst.traffic_direction == base_pb2.OUTBOUND
        ]
        assert outbound, ip
        assert {o.address.socket_address.address for o in outbound} == {"127.0.0.1"}, ip
