"""A minimal state-of-the-world ADS client over grpc.aio, driven step by step by tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from gossamer.waits import bounded

Response = Any  # discovery_pb2.DiscoveryResponse (protobuf modules are untyped here)


class AdsTestClient:
    """One ADS stream. `node` goes on the first request only, as gRPC does.

    A pump task moves responses into a queue (cancelling a grpc.aio read would cancel the RPC).
    Close with `close()`: it half-closes the stream, closes the channel and awaits the pump.
    """

    def __init__(self, channel: grpc.aio.Channel, node: Any) -> None:
        self.channel = channel
        self.node = node
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        self._sent_node = False
        self._inbox: asyncio.Queue[Response | BaseException] = asyncio.Queue()
        self._pump = asyncio.create_task(self._pump_responses())

    async def _pump_responses(self) -> None:
        try:
            async for response in self.call:
                self._inbox.put_nowait(response)
            self._inbox.put_nowait(EOFError("ADS stream ended"))
        except grpc.aio.AioRpcError as exc:
            self._inbox.put_nowait(exc)
        except asyncio.CancelledError:
            if not self.call.cancelled():
                raise  # our own task was cancelled, not just the RPC
            self._inbox.put_nowait(EOFError("ADS stream cancelled"))

    @classmethod
    def connect(
        cls,
        port: int,
        node_id: str = "proxyless~10.0.0.7~client-1.default~default.svc.cluster.local",
        *,
        user_agent: str = "gRPC Python",
        metadata: dict[str, Any] | None = None,
    ) -> AdsTestClient:
        meta = struct_pb2.Struct()
        meta.update(metadata or {})
        node = base_pb2.Node(
            id=node_id, cluster="client", user_agent_name=user_agent, metadata=meta
        )
        return cls(grpc.aio.insecure_channel(f"127.0.0.1:{port}"), node)

    async def request(
        self,
        type_url: str,
        names: Iterable[str] = (),
        *,
        version: str = "",
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        req = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            version_info=version,
            response_nonce=nonce,
        )
        if not self._sent_node:
            req.node.CopyFrom(self.node)
            self._sent_node = True
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(req)

    async def recv(self, within: float = 5.0) -> Response:
        """The next response; raises the RPC's error, EOFError at its end, TimeoutError."""
        item = await bounded(self._inbox.get(), within)
        if isinstance(item, BaseException):
            raise item
        return item

    async def silent(self, within: float = 0.3) -> bool:
        """True if nothing arrives within `within` seconds; AssertionError otherwise."""
        try:
            item = await bounded(self._inbox.get(), within)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected: {item!r}")

    async def ack(self, response: Response, names: Iterable[str] = ()) -> None:
        await self.request(
            response.type_url, names, version=response.version_info, nonce=response.nonce
        )

    async def nack(
        self, response: Response, message: str, names: Iterable[str] = (), version: str = ""
    ) -> None:
        await self.request(
            response.type_url, names, version=version, nonce=response.nonce, error=message
        )

    async def close(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self.call.done_writing()
        self.call.cancel()
        await self.channel.close()
        await self._pump
