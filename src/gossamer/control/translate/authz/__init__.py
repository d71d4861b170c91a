"""AuthorizationPolicy → Envoy RBAC filters (HTTP and network), as Istio's authz builder."""

from gossamer.control.translate.authz.filters import (
    DENIED_BODY,
    HTTP_RBAC_FILTER,
    NETWORK_RBAC_FILTER,
    http_rbac_filters,
    network_rbac_filters,
    policy_name,
    rbac_configs,
)
from gossamer.control.translate.authz.proxy_filters import ProxyRbac, policy_subject
from gossamer.control.translate.authz.selection import applies_to, enforced_policies

__all__ = [
    "DENIED_BODY",
    "HTTP_RBAC_FILTER",
    "NETWORK_RBAC_FILTER",
    "ProxyRbac",
    "applies_to",
    "enforced_policies",
    "http_rbac_filters",
    "network_rbac_filters",
    "policy_name",
    "policy_subject",
    "rbac_configs",
]
