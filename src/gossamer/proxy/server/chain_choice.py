"""Which filter chain serves a new connection, and the original destination its handler sees:
Envoy's listener hand-over (capture listeners) and filter chain choice (`chain_for`: port,
transport protocol, ALPN) for the three kinds of bound listener."""

from __future__ import annotations

from typing import Any

from gossamer.proxy.config.filter_chains import RAW_BUFFER, FilterChain
from gossamer.proxy.config.snapshot import ProxyConfig
from gossamer.transport.original_dst import original_destination

OUTBOUND_CAPTURE = "outbound"
INBOUND_CAPTURE = "inbound"
PLAIN = "plain"
EXPLICIT_PROXY = "explicit-proxy"  # outbound capture without a redirect: an HTTP proxy

Address = tuple[str, int]
Picked = tuple[FilterChain, Address | None] | str | None


def pick_chain(
    config: ProxyConfig | None,
    name: str,
    kind: str,
    local: Address | None,
    sock: Any,
    transport_protocol: str = RAW_BUFFER,
    alpn: tuple[str, ...] = (),
) -> Picked:
    """The chain for a connection accepted on listener `name` (of `kind`) and the original
    destination its handler sees; EXPLICIT_PROXY; or None when no chain matches (Envoy closes
    the connection). `sock` is read for SO_ORIGINAL_DST on capture listeners."""
    listener = config.listeners.get(name) if config is not None else None
    if config is None or listener is None:
        return None
    chain: FilterChain | None
    if kind == PLAIN:
        port = local[1] if local else listener.port
        chain = listener.chain_for(port, transport_protocol, alpn)
        return (chain, local) if chain is not None else None
    dst = original_destination(sock) if sock is not None else None
    redirected = dst is not None and dst != local
    if kind == OUTBOUND_CAPTURE:
        if not redirected:
            return EXPLICIT_PROXY
        assert dst is not None
        target = config.listener_at(dst[0], dst[1]) or config.listener_at("0.0.0.0", dst[1])
        if target is None or target.use_original_dst:
            target = listener
        chain = target.chain_for(dst[1], transport_protocol, alpn)
        return (chain, dst) if chain is not None else None
    # inbound capture
    if redirected:
        assert dst is not None
        chain = listener.chain_for(dst[1], transport_protocol, alpn)
        return (chain, dst) if chain is not None else None
    ports = listener.destination_ports()  # explicit mode: the listener's one service port
    if len(ports) != 1:
        return None
    chain = listener.chain_for(next(iter(ports)), transport_protocol, alpn)
    return (chain, None) if chain is not None else None
