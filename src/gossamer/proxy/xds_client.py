"""XdsClient: the sidecar's ADS stream (state of the world, grpc.aio), as Envoy speaks it.

Theory of operation. One stream at a time carries every type. It opens with CDS and LDS
wildcard requests (plus RDS/EDS for names already known, after a reconnect), each with the last
accepted version and no nonce. Every response is folded by the SnapshotBuilder:
 1. Accepted: publish the new ProxyConfig through `on_config`, ACK (the response's version
    and nonce, the current names of that type), then (after LDS or CDS) send RDS or EDS requests
    whose names changed, carrying that type's last nonce so the server treats them as updates.
 2. Rejected (ConfigRejected): NACK (the response's nonce, the LAST ACCEPTED version,
    google.rpc.Status INTERNAL (13, as Envoy 1.40 sends) with the reason); failing resources
    keep their last good version. As Envoy, the resources of the response that did compile
    still apply (PartiallyRejected.config is published, and RDS/EDS names follow it).
 3. Stream failure or unreachable control plane: retry after exponential backoff with full
    jitter (0.1 s doubling to 10 s; reset once a stream delivers a response). The published
    config stays in force meanwhile; a new stream resends subscriptions with nonces cleared.
 4. Initial fetch timeout (Envoy's 15 s default): once LDS and CDS are in, RDS/EDS still
    missing after it no longer hold back `initialized` (readiness); a new config says so.
`run()` returns after `stop()`; it raises only if `on_config` raises (a bug in the caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.config.snapshot import PartiallyRejected, ProxyConfig, SnapshotBuilder
from gossamer.xdstypes import CLUSTER, ENDPOINT, LISTENER, ROUTE, short_name

log = logging.getLogger(__name__)

NACK_CODE = 13  # google.rpc.Code INTERNAL: what Envoy 1.40 puts in a NACK's error_detail
USER_AGENT = "gossamer"
# Envoy's ConfigSource.initial_fetch_timeout default (0 = wait forever). LDS and CDS always
# wait (Istio's bootstrap sets 0 for them); RDS and EDS give up after this during startup.
INITIAL_FETCH_TIMEOUT = 15.0
# gRPC caps received messages at 4 MiB by default; Envoy does not cap xDS responses, and a
# mesh's CDS or EDS easily outgrows 4 MiB.
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", -1),)
_Outbox = asyncio.Queue[Any]  # DiscoveryRequests of one stream, in order


def make_node(node_id: str, cluster: str, metadata: Mapping[str, Any]) -> Any:
    """The xDS `node` of a sidecar: id, cluster and Istio metadata
    (runtime.envoy_bootstrap.node_metadata)."""
    meta = struct_pb2.Struct()
    meta.update(dict(metadata))
    return base_pb2.Node(id=node_id, cluster=cluster, metadata=meta, user_agent_name=USER_AGENT)


class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, base * 2**n)]."""

    def __init__(
        self, base: float = 0.1, cap: float = 10.0, rand: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = cap
        self._rand = rand
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return max(self.base / 10, ceiling * self._rand())

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True, slots=True)
class XdsStatus:
    """What the admin shows about the xDS connection (`versions` by type URL)."""

    target: str
    connected: bool
    versions: Mapping[str, str]
    complete: bool
    initialized: bool  # Envoy's init done (LIVE): latched, see config/snapshot.py rule 7
    last_nack: str | None  # "<type>: <reason>" of the most recent NACK
    nacks: int
    streams: int  # streams opened so far (1 + reconnects)
    last_error: str | None  # why the last stream ended or failed to open


class XdsClient:
    """ADS client of one sidecar. `on_config` runs synchronously on the event loop after every
    accepted response; it must not block. Use one `run()` task; `stop()` ends it."""

    def __init__(
        self,
        target: str,
        node: Any,
        on_config: Callable[[ProxyConfig], None],
        *,
        backoff: Backoff | None = None,
        initial_fetch_timeout: float = INITIAL_FETCH_TIMEOUT,
    ) -> None:
        self.target = target
        self.node = node
        self.on_config = on_config
        self.builder = SnapshotBuilder()
        self._backoff = backoff or Backoff()
        self._stopping = asyncio.Event()
        self._call: Any = None
        self._connected = False
        self._nacks = 0
        self._last_nack: str | None = None
        self._streams = 0
        self._last_error: str | None = None
        # Per stream: names last requested and last nonce received, by type URL.
        self._names: dict[str, frozenset[str]] = {}
        self._nonces: dict[str, str] = {}
        self._initial_fetch_timeout = initial_fetch_timeout
        self._initial_fetch_timer: asyncio.TimerHandle | None = None

    def status(self) -> XdsStatus:
        config = self.builder.config
        return XdsStatus(
            target=self.target,
            connected=self._connected,
            versions=dict(config.versions),
            complete=config.complete,
            initialized=config.initialized,
            last_nack=self._last_nack,
            nacks=self._nacks,
            streams=self._streams,
            last_error=self._last_error,
        )

    async def run(self) -> None:
        """Keep a stream open until `stop()`, reconnecting with backoff."""
        while not self._stopping.is_set():
            try:
                await self._stream()
            except (
                grpc.aio.AioRpcError,
                grpc.aio.UsageError,
                asyncio.InvalidStateError,
                EOFError,
            ) as exc:
                self._last_error = _describe(exc)
            except asyncio.CancelledError:
                if not (self._stopping.is_set() and _not_cancelling()):
                    raise
                break  # stop() cancelled the call under a read or write, not our task
            finally:
                self._connected = False
                self._call = None
            if self._stopping.is_set():
                break
            delay = self._backoff.next()
            log.info("xDS %s: %s; retrying in %.2fs", self.target, self._last_error, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def stop(self) -> None:
        """End the stream and make `run()` return; idempotent, never raises."""
        self._stopping.set()
        if self._initial_fetch_timer is not None:
            self._initial_fetch_timer.cancel()
            self._initial_fetch_timer = None
        call = self._call
        if call is not None:
            call.cancel()

    async def _stream(self) -> None:
        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            # Requests go through a queue grpc drains itself: a write never waits on a call
            # that is still connecting (or already cancelled by stop()).
            outbox: _Outbox = asyncio.Queue()
            call = self._call = stub.StreamAggregatedResources(_drain(outbox))
            self._streams += 1
            self._nonces.clear()
            self._names.clear()
            first = True
            for type_url, names in self._initial_subscriptions():
                self._request(outbox, type_url, names, first=first)
                first = False
            while not self._stopping.is_set():
                response = await call.read()
                if response is grpc.aio.EOF:
                    raise EOFError("control plane closed the stream")
                if not self._connected:
                    self._connected = True
                    self._last_error = None
                    self._backoff.reset()
                self._on_response(outbox, response)

    def _initial_subscriptions(self) -> list[tuple[str, frozenset[str]]]:
        """Envoy's order: CDS (wildcard), EDS, LDS (wildcard), RDS; EDS and RDS only when a
        previous stream already named some."""
        out = [(CLUSTER, frozenset[str]())]
        if eds := self.builder.eds_names():
            out.append((ENDPOINT, eds))
        out.append((LISTENER, frozenset[str]()))
        if rds := self.builder.route_names():
            out.append((ROUTE, rds))
        return out

    def _on_response(self, outbox: _Outbox, response: Any) -> None:
        type_url = str(response.type_url)
        nonce = str(response.nonce)
        self._nonces[type_url] = nonce
        names = self._names.get(type_url, frozenset())
        error: Any = None
        config: ProxyConfig | None
        try:
            config = self.builder.apply(type_url, str(response.version_info), response.resources)
        except ConfigRejected as rejected:
            self._nacks += 1
            self._last_nack = f"{short_name(type_url)}: {rejected}"
            log.warning(
                "xDS NACK %s version %s: %s", short_name(type_url), response.version_info, rejected
            )
            error = status_pb2.Status(code=NACK_CODE, message=str(rejected))
            # Envoy applies the resources that did compile, then NACKs the rest.
            config = rejected.config if isinstance(rejected, PartiallyRejected) else None
        if config is not None:
            self.on_config(config)  # in force before the ACK says so, as Envoy
            self._watch_initial_fetch(config)
        self._request(outbox, type_url, names, nonce=nonce, error=error)
        if config is None:
            return
        follow = {LISTENER: ROUTE, CLUSTER: ENDPOINT}.get(type_url)
        if follow is not None:
            wanted = self.builder.route_names() if follow == ROUTE else self.builder.eds_names()
            if wanted != self._names.get(follow, frozenset()):
                self._request(outbox, follow, wanted, nonce=self._nonces.get(follow, ""))

    def _watch_initial_fetch(self, config: ProxyConfig) -> None:
        """Arm Envoy's initial fetch timeout once LDS and CDS are in and RDS/EDS are awaited."""
        timer = self._initial_fetch_timer
        if config.initialized:
            if timer is not None:
                timer.cancel()
                self._initial_fetch_timer = None
            return
        waiting = LISTENER in config.versions and CLUSTER in config.versions
        if timer is None and waiting and self._initial_fetch_timeout > 0:
            self._initial_fetch_timer = asyncio.get_running_loop().call_later(
                self._initial_fetch_timeout, self._initial_fetch_expired
            )

    def _initial_fetch_expired(self) -> None:
        self._initial_fetch_timer = None
        config = self.builder.give_up_initial_fetch()
        if config is not None:
            missing = ", ".join(sorted(config.missing))
            log.warning(
                "xDS initial fetch timed out after %gs; initialized without %s",
                self._initial_fetch_timeout,
                missing,
            )
            self.on_config(config)

    def _request(
        self,
        outbox: _Outbox,
        type_url: str,
        names: frozenset[str],
        *,
        nonce: str = "",
        error: Any = None,
        first: bool = False,
    ) -> None:
        """One DiscoveryRequest; `version_info` is always the last accepted version (a NACK
        therefore names the version the client still runs)."""
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            version_info=self.builder.version(type_url),
            resource_names=sorted(names),
            response_nonce=nonce,
        )
        if first:
            request.node.CopyFrom(self.node)
        if error is not None:
            request.error_detail.CopyFrom(error)
        self._names[type_url] = names
        outbox.put_nowait(request)


async def _drain(outbox: _Outbox) -> AsyncIterator[Any]:
    while True:
        yield await outbox.get()


def _not_cancelling() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() == 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
