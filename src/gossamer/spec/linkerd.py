"""Linkerd's kinds (policy.linkerd.io, ServiceProfile, SMI TrafficSplit): accepted, not acted on.

Gossamer reads Linkerd manifests so that a mesh moving over keeps one set of files: each kind is
checked strictly (unknown fields refused, enums and references checked) and then carries an
INFO finding saying that Gossamer does not enforce it yet.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal, get_args

import re2
from pydantic import BeforeValidator, Field, PlainSerializer

from gossamer.spec.base import Loc, Resource, SpecModel, problem
from gossamer.spec.findings import Finding, Level
from gossamer.spec.gatewayapi.gateway import LabelSelector, enum
from gossamer.spec.gatewayapi.httproute import HTTPRouteSpec
from gossamer.spec.kinds import served
from gossamer.spec.types import Duration, duration_problem

POLICY = "policy.linkerd.io"

_QUANTITY = re.compile(
    r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?(?:\d+(?:\.\d*)?|\.\d+))?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes quantity (`500m`, `1`, `2Ki`, `1e3`) as an exact Decimal.

    Raises ValueError for anything else (booleans, garbage, a unit Kubernetes does not know)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"quantity {value!r} must be a number or a string such as 500m")
    if not isinstance(value, str):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"quantity {value!r} is not a Kubernetes quantity (e.g. 1, 500m, 2Ki)")
    sign, number, suffix = match.groups()
    amount = Decimal(sign + number)
    suffix = suffix or ""
    try:
        if suffix in _BINARY:
            return amount * Decimal(1024 ** _BINARY[suffix])
        exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(Decimal(suffix[1:]))
        scaled: Decimal = amount.scaleb(exponent)
        return scaled
    except (InvalidOperation, ValueError):
        raise ValueError(f"quantity {value!r} has an invalid exponent") from None


Quantity = Annotated[
    Decimal,
    BeforeValidator(parse_quantity),
    PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str, when_used="json"),
]
"""A Kubernetes quantity, parsed: `500m` is Decimal("0.5")."""


def _not_acted_on(kind: str) -> Finding:
    return problem((), f"accepted; Gossamer does not act on Linkerd's {kind} yet", level=Level.INFO)


def _cidr_problem(at: Loc, cidr: str) -> Iterator[Finding]:
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        yield problem(at, f"invalid CIDR {cidr!r}")


class Network(SpecModel):
    """A CIDR, minus some sub-ranges."""

    cidr: str
    except_: list[str] = Field(default_factory=list, alias="except")

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from _cidr_problem((*at, "cidr"), self.cidr)
        for index, cidr in enumerate(self.except_):
            yield from _cidr_problem((*at, "except", index), cidr)


class LinkerdResource(Resource):
    """Base of the Linkerd kinds: every one carries the "not acted on yet" INFO finding."""

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield _not_acted_on(self.kind)


@served(POLICY, ("v1alpha1", "v1beta1", "v1beta2", "v1beta3"), "httproutes")
class HTTPRoute(LinkerdResource):
    """Linkerd's HTTPRoute: Gateway API's shape; parents are Servers (inbound) or Services."""

    spec: HTTPRouteSpec = Field(default_factory=HTTPRouteSpec)


ProxyProtocolName = Literal["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"]
AccessPolicyName = Literal[
    "deny",
    "audit",
    "all-authenticated",
    "all-unauthenticated",
    "cluster-authenticated",
    "cluster-unauthenticated",
]


class ServerSpec(SpecModel):
    """A port of the selected pods (or external workloads) that policy then guards."""

    pod_selector: LabelSelector | None = None
    external_workload_selector: LabelSelector | None = None
    port: int | str
    proxy_protocol: Annotated[ProxyProtocolName, enum(*get_args(ProxyProtocolName))] = "unknown"
    access_policy: Annotated[AccessPolicyName, enum(*get_args(AccessPolicyName))] = "deny"

    def rules(self, at: Loc) -> Iterator[Finding]:
        if (self.pod_selector is None) == (self.external_workload_selector is None):
            yield problem(at, "exactly one of podSelector or externalWorkloadSelector is required")
        if isinstance(self.port, int) and not 1 <= self.port <= 65535:
            yield problem((*at, "port"), "port must be between 1 and 65535")


@served(POLICY, ("v1alpha1", "v1beta1", "v1beta2", "v1beta3"), "servers", "srv")
class Server(LinkerdResource):
    spec: ServerSpec


class ServerRef(SpecModel):
    name: str | None = None
    selector: LabelSelector | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if (self.name is None) == (self.selector is None):
            yield problem(at, "exactly one of server.name or server.selector is required")


class ServiceAccountRef(SpecModel):
    name: str
    namespace: str | None = None


class MeshTls(SpecModel):
    unauthenticated_tls: bool = Field(default=False, alias="unauthenticatedTLS")
    identities: list[str] = Field(default_factory=list)
    service_accounts: list[ServiceAccountRef] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.unauthenticated_tls and (self.identities or self.service_accounts):
            yield problem(
                at, "unauthenticatedTLS cannot be combined with identities or serviceAccounts"
            )


class Client(SpecModel):
    networks: list[Network] = Field(default_factory=list)
    unauthenticated: bool = False
    mesh_tls: MeshTls | None = Field(default=None, alias="meshTLS")

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.unauthenticated == (self.mesh_tls is not None):
            yield problem(at, "exactly one of client.unauthenticated or client.meshTLS is required")


class ServerAuthorizationSpec(SpecModel):
    server: ServerRef
    client: Client


@served(POLICY, ("v1alpha1", "v1beta1"), "serverauthorizations", "saz")
class ServerAuthorization(LinkerdResource):
    """Legacy inbound authorization of clients to a Server."""

    spec: ServerAuthorizationSpec


class ObjectRef(SpecModel):
    """A reference by group (core = "" or "core"), kind, name and optional namespace."""

    group: str = ""
    kind: str
    name: str | None = None
    namespace: str | None = None

    @property
    def group_kind(self) -> str:
        return f"{self.group or 'core'}/{self.kind}"


_TARGET_KINDS = {
    f"{POLICY}/Server",
    f"{POLICY}/HTTPRoute",
    f"{POLICY}/GRPCRoute",
    "gateway.networking.k8s.io/HTTPRoute",
    "gateway.networking.k8s.io/GRPCRoute",
    "core/Namespace",
}
_AUTHN_KINDS = {f"{POLICY}/MeshTLSAuthentication", f"{POLICY}/NetworkAuthentication"}
_AUTHN_KINDS |= {"core/ServiceAccount"}


class AuthorizationPolicySpec(SpecModel):
    """Clients must pass every authentication in `requiredAuthenticationRefs` to reach target."""

    target_ref: ObjectRef
    required_authentication_refs: list[ObjectRef]

    def rules(self, at: Loc) -> Iterator[Finding]:
        target = self.target_ref
        if target.group_kind not in _TARGET_KINDS:
            yield problem((*at, "targetRef"), f"unsupported targetRef kind {target.group_kind}")
        if target.name is None:
            yield problem((*at, "targetRef", "name"), "targetRef.name is required")
        for index, ref in enumerate(self.required_authentication_refs):
            where = (*at, "requiredAuthenticationRefs", index)
            if ref.group_kind not in _AUTHN_KINDS:
                yield problem(where, f"unsupported authentication kind {ref.group_kind}")
            if ref.name is None:
                yield problem((*where, "name"), "name is required")


@served(POLICY, ("v1alpha1",), "authorizationpolicies", "authzpolicy")
class AuthorizationPolicy(LinkerdResource):
    """Linkerd's AuthorizationPolicy (not Istio's security.istio.io one)."""

    spec: AuthorizationPolicySpec


class MeshTLSAuthenticationSpec(SpecModel):
    identities: list[str] = Field(default_factory=list)
    identity_refs: list[ObjectRef] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if bool(self.identities) == bool(self.identity_refs):
            yield problem(at, "exactly one of identities or identityRefs is required")


@served(POLICY, ("v1alpha1",), "meshtlsauthentications", "meshtlsauthn")
class MeshTLSAuthentication(LinkerdResource):
    spec: MeshTLSAuthenticationSpec


class NetworkAuthenticationSpec(SpecModel):
    networks: list[Network] = Field(min_length=1)


@served(POLICY, ("v1alpha1",), "networkauthentications", "netauthn")
class NetworkAuthentication(LinkerdResource):
    spec: NetworkAuthenticationSpec


class EgressNetworkSpec(SpecModel):
    networks: list[Network] = Field(default_factory=list)
    traffic_policy: Annotated[Literal["Allow", "Deny"], enum("Allow", "Deny")]


@served(POLICY, ("v1alpha1",), "egressnetworks")
class EgressNetwork(LinkerdResource):
    """Traffic leaving the cluster to these networks: allowed, or denied unless a route allows."""

    spec: EgressNetworkSpec


class RequestMatch(SpecModel):
    """A ServiceProfile route condition; `all`/`any`/`not` nest further matches."""

    path_regex: str | None = None
    method: str | None = None
    all: list[RequestMatch] = Field(default_factory=list)
    any: list[RequestMatch] = Field(default_factory=list)
    not_: RequestMatch | list[RequestMatch] | None = Field(default=None, alias="not")

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.path_regex is not None:
            try:
                re2.compile(self.path_regex)
            except re2.error as exc:
                yield problem((*at, "pathRegex"), f"invalid regular expression: {exc}")


class StatusRange(SpecModel):
    min: int = Field(default=100, ge=100, le=599)
    max: int = Field(default=599, ge=100, le=599)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.min > self.max:
            yield problem(at, "status range min must not exceed max")


class ResponseMatch(SpecModel):
    status: StatusRange | None = None
    all: list[ResponseMatch] = Field(default_factory=list)
    any: list[ResponseMatch] = Field(default_factory=list)
    not_: ResponseMatch | None = Field(default=None, alias="not")


class ResponseClass(SpecModel):
    condition: ResponseMatch
    is_failure: bool = False


class ProfileRoute(SpecModel):
    """A named route; `timeout` defaults to 10 s, and it is retried only if `isRetryable`."""

    name: str = Field(min_length=1)
    condition: RequestMatch
    response_classes: list[ResponseClass] = Field(default_factory=list)
    is_retryable: bool = False
    timeout: Duration | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.timeout is not None and (reason := duration_problem(self.timeout)):
            yield problem((*at, "timeout"), reason)


class RetryBudget(SpecModel):
    """Defaults when absent: retryRatio 0.2, minRetriesPerSecond 10, ttl 10s."""

    retry_ratio: float = Field(ge=0)
    min_retries_per_second: int = Field(ge=0)
    ttl: Duration


class WeightedDestination(SpecModel):
    authority: str = Field(min_length=1)
    weight: Quantity


class ServiceProfileSpec(SpecModel):
    routes: list[ProfileRoute] = Field(default_factory=list)
    retry_budget: RetryBudget | None = None
    dst_overrides: list[WeightedDestination] = Field(default_factory=list)
    opaque_ports: list[str] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        for index, dst in enumerate(self.dst_overrides):
            if dst.weight < 0:
                yield problem((*at, "dstOverrides", index, "weight"), "weight must not be negative")


@served("linkerd.io", ("v1alpha1", "v1alpha2"), "serviceprofiles", "sp")
class ServiceProfile(LinkerdResource):
    """Legacy per-service routes, retries and traffic split; named after the service's FQDN."""

    spec: ServiceProfileSpec = Field(default_factory=ServiceProfileSpec)


class TrafficSplitBackend(SpecModel):
    service: str = Field(min_length=1)
    weight: Quantity


class TrafficSplitSpec(SpecModel):
    service: str = Field(min_length=1)
    backends: list[TrafficSplitBackend] = Field(min_length=1)
    matches: list[ObjectRef] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        for index, backend in enumerate(self.backends):
            if backend.weight < 0:
                yield problem((*at, "backends", index, "weight"), "weight must not be negative")


@served(
    "split.smi-spec.io", ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"), "trafficsplits", "ts"
)
class TrafficSplit(Resource):
    """SMI's (deprecated) weighted split of a root service over backend services."""

    spec: TrafficSplitSpec

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield problem(
            (), "accepted; Gossamer does not act on SMI's TrafficSplit yet", level=Level.INFO
        )
