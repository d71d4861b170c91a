"""Which AuthorizationPolicies a sidecar enforces for its workload (istio-semantics §8).

Root namespace without selector: every workload in the mesh. Root namespace with a selector:
matching workloads in every namespace. Elsewhere: the policy's own namespace, narrowed by the
selector. Policies with targetRefs attach to gateways and waypoints, never to a sidecar; CUSTOM
(ext-authz) is accepted by validation but not enforced by Gossamer.
"""

from __future__ import annotations

from collections.abc import Iterable

from gossamer.control.registry import Workload
from gossamer.spec.security.authorizationpolicy import (
    ROOT_NAMESPACE,
    AuthorizationPolicy,
    ScopeLevel,
)


def applies_to(
    policy: AuthorizationPolicy, workload: Workload, root_namespace: str = ROOT_NAMESPACE
) -> bool:
    scope = policy.scope(root_namespace)
    if scope.level is ScopeLevel.TARGETS:
        return False
    if scope.namespace is not None and scope.namespace != workload.namespace:
        return False
    return scope.selector is None or scope.selector.matches(workload.labels)


def enforced_policies(
    policies: Iterable[AuthorizationPolicy],
    workload: Workload,
    root_namespace: str = ROOT_NAMESPACE,
) -> list[AuthorizationPolicy]:
    """The ALLOW, DENY and AUDIT policies `workload`'s sidecar enforces, in the given order."""
    return [
        p for p in policies if p.spec.action != "CUSTOM" and applies_to(p, workload, root_namespace)
    ]
