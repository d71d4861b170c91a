"""Test support for the xDS client: a sidecar node, a published-config recorder with bounded
waits, start/stop of a running client, fast in-process ADS servers, and small xDS worlds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gossamer.codec.headers import Headers
from gossamer.control.translate import listeners as translate
from gossamer.control.xds import AdsServer, Snapshot, SnapshotSource
from gossamer.control.xds.status import ProxyStatusView
from gossamer.proxy.config.snapshot import ProxyConfig
from gossamer.proxy.routing import Forward
from gossamer.proxy.xds_client import Backoff, XdsClient, make_node
from gossamer.runtime.envoy_bootstrap import node_id, node_metadata
from gossamer.waits import bounded
from tests.control.xds.xds_world import cluster, endpoints
from tests.proxy.config.sent_listeners import rds_listener, router_first, with_hcm_edit

NODE_ID = node_id("sidecar", "10.0.0.9", "productpage-1")
REVIEWS = "reviews.default.svc.cluster.local"


def sidecar_node() -> Any:
    meta = node_metadata(labels={"app": "productpage"}, instance_ips=["10.0.0.9"])
    return make_node(NODE_ID, "productpage.default", meta)


@dataclass
class Published:
    """Every ProxyConfig the client published, and a bounded wait for one that satisfies a test."""

    configs: list[ProxyConfig] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, config: ProxyConfig) -> None:
        self.configs.append(config)
        self.changed.set()

    @property
    def last(self) -> ProxyConfig:
        return self.configs[-1]

    async def until(
        self, check: Callable[[ProxyConfig], bool], within: float = 10.0
    ) -> ProxyConfig:
        deadline = time.monotonic() + within
        while not (self.configs and check(self.configs[-1])):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                last = self.configs[-1] if self.configs else None
                raise AssertionError(f"no such config within {within}s; last {last!r}")
            try:
                async with asyncio.timeout(left):
                    await self.changed.wait()
            except TimeoutError:
                pass
        return self.configs[-1]


@dataclass
class Running:
    client: XdsClient
    published: Published
    task: asyncio.Task[None]


async def start_client(port: int, initial_fetch_timeout: float = 15.0) -> Running:
    published = Published()
    client = XdsClient(
        f"127.0.0.1:{port}",
        sidecar_node(),
        published,
        backoff=Backoff(0.05, 0.2),
        initial_fetch_timeout=initial_fetch_timeout,
    )
    return Running(client, published, asyncio.create_task(client.run()))


async def stop_client(running: Running) -> None:
    await running.client.stop()
    await bounded(running.task, 5)


@asynccontextmanager
async def running_client(port: int, initial_fetch_timeout: float = 15.0) -> AsyncIterator[Running]:
    """A client of the ADS server on `port` for the span of a `with` block."""
    running = await start_client(port, initial_fetch_timeout)
    try:
        yield running
    finally:
        await stop_client(running)


def fast_server(source: SnapshotSource) -> AdsServer:
    """An ADS server that pushes within 0.1 s of a change, so tests do not wait on debounce."""
    return AdsServer(source, debounce=0.01, max_delay=0.1)


def node_view(server: AdsServer) -> ProxyStatusView | None:
    """The server's view of our node's latest stream, if it has one."""
    views = [v for v in server.connections() if v.node_id == NODE_ID]
    return views[-1] if views else None


def our_view(server: AdsServer) -> ProxyStatusView:
    view = node_view(server)
    assert view is not None, "the server has no stream from our node"
    return view


def synced(server: AdsServer, shorts: tuple[str, ...] = ("lds", "rds", "cds", "eds")) -> bool:
    """The server saw our node ACK the latest response of each type."""
    view = node_view(server)
    return view is not None and all(view.status(s).name == "SYNCED" for s in shorts)


def with_added(snapshot: Snapshot, *messages: Any, revision: int) -> Snapshot:
    """`snapshot` plus more resources, as a new revision."""
    present = [r for of_type in snapshot.resources.values() for r in of_type.values()]
    return Snapshot.build([*messages, *present], revision=revision)


@dataclass
class Call:
    """A request head as routing reads it (routing.request.RequestView)."""

    target: bytes = b"/"
    method: bytes = b"GET"
    headers: Headers = field(default_factory=Headers)


def cluster_for(config: ProxyConfig, authority: bytes, port: int = 9080) -> str:
    """Where the outbound listener for `port` sends a GET / with this Host."""
    listener = config.listeners[f"0.0.0.0_{port}"]
    chain = listener.chain_for(port)
    assert chain is not None
    table = config.route_table(chain.handler)  # type: ignore[arg-type]
    assert table is not None
    route = table.select(Call(), authority)
    assert route is not None and isinstance(route.action, Forward)
    return str(route.action.pick_cluster(0.5))


def tcp_world(listener_port: int, backend_port: int, *, bad: bool = False) -> Snapshot:
    """A TCP listener to one EDS cluster; `bad` adds an HTTP listener Envoy would NACK."""
    tcp = translate.tcp_proxy_filter("db", [("db", 1)])
    messages: list[Any] = [
        translate.socket_listener("db", "127.0.0.1", listener_port, [tcp], bind=True),
        cluster("db"),
        endpoints("db", backend_port),
    ]
    if bad:
        messages.append(with_hcm_edit(rds_listener("web"), router_first))
    return Snapshot.build(messages, revision=2 if bad else 1)
