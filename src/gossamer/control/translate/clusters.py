"""Clusters (Envoy's backends): outbound per service port and subset, inbound, fixed ones."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from google.protobuf import wrappers_pb2

from gossamer.control.translate import client_tls, names
from gossamer.control.translate.policies import duration, packed
from gossamer.control.translate.policy import (
    DEFAULT_CONNECT_TIMEOUT,
    ClusterPolicy,
    ConnectionPool,
    LoadBalancer,
    OutlierDetection,
)
from gossamer.control.world import MeshService, ServicePort

Cluster = cluster_pb2.Cluster
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
LOCALHOST = "127.0.0.1"
# Istio's inbound passthrough source: connections from it to the pod IP are exempt from the
# inbound redirect (runtime/pods/interception.py has the matching rule).
INBOUND_SOURCE = "127.0.0.6"
INBOUND_SOURCE_V6 = "::6"
H2_PROTOCOLS = frozenset({"HTTP2", "GRPC", "GRPC-WEB"})
# Which balancer a proxyless gRPC client gets. grpcio 1.85 implements ROUND_ROBIN and RING_HASH
# from the `lb_policy` enum and NACKs the rest ("LB policy is not supported": LEAST_REQUEST,
# RANDOM, MAGLEV; checked with the real client by tests/e2e/test_proxyless_grpc.py). Istio's
# default LEAST_REQUEST therefore becomes ROUND_ROBIN: with one channel per client and unary
# calls of similar cost, least-request and round-robin spread load alike, and it is what Istio's
# own gRPC generator sends. RANDOM is also a uniform spread; MAGLEV keeps consistent hashing
# as RING_HASH (same hash policy on the route, different table).
PROXYLESS_LB = {
    Cluster.LEAST_REQUEST: Cluster.ROUND_ROBIN,
    Cluster.ROUND_ROBIN: Cluster.ROUND_ROBIN,
    Cluster.RANDOM: Cluster.ROUND_ROBIN,
    Cluster.RING_HASH: Cluster.RING_HASH,
    Cluster.MAGLEV: Cluster.RING_HASH,
}


def ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def socket_address(address: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port)
    )


def lb_policy(lb: LoadBalancer) -> int:
    policy: int
    if lb.hash is not None:
        policy = Cluster.MAGLEV if lb.maglev_table_size else Cluster.RING_HASH
    else:
        policy = {
            "ROUND_ROBIN": Cluster.ROUND_ROBIN,
            "RANDOM": Cluster.RANDOM,
            "PASSTHROUGH": Cluster.CLUSTER_PROVIDED,
        }.get(lb.simple, Cluster.LEAST_REQUEST)
    return policy


def outbound(
    name: str,
    service: MeshService,
    port: ServicePort,
    policy: ClusterPolicy,
    *,
    proxyless: bool = False,
    inline_endpoints: endpoint_pb2.ClusterLoadAssignment | None = None,
    peer_uris: Sequence[str] = (),
) -> cluster_pb2.Cluster:
    """An outbound cluster: EDS over ADS for registry services, STRICT_DNS for DNS-resolved
    ServiceEntries (endpoints inline), ORIGINAL_DST for resolution NONE. `peer_uris`: the
    SPIFFE ids mesh mTLS accepts from its endpoints (`client_tls`)."""
    out = Cluster(name=name, connect_timeout=duration(policy.pool.connect_timeout))
    if service.resolution == "NONE":
        out.type = Cluster.ORIGINAL_DST
        out.lb_policy = Cluster.CLUSTER_PROVIDED
    elif service.resolution == "DNS" and not proxyless:
        out.type = Cluster.STRICT_DNS
        out.dns_lookup_family = Cluster.V4_ONLY
        if inline_endpoints is not None:
            out.load_assignment.CopyFrom(inline_endpoints)
    else:
        out.type = Cluster.EDS
        out.eds_cluster_config.eds_config.CopyFrom(ads())
    if out.type != Cluster.ORIGINAL_DST:
        out.lb_policy = lb_policy(policy.lb)
        if proxyless:
            out.lb_policy = PROXYLESS_LB.get(out.lb_policy, Cluster.ROUND_ROBIN)
        if out.lb_policy == Cluster.MAGLEV:
            out.maglev_lb_config.table_size.value = policy.lb.maglev_table_size
        elif out.lb_policy == Cluster.RING_HASH and policy.lb.minimum_ring_size:
            out.ring_hash_lb_config.minimum_ring_size.value = policy.lb.minimum_ring_size
    out.circuit_breakers.CopyFrom(circuit_breakers(policy.pool))
    if policy.outlier is not None:
        out.outlier_detection.CopyFrom(outlier_detection(policy.outlier))
        # Istio: minHealthPercent (default 0) is the panic threshold; 0 disables panic mode.
        out.common_lb_config.healthy_panic_threshold.value = policy.outlier.min_health_percent
    if port.is_http and not proxyless:
        out.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(
            packed(http_options(port, policy.pool))
        )
    if proxyless:
        # Proxyless gRPC clients get plaintext: grpcio's xDS security needs certificate
        # providers in its bootstrap, which the mesh does not hand out yet.
        return out
    return transport_socket(out, service, port, policy, peer_uris)


def transport_socket(
    cluster: cluster_pb2.Cluster,
    service: MeshService,
    port: ServicePort,
    policy: ClusterPolicy,
    peer_uris: Sequence[str] = (),
) -> cluster_pb2.Cluster:
    """Client TLS from the DestinationRule's `tls`, else auto mTLS (`client_tls`)."""
    parsed = names.parse_outbound(cluster.name)
    destination = client_tls.Destination(
        hostname=service.hostname,
        port=port.number,
        subset=parsed[1] if parsed else "",
        http=port.is_http,
        h2=port.protocol in H2_PROTOCOLS or policy.pool.h2_upgrade,
        peer_uris=tuple(peer_uris),
        auto_mtls=cluster.type != Cluster.ORIGINAL_DST and not service.external,
    )
    client_tls.apply(cluster, policy.tls, destination)
    return cluster


def circuit_breakers(pool: ConnectionPool) -> circuit_breaker_pb2.CircuitBreakers:
    """Istio's thresholds: effectively unlimited unless set (Envoy's own are 1024 and 3 retries)."""
    return circuit_breaker_pb2.CircuitBreakers(
        thresholds=[
            circuit_breaker_pb2.CircuitBreakers.Thresholds(
                max_connections=wrappers_pb2.UInt32Value(value=pool.max_connections),
                max_pending_requests=wrappers_pb2.UInt32Value(value=pool.max_pending_requests),
                max_requests=wrappers_pb2.UInt32Value(value=pool.max_requests),
                max_retries=wrappers_pb2.UInt32Value(value=pool.max_retries),
                track_remaining=True,
            )
        ]
    )


def http_options(port: ServicePort, pool: ConnectionPool) -> hpo.HttpProtocolOptions:
    """HTTP/2 upstream for gRPC/HTTP2 ports (or h2UpgradePolicy UPGRADE), HTTP/1.1 otherwise."""
    out = hpo.HttpProtocolOptions()
    common = out.common_http_protocol_options
    if pool.http_idle_timeout is not None:
        common.idle_timeout.CopyFrom(duration(pool.http_idle_timeout))
    if pool.max_requests_per_connection:
        common.max_requests_per_connection.value = pool.max_requests_per_connection
    if pool.max_connection_duration is not None:
        common.max_connection_duration.CopyFrom(duration(pool.max_connection_duration))
    if port.protocol in H2_PROTOCOLS or pool.h2_upgrade:
        out.explicit_http_config.http2_protocol_options.CopyFrom(
            protocol_pb2.Http2ProtocolOptions()
        )
    else:
        out.explicit_http_config.http_protocol_options.CopyFrom(protocol_pb2.Http1ProtocolOptions())
    return out


def outlier_detection(od: OutlierDetection) -> outlier_detection_pb2.OutlierDetection:
    """Istio's translation: success-rate ejection off; gateway errors only when set."""
    out = outlier_detection_pb2.OutlierDetection(
        consecutive_5xx=wrappers_pb2.UInt32Value(value=od.consecutive_5xx),
        enforcing_consecutive_5xx=wrappers_pb2.UInt32Value(value=100 if od.consecutive_5xx else 0),
        interval=duration(od.interval),
        base_ejection_time=duration(od.base_ejection_time),
        max_ejection_percent=wrappers_pb2.UInt32Value(value=od.max_ejection_percent),
        enforcing_success_rate=wrappers_pb2.UInt32Value(value=0),
        split_external_local_origin_errors=od.split_external_local_origin_errors,
    )
    if od.consecutive_gateway_errors:
        out.consecutive_gateway_failure.value = od.consecutive_gateway_errors
        out.enforcing_consecutive_gateway_failure.value = 100
    if od.split_external_local_origin_errors:
        out.consecutive_local_origin_failure.value = od.consecutive_local_origin_failures
    return out


def passthrough() -> cluster_pb2.Cluster:
    """Where unknown outbound traffic goes under ALLOW_ANY: its original destination."""
    return _original_dst(names.PASSTHROUGH)


def inbound_passthrough() -> cluster_pb2.Cluster:
    return _original_dst(names.INBOUND_PASSTHROUGH)


def _original_dst(name: str) -> cluster_pb2.Cluster:
    out = Cluster(
        name=name,
        type=Cluster.ORIGINAL_DST,
        lb_policy=Cluster.CLUSTER_PROVIDED,
        connect_timeout=duration(DEFAULT_CONNECT_TIMEOUT),
    )
    out.circuit_breakers.CopyFrom(circuit_breakers(ConnectionPool()))
    return out


def blackhole() -> cluster_pb2.Cluster:
    """A cluster with no endpoints: connections to it are dropped (REGISTRY_ONLY)."""
    out = Cluster(
        name=names.BLACKHOLE, type=Cluster.STATIC, connect_timeout=duration(DEFAULT_CONNECT_TIMEOUT)
    )
    out.load_assignment.cluster_name = names.BLACKHOLE
    return out


def inbound(
    port: int, target: int, service_port: ServicePort, proxy_ip: str = ""
) -> cluster_pb2.Cluster:
    """`inbound|<port>||`: the local application at <proxy IP>:<target>, as Istio >= 1.10.

    The app is reached on the pod's own IP (an app bound to 127.0.0.1 only is unreachable, as in
    Istio) from source 127.0.0.6, which the interception rules let through instead of sending it
    back to 15006. An unknown proxy IP falls back to 127.0.0.1."""
    name = names.inbound_cluster(port)
    address = proxy_ip or LOCALHOST
    out = Cluster(
        name=name,
        type=Cluster.STATIC,
        lb_policy=Cluster.ROUND_ROBIN,
        connect_timeout=duration(DEFAULT_CONNECT_TIMEOUT),
    )
    out.load_assignment.cluster_name = name
    lle = out.load_assignment.endpoints.add()
    lle.lb_endpoints.append(
        endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(address=socket_address(address, target))
        )
    )
    source = INBOUND_SOURCE_V6 if ":" in address else INBOUND_SOURCE
    out.upstream_bind_config.source_address.CopyFrom(
        address_pb2.SocketAddress(address=source, port_value=0)
    )
    out.circuit_breakers.CopyFrom(circuit_breakers(ConnectionPool()))
    if service_port.is_http:
        out.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(
            packed(http_options(service_port, ConnectionPool()))
        )
    return out
