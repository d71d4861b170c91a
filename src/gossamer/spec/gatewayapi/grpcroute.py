"""gateway.networking.k8s.io GRPCRoute: routing by gRPC service/method and headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal, get_args

import re2
from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem
from gossamer.spec.findings import Finding
from gossamer.spec.gatewayapi.gateway import (
    GROUP,
    BackendRef,
    Hostname,
    HTTPHeaderFilter,
    HTTPRequestMirrorFilter,
    LocalObjectReference,
    ParentReference,
    SessionPersistence,
    duplicates,
    enum,
    filter_field_rules,
    filter_list_rules,
    parent_ref_rules,
    regex_problem,
)
from gossamer.spec.gatewayapi.httproute import HTTPHeaderMatch, MatchType
from gossamer.spec.kinds import served

_SERVICE = r"^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$"
_METHOD = r"^[A-Za-z_][A-Za-z_0-9]*$"


class GRPCMethodMatch(SpecModel):
    """`service` (`pkg.Service`) and/or `method`; the request path is `/service/method`."""

    type: MatchType = "Exact"
    service: str | None = Field(default=None, max_length=1024)
    method: str | None = Field(default=None, max_length=1024)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.service is None and self.method is None:
            yield problem(at, "One or both of 'service' or 'method' must be specified")
        for field, value, pattern in (
            ("service", self.service, _SERVICE),
            ("method", self.method, _METHOD),
        ):
            if value is None:
                continue
            if self.type == "Exact" and not re2.match(pattern, value):
                yield problem(
                    (*at, field), f"{field} must only contain valid characters (matching {pattern})"
                )
            if self.type == "RegularExpression" and (reason := regex_problem(value)):
                yield problem((*at, field), reason)


# GRPCRoute's header match has HTTPRoute's schema and rules exactly.
GRPCHeaderMatch = HTTPHeaderMatch


class GRPCRouteMatch(SpecModel):
    """Method and headers must all match; an empty match matches every gRPC request."""

    method: GRPCMethodMatch | None = None
    headers: list[GRPCHeaderMatch] = Field(default_factory=list, max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from duplicates((*at, "headers"), (h.name for h in self.headers))


FilterTypeName = Literal[
    "ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"
]
_FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "ExtensionRef": "extensionRef",
}
_UNIQUE = ("RequestHeaderModifier", "ResponseHeaderModifier")


class GRPCRouteFilter(SpecModel):
    type: Annotated[FilterTypeName, enum(*get_args(FilterTypeName))]
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    extension_ref: LocalObjectReference | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from filter_field_rules(at, self, _FILTER_FIELDS)


class GRPCBackendRef(BackendRef):
    filters: list[GRPCRouteFilter] = Field(default_factory=list, max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from super().rules(at)
        yield from filter_list_rules((*at, "filters"), self.filters, _UNIQUE)


class GRPCRouteRule(SpecModel):
    """Matches (ORed; none = every request) → filters → weighted backends."""

    name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    matches: list[GRPCRouteMatch] = Field(default_factory=list, max_length=64)
    filters: list[GRPCRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[GRPCBackendRef] = Field(default_factory=list, max_length=16)
    session_persistence: SessionPersistence | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from filter_list_rules((*at, "filters"), self.filters, _UNIQUE)


class GRPCRouteSpec(SpecModel):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    use_default_gateways: Annotated[Literal["All", "None"], enum("All", "None")] | None = None
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)
    rules_: list[GRPCRouteRule] = Field(default_factory=list, alias="rules", max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from parent_ref_rules((*at, "parentRefs"), self.parent_refs)
        if sum(len(r.matches) for r in self.rules_) > 128:
            yield problem(
                (*at, "rules"),
                "While 16 rules and 64 matches per rule are allowed, the total number of matches "
                "across all rules in a route must be less than 128",
            )


@served(GROUP, ("v1", "v1beta1", "v1alpha2"), "grpcroutes")
class GRPCRoute(Resource):
    """Gateway API gRPC routing (`v1alpha2` is still common in real files)."""

    spec: GRPCRouteSpec = Field(default_factory=GRPCRouteSpec)
