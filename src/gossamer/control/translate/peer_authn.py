"""Which mTLS mode a workload's server side runs on one port: PeerAuthentication (Istio §6).

Resolution starts at PERMISSIVE (nothing configured anywhere) and each narrower level that
sets a mode overrides it: mesh (root namespace, no selector) → namespace (no selector) →
workload (selector; ignored in the root namespace) → that workload policy's `portLevelMtls`
entry for the target port. UNSET at any level inherits. Several policies at one level: the
oldest wins (`World.of` lists resources oldest first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from gossamer.control.world import ROOT_NAMESPACE, World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.security.authorizationpolicy import ScopeLevel
from gossamer.spec.security.peerauthentication import PeerAuthentication

PeerMode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
DEFAULT_MODE: PeerMode = "PERMISSIVE"
# Node metadata a proxy sends when it will hold a mesh certificate (the Gossamer sidecar with
# --ca-address, Envoy beside `gossamer agent`). Istio up to 1.5 used the same key for the same
# decision (emit SDS-based TLS or not); a proxy without it gets no mesh TLS, since Envoy would
# wait forever for secrets nothing serves.
IDENTITY_METADATA = "SDS"  # = runtime.envoy_bootstrap.IDENTITY_METADATA (the proxies' side)


def holds_identity(node: ProxyNode) -> bool:
    return str(node.metadata.get(IDENTITY_METADATA, "")).lower() == "true"


def served_mode(mode: PeerMode, identity: bool) -> PeerMode | None:
    """The mode a server can actually run: without a certificate PERMISSIVE serves plaintext
    only and STRICT serves nothing (None: no chain, so connections are closed, never let
    through in plaintext)."""
    if identity or mode == "DISABLE":
        return mode
    return "DISABLE" if mode == "PERMISSIVE" else None


def peer_mode(
    world: World, namespace: str, labels: Mapping[str, str], target_port: int | None
) -> PeerMode:
    """The mode a workload (namespace, labels) accepts on `target_port` (its container port;
    None: the workload as a whole, e.g. a port no service declares)."""
    mesh = namespace_policy = workload = None
    for pa in world.of(PeerAuthentication):
        scope = pa.scope(ROOT_NAMESPACE)
        if scope is None:
            continue  # a selector policy in the root namespace: Istio ignores it
        if scope.level is ScopeLevel.MESH:
            mesh = mesh or pa
        elif scope.level is ScopeLevel.NAMESPACE and scope.namespace == namespace:
            namespace_policy = namespace_policy or pa
        elif scope.level is ScopeLevel.WORKLOAD and scope.namespace == namespace:
            assert scope.selector is not None
            if workload is None and _selects(scope.selector.match_labels, labels):
                workload = pa
    mode: str = DEFAULT_MODE
    for policy in (mesh, namespace_policy, workload):
        if policy is not None and policy.mode != "UNSET":
            mode = policy.mode
    if workload is not None and target_port is not None:
        port_mode = workload.spec.port_modes().get(target_port, "UNSET")
        if port_mode != "UNSET":
            mode = port_mode
    return _known(mode)


def _selects(wanted: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _known(mode: str) -> PeerMode:
    if mode == "STRICT":
        return "STRICT"
    if mode == "DISABLE":
        return "DISABLE"
    return "PERMISSIVE"
