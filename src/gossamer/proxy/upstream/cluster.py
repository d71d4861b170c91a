"""CDS Cluster → ClusterConfig: the balancer, limits, outlier detection and upstream protocol."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from google.protobuf import duration_pb2, wrappers_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream.endpoints import EndpointSet, compile_assignment
from gossamer.proxy.upstream.transport_sockets import TransportSockets, compile_transport_sockets

Cluster = cluster_pb2.Cluster
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
KINDS = {
    Cluster.EDS: "EDS",
    Cluster.STATIC: "STATIC",
    Cluster.STRICT_DNS: "STRICT_DNS",
    Cluster.ORIGINAL_DST: "ORIGINAL_DST",
}
POLICIES = {
    Cluster.LEAST_REQUEST: "LEAST_REQUEST",
    Cluster.ROUND_ROBIN: "ROUND_ROBIN",
    Cluster.RANDOM: "RANDOM",
    Cluster.RING_HASH: "RING_HASH",
    Cluster.MAGLEV: "MAGLEV",
    Cluster.CLUSTER_PROVIDED: "CLUSTER_PROVIDED",
}
DEFAULT_IDLE_TIMEOUT = 3600.0  # Envoy: upstream HTTP connections idle out after 1 h unless set


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Circuit-breaker limits (priority DEFAULT); Envoy's defaults when a field is unset."""

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3


@dataclass(frozen=True, slots=True)
class OutlierConfig:
    """Consecutive-failure ejection (success-rate and failure-percentage are not implemented)."""

    consecutive_5xx: int = 5
    enforcing_consecutive_5xx: int = 100
    consecutive_gateway_failure: int = 5
    enforcing_consecutive_gateway_failure: int = 0
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failure: int = 5
    enforcing_consecutive_local_origin_failure: int = 100
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: int = 10
    always_eject_one_host: bool = False


@dataclass(frozen=True, slots=True)
class LbOptions:
    """Per-policy knobs: least_request, ring_hash and maglev configs with Envoy's defaults."""

    choice_count: int = 2
    active_request_bias: float = 1.0
    minimum_ring_size: int = 1024
    maximum_ring_size: int = 8 * 1024 * 1024
    maglev_table_size: int = 65537


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    kind: str = "EDS"
    lb: str = "LEAST_REQUEST"
    connect_timeout: float = 5.0
    thresholds: Thresholds = Thresholds()
    outlier: OutlierConfig | None = None
    http2: bool = False
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    max_requests_per_connection: int | None = None
    panic_threshold: float = 50.0
    static: EndpointSet | None = None
    locality_weighted: bool = False  # common_lb_config.locality_weighted_lb_config is set
    lb_options: LbOptions = LbOptions()
    # upstream_bind_config: the (address, port) upstream sockets bind before connecting.
    source_address: tuple[str, int] | None = None
    # transport_socket and transport_socket_matches; None when every endpoint is plaintext.
    transport: TransportSockets | None = None


def compile_cluster(pb: cluster_pb2.Cluster) -> ClusterConfig:
    """Raises ConfigRejected for cluster types, policies or protocols we cannot serve."""
    where = f"cluster {pb.name!r}"
    if pb.HasField("cluster_type") or pb.type not in KINDS:
        raise ConfigRejected(f"{where} type: {Cluster.DiscoveryType.Name(pb.type)} not supported")
    if pb.HasField("load_balancing_policy") or pb.lb_policy not in POLICIES:
        name = Cluster.LbPolicy.Name(pb.lb_policy)
        raise ConfigRejected(f"{where} lb_policy: {name} not supported")
    if pb.HasField("lb_subset_config"):
        raise ConfigRejected(f"{where} lb_subset_config: not supported")
    transport = compile_transport_sockets(pb, where)
    if transport is not None and pb.type == Cluster.ORIGINAL_DST:
        raise ConfigRejected(f"{where} transport_socket: TLS to ORIGINAL_DST is not supported")
    http2, idle, per_connection = _protocol(pb, where)
    common = pb.common_lb_config
    panic = 50.0
    if common.HasField("healthy_panic_threshold"):
        panic = common.healthy_panic_threshold.value
    static = None
    if pb.HasField("load_assignment"):
        static = compile_assignment(pb.load_assignment)
    return ClusterConfig(
        name=pb.name,
        kind=KINDS[pb.type],
        lb=POLICIES[pb.lb_policy],
        connect_timeout=_seconds(pb.connect_timeout) if pb.HasField("connect_timeout") else 5.0,
        thresholds=_thresholds(pb.circuit_breakers),
        outlier=_outlier(pb.outlier_detection, where) if pb.HasField("outlier_detection") else None,
        http2=http2,
        idle_timeout=idle,
        max_requests_per_connection=per_connection,
        panic_threshold=panic,
        static=static,
        locality_weighted=common.HasField("locality_weighted_lb_config"),
        lb_options=_lb_options(pb, where),
        source_address=_source_address(pb, where),
        transport=transport,
    )


def _source_address(pb: cluster_pb2.Cluster, where: str) -> tuple[str, int] | None:
    """upstream_bind_config's plain TCP source address (the inbound cluster's 127.0.0.6, which
    the pod's interception rules let through); anything fancier is refused."""
    if not pb.HasField("upstream_bind_config"):
        return None
    bind = pb.upstream_bind_config
    field = f"{where} upstream_bind_config"
    if bind.HasField("freebind") or bind.HasField("local_address_selector"):
        raise ConfigRejected(f"{field}: only source_address is supported")
    if bind.socket_options or bind.extra_source_addresses or bind.additional_source_addresses:
        raise ConfigRejected(f"{field}: only source_address is supported")
    if not bind.HasField("source_address"):
        return None
    source = bind.source_address
    if source.protocol != address_pb2.SocketAddress.TCP or source.named_port:
        raise ConfigRejected(f"{field}.source_address: only TCP with port_value is supported")
    if source.resolver_name or source.network_namespace_filepath:
        raise ConfigRejected(f"{field}.source_address: only an IP address is supported")
    try:
        ipaddress.ip_address(source.address)
    except ValueError:
        raise ConfigRejected(
            f"{field}.source_address: {source.address!r} is not an IP address"
        ) from None
    return source.address, source.port_value


def _seconds(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9


def _uint(wrapper: wrappers_pb2.UInt32Value, present: bool, default: int) -> int:
    return int(wrapper.value) if present else default


def _thresholds(cb: circuit_breaker_pb2.CircuitBreakers) -> Thresholds:
    """The first DEFAULT-priority entry, as Envoy; HIGH priority is never used by our router."""
    for t in cb.thresholds:
        if t.priority != base_pb2.DEFAULT:
            continue
        d = Thresholds()
        return Thresholds(
            max_connections=_uint(
                t.max_connections, t.HasField("max_connections"), d.max_connections
            ),
            max_pending_requests=_uint(
                t.max_pending_requests,
                t.HasField("max_pending_requests"),
                d.max_pending_requests,
            ),
            max_requests=_uint(t.max_requests, t.HasField("max_requests"), d.max_requests),
            max_retries=_uint(t.max_retries, t.HasField("max_retries"), d.max_retries),
        )
    return Thresholds()


def _outlier(od: outlier_detection_pb2.OutlierDetection, where: str) -> OutlierConfig:
    d = OutlierConfig()
    for name in ("interval", "base_ejection_time"):
        if od.HasField(name) and _seconds(getattr(od, name)) <= 0:
            raise ConfigRejected(f"{where} outlier_detection.{name}: must be greater than 0")

    def num(name: str, default: int) -> int:
        return int(getattr(od, name).value) if od.HasField(name) else default

    def secs(name: str, default: float) -> float:
        return _seconds(getattr(od, name)) if od.HasField(name) else default

    base = secs("base_ejection_time", d.base_ejection_time)
    return OutlierConfig(
        consecutive_5xx=num("consecutive_5xx", d.consecutive_5xx),
        enforcing_consecutive_5xx=num("enforcing_consecutive_5xx", d.enforcing_consecutive_5xx),
        consecutive_gateway_failure=num(
            "consecutive_gateway_failure", d.consecutive_gateway_failure
        ),
        enforcing_consecutive_gateway_failure=num(
            "enforcing_consecutive_gateway_failure", d.enforcing_consecutive_gateway_failure
        ),
        split_external_local_origin_errors=od.split_external_local_origin_errors,
        consecutive_local_origin_failure=num(
            "consecutive_local_origin_failure", d.consecutive_local_origin_failure
        ),
        enforcing_consecutive_local_origin_failure=num(
            "enforcing_consecutive_local_origin_failure",
            d.enforcing_consecutive_local_origin_failure,
        ),
        interval=secs("interval", d.interval),
        base_ejection_time=base,
        # Envoy: max_ejection_time defaults to 300 s or base_ejection_time, whichever is larger.
        max_ejection_time=secs("max_ejection_time", max(d.max_ejection_time, base)),
        max_ejection_percent=min(100, num("max_ejection_percent", d.max_ejection_percent)),
        always_eject_one_host=od.always_eject_one_host.value,
    )


def _lb_options(pb: cluster_pb2.Cluster, where: str) -> LbOptions:
    d = LbOptions()
    lr = pb.least_request_lb_config
    ring = pb.ring_hash_lb_config
    table = d.maglev_table_size
    if pb.maglev_lb_config.HasField("table_size"):
        table = pb.maglev_lb_config.table_size.value
        if table < 2 or any(table % k == 0 for k in range(2, int(table**0.5) + 1)):
            raise ConfigRejected(f"{where} maglev_lb_config.table_size: {table} is not prime")
    bias = d.active_request_bias
    if lr.HasField("active_request_bias"):
        bias = lr.active_request_bias.default_value
        if bias < 0:
            raise ConfigRejected(f"{where} least_request_lb_config.active_request_bias: < 0")
    options = LbOptions(
        choice_count=_uint(lr.choice_count, lr.HasField("choice_count"), d.choice_count),
        active_request_bias=bias,
        minimum_ring_size=int(
            _uint(ring.minimum_ring_size, ring.HasField("minimum_ring_size"), d.minimum_ring_size)
        ),
        maximum_ring_size=int(
            _uint(ring.maximum_ring_size, ring.HasField("maximum_ring_size"), d.maximum_ring_size)
        ),
        maglev_table_size=table,
    )
    if options.choice_count < 2:
        raise ConfigRejected(f"{where} least_request_lb_config.choice_count: must be at least 2")
    if options.minimum_ring_size > options.maximum_ring_size:
        raise ConfigRejected(f"{where} ring_hash_lb_config: minimum_ring_size > maximum")
    return options


def _protocol(pb: cluster_pb2.Cluster, where: str) -> tuple[bool, float | None, int | None]:
    """(http2, idle_timeout, max_requests_per_connection) from HttpProtocolOptions, falling back
    to the deprecated Cluster-level fields."""
    http2 = pb.HasField("http2_protocol_options")
    common = pb.common_http_protocol_options
    per_connection: int | None = pb.max_requests_per_connection.value or None
    packed = pb.typed_extension_protocol_options.get(HTTP_OPTIONS)
    if packed is not None:
        options = hpo.HttpProtocolOptions()
        if not packed.Unpack(options):
            raise ConfigRejected(f"{where} typed_extension_protocol_options: not {HTTP_OPTIONS}")
        kind = options.WhichOneof("upstream_protocol_options")
        if kind not in (None, "explicit_http_config"):
            raise ConfigRejected(f"{where} {HTTP_OPTIONS}: {kind} not supported")
        explicit = options.explicit_http_config.WhichOneof("protocol_config")
        if explicit == "http3_protocol_options":
            raise ConfigRejected(f"{where} {HTTP_OPTIONS}: HTTP/3 upstreams not supported")
        http2 = explicit == "http2_protocol_options"
        common = options.common_http_protocol_options
    idle: float | None = DEFAULT_IDLE_TIMEOUT
    if common.HasField("idle_timeout"):
        idle = _seconds(common.idle_timeout) or None  # explicit 0 disables the idle timeout
    if common.HasField("max_requests_per_connection"):
        per_connection = common.max_requests_per_connection.value or None
    return http2, idle, per_connection
