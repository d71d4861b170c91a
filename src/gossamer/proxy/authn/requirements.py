"""jwt_authn requirements and providers: which tokens a request must carry, and checking them.

Requirements combine as Envoy's verifiers do: `requires_any` succeeds at its first satisfied
child and otherwise reports the last real failure among them (a missing token or one from
another issuer only counts when nothing else failed), and with `allow_missing` a missing token
passes; `requires_all` fails at its first failing child. A provider verifies each token found in
its own locations: issuer, then `exp`/`nbf`, audiences, key and signature. A verified token is
stripped unless forwarded, and its payload left in headers and dynamic metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gossamer.codec.headers import Headers
from gossamer.proxy.authn import locations
from gossamer.proxy.authn.jwks import JwkSet
from gossamer.proxy.authn.locations import Found, HeaderLocation
from gossamer.proxy.authn.status import JwtStatus
from gossamer.proxy.authn.token import Jwt, audiences_allowed, parse, time_status

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
class Verification:
    """One request's view for the verifiers, and what successful ones leave behind."""

    target: bytes
    headers: Headers
    now: float
    payloads: dict[str, Any] = field(default_factory=dict)


class Requirement:
    def status(self, request: Verification) -> JwtStatus:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ProviderRequired(Requirement):
    provider: Provider

    def status(self, request: Verification) -> JwtStatus:
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

    def status(self, request: Verification) -> JwtStatus:
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

    def status(self, request: Verification) -> JwtStatus:
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

    def status(self, request: Verification) -> JwtStatus:
        for provider in self.providers:
            for item in provider.tokens(request.target, request.headers):
                jwt = parse(item.token)
                if isinstance(jwt, Jwt) and provider.check(jwt, request.now) is JwtStatus.OK:
                    _accepted(provider, jwt, item, request)
        return JwtStatus.OK


def _accepted(provider: Provider, jwt: Jwt, item: Found, request: Verification) -> None:
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
