"""Pure translation: World x proxy → Envoy xDS v3 resources (LDS, RDS, CDS, EDS).

`build_snapshot(world, node)` is the entry point; it does no I/O. Proxyless gRPC clients get
API listeners named `host:port`; sidecars Istio's listener layout (`sidecar.py`); routers the
listeners of the Istio and Gateway API Gateways that select them (`gateway.py`).
"""

from __future__ import annotations

from gossamer.control.translate.gateway import gateway_resources
from gossamer.control.translate.proxyless import proxyless_resources
from gossamer.control.translate.sidecar import sidecar_resources
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import Snapshot


def build_snapshot(world: World, node: ProxyNode) -> Snapshot:
    """Every resource this proxy may subscribe to, at the world's revision."""
    if node.kind == "proxyless":
        messages = proxyless_resources(world, node)
    elif node.kind == "router":
        messages = gateway_resources(world, node)
    else:
        messages = sidecar_resources(world, node)
    return Snapshot.build(messages, revision=world.revision)
