"""gateway.networking.k8s.io HTTPRoute, its filters, and Gateway API's match precedence (§10).

Theory of operation:
1. Shapes and the CRD's CEL rules are checked here exactly as the API server would, with its
   messages ("RequestRedirect filter must not be used together with backendRefs").
2. Defaults are the CRD's: a rule without matches matches `PathPrefix /`; a route without rules
   has one such rule; backend weight 1; redirect status 302.
3. Routing is most-specific-first across every route bound to a host, not list order:
   `precedence_order` sorts (route, rule, match) triples so translators can emit them in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

import re2
from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem
from gossamer.spec.findings import Finding
from gossamer.spec.gatewayapi.gateway import (
    GROUP,
    BackendRef,
    GatewayDuration,
    HeaderName,
    Hostname,
    HTTPHeaderFilter,
    HTTPRequestMirrorFilter,
    LocalObjectReference,
    ParentReference,
    PortNumber,
    PreciseHostname,
    SessionPersistence,
    duplicates,
    enum,
    filter_field_rules,
    filter_list_rules,
    parent_ref_rules,
    regex_problem,
)
from gossamer.spec.kinds import served

MethodName = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
Method = Annotated[MethodName, enum(*get_args(MethodName))]
PathTypeName = Literal["Exact", "PathPrefix", "RegularExpression"]
MatchTypeName = Literal["Exact", "RegularExpression"]
MatchType = Annotated[MatchTypeName, enum(*get_args(MatchTypeName))]
_PATH_CHARS = r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$"
_PATH_VALID = re2.compile(_PATH_CHARS)


class HTTPPathMatch(SpecModel):
    """`PathPrefix` is segment-aware (`/v2` matches `/v2/x`, not `/v2x`); default `/`."""

    type: Annotated[PathTypeName, enum(*get_args(PathTypeName))] = "PathPrefix"
    value: str = Field(default="/", max_length=1024)

    def rules(self, at: Loc) -> Iterator[Finding]:
        value = self.value
        if self.type == "RegularExpression":
            reason = regex_problem(value)
            if reason:
                yield problem((*at, "value"), reason)
            return
        kinds = "when type one of ['Exact', 'PathPrefix']"
        if not value.startswith("/"):
            yield problem(at, f"value must be an absolute path and start with '/' {kinds}")
        for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
            if bad in value:
                yield problem(at, f"must not contain '{bad}' {kinds}")
        for bad in ("/..", "/."):
            if value.endswith(bad):
                yield problem(at, f"must not end with '{bad}' {kinds}")
        if not _PATH_VALID.match(value):
            yield problem(
                at,
                f"must only contain valid characters (matching {_PATH_CHARS}) for types "
                "['Exact', 'PathPrefix']",
            )


class HTTPHeaderMatch(SpecModel):
    """A request header equal to (or, RegularExpression, fully matching) `value`."""

    type: MatchType = "Exact"
    name: HeaderName
    value: str = Field(min_length=1, max_length=4096)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.type == "RegularExpression" and (reason := regex_problem(self.value)):
            yield problem((*at, "value"), reason)


class HTTPQueryParamMatch(SpecModel):
    """A query parameter (name case-sensitive) equal to or matching `value`."""

    type: MatchType = "Exact"
    name: HeaderName
    value: str = Field(min_length=1, max_length=1024)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.type == "RegularExpression" and (reason := regex_problem(self.value)):
            yield problem((*at, "value"), reason)


class HTTPRouteMatch(SpecModel):
    """All of path, headers, query parameters and method must match (AND)."""

    path: HTTPPathMatch = Field(default_factory=HTTPPathMatch)
    headers: list[HTTPHeaderMatch] = Field(default_factory=list, max_length=16)
    query_params: list[HTTPQueryParamMatch] = Field(default_factory=list, max_length=16)
    method: Method | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from duplicates((*at, "headers"), (h.name for h in self.headers))
        yield from duplicates((*at, "queryParams"), (q.name for q in self.query_params))


class HTTPPathModifier(SpecModel):
    type: Annotated[
        Literal["ReplaceFullPath", "ReplacePrefixMatch"],
        enum("ReplaceFullPath", "ReplacePrefixMatch"),
    ]
    replace_full_path: str | None = Field(default=None, max_length=1024)
    replace_prefix_match: str | None = Field(default=None, max_length=1024)

    def rules(self, at: Loc) -> Iterator[Finding]:
        for kind, value, field in (
            ("ReplaceFullPath", self.replace_full_path, "replaceFullPath"),
            ("ReplacePrefixMatch", self.replace_prefix_match, "replacePrefixMatch"),
        ):
            if self.type == kind and value is None:
                yield problem(at, f"{field} must be specified when type is set to '{kind}'")
            if value is not None and self.type != kind:
                yield problem(at, f"type must be '{kind}' when {field} is set")


class HTTPRequestRedirectFilter(SpecModel):
    """A local 3xx reply; unset parts keep the request's (status default 302)."""

    scheme: Annotated[Literal["http", "https"], enum("http", "https")] | None = None
    hostname: PreciseHostname | None = None
    path: HTTPPathModifier | None = None
    port: PortNumber | None = None
    status_code: int = 302

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.status_code not in (301, 302, 303, 307, 308):
            yield problem(
                (*at, "statusCode"),
                f"Unsupported value: {self.status_code}: supported values: "
                '"301", "302", "303", "307", "308"',
            )


class HTTPURLRewriteFilter(SpecModel):
    hostname: PreciseHostname | None = None
    path: HTTPPathModifier | None = None


_WILDCARD_METHOD = Annotated[Literal[MethodName, "*"], enum(*get_args(MethodName), "*")]


class HTTPCORSFilter(SpecModel):
    allow_origins: list[str] = Field(default_factory=list, max_length=64)
    allow_credentials: bool | None = None
    allow_methods: list[_WILDCARD_METHOD] = Field(default_factory=list, max_length=9)
    allow_headers: list[HeaderName] = Field(default_factory=list, max_length=64)
    expose_headers: list[HeaderName] = Field(default_factory=list, max_length=64)
    max_age: int = Field(default=5, ge=1)

    def rules(self, at: Loc) -> Iterator[Finding]:
        for field, values, noun in (
            ("allowOrigins", self.allow_origins, "origins"),
            ("allowMethods", self.allow_methods, "methods"),
            ("allowHeaders", self.allow_headers, "methods"),  # sic: the CRD's own message
        ):
            if "*" in values and len(values) > 1:
                label = field[0].upper() + field[1:]
                yield problem((*at, field), f"{label} cannot contain '*' alongside other {noun}")


FilterTypeName = Literal[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
]
# filter type → the field that must carry its configuration (and only for that type)
_FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
    "CORS": "cors",
}


class HTTPRouteFilter(SpecModel):
    """One processing step; `type` names which of the other fields is set."""

    type: Annotated[FilterTypeName, enum(*get_args(FilterTypeName))]
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = Field(default=None, alias="urlRewrite")
    extension_ref: LocalObjectReference | None = None
    cors: HTTPCORSFilter | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from filter_field_rules(at, self, _FILTER_FIELDS)


_HTTP_UNIQUE = (
    "CORS",
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
)


class HTTPBackendRef(BackendRef):
    """A weighted backend with filters applied only to requests sent to it."""

    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from super().rules(at)
        yield from filter_list_rules((*at, "filters"), self.filters, _HTTP_UNIQUE)


class HTTPRouteTimeouts(SpecModel):
    """`request` (whole exchange) and `backendRequest` (per try); `0s` disables either."""

    request: GatewayDuration | None = None
    backend_request: GatewayDuration | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        request, backend = self.request, self.backend_request
        if request and backend is not None and backend > request:
            yield problem(at, "backendRequest timeout cannot be longer than request timeout")


class HTTPRouteRetry(SpecModel):
    codes: list[Annotated[int, Field(ge=400, le=599)]] = Field(default_factory=list)
    attempts: int | None = Field(default=None, ge=1)
    backoff: GatewayDuration | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        for index, code in enumerate(self.codes):
            if code in self.codes[:index]:
                yield problem((*at, "codes", index), f"Duplicate value: {code}")


def _default_matches() -> list[HTTPRouteMatch]:
    return [HTTPRouteMatch()]


class HTTPRouteRule(SpecModel):
    """Matches (ORed; default `PathPrefix /`) → filters → weighted backends."""

    name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    matches: list[HTTPRouteMatch] = Field(default_factory=_default_matches, max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[HTTPBackendRef] = Field(default_factory=list, max_length=16)
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None
    session_persistence: SessionPersistence | None = None

    @property
    def effective_matches(self) -> list[HTTPRouteMatch]:
        """`matches`, or the default `PathPrefix /` when the list is empty."""
        return self.matches or _default_matches()

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from filter_list_rules((*at, "filters"), self.filters, _HTTP_UNIQUE)
        if self.backend_refs and any(f.request_redirect for f in self.filters):
            yield problem(at, "RequestRedirect filter must not be used together with backendRefs")
        single_prefix = len(self.matches) == 1 and self.matches[0].path.type == "PathPrefix"
        if single_prefix:
            return
        # The CRD's four messages differ in case ("Within backendRefs, When using URLRewrite").
        checks = [("When using", self.filters)]
        checks += [("Within backendRefs, {} using", b.filters) for b in self.backend_refs]
        for lead, filters in checks:
            for label, field in (
                ("RequestRedirect", "request_redirect"),
                ("URLRewrite", "url_rewrite"),
            ):
                if any(_replaces_prefix(getattr(f, field)) for f in filters):
                    opening = lead.format("when" if label == "RequestRedirect" else "When")
                    yield problem(
                        at,
                        f"{opening} {label} filter with path.replacePrefixMatch, exactly one "
                        "PathPrefix match must be specified",
                    )


def _replaces_prefix(modifier: HTTPRequestRedirectFilter | HTTPURLRewriteFilter | None) -> bool:
    path = modifier.path if modifier is not None else None
    return path is not None and path.type == "ReplacePrefixMatch"


class HTTPRouteSpec(SpecModel):
    """Routes for `hostnames` (default: the parents') attached to `parentRefs`."""

    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    use_default_gateways: Annotated[Literal["All", "None"], enum("All", "None")] | None = None
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)
    rules_: list[HTTPRouteRule] = Field(
        default_factory=lambda: [HTTPRouteRule()], alias="rules", max_length=16
    )

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from parent_ref_rules((*at, "parentRefs"), self.parent_refs)
        if sum(len(r.matches) for r in self.rules_) > 128:
            yield problem(
                (*at, "rules"),
                "While 16 rules and 64 matches per rule are allowed, the total number of matches "
                "across all rules in a route must be less than 128",
            )


@served(GROUP, ("v1", "v1beta1"), "httproutes")
class HTTPRoute(Resource):
    """Gateway API HTTP routing, for a Gateway (north-south) or a Service parent (mesh)."""

    spec: HTTPRouteSpec = Field(default_factory=HTTPRouteSpec)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One (route, rule, match) triple: the unit Gateway API's precedence orders."""

    route: Resource  # an HTTPRoute (Gateway API's or Linkerd's)
    rule_index: int
    match_index: int
    match: HTTPRouteMatch

    @property
    def rule(self) -> HTTPRouteRule:
        spec = getattr(self.route, "spec")  # noqa: B009  (both HTTPRoute kinds have this spec)
        rule: HTTPRouteRule = spec.rules_[self.rule_index]
        return rule


def route_matches(routes: Sequence[Resource]) -> list[RouteMatch]:
    """Every (route, rule, match) of these HTTPRoutes, in document order."""
    triples: list[RouteMatch] = []
    for route in routes:
        for r_index, rule in enumerate(getattr(route, "spec").rules_):  # noqa: B009
            for m_index, match in enumerate(rule.effective_matches):
                triples.append(RouteMatch(route, r_index, m_index, match))
    return triples


def precedence_key(triple: RouteMatch) -> tuple[object, ...]:
    """Sort key, most specific first (Gateway API §HTTPRouteRule, reference §10):
    Exact path > longest PathPrefix > has method > most headers > most query params >
    oldest route (creationTimestamp) > `namespace/name` > rule order (then match order).
    RegularExpression paths rank after every Exact and PathPrefix (implementation-specific)."""
    path = triple.match.path
    path_rank = {"Exact": 0, "PathPrefix": 1, "RegularExpression": 2}[path.type]
    meta = triple.route.metadata
    return (
        path_rank,
        -len(path.value) if path.type != "RegularExpression" else 0,
        0 if triple.match.method else 1,
        -len(triple.match.headers),
        -len(triple.match.query_params),
        meta.creation_timestamp or "~",  # RFC 3339 sorts as text; unknown = newest
        f"{meta.namespace}/{meta.name}",
        triple.rule_index,
        triple.match_index,
    )


def precedence_order(routes: Sequence[Resource]) -> list[RouteMatch]:
    """All (route, rule, match) triples of `routes`, most specific first: the order in which
    a request must be tried against them (the first that matches wins)."""
    return sorted(route_matches(routes), key=precedence_key)
