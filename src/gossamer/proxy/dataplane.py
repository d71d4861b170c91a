"""The Dataplane: binds the listeners of a ProxyConfig and keeps one Backend per cluster.

Theory of operation:
1. `apply(config)` swaps `config` and `backends` together, with no await in between: a request
   sees one generation. Clusters whose ClusterConfig and endpoints did not change keep their
   Backend untouched; changed ones are `reconfigure`d (state of remaining hosts survives);
   removed ones are dropped and their idle pooled connections closed.
2. Then listeners are bound to match: bind_to_port listeners on address:port, the capture
   listeners (`use_original_dst` → outbound, INBOUND with the original_dst listener filter →
   inbound) on the options' capture address and flag ports. A listener whose bound address did
   not change keeps its socket (its chains are looked up per connection); a removed one stops
   accepting while its open connections finish.
3. Each accepted connection picks its chain once (server/dispatch.py, server/chain_choice.py),
   then reads the current config per request (routes by RDS name, backends). Listeners whose
   chains match on the transport protocol or terminate TLS (`ListenerConfig.inspects`:
   PERMISSIVE / STRICT mTLS) accept through server/accept.py: peek at the first bytes, pick the
   chain by port, transport and ALPN, then a TLS handshake with `identity` when the chain
   terminates TLS (new connections use the newest identity; open ones keep theirs). The others
   keep the plain `create_server` path and pay nothing for it.
4. A listener whose bytes changed is compiled anew (unchanged bytes keep their compiled object,
   see config/snapshot.py): HTTP connections on a chain the new config no longer has drain, so
   chain-level changes (RBAC, HCM options) reach every client within one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from gossamer.codec.http1 import Limits
from gossamer.proxy.config.listeners import ListenerConfig
from gossamer.proxy.config.snapshot import ProxyConfig
from gossamer.proxy.server.accept import InspectingServer
from gossamer.proxy.server.chain_choice import INBOUND_CAPTURE, OUTBOUND_CAPTURE, PLAIN
from gossamer.proxy.server.dispatch import Dispatch, serve_inspected
from gossamer.proxy.upstream.backend import Backend
from gossamer.proxy.upstream.endpoints import EndpointSet
from gossamer.proxy.upstream.pool import ConnectionPool
from gossamer.transport.listen import listening_socket

if TYPE_CHECKING:
    from gossamer.transport.tls import IdentityMaterial, MeshTls

log = logging.getLogger(__name__)

_WILDCARDS = frozenset({"0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class DataplaneOptions:
    """How the sidecar listens. `explicit`: no iptables redirect; capture listeners still bind
    (on `ip`, so explicit sidecars with distinct loopback IPs share port numbers) and behave as
    an HTTP proxy (outbound) / the single inbound chain (inbound). `bind_address` overrides
    where capture listeners bind (default: `ip` when explicit, else 0.0.0.0).
    `wildcard_address` (gateway mode): where bind_to_port listeners whose LDS address is a
    wildcard (0.0.0.0, ::) bind instead, so a local gateway is not exposed; None keeps the LDS
    address. Port 0 lets the kernel choose (tests read `Dataplane.address_of`)."""

    explicit: bool = True
    ip: str = "127.0.0.1"
    outbound_port: int = 15001
    inbound_port: int = 15006
    bind_address: str | None = None
    wildcard_address: str | None = None
    reuse_port: bool = False
    limits: Limits = field(default_factory=Limits)
    head_timeout: float = 10.0  # slowloris defence: a request head must complete within this
    idle_timeout: float = 3600.0  # Envoy's downstream idle timeout

    @property
    def capture_address(self) -> str:
        if self.bind_address is not None:
            return self.bind_address
        return self.ip if self.explicit else "0.0.0.0"


class _Server(Protocol):
    def close(self) -> None: ...


_BindKey = tuple[str, int, str, bool]  # (host, port asked, kind, inspects first bytes)


@dataclass(slots=True)
class _Bound:
    key: _BindKey
    server: _Server
    address: tuple[str, int]


class Dataplane:
    """See the module docstring. Use from one event loop; `apply` and `drain` are coroutines."""

    def __init__(self, options: DataplaneOptions | None = None) -> None:
        self.options = options if options is not None else DataplaneOptions()
        # Outbound mesh TLS reads the identity per new connection (rotations reach new ones).
        self.pool = ConnectionPool(identity=lambda: self.identity)
        self._config: ProxyConfig | None = None
        self._backends: Mapping[str, Backend] = MappingProxyType({})
        self._endpoint_sets: dict[str, EndpointSet | None] = {}
        self._bound: dict[str, _Bound] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._applying = asyncio.Lock()
        self._connections: set[object] = set()
        self._idle: asyncio.Event | None = None  # set when the last connection closes (drain)
        # The workload's mesh identity (SDS secrets "default" and "ROOTCA" of the translator's
        # TLS contexts); None until the identity agent delivers a certificate.
        self.identity: MeshTls | None = None
        # Envoy's listener counters of the inspecting accept path (server/accept.py), by full
        # name: `listener.<address>_<port>.ssl.handshake`, `...no_filter_chain_match`, ...
        self.listener_counters: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (
            f"<Dataplane listeners={sorted(self._bound)} backends={len(self._backends)} "
            f"connections={len(self._connections)}>"
        )

    @property
    def config(self) -> ProxyConfig | None:
        return self._config

    @property
    def backends(self) -> Mapping[str, Backend]:
        return self._backends

    def address_of(self, listener: str) -> tuple[str, int] | None:
        """Where a bound listener actually listens (its port when it asked for 0)."""
        bound = self._bound.get(listener)
        return bound.address if bound is not None else None

    # --- configuration ------------------------------------------------------------------

    def set_identity(self, material: IdentityMaterial) -> None:
        """Use this certificate for new mesh TLS connections; open ones keep theirs. Bad
        material raises IdentityMaterialInvalid and the current identity stays."""
        from gossamer.transport.tls import MeshTls  # cryptography only when mTLS is used

        if self.identity is None:
            self.identity = MeshTls(material)
        else:
            self.identity.rotate(material)

    async def apply(self, config: ProxyConfig) -> None:
        """Adopt `config` (rules 1 and 2). Listeners that fail to bind are logged and skipped
        (the config was already accepted); everything else still applies."""
        async with self._applying:  # pushes apply in order; binds never interleave
            self._swap(config)
            await self._bind(config)
            self._drain_changed_chains(config)

    def _drain_changed_chains(self, config: ProxyConfig) -> None:
        """Rule 4: connections whose filter chain the new config no longer has (its listener
        changed) drain, as Envoy drains a modified filter chain: idle ones close now, busy ones
        after their response (`connection: close`), and the client's next connection gets the
        new chain (new RBAC filters, new HCM settings)."""
        live = {id(c.handler) for listener in config.listeners.values() for c in listener.chains}
        for conn in list(self._connections):
            chain = getattr(getattr(conn, "resolver", None), "chain", None)
            if chain is not None and id(chain) not in live:
                start_draining = getattr(conn, "start_draining", None)
                if start_draining is not None:
                    start_draining()

    def _swap(self, config: ProxyConfig) -> None:
        backends: dict[str, Backend] = {}
        for name, cluster in config.clusters.items():
            endpoints = config.endpoints_for(name)
            old = self._backends.get(name)
            if old is None:
                backends[name] = Backend(cluster, endpoints)
            else:
                if old.config.source_address != cluster.source_address:
                    self.pool.close_backend(name)  # idle connections bound the old source
                if old.config != cluster or self._endpoint_sets.get(name) != endpoints:
                    old.reconfigure(cluster, endpoints)
                    kept = {(e.host, e.port) for e in endpoints.endpoints} if endpoints else set()
                    self.pool.close_removed_hosts(name, kept)
                backends[name] = old
            self._endpoint_sets[name] = endpoints
        for name in self._backends:
            if name not in backends:
                self._endpoint_sets.pop(name, None)
                self.pool.close_backend(name)
        self._config = config
        self._backends = MappingProxyType(backends)

    def _bind_key(self, listener: ListenerConfig) -> _BindKey | None:
        options = self.options
        inspects = listener.inspects
        if listener.use_original_dst:
            return options.capture_address, options.outbound_port, OUTBOUND_CAPTURE, inspects
        if listener.direction == "INBOUND" and listener.original_dst_filter:
            return options.capture_address, options.inbound_port, INBOUND_CAPTURE, inspects
        if listener.bind:
            host = listener.address
            if options.wildcard_address is not None and host in _WILDCARDS:
                host = options.wildcard_address
            return host, listener.port, PLAIN, inspects
        return None

    async def _bind(self, config: ProxyConfig) -> None:
        wanted: dict[str, _BindKey] = {}
        for name, listener in config.listeners.items():
            key = self._bind_key(listener)
            if key is not None:
                wanted[name] = key
        for name in [n for n, b in self._bound.items() if wanted.get(n) != b.key]:
            self._bound.pop(name).server.close()  # open connections carry on (rule 2)
        loop = asyncio.get_running_loop()
        for name, key in wanted.items():
            if name in self._bound:
                continue
            host, port, kind, inspects = key
            try:
                sock = listening_socket(host, port, reuse_port=self.options.reuse_port)
            except OSError as exc:
                log.error("listener %s: cannot bind %s:%d: %s", name, host, port, exc)
                continue
            address = sock.getsockname()
            server: _Server
            if inspects:
                server = InspectingServer(sock, partial(self._accepted, name, kind))
            else:
                server = await loop.create_server(partial(Dispatch, self, name, kind), sock=sock)
            self._bound[name] = _Bound(key, server, (str(address[0]), int(address[1])))

    # --- connections --------------------------------------------------------------------

    def _accepted(self, name: str, kind: str, sock: socket.socket) -> None:
        self.spawn(serve_inspected(self, name, kind, sock))

    def connection_opened(self, conn: object) -> None:
        self._connections.add(conn)

    def connection_closed(self, conn: object) -> None:
        self._connections.discard(conn)
        if not self._connections and self._idle is not None:
            self._idle.set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- shutdown -----------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Stop accepting; wait up to `grace` s for open connections to close; close the rest."""
        for bound in self._bound.values():
            bound.server.close()
        self._bound.clear()
        for conn in list(self._connections):
            start_draining = getattr(conn, "start_draining", None)
            if start_draining is not None:
                start_draining()  # HTTP: idle ones close now, busy ones after their response
        if self._connections:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._idle.wait()
        await self.close()

    async def close(self) -> None:
        for bound in self._bound.values():
            bound.server.close()
        self._bound.clear()
        for conn in list(self._connections):
            close = getattr(conn, "close", None)
            if close is not None:
                close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.close()
