"""Istio `ServiceEntry`: services the mesh learns from config (external APIs, VMs, VIPs)."""

from __future__ import annotations

import enum
from collections.abc import Iterator

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.common import (
    UInt32,
    domain_problem,
    export_to_findings,
    fqdn_problem,
    is_ip,
)
from gossamer.spec.networking.gateway import Protocol, protocol_problem
from gossamer.spec.networking.workloadentry import (
    LabelSelector,
    WorkloadEntrySpec,
    endpoint_problems,
    ip_subnet_problem,
    partial_wildcard_problem,
    port_name_problem,
    port_range_problem,
)

USE_WAYPOINT_LABEL = "istio.io/use-waypoint"


class Location(enum.StrEnum):
    MESH_EXTERNAL = "MESH_EXTERNAL"  # the default: outside the mesh, no mTLS, no identity
    MESH_INTERNAL = "MESH_INTERNAL"


class Resolution(enum.StrEnum):
    NONE = "NONE"  # the default: forward to the IP the client dialled
    STATIC = "STATIC"
    DNS = "DNS"
    DNS_ROUND_ROBIN = "DNS_ROUND_ROBIN"
    DYNAMIC_DNS = "DYNAMIC_DNS"


class ServicePort(SpecModel):
    """A port of the entry; `protocol` empty means sniffed, `targetPort` 0 means `number`."""

    number: UInt32
    protocol: str = Field(default="", max_length=256)
    name: str = Field(max_length=256)
    target_port: UInt32 = 0

    @property
    def parsed_protocol(self) -> Protocol | None:
        """The declared protocol; None when unset (Istio sniffs it)."""
        return Protocol.parse(self.protocol) if self.protocol else None

    @property
    def endpoint_port(self) -> int:
        return self.target_port or self.number


class ServiceEntrySpec(SpecModel):
    """Hosts, VIPs, ports and where the endpoints come from.

    Endpoints are listed (`endpoints`), selected from WorkloadEntries and pods
    (`workloadSelector`), resolved from DNS (`DNS*` without endpoints: the hosts), or absent
    (`NONE`: the original destination IP is used).
    """

    hosts: list[str] = Field(default_factory=list, max_length=256)
    addresses: list[str] = Field(default_factory=list, max_length=256)
    ports: list[ServicePort] = Field(default_factory=list, max_length=256)
    location: Location = Location.MESH_EXTERNAL
    resolution: Resolution = Resolution.NONE
    endpoints: list[WorkloadEntrySpec] = Field(default_factory=list, max_length=4096)
    workload_selector: LabelSelector | None = None
    export_to: list[str] = Field(default_factory=list)
    subject_alt_names: list[str] = Field(default_factory=list)

    @property
    def port_names(self) -> set[str]:
        return {p.name for p in self.ports}

    def port_named(self, name: str) -> ServicePort | None:
        return next((p for p in self.ports if p.name == name), None)

    @property
    def cidrs(self) -> list[str]:
        return [a for a in self.addresses if "/" in a]

    def rules(self, at: Loc) -> Iterator[Finding]:
        selector = self.workload_selector
        if selector is not None and not selector.labels:
            yield warning(
                (*at, "workloadSelector"),
                "service entry: workload selector specified without labels, will be applied to "
                "all services in namespace",
            )
        if selector is not None and self.endpoints:
            yield problem(at, "only one of WorkloadSelector or Endpoints can be set")
        yield from self._host_rules(at)
        yield from self._address_rules(at)
        yield from self._port_rules(at)
        yield from self._resolution_rules(at)
        if self.resolution is not Resolution.NONE and len(self.hosts) > 1:
            for port in self.ports:
                protocol = Protocol.parse(port.protocol)
                if not protocol.is_http and not protocol.is_tls:
                    yield problem(
                        (*at, "hosts"), "multiple hosts provided with non-HTTP, non-TLS ports"
                    )
                    break

    def _host_rules(self, at: Loc) -> Iterator[Finding]:
        if not self.hosts:
            yield problem(
                (*at, "hosts"), "Required value: service entry must have at least one host"
            )
        for index, host in enumerate(self.hosts):
            where = (*at, "hosts", index)
            if host == "*":
                yield problem(where, "hostname cannot be wildcard")
                continue
            if reason := domain_problem(host):
                yield problem(where, reason)
            if self.resolution is not Resolution.DYNAMIC_DNS and (
                reason := partial_wildcard_problem(host)
            ):
                yield warning(where, reason)

    def _address_rules(self, at: Loc) -> Iterator[Finding]:
        for index, address in enumerate(self.addresses):
            reason = "must be at most 64 characters" if len(address) > 64 else None
            if reason := reason or ip_subnet_problem(address):
                yield problem((*at, "addresses", index), reason)
        if self.cidrs and self.resolution not in (Resolution.NONE, Resolution.STATIC):
            yield problem(
                (*at, "addresses"),
                "CIDR addresses are allowed only for NONE/STATIC resolution types",
            )

    def _port_rules(self, at: Loc) -> Iterator[Finding]:
        names: set[str] = set()
        numbers: set[int] = set()
        for index, port in enumerate(self.ports):
            where = (*at, "ports", index)
            if port.name in names:
                yield problem(
                    (*where, "name"),
                    f"Duplicate value: service entry port name {port.name!r} already defined",
                )
            if port.number in numbers:
                yield problem(
                    (*where, "number"),
                    "port number cannot be duplicated: "
                    f"service entry port {port.number} already defined",
                )
            names.add(port.name)
            numbers.add(port.number)
            if port.target_port and (reason := port_range_problem(port.target_port)):
                yield problem((*where, "targetPort"), reason)
            if reason := port_name_problem(port.name):
                yield problem((*where, "name"), reason)
            if reason := protocol_problem(port.protocol):
                yield problem((*where, "protocol"), reason)
            if reason := port_range_problem(port.number):
                yield problem((*where, "number"), reason)

    def _resolution_rules(self, at: Loc) -> Iterator[Finding]:
        resolution = self.resolution
        if resolution is Resolution.NONE:
            if self.endpoints:
                yield problem((*at, "endpoints"), "NONE mode cannot set endpoints")
            if self.workload_selector is not None:
                yield warning(
                    (*at, "workloadSelector"),
                    "workloadSelector should not be set when resolution mode is NONE",
                )
        elif resolution is Resolution.STATIC:
            for index, endpoint in enumerate(self.endpoints):
                yield from endpoint_problems(
                    endpoint,
                    (*at, "endpoints", index),
                    service_ports=self.port_names,
                    allow_fqdn=False,
                )
        elif resolution is Resolution.DYNAMIC_DNS:
            yield from self._dynamic_dns_rules(at)
        else:
            yield from self._dns_rules(at)

    def _dns_rules(self, at: Loc) -> Iterator[Finding]:
        resolution = self.resolution
        if not self.endpoints:
            for index, host in enumerate(self.hosts):
                if reason := fqdn_problem(host):
                    yield problem(
                        (*at, "hosts", index),
                        "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                        f"provided for resolution mode {resolution}, {reason}",
                    )
                    break
        if resolution is Resolution.DNS_ROUND_ROBIN and len(self.endpoints) > 1:
            yield problem((*at, "endpoints"), "DNS_ROUND_ROBIN mode cannot have multiple endpoints")
        for index, endpoint in enumerate(self.endpoints):
            where = (*at, "endpoints", index)
            address = endpoint.address
            if address and not is_ip(address) and fqdn_problem(address):
                yield problem(
                    (*where, "address"),
                    f"endpoint address {address!r} is not a valid FQDN or an IP address",
                )
            for name, number in endpoint.ports.items():
                if name not in self.port_names:
                    yield problem(
                        (*where, "ports", name),
                        f"endpoint port {number} is not defined by the service entry",
                    )
        if (
            self.addresses
            and len(self.hosts) > 1
            and any(Protocol.parse(p.protocol).is_tcp for p in self.ports)
        ):
            yield warning(
                (*at, "hosts"),
                "service entry can not have more than one host specified simultaneously with "
                "address and tcp port",
            )

    def _dynamic_dns_rules(self, at: Loc) -> Iterator[Finding]:
        mode = Resolution.DYNAMIC_DNS
        for index, host in enumerate(self.hosts):
            if not host.startswith("*"):
                yield problem(
                    (*at, "hosts", index), f"host must be wildcarded for resolution mode {mode}"
                )
        if self.addresses:
            yield problem(
                (*at, "addresses"),
                f"addresses cannot be set for resolution type {mode}. HTTP route domains will only "
                "be generated from the hosts field values",
            )
        if self.endpoints:
            yield problem(
                (*at, "endpoints"),
                f"endpoints cannot be set for resolution type {mode}. Destination IP address "
                "determined from hosts field values",
            )
        allowed = (Protocol.HTTP, Protocol.TLS, Protocol.GRPC, Protocol.HTTP2)
        for index, port in enumerate(self.ports):
            if Protocol.parse(port.protocol) not in allowed:
                yield problem(
                    (*at, "ports", index, "protocol"),
                    "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution "
                    f"type {mode}",
                )


@served("networking.istio.io", ("v1alpha3", "v1beta1", "v1"), "serviceentries", "se")
class ServiceEntry(Resource):
    """Adds `hosts` to the registry (or, for a host that is already a Kubernetes Service, only
    decorates it with `subjectAltNames`). Its spec is required (the CRD says so)."""

    spec: ServiceEntrySpec = Field(default_factory=ServiceEntrySpec)

    def check(self, at: Loc = ()) -> Iterator[Finding]:
        if self.given("spec"):
            yield from super().check(at)
        else:  # one finding, not one per missing spec field
            yield from self.metadata.check((*at, "metadata"))
            yield problem((*at, "spec"), "Required value: a ServiceEntry needs a spec with hosts")

    def rules(self, at: Loc) -> Iterator[Finding]:
        spec_at = (*at, "spec")
        yield from export_to_findings(
            (*spec_at, "exportTo"), self.namespace, self.spec.export_to, service_entry=True
        )
        waypoint = self.metadata.labels.get(USE_WAYPOINT_LABEL, "")
        if (
            self.spec.resolution is Resolution.DYNAMIC_DNS
            and self.spec.location is Location.MESH_INTERNAL
            and waypoint
            and waypoint.lower() != "none"
        ):
            yield problem(
                (*spec_at, "location"),
                "location MESH_INTERNAL with resolution type DYNAMIC_DNS is not supported when "
                "using waypoints",
            )
