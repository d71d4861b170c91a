"""Envoy's RBAC filters (HTTP and network) evaluated in the Python sidecar.

`compile_http_rbac(any)` / `compile_network_rbac(any)` turn a filter config into an `RbacFilter`
once; `filter.decide(AuthzRequest(...))` gives a `Decision` per request and counts Envoy's
`rbac.*` stats. `RbacChain` applies several filters in order. Nothing here does I/O.
"""

from gossamer.proxy.authz.engine import Decision
from gossamer.proxy.authz.filters import (
    HttpRbac,
    NetworkRbac,
    RbacChain,
    RbacFilter,
    RbacStats,
    compile_http_rbac,
    compile_network_rbac,
)
from gossamer.proxy.authz.reply import DENIED_BODY, DENIED_STATUS, denied_response
from gossamer.proxy.authz.request import (
    AuthzRequest,
    downstream_remote_ip,
    istio_authn_metadata,
    origin_form,
)

__all__ = [
    "DENIED_BODY",
    "DENIED_STATUS",
    "AuthzRequest",
    "Decision",
    "HttpRbac",
    "NetworkRbac",
    "RbacChain",
    "RbacFilter",
    "RbacStats",
    "compile_http_rbac",
    "compile_network_rbac",
    "denied_response",
    "downstream_remote_ip",
    "istio_authn_metadata",
    "origin_form",
]
