"""A test SDS server: the `default` and `ROOTCA` secrets of one identity from the real CA,
served over gRPC on 127.0.0.1 as the agent beside an Envoy sidecar serves them on its socket.

Since mesh mTLS, every sidecar's listeners and clusters name these secrets, and Envoy stays
unready until it holds them: a test that runs an Envoy sidecar against the control plane adds
`sds_cluster(server.port)` to its bootstrap (the cluster name is the one the contexts name).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2

from gossamer.control.ca import SpiffeId, key_pem, make_csr, new_key, open_ca

SERVICE = "envoy.service.secret.v3.SecretDiscoveryService"
METHOD = "StreamSecrets"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def mesh_secrets(ca_dir: Path, identity: SpiffeId) -> dict[str, secret_pb2.Secret]:
    """`default` (a fresh certificate for `identity`) and `ROOTCA` (the bundle)."""
    authority = open_ca(ca_dir)
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity)
    default = secret_pb2.Secret(
        name="default",
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=issued.chain_pem()),
            private_key=base_pb2.DataSource(inline_bytes=key_pem(key)),
        ),
    )
    root = secret_pb2.Secret(
        name="ROOTCA",
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=issued.bundle_pem())
        ),
    )
    return {"default": default, "ROOTCA": root}


class SdsServer:
    """StreamSecrets: each stream gets the secrets it asks for, once; ACKs get nothing."""

    def __init__(self, secrets: dict[str, secret_pb2.Secret]) -> None:
        self.secrets = secrets
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.stream_stream_rpc_method_handler(
            self._stream,
            request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def _stream(
        self, requests: Iterator[discovery_pb2.DiscoveryRequest], context: grpc.ServicerContext
    ) -> Iterator[discovery_pb2.DiscoveryResponse]:
        sent: set[str] = set()
        for n, request in enumerate(requests):
            wanted = {name for name in request.resource_names if name in self.secrets}
            if wanted <= sent:
                continue
            sent |= wanted
            response = discovery_pb2.DiscoveryResponse(
                version_info="1", type_url=SECRET_TYPE, nonce=str(n)
            )
            for name in sorted(sent):
                response.resources.add().Pack(self.secrets[name])
            yield response

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=1).wait(5)


def sds_cluster(port: int) -> dict[str, Any]:
    """The bootstrap's `sds-grpc` cluster, to this server on 127.0.0.1 (explicit HTTP/2)."""
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    return {
        "name": "sds-grpc",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "sds-grpc",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
        "typed_extension_protocol_options": {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    }
