"""Pure translation: World × proxy → Envoy xDS v3 resources (LDS, RDS, CDS, EDS).

`build_snapshot(world, node)` is the entry point; it does no I/O.
"""

from __future__ import annotations

from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import Snapshot


def build_snapshot(world: World, node: ProxyNode) -> Snapshot:
    """Every resource this proxy may subscribe to, at the world's revision."""
    return Snapshot.build([], revision=world.revision)
