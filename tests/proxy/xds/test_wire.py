"""The XdsClient's requests on the wire, against a scripted ADS server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.service.discovery.v3 import discovery_pb2

from gossamer.control.xds import CLUSTER, ENDPOINT, LISTENER
from tests.control.xds.xds_world import cluster
from tests.proxy.xds.clients import NODE_ID, running_client, tcp_world


class RecordingAds:
    """A scripted ADS server: records every request and sends the responses a test queues."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.server: Any = None
        self.port = 0

    async def start(self) -> None:
        async def stream(requests: Any, context: Any) -> Any:
            async def record() -> None:
                async for request in requests:
                    self.requests.put_nowait(request)

            reader = asyncio.create_task(record())
            try:
                while True:
                    yield await self.responses.get()
            finally:
                reader.cancel()

        handler = grpc.stream_stream_rpc_method_handler(
            stream,
            request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
        )
        service = "envoy.service.discovery.v3.AggregatedDiscoveryService"
        generic = grpc.method_handlers_generic_handler(
            service, {"StreamAggregatedResources": handler}
        )
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((generic,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    def send(self, type_url: str, version: str, nonce: str, *messages: Any) -> None:
        response = discovery_pb2.DiscoveryResponse(
            type_url=type_url, version_info=version, nonce=nonce
        )
        for m in messages:
            response.resources.add().Pack(m)
        self.responses.put_nowait(response)

    async def next_request(self, type_url: str) -> Any:
        """The next request of this type (others are skipped), within 5 s."""
        async with asyncio.timeout(5):
            while True:
                request = await self.requests.get()
                if request.type_url == type_url:
                    return request


@pytest.fixture
async def scripted() -> AsyncIterator[RecordingAds]:
    ads = RecordingAds()
    await ads.start()
    yield ads
    await ads.server.stop(None)


def broken_listener(port: int) -> Any:
    return tcp_world(port, 1, bad=True).resources[LISTENER]["web"]


async def test_requests_on_the_wire_are_envoys(scripted: RecordingAds) -> None:
    """Node on the first request only; ACK = version + nonce; NACK = the last ACCEPTED version,
    the rejected nonce and google.rpc INTERNAL (as Envoy) naming the resource."""
    async with running_client(scripted.port):
        first = await scripted.next_request(CLUSTER)
        assert first.HasField("node") and first.node.id == NODE_ID
        assert list(first.resource_names) == [] and first.response_nonce == ""
        lds = await scripted.next_request(LISTENER)
        assert not lds.HasField("node")

        scripted.send(CLUSTER, "c1", "n1", cluster("db"))
        ack = await scripted.next_request(CLUSTER)
        assert (ack.version_info, ack.response_nonce) == ("c1", "n1")
        assert not ack.HasField("error_detail")
        eds = await scripted.next_request(ENDPOINT)  # follows the EDS cluster
        assert list(eds.resource_names) == ["db"] and eds.response_nonce == ""

        web = listener_pb2.Listener()
        broken_listener(9080).any.Unpack(web)
        scripted.send(LISTENER, "l1", "n2", web)
        nack = await scripted.next_request(LISTENER)
        assert (nack.version_info, nack.response_nonce) == ("", "n2")  # nothing accepted yet
        assert nack.error_detail.code == 13
        assert nack.error_detail.message.startswith('listener "web"')

        good = tcp_world(7000, 1).resources[LISTENER]["db"]
        db = listener_pb2.Listener()
        good.any.Unpack(db)
        scripted.send(LISTENER, "l2", "n3", db)
        ack = await scripted.next_request(LISTENER)
        assert (ack.version_info, ack.response_nonce) == ("l2", "n3")
        scripted.send(LISTENER, "l3", "n4", db, web)
        nack = await scripted.next_request(LISTENER)
        assert (nack.version_info, nack.response_nonce) == ("l2", "n4")
        assert nack.error_detail.code == 13
