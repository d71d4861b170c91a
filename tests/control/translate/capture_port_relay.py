"""An ADS relay that moves a sidecar's capture listeners to free ports, so a real Envoy can run
the control plane's REDIRECT-mode layout (virtualInbound, virtualOutbound) without iptables and
without touching 15001/15006 (a CI run or `gossamer up` may hold them).

Everything passes through untouched except the addressing of those two listeners (127.0.0.1 and
a free port) and the inbound chain's `destination_port` (a connection made straight to the
relocated listener has that port as its original destination). Filters are never touched, so
what Envoy enforces is exactly what the control plane sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from envoy.config.listener.v3 import listener_pb2
from envoy.service.discovery.v3 import discovery_pb2

from gossamer.xdstypes import LISTENER


@dataclass
class CaptureMoves:
    """Where the capture listeners go: inbound port, outbound port, and the application port
    whose inbound chain should answer connections to the relocated inbound listener."""

    inbound: int
    outbound: int
    app_port: int
    seen: list[str] = field(default_factory=list)  # listener names relayed, for diagnostics

    def rewrite(self, response: discovery_pb2.DiscoveryResponse) -> None:
        if response.type_url != LISTENER:
            return
        for packed in response.resources:
            listener = listener_pb2.Listener()
            packed.Unpack(listener)
            self.seen.append(listener.name)
            if listener.name == "virtualOutbound":
                listener.address.socket_address.address = "127.0.0.1"
                listener.address.socket_address.port_value = self.outbound
            elif listener.name == "virtualInbound":
                listener.address.socket_address.address = "127.0.0.1"
                listener.address.socket_address.port_value = self.inbound
                for chain in listener.filter_chains:
                    match = chain.filter_chain_match
                    if match.HasField("destination_port") and (
                        match.destination_port.value == self.app_port
                    ):
                        match.destination_port.value = self.inbound
            else:
                continue
            packed.Pack(listener)


SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
METHOD = "StreamAggregatedResources"


def _relay(upstream: str, moves: CaptureMoves) -> grpc.GenericRpcHandler:
    def stream(
        requests: Iterator[discovery_pb2.DiscoveryRequest], context: grpc.ServicerContext
    ) -> Iterator[discovery_pb2.DiscoveryResponse]:
        channel = grpc.insecure_channel(upstream)
        context.add_callback(channel.close)
        call = channel.stream_stream(
            f"/{SERVICE}/{METHOD}",
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )
        try:
            for response in call(requests):
                moves.rewrite(response)
                yield response
        except grpc.RpcError:
            return  # the control plane or Envoy went away: Envoy reconnects on its own

    handler = grpc.stream_stream_rpc_method_handler(
        stream,
        request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
        response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler})


class CapturePortRelay:
    """A gRPC ADS server on 127.0.0.1:<free port> relaying to `upstream` (host:port)."""

    def __init__(self, upstream: str, moves: CaptureMoves) -> None:
        self.moves = moves
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((_relay(upstream, moves),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=1).wait(5)
