"""The SnapshotSource the ADS server asks: translate the current World for one proxy, memoized.

The memo key is explicit: (world revision, the proxy attributes translation reads). Proxies of
the same shape at the same revision share one Snapshot object, so its packed resources and
selections are computed once however many streams there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gossamer.control.translate import build_snapshot
from gossamer.control.translate.peer_authn import holds_identity
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import Snapshot


@dataclass(frozen=True, slots=True)
class ProxyShape:
    """What translation depends on about a proxy; two proxies of one shape get one Snapshot."""

    kind: str
    namespace: str
    ips: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    service_account: str
    workload: str
    interception: str  # INTERCEPTION_MODE: REDIRECT (iptables) or NONE (listeners bind)
    identity: bool  # holds a mesh certificate (SDS metadata): decides mesh TLS in the output

    @classmethod
    def of(cls, node: ProxyNode) -> ProxyShape:
        # Proxyless clients have no inbound side: their IP and workload do not change output.
        inbound = node.kind != "proxyless"
        return cls(
            kind=node.kind,
            namespace=node.namespace,
            ips=node.ips if inbound else (),
            labels=tuple(sorted(node.labels.items())),
            service_account=node.service_account,
            workload=node.workload if inbound else "",
            interception=str(node.metadata.get("INTERCEPTION_MODE", "REDIRECT")),
            identity=holds_identity(node),
        )


class TranslatingSource:
    """Memoizes `build_snapshot(world, node)` for the current world only (older revisions are
    dropped as soon as a newer world is asked for, so memory stays bounded by proxy shapes)."""

    def __init__(self, world: Callable[[], World]) -> None:
        self._world = world
        self._revision = -1
        self._memo: dict[ProxyShape, Snapshot] = {}

    def snapshot(self, node: ProxyNode) -> Snapshot:
        world = self._world()
        if world.revision != self._revision:
            self._memo.clear()
            self._revision = world.revision
        shape = ProxyShape.of(node)
        hit = self._memo.get(shape)
        if hit is None:
            hit = self._memo[shape] = build_snapshot(world, node)
        return hit
