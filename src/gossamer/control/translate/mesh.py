"""Routes for a service port as mesh clients (sidecars, proxyless gRPC) see it."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.route.v3 import route_components_pb2 as rc

from gossamer.control.translate import gatewayapi
from gossamer.control.translate.routes import (
    RouteContext,
    default_route,
    virtual_service_routes,
)
from gossamer.control.translate.scope import virtual_service_for
from gossamer.control.world import MeshService, ServicePort
from gossamer.spec.gatewayapi.httproute import HTTPRoute as GatewayHTTPRoute
from gossamer.spec.networking.virtualservice import VirtualService


def service_routes(
    ctx: RouteContext,
    service: MeshService,
    port: ServicePort,
    virtual_services: Sequence[VirtualService],
    mesh_routes: Sequence[GatewayHTTPRoute],
) -> list[rc.Route]:
    """The VirtualService claiming the host if there is one; else the Gateway API routes whose
    parent is this Service (GAMMA); else Istio's default route to the whole service."""
    vs = virtual_service_for(service.hostname, virtual_services)
    if vs is not None:
        return virtual_service_routes(ctx, [vs])
    attached = gatewayapi.routes_for_service(mesh_routes, service, port.number)
    if attached:
        return gatewayapi.http_routes(ctx, attached)
    return [default_route(ctx, service.hostname, port.number)]
