"""What one proxy sees: services and VirtualServices exported to it, and its own workload."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gossamer.control.registry import Workload
from gossamer.control.translate.names import INBOUND_CAPTURE_PORT
from gossamer.control.world import MeshService, ServicePort, World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.networking.common import host_matches
from gossamer.spec.networking.httpmatch import HTTPMatchRequest
from gossamer.spec.networking.virtualservice import MESH, VirtualService


def exported_to(export_to: Sequence[str], owner_ns: str, namespace: str) -> bool:
    """Istio's exportTo: empty or `*` = everywhere, `.` = the owner's namespace, `~` = nowhere."""
    if not export_to or "*" in export_to:
        return True
    return namespace in export_to or ("." in export_to and namespace == owner_ns)


def visible_services(world: World, namespace: str) -> list[MeshService]:
    """Services exported to `namespace`, by hostname (a stable order for stable output)."""
    return sorted(
        (s for s in world.services.values() if s.visible_from(namespace)),
        key=lambda s: s.hostname,
    )


def vs_hosts(vs: VirtualService) -> list[str]:
    return vs.spec.fqdn_hosts(vs.namespace)


def mesh_virtual_services(world: World, namespace: str) -> list[VirtualService]:
    """VirtualServices applied to sidecars (and proxyless clients) in `namespace`, oldest first."""
    return [
        vs
        for vs in world.of(VirtualService)
        if vs.spec.hosts
        and vs.spec.applies_to_mesh
        and exported_to(vs.spec.export_to, vs.namespace, namespace)
    ]


def virtual_service_for(
    hostname: str, candidates: Iterable[VirtualService]
) -> VirtualService | None:
    """The VirtualService claiming `hostname`: an exact host beats a wildcard; among several
    (a conflict, IST0109) the oldest wins, which is what Istio does in practice."""
    best: tuple[int, VirtualService] | None = None
    for vs in candidates:
        for host in vs_hosts(vs):
            if host == hostname:
                rank = 10_000
            elif host.startswith("*") and host_matches(host, hostname):
                rank = len(host)
            else:
                continue
            if best is None or rank > best[0]:
                best = (rank, vs)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class MatchScope:
    """Config-time selectors of a VirtualService match (Istio §0): which proxy is asking, and
    which gateways (`ns/name`, or `mesh`) the routes are being built for."""

    namespace: str
    labels: Mapping[str, str]
    gateways: frozenset[str]
    port: int

    def admits(self, match: HTTPMatchRequest, vs: VirtualService) -> bool:
        if match.port and match.port != self.port:
            return False
        if match.source_namespace and match.source_namespace != self.namespace:
            return False
        if any(self.labels.get(k) != v for k, v in match.source_labels.items()):
            return False
        if match.gateways:
            wanted = {qualify_gateway(g, vs.namespace) for g in match.gateways}
            return bool(wanted & self.gateways)
        return True


def own_workload(world: World, node: ProxyNode) -> Workload | None:
    """The instance a sidecar fronts: by IP (and namespace), else by workload name."""
    for w in world.workloads:
        if w.address in node.ips and w.namespace == node.namespace:
            return w
    for w in world.workloads:
        if node.workload and w.name == node.workload and w.namespace == node.namespace:
            return w
    return None


@dataclass(frozen=True, slots=True)
class InboundPort:
    """A port of a service this sidecar's workload serves: the service port and where the
    application listens (`target`)."""

    service: MeshService
    port: ServicePort
    target: int


def inbound_ports(world: World, node: ProxyNode) -> list[InboundPort]:
    """Service ports of the node's own workload (found by IP/name; else by its labels), one per
    target port (the first service wins)."""
    found: dict[int, InboundPort] = {}
    workload = own_workload(world, node)
    for svc in sorted(world.services.values(), key=lambda s: s.hostname):
        for port in svc.ports:
            target = _target_for(world, svc, port, workload, node)
            if target is not None and target not in found:
                found[target] = InboundPort(svc, port, target)
    return [found[t] for t in sorted(found)]


def _target_for(
    world: World,
    svc: MeshService,
    port: ServicePort,
    workload: Workload | None,
    node: ProxyNode,
) -> int | None:
    if workload is not None:
        for ep in world.endpoints(svc, port, include_unready=True):
            if ep.workload.uid == workload.uid:
                if ep.port == INBOUND_CAPTURE_PORT:
                    # An explicit-mode pod registers its sidecar's inbound port (peers dial it);
                    # the app itself listens on the Service's target port.
                    return _declared_target(port)
                return ep.port
        return None
    labels = node.labels
    if not labels or svc.selector is None or svc.namespace != node.namespace:
        return None
    if not svc.selector or any(labels.get(k) != v for k, v in svc.selector.items()):
        return None
    return _declared_target(port)


def _declared_target(port: ServicePort) -> int:
    return port.target if isinstance(port.target, int) else port.number


def gateway_ref(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def qualify_gateway(name: str, namespace: str) -> str:
    """`mesh`, `ns/name`, or a short name in the rule's namespace (legacy `name.ns` too)."""
    if name == MESH or "/" in name:
        return name
    if "." in name:
        parts = name.split(".")
        return f"{parts[1]}/{parts[0]}"
    return f"{namespace}/{name}"


def vs_gateways(vs: VirtualService) -> frozenset[str]:
    """Where a VirtualService applies: qualified gateway names, `mesh` when none are listed."""
    return frozenset(qualify_gateway(g, vs.namespace) for g in vs.spec.gateways) or MESH_GATEWAYS


MESH_GATEWAYS = frozenset({MESH})
