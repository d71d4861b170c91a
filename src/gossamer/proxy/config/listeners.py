"""LDS: a Listener proto compiled into a ListenerConfig the dataplane binds and serves.

Rules (what Envoy does with the same resource; anything else is NACKed, never half-applied):
 1. Only socket listeners: an `api_listener`, a pipe or internal address, UDP, `fcds_config` or a
    `filter_chain_matcher` is rejected.
 2. Filter chains (filter_chains.py) match on `destination_port`, `transport_protocol` ("tls"
    or "raw_buffer") and, with "tls", `application_protocols` (the fields the translator uses
    for PERMISSIVE/STRICT); any other match field, or two chains whose matches overlap, is
    rejected (Envoy's "overlapping matching rules"). `default_filter_chain` is kept as the
    fallback. A chain's `transport_socket` is raw bytes or the mesh's DownstreamTlsContext
    (downstream_tls.py). Selection is Envoy's: port, then transport protocol, then the client's
    ALPN, the most specific at each level, with no backtracking; nothing matches → the default
    chain.
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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from gossamer.proxy.config.filter_chains import (
    RAW_BUFFER,
    FilterChain,
    check_overlaps,
    compile_filter_chain,
)
from gossamer.proxy.config.rejected import ConfigRejected

Direction = Literal["INBOUND", "OUTBOUND", "UNSPECIFIED"]
_DIRECTIONS: dict[int, Direction] = {
    base_pb2.UNSPECIFIED: "UNSPECIFIED",
    base_pb2.INBOUND: "INBOUND",
    base_pb2.OUTBOUND: "OUTBOUND",
}
_PREFIX = "type.googleapis.com/"
_ORIGINAL_DST = _PREFIX + original_dst_pb2.OriginalDst.DESCRIPTOR.full_name
_INSPECTORS = frozenset(
    _PREFIX + m.DESCRIPTOR.full_name
    for m in (tls_inspector_pb2.TlsInspector, http_inspector_pb2.HttpInspector)
)


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
        compile_filter_chain(f"{where} filter_chains[{i}]", c)
        for i, c in enumerate(pb.filter_chains)
    )
    check_overlaps(where, chains)
    default = None
    if pb.HasField("default_filter_chain"):
        default = compile_filter_chain(f"{where} default_filter_chain", pb.default_filter_chain)
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
