"""Kubernetes `v1 Service`: the name, ports and selector that make a set of workloads a service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from gossamer.spec.base import DNS1123_LABEL, Loc, Resource, SpecModel, problem
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served

# Istio's protocol selection: appProtocol, else the port name's prefix before '-' (§13).
KNOWN_PROTOCOLS = {
    "http": "HTTP",
    "http2": "HTTP2",
    "https": "HTTPS",
    "grpc": "GRPC",
    "grpc-web": "GRPC-WEB",
    "tcp": "TCP",
    "tls": "TLS",
    "mongo": "Mongo",
    "mysql": "MySQL",
    "redis": "Redis",
    "udp": "UDP",
    "h2c": "HTTP2",
    "kubernetes.io/h2c": "HTTP2",
    "kubernetes.io/ws": "HTTP",
    "kubernetes.io/wss": "HTTPS",
}


def port_protocol(name: str | None, app_protocol: str | None) -> str:
    """The mesh protocol of a Service port; `UNKNOWN` means it will be sniffed."""
    if app_protocol:
        return KNOWN_PROTOCOLS.get(app_protocol.lower(), "UNKNOWN")
    if name:
        word = name.lower()
        if word == "grpc-web" or word.startswith("grpc-web-"):
            return "GRPC-WEB"
        prefix = word.split("-", 1)[0]
        return KNOWN_PROTOCOLS.get(prefix, "UNKNOWN")
    return "UNKNOWN"


class ServicePort(SpecModel):
    port: int = Field(ge=1, le=65535)
    name: str | None = None
    target_port: int | str | None = None
    protocol: str = "TCP"  # TCP, UDP or SCTP: checked in rules so analyzers still see the port
    app_protocol: str | None = None
    node_port: int | None = None

    @property
    def mesh_protocol(self) -> str:
        return port_protocol(self.name, self.app_protocol)

    def target(self) -> int:
        """The container port; a named targetPort resolves per endpoint, so fall back to `port`."""
        return self.target_port if isinstance(self.target_port, int) else self.port

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.protocol not in ("TCP", "UDP", "SCTP"):
            yield problem(
                (*at, "protocol"),
                f'Unsupported value: "{self.protocol}": supported values: "SCTP", "TCP", "UDP"',
            )
        if self.name is not None and not DNS1123_LABEL.match(self.name):
            yield problem((*at, "name"), "port name must be a lowercase RFC 1123 label")
        if isinstance(self.target_port, int) and not 1 <= self.target_port <= 65535:
            yield problem((*at, "targetPort"), "targetPort must be between 1 and 65535")


class ServiceSpec(SpecModel):
    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] | None = None
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    external_name: str | None = None
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")
    session_affinity: str | None = None
    session_affinity_config: dict[str, Any] | None = None
    ip_families: list[str] | None = None
    ip_family_policy: str | None = None
    internal_traffic_policy: str | None = None
    external_traffic_policy: str | None = None
    publish_not_ready_addresses: bool | None = None
    health_check_node_port: int | None = None
    allocate_load_balancer_node_ports: bool | None = None
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    load_balancer_source_ranges: list[str] | None = None
    load_balancer_class: str | None = None
    traffic_distribution: str | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        seen_names: set[str] = set()
        seen_ports: set[tuple[int, str]] = set()
        for index, port in enumerate(self.ports):
            if len(self.ports) > 1 and not port.name:
                yield problem(
                    (*at, "ports", index, "name"), "a Service with several ports must name each"
                )
            if port.name and port.name in seen_names:
                yield problem((*at, "ports", index, "name"), f"duplicate port name {port.name!r}")
            if (port.port, port.protocol) in seen_ports:
                yield problem(
                    (*at, "ports", index, "port"), f"duplicate port {port.port}/{port.protocol}"
                )
            if port.name:
                seen_names.add(port.name)
            seen_ports.add((port.port, port.protocol))


@served("", ("v1",), "services", "svc", "service")
class Service(Resource):
    """A Kubernetes Service: its selector picks workloads by label; its ports are the mesh's."""

    spec: ServiceSpec = Field(default_factory=ServiceSpec)

    def hostname(self, domain: str = "cluster.local") -> str:
        return f"{self.metadata.name}.{self.metadata.namespace}.svc.{domain}"
