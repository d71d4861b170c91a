"""LDS: a Listener proto compiled into a ListenerConfig the dataplane binds and serves.

Rules (what Envoy does with the same resource; anything else is NACKed, never half-applied):
 1. Only socket listeners: an `api_listener`, a pipe or internal address, UDP, `fcds_config` or a
    `filter_chain_matcher` is rejected.
 2. Filter chains match on `destination_port`, `transport_protocol` ("tls" or "raw_buffer") and,
    with "tls", `application_protocols` (the fields the translator uses for PERMISSIVE/STRICT);
    any other match field, or two chains whose matches overlap, is rejected (Envoy's
    "overlapping matching rules"). `default_filter_chain` is kept as the fallback. A chain's
    `transport_socket` is raw bytes or the mesh's DownstreamTlsContext (downstream_tls.py).
    Selection is Envoy's: port, then transport protocol, then the client's ALPN, the most
    specific at each level, with no backtracking; nothing matches → the default chain.
 3. Each chain ends with one terminal network filter, an HTTP connection manager or a TCP
    proxy, after any number of network RBAC filters (`envoy.filters.network.rbac`), compiled
    into the handler's `network_rbac` chain; anything else is rejected.
 4. HCM: see hcm.py.
 5. Listener filters: original_dst sets `original_dst_filter`; tls_inspector's work is done by
    the dataplane for listeners that `inspects` (a chain names a transport protocol or
    terminates TLS); http_inspector only feeds matches rule 2 refuses, so it is a no-op;
    anything else is rejected.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from gossamer.proxy.authz.filters import NETWORK_TYPE as _NETWORK_RBAC
from gossamer.proxy.authz.filters import NetworkRbac, RbacChain, compile_network_rbac
from gossamer.proxy.config.downstream_tls import DownstreamTls, compile_transport_socket
from gossamer.proxy.config.hcm import HCM_TYPE, HttpChain, compile_hcm, unpack
from gossamer.proxy.config.rejected import ConfigRejected

__all__ = [
    "RAW_BUFFER",
    "TLS",
    "Direction",
    "DownstreamTls",
    "FilterChain",
    "HttpChain",
    "ListenerConfig",
    "TcpChain",
    "compile_listener",
]

Direction = Literal["INBOUND", "OUTBOUND", "UNSPECIFIED"]
_DIRECTIONS: dict[int, Direction] = {
    base_pb2.UNSPECIFIED: "UNSPECIFIED",
    base_pb2.INBOUND: "INBOUND",
    base_pb2.OUTBOUND: "OUTBOUND",
}
_PREFIX = "type.googleapis.com/"
_TCP_PROXY = _PREFIX + tcp_proxy_pb2.TcpProxy.DESCRIPTOR.full_name
_ORIGINAL_DST = _PREFIX + original_dst_pb2.OriginalDst.DESCRIPTOR.full_name
TLS = "tls"
RAW_BUFFER = "raw_buffer"
_TRANSPORTS = frozenset({TLS, RAW_BUFFER})
_MATCH_FIELDS = frozenset({"destination_port", "transport_protocol", "application_protocols"})
_INSPECTORS = frozenset(
    _PREFIX + m.DESCRIPTOR.full_name
    for m in (tls_inspector_pb2.TlsInspector, http_inspector_pb2.HttpInspector)
)


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


# port → transport protocol → ALPN ("" for a chain listing none) → chain
_ChainTree = dict[int | None, dict[str | None, dict[str, FilterChain]]]


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """A socket listener. `bind` False: it only receives connections the capture listener hands
    over for its address:port (`use_original_dst` on the capture listener)."""

    name: str
    address: str
    port: int
    bind: bool
    use_original_dst: bool
    direction: Direction
    chains: tuple[FilterChain, ...]
    default_chain: FilterChain | None = None
    original_dst_filter: bool = False
    # True when a chain names a transport protocol or terminates TLS: connections are accepted
    # by peeking at their first bytes (tls_inspector); the others keep the plain accept path.
    inspects: bool = field(init=False, compare=False)
    _by_port: dict[int | None, FilterChain] = field(init=False, repr=False, compare=False)
    _tree: _ChainTree = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tree: _ChainTree = {}
        for c in self.chains:
            by_alpn = tree.setdefault(c.destination_port, {}).setdefault(c.transport_protocol, {})
            for alpn in c.application_protocols or ("",):
                by_alpn[alpn] = c
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "_by_port", {c.destination_port: c for c in self.chains})
        inspects = any(c.transport_protocol is not None or c.tls is not None for c in self.chains)
        if self.default_chain is not None and self.default_chain.tls is not None:
            inspects = True
        object.__setattr__(self, "inspects", inspects)

    def chain_for(
        self,
        destination_port: int,
        transport_protocol: str = RAW_BUFFER,
        alpn: tuple[str, ...] = (),
    ) -> FilterChain | None:
        """Envoy's choice: the chains for this port, else the port-less ones; among them the
        chains naming the connection's transport protocol, else those naming none; among those
        the first chain listing a protocol the client offers (in the client's order), else one
        listing none. A level with no candidate ends the search (Envoy does not backtrack):
        then the default chain; None means Envoy closes the connection."""
        if not self.inspects:  # every chain matches on the port alone
            by_port = self._by_port
            return by_port.get(destination_port) or by_port.get(None) or self.default_chain
        tree = self._tree
        transports = tree.get(destination_port) or tree.get(None)
        if transports is None:
            return self.default_chain
        by_alpn = transports.get(transport_protocol) or transports.get(None)
        if by_alpn is None:
            return self.default_chain
        for offered in alpn:
            chain = by_alpn.get(offered)
            if chain is not None:
                return chain
        return by_alpn.get("") or self.default_chain

    def destination_ports(self) -> frozenset[int]:
        """The ports chains name (explicit-mode inbound serves a listener that names one)."""
        return frozenset(c.destination_port for c in self.chains if c.destination_port is not None)


def compile_listener(pb: Any) -> ListenerConfig:
    """Listener proto → ListenerConfig; raises ConfigRejected naming the listener and field."""
    name = str(pb.name)
    where = f'listener "{name}"'
    if not name:
        raise ConfigRejected("listener: name is required")
    if pb.HasField("api_listener"):
        raise ConfigRejected(f"{where}: api_listener is not supported (socket listeners only)")
    for unsupported in ("fcds_config", "filter_chain_matcher", "internal_listener"):
        if pb.HasField(unsupported):
            raise ConfigRejected(f"{where}: {unsupported} is not supported")
    address, port = _socket_address(where, pb.address)
    chains = tuple(
        _filter_chain(f"{where} filter_chains[{i}]", c) for i, c in enumerate(pb.filter_chains)
    )
    _check_overlaps(where, chains)
    default = None
    if pb.HasField("default_filter_chain"):
        default = _filter_chain(f"{where} default_filter_chain", pb.default_filter_chain)
    if not chains and default is None:
        raise ConfigRejected(f"{where}: no filter chains")
    return ListenerConfig(
        name=name,
        address=address,
        port=port,
        bind=pb.bind_to_port.value if pb.HasField("bind_to_port") else True,
        use_original_dst=bool(pb.use_original_dst.value),
        direction=_DIRECTIONS.get(int(pb.traffic_direction), "UNSPECIFIED"),
        chains=chains,
        default_chain=default,
        original_dst_filter=_listener_filters(where, pb.listener_filters),
    )


def _check_overlaps(where: str, chains: Sequence[FilterChain]) -> None:
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


def _socket_address(where: str, address: Any) -> tuple[str, int]:
    if not address.HasField("socket_address"):
        raise ConfigRejected(f"{where}: address must be a socket_address")
    sa = address.socket_address
    if sa.protocol != address_pb2.SocketAddress.TCP:
        raise ConfigRejected(f"{where}: address.socket_address.protocol must be TCP")
    if sa.WhichOneof("port_specifier") != "port_value":
        raise ConfigRejected(f"{where}: address.socket_address needs a port_value")
    if not sa.address:
        raise ConfigRejected(f"{where}: address.socket_address.address is required")
    return str(sa.address), int(sa.port_value)


def _listener_filters(where: str, filters: Sequence[Any]) -> bool:
    original_dst = False
    for i, f in enumerate(filters):
        type_url = str(f.typed_config.type_url)
        if type_url == _ORIGINAL_DST:
            original_dst = True
        elif type_url not in _INSPECTORS:
            raise ConfigRejected(
                f"{where} listener_filters[{i}] {f.name!r}: unsupported listener filter "
                f"{type_url or '(no typed_config)'}"
            )
    return original_dst


def _filter_chain(where: str, pb: Any) -> FilterChain:
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
