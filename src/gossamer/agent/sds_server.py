"""SdsServer: `envoy.service.secret.v3.SecretDiscoveryService` on a Unix socket (grpc.aio).

Envoy opens one StreamSecrets stream per secret name. Each stream is a reader task that feeds
requests to its `SecretStream` and a writer loop that wakes on a request or on `update` (a new
certificate) and sends whatever the protocol owes; a slow stream delays nobody. FetchSecrets
answers from the current secrets; DeltaSecrets is UNIMPLEMENTED (Envoy's SDS is SotW here).
The socket is 0600: whoever can connect can read the workload's private key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from gossamer.agent.sds_stream import PeerProtocolError, SecretStream, Verdict, content_version
from gossamer.agent.secret_resources import SECRET_NAMES, packed_secrets
from gossamer.transport.tls import IdentityMaterial

log = logging.getLogger("gossamer.agent")
SERVICE = "envoy.service.secret.v3.SecretDiscoveryService"


@dataclass(eq=False, slots=True)
class _Live:
    state: SecretStream
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    error: PeerProtocolError | None = None


class SdsServer:
    """Serves `default` and `ROOTCA` once `update` gave it a certificate; `stop` ends streams."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._secrets: Mapping[str, any_pb2.Any] = MappingProxyType({})
        self._streams: dict[int, _Live] = {}
        self._ids = itertools.count(1)
        self._prefix = os.urandom(3).hex()
        self._server: grpc.aio.Server | None = None
        self.pushes = 0

    async def start(self) -> None:
        """Bind the socket (a stale one from an earlier run is replaced) and serve."""
        if self._server is not None:
            raise RuntimeError("SdsServer already started")
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        server = grpc.aio.server()
        handlers = {
            "StreamSecrets": grpc.stream_stream_rpc_method_handler(
                self._stream_secrets,
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
            ),
            "FetchSecrets": grpc.unary_unary_rpc_method_handler(
                self._fetch_secrets,
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
            ),
            "DeltaSecrets": grpc.stream_stream_rpc_method_handler(
                self._delta_secrets,
                request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=discovery_pb2.DeltaDiscoveryResponse.SerializeToString,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        try:
            bound = server.add_insecure_port(f"unix:{self.socket_path}")
        except RuntimeError as exc:
            raise OSError(f"cannot bind SDS socket {self.socket_path}: {exc}") from exc
        if not bound:
            raise OSError(f"cannot bind SDS socket {self.socket_path}")
        await server.start()
        self.socket_path.chmod(0o600)
        self._server = server
        log.info("SDS serving on %s", self.socket_path)

    async def stop(self, grace: float | None = None) -> None:
        """End every stream and release the socket; never raises."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
        with contextlib.suppress(OSError):
            self.socket_path.unlink(missing_ok=True)

    def update(self, material: IdentityMaterial) -> None:
        """A new certificate (first or renewed): every open stream gets what changed for it."""
        self._secrets = packed_secrets(material)
        leaf = material.leaf()
        log.info(
            "SDS certificate %s serial %x valid until %s: offered to %d stream(s)",
            material.identity, leaf.serial_number, leaf.not_valid_after_utc.isoformat(),
            len(self._streams),
        )  # fmt: skip
        for live in self._streams.values():
            live.wake.set()

    @property
    def streams(self) -> list[SecretStream]:
        return [live.state for live in self._streams.values()]

    async def _stream_secrets(
        self,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext[
            discovery_pb2.DiscoveryRequest, discovery_pb2.DiscoveryResponse
        ],
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        live = _Live(SecretStream.numbered(next(self._ids), self._prefix))
        self._streams[live.state.id] = live
        reader = asyncio.create_task(self._read(requests, live), name=f"sds-{live.state.id}")
        try:
            while True:
                await live.wake.wait()
                live.wake.clear()
                if live.error is not None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(live.error))
                if live.ended:
                    return
                response = live.state.plan(self._secrets)
                if response is not None:
                    self.pushes += 1
                    log.info(
                        "SDS push %s version %s nonce %s to %s (stream %d)",
                        ",".join(sorted(live.state.names)), response.version_info,
                        response.nonce, live.state.node_id or "?", live.state.id,
                    )  # fmt: skip
                    yield response
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._streams.pop(live.state.id, None)

    async def _read(
        self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], live: _Live
    ) -> None:
        try:
            async for request in requests:
                verdict = live.state.on_request(request)
                if verdict is Verdict.NACK:
                    log.warning(
                        "SDS NACK from %s on stream %d: %s",
                        live.state.node_id or "?", live.state.id, live.state.last_nack,
                    )  # fmt: skip
                elif verdict is Verdict.INITIAL:
                    self._warn_unknown(live.state)
                live.wake.set()
        except PeerProtocolError as exc:
            live.error = exc
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the client went away
        finally:
            live.ended = True  # whatever ended the reader ends the stream
            live.wake.set()

    def _warn_unknown(self, stream: SecretStream) -> None:
        unknown = sorted(stream.names - set(SECRET_NAMES))
        if unknown:
            log.warning(
                "SDS stream %d asks for %s: only %s are served; it will wait",
                stream.id, unknown, list(SECRET_NAMES),
            )  # fmt: skip

    async def _fetch_secrets(
        self,
        request: discovery_pb2.DiscoveryRequest,
        context: grpc.aio.ServicerContext[
            discovery_pb2.DiscoveryRequest, discovery_pb2.DiscoveryResponse
        ],
    ) -> discovery_pb2.DiscoveryResponse:
        names = sorted(set(request.resource_names))
        missing = [name for name in names if name not in self._secrets]
        if missing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"no secret {missing} yet")
        selection = {name: self._secrets[name] for name in names}
        return discovery_pb2.DiscoveryResponse(
            version_info=content_version(selection),
            resources=[selection[name] for name in names],
            type_url=request.type_url or "",
        )

    async def _delta_secrets(
        self,
        requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext[
            discovery_pb2.DeltaDiscoveryRequest, discovery_pb2.DeltaDiscoveryResponse
        ],
    ) -> AsyncIterator[discovery_pb2.DeltaDiscoveryResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "delta SDS is not served; use SotW")
        yield discovery_pb2.DeltaDiscoveryResponse()  # pragma: no cover (abort raises)
