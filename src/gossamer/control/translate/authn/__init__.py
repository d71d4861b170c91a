"""RequestAuthentication → Envoy's jwt_authn HTTP filter, as Istio's authn policy applier."""

from gossamer.control.translate.authn.filters import (
    JWT_AUTHN_FILTER,
    jwt_authn_config,
    jwt_authn_filters,
    jwt_rules,
    selects,
)
from gossamer.control.translate.authn.jwks import UNUSABLE_JWKS, JwksRefused, JwksResolver
from gossamer.control.translate.authn.proxy_filters import RESOLVER, ProxyJwt

__all__ = [
    "JWT_AUTHN_FILTER",
    "RESOLVER",
    "UNUSABLE_JWKS",
    "JwksRefused",
    "JwksResolver",
    "ProxyJwt",
    "jwt_authn_config",
    "jwt_authn_filters",
    "jwt_rules",
    "selects",
]
