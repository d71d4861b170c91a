"""The RBAC filters one proxy enforces, from the World: its AuthorizationPolicies, selected by
the workload it fronts (sidecars) or by its own labels (gateways, unregistered sidecars)."""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.registry import Workload
from gossamer.control.translate.authz.filters import http_rbac_filters, network_rbac_filters
from gossamer.control.translate.scope import own_workload
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy


@dataclass(frozen=True, slots=True)
class ProxyRbac:
    """HTTP RBAC filters (before fault/cors/router) and network RBAC filters (before
    tcp_proxy); both empty when no AuthorizationPolicy applies, so chains stay as they were."""

    http: tuple[hcm_pb2.HttpFilter, ...]
    network: tuple[lc.Filter, ...]

    @classmethod
    def of(cls, world: World, node: ProxyNode) -> ProxyRbac:
        policies = world.of(AuthorizationPolicy)
        if not policies:
            return cls((), ())
        subject = policy_subject(world, node)
        return cls(
            tuple(http_rbac_filters(policies, subject)),
            tuple(network_rbac_filters(policies, subject)),
        )


def policy_subject(world: World, node: ProxyNode) -> Workload:
    """The workload whose policies `node` enforces: the registry's instance it fronts, else what
    the proxy says of itself (namespace, labels), as Istio reads them from proxy metadata."""
    found = own_workload(world, node)
    if found is not None:
        return found
    return Workload(
        name=node.workload,
        namespace=node.namespace,
        address=node.ip,
        labels=dict(node.labels),
        service_account=node.service_account or "default",
    )
