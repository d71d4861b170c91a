"""A Dataplane on free loopback ports with in-process upstreams, torn down by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gossamer.proxy.config.snapshot import SnapshotBuilder
from gossamer.proxy.dataplane import Dataplane, DataplaneOptions
from tests.proxy.server.protos import free_port, http_listener, proxy_config, route, routes


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
