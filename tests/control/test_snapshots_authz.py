"""The snapshot memo is keyed by world revision: an AuthorizationPolicy change (a new revision)
reaches the proxies it applies to, and a memo hit never serves a stale inbound chain."""

from __future__ import annotations

from gossamer.control.registry import Workload
from gossamer.control.snapshots import TranslatingSource
from gossamer.control.world import World, build_world
from gossamer.control.xds.node import ProxyNode
from gossamer.spec import parse_text
from gossamer.xdstypes import LISTENER

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
"""

DENY_ALL_GETS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-gets, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {methods: [GET]}}]}]
"""

POD = Workload("reviews-0", "default", "10.0.0.9", {"app": "reviews"}, ports={"http": 9080})


def at(revision: int, *texts: str) -> World:
    docs = [p.resource for t in texts for p in parse_text(t) if p.resource]
    return build_world(revision, docs, (POD,))


def inbound_digest(source: TranslatingSource, node: ProxyNode) -> str:
    return source.snapshot(node).of_type(LISTENER)["virtualInbound"].digest


def test_a_policy_change_changes_the_inbound_listener_of_the_selected_proxy() -> None:
    worlds = [at(1, SERVICE)]
    source = TranslatingSource(lambda: worlds[-1])
    node = ProxyNode.parse("sidecar~10.0.0.9~reviews-0.default~default.svc.cluster.local")
    before = inbound_digest(source, node)
    worlds.append(at(2, SERVICE, DENY_ALL_GETS))
    guarded = inbound_digest(source, node)
    assert guarded != before
    worlds.append(at(3, SERVICE, DENY_ALL_GETS.replace("GET", "POST")))
    assert inbound_digest(source, node) not in (before, guarded)
    worlds.append(at(4, SERVICE))  # deleted: back to the unguarded bytes
    assert inbound_digest(source, node) == before
