"""EDS ClusterLoadAssignment → EndpointSet: upstream hosts grouped by locality and priority."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream.transport_sockets import MATCH_METADATA, Match, struct_match

if TYPE_CHECKING:
    from gossamer.proxy.upstream.tls_context import UpstreamTls

# Envoy routes only to HEALTHY, UNKNOWN (no health checking) and DEGRADED hosts; DEGRADED is
# treated as healthy here (Envoy's separate degraded load is not modelled).
_ROUTABLE = frozenset(
    {health_check_pb2.UNKNOWN, health_check_pb2.HEALTHY, health_check_pb2.DEGRADED}
)
DEFAULT_OVERPROVISIONING = 140  # Envoy's overprovisioning_factor, in percent


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream host. Identity (equality, hash) is `host:port` only, so an EDS push that
    changes a host's weight or health still names the same host: its pools and state survive.
    `socket_match` is its `envoy.transport_socket_match` metadata; `tls` the TLS its Backend
    chose for it from the cluster's transport sockets (None: plaintext), which the pool keys
    its connections by."""

    host: str
    port: int
    weight: int = field(default=1, compare=False)
    healthy: bool = field(default=True, compare=False)
    socket_match: Match = field(default=(), compare=False)
    tls: UpstreamTls | None = field(default=None, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.host, self.port)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def using(self, tls: UpstreamTls | None) -> Endpoint:
        """This endpoint, connected to with `tls` (itself when nothing changes)."""
        if tls is self.tls:
            return self
        return Endpoint(self.host, self.port, self.weight, self.healthy, self.socket_match, tls)


@dataclass(frozen=True, slots=True)
class LocalityEndpoints:
    """The hosts of one locality at one priority; `weight` None when the push carries none."""

    locality: str  # "region/zone/subzone", trailing empty parts dropped
    weight: int | None
    priority: int
    endpoints: tuple[Endpoint, ...]
    socket_match: Match = ()  # the locality's `envoy.transport_socket_match` metadata


@dataclass(frozen=True, slots=True)
class EndpointSet:
    name: str
    localities: tuple[LocalityEndpoints, ...] = ()
    overprovisioning_factor: int = DEFAULT_OVERPROVISIONING
    # Compared: what Endpoint equality leaves out (weight, health, transport metadata), so a
    # push that changes only those is not taken for an unchanged one.
    details: tuple[tuple[object, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        details = tuple(
            (group.socket_match, e.host, e.port, e.weight, e.healthy, e.socket_match)
            for group in self.localities
            for e in group.endpoints
        )
        object.__setattr__(self, "details", details)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(ep for group in self.localities for ep in group.endpoints)


def locality_name(region: str, zone: str, sub_zone: str) -> str:
    return "/".join((region, zone, sub_zone)).rstrip("/")


def compile_assignment(pb: endpoint_pb2.ClusterLoadAssignment) -> EndpointSet:
    """Every locality and lb_endpoint; raises ConfigRejected for addresses we cannot dial."""
    name = pb.cluster_name
    groups: list[LocalityEndpoints] = []
    for index, group in enumerate(pb.endpoints):
        where = f"endpoints {name!r} locality {index}"
        weight: int | None = None
        if group.HasField("load_balancing_weight"):
            weight = group.load_balancing_weight.value
            if weight < 1:
                raise ConfigRejected(f"{where} load_balancing_weight: must be at least 1")
        hosts = tuple(
            _endpoint(lb, f"{where} lb_endpoint {i}") for i, lb in enumerate(group.lb_endpoints)
        )
        loc = group.locality
        groups.append(
            LocalityEndpoints(
                locality=locality_name(loc.region, loc.zone, loc.sub_zone),
                weight=weight,
                priority=group.priority,
                endpoints=hosts,
                socket_match=_socket_match(group.metadata),
            )
        )
    factor = DEFAULT_OVERPROVISIONING
    if pb.policy.HasField("overprovisioning_factor"):
        factor = pb.policy.overprovisioning_factor.value
    return EndpointSet(name=name, localities=tuple(groups), overprovisioning_factor=factor)


def _endpoint(lb: endpoint_pb2.LbEndpoint, where: str) -> Endpoint:
    if lb.WhichOneof("host_identifier") != "endpoint":
        raise ConfigRejected(f"{where}: only inline endpoints are supported")
    address = lb.endpoint.address
    if address.WhichOneof("address") != "socket_address":
        raise ConfigRejected(f"{where} address: only socket addresses are supported")
    socket = address.socket_address
    if socket.WhichOneof("port_specifier") != "port_value":
        raise ConfigRejected(f"{where} address: named ports are not supported")
    weight = 1
    if lb.HasField("load_balancing_weight"):
        weight = lb.load_balancing_weight.value
        if weight < 1:
            raise ConfigRejected(f"{where} load_balancing_weight: must be at least 1")
    return Endpoint(
        host=socket.address,
        port=socket.port_value,
        weight=weight,
        healthy=lb.health_status in _ROUTABLE,
        socket_match=_socket_match(lb.metadata),
    )


def _socket_match(metadata: base_pb2.Metadata) -> Match:
    fields = metadata.filter_metadata
    return struct_match(fields[MATCH_METADATA]) if MATCH_METADATA in fields else ()
