"""Istio `WorkloadEntry`, networking's label selector, and the address/name checks they share."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator, Mapping

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.common import fqdn_problem, is_dns1123_label, is_ip, label_findings

UNIX_PREFIX = "unix://"


def partial_wildcard_problem(host: str) -> str | None:
    """A `*` anywhere but as the whole first label (`*x`, `a.*.com`) is a partial wildcard."""
    if "*" in host and host != "*" and not host.startswith("*."):
        return f"partial wildcard {host!r} not allowed"
    return None


def ip_problem(value: str) -> str | None:
    return None if is_ip(value) else f"{value} is not a valid IP"


def ip_subnet_problem(value: str) -> str | None:
    """An IP address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`); None when fine."""
    if value.count("/") == 1:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value} is not a valid CIDR block"
        return None
    return ip_problem(value)


def unix_address_problem(path: str) -> str | None:
    """The part after `unix://`: an absolute file path or an abstract socket (`@name`)."""
    if not path:
        return "unix address must not be empty"
    if path.startswith("@"):
        return None
    if not path.startswith("/") or path.endswith("/"):
        return f"{path} is not an absolute path to a file"
    return None


def port_range_problem(number: int) -> str | None:
    """The CRD's port rule (ServiceEntry and WorkloadEntry ports), worded as the CRD words it."""
    return None if 1 <= number <= 65535 else f"port must be between 1-65535 (got {number})"


def port_name_problem(name: str) -> str | None:
    return None if is_dns1123_label(name) else f"invalid port name: {name!r}"


class LabelSelector(SpecModel):
    """networking.istio.io's `WorkloadSelector`: `{labels: {...}}` (not `matchLabels`).

    Selects the workloads whose labels include all of these; empty labels select every workload
    of the namespace (accepted, with a warning from the kind that holds it).
    """

    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels.items())

    def rules(self, at: Loc) -> Iterator[Finding]:
        for key, value in self.labels.items():
            where = (*at, "labels", key)
            if not key:
                yield problem(where, f"empty key is not supported in selector: '={value}'")
            if "*" in key or "*" in value:
                yield problem(where, f"wildcard is not supported in selector: '{key}={value}'")
            if len(value) > 63:
                yield problem(where, "selector label values must be at most 63 characters")


class WorkloadEntrySpec(SpecModel):
    """One workload the mesh did not launch (a VM, a process elsewhere), or one SE endpoint.

    `ports` maps a service port *name* to this workload's port for it (unset: the service's own
    number). `weight` 0 means unset (an equal share); `address` may be an IP, a DNS name (DNS
    resolution only) or `unix:///path`. Only the checks that hold wherever an entry appears are
    in `rules`; `endpoint_problems` adds those that depend on where it appears.
    """

    address: str = Field(default="", max_length=256)
    ports: dict[str, int] = Field(default_factory=dict, max_length=128)
    labels: dict[str, str] = Field(default_factory=dict, max_length=256)
    network: str = Field(default="", max_length=2048)
    locality: str = Field(default="", max_length=2048)
    weight: int = Field(default=0, ge=0, le=4_294_967_295)
    service_account: str = Field(default="", max_length=253)

    @property
    def is_unix(self) -> bool:
        return self.address.startswith(UNIX_PREFIX)

    def port_for(self, name: str, default: int) -> int:
        """The port this workload serves the service port `name` on (`default` if not remapped)."""
        return self.ports.get(name, default)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.address:
            if not self.network:
                yield problem((*at, "address"), "Address is required")
            else:
                yield warning((*at, "address"), f"address is unset with network {self.network!r}")
        if self.is_unix:
            if reason := unix_address_problem(self.address.removeprefix(UNIX_PREFIX)):
                yield problem((*at, "address"), reason)
            if self.ports:
                yield problem(
                    (*at, "ports"), f"unix endpoint {self.address} must not include ports"
                )
        for name, number in self.ports.items():
            for reason in (port_name_problem(name), port_range_problem(number)):
                if reason:
                    yield problem((*at, "ports", name), reason)
        yield from label_findings((*at, "labels"), self.labels)


def endpoint_problems(
    entry: WorkloadEntrySpec,
    at: Loc,
    *,
    service_ports: Collection[str] | None,
    allow_fqdn: bool,
) -> Iterator[Finding]:
    """The checks that depend on where an entry sits (Istio's validateWorkloadEntry).

    `service_ports`: the port names of the ServiceEntry holding it (None for a standalone entry);
    `allow_fqdn`: whether a DNS name may stand for an IP (not for STATIC endpoints).
    """
    address = entry.address
    if address and not entry.is_unix and not is_ip(address):
        if not allow_fqdn:
            yield problem(
                (*at, "address"), f"endpoint address {address!r} is not a valid IP address"
            )
        elif fqdn_problem(address):
            yield problem(
                (*at, "address"),
                f"endpoint address {address!r} is not a valid FQDN or an IP address",
            )
    if service_ports is not None:
        for name, number in entry.ports.items():
            if name not in service_ports:
                yield problem(
                    (*at, "ports", name),
                    f"endpoint port {number} is not defined by the service entry",
                )
        if entry.is_unix and len(service_ports) != 1:
            yield problem((*at, "address"), "exactly 1 service port required for unix endpoints")


@served("networking.istio.io", ("v1alpha3", "v1beta1", "v1"), "workloadentries", "we")
class WorkloadEntry(Resource):
    """A non-Kubernetes workload: the registry makes it an endpoint of every Service (and SE with
    a workloadSelector) in its namespace whose selector matches its labels."""

    spec: WorkloadEntrySpec = Field(default_factory=WorkloadEntrySpec)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from endpoint_problems(self.spec, (*at, "spec"), service_ports=None, allow_fqdn=True)
