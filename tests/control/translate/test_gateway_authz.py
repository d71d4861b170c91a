"""AuthorizationPolicies selecting an ingress gateway's labels guard its Gateway listeners."""

from __future__ import annotations

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate import build_snapshot
from tests.control.translate.test_inbound_authz import INGRESS_POLICY, MESH, PODS, listener
from tests.control.translate.worlds import node, world

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [web]
  http: [{route: [{destination: {host: reviews}}]}]
"""

INGRESS = node("router", namespace="istio-system", labels={"istio": "ingressgateway"})


def gateway_filters(*docs: str) -> list[str]:
    snapshot = build_snapshot(world(MESH, GATEWAY, *docs, workloads=PODS), INGRESS)
    hcm = hcm_pb2.HttpConnectionManager()
    listener(snapshot, "0.0.0.0_8080").filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return [f.name for f in hcm.http_filters]


def test_a_policy_selecting_the_gateway_puts_rbac_first_on_its_listener() -> None:
    assert gateway_filters(INGRESS_POLICY)[0] == "envoy.filters.http.rbac"


def test_without_a_policy_the_gateway_listener_has_no_rbac() -> None:
    assert "envoy.filters.http.rbac" not in gateway_filters()
