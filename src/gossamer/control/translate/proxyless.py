"""Proxyless gRPC: an API listener and route configuration per `host:port`, and the clusters."""

from __future__ import annotations

from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from gossamer.control.translate import names
from gossamer.control.translate.backends import outbound_backends
from gossamer.control.translate.clusters import ads
from gossamer.control.translate.destinations import DestinationRules
from gossamer.control.translate.mesh import service_routes
from gossamer.control.translate.policies import FAULT_FILTER, ROUTER_FILTER, packed
from gossamer.control.translate.routes import RouteContext
from gossamer.control.translate.scope import (
    MESH_GATEWAYS,
    MatchScope,
    mesh_virtual_services,
    visible_services,
)
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.gatewayapi.httproute import HTTPRoute as GatewayHTTPRoute


def api_hcm(route_name: str) -> hcm_pb2.HttpConnectionManager:
    """RDS over ADS; the fault filter, then the router last (gRPC NACKs anything else)."""
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=route_name,
        rds=hcm_pb2.Rds(config_source=ads(), route_config_name=route_name),
        http_filters=[
            hcm_pb2.HttpFilter(name=FAULT_FILTER, typed_config=packed(fault_pb2.HTTPFault())),
            hcm_pb2.HttpFilter(name=ROUTER_FILTER, typed_config=packed(router_pb2.Router())),
        ],
    )


def proxyless_resources(world: World, node: ProxyNode) -> list[Message]:
    rules = DestinationRules(world, node.namespace, node.labels)
    services = [s for s in visible_services(world, node.namespace) if s.resolution != "NONE"]
    vss = mesh_virtual_services(world, node.namespace)
    mesh_routes = world.of(GatewayHTTPRoute)
    out: list[Message] = []
    for svc in services:
        for port in svc.ports:
            name = names.api_listener(svc.hostname, port.number)
            listener = listener_pb2.Listener(
                name=name,
                api_listener=api_listener_pb2.ApiListener(api_listener=packed(api_hcm(name))),
            )
            scope = MatchScope(node.namespace, node.labels, MESH_GATEWAYS, port.number)
            ctx = RouteContext(world, scope, rules, proxyless=True)
            vhost = rc.VirtualHost(
                name=name,
                domains=[name, svc.hostname],
                routes=service_routes(ctx, svc, port, vss, mesh_routes),
            )
            out.append(listener)
            out.append(route_pb2.RouteConfiguration(name=name, virtual_hosts=[vhost]))
    # Plaintext clusters, whatever the DestinationRule's `tls` or auto mTLS says: grpcio's xDS
    # security needs certificate providers in its bootstrap, which the mesh does not give
    # proxyless clients yet (`clusters.outbound` skips client TLS for them).
    backends = outbound_backends(world, services, rules, proxyless=True)
    out.extend(backends.clusters)
    out.extend(backends.assignments)
    return out
