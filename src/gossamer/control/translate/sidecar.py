"""Sidecars, in Istio's layout: capture listeners, a listener and route config per outbound port,
inbound clusters for the local application, and the fixed clusters."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from gossamer.control.translate import client_tls, clusters, inbound_tls, listeners, names
from gossamer.control.translate.authn import ProxyJwt
from gossamer.control.translate.authz.proxy_filters import ProxyRbac
from gossamer.control.translate.backends import outbound_backends
from gossamer.control.translate.destinations import DestinationRules
from gossamer.control.translate.mesh import service_routes
from gossamer.control.translate.peer_authn import PeerMode, holds_identity, peer_mode, served_mode
from gossamer.control.translate.policies import duration
from gossamer.control.translate.routes import RouteContext
from gossamer.control.translate.scope import (
    MESH_GATEWAYS,
    MatchScope,
    inbound_ports,
    mesh_virtual_services,
    own_workload,
    virtual_service_for,
    visible_services,
)
from gossamer.control.world import DOMAIN, MeshService, ServicePort, World
from gossamer.control.xds.node import ProxyNode
from gossamer.spec.gatewayapi.httproute import HTTPRoute as GatewayHTTPRoute
from gossamer.spec.networking.virtualservice import VirtualService
from gossamer.telemetry import peer_metadata

LOCALHOST = "127.0.0.1"
PEER_METADATA_HEADERS = sorted(name.decode() for name in peer_metadata.HEADERS)


def interception_none(node: ProxyNode) -> bool:
    """Istio's no-iptables mode: outbound listeners bind 127.0.0.1:<port>, no capture listeners."""
    return str(node.metadata.get("INTERCEPTION_MODE", "")).upper() == "NONE"


def outbound_bind(node: ProxyNode) -> str:
    """Where a no-capture sidecar binds its outbound listeners: 127.0.0.1 (Istio), unless its
    instance IP is another loopback address. Sidecars run as host processes share one loopback,
    each on its own 127.0.0.x (as explicit Gossamer sidecars do), so they must not all claim
    127.0.0.1:<service port>."""
    ip = node.ip
    return ip if _is_ipv4_loopback(ip) else LOCALHOST


def binds_inbound(node: ProxyNode) -> bool:
    """Whether a no-capture sidecar gets inbound listeners on `<instance IP>_<port>`: only when
    that IP is not localhost, where the app itself listens (Istio's defaultEndpoint
    127.0.0.1:<port>); on localhost both would want the same address, which is why Istio builds
    no NONE-mode inbound without a Sidecar `ingress`."""
    return node.ip not in ("", LOCALHOST, "::1")


def _is_ipv4_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def domains(svc: MeshService, port: int, namespace: str) -> list[str]:
    """The Host values that reach a service: FQDN, short forms in the client's own namespace,
    and its VIPs, each with and without the port."""
    hosts = [svc.hostname]
    k8s_suffix = f".{svc.namespace}.svc.{DOMAIN}"
    if svc.hostname.endswith(k8s_suffix):
        short = svc.hostname.removesuffix(k8s_suffix)
        if svc.namespace == namespace:
            hosts += [short, f"{short}.{svc.namespace}"]
        else:
            hosts.append(f"{short}.{svc.namespace}")
    hosts += list(svc.addresses)
    return [d for h in hosts for d in (h, f"{h}:{port}")]


def sidecar_resources(world: World, node: ProxyNode) -> list[Message]:
    rules = DestinationRules(world, node.namespace, node.labels)
    services = visible_services(world, node.namespace)
    vss = mesh_virtual_services(world, node.namespace)
    mesh_routes = world.of(GatewayHTTPRoute)
    no_capture = interception_none(node)
    listen = outbound_bind(node) if no_capture else "0.0.0.0"
    out: list[Message] = []
    http_ports: dict[int, list[tuple[MeshService, ServicePort]]] = {}
    tcp: list[tuple[MeshService, ServicePort]] = []
    for svc in services:
        for port in svc.ports:
            if port.is_http:
                http_ports.setdefault(port.number, []).append((svc, port))
            else:
                tcp.append((svc, port))
    inbound = inbound_ports(world, node)
    bound_inbound = no_capture and binds_inbound(node)
    # NONE: an app port's inbound listener wins over an outbound one on the same address.
    taken = {names.socket_listener(node.ip, p.target) for p in inbound} if bound_inbound else set()
    for number, members in sorted(http_ports.items()):
        scope = MatchScope(node.namespace, node.labels, MESH_GATEWAYS, number)
        ctx = RouteContext(world, scope, rules)
        route_name = names.sidecar_route(number)
        out.append(_route_config(ctx, route_name, members, vss, mesh_routes))
        name = names.socket_listener(listen, number)
        if name in taken:
            continue
        taken.add(name)
        out.append(
            listeners.socket_listener(
                name, listen, number, [listeners.rds_filter(route_name)], bind=no_capture
            )
        )
    for svc, port in tcp:
        address = listen if no_capture or not svc.addresses else svc.addresses[0]
        name = names.socket_listener(address, port.number)
        if name in taken or (svc.resolution == "NONE" and not svc.addresses and no_capture):
            continue  # one listener per address:port; HTTP (sorted first) wins a clash
        taken.add(name)
        scope = MatchScope(node.namespace, node.labels, MESH_GATEWAYS, port.number)
        split = _tcp_split(RouteContext(world, scope, rules), svc, port, vss)
        out.append(
            listeners.socket_listener(
                name,
                address,
                port.number,
                [listeners.tcp_proxy_filter(name, split)],
                bind=no_capture,
            )
        )
    app_ip = node.ip
    guard = ProxyRbac.of(world, node)
    jwt = ProxyJwt.of(world, node)  # RequestAuthentication: before RBAC, as in Istio
    own = own_workload(world, node)
    labels = own.labels if own is not None else node.labels
    identity = holds_identity(node)

    def mode(target: int | None) -> PeerMode | None:
        return served_mode(peer_mode(world, node.namespace, labels, target), identity)

    if bound_inbound:
        app_ip = LOCALHOST  # the app listens on localhost; the sidecar holds the instance IP
        for p in inbound:
            chains = _inbound_chains(p.port, p.target, guard, jwt, mode(p.target))
            out.append(listeners.inbound_listener(node.ip, p.target, chains))
    elif not no_capture:
        out.append(listeners.virtual_outbound(names.OUTBOUND_CAPTURE_PORT, names.PASSTHROUGH))
        chains = [
            chain
            for p in inbound
            for chain in _inbound_chains(p.port, p.target, guard, jwt, mode(p.target))
        ]
        out.append(
            listeners.virtual_inbound(
                names.INBOUND_CAPTURE_PORT,
                chains,
                names.INBOUND_PASSTHROUGH,
                guard.network,
                passthrough_mode=mode(None),
            )
        )
    out += [clusters.passthrough(), clusters.blackhole(), clusters.inbound_passthrough()]
    out += [clusters.inbound(p.port.number, p.target, p.port, app_ip) for p in inbound]
    backends = outbound_backends(world, services, rules)
    out.extend(client_tls.for_proxy(backends.clusters, holds_identity(node)))
    out.extend(backends.assignments)
    return out


def _route_config(
    ctx: RouteContext,
    name: str,
    members: list[tuple[MeshService, ServicePort]],
    vss: list[VirtualService],
    mesh_routes: list[GatewayHTTPRoute],
) -> route_pb2.RouteConfiguration:
    config = route_pb2.RouteConfiguration(name=name)
    config.validate_clusters.value = False
    used: set[str] = set()
    for svc, port in members:
        wanted = [d for d in domains(svc, port.number, ctx.scope.namespace) if d not in used]
        used.update(wanted)
        config.virtual_hosts.append(
            rc.VirtualHost(
                name=names.vhost(svc.hostname, port.number),
                domains=wanted,
                routes=service_routes(ctx, svc, port, vss, mesh_routes),
            )
        )
    # ALLOW_ANY (the mesh default): unknown hosts go to their original destination.
    passthrough = rc.VirtualHost(name=names.ALLOW_ANY_VHOST, domains=["*"])
    route = passthrough.routes.add(name=names.ALLOW_ANY_VHOST, match=rc.RouteMatch(prefix="/"))
    route.route.cluster = names.PASSTHROUGH
    route.route.timeout.CopyFrom(duration_zero())
    config.virtual_hosts.append(passthrough)
    return config


def duration_zero() -> duration_pb2.Duration:
    return duration(timedelta(0))


def _tcp_split(
    ctx: RouteContext, svc: MeshService, port: ServicePort, vss: list[VirtualService]
) -> list[tuple[str, int]]:
    """VirtualService `tcp` routes (first whose match admits this port), else the service."""
    vs = virtual_service_for(svc.hostname, vss)
    for route in vs.spec.tcp if vs is not None else []:
        if route.match and not any(m.port in (0, port.number) for m in route.match):
            continue
        split = []
        for dest, _share in route.weights():
            cluster, _ = ctx.cluster_for(dest.destination, vs.namespace if vs else svc.namespace)
            split.append((cluster, max(dest.weight, 1)))
        if split:
            return split
    return [(names.outbound_cluster(port.number, svc.hostname), 1)]


def _inbound_chains(
    port: ServicePort, target: int, guard: ProxyRbac, jwt: ProxyJwt, mode: PeerMode | None
) -> list[lc.FilterChain]:
    """The chains for one application port in its PeerAuthentication mode (`inbound_tls`)."""
    cluster = names.inbound_cluster(port.number)
    tcp = [*guard.network, listeners.tcp_proxy_filter(cluster, [(cluster, 1)])]
    if not port.is_http:
        return inbound_tls.mode_chains(mode, cluster, target, tcp, tcp, http=False)
    vhost = rc.VirtualHost(name=f"inbound|http|{target}", domains=["*"])
    route = vhost.routes.add(name="default", match=rc.RouteMatch(prefix="/"))
    route.route.cluster = cluster
    route.route.timeout.CopyFrom(duration_zero())
    # Istio's sidecars strip the metadata exchange's headers before the app; a plain Envoy has
    # no such filter, so the route does it (the Python sidecar reads them first).
    config = route_pb2.RouteConfiguration(
        name=cluster, virtual_hosts=[vhost], request_headers_to_remove=PEER_METADATA_HEADERS
    )
    http = [listeners.inline_routes_filter(cluster, config, [*jwt.http_filters, *guard.http])]
    return inbound_tls.mode_chains(mode, cluster, target, http, tcp, http=True)
