"""AuthorizationPolicies reach a sidecar's inbound chains as Envoy RBAC filters, as in Istio:
HTTP RBAC before fault/cors/router, network RBAC before tcp_proxy (passthrough included), only
for the workloads a policy selects, and nothing at all changes when no policy applies."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2

from gossamer.control.translate import build_snapshot, listeners
from gossamer.control.translate.authz import ProxyRbac
from gossamer.control.xds.resources import Snapshot
from gossamer.xdstypes import LISTENER
from tests.control.translate.worlds import node, pod, world

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: tcp-db, port: 3306}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
"""

PODS = (
    pod("reviews-0", "10.0.0.5", {"app": "reviews"}, ports={"http": 9080, "tcp-db": 3306}),
    pod("ratings-0", "10.0.0.6", {"app": "ratings"}, ports={"http": 9080}),
)

GET_ONLY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
"""

DENY_DB = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-db, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {ports: ["3306"]}}]}]
"""

ALLOW_NOTHING = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
"""

REVIEWS = node("sidecar", ip="10.0.0.5")
RATINGS = node("sidecar", ip="10.0.0.6")


def listener(snapshot: Snapshot, name: str) -> listener_pb2.Listener:
    out = listener_pb2.Listener()
    out.ParseFromString(snapshot.of_type(LISTENER)[name].any.value)
    return out


def chain(snapshot: Snapshot, name: str) -> lc.FilterChain:
    return next(c for c in listener(snapshot, "virtualInbound").filter_chains if c.name == name)


def http_filter_names(fc: lc.FilterChain) -> list[str]:
    hcm = hcm_pb2.HttpConnectionManager()
    fc.filters[0].typed_config.Unpack(hcm)
    return [f.name for f in hcm.http_filters]


def http_rbac_actions(fc: lc.FilterChain) -> list[int]:
    hcm = hcm_pb2.HttpConnectionManager()
    fc.filters[0].typed_config.Unpack(hcm)
    actions = []
    for f in hcm.http_filters:
        if f.name == "envoy.filters.http.rbac":
            rbac = http_rbac_pb2.RBAC()
            f.typed_config.Unpack(rbac)
            actions.append(rbac.rules.action)
    return actions


def network_rbac_policies(fc: lc.FilterChain) -> list[list[str]]:
    out = []
    for f in fc.filters:
        if f.name == "envoy.filters.network.rbac":
            rbac = network_rbac_pb2.RBAC()
            f.typed_config.Unpack(rbac)
            out.append(sorted(rbac.rules.policies))
    return out


def test_http_rbac_goes_first_in_inbound_http_chains_of_selected_workloads() -> None:
    snap = build_snapshot(world(MESH, GET_ONLY, workloads=PODS), REVIEWS)
    assert http_filter_names(chain(snap, "inbound|9080||")) == [
        "envoy.filters.http.rbac",
        "envoy.filters.http.fault",
        "envoy.filters.http.cors",
        "envoy.filters.http.router",
    ]
    assert http_rbac_actions(chain(snap, "inbound|9080||")) == [http_rbac_pb2.RBAC().rules.ALLOW]
    # Outbound HTTP listeners are never guarded: policies are the server's business.
    assert "0.0.0.0_9080" in snap.of_type(LISTENER)
    outbound = listener(snap, "0.0.0.0_9080").filter_chains[0]
    assert "envoy.filters.http.rbac" not in http_filter_names(outbound)


def test_network_rbac_precedes_tcp_proxy_and_guards_the_passthrough_chain() -> None:
    snap = build_snapshot(world(MESH, GET_ONLY, DENY_DB, workloads=PODS), REVIEWS)
    tcp = chain(snap, "inbound|3306||")
    assert [f.name for f in tcp.filters] == [
        "envoy.filters.network.rbac",  # DENY first, then ALLOW: Istio's order
        "envoy.filters.network.rbac",
        "envoy.filters.network.tcp_proxy",
    ]
    # The ALLOW rule names only HTTP methods: for TCP Istio drops it, so the ALLOW filter has
    # no policy left and every connection is refused (allow-by-method can't admit raw TCP).
    assert network_rbac_policies(tcp) == [["ns[default]-policy[no-db]-rule[0]"], []]
    passthrough = chain(snap, "InboundPassthroughFilterChain")
    assert [f.name for f in passthrough.filters][-1] == "envoy.filters.network.tcp_proxy"
    assert len(network_rbac_policies(passthrough)) == 2
    # HTTP chains: DENY filter before ALLOW filter.
    rules = http_rbac_pb2.RBAC().rules
    assert http_rbac_actions(chain(snap, "inbound|9080||")) == [rules.DENY, rules.ALLOW]


def test_workloads_a_policy_does_not_select_keep_their_chains() -> None:
    without = build_snapshot(world(MESH, workloads=PODS), RATINGS)
    with_policy = build_snapshot(world(MESH, GET_ONLY, DENY_DB, workloads=PODS), RATINGS)
    assert listener(with_policy, "virtualInbound") == listener(without, "virtualInbound")


def test_allow_nothing_in_the_namespace_reaches_every_workload_there() -> None:
    for proxy in (REVIEWS, RATINGS):
        snap = build_snapshot(world(MESH, ALLOW_NOTHING, workloads=PODS), proxy)
        fc = chain(snap, "inbound|9080||")
        assert http_rbac_actions(fc) == [http_rbac_pb2.RBAC().rules.ALLOW]
        hcm = hcm_pb2.HttpConnectionManager()
        fc.filters[0].typed_config.Unpack(hcm)
        rbac = http_rbac_pb2.RBAC()
        hcm.http_filters[0].typed_config.Unpack(rbac)
        assert list(rbac.rules.policies) == ["ns[default]-policy[allow-nothing]-rule[0]"]


def test_a_policy_in_another_namespace_does_not_apply() -> None:
    elsewhere = ALLOW_NOTHING.replace("namespace: default", "namespace: other")
    base = build_snapshot(world(MESH, workloads=PODS), REVIEWS)
    snap = build_snapshot(world(MESH, elsewhere, workloads=PODS), REVIEWS)
    assert listener(snap, "virtualInbound") == listener(base, "virtualInbound")


def test_unregistered_sidecar_is_matched_by_its_own_labels() -> None:
    # Not in the registry yet: the proxy's metadata (namespace, labels) selects policies.
    proxy = node("sidecar", ip="10.0.0.99", labels={"app": "reviews"})
    snap = build_snapshot(world(MESH, GET_ONLY, workloads=PODS), proxy)
    assert http_rbac_actions(chain(snap, "inbound|9080||")) == [http_rbac_pb2.RBAC().rules.ALLOW]


def test_no_policy_means_byte_identical_output() -> None:
    """Pinned: a config without AuthorizationPolicies (or with only ones that apply elsewhere)
    produces exactly the bytes it produced before RBAC was wired in."""
    other = GET_ONLY.replace("app: reviews", "app: nobody")
    for proxy in (REVIEWS, RATINGS, node("sidecar", INTERCEPTION_MODE="NONE")):
        base = build_snapshot(world(MESH, workloads=PODS), proxy)
        snap = build_snapshot(world(MESH, other, workloads=PODS), proxy)
        assert {t: {n: r.any.value for n, r in rs.items()} for t, rs in snap.resources.items()} == {
            t: {n: r.any.value for n, r in rs.items()} for t, rs in base.resources.items()
        }


INGRESS_POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-get, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
"""


def test_gateway_rbac_is_selected_by_the_gateway_labels_and_goes_before_fault() -> None:
    """The hook gateway listeners need (gateway.py passes `ProxyRbac.of(...).http` to
    `rds_filter`): a policy selecting the gateway's labels yields its filter, first."""
    gateway = node("router", namespace="istio-system", labels={"istio": "ingressgateway"})
    rbac = ProxyRbac.of(world(MESH, INGRESS_POLICY, workloads=PODS), gateway)
    assert [f.name for f in rbac.http] == ["envoy.filters.http.rbac"]
    hcm = hcm_pb2.HttpConnectionManager()
    listeners.rds_filter("http.80", rbac.http).typed_config.Unpack(hcm)
    assert [f.name for f in hcm.http_filters][:2] == [
        "envoy.filters.http.rbac",
        "envoy.filters.http.fault",
    ]
    # A sidecar in istio-system without those labels is not selected.
    other = node("sidecar", namespace="istio-system", labels={"app": "x"})
    assert ProxyRbac.of(world(MESH, INGRESS_POLICY, workloads=PODS), other) == ProxyRbac((), ())
