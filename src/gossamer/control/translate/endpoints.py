"""ClusterLoadAssignments: a service's instances for one port (and subset), grouped by locality."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from gossamer.control.translate import client_tls
from gossamer.control.translate.clusters import socket_address
from gossamer.control.translate.peer_authn import peer_mode
from gossamer.control.world import Endpoint, MeshService, ServicePort, World

TLS_MODE_LABEL = "security.istio.io/tlsMode"


def locality(text: str) -> base_pb2.Locality:
    """`region/zone/subzone` (any part may be missing)."""
    parts = [*text.split("/"), "", "", ""][:3]
    return base_pb2.Locality(region=parts[0], zone=parts[1], sub_zone=parts[2])


def assignment(
    cluster: str,
    world: World,
    service: MeshService,
    port: ServicePort,
    subset: Mapping[str, str] | None = None,
) -> endpoint_pb2.ClusterLoadAssignment:
    """Every locality carries a load_balancing_weight (the sum of its endpoints' weights):
    gRPC clients silently drop localities without one (xds-notes)."""
    return load_assignment(cluster, world.endpoints(service, port, subset), world)


def meshed(world: World, ep: Endpoint) -> bool:
    """Whether a client should reach this endpoint over mesh mTLS under auto mTLS: its sidecar
    holds a mesh certificate, which Istio's label `security.istio.io/tlsMode: istio` says
    (Istio's injector sets it; Gossamer's runtime registers it for pods whose sidecar gets a
    certificate; a WorkloadEntry carries it by hand), and its PeerAuthentication on that port
    is not DISABLE. A sidecar without a certificate could not answer mTLS, so `has_sidecar`
    alone is not enough."""
    w = ep.workload
    sidecar = w.labels.get(TLS_MODE_LABEL) == client_tls.MESH_TLS_MODE
    return sidecar and peer_mode(world, w.namespace, w.labels, ep.port) != "DISABLE"


def load_assignment(
    cluster: str, endpoints: list[Endpoint], world: World | None = None
) -> endpoint_pb2.ClusterLoadAssignment:
    """With `world`, meshed endpoints carry `tlsMode: istio` for the cluster's auto-mTLS
    transport-socket match."""
    by_locality: dict[str, list[Endpoint]] = {}
    for ep in sorted(endpoints, key=lambda e: (e.workload.locality, e.address, e.port)):
        by_locality.setdefault(ep.workload.locality, []).append(ep)
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    for where, eps in by_locality.items():
        group = out.endpoints.add(locality=locality(where))
        total = 0
        for ep in eps:
            weight = ep.workload.weight or 1
            total += weight
            lb = group.lb_endpoints.add(health_status=health_check_pb2.HEALTHY)
            lb.endpoint.address.CopyFrom(socket_address(ep.address, ep.port))
            lb.load_balancing_weight.value = weight
            if world is not None and meshed(world, ep):
                lb.metadata.filter_metadata[client_tls.MATCH_METADATA].update(
                    {client_tls.TLS_MODE_KEY: client_tls.MESH_TLS_MODE}
                )
        group.load_balancing_weight.value = total
    return out


def dns_assignment(
    cluster: str, world: World, service: MeshService, port: ServicePort
) -> endpoint_pb2.ClusterLoadAssignment:
    """A DNS-resolved ServiceEntry: its listed endpoints, else the host name itself."""
    listed = world.endpoints(service, port)
    if listed:
        return load_assignment(cluster, listed, world)
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    group = out.endpoints.add()
    group.load_balancing_weight.value = 1
    lb = group.lb_endpoints.add()
    lb.endpoint.address.CopyFrom(socket_address(service.hostname, port.number))
    return out
