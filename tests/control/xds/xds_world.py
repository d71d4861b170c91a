"""Hand-built xDS resources for tests: one service split across two EDS backends."""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message

from gossamer.control.xds import ProxyNode, Snapshot

HOST = "svc.default.svc.cluster.local"
ROUTE_NAME = "svc-route"
HTTP2_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _packed(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def hcm(stat_prefix: str) -> hcm_pb2.HttpConnectionManager:
    """HCM taking its routes from RDS over ADS, router filter last (gRPC NACKs anything else)."""
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=ROUTE_NAME),
        http_filters=[
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=_packed(router_pb2.Router())
            )
        ],
    )


def api_listener(port: int) -> listener_pb2.Listener:
    """What a proxyless client asks for: `host:port`, an API listener."""
    return listener_pb2.Listener(
        name=f"{HOST}:{port}",
        api_listener=api_listener_pb2.ApiListener(api_listener=_packed(hcm("svc"))),
    )


def socket_listener(port: int) -> listener_pb2.Listener:
    """What Envoy gets on its wildcard LDS: a real socket on 127.0.0.1:port."""
    return listener_pb2.Listener(
        name=f"svc-{port}",
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
        ),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=_packed(hcm("svc_envoy")),
                    )
                ]
            )
        ],
    )


def route(domains: list[str], weights: dict[str, int]) -> route_pb2.RouteConfiguration:
    clusters = [
        route_components_pb2.WeightedCluster.ClusterWeight(
            name=name, weight=wrappers_pb2.UInt32Value(value=weight)
        )
        for name, weight in weights.items()
    ]
    return route_pb2.RouteConfiguration(
        name=ROUTE_NAME,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name="svc",
                domains=domains,
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix="/"),
                        route=route_components_pb2.RouteAction(
                            weighted_clusters=route_components_pb2.WeightedCluster(
                                clusters=clusters
                            )
                        ),
                    )
                ],
            )
        ],
    )


def cluster(name: str) -> cluster_pb2.Cluster:
    """An EDS cluster speaking HTTP/2 upstream (gRPC backends)."""
    h2 = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()),
        connect_timeout=duration_pb2.Duration(seconds=1),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
        typed_extension_protocol_options={HTTP2_OPTIONS: _packed(h2)},
    )


def endpoints(name: str, port: int) -> endpoint_pb2.ClusterLoadAssignment:
    """One locality (with a weight: gRPC drops localities without one) and one endpoint."""
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                locality=base_pb2.Locality(region="local", zone="a"),
                load_balancing_weight=wrappers_pb2.UInt32Value(value=1),
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(
                            address=address_pb2.Address(
                                socket_address=address_pb2.SocketAddress(
                                    address="127.0.0.1", port_value=port
                                )
                            )
                        )
                    )
                ],
            )
        ],
    )


def world(
    backends: dict[str, int],
    weights: dict[str, int],
    *,
    svc_port: int = 8080,
    envoy_port: int | None = None,
    api: bool = True,
    revision: int = 1,
) -> Snapshot:
    """The service `HOST:svc_port` split by `weights` over `backends` (cluster name → port).

    `api` adds the proxyless client's API listener; `envoy_port` a socket listener for Envoy
    (Envoy's wildcard LDS must not see API listeners).
    """
    domains = [f"{HOST}:{svc_port}", HOST]
    messages: list[Message] = [route([*domains, "*"], weights)]
    if api:
        messages.append(api_listener(svc_port))
    if envoy_port is not None:
        messages.append(socket_listener(envoy_port))
    for name, port in backends.items():
        messages += [cluster(name), endpoints(name, port)]
    return Snapshot.build(messages, revision=revision)


@dataclass
class StaticSource:
    """A SnapshotSource serving one Snapshot to every proxy; tests swap `current`."""

    current: Snapshot
    calls: int = 0
    seen: list[ProxyNode] = field(default_factory=list)

    def snapshot(self, node: ProxyNode) -> Snapshot:
        self.calls += 1
        if node not in self.seen:
            self.seen.append(node)
        return self.current
