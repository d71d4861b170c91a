"""An accepted connection → the protocol its filter chain needs (HTTP, TCP proxy, or closed).

Two ways in, as the Dataplane binds them: `Dispatch` for plain listeners (asyncio's
`create_server`; the chain is chosen by port, or by original destination for capture
listeners), `serve_inspected` for listeners whose chains depend on the first bytes (accept.py
peeks, then the chain is chosen by port, transport and ALPN). Each connection reads the
Dataplane's current config once, when it is accepted; what it reads per request is its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from gossamer.codec.detect import Kind
from gossamer.proxy.config.downstream_tls import DownstreamTls
from gossamer.proxy.config.filter_chains import RAW_BUFFER, TLS, TcpChain
from gossamer.proxy.config.hcm import HttpChain
from gossamer.proxy.server.accept import hand_over, inspect
from gossamer.proxy.server.chain_choice import EXPLICIT_PROXY, PLAIN, Picked, pick_chain
from gossamer.proxy.server.context import ChainRoutes, ExplicitProxyRoutes
from gossamer.proxy.server.downstream import HttpConnection
from gossamer.proxy.server.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from gossamer.proxy.dataplane import Dataplane

log = logging.getLogger(__name__)


def protocol_for(
    dataplane: Dataplane, name: str, kind: str, transport: asyncio.BaseTransport
) -> asyncio.Protocol | None:
    """The protocol for a connection accepted on listener `name`; None closes it
    (Envoy closes connections no filter chain matches)."""
    local = _address(transport.get_extra_info("sockname"))
    config = dataplane.config
    if kind == PLAIN:  # the common case, kept to a dict lookup or two
        listener = config.listeners.get(name) if config is not None else None
        if listener is None:
            return None
        port = local[1] if local else listener.port
        chain = listener.chain_for(port)
        return _chain_protocol(dataplane, chain.handler if chain else None, local, local)
    sock = transport.get_extra_info("socket")
    protocol, _tls = _picked_protocol(dataplane, pick_chain(config, name, kind, local, sock), local)
    return protocol


def _picked_protocol(
    dataplane: Dataplane, picked: Picked, local: tuple[str, int] | None
) -> tuple[asyncio.Protocol | None, DownstreamTls | None]:
    """The protocol for a chosen chain, and the TLS it terminates."""
    if picked == EXPLICIT_PROXY:
        return HttpConnection(dataplane, ExplicitProxyRoutes(), None), None
    if picked is None or isinstance(picked, str):
        return None, None
    chain, original_dst = picked
    return _chain_protocol(dataplane, chain.handler, original_dst, local), chain.tls


async def serve_inspected(dataplane: Dataplane, name: str, kind: str, sock: socket.socket) -> None:
    """A connection on an inspecting listener (dataplane.py, rule 3). Closes `sock` itself on
    every failure; only cancellation escapes."""
    config = dataplane.config
    listener = config.listeners.get(name) if config is not None else None
    prefix = f"listener.{listener.address}_{listener.port}." if listener else "listener."
    try:
        detection = await inspect(sock)
        transport_protocol = TLS if detection.kind is Kind.TLS else RAW_BUFFER
        local = _address(sock.getsockname())
        picked = pick_chain(
            dataplane.config, name, kind, local, sock, transport_protocol, detection.alpn
        )
        protocol, tls = _picked_protocol(dataplane, picked, local)
        if protocol is None:
            dataplane.listener_counters[prefix + "no_filter_chain_match"] += 1
            sock.close()
            return
        await hand_over(
            sock,
            protocol,
            tls,
            detection,
            dataplane.identity,
            dataplane.listener_counters,
            prefix,
            dataplane.options.head_timeout,
        )
    except asyncio.CancelledError:  # the dataplane is closing
        sock.close()
        raise
    except Exception:
        log.exception("listener %s: serving an inspected connection failed", name)
        sock.close()


def _chain_protocol(
    dataplane: Dataplane,
    handler: HttpChain | TcpChain | None,
    original_dst: tuple[str, int] | None,
    local: tuple[str, int] | None,
) -> asyncio.Protocol | None:
    if isinstance(handler, HttpChain):
        return HttpConnection(dataplane, ChainRoutes(handler), original_dst)
    if isinstance(handler, TcpChain):
        return TcpProxy(dataplane, handler, original_dst, local)
    return None


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


class Dispatch(asyncio.Protocol):
    """Accepts on a listener, then hands the transport to the protocol its chain needs."""

    __slots__ = ("dataplane", "kind", "name")

    def __init__(self, dataplane: Dataplane, name: str, kind: str) -> None:
        self.dataplane = dataplane
        self.name = name
        self.kind = kind

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        try:
            protocol = protocol_for(self.dataplane, self.name, self.kind, transport)
        except Exception:
            log.exception("listener %s: choosing a filter chain failed", self.name)
            protocol = None
        if protocol is None:
            transport.close()
            return
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
