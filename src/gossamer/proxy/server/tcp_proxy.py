"""L4 proxying for a TcpChain (Envoy's tcp_proxy): bytes both ways between two Protocols.

Downstream reading is paused until the upstream connection is up (bytes are not buffered
unboundedly), and each side pauses the other's reading while its own send buffer is full.
PassthroughCluster / ORIGINAL_DST clusters connect to the connection's original destination.
Either side's close half-closes the other (write_eof); the second close ends both.
Network RBAC filters (Envoy's default ONE_TIME_ON_FIRST_BYTE) decide on the client's first
bytes, after the upstream connection is up, as in Envoy (a server-first protocol's greeting
still reaches the client); a denial drops those bytes and closes both sides."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from random import random
from typing import TYPE_CHECKING, Any, cast

from gossamer.proxy.authz import gate
from gossamer.proxy.upstream.connect import ConnectFailure, open_transport
from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.telemetry import istio_metrics
from gossamer.transport.nodelay import set_nodelay
from gossamer.transport.tls_sessions import remember_session

if TYPE_CHECKING:
    from gossamer.proxy.config.filter_chains import TcpChain
    from gossamer.proxy.server.context import ServerContext

log = logging.getLogger(__name__)


class _Side(asyncio.Protocol):
    """One socket of the pair; `peer` is the other side once both exist."""

    is_upstream = True  # the TcpProxy subclass is the downstream side

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.closed = False
        self.eof = False
        self.pending: list[bytes] = []
        self.on_close: Callable[[], None] | None = None
        self.received = 0  # bytes read from this socket (Istio's TCP byte counts)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return True  # not connected yet: the half-close is passed on once it is
        if peer.closed:
            self.close_both()  # nothing is left to relay to
            return None
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        elif self.is_upstream:
            # The server ended its stream and the client's leg is TLS, which cannot carry a
            # half-close: close both (after flushing), or each sidecar of a mesh pair would
            # hold its half forever. (A client's half-close keeps waiting for the answer.)
            self.close_both()
            return None
        if peer.eof:
            self.close_both()
            return None
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()
        peer = self.peer
        if peer is not None and not peer.closed and peer.transport is not None:
            if exc is not None or (self.eof and peer.eof):
                peer.transport.abort() if exc is not None else peer.transport.close()
            elif peer.transport.can_write_eof():
                peer.transport.write_eof()
                if peer.eof:
                    peer.transport.close()
            else:  # TLS carries no half-close: the other side closes (Envoy's FlushWrite)
                peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.resume_reading()

    def close_both(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.close()


class TcpProxy(_Side):
    """The downstream side: accepted on a listener whose chosen chain is a TcpChain."""

    is_upstream = False

    def __init__(
        self,
        ctx: ServerContext,
        chain: TcpChain,
        original_dst: tuple[str, int] | None,
        local: tuple[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.chain = chain
        self.original_dst = original_dst
        self.local = local
        self._rbac_pending = chain.network_rbac is not None  # no decision taken yet
        self._denied = False
        if self._rbac_pending:
            # Only guarded connections pay for the check: set before the transport binds it.
            self.data_received = self._guarded_data_received  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self.ctx.connection_opened(self)
        self.ctx.spawn(self._connect())

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.ctx.connection_closed(self)
        sent = self.peer.received if self.peer is not None else 0
        istio_metrics.tcp_closed(self.ctx, self, sent, self.received)

    def _guarded_data_received(self, data: bytes) -> None:
        if self._rbac_pending and not self._authorized():
            return
        _Side.data_received(self, data)

    def _authorized(self) -> bool:
        """The chain's network RBAC on this connection; a denial closes both sides (after the
        filters' `delay_deny`, reading nothing meanwhile)."""
        if self._denied:
            return False
        rbac = self.chain.network_rbac
        assert rbac is not None
        peer = self.transport.get_extra_info("peername") if self.transport else None
        facts = gate.tcp_connection(str(peer[0]) if peer else "", self.transport, self.original_dst)
        denial = next((f for f in rbac.filters if not f.decide(facts).allowed), None)
        if denial is None:
            self._rbac_pending = any(getattr(f, "continuous", False) for f in rbac.filters)
            return True
        self._denied = True
        delay = float(getattr(denial, "delay_deny_s", 0.0))
        if delay > 0 and self.transport is not None:
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(delay, self.close_both)
        else:
            self.close_both()
        return False

    def close(self) -> None:
        """Dataplane shutdown: both sockets go."""
        self.close_both()

    async def _connect(self) -> None:
        downstream = self.transport
        assert downstream is not None
        target = self._target()
        if target is None:
            downstream.close()
            return
        backend, endpoint = target
        breaker = backend.breaker
        if not breaker.try_connection():
            downstream.close()
            return
        upstream = _Side()
        try:
            # TLS (mesh mTLS or origination) as the endpoint's cluster chose it; the peer's
            # SANs are checked before a byte of the client's flows (connect.open_transport).
            await open_transport(
                lambda: upstream,
                endpoint.host,
                endpoint.port,
                connect_timeout=backend.config.connect_timeout,
                source=backend.config.source_address,
                tls=endpoint.tls,
                identity=self.ctx.pool.identity,
                counters=backend.stats,
            )
        except ConnectFailure as exc:
            breaker.end_connection()
            backend.stats.upstream_cx_connect_fail += 1
            istio_metrics.tcp_failed(self.ctx, self, backend.config.name, "UF")
            log.debug("tcp proxy connect to %s failed: %r", endpoint, exc)
            downstream.close()
            return
        except BaseException:
            breaker.end_connection()
            if upstream.transport is not None:
                upstream.transport.abort()
            downstream.close()
            raise
        if endpoint.tls is not None:
            upstream.on_close = lambda: _closed_tls(upstream, breaker)
        else:
            upstream.on_close = breaker.end_connection
        if self.closed:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        assert upstream.transport is not None
        istio_metrics.tcp_opened(self.ctx, self, backend.config.name, upstream.transport)
        for data in upstream.pending:  # a server-first greeting that arrived meanwhile
            downstream.write(data)
        upstream.pending.clear()
        for data in self.pending:
            upstream.transport.write(data)
        self.pending.clear()
        if self.eof and upstream.transport.can_write_eof():
            upstream.transport.write_eof()
        downstream.resume_reading()

    def _target(self) -> tuple[Any, Endpoint] | None:
        cluster = self.chain.pick_cluster(random())
        backend = self.ctx.backends.get(cluster)
        if backend is None:
            return None
        if backend.config.kind == "ORIGINAL_DST":
            dst = self.original_dst
            if dst is None or dst == self.local:
                return None  # not redirected: connecting would loop back to us
            return backend, Endpoint(dst[0], dst[1])
        endpoint = backend.pick(None, ())
        return (backend, endpoint) if endpoint is not None else None


def _closed_tls(upstream: _Side, breaker: Any) -> None:
    """An upstream TLS connection ended: keep its session for the next one (the server's
    ticket was read with its first bytes, if it sent any), then free its breaker slot."""
    remember_session(upstream.transport)
    breaker.end_connection()
