"""Envoy's jwt_authn HTTP filter in the Python sidecar (RequestAuthentication's enforcement).

`compile_jwt_authn(any, where)` turns the filter's config into a `JwtAuthn` once (NACKing what
it cannot enforce); `JwtAuthn.authenticate(...)` runs per request and gives the dynamic
metadata RBAC reads (`envoy.filters.http.jwt_authn` / `payload`) or Envoy's 401/403 reply.
"""

from gossamer.proxy.authn.config import TYPE_URL, compile_jwt_authn
from gossamer.proxy.authn.filter import METADATA_NAMESPACE, Accepted, Denial, JwtAuthn
from gossamer.proxy.authn.status import JwtStatus

__all__ = [
    "METADATA_NAMESPACE",
    "TYPE_URL",
    "Accepted",
    "Denial",
    "JwtAuthn",
    "JwtStatus",
    "compile_jwt_authn",
]
