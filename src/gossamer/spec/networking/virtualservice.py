"""Istio's VirtualService: the hosts it claims, on which gateways, with HTTP, TLS and TCP routes.

Theory of operation:
1. Shape (fields, types, enums) is the CRD schema's; removed fields are unknown fields.
2. Each model's `rules` apply the webhook checks that need only that model. Checks that need
   the whole VirtualService (is it a delegate? bound only to gateways? its hosts) run in
   `VirtualServiceSpec.rules`; those needing the namespace (exportTo) in `VirtualService.rules`.
3. Defaults are not stored: properties compute them (`effective_*`, `weights()`), so what the
   user wrote and what the mesh does stay distinguishable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.common import (
    Destination,
    Int32,
    UInt32,
    domain_problem,
    expand_host,
    export_to_findings,
    gateway_name_findings,
    host_matches,
    host_within,
    is_ip,
    label_findings,
    port_problem,
    split_weights,
    weight_findings,
)
from gossamer.spec.networking.httproute import HTTPRoute, is_jwt_claim

MESH = "mesh"
"""The reserved gateway name meaning every sidecar."""

__all__ = [
    "MESH",
    "HTTPRoute",
    "L4MatchAttributes",
    "RouteDestination",
    "TCPRoute",
    "TLSMatchAttributes",
    "TLSRoute",
    "VirtualService",
    "VirtualServiceSpec",
    "split_weights",
]


def subnet_problem(subnet: str) -> str | None:
    """Istio's ValidateIPSubnet: an address or a CIDR block."""
    if subnet.count("/") == 1:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return f"{subnet} is not a valid CIDR block"
        return None
    return None if is_ip(subnet) else f"{subnet} is not a valid IP"


class RouteDestination(SpecModel):
    """An L4 (TLS/TCP) destination and its relative weight."""

    destination: Destination
    weight: Int32 = 0


class L4MatchAttributes(SpecModel):
    """TCP match: destination subnets and port at runtime; the rest choose proxies (config time)."""

    destination_subnets: list[str] = Field(default_factory=list)
    port: UInt32 = 0
    source_subnet: str | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from _l4_findings(at, self.destination_subnets, self.port)
        yield from label_findings((*at, "sourceLabels"), self.source_labels)
        yield from gateway_name_findings((*at, "gateways"), self.gateways)


class TLSMatchAttributes(SpecModel):
    """TLS match on SNI (required; must fall within the VirtualService hosts), subnets and port."""

    sni_hosts: list[str] = Field(default_factory=list)
    destination_subnets: list[str] = Field(default_factory=list)
    port: UInt32 = 0
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.sni_hosts:
            yield problem((*at, "sniHosts"), "TLS match must have at least one SNI host")
        yield from _l4_findings(at, self.destination_subnets, self.port)
        yield from label_findings((*at, "sourceLabels"), self.source_labels)
        yield from gateway_name_findings((*at, "gateways"), self.gateways)


def _l4_findings(at: Loc, subnets: list[str], port: int) -> Iterator[Finding]:
    for index, subnet in enumerate(subnets):
        if (reason := subnet_problem(subnet)) is not None:
            yield problem((*at, "destinationSubnets", index), reason)
    if port and (reason := port_problem(port)) is not None:
        yield problem((*at, "port"), reason)


class TLSRoute(SpecModel):
    """SNI routing for unterminated TLS: first matching route wins, weighted destinations."""

    match: list[TLSMatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)

    def weights(self) -> list[tuple[RouteDestination, float]]:
        """Each destination's share in percent (see `split_weights`)."""
        return split_weights(self.route)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.match:
            yield problem((*at, "match"), "TLS route must have at least one match condition")
        if not self.route:
            yield problem((*at, "route"), "TLS route is required")
        yield from weight_findings((*at, "route"), [d.weight for d in self.route])


class TCPRoute(SpecModel):
    """Opaque TCP routing: first matching route wins (no match = all), weighted destinations."""

    match: list[L4MatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)

    def weights(self) -> list[tuple[RouteDestination, float]]:
        """Each destination's share in percent (see `split_weights`)."""
        return split_weights(self.route)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.route:
            yield problem((*at, "route"), "TCP route is required")
        yield from weight_findings((*at, "route"), [d.weight for d in self.route])


class VirtualServiceSpec(SpecModel):
    """`hosts` claimed on `gateways` (default: `mesh`), with `http`, `tls` and `tcp` routes.

    No `hosts` makes it a delegate, reachable only through another VirtualService's
    `http[].delegate`.
    """

    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)

    @property
    def is_delegate(self) -> bool:
        return not self.hosts

    @property
    def routes_anything(self) -> bool:
        """Whether it has any http, tls or tcp route (without, it is inert: a warning)."""
        return bool(self.http or self.tls or self.tcp)

    @property
    def applies_to_mesh(self) -> bool:
        """Whether sidecars get these routes (no gateways, or `mesh` among them)."""
        return not self.gateways or MESH in self.gateways

    @property
    def gateway_only(self) -> bool:
        """Bound to gateways and not to the mesh (Istio's `isGateway` with gateways given)."""
        return bool(self.gateways) and MESH not in self.gateways

    def effective_gateways(self, namespace: str) -> list[str]:
        """`namespace/name` of each gateway (short names are in the VirtualService's namespace);
        `mesh` stays `mesh`; no gateways means `["mesh"]`."""
        return [_qualify_gateway(g, namespace) for g in self.gateways] or [MESH]

    def fqdn_hosts(self, namespace: str, domain: str = "cluster.local") -> list[str]:
        """`hosts` with short names expanded in the VirtualService's namespace."""
        return [expand_host(h, namespace, domain) for h in self.hosts]

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.is_delegate:
            for field in ("gateways", "tls", "tcp"):
                if getattr(self, field):
                    name = {"gateways": "gateways", "tls": "tls route", "tcp": "tcp route"}[field]
                    yield problem(
                        (*at, field), f"delegate virtual service must have no {name} specified"
                    )
        if self.gateways:
            yield from gateway_name_findings((*at, "gateways"), self.gateways)
        if not self.gateway_only:
            yield from self._jwt_claim_findings(at)
        yield from self._host_findings(at)
        if not self.routes_anything:
            yield problem(at, "http, tcp or tls must be provided in virtual service")
        for index, route in enumerate(self.http):
            yield from route.action_findings((*at, "http", index), in_delegate=self.is_delegate)
        for r_index, tls in enumerate(self.tls):
            for m_index, match in enumerate(tls.match):
                for s_index, sni in enumerate(match.sni_hosts):
                    where = (*at, "tls", r_index, "match", m_index, "sniHosts", s_index)
                    yield from self._sni_findings(where, sni)

    def _jwt_claim_findings(self, at: Loc) -> Iterator[Finding]:
        listed = "[" + " ".join(self.gateways) + "]"
        for r_index, route in enumerate(self.http):
            for m_index, match in enumerate(route.match):
                for field, headers in (
                    ("headers", match.headers),
                    ("withoutHeaders", match.without_headers),
                ):
                    for key in headers:
                        if is_jwt_claim(key):
                            yield problem(
                                (*at, "http", r_index, "match", m_index, field, key),
                                f"JWT claim based routing (key: {key}) is only supported for "
                                f"gateway, found no gateways: {listed}",
                            )

    def _host_findings(self, at: Loc) -> Iterator[Finding]:
        all_valid = True
        sni = any(m.sni_hosts for t in self.tls for m in t.match)
        for index, host in enumerate(self.hosts):
            if self.gateway_only:
                reason = _gateway_domain_problem(host, sni=sni)
            else:
                reason = domain_problem(host)
            if reason is not None:
                if not is_ip(host):
                    yield problem((*at, "hosts", index), reason)
                    all_valid = False
            elif not self.gateway_only and host == "*":
                yield problem(
                    (*at, "hosts", index),
                    "wildcard host * is not allowed for virtual services bound to the mesh gateway",
                )
                all_valid = False
        if not all_valid:
            return
        for i, first in enumerate(self.hosts):
            for second in self.hosts[i + 1 :]:
                if host_matches(first, second):
                    yield problem(
                        (*at, "hosts"), f"duplicate hosts in virtual service: {first} & {second}"
                    )

    def _sni_findings(self, at: Loc, sni: str) -> Iterator[Finding]:
        if MESH not in self.gateways:
            reason = _gateway_domain_problem(sni, sni=True)
        else:
            reason = domain_problem(sni)
        if reason is not None:
            if is_ip(sni):
                yield warning(
                    at,
                    f"using an IP address ({sni!r}) goes against SNI spec and most clients do "
                    "not support this",
                )
            else:
                yield problem(at, reason)
            return
        if not any(host_within(sni, host) for host in self.hosts):
            yield problem(
                at,
                f'SNI host "{sni}" is not a compatible subset of any of the virtual service '
                f"hosts: [{', '.join(self.hosts)}]",
            )


def _qualify_gateway(name: str, namespace: str) -> str:
    if name == MESH or "/" in name:
        return name
    if "." in name:  # legacy `name.namespace[.svc.cluster.local]`
        parts = name.split(".")
        return f"{parts[1]}/{parts[0]}"
    return f"{namespace}/{name}"


def _gateway_domain_problem(domain: str, *, sni: bool) -> str | None:
    """Istio's ValidateWildcardDomainForVirtualServiceBoundToGateway: also accepts the SNI that
    AUTO_PASSTHROUGH gateways generate, `outbound_.<port>_._.<host>`."""
    if not sni or not domain.startswith("outbound_") or len(domain) > 255:
        return domain_problem(domain)
    parts = domain.split("_")
    form = "outbound_.<port>_._.<hostname>"
    if len(parts) < 4:
        return f"domain name {domain} invalid, should follow '{form}' format"
    port, hostname = parts[1].strip("."), parts[3].strip(".")
    if not any(c.isdigit() for c in port):
        return (
            f"domain name {domain!r} invalid (label {port!r} invalid). should follow {form} format"
        )
    if not any(c.isascii() and c.isalpha() for c in hostname):
        return (
            f"domain name {domain!r} invalid (label {hostname!r} invalid). "
            f"should follow {form} format"
        )
    return None


@served("networking.istio.io", ("v1alpha3", "v1beta1", "v1"), "virtualservices", "vs")
class VirtualService(Resource):
    """Routing rules for a set of hosts; see `VirtualServiceSpec`."""

    spec: VirtualServiceSpec = Field(default_factory=VirtualServiceSpec)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from export_to_findings(
            (*at, "spec", "exportTo"), self.metadata.namespace, self.spec.export_to
        )
