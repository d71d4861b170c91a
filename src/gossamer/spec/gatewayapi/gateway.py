"""gateway.networking.k8s.io Gateway and GatewayClass, and the types all routes share."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

import re2
from pydantic import BeforeValidator, Field, PlainSerializer

from gossamer.spec.base import Loc, Resource, SpecModel, problem
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.security.authorizationpolicy import supported_values
from gossamer.spec.types import format_duration, parse_duration

GROUP = "gateway.networking.k8s.io"
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"

# The CRD's string types (apis/v1/shared_types.go); pydantic checks length and pattern.
Group = Annotated[str, Field(max_length=253, pattern=rf"^$|^{_SUBDOMAIN}$")]
Kind = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
]
ObjectName = Annotated[str, Field(min_length=1, max_length=253)]
Namespace = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
SectionName = Annotated[str, Field(min_length=1, max_length=253, pattern=rf"^{_SUBDOMAIN}$")]
Hostname = Annotated[str, Field(min_length=1, max_length=253, pattern=rf"^(\*\.)?{_SUBDOMAIN}$")]
PreciseHostname = Annotated[str, Field(min_length=1, max_length=253, pattern=rf"^{_SUBDOMAIN}$")]
HeaderName = Annotated[
    str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
]
PortNumber = Annotated[int, Field(ge=1, le=65535)]


def enum(*values: str) -> BeforeValidator:
    """An enum field refused in the API server's words ("Unsupported value: ...")."""
    return supported_values(*values)


_DURATION = re2.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")


def _gateway_duration(value: object) -> object:
    if isinstance(value, str):
        if not _DURATION.match(value):
            raise ValueError(f"{value!r} should match '^([0-9]{{1,5}}(h|m|s|ms)){{1,4}}$'")
        return parse_duration(value)
    return value


GatewayDuration = Annotated[
    timedelta,
    BeforeValidator(_gateway_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""Gateway API's duration: up to four `<n><unit>` parts (h, m, s, ms); `0s` is allowed."""


def duplicates(at: Loc, keys: Iterable[object], field: str = "name") -> Iterator[Finding]:
    """A `listType=map` list repeating a key: the API server's "Duplicate value" error."""
    seen: set[object] = set()
    for index, key in enumerate(keys):
        if key in seen:
            yield problem((*at, index), f"Duplicate value: {json.dumps({field: key})}")
        seen.add(key)


class ParentReference(SpecModel):
    """What a route attaches to: a Gateway (default), a Service (GAMMA mesh route), or other."""

    group: Group = GROUP
    kind: Kind = "Gateway"
    namespace: Namespace | None = None
    name: ObjectName
    section_name: SectionName | None = None
    port: PortNumber | None = None

    def parent(self, route_namespace: str) -> tuple[str, str, str, str]:
        """(group, kind, namespace, name) of the parent, namespace defaulted to the route's."""
        return (self.group, self.kind, self.namespace or route_namespace, self.name)


def parent_ref_rules(at: Loc, refs: list[ParentReference]) -> Iterator[Finding]:
    """The CEL rules on `parentRefs`: refs to one parent must each name a distinct section."""
    by_parent: dict[tuple[str, str, str, str], list[ParentReference]] = {}
    for ref in refs:
        by_parent.setdefault(ref.parent(""), []).append(ref)
    for same in by_parent.values():
        if len(same) < 2:
            continue
        if len({ref.section_name is None for ref in same}) > 1:
            yield problem(
                at,
                "sectionName must be specified when parentRefs includes 2 or more references "
                "to the same parent",
            )
        elif len({(ref.section_name, ref.port) for ref in same}) < len(same):
            yield problem(
                at,
                "sectionName must be unique when parentRefs includes 2 or more references to "
                "the same parent",
            )


class BackendObjectReference(SpecModel):
    """A backend: by default a Service (which then needs a `port`)."""

    group: Group = ""
    kind: Kind = "Service"
    name: ObjectName
    namespace: Namespace | None = None
    port: PortNumber | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.group == "" and self.kind == "Service" and self.port is None:
            yield problem(at, "Must have port for Service reference")


class BackendRef(BackendObjectReference):
    """A weighted backend; `weight` is relative (default 1, 0 = no traffic)."""

    weight: int = Field(default=1, ge=0, le=1_000_000)


class LocalObjectReference(SpecModel):
    """A same-namespace reference (ExtensionRef filters); group is required."""

    group: Group
    kind: Kind
    name: ObjectName


class SecretObjectReference(SpecModel):
    group: Group = ""
    kind: Kind = "Secret"
    name: ObjectName
    namespace: Namespace | None = None


# What HTTPRoute and GRPCRoute share: filters, mirrors, session persistence.


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is not an RE2 regular expression Envoy can run, or None."""
    try:
        re2.compile(pattern)
    except re2.error as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    return None


class HTTPHeader(SpecModel):
    name: HeaderName
    value: str = Field(min_length=1, max_length=4096)


class HTTPHeaderFilter(SpecModel):
    """`set` overwrites, `add` appends, `remove` deletes (header names case-insensitive)."""

    set: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    add: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    remove: list[str] = Field(default_factory=list, max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from duplicates((*at, "set"), (h.name for h in self.set))
        yield from duplicates((*at, "add"), (h.name for h in self.add))
        for index, name in enumerate(self.remove):
            if name in self.remove[:index]:
                yield problem((*at, "remove", index), f"Duplicate value: {name!r}")


class Fraction(SpecModel):
    numerator: int = Field(ge=0)
    denominator: int = Field(default=100, ge=1)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.numerator > self.denominator:
            yield problem(at, "numerator must be less than or equal to denominator")


class HTTPRequestMirrorFilter(SpecModel):
    """Copy requests to `backendRef`, fire-and-forget; all of them unless percent/fraction."""

    backend_ref: BackendObjectReference
    percent: int | None = Field(default=None, ge=0, le=100)
    fraction: Fraction | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.percent is not None and self.fraction is not None:
            yield problem(
                at, "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter"
            )

    @property
    def share(self) -> float:
        """The mirrored share of requests, 0.0 to 1.0."""
        if self.fraction is not None:
            return self.fraction.numerator / self.fraction.denominator
        return 1.0 if self.percent is None else self.percent / 100


def filter_field_rules(at: Loc, flt: SpecModel, fields: dict[str, str]) -> Iterator[Finding]:
    """CEL: `filter.<field>` is set exactly when `type` names it."""
    kind = getattr(flt, "type")  # noqa: B009  (every filter model has `type`)
    by_alias = {info.alias or name: name for name, info in type(flt).model_fields.items()}
    for filter_type, field in fields.items():
        present = getattr(flt, by_alias[field]) is not None
        if present and kind != filter_type:
            yield problem(at, f"filter.{field} must be nil if the filter.type is not {filter_type}")
        if not present and kind == filter_type:
            yield problem(at, f"filter.{field} must be specified for {filter_type} filter.type")


def filter_list_rules(
    at: Loc, filters: Sequence[SpecModel], unique: Sequence[str]
) -> Iterator[Finding]:
    """CEL on a filter list: no type of `unique` twice; not both redirect and rewrite."""
    kinds = [getattr(f, "type") for f in filters]  # noqa: B009
    if "RequestRedirect" in kinds and "URLRewrite" in kinds:
        yield problem(
            at,
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, "
            "but not both",
        )
    for kind in unique:
        if kinds.count(kind) > 1:
            yield problem(at, f"{kind} filter cannot be repeated")


class CookieConfig(SpecModel):
    name: HeaderName | None = None
    path: str | None = Field(default=None, max_length=1024)
    lifetime_type: Annotated[Literal["Permanent", "Session"], enum("Permanent", "Session")] = (
        "Session"
    )


class HeaderConfig(SpecModel):
    name: HeaderName


class SessionPersistence(SpecModel):
    """Sticky sessions by cookie (default) or header (`sessionName`/`cookieConfig`: older form)."""

    type: Annotated[Literal["Cookie", "Header"], enum("Cookie", "Header")] = "Cookie"
    absolute_timeout: GatewayDuration | None = None
    idle_timeout: GatewayDuration | None = None
    cookie: CookieConfig | None = None
    header: HeaderConfig | None = None
    session_name: str | None = Field(default=None, max_length=128)
    cookie_config: CookieConfig | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        cookie = self.cookie or self.cookie_config
        if cookie and cookie.lifetime_type == "Permanent" and self.absolute_timeout is None:
            yield problem(
                at, "AbsoluteTimeout must be specified when cookie lifetimeType is Permanent"
            )
        if self.cookie is not None and self.type != "Cookie":
            yield problem(at, "cookie must be nil if type is not Cookie")
        if self.header is not None and self.type != "Header":
            yield problem(at, "header must be nil if type is not Header")
        if self.header is None and self.type == "Header":
            yield problem(at, "header must be specified for Header type")


class LabelSelector(SpecModel):
    """Kubernetes' label selector (matchLabels and matchExpressions)."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[dict[str, Any]] = Field(default_factory=list)


FromName = Literal["All", "Selector", "Same"]


class RouteNamespaces(SpecModel):
    from_: Annotated[FromName, enum(*get_args(FromName))] = Field(default="Same", alias="from")
    selector: LabelSelector | None = None


class RouteGroupKind(SpecModel):
    group: Group = GROUP
    kind: Kind


class AllowedRoutes(SpecModel):
    namespaces: RouteNamespaces = Field(default_factory=RouteNamespaces)
    kinds: list[RouteGroupKind] = Field(default_factory=list, max_length=8)


TlsModeName = Literal["Terminate", "Passthrough"]


class ListenerTls(SpecModel):
    mode: Annotated[TlsModeName, enum(*get_args(TlsModeName))] = "Terminate"
    certificate_refs: list[SecretObjectReference] = Field(default_factory=list, max_length=64)
    options: dict[str, str] = Field(default_factory=dict, max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.mode == "Terminate" and not self.certificate_refs and not self.options:
            yield problem(at, "certificateRefs or options must be specified when mode is Terminate")


class Listener(SpecModel):
    """A port, protocol and (optional) hostname the Gateway accepts traffic on."""

    name: SectionName
    hostname: Hostname | None = None
    port: PortNumber
    protocol: str = Field(min_length=1, max_length=255)
    tls: ListenerTls | None = None
    allowed_routes: AllowedRoutes = Field(default_factory=AllowedRoutes)


class GatewayAddress(SpecModel):
    type: str = "IPAddress"
    value: str = Field(default="", max_length=253)


class GatewayInfrastructure(SpecModel):
    labels: dict[str, str] = Field(default_factory=dict, max_length=8)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=16)
    parameters_ref: LocalObjectReference | None = None


class GatewaySpec(SpecModel):
    """A Gateway API Gateway: a class, listeners and (optionally) requested addresses."""

    gateway_class_name: ObjectName
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewayAddress] = Field(default_factory=list, max_length=16)
    infrastructure: GatewayInfrastructure | None = None
    allowed_listeners: dict[str, Any] | None = None
    tls: dict[str, Any] | None = None
    default_scope: Literal["All", "None"] | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        where = (*at, "listeners")
        for index, listener in enumerate(self.listeners):
            here = (*where, index)
            if listener.protocol in ("HTTP", "TCP", "UDP") and listener.tls is not None:
                yield problem(
                    here, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"
                )
            if listener.protocol == "HTTPS" and listener.tls and listener.tls.mode != "Terminate":
                yield problem(here, "tls mode must be Terminate for protocol HTTPS")
            if listener.protocol == "TLS" and listener.tls is None:
                yield problem(here, "tls mode must be set for protocol TLS")
            if listener.protocol in ("TCP", "UDP") and listener.hostname:
                yield problem(here, "hostname must not be specified for protocols ['TCP', 'UDP']")
        names = [listener.name for listener in self.listeners]
        if len(set(names)) < len(names):
            yield problem(where, "Listener name must be unique within the Gateway")
        triples = [(lis.port, lis.protocol, lis.hostname) for lis in self.listeners]
        if len(set(triples)) < len(triples):
            yield problem(
                where, "Combination of port, protocol and hostname must be unique for each listener"
            )


@served(GROUP, ("v1", "v1beta1"), "gateways", "gtw")
class Gateway(Resource):
    """Gateway API's Gateway (not Istio's networking.istio.io Gateway)."""

    spec: GatewaySpec


class GatewayClassSpec(SpecModel):
    controller_name: str = Field(min_length=1, max_length=253)
    parameters_ref: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=64)


@served(GROUP, ("v1", "v1beta1"), "gatewayclasses", "gc")
class GatewayClass(Resource):
    """The controller that implements a class of Gateways (Gossamer reads, never programs it)."""

    spec: GatewayClassSpec
