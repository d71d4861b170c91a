"""compile_cluster over real translator output, Envoy defaults, and what is refused."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream import ClusterConfig, OutlierConfig, Thresholds, compile_cluster
from gossamer.proxy.upstream.cluster import HTTP_OPTIONS
from tests.proxy.upstream.translated import GRPC, HTTP, translated

UNLIMITED = 2**32 - 1


def test_default_outbound_cluster() -> None:
    config = compile_cluster(translated().clusters[HTTP])
    assert config.name == HTTP
    assert (config.kind, config.lb) == ("EDS", "LEAST_REQUEST")
    assert config.connect_timeout == 10.0
    assert config.thresholds == Thresholds(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
    assert config.outlier is None
    assert config.panic_threshold == 50.0  # no outlierDetection: Istio leaves Envoy's default
    assert (config.http2, config.idle_timeout, config.max_requests_per_connection) == (
        False,
        3600.0,
        None,
    )
    assert config.static is None and not config.locality_weighted
    assert config.lb_options.choice_count == 2


def test_grpc_port_gets_an_http2_upstream() -> None:
    assert compile_cluster(translated().clusters[GRPC]).http2


def test_destination_rule_pool_outlier_and_panic_threshold() -> None:
    sim = translated(
        "    connectionPool:\n"
        "      tcp: {maxConnections: 7, connectTimeout: 2s}\n"
        "      http: {http1MaxPendingRequests: 3, http2MaxRequests: 11, maxRetries: 2,"
        " idleTimeout: 15s, maxRequestsPerConnection: 9}\n"
        "    outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2,"
        " interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 40, minHealthPercent: 25}\n"
    )
    config = compile_cluster(sim.clusters[HTTP])
    assert config.connect_timeout == 2.0
    assert config.thresholds == Thresholds(7, 3, 11, 2)
    assert (config.idle_timeout, config.max_requests_per_connection) == (15.0, 9)
    assert config.outlier == OutlierConfig(
        consecutive_5xx=3,
        consecutive_gateway_failure=2,
        enforcing_consecutive_gateway_failure=100,
        interval=1.0,
        base_ejection_time=5.0,
        max_ejection_percent=40,
    )
    assert config.panic_threshold == 25.0


def test_outlier_detection_defaults_give_a_disabled_panic_threshold() -> None:
    config = compile_cluster(translated("    outlierDetection: {}\n").clusters[HTTP])
    assert config.outlier is not None
    assert config.outlier.consecutive_5xx == 5
    assert config.outlier.enforcing_consecutive_gateway_failure == 0
    assert config.outlier.max_ejection_time == 300.0
    assert config.panic_threshold == 0.0


@pytest.mark.parametrize(
    ("policy", "lb"),
    [
        ("    loadBalancer: {simple: ROUND_ROBIN}\n", "ROUND_ROBIN"),
        ("    loadBalancer: {simple: RANDOM}\n", "RANDOM"),
        ("    loadBalancer: {simple: LEAST_REQUEST}\n", "LEAST_REQUEST"),
        ("    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n", "RING_HASH"),
        (
            "    loadBalancer:\n"
            "      consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 1009}}\n",
            "MAGLEV",
        ),
    ],
)
def test_load_balancer_policies(policy: str, lb: str) -> None:
    config = compile_cluster(translated(policy).clusters[HTTP])
    assert config.lb == lb
    if lb == "MAGLEV":
        assert config.lb_options.maglev_table_size == 1009


def test_ring_size_from_destination_rule() -> None:
    sim = translated(
        "    loadBalancer: {consistentHash: {httpHeaderName: x-user, minimumRingSize: 2048}}\n"
    )
    assert compile_cluster(sim.clusters[HTTP]).lb_options.minimum_ring_size == 2048


def test_fixed_clusters() -> None:
    sim = translated(as_web=True)
    inbound = compile_cluster(sim.clusters["inbound|80||"])
    assert (inbound.kind, inbound.lb) == ("STATIC", "ROUND_ROBIN")
    assert inbound.static is not None
    # The pod's own IP, from Istio's inbound passthrough source (as Istio >= 1.10).
    assert [(e.host, e.port) for e in inbound.static.endpoints] == [("10.0.0.5", 8080)]
    assert inbound.source_address == ("127.0.0.6", 0)
    passthrough = compile_cluster(sim.clusters["PassthroughCluster"])
    assert (passthrough.kind, passthrough.lb) == ("ORIGINAL_DST", "CLUSTER_PROVIDED")
    blackhole = compile_cluster(sim.clusters["BlackHoleCluster"])
    assert blackhole.static is not None and blackhole.static.endpoints == ()


def test_envoy_defaults_for_a_bare_cluster() -> None:
    config = compile_cluster(cluster_pb2.Cluster(name="bare", type=cluster_pb2.Cluster.STATIC))
    assert config == ClusterConfig(name="bare", kind="STATIC", lb="ROUND_ROBIN")
    assert config.thresholds == Thresholds(1024, 1024, 1024, 3)
    assert config.connect_timeout == 5.0
    assert config.source_address is None  # the kernel picks the source


def test_upstream_bind_config_beyond_a_source_address_is_refused() -> None:
    inbound = translated(as_web=True).clusters["inbound|80||"]

    def variant() -> cluster_pb2.Cluster:
        out = cluster_pb2.Cluster()
        out.CopyFrom(inbound)
        return out

    freebind = variant()
    freebind.upstream_bind_config.freebind.value = True
    assert "upstream_bind_config: only source_address" in rejected(freebind)
    named = variant()
    named.upstream_bind_config.source_address.named_port = "http"
    assert "source_address: only TCP" in rejected(named)
    udp = variant()
    udp.upstream_bind_config.source_address.protocol = address_pb2.SocketAddress.UDP
    assert "source_address: only TCP" in rejected(udp)
    name = variant()
    name.upstream_bind_config.source_address.address = "localhost"
    assert "'localhost' is not an IP address" in rejected(name)


def test_explicit_zero_idle_timeout_disables_it() -> None:
    pb = translated().clusters[HTTP]
    options = hpo.HttpProtocolOptions()
    pb.typed_extension_protocol_options[HTTP_OPTIONS].Unpack(options)
    options.common_http_protocol_options.idle_timeout.seconds = 0
    pb.typed_extension_protocol_options[HTTP_OPTIONS].Pack(options)
    assert compile_cluster(pb).idle_timeout is None


def test_locality_weighted_lb_config_turns_on_locality_weights() -> None:
    pb = translated().clusters[HTTP]
    pb.common_lb_config.locality_weighted_lb_config.SetInParent()
    assert compile_cluster(pb).locality_weighted


def rejected(pb: cluster_pb2.Cluster) -> str:
    with pytest.raises(ConfigRejected) as info:
        compile_cluster(pb)
    return str(info.value)


def test_refuses_what_it_cannot_serve() -> None:
    base = translated().clusters[HTTP]

    def variant() -> cluster_pb2.Cluster:
        out = cluster_pb2.Cluster()
        out.CopyFrom(base)
        return out

    logical = variant()
    logical.type = cluster_pb2.Cluster.LOGICAL_DNS
    assert f"cluster '{HTTP}' type: LOGICAL_DNS" in rejected(logical)
    policy = variant()
    policy.lb_policy = cluster_pb2.Cluster.LOAD_BALANCING_POLICY_CONFIG
    assert "lb_policy: LOAD_BALANCING_POLICY_CONFIG" in rejected(policy)
    tls = variant()
    tls.transport_socket.CopyFrom(base_pb2.TransportSocket(name="envoy.transport_sockets.alts"))
    assert "transport_socket" in rejected(tls)
    h3 = variant()
    options = hpo.HttpProtocolOptions()
    options.explicit_http_config.http3_protocol_options.CopyFrom(
        protocol_pb2.Http3ProtocolOptions()
    )
    h3.typed_extension_protocol_options[HTTP_OPTIONS].Pack(options)
    assert "HTTP/3" in rejected(h3)
    auto = variant()
    options = hpo.HttpProtocolOptions()
    options.auto_config.SetInParent()
    auto.typed_extension_protocol_options[HTTP_OPTIONS].Pack(options)
    assert "auto_config" in rejected(auto)
    maglev = variant()
    maglev.lb_policy = cluster_pb2.Cluster.MAGLEV
    maglev.maglev_lb_config.table_size.value = 1000
    assert "not prime" in rejected(maglev)
    sweeps = variant()
    sweeps.outlier_detection.interval.seconds = 0
    assert "outlier_detection.interval: must be greater than 0" in rejected(sweeps)
    choices = variant()
    choices.least_request_lb_config.choice_count.value = 1
    assert "choice_count" in rejected(choices)
