"""A Dataplane on free loopback ports with in-process upstreams, torn down by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from gossamer.proxy.config.snapshot import SnapshotBuilder
from gossamer.proxy.dataplane import Dataplane, DataplaneOptions
from tests.proxy.server.protos import (
    free_port,
    http_listener,
    proxy_config,
    route,
    routes,
    static_cluster,
)
from tests.proxy.server.upstreams import Upstream

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def running(
    *resources: Any, builder: SnapshotBuilder | None = None, **options: Any
) -> AsyncIterator[Dataplane]:
    """A Dataplane serving `resources` (explicit mode, capture listeners on free ports). Pass
    the `builder` later pushes use, as a sidecar has one: unchanged listeners then keep their
    compiled chains and their connections (a changed chain drains its connections)."""
    opts = DataplaneOptions(
        explicit=True, outbound_port=free_port(), inbound_port=free_port(), **options
    )
    dataplane = Dataplane(opts)
    await dataplane.apply(proxy_config(*resources, builder=builder))
    try:
        yield dataplane
    finally:
        await dataplane.close()


def simple(port: int, cluster: str, *entries: Any, domains: list[str] | None = None) -> Any:
    """One HTTP listener on 127.0.0.1:port whose single vhost routes to `cluster` (or
    `entries`)."""
    table = routes("main", (domains or ["*"], list(entries) or [route(cluster)]))
    return http_listener("main", port, table)


@asynccontextmanager
async def _front(up_port: int, entries: Any, options: Any) -> AsyncIterator[tuple[int, Dataplane]]:
    port = free_port()
    cluster = static_cluster("a", up_port)
    async with running(cluster, simple(port, "a", *entries), **options) as dataplane:
        yield port, dataplane


@asynccontextmanager
async def fronting(
    up: Upstream, *entries: Any, **options: Any
) -> AsyncIterator[tuple[int, Dataplane]]:
    """`up`, started here and stopped after, as cluster "a" behind `simple(port, "a",
    *entries)` on a Dataplane run with `options`: yields (port, dataplane)."""
    await up.start()
    try:
        async with _front(up.port, entries, options) as front:
            yield front
    finally:
        await up.stop()


@asynccontextmanager
async def fronting_server(
    serve: Serve, *entries: Any, **options: Any
) -> AsyncIterator[tuple[int, Dataplane]]:
    """As `fronting`, for a bare asyncio server running `serve` on a free loopback port."""
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        async with _front(server.sockets[0].getsockname()[1], entries, options) as front:
            yield front
    finally:
        server.close()
