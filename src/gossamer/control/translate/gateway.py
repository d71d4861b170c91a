"""Ingress gateways (router nodes): listeners and routes of the Istio Gateways and Gateway API
Gateways this proxy serves, with the VirtualServices and HTTPRoutes bound to them."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf.message import Message

from gossamer.control.translate import client_tls, gatewayapi, listeners, names
from gossamer.control.translate.authn import ProxyJwt
from gossamer.control.translate.authz import ProxyRbac
from gossamer.control.translate.backends import outbound_backends
from gossamer.control.translate.destinations import DestinationRules
from gossamer.control.translate.peer_authn import holds_identity
from gossamer.control.translate.routes import RouteContext, virtual_service_routes
from gossamer.control.translate.scope import (
    MatchScope,
    exported_to,
    gateway_ref,
    visible_services,
    vs_gateways,
    vs_hosts,
)
from gossamer.control.world import World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.gatewayapi.gateway import GROUP
from gossamer.spec.gatewayapi.gateway import Gateway as ApiGateway
from gossamer.spec.gatewayapi.httproute import HTTPRoute as GatewayHTTPRoute
from gossamer.spec.networking.common import host_matches, host_within
from gossamer.spec.networking.gateway import Gateway, Server
from gossamer.spec.networking.virtualservice import VirtualService

GATEWAY_NAME_LABELS = ("gateway.networking.k8s.io/gateway-name", "istio.io/gateway-name")


def gateway_resources(world: World, node: ProxyNode) -> list[Message]:
    rules = DestinationRules(world, node.namespace, node.labels)
    configs: dict[int, route_pb2.RouteConfiguration] = {}
    used: dict[int, set[str]] = {}

    def vhost(port: int, host: str, routes: list[object], *, tls_redirect: bool = False) -> None:
        config = configs.setdefault(
            port, route_pb2.RouteConfiguration(name=names.gateway_route(port))
        )
        seen = used.setdefault(port, set())
        wanted = ["*"] if host == "*" else [host, f"{host}:{port}"]
        wanted = [d for d in wanted if d not in seen]
        if not wanted:
            return
        seen.update(wanted)
        vh = rc.VirtualHost(name=names.vhost(host, port), domains=wanted, routes=routes)
        if tls_redirect:
            vh.require_tls = rc.VirtualHost.ALL
        config.virtual_hosts.append(vh)

    for port, servers in _istio_servers(world, node).items():
        gateways = frozenset(ref for ref, _, _ in servers)
        scope = MatchScope(node.namespace, node.labels, gateways, port)
        ctx = RouteContext(world, scope, rules)
        for host, bound in _bound_hosts(world, servers).items():
            redirect = any(s.https_redirect for _, _, s in servers)
            vhost(port, host, virtual_service_routes(ctx, bound), tls_redirect=redirect)
        configs.setdefault(port, route_pb2.RouteConfiguration(name=names.gateway_route(port)))
    for port, by_host in _api_routes(world, node).items():
        scope = MatchScope(node.namespace, node.labels, frozenset(), port)
        ctx = RouteContext(world, scope, rules)
        for host, routes in by_host.items():
            vhost(port, host, gatewayapi.http_routes(ctx, routes))
        configs.setdefault(port, route_pb2.RouteConfiguration(name=names.gateway_route(port)))
    out: list[Message] = []
    guard = ProxyRbac.of(world, node)  # AuthorizationPolicies selecting the gateway's labels
    authn = [*ProxyJwt.of(world, node).http_filters, *guard.http]  # JWT first, as in Istio
    for port, config in sorted(configs.items()):
        out.append(config)
        name = names.socket_listener("0.0.0.0", port)
        hcm = listeners.rds_filter(config.name, authn)
        out.append(listeners.socket_listener(name, "0.0.0.0", port, [hcm], bind=True))
    backends = outbound_backends(world, visible_services(world, node.namespace), rules)
    clusters = client_tls.for_proxy(backends.clusters, holds_identity(node))
    return out + clusters + backends.assignments


ServerRef = tuple[str, Gateway, Server]


def _istio_servers(world: World, node: ProxyNode) -> dict[int, list[ServerRef]]:
    """HTTP servers of the Istio Gateways whose selector matches this proxy, by port. TLS
    servers (termination, passthrough) come with the TLS issue."""
    out: dict[int, list[ServerRef]] = {}
    for gw in world.of(Gateway):
        if not gw.spec.selects(node.labels):
            continue
        for server in gw.spec.servers:
            if (server.protocol.is_http and server.tls is None) or server.https_redirect:
                out.setdefault(server.port.number, []).append(
                    (gateway_ref(gw.namespace, gw.name), gw, server)
                )
    return out


def _bound_hosts(world: World, servers: list[ServerRef]) -> dict[str, list[VirtualService]]:
    """VirtualService host → the VirtualServices bound to one of these servers for it, oldest
    first (merged, §0). A VS binds when it names the gateway, is exported to the gateway's
    namespace, and the host falls within a server host (§3)."""
    out: dict[str, list[VirtualService]] = {}
    for vs in world.of(VirtualService):
        gateways = vs_gateways(vs)
        for ref, gw, server in servers:
            if ref not in gateways or not exported_to(
                vs.spec.export_to, vs.namespace, gw.namespace
            ):
                continue
            for host in vs_hosts(vs):
                if server.binds(host, vs.namespace, gw.namespace):
                    bucket = out.setdefault(host, [])
                    if vs not in bucket:
                        bucket.append(vs)
    return out


def _api_routes(world: World, node: ProxyNode) -> dict[int, dict[str, list[GatewayHTTPRoute]]]:
    """Gateway API: port → hostname → attached HTTPRoutes, for the Gateways this proxy serves
    (its `gateway.networking.k8s.io/gateway-name` label, in its namespace)."""
    out: dict[int, dict[str, list[GatewayHTTPRoute]]] = {}
    served = {node.labels.get(k) for k in GATEWAY_NAME_LABELS} - {None}
    for gw in world.of(ApiGateway):
        if gw.name not in served or gw.namespace != node.namespace:
            continue
        for listener in gw.spec.listeners:
            if listener.protocol != "HTTP":
                continue
            by_host = out.setdefault(listener.port, {})
            for route in world.of(GatewayHTTPRoute):
                if not _attached(route, gw, listener.name, listener.port):
                    continue
                allowed = listener.allowed_routes.namespaces.from_
                if allowed == "Same" and route.namespace != gw.namespace:
                    continue
                for host in _hostnames(route.spec.hostnames, listener.hostname):
                    by_host.setdefault(host, []).append(route)
    return out


def _attached(route: GatewayHTTPRoute, gw: ApiGateway, section: str, port: int) -> bool:
    for ref in route.spec.parent_refs:
        if (ref.group, ref.kind) != (GROUP, "Gateway"):
            continue
        if ref.name != gw.name or (ref.namespace or route.namespace) != gw.namespace:
            continue
        if ref.section_name not in (None, section) or ref.port not in (None, port):
            continue
        return True
    return False


def _hostnames(route_hosts: Iterable[str], listener_host: str | None) -> list[str]:
    """The intersection of a route's hostnames with its listener's (Gateway API rules)."""
    hosts = list(route_hosts)
    if listener_host is None:
        return hosts or ["*"]
    if not hosts:
        return [listener_host]
    out = []
    for h in hosts:
        if host_within(h, listener_host):
            out.append(h)
        elif host_within(listener_host, h) or host_matches(h, listener_host):
            out.append(listener_host)
    return sorted(set(out), key=out.index)
