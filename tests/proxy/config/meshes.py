"""Test fixtures: small meshes translated by the real control plane (`build_snapshot`)."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2

from gossamer.control.translate import build_snapshot
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot
from gossamer.proxy.config.snapshot import ProxyConfig, SnapshotBuilder, message_type
from tests.control.translate import worlds

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080, targetPort: 9081}, {name: tcp-admin, port: 7000}]
---
apiVersion: v1
kind: Service
metadata: {name: mysql, namespace: default}
spec:
  clusterIP: 10.96.0.20
  selector: {app: mysql}
  ports: [{name: tcp, port: 3306}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec:
  address: 127.0.0.1
  labels: {app: reviews, version: v1}
  ports: {http: 19001}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec:
  address: 127.0.0.2
  labels: {app: reviews, version: v2}
  ports: {http: 19002}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: mysql-1, namespace: default}
spec:
  address: 127.0.0.3
  labels: {app: mysql}
  ports: {tcp: 3306}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""

REVIEWS_V2 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""

REVIEWS_V1 = REVIEWS_V2.replace("subset: v2", "subset: v1")


def world(*texts: str, revision: int = 1) -> World:
    return worlds.world(SERVICES, *texts, revision=revision)


def sidecar(app: str = "productpage", **metadata: Any) -> ProxyNode:
    meta: dict[str, Any] = {"LABELS": {"app": app}, **metadata}
    return ProxyNode.parse(
        f"sidecar~10.0.0.9~{app}-1.default~default.svc.cluster.local", metadata=meta
    )


def snapshot(*texts: str, node: ProxyNode | None = None, revision: int = 1) -> Snapshot:
    return build_snapshot(world(*texts, revision=revision), node or sidecar())


def protos(snap: Snapshot, type_url: str) -> dict[str, Any]:
    """name → unpacked proto of one type in a translated snapshot."""
    out: dict[str, Any] = {}
    for name, resource in snap.resources.get(type_url, {}).items():
        pb = message_type(type_url)()
        assert resource.any.Unpack(pb)
        out[name] = pb
    return out


def applied(snap: Snapshot) -> ProxyConfig:
    """The ProxyConfig a sidecar holds once the control plane's pushes of `snap` arrived: CDS,
    EDS, LDS then RDS through one SnapshotBuilder, as the xDS client applies them. Each type
    gets its own version and fresh Any copies, as off the wire."""
    builder = SnapshotBuilder()
    config = builder.config
    for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
        packed = []
        for resource in snap.resources.get(type_url, {}).values():
            copy = any_pb2.Any()
            copy.CopyFrom(resource.any)
            packed.append(copy)
        config = builder.apply(type_url, f"v-{type_url[-8:]}", packed)
    return config


def bookinfo_gateway_listeners() -> dict[str, Any]:
    """name → Listener the control plane sends Bookinfo's ingress gateway."""
    mesh = worlds.world(
        "platform-kube-bookinfo.yaml", "bookinfo-gateway.yaml", workloads=worlds.bookinfo_pods()
    )
    gateway = worlds.node("router", labels={"istio": "ingressgateway"})
    return protos(build_snapshot(mesh, gateway), LISTENER)


def endpoint_addresses(config: ProxyConfig, cluster: str) -> list[tuple[str, int]]:
    """(host, port) of each endpoint `config` holds for `cluster`, in order."""
    found = config.endpoints_for(cluster)
    assert found is not None, f"no endpoints for {cluster}"
    return [(e.host, e.port) for e in found.endpoints]
