"""Hand-built xDS protos for proxy tests, compiled into a ProxyConfig the way xDS would."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2, duration_pb2

from gossamer.control.translate import listeners
from gossamer.control.translate.clusters import socket_address
from gossamer.control.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from gossamer.proxy.config.snapshot import ProxyConfig, SnapshotBuilder
from tests.ports import free_port

Cluster = cluster_pb2.Cluster


def seconds(value: float) -> duration_pb2.Duration:
    """A Duration of `value` seconds, to the millisecond (route timeouts, fault delays)."""
    out = duration_pb2.Duration()
    out.FromMilliseconds(int(value * 1000))
    return out


def static_cluster(
    name: str, *ports: int, connect_timeout: float = 1.0, host: str = "127.0.0.1"
) -> cluster_pb2.Cluster:
    out = Cluster(name=name, type=Cluster.STATIC)
    out.connect_timeout.FromMilliseconds(int(connect_timeout * 1000))
    out.load_assignment.cluster_name = name
    group = out.load_assignment.endpoints.add()
    for port in ports:
        lb = group.lb_endpoints.add()
        lb.endpoint.address.CopyFrom(socket_address(host, port))
    return out


def original_dst_cluster(name: str) -> cluster_pb2.Cluster:
    out = Cluster(name=name, type=Cluster.ORIGINAL_DST, lb_policy=Cluster.CLUSTER_PROVIDED)
    out.connect_timeout.FromMilliseconds(1000)
    return out


def route(cluster: str, prefix: str = "/", **action: Any) -> rc.Route:
    out = rc.Route(match=rc.RouteMatch(prefix=prefix))
    out.route.cluster = cluster
    for key, value in action.items():
        getattr(out.route, key).CopyFrom(value)
    return out


def routes(name: str, *vhosts: tuple[list[str], list[rc.Route]]) -> route_pb2.RouteConfiguration:
    config = route_pb2.RouteConfiguration(name=name)
    for i, (domains, entries) in enumerate(vhosts):
        config.virtual_hosts.append(rc.VirtualHost(name=f"vh{i}", domains=domains, routes=entries))
    return config


def http_listener(
    name: str, port: int, config: route_pb2.RouteConfiguration
) -> listener_pb2.Listener:
    return listeners.socket_listener(
        name, "127.0.0.1", port, [listeners.inline_routes_filter(name, config)], bind=True
    )


def tcp_listener(name: str, port: int, cluster: str) -> listener_pb2.Listener:
    return listeners.socket_listener(
        name, "127.0.0.1", port, [listeners.tcp_proxy_filter(name, [(cluster, 1)])], bind=True
    )


def _packed(pb: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(pb)
    return out


def proxy_config(*resources: Any, builder: SnapshotBuilder | None = None) -> ProxyConfig:
    """Compile protos as one xDS response per type (CDS, EDS, LDS, RDS order)."""
    builder = builder or SnapshotBuilder()
    by_type: dict[str, list[Any]] = {CLUSTER: [], ENDPOINT: [], LISTENER: [], ROUTE: []}
    for pb in resources:
        if isinstance(pb, cluster_pb2.Cluster):
            by_type[CLUSTER].append(pb)
        elif isinstance(pb, listener_pb2.Listener):
            by_type[LISTENER].append(pb)
        elif isinstance(pb, route_pb2.RouteConfiguration):
            by_type[ROUTE].append(pb)
        else:
            by_type[ENDPOINT].append(pb)
    config = builder.config
    for type_url, pbs in by_type.items():
        if pbs or type_url in (CLUSTER, LISTENER):
            config = builder.apply(type_url, "1", [_packed(pb) for pb in pbs])
    return config


__all__ = ["ec", "free_port", "rc"]
