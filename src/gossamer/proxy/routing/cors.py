"""The CORS filter's per-route policy (envoy.extensions.filters.http.cors.v3.CorsPolicy).

Theory of operation (Envoy's CorsFilter):
1. Policies come from `typed_per_filter_config["envoy.filters.http.cors"]` of the route, the
   virtual host and the route configuration (most specific first); only when none exists, from
   the legacy `cors` fields of the route action and virtual host. Each setting is taken from the
   most specific policy that sets it; `filter_enabled` from the most specific policy alone.
2. An origin is allowed when a matcher matches it, or matches the literal "*".
3. A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered 200 by the
   proxy, unless its origin is not allowed and `forward_not_matching_preflights` (default true).
4. Any other request with an allowed Origin gets Access-Control-Allow-Origin (and credentials,
   expose headers) added to its response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from google.protobuf import any_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.fault import fraction
from gossamer.proxy.routing.request import RequestView
from gossamer.proxy.routing.strings import BytesTest, string_test

CORS_FILTER = "envoy.filters.http.cors"
Header = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Cors:
    """One route's resolved CORS policy (only enabled policies are kept)."""

    origins: tuple[BytesTest, ...]
    allow_methods: bytes
    allow_headers: bytes
    expose_headers: bytes
    max_age: bytes
    allow_credentials: bool
    allow_private_network: bool
    forward_unmatched_preflights: bool

    def origin_allowed(self, origin: bytes) -> bool:
        return any(test(b"*") or test(origin) for test in self.origins)

    def preflight(self, head: RequestView) -> list[Header] | None:
        """The headers of the proxy's own 200 answer to a preflight, or None: not a preflight,
        or one to forward upstream."""
        origin = head.headers.get(b"origin")
        if not origin or head.method != b"OPTIONS":
            return None
        requested = head.headers.get(b"access-control-request-method")
        if not requested:
            return None
        allowed = self.origin_allowed(origin)
        if not allowed and self.forward_unmatched_preflights:
            return None
        out: list[Header] = []
        if allowed:
            out.append((b"access-control-allow-origin", origin))
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if self.allow_methods:
            methods = requested if self.allow_methods == b"*" else self.allow_methods
            out.append((b"access-control-allow-methods", methods))
        if self.allow_headers:
            wanted = head.headers.get(b"access-control-request-headers") or b""
            headers = wanted if self.allow_headers == b"*" else self.allow_headers
            out.append((b"access-control-allow-headers", headers))
        if self.max_age:
            out.append((b"access-control-max-age", self.max_age))
        private = head.headers.get(b"access-control-request-private-network")
        if self.allow_private_network and private == b"true":
            out.append((b"access-control-allow-private-network", b"true"))
        if allowed and self.expose_headers:  # Envoy's own answer passes its encode step too
            out.append((b"access-control-expose-headers", self.expose_headers))
        return out

    def response_headers(self, head: RequestView) -> list[Header]:
        """Headers to set on the response to a request (not a proxy-answered preflight)."""
        origin = head.headers.get(b"origin")
        if not origin or not self.origin_allowed(origin):
            return []
        out: list[Header] = [(b"access-control-allow-origin", origin)]
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if self.expose_headers:
            out.append((b"access-control-expose-headers", self.expose_headers))
        return out


# cors.v3.CorsPolicy, or the legacy route.v3.CorsPolicy: the same field names.
Policy: TypeAlias = Any


def unpack_cors(packed: any_pb2.Any, where: str) -> cors_pb2.CorsPolicy:
    where = f"{where}.typed_per_filter_config[{CORS_FILTER!r}]"
    if packed.Is(rc.FilterConfig.DESCRIPTOR):
        wrapper = rc.FilterConfig()
        packed.Unpack(wrapper)
        if wrapper.disabled:
            raise ConfigRejected(f"{where}: disabling the CORS filter per route is not supported")
        packed = wrapper.config
    if not packed.Is(cors_pb2.CorsPolicy.DESCRIPTOR):
        raise ConfigRejected(f"{where}: expected CorsPolicy, got {packed.type_url}")
    out = cors_pb2.CorsPolicy()
    packed.Unpack(out)
    return out


def resolve_cors(policies: Sequence[tuple[Policy, str]]) -> Cors | None:
    """Merge policies (most specific first) as Envoy's filter reads them; None: no policy, or
    the most specific one is disabled."""
    if not policies:
        return None
    first, where = policies[0]
    if not _enabled(first, where):
        return None

    def text(field: str) -> bytes:
        for policy, _ in policies:
            value: str = getattr(policy, field)
            if value:
                return value.encode()
        return b""

    def flag(field: str, default: bool) -> bool:
        for policy, _ in policies:
            if policy.HasField(field):
                return bool(getattr(policy, field).value)
        return default

    origins: tuple[BytesTest, ...] = ()
    for policy, at in policies:
        if len(policy.allow_origin_string_match):
            origins = tuple(
                string_test(m, f"{at}.allow_origin_string_match[{i}]")
                for i, m in enumerate(policy.allow_origin_string_match)
            )
            break
    return Cors(
        origins=origins,
        allow_methods=text("allow_methods"),
        allow_headers=text("allow_headers"),
        expose_headers=text("expose_headers"),
        max_age=text("max_age"),
        allow_credentials=flag("allow_credentials", False),
        allow_private_network=flag("allow_private_network_access", False),
        forward_unmatched_preflights=flag("forward_not_matching_preflights", True),
    )


def _enabled(policy: Policy, where: str) -> bool:
    if not policy.HasField("filter_enabled"):
        return True
    share = fraction(policy.filter_enabled.default_value)
    if share not in (0.0, 1.0):
        raise ConfigRejected(f"{where}.filter_enabled: only 0% or 100% is supported")
    return share == 1.0
