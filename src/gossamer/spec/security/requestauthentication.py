"""security.istio.io RequestAuthentication: which JWTs a workload validates, and where (§7)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator

from gossamer.spec.base import Loc, Resource, SpecModel, problem
from gossamer.spec.findings import Finding, format_path
from gossamer.spec.kinds import served
from gossamer.spec.security.authorizationpolicy import (
    ROOT_NAMESPACE,
    Scope,
    TargetedSpec,
    at_least_one_char,
    policy_scope,
    supported_values,
)
from gossamer.spec.types import format_duration, parse_duration

_HEADER = re.compile(r"^[-_A-Za-z0-9]+$")
_DURATION_MESSAGE = "must be a valid duration greater than 1ms"
DEFAULT_JWKS_TIMEOUT = timedelta(seconds=5)


def _jwks_timeout(value: object) -> object:
    if isinstance(value, str):
        try:
            parsed = parse_duration(value)
        except ValueError:
            raise ValueError(_DURATION_MESSAGE) from None
        if parsed < timedelta(milliseconds=1):
            raise ValueError(_DURATION_MESSAGE)
        return parsed
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(_DURATION_MESSAGE)
    return value


JwksTimeout = Annotated[
    timedelta,
    BeforeValidator(_jwks_timeout),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
PresenceName = Literal["OPTIONAL", "REQUIRED"]


class JwtHeader(SpecModel):
    """A header carrying the token, with an optional prefix to strip (`Bearer `)."""

    name: str = ""  # required: "" only so a missing name is reported in the API server's words
    prefix: str = ""

    def rules(self, at: Loc) -> Iterator[Finding]:
        where = (*at, "name")
        if not self.given("name"):
            yield problem(where, f"{format_path(where)}: Required value")
        elif not self.name:
            yield problem(where, f"{format_path(where)} in body should be at least 1 chars long")


class ClaimToHeader(SpecModel):
    """Copy a claim of a validated token into a request header."""

    header: str = ""
    claim: str = ""

    def rules(self, at: Loc) -> Iterator[Finding]:
        for field in ("header", "claim"):
            where = (*at, field)
            if not self.given(field):
                yield problem(where, f"{format_path(where)}: Required value")
            elif not getattr(self, field):
                yield problem(
                    where, f"{format_path(where)} in body should be at least 1 chars long"
                )
        if self.header and not _HEADER.match(self.header):
            where = (*at, "header")
            yield problem(where, f"{format_path(where)} in body should match {_HEADER.pattern!r}")


class JwtRule(SpecModel):
    """One accepted issuer: where its keys are (`jwksUri` xor `jwks`) and where tokens are.

    Defaults (§7): tokens from `Authorization: Bearer`, then the `access_token` query
    parameter; the token is removed before forwarding; JWKS fetch timeout 5 s.
    """

    issuer: str = ""
    audiences: list[str] = Field(default_factory=list)
    jwks_uri: str | None = Field(default=None, max_length=2048)
    jwks: str | None = None
    from_headers: list[JwtHeader] = Field(default_factory=list)
    from_params: list[str] = Field(default_factory=list)
    from_cookies: list[str] = Field(default_factory=list)
    output_payload_to_header: str | None = None
    output_claim_to_headers: list[ClaimToHeader] = Field(default_factory=list)
    forward_original_token: bool = False
    timeout: JwksTimeout = DEFAULT_JWKS_TIMEOUT
    space_delimited_claims: list[str] = Field(default_factory=list, max_length=64)
    presence: Annotated[PresenceName, supported_values(*get_args(PresenceName))] | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.given("issuer") and not self.issuer:
            where = (*at, "issuer")
            yield problem(where, f"{format_path(where)} in body should be at least 1 chars long")
        if not self.issuer and not self.jwks_uri:
            yield problem(at, "issuer or jwksUri must be non-empty string")
        if self.jwks_uri is not None and self.jwks is not None:
            yield problem(at, "only one of jwks or jwksUri can be set")
        if self.jwks_uri is not None:
            if not self.jwks_uri:
                where = (*at, "jwksUri")
                yield problem(
                    where, f"{format_path(where)} in body should be at least 1 chars long"
                )
            elif _scheme(self.jwks_uri) not in ("http", "https", "file"):
                # file:// is Gossamer's addition (a JWKS on this machine; Istio refuses it)
                yield problem((*at, "jwksUri"), "url must have scheme http://, https:// or file://")
        for field in ("audiences", "fromParams", "fromCookies", "spaceDelimitedClaims"):
            snake = re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), field)
            yield from at_least_one_char((*at, field), getattr(self, snake))

    @property
    def token_locations(self) -> list[JwtHeader]:
        """Headers to read the token from (default `Authorization: Bearer `)."""
        return self.from_headers or [JwtHeader(name="Authorization", prefix="Bearer ")]


def _scheme(uri: str) -> str:
    try:
        return urlsplit(uri).scheme
    except ValueError:
        return ""


class RequestAuthenticationSpec(TargetedSpec):
    """`jwtRules` for the workloads a selector (or the gateways/services targetRefs) name."""

    jwt_rules: list[JwtRule] = Field(default_factory=list, max_length=4096)

    @field_validator("jwt_rules", mode="before")
    @classmethod
    def _objects_only(cls, value: object) -> object:
        # `- ~` items: the API server's schema check, naming the item's full path.
        if not isinstance(value, list):
            return value
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise ValueError(f"spec.jwtRules[{index}] in body must be of type object")
            for inner, claim in enumerate(item.get("outputClaimToHeaders") or []):
                if not isinstance(claim, dict):
                    raise ValueError(
                        f"spec.jwtRules[{index}].outputClaimToHeaders[{inner}] in body must be "
                        "of type object"
                    )
        return value


@served("security.istio.io", ("v1", "v1beta1"), "requestauthentications", "ra")
class RequestAuthentication(Resource):
    """JWT validation: an invalid token is refused (401); a request without one passes."""

    spec: RequestAuthenticationSpec = Field(default_factory=RequestAuthenticationSpec)

    def scope(self, root_namespace: str = ROOT_NAMESPACE) -> Scope:
        """Mesh-wide (root namespace, no selector), namespace, selected workloads, or targets."""
        return policy_scope(self.namespace, self.spec, root_namespace)
