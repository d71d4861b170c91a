"""The upstream keep-alive pool against real loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from gossamer.codec.http1 import EndOfMessage
from gossamer.proxy.upstream.breaker import CircuitBreaker
from gossamer.proxy.upstream.cluster import Thresholds
from gossamer.proxy.upstream.connect import ConnectFailure
from gossamer.proxy.upstream.connection import UpstreamConnection
from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.proxy.upstream.pool import ConnectionPool, PoolOverflow
from gossamer.proxy.upstream.stats import ClusterStats
from gossamer.waits import bounded


class Sink:
    """Collects the events of one exchange (what the server's UpstreamCall does)."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.lost = False
        self.done = asyncio.Event()

    def on_events(self, events: object) -> None:
        assert isinstance(events, list)
        self.events += events
        if any(isinstance(e, EndOfMessage) for e in events):
            self.done.set()

    def on_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.done.set()


@asynccontextmanager
async def server(close_after: int | None = None) -> AsyncIterator[tuple[Endpoint, list[int]]]:
    """A keep-alive server answering `ok`; closes each connection after `close_after`
    requests. Yields the endpoint and a one-item list counting accepted connections."""
    accepted = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        served = 0
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                served += 1
                if close_after is not None and served >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield Endpoint("127.0.0.1", srv.sockets[0].getsockname()[1]), accepted
    finally:
        srv.close()


def breaker(max_connections: int = 1024, max_pending: int = 1024) -> CircuitBreaker:
    limits = Thresholds(max_connections=max_connections, max_pending_requests=max_pending)
    return CircuitBreaker(limits, ClusterStats())


async def exchange(conn: UpstreamConnection) -> Sink:
    sink = Sink()
    conn.sink = sink
    conn.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    async with asyncio.timeout(5):
        await sink.done.wait()
    return sink


async def test_released_connection_is_reused() -> None:
    pool, cb = ConnectionPool(), breaker()
    async with server() as (endpoint, accepted):
        conn, reused = await pool.acquire("a", endpoint, cb, 1.0)
        assert not reused
        await exchange(conn)
        pool.release(conn, True)
        again, reused = await pool.acquire("a", endpoint, cb, 1.0)
        assert (again, reused) == (conn, True)
        await exchange(again)
        assert accepted[0] == 1 and cb.stats.cx_active == 1
        pool.release(again, True)
        pool.close()
        await asyncio.sleep(0.05)
        assert cb.stats.cx_active == 0


async def test_idle_connection_closed_by_the_server_is_not_handed_out() -> None:
    pool, cb = ConnectionPool(), breaker()
    async with server(close_after=1) as (endpoint, accepted):
        conn, _ = await pool.acquire("a", endpoint, cb, 1.0)
        await exchange(conn)
        pool.release(conn, True)
        await asyncio.sleep(0.1)  # the server's FIN arrives while the connection is idle
        fresh, reused = await pool.acquire("a", endpoint, cb, 1.0)
        assert fresh is not conn and not reused
        assert accepted[0] == 2
        pool.close()


async def test_unreusable_and_exhausted_connections_are_closed() -> None:
    pool, cb = ConnectionPool(), breaker()
    async with server() as (endpoint, _):
        conn, _ = await pool.acquire("a", endpoint, cb, 1.0)
        await exchange(conn)
        pool.release(conn, False)
        assert pool.idle_count("a", endpoint) == 0
        conn, _ = await pool.acquire("a", endpoint, cb, 1.0)
        await exchange(conn)
        pool.release(conn, True, max_requests=1)
        assert pool.idle_count("a", endpoint) == 0
        await asyncio.sleep(0.05)
        assert cb.stats.cx_active == 0


async def test_idle_timeout_closes_the_connection() -> None:
    pool, cb = ConnectionPool(), breaker()
    async with server() as (endpoint, _):
        conn, _ = await pool.acquire("a", endpoint, cb, 1.0)
        await exchange(conn)
        pool.release(conn, True, idle_timeout=0.05)
        await asyncio.sleep(0.2)
        assert conn.closed and pool.idle_count("a", endpoint) == 0


async def test_breaker_refusal_and_connect_failure() -> None:
    pool, cb = ConnectionPool(), breaker(max_connections=1, max_pending=0)
    async with server() as (endpoint, _):
        conn, _ = await pool.acquire("a", endpoint, cb, 1.0)
        with pytest.raises(PoolOverflow):
            await pool.acquire("a", endpoint, cb, 1.0)
        assert cb.stats.upstream_cx_overflow == 1
        assert cb.stats.upstream_rq_pending_overflow == 1
        conn.close()
        await asyncio.sleep(0.05)
    with pytest.raises(ConnectFailure):
        await pool.acquire("a", endpoint, cb, 1.0)  # the server is gone now
    assert cb.stats.cx_active == 0


async def test_close_backend_drops_only_its_idle_connections() -> None:
    pool, cb = ConnectionPool(), breaker()
    async with server() as (endpoint, _):
        a, _ = await pool.acquire("a", endpoint, cb, 1.0)
        b, _ = await pool.acquire("b", endpoint, cb, 1.0)
        pool.release(a, True)
        pool.release(b, True)
        pool.close_backend("a")
        assert (pool.idle_count("a", endpoint), pool.idle_count("b", endpoint)) == (0, 1)
        pool.close()


async def one_busy_one_waiting(
    pool: ConnectionPool, endpoint: Endpoint, cb: CircuitBreaker
) -> tuple[UpstreamConnection, asyncio.Future[tuple[UpstreamConnection, bool]]]:
    """The connection taken by a first request, and a second acquire left pending behind it
    (max_connections=1)."""
    first, _ = await pool.acquire("a", endpoint, cb, 1.0)
    waiting = asyncio.ensure_future(pool.acquire("a", endpoint, cb, 1.0))
    await asyncio.sleep(0.05)
    return first, waiting


async def test_pending_request_gets_the_released_connection() -> None:
    pool, cb = ConnectionPool(), breaker(max_connections=1, max_pending=1)
    async with server() as (endpoint, accepted):
        first, waiting = await one_busy_one_waiting(pool, endpoint, cb)
        assert not waiting.done() and cb.stats.rq_pending_active == 1
        with pytest.raises(PoolOverflow):  # the one pending slot is taken
            await pool.acquire("a", endpoint, cb, 1.0)
        await exchange(first)
        pool.release(first, True)
        handed, reused = await bounded(waiting, 2)
        assert (handed, reused) == (first, True)
        assert cb.stats.rq_pending_active == 0 and accepted[0] == 1
        pool.release(handed, True)
        pool.close()


async def test_pending_request_connects_when_a_connection_closes() -> None:
    pool, cb = ConnectionPool(), breaker(max_connections=1, max_pending=1)
    async with server() as (endpoint, accepted):
        first, waiting = await one_busy_one_waiting(pool, endpoint, cb)
        pool.release(first, False)  # closed, not reusable: its slot frees up
        fresh, reused = await bounded(waiting, 2)
        assert fresh is not first and not reused and accepted[0] == 2
        pool.release(fresh, True)
        pool.close()


async def test_close_removed_hosts_drops_idle_connections_to_hosts_that_left() -> None:
    """As Envoy drains a removed host's pool: a pod that comes back on the same address must
    not be sent a request over the old pod's connection."""
    pool, cb = ConnectionPool(), breaker()
    async with server() as (gone, gone_accepted), server() as (staying, _):
        to_gone, _ = await pool.acquire("a", gone, cb, 1.0)
        to_staying, _ = await pool.acquire("a", staying, cb, 1.0)
        other_backend, _ = await pool.acquire("b", gone, cb, 1.0)
        busy, _ = await pool.acquire("a", gone, cb, 1.0)
        for conn in (to_gone, to_staying, other_backend):
            pool.release(conn, True)
        pool.close_removed_hosts("a", {(staying.host, staying.port)})
        await asyncio.sleep(0.05)
        assert to_gone.closed and not to_staying.closed and not other_backend.closed
        assert pool.idle_count("a", gone) == 0
        assert pool.idle_count("a", staying) == pool.idle_count("b", gone) == 1
        assert not (await exchange(busy)).lost  # a request in flight finishes
        pool.release(busy, False)
        again, reused = await pool.acquire("a", gone, cb, 1.0)
        assert not reused and gone_accepted[0] == 4  # a new connection, not the old one
        pool.release(again, False)
        pool.close()
