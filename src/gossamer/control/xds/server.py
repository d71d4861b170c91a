"""AdsServer: Envoy's AggregatedDiscoveryService (state of the world) over grpc.aio."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from gossamer.control.xds.debounce import Debouncer
from gossamer.control.xds.resources import SnapshotSource, XdsResource, short_name
from gossamer.control.xds.status import ProxyStatusView
from gossamer.control.xds.stream import PeerProtocolError, StreamState, Verdict
from gossamer.control.xds.wire import ResponseCache

log = logging.getLogger(__name__)

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


def _raw(data: bytes) -> bytes:
    """Response serializer: responses are written already serialized (see wire.py)."""
    return data


@dataclass(eq=False, slots=True)
class _Stream:
    """One live ADS stream: its protocol state and the wake-up that coalesces its pushes."""

    id: int
    state: StreamState
    connected_at: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


class AdsServer:
    """Serves StreamAggregatedResources (SotW) from a SnapshotSource; Delta answers UNIMPLEMENTED.

    Life cycle: `start` binds and serves; `stop` ends every stream (clients see UNAVAILABLE or
    CANCELLED and reconnect) and the debounce task, then releases the port. Each stream runs a
    TaskGroup of a reader and a sender; a push only sets the stream's wake-up event, so a slow
    stream delays nobody and has at most one push pending. Errors escaping the snapshot source
    are logged and skip that push; a client that breaks the protocol gets INVALID_ARGUMENT.
    """

    def __init__(
        self,
        source: SnapshotSource,
        *,
        debounce: float = 0.1,
        max_delay: float = 1.0,
        response_cache_size: int = 4096,
    ) -> None:
        self._source = source
        self._debouncer = Debouncer(debounce, max_delay)
        self._changed = asyncio.Event()
        token = os.urandom(4).hex()
        self.control_plane_id = f"gossamer-{token}"
        self.cache = ResponseCache(self.control_plane_id, response_cache_size)
        # A per-instance prefix keeps nonces unique across control-plane restarts.
        self._nonces = (f"{token}-{n}" for n in itertools.count(1))
        self._stream_ids = itertools.count(1)
        self._streams: dict[int, _Stream] = {}
        self._server: grpc.aio.Server | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.port = 0  # bound port, once started
        self.revision = 0  # latest revision pushed
        self.pushes = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind (port 0 = ephemeral) and serve; returns the bound port.

        Raises OSError if the address cannot be bound (SO_REUSEPORT is off, so a port held by
        another control plane fails here) and RuntimeError if already started.
        """
        if self._server is not None:
            raise RuntimeError("AdsServer already started")
        # No SO_REUSEPORT: a second control plane on the same port must fail, not share it.
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        handlers = {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._sotw,
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=_raw,
            ),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._delta,
                request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=_raw,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as exc:  # grpcio reports a failed bind this way
            raise OSError(f"cannot bind ADS server to {address}: {exc}") from exc
        if not bound:
            raise OSError(f"cannot bind ADS server to {address}")
        await server.start()
        self._server, self.port = server, int(bound)
        self._pusher = asyncio.create_task(self._debounce_loop(), name="ads-debounce")
        log.info("ADS server %s listening on %s", self.control_plane_id, bound)
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving and release the port; never raises. Streams get `grace` seconds
        (None: none) before they are cancelled; the same object may be started again."""
        server, self._server = self._server, None
        pusher, self._pusher = self._pusher, None
        if pusher is not None:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        if server is not None:
            await server.stop(grace)

    def notify(self, revision: int) -> None:
        """Config changed (store or registry) at `revision`: push after the debounce.

        Call it on the server's event loop (it is not thread-safe); it never raises or blocks.
        Before `start` the change is remembered and pushed once the server runs.
        """
        self._debouncer.note(time.monotonic(), revision)
        self._changed.set()

    def connections(self) -> list[ProxyStatusView]:
        """Every identified stream, oldest first."""
        return [
            ProxyStatusView.of(s.id, s.state, s.connected_at)
            for s in self._streams.values()
            if s.state.node is not None
        ]

    def sent_resources(self, stream_id: int) -> dict[str, tuple[XdsResource, ...]]:
        """What was last sent on a stream, per type URL; empty if the stream is gone."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return {}
        return {t: ts.sent_resources for t, ts in stream.state.types.items() if ts.sent_nonce}

    async def _debounce_loop(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            # Each new change may move the deadline: wait for it or for the deadline, recompute.
            while delay := self._debouncer.wait(time.monotonic()):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                self._changed.clear()
            if self._debouncer.first_at is None:
                continue
            changes = self._debouncer.changes
            self.revision = self._debouncer.fire()
            self.pushes += 1
            log.debug("push %d: revision %d after %d changes", self.pushes, self.revision, changes)
            for stream in self._streams.values():
                if stream.state.node is not None:
                    stream.wake.set()

    async def _sotw(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, bytes]
    ) -> None:
        stream = _Stream(next(self._stream_ids), StreamState(self._nonces.__next__), time.time())
        self._streams[stream.id] = stream
        problem: str | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read(stream, requests))
                tasks.create_task(self._send(stream, context))
        except* PeerProtocolError as group:
            problem = str(group.exceptions[0])
        finally:
            del self._streams[stream.id]
            log.info("ADS stream %d closed (%r)", stream.id, stream.state)
        if problem is not None:
            log.warning("ADS stream %d: %s", stream.id, problem)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

    async def _read(self, stream: _Stream, requests: AsyncIterator[Any]) -> None:
        """Apply each request; wake the sender when one owes a response. Ends on half-close."""
        async for request in requests:
            first = stream.state.node is None
            verdict = stream.state.on_request(request, time.time())
            if first:
                log.info("ADS stream %d: %r", stream.id, stream.state.node)
            if verdict is Verdict.NACK:
                log.warning(
                    "ADS stream %d: %s NACK %s: %s",
                    stream.id,
                    stream.state.node.id if stream.state.node else "?",
                    short_name(request.type_url),
                    request.error_detail.message,
                )
            if stream.state.owed:
                stream.wake.set()
        stream.closed = True
        stream.wake.set()

    async def _send(self, stream: _Stream, context: grpc.aio.ServicerContext[Any, bytes]) -> None:
        """Write what each wake-up calls for, in push order; returns once the reader is done."""
        while True:
            await stream.wake.wait()
            stream.wake.clear()
            node = stream.state.node
            if stream.closed:
                return
            if node is None:  # cannot happen: only a request with a node wakes a new stream
                continue
            try:
                snapshot = self._source.snapshot(node)
            except Exception:
                log.exception("snapshot source failed for %s; push skipped", node.id)
                continue
            for send in stream.state.plan(snapshot, time.time()):
                await context.write(self.cache.encode(send))

    async def _delta(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, bytes]
    ) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "delta xDS is not served: use state of the world"
        )

    def __repr__(self) -> str:
        return (
            f"<AdsServer {self.control_plane_id} streams={len(self._streams)} "
            f"revision={self.revision} pushes={self.pushes}>"
        )
