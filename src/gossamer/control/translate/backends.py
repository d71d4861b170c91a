"""Outbound clusters and their endpoints for every service port a proxy can reach."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from gossamer.control.translate import clusters, endpoints, names, tls_contexts
from gossamer.control.translate.destinations import DestinationRules
from gossamer.control.world import MeshService, World


@dataclass(slots=True)
class Backends:
    clusters: list[cluster_pb2.Cluster] = field(default_factory=list)
    assignments: list[endpoint_pb2.ClusterLoadAssignment] = field(default_factory=list)


def outbound_backends(
    world: World,
    services: Iterable[MeshService],
    rules: DestinationRules,
    *,
    proxyless: bool = False,
) -> Backends:
    """`outbound|port||host` per service port, plus `outbound|port|subset|host` per subset of
    the DestinationRule that applies (a route naming an undefined subset names a cluster that
    does not exist: 503 NC, as in Istio). EDS clusters get a ClusterLoadAssignment each."""
    out = Backends()
    for svc in services:
        if proxyless and svc.resolution == "NONE":
            continue  # original-destination services have no meaning without a socket
        subsets = rules.subsets(svc.hostname)
        peer_uris = service_identities(world, svc)
        for port in svc.ports:
            variants = [("", None)] + [(s.name, s.selector) for s in subsets]
            for subset, selector in variants:
                name = names.outbound_cluster(port.number, svc.hostname, subset)
                policy = rules.resolve(svc.hostname, port.number, subset)
                inline = None
                if svc.resolution == "DNS" and not proxyless:
                    inline = endpoints.dns_assignment(name, world, svc, port)
                cluster = clusters.outbound(
                    name,
                    svc,
                    port,
                    policy,
                    proxyless=proxyless,
                    inline_endpoints=inline,
                    peer_uris=peer_uris,
                )
                out.clusters.append(cluster)
                if cluster.type == cluster_pb2.Cluster.EDS:
                    out.assignments.append(endpoints.assignment(name, world, svc, port, selector))
    return out


def service_identities(world: World, service: MeshService) -> tuple[str, ...]:
    """The SPIFFE ids of every instance of a service (all ports and subsets, ready or not, so
    a pod turning ready changes no cluster), sorted: what mesh mTLS accepts from its endpoints."""
    found = {
        tls_contexts.spiffe_uri(w.namespace, w.service_account) for w in world.instances(service)
    }
    return tuple(sorted(found))
