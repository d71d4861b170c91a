"""Envoy's jwt_authn filter on one request: find the rule for the path, check its requirement
(requirements.py), then either let the request go on (tokens stripped, payload in dynamic
metadata and headers) or answer it (401, or 403 for a wrong audience, with Envoy's body and
`www-authenticate`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gossamer.codec.headers import Headers
from gossamer.proxy.authn.requirements import Provider, Requirement, Verification
from gossamer.proxy.authn.status import JwtStatus

METADATA_NAMESPACE = "envoy.filters.http.jwt_authn"


@dataclass(frozen=True, slots=True)
class Rule:
    """`without_token`: the requirement's verdict on a request carrying no token at all
    (decided once, so such requests, the common case, skip the verifiers)."""

    path: bytes
    prefix: bool
    requirement: Requirement | None
    without_token: JwtStatus = JwtStatus.OK

    @classmethod
    def of(cls, path: bytes, prefix: bool, requirement: Requirement | None) -> Rule:
        if requirement is None:
            return cls(path, prefix, None)
        tokenless = Verification(b"/", Headers(), 0.0)
        return cls(path, prefix, requirement, requirement.status(tokenless))

    def matches(self, path: bytes) -> bool:
        return path.startswith(self.path) if self.prefix else path == self.path


@dataclass(frozen=True, slots=True)
class Accepted:
    """The request goes on: `metadata` for RBAC (`{METADATA_NAMESPACE: {key: payload}}`) and
    the target it goes on with (a verified query-parameter token is removed from it)."""

    metadata: dict[str, Any]
    target: bytes


@dataclass(frozen=True, slots=True)
class Denial:
    """Envoy's local reply for a refused token."""

    status: int
    body: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class JwtAuthn:
    providers: Mapping[str, Provider]
    rules: tuple[Rule, ...]
    bypass_cors_preflight: bool = False
    # Where any provider looks: a request with none of these carries no token.
    token_headers: frozenset[bytes] = frozenset()
    token_params: bool = False
    token_cookies: bool = False

    @classmethod
    def of(
        cls, providers: Mapping[str, Provider], rules: tuple[Rule, ...], bypass_cors: bool
    ) -> JwtAuthn:
        every = providers.values()
        return cls(
            providers,
            rules,
            bypass_cors,
            frozenset(h.name for p in every for h in p.headers),
            any(p.params for p in every),
            any(p.cookies for p in every),
        )

    def _may_carry_token(self, target: bytes, headers: Headers) -> bool:
        return (
            any(name in headers for name in self.token_headers)
            or (self.token_params and b"?" in target)
            or (self.token_cookies and b"cookie" in headers)
        )

    def authenticate(
        self,
        method: bytes,
        target: bytes,
        authority: bytes,
        headers: Headers,
        now: float | None = None,
    ) -> Denial | Accepted | None:
        """None (no token checked: nothing changes) or Accepted when the request goes on, with
        `headers` changed as Envoy changes them; else the Denial. `target` is the
        origin-form path and query, `authority` the request's host."""
        if self.bypass_cors_preflight and _is_preflight(method, headers):
            return None
        path = target.partition(b"?")[0]
        rule = next((r for r in self.rules if r.matches(path)), None)
        if rule is None or rule.requirement is None:
            return None
        if not self._may_carry_token(target, headers):
            status = rule.without_token
            return None if status is JwtStatus.OK else _denial(status, target, authority, headers)
        request = Verification(target, headers, time.time() if now is None else now)
        status = rule.requirement.status(request)
        if status is not JwtStatus.OK:
            return _denial(status, target, authority, headers)
        if not request.payloads and request.target is target:
            return None
        return Accepted({METADATA_NAMESPACE: request.payloads}, request.target)


def _is_preflight(method: bytes, headers: Headers) -> bool:
    return (
        method == b"OPTIONS"
        and b"origin" in headers
        and b"access-control-request-method" in headers
    )


REALM_PATH_LIMIT = 256  # Envoy cuts the path in `realm` to this many bytes


def _denial(status: JwtStatus, target: bytes, authority: bytes, headers: Headers) -> Denial:
    """Envoy's reply: realm = the request's original URI (scheme from x-forwarded-proto)."""
    scheme = headers.get(b"x-forwarded-proto") or b"http"
    uri = scheme + b"://" + authority + target[:REALM_PATH_LIMIT]
    value = b'Bearer realm="' + uri + b'"'
    if status is not JwtStatus.MISSED:
        value += b', error="invalid_token"'
    return Denial(status.http_status, status.body, Headers([(b"www-authenticate", value)]))
