"""EDS ClusterLoadAssignment → EndpointSet: upstream hosts grouped by locality and priority."""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from gossamer.proxy.config.rejected import ConfigRejected

# Envoy routes only to HEALTHY, UNKNOWN (no health checking) and DEGRADED hosts; DEGRADED is
# treated as healthy here (Envoy's separate degraded load is not modelled).
_ROUTABLE = frozenset(
    {health_check_pb2.UNKNOWN, health_check_pb2.HEALTHY, health_check_pb2.DEGRADED}
)
DEFAULT_OVERPROVISIONING = 140  # Envoy's overprovisioning_factor, in percent


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream host. Identity (equality, hash) is `host:port` only, so an EDS push that
    changes a host's weight or health still names the same host: its pools and state survive."""

    host: str
    port: int
    weight: int = field(default=1, compare=False)
    healthy: bool = field(default=True, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.host, self.port)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LocalityEndpoints:
    """The hosts of one locality at one priority; `weight` None when the push carries none."""

    locality: str  # "region/zone/subzone", trailing empty parts dropped
    weight: int | None
    priority: int
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class EndpointSet:
    name: str
    localities: tuple[LocalityEndpoints, ...] = ()
    overprovisioning_factor: int = DEFAULT_OVERPROVISIONING

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
    )
