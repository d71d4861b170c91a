"""Socket listeners and their network filters: HTTP connection managers and TCP proxies."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from gossamer.control.translate import inbound_tls, names
from gossamer.control.translate.clusters import ads, socket_address
from gossamer.control.translate.names import BLACKHOLE
from gossamer.control.translate.peer_authn import PeerMode
from gossamer.control.translate.policies import (
    CORS_FILTER,
    FAULT_FILTER,
    ROUTER_FILTER,
    packed,
)

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
ORIGINAL_DST = "envoy.filters.listener.original_dst"
PASSTHROUGH_CHAIN = "InboundPassthroughFilterChain"
OUTBOUND = base_pb2.OUTBOUND
INBOUND = base_pb2.INBOUND


def http_filters(authz: Sequence[hcm_pb2.HttpFilter] = ()) -> list[hcm_pb2.HttpFilter]:
    """[authz →] fault → cors → router (router last). Filters with no per-route config do
    nothing. `authz` (RBAC, inbound only) comes first, as in Istio, so a denied request is
    answered 403 before any fault or CORS decision and never reaches the router."""
    return [
        *authz,
        hcm_pb2.HttpFilter(name=FAULT_FILTER, typed_config=packed(fault_pb2.HTTPFault())),
        hcm_pb2.HttpFilter(name=CORS_FILTER, typed_config=packed(cors_pb2.Cors())),
        hcm_pb2.HttpFilter(name=ROUTER_FILTER, typed_config=packed(router_pb2.Router())),
    ]


def _hcm(
    stat_prefix: str, authz: Sequence[hcm_pb2.HttpFilter] = ()
) -> hcm_pb2.HttpConnectionManager:
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        http_filters=http_filters(authz),
        upgrade_configs=[hcm_pb2.HttpConnectionManager.UpgradeConfig(upgrade_type="websocket")],
    )


def rds_filter(route_name: str, authz: Sequence[hcm_pb2.HttpFilter] = ()) -> lc.Filter:
    """An HTTP connection manager taking its routes from RDS; `authz` as in `http_filters`
    (gateways pass their RBAC filters here; sidecars' outbound listeners never do)."""
    hcm = _hcm(route_name, authz)
    hcm.rds.CopyFrom(hcm_pb2.Rds(config_source=ads(), route_config_name=route_name))
    return lc.Filter(name=HCM, typed_config=packed(hcm))


def inline_routes_filter(
    stat_prefix: str,
    config: route_pb2.RouteConfiguration,
    authz: Sequence[hcm_pb2.HttpFilter] = (),
) -> lc.Filter:
    """An HTTP connection manager with its routes inline (inbound chains); `authz` as in
    `http_filters`. As Istio's sidecar inbound, it appends the mTLS client's subject, DNS and
    URI SANs to `x-forwarded-client-cert`, so the app sees the caller's SPIFFE id."""
    hcm = _hcm(stat_prefix, authz)
    hcm.route_config.CopyFrom(config)
    hcm.forward_client_cert_details = hcm_pb2.HttpConnectionManager.APPEND_FORWARD
    details = hcm.set_current_client_cert_details
    details.subject.value = True
    details.dns = True
    details.uri = True
    return lc.Filter(name=HCM, typed_config=packed(hcm))


def tcp_proxy_filter(stat_prefix: str, weighted: Sequence[tuple[str, int]]) -> lc.Filter:
    """To one cluster, or split by relative weight among several."""
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if len(weighted) == 1:
        proxy.cluster = weighted[0][0]
    else:
        for cluster, weight in weighted:
            proxy.weighted_clusters.clusters.add(name=cluster, weight=weight)
    return lc.Filter(name=TCP_PROXY, typed_config=packed(proxy))


def socket_listener(
    name: str,
    address: str,
    port: int,
    filters: Sequence[lc.Filter],
    *,
    bind: bool,
    direction: int = OUTBOUND,
) -> listener_pb2.Listener:
    """A listener on address:port; `bind` False means it only receives connections handed over
    by the capture listener (virtualOutbound) for that original destination."""
    out = listener_pb2.Listener(
        name=name,
        address=socket_address(address, port),
        filter_chains=[lc.FilterChain(filters=list(filters))],
        traffic_direction=direction,
    )
    if not bind:
        out.bind_to_port.value = False
    return out


def virtual_outbound(port: int, passthrough: str) -> listener_pb2.Listener:
    """0.0.0.0:15001: iptables sends all outbound TCP here; each connection goes to the listener
    of its original destination, else to the passthrough cluster (ALLOW_ANY)."""
    out = socket_listener(
        "virtualOutbound",
        "0.0.0.0",
        port,
        [tcp_proxy_filter(passthrough, [(passthrough, 1)])],
        bind=True,
    )
    out.use_original_dst.value = True
    out.filter_chains[0].name = "PassthroughFilterChain"
    return out


def virtual_inbound(
    port: int,
    chains: Sequence[lc.FilterChain],
    passthrough: str,
    authz: Sequence[lc.Filter] = (),
    *,
    passthrough_mode: PeerMode | None = "DISABLE",
) -> listener_pb2.Listener:
    """0.0.0.0:15006: inbound traffic, filter chains per application port; others pass.

    `authz` (network RBAC) guards the passthrough chains too, as in Istio: a port no service
    declares is no way around the workload's AuthorizationPolicies. The passthrough chains
    follow the workload's PeerAuthentication mode (`passthrough_mode`) like any port's."""
    filters = [*authz, tcp_proxy_filter(passthrough, [(passthrough, 1)])]
    defaults = inbound_tls.mode_chains(
        passthrough_mode, PASSTHROUGH_CHAIN, None, filters, filters, http=False
    )
    every = [*chains, *defaults]
    if not every:  # STRICT on a proxy without a certificate: a listener needs a chain; close all
        every = [_closing_chain()]
    listener_filters = [
        lc.ListenerFilter(name=ORIGINAL_DST, typed_config=packed(original_dst_pb2.OriginalDst()))
    ]
    if inbound_tls.inspects(every):
        listener_filters.append(inbound_tls.tls_inspector())
    return listener_pb2.Listener(
        name="virtualInbound",
        address=socket_address("0.0.0.0", port),
        filter_chains=every,
        traffic_direction=INBOUND,
        listener_filters=listener_filters,
    )


def inbound_listener(ip: str, port: int, chains: Sequence[lc.FilterChain]) -> listener_pb2.Listener:
    """INTERCEPTION_MODE NONE inbound: `<ip>_<port>` bound on the instance IP, serving one
    application port's chains (per PeerAuthentication mode, with its RBAC) as virtualInbound
    would, without original_dst (nothing was redirected)."""
    every = list(chains) or [_closing_chain()]  # STRICT without a certificate: close all
    out = socket_listener(names.socket_listener(ip, port), ip, port, [], bind=True)
    del out.filter_chains[:]
    out.filter_chains.extend(every)
    out.traffic_direction = INBOUND
    if inbound_tls.inspects(every):
        out.listener_filters.append(inbound_tls.tls_inspector())
    return out


def _closing_chain() -> lc.FilterChain:
    """Every connection to the black hole (no endpoints): accepted, then closed."""
    return lc.FilterChain(name=BLACKHOLE, filters=[tcp_proxy_filter(BLACKHOLE, [(BLACKHOLE, 1)])])


def port_chain(name: str, target: int, filters: Sequence[lc.Filter]) -> lc.FilterChain:
    chain = lc.FilterChain(name=name, filters=list(filters))
    chain.filter_chain_match.destination_port.value = target
    return chain
