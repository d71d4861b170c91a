"""Test fixtures: small meshes translated by the real control plane (`build_snapshot`)."""

from __future__ import annotations

from typing import Any

from gossamer.control.translate import build_snapshot
from gossamer.control.world import World, build_world
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import Snapshot
from gossamer.proxy.config.snapshot import message_type
from gossamer.spec import parse_text
from gossamer.spec.base import Resource

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


def resources(*texts: str) -> list[Resource]:
    out: list[Resource] = []
    for text in texts:
        for parsed in parse_text(text, source="inline"):
            errors = [f for f in parsed.findings if f.is_error]
            assert not errors, errors
            if parsed.resource is not None:
                out.append(parsed.resource)
    return out


def world(*texts: str, revision: int = 1) -> World:
    return build_world(revision, resources(SERVICES, *texts))


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
