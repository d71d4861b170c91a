"""Envoy's jwt_authn filter on one request: find the rule for the path, check its requirement,
then either let the request go on (tokens stripped, payload in dynamic metadata and headers)
or answer it (401, or 403 for a wrong audience, with Envoy's body and `www-authenticate`).

Requirements combine as Envoy's verifiers do: `requires_any` succeeds at its first satisfied
child and otherwise reports the last real failure among them (a missing token or one from
another issuer only counts when nothing else failed), and with `allow_missing` a missing token
passes; `requires_all` fails at its first failing child. A provider verifies each token found in
its own locations: issuer, then `exp`/`nbf`, audiences, key and signature."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gossamer.codec.headers import Headers
from gossamer.proxy.authn import locations
from gossamer.proxy.authn.jwks import JwkSet
from gossamer.proxy.authn.locations import Found, HeaderLocation
from gossamer.proxy.authn.status import JwtStatus
from gossamer.proxy.authn.token import Jwt, audiences_allowed, parse, time_status

METADATA_NAMESPACE = "envoy.filters.http.jwt_authn"
_NEUTRAL = (JwtStatus.MISSED, JwtStatus.UNKNOWN_ISSUER)


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    issuer: str
    audiences: tuple[str, ...]
    keys: JwkSet
    forward: bool
    headers: tuple[HeaderLocation, ...]
    params: tuple[str, ...]
    cookies: tuple[str, ...]
    payload_header: bytes | None
    payload_key: str | None
    space_delimited: frozenset[str]
    claim_headers: tuple[tuple[bytes, str], ...]
    clock_skew: int

    def tokens(self, target: bytes, headers: Headers) -> list[Found]:
        found = locations.from_headers(headers, self.headers)
        if self.params:
            params = locations.query_params(target)
            found += [Found(params[p], None, p) for p in self.params if p in params]
        if self.cookies:
            jar = locations.cookies(headers)
            found += [Found(jar[c], None) for c in self.cookies if c in jar]
        return found

    def check(self, jwt: Jwt, now: float) -> JwtStatus:
        if self.issuer and jwt.issuer != self.issuer:
            return JwtStatus.UNKNOWN_ISSUER
        when = time_status(jwt, now, self.clock_skew)
        if when is not JwtStatus.OK:
            return when
        if not audiences_allowed(jwt, self.audiences):
            return JwtStatus.AUDIENCE_NOT_ALLOWED
        return self.keys.verify(jwt)


@dataclass(slots=True)
class _Request:
    """One request's view for the verifiers, and what successful ones leave behind."""

    target: bytes
    headers: Headers
    now: float
    payloads: dict[str, Any] = field(default_factory=dict)


class Requirement:
    def status(self, request: _Request) -> JwtStatus:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ProviderRequired(Requirement):
    provider: Provider

    def status(self, request: _Request) -> JwtStatus:
        provider = self.provider
        found = provider.tokens(request.target, request.headers)
        if not found:
            return JwtStatus.MISSED
        for item in found:
            jwt = parse(item.token)
            if isinstance(jwt, JwtStatus):
                return jwt
            status = provider.check(jwt, request.now)
            if status is not JwtStatus.OK:
                return status
            _accepted(provider, jwt, item, request)
        return JwtStatus.OK


@dataclass(frozen=True, slots=True)
class AnyOf(Requirement):
    children: tuple[Requirement, ...]
    allow_missing: bool = False

    def status(self, request: _Request) -> JwtStatus:
        final = JwtStatus.MISSED
        for child in self.children:
            status = child.status(request)
            if status is JwtStatus.OK:
                return status
            # a real failure wins over "missing"; another issuer's token over nothing at all
            if status not in _NEUTRAL or final is JwtStatus.MISSED:
                final = status
        if final is JwtStatus.MISSED and self.allow_missing:
            return JwtStatus.OK
        return final


@dataclass(frozen=True, slots=True)
class AllOf(Requirement):
    children: tuple[Requirement, ...]

    def status(self, request: _Request) -> JwtStatus:
        for child in self.children:
            status = child.status(request)
            if status is not JwtStatus.OK:
                return status
        return JwtStatus.OK


@dataclass(frozen=True, slots=True)
class AllowMissingOrFailed(Requirement):
    """Always satisfied, but tokens are still verified (by the provider of their issuer) and
    a valid one is stripped and its payload kept, as Envoy does."""

    providers: tuple[Provider, ...] = ()

    def status(self, request: _Request) -> JwtStatus:
        for provider in self.providers:
            for item in provider.tokens(request.target, request.headers):
                jwt = parse(item.token)
                if isinstance(jwt, Jwt) and provider.check(jwt, request.now) is JwtStatus.OK:
                    _accepted(provider, jwt, item, request)
        return JwtStatus.OK


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
        return cls(path, prefix, requirement, requirement.status(_Request(b"/", Headers(), 0.0)))

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
        request = _Request(target, headers, time.time() if now is None else now)
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


def _accepted(provider: Provider, jwt: Jwt, item: Found, request: _Request) -> None:
    headers = request.headers
    if not provider.forward:
        if item.header is not None:
            headers.remove(item.header)
        elif item.param is not None:
            request.target = locations.without_param(request.target, item.param)
    if provider.payload_header is not None:
        headers.set(provider.payload_header, jwt.payload_segment.rstrip(b"="))
    for header, claim in provider.claim_headers:
        value = _claim_text(jwt.payload, claim)
        if value is not None:
            headers.set(header, value)
    if provider.payload_key is not None:
        request.payloads[provider.payload_key] = _normalized(jwt.payload, provider.space_delimited)


def _claim_text(payload: Mapping[str, Any], claim: str) -> bytes | None:
    value: Any = payload
    for part in claim.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float):
        return str(int(value) if float(value).is_integer() else value).encode()
    return None


def _normalized(payload: Mapping[str, Any], space_delimited: frozenset[str]) -> dict[str, Any]:
    """The payload as Envoy stores it: space-delimited claims become lists of their words."""
    out = dict(payload)
    for name in space_delimited:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = value.split()
    return out


REALM_PATH_LIMIT = 256  # Envoy cuts the path in `realm` to this many bytes


def _denial(status: JwtStatus, target: bytes, authority: bytes, headers: Headers) -> Denial:
    """Envoy's reply: realm = the request's original URI (scheme from x-forwarded-proto)."""
    scheme = headers.get(b"x-forwarded-proto") or b"http"
    uri = scheme + b"://" + authority + target[:REALM_PATH_LIMIT]
    value = b'Bearer realm="' + uri + b'"'
    if status is not JwtStatus.MISSED:
        value += b', error="invalid_token"'
    return Denial(status.http_status, status.body, Headers([(b"www-authenticate", value)]))
