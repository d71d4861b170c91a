"""A listener's filter chains: what each matches on and what it runs, compiled from the proto.

Rules 2 and 3 of listeners.py: a chain matches on `destination_port`, `transport_protocol` and
(with "tls") `application_protocols`, and ends with one terminal network filter (HTTP connection
manager or TCP proxy) after any number of network RBAC filters. Two chains that would match the
same connection are refused as Envoy refuses them. Choosing among chains is ListenerConfig's.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from gossamer.proxy.authz.filters import NETWORK_TYPE as _NETWORK_RBAC
from gossamer.proxy.authz.filters import NetworkRbac, RbacChain, compile_network_rbac
from gossamer.proxy.config.downstream_tls import DownstreamTls, compile_transport_socket
from gossamer.proxy.config.hcm import HCM_TYPE, HttpChain, compile_hcm, unpack
from gossamer.proxy.config.rejected import ConfigRejected

_PREFIX = "type.googleapis.com/"
_TCP_PROXY = _PREFIX + tcp_proxy_pb2.TcpProxy.DESCRIPTOR.full_name
TLS = "tls"
RAW_BUFFER = "raw_buffer"
_TRANSPORTS = frozenset({TLS, RAW_BUFFER})
_MATCH_FIELDS = frozenset({"destination_port", "transport_protocol", "application_protocols"})


@dataclass(frozen=True, slots=True)
class TcpChain:
    """TCP proxy to one cluster, or split by weight (`clusters` as (name, weight), weight > 0)."""

    clusters: tuple[tuple[str, int], ...]
    stat_prefix: str
    # Network RBAC filters before the tcp_proxy (None: none); they decide on the first bytes.
    network_rbac: RbacChain | None = None
    _cumulative: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        running, totals = 0, []
        for _name, weight in self.clusters:
            running += weight
            totals.append(running)
        object.__setattr__(self, "_cumulative", tuple(totals))

    def pick_cluster(self, rand: float) -> str:
        """The cluster for one connection; `rand` uniform in [0, 1)."""
        if len(self.clusters) == 1:
            return self.clusters[0][0]
        point = int(rand * self._cumulative[-1])
        return self.clusters[bisect.bisect_right(self._cumulative, point)][0]


@dataclass(frozen=True, slots=True)
class FilterChain:
    """One filter chain: `destination_port` None matches any port, `transport_protocol` None
    any transport, empty `application_protocols` any ALPN offer. `tls` None: the chain reads
    the connection's bytes as they come (plaintext, or TLS passed through untouched)."""

    name: str
    destination_port: int | None
    handler: HttpChain | TcpChain
    transport_protocol: str | None = None
    application_protocols: tuple[str, ...] = ()
    tls: DownstreamTls | None = None


def compile_filter_chain(where: str, pb: Any) -> FilterChain:
    """One filter chain proto → FilterChain; raises ConfigRejected naming `where` and the field."""
    if pb.name:
        where = f'{where} "{pb.name}"'
    match = pb.filter_chain_match
    for descriptor, _value in match.ListFields():
        if descriptor.name not in _MATCH_FIELDS:
            raise ConfigRejected(f"{where}: filter_chain_match.{descriptor.name} is not supported")
    port = int(match.destination_port.value) if match.HasField("destination_port") else None
    transport = str(match.transport_protocol) or None
    if transport is not None and transport not in _TRANSPORTS:
        raise ConfigRejected(
            f"{where}: filter_chain_match.transport_protocol {transport!r} is not supported "
            f'(only "{TLS}" and "{RAW_BUFFER}")'
        )
    alpn = tuple(str(p) for p in match.application_protocols)
    if alpn and transport != TLS:
        raise ConfigRejected(
            f"{where}: filter_chain_match.application_protocols needs transport_protocol "
            f'"{TLS}" (plaintext protocol detection is not supported)'
        )
    if not pb.filters:
        raise ConfigRejected(
            f"{where}: a network filter (http_connection_manager or tcp_proxy) is required"
        )
    rbac = _network_rbac(where, pb.filters[:-1])
    last = len(pb.filters) - 1
    net = pb.filters[last]
    here = f"{where} filters[{last}]"
    type_url = str(net.typed_config.type_url)
    handler: HttpChain | TcpChain
    if type_url == HCM_TYPE:
        handler = compile_hcm(here, net)
        if rbac is not None:
            handler = replace(handler, network_rbac=rbac)
    elif type_url == _TCP_PROXY:
        handler = _tcp_chain(here, unpack(net, tcp_proxy_pb2.TcpProxy), rbac)
    else:
        raise ConfigRejected(
            f"{here} {net.name!r}: unsupported network filter {type_url or '(no typed_config)'}"
            " (the last filter must be http_connection_manager or tcp_proxy)"
        )
    tls = None
    if pb.HasField("transport_socket"):
        tls = compile_transport_socket(
            where, pb.transport_socket, http=isinstance(handler, HttpChain)
        )
    return FilterChain(
        name=str(pb.name),
        destination_port=port,
        handler=handler,
        transport_protocol=transport,
        application_protocols=alpn,
        tls=tls,
    )


def _network_rbac(where: str, filters: Sequence[Any]) -> RbacChain | None:
    """The filters before the terminal one: network RBAC only, in order."""
    compiled: list[NetworkRbac] = []
    for i, f in enumerate(filters):
        here = f"{where} filters[{i}] {f.name!r}"
        type_url = str(f.typed_config.type_url)
        if type_url != _NETWORK_RBAC:
            raise ConfigRejected(
                f"{here}: unsupported network filter {type_url or '(no typed_config)'} "
                "(only network RBAC may come before http_connection_manager or tcp_proxy)"
            )
        compiled.append(compile_network_rbac(f.typed_config, where=here))
    return RbacChain(compiled) if compiled else None


def _tcp_chain(where: str, proxy: Any, rbac: RbacChain | None = None) -> TcpChain:
    specifier = proxy.WhichOneof("cluster_specifier")
    if specifier == "cluster":
        if not proxy.cluster:
            raise ConfigRejected(f"{where}: tcp_proxy.cluster is empty")
        clusters: tuple[tuple[str, int], ...] = ((str(proxy.cluster), 1),)
    elif specifier == "weighted_clusters":
        clusters = tuple(
            (str(c.name), int(c.weight)) for c in proxy.weighted_clusters.clusters if c.weight
        )
        if not clusters:
            raise ConfigRejected(f"{where}: tcp_proxy.weighted_clusters weights sum to 0")
    else:
        raise ConfigRejected(f"{where}: tcp_proxy needs cluster or weighted_clusters")
    return TcpChain(clusters, str(proxy.stat_prefix), rbac)


def check_overlaps(where: str, chains: Sequence[FilterChain]) -> None:
    """Envoy refuses two chains that would both match one connection: the same port and
    transport protocol, and a common ALPN value (or both listing none)."""
    seen: set[tuple[int | None, str | None, str]] = set()
    for chain in chains:
        for alpn in chain.application_protocols or ("",):
            key = (chain.destination_port, chain.transport_protocol, alpn)
            if key in seen:
                raise ConfigRejected(
                    f"{where}: multiple filter chains with the same matching rules "
                    f"(destination_port {chain.destination_port}, transport_protocol "
                    f"{chain.transport_protocol!r}, application_protocols {alpn or '(none)'})"
                )
            seen.add(key)
