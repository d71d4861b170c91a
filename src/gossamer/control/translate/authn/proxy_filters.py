"""The jwt_authn filter one proxy runs, from the World: the RequestAuthentications selecting
the workload it fronts (sidecars) or its own labels (gateways), as `ProxyRbac` does for
AuthorizationPolicy; the integrator puts `ProxyJwt.of(world, node).http_filters` before the
RBAC filters of each inbound (or gateway) HTTP connection manager."""

from __future__ import annotations

from dataclasses import dataclass

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate.authn.filters import jwt_authn_filters
from gossamer.control.translate.authn.jwks import JwksResolver
from gossamer.control.translate.authz.proxy_filters import policy_subject
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.security.requestauthentication import RequestAuthentication

# One resolver per control plane process: fetched JWKS are shared by every proxy's translation.
RESOLVER = JwksResolver()


@dataclass(frozen=True, slots=True)
class ProxyJwt:
    """Empty when no RequestAuthentication applies, so chains stay as they were."""

    http_filters: tuple[hcm_pb2.HttpFilter, ...]

    @classmethod
    def of(cls, world: World, node: ProxyNode, resolver: JwksResolver = RESOLVER) -> ProxyJwt:
        policies = world.of(RequestAuthentication)
        if not policies:
            return cls(())
        return cls(tuple(jwt_authn_filters(policies, policy_subject(world, node), resolver)))
