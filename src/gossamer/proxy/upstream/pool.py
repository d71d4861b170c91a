"""Per-endpoint keep-alive pools of upstream HTTP/1.1 connections (upstream/connection.py).

Theory of operation:
1. A connection is keyed by (backend name, endpoint host, port). `acquire` hands out an idle
   one (newest first, so the oldest age out) or opens a new one within `connect_timeout`.
2. Exactly one exchange holds a connection at a time; it sets `sink` to receive the parser's
   events and calls `release(conn, reusable)` when the response was read to its end. Anything
   else (a response not fully read, `connection: close`, an upgrade) means `reusable=False`
   and the connection is closed.
3. Idle connections that the server closes are noticed by `connection_lost` and leave the pool;
   bytes arriving on an idle connection make it unusable too (RFC 9112 §9.8: a server may close
   idle connections at any time, and stray bytes mean the framing is lost).
4. `breaker.try_connection()` is asked before every connect and `end_connection()` is called
   exactly once when the connection closes. When it refuses, the request waits as pending
   (`try_pending()`, as Envoy's pool does) for a released connection of its endpoint or for
   any connection of the cluster to close; a refused pending slot raises `PoolOverflow`
   (503 UO).
5. TLS: an Endpoint carries the TLS its cluster chose for it (`Endpoint.tls`, None for
   plaintext) and every connection remembers the one it was opened with. A connection is only
   handed out for the same setting (the same object, or an equal one after a re-push), so a
   plaintext connection never serves a TLS endpoint nor the reverse, and a change of the
   expected SANs retires the connections opened under the old ones. A rotated identity does
   not: pooled connections carry on with their session, new ones use the new certificate.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from gossamer.codec.http1 import UPSTREAM_LIMITS, Limits
from gossamer.proxy.upstream.connect import IdentitySource, no_identity, open_transport
from gossamer.proxy.upstream.connection import ConnectionBreaker, PoolKey, UpstreamConnection
from gossamer.proxy.upstream.tls_context import UpstreamTls


class Target(Protocol):
    """What the pool needs of an Endpoint: where to connect."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def tls(self) -> UpstreamTls | None: ...


class PoolOverflow(Exception):
    """The cluster's max_connections breaker is open: Envoy's UO."""


_NEVER = float("inf")
_SWEEP = 1.0  # seconds between idle sweeps at most


class ConnectionPool:
    """Idle keep-alive connections per (backend, endpoint); see the module docstring."""

    def __init__(
        self, limits: Limits | None = None, identity: IdentitySource = no_identity
    ) -> None:
        # Upstream heads may be larger than downstream ones (Envoy: 80 KiB vs 60 KiB).
        self._limits = limits if limits is not None else UPSTREAM_LIMITS
        # The sidecar's mesh identity for TLS that names SDS `default`/`ROOTCA`, read per connect.
        self.identity = identity
        self._idle: dict[PoolKey, list[UpstreamConnection]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._waiters: dict[PoolKey, deque[asyncio.Future[UpstreamConnection | None]]] = {}
        self.opened = 0  # connections ever opened (tests and /stats read it)

    def __repr__(self) -> str:
        idle = sum(len(v) for v in self._idle.values())
        return f"<ConnectionPool keys={len(self._idle)} idle={idle} opened={self.opened}>"

    def idle_count(self, name: str, target: Target) -> int:
        return len(self._idle.get((name, target.host, target.port), ()))

    def take_idle(self, name: str, target: Target) -> UpstreamConnection | None:
        """An idle connection ready for a request, without suspending (the hot path)."""
        idle = self._idle.get((name, target.host, target.port))
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                tls = target.tls
                if conn.tls is tls:
                    return conn
                if conn.tls == tls:  # an equal setting from a re-pushed cluster
                    conn.tls = tls  # next time the identity test suffices
                    return conn
                conn.close()  # opened for another TLS setting (rule 5): never reused
        return None

    async def acquire(
        self,
        name: str,
        target: Target,
        breaker: ConnectionBreaker,
        connect_timeout: float,
        source: tuple[str, int] | None = None,
    ) -> tuple[UpstreamConnection, bool]:
        """(connection, reused). A new connection binds `source` first (the cluster's
        upstream_bind_config). Raises ConnectFailure or PoolOverflow."""
        key = (name, target.host, target.port)
        idle = self.take_idle(name, target)
        if idle is not None:
            return idle, True
        loop = asyncio.get_running_loop()
        while not breaker.try_connection():
            handed = await self._wait_pending(key, breaker, loop)
            if handed is not None:
                if handed.tls is target.tls or handed.tls == target.tls:
                    return handed, True
                handed.close()  # rule 5; its close frees a connection slot for us
        tls = target.tls
        conn = UpstreamConnection(self, key, breaker, self._limits, tls)
        try:
            await open_transport(
                lambda: conn,
                target.host,
                target.port,
                connect_timeout=connect_timeout,
                source=source,
                tls=tls,
                identity=self.identity,
                counters=breaker.stats if tls is not None else None,
            )
        except BaseException:  # ConnectFailure, or cancelled mid-connect
            breaker.end_connection()
            conn.closed = True
            if conn.transport is not None:
                conn.transport.abort()
            raise
        self.opened += 1
        return conn, False

    def release(
        self,
        conn: UpstreamConnection,
        reusable: bool,
        idle_timeout: float | None = 3600.0,
        max_requests: int | None = None,
    ) -> None:
        """Take a connection back after an exchange; close it unless it can serve another."""
        conn.sink = None
        conn.requests += 1
        if (
            not reusable
            or conn.closed
            or conn.transport is None
            or conn.transport.is_closing()
            or (max_requests is not None and conn.requests >= max_requests)
        ):
            conn.close()
            return
        conn.resume_reading()
        if self._hand_over(conn):
            return
        idle = self._idle.get(conn.key)
        if idle is None:
            self._idle[conn.key] = [conn]
        else:
            idle.append(conn)
        loop = conn.loop
        conn.idle_deadline = loop.time() + idle_timeout if idle_timeout is not None else _NEVER
        if conn.idle_deadline != _NEVER and (
            self._sweep is None or self._sweep.when() > conn.idle_deadline
        ):
            self._arm_sweep(loop, conn.idle_deadline)

    def close_backend(self, name: str) -> None:
        """Close every idle connection of a removed backend (busy ones close on release)."""
        for key in [k for k in self._idle if k[0] == name]:
            for conn in self._idle.pop(key):
                conn.close()

    def close_removed_hosts(self, name: str, kept: set[tuple[str, int]]) -> None:
        """Close idle connections to endpoints that left the backend, as Envoy drains a removed
        host's pool: a pod that comes back later on the same address would answer a stale
        connection with a reset."""
        for key in [k for k in self._idle if k[0] == name and (k[1], k[2]) not in kept]:
            for conn in self._idle.pop(key):
                conn.close()

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def forget(self, conn: UpstreamConnection) -> None:
        """A connection closed: drop it from the idle list and free its slot for a waiter."""
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
        if self._waiters:  # a connection slot of this cluster is free: let one waiter connect
            for key, queue in self._waiters.items():
                if key[0] == conn.key[0] and _resolve_first(queue, None):
                    break

    async def _wait_pending(
        self, key: PoolKey, breaker: ConnectionBreaker, loop: asyncio.AbstractEventLoop
    ) -> UpstreamConnection | None:
        """Wait as a pending request: a handed-over connection, or None (try to connect)."""
        if not breaker.try_pending():
            raise PoolOverflow("max connections and max pending requests")
        waiter: asyncio.Future[UpstreamConnection | None] = loop.create_future()
        queue = self._waiters.setdefault(key, deque())
        queue.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                handed = waiter.result()
                assert handed is not None
                self.release(handed, True)  # handed over as we were cancelled: pass it on
            raise
        finally:
            breaker.end_pending()
            if waiter in queue:
                queue.remove(waiter)
            if not queue:
                self._waiters.pop(key, None)

    def _hand_over(self, conn: UpstreamConnection) -> bool:
        """Give a released connection straight to a pending request of its endpoint."""
        queue = self._waiters.get(conn.key)
        return queue is not None and _resolve_first(queue, conn)

    def _arm_sweep(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """One timer per pool (not per release): at most every `_SWEEP` seconds, sooner when a
        connection's idle timeout is due sooner."""
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep = loop.call_at(min(deadline, loop.time() + _SWEEP), self._sweep_idle)

    def _sweep_idle(self) -> None:
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        soonest = _NEVER
        for conns in self._idle.values():
            for conn in list(conns):
                if conn.idle_deadline <= now:
                    conn.close()  # connection_lost removes it from the list
                else:
                    soonest = min(soonest, conn.idle_deadline)
        if soonest != _NEVER:
            self._arm_sweep(loop, soonest)


def _resolve_first(
    queue: deque[asyncio.Future[UpstreamConnection | None]], value: UpstreamConnection | None
) -> bool:
    while queue:
        waiter = queue.popleft()
        if not waiter.done():
            waiter.set_result(value)
            return True
    return False
