"""The SDS server's protocol as Envoy speaks it, driven by a real gRPC client on the Unix socket:
nothing before the first certificate, `default`/`ROOTCA` after it, ACKs, NACKs, stale nonces,
renewals pushed on open streams, FetchSecrets, and a socket only its owner can open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from gossamer.agent.sds_server import SERVICE, SdsServer
from gossamer.agent.secret_resources import SECRET_TYPE
from gossamer.control.ca import Authority, SpiffeId, key_pem, make_csr, new_key, open_ca
from gossamer.transport.tls import IdentityMaterial
from gossamer.waits import bounded
from tests.agent.support import short_dir

REVIEWS = SpiffeId("default", "reviews")
NODE = base_pb2.Node(id="sidecar~10.0.0.7~reviews-0.default~default.svc.cluster.local")
QUIET = 0.3  # how long "no response" is watched for


def material(authority: Authority) -> IdentityMaterial:
    key = new_key()
    issued = authority.sign(make_csr(key, REVIEWS), REVIEWS, timedelta(hours=1))
    return IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return open_ca(tmp_path / "ca")


@pytest.fixture
async def sds() -> AsyncIterator[SdsServer]:
    with short_dir() as directory:
        server = SdsServer(directory / "sds.sock")
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


@pytest.fixture
async def channel(sds: SdsServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"unix:{sds.socket_path}") as chan:
        yield chan


class Stream:
    """One StreamSecrets call; a read that timed out stays pending for the next one."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        method = channel.stream_stream(
            f"/{SERVICE}/StreamSecrets",
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )
        self.call: Any = method()
        self._pending: asyncio.Future[Any] | None = None

    async def write(self, req: discovery_pb2.DiscoveryRequest) -> None:
        await self.call.write(req)

    async def read(self, within: float = 5) -> discovery_pb2.DiscoveryResponse:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.call.read())
        response: discovery_pb2.DiscoveryResponse = await bounded(
            asyncio.shield(self._pending), within
        )
        self._pending = None
        return response

    async def quiet(self) -> None:
        """Nothing arrives for QUIET seconds."""
        with pytest.raises(TimeoutError):
            await self.read(QUIET)


def open_stream(channel: grpc.aio.Channel) -> Stream:
    return Stream(channel)


def request(
    names: list[str], response: discovery_pb2.DiscoveryResponse | None = None, **extra: Any
) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(type_url=SECRET_TYPE, resource_names=names, **extra)
    if response is not None:
        req.version_info, req.response_nonce = response.version_info, response.nonce
    return req


def secrets_of(response: discovery_pb2.DiscoveryResponse) -> dict[str, secret_pb2.Secret]:
    out = {}
    for packed in response.resources:
        secret = secret_pb2.Secret()
        assert packed.Unpack(secret)
        out[secret.name] = secret
    return out


async def test_a_stream_waits_for_the_first_certificate_then_gets_it(
    sds: SdsServer, channel: grpc.aio.Channel, authority: Authority
) -> None:
    call = open_stream(channel)
    await call.write(request(["default"], node=NODE))
    await call.quiet()  # Envoy keeps warming: no secret yet
    first = material(authority)
    sds.update(first)
    response = await call.read()
    assert response.type_url == SECRET_TYPE and response.nonce
    secret = secrets_of(response)["default"]
    assert secret.tls_certificate.certificate_chain.inline_bytes.decode() == first.cert_chain_pem
    assert secret.tls_certificate.private_key.inline_bytes.decode() == first.private_key_pem
    await call.write(request(["default"], response))  # ACK
    await call.quiet()
    assert sds.streams[0].acked_version == response.version_info
    assert sds.streams[0].node_id == NODE.id


async def test_a_renewal_is_pushed_on_every_open_stream(
    sds: SdsServer, channel: grpc.aio.Channel, authority: Authority
) -> None:
    sds.update(material(authority))
    certs, roots = open_stream(channel), open_stream(channel)  # Envoy: one stream per name
    await certs.write(request(["default"], node=NODE))
    await roots.write(request(["ROOTCA"], node=NODE))
    cert_response, root_response = await certs.read(), await roots.read()
    bundle = secrets_of(root_response)["ROOTCA"].validation_context.trusted_ca.inline_bytes
    assert bundle == authority.bundle.pem()
    await certs.write(request(["default"], cert_response))
    await roots.write(request(["ROOTCA"], root_response))

    renewed = material(authority)
    sds.update(renewed)
    pushed = await certs.read()
    assert pushed.version_info != cert_response.version_info
    assert pushed.nonce != cert_response.nonce
    chain = secrets_of(pushed)["default"].tls_certificate.certificate_chain.inline_bytes
    assert chain.decode() == renewed.cert_chain_pem
    await roots.quiet()  # same roots: nothing to push on the ROOTCA stream


async def test_a_nack_keeps_the_version_and_a_stale_nonce_is_ignored(
    sds: SdsServer, channel: grpc.aio.Channel, authority: Authority
) -> None:
    sds.update(material(authority))
    call = open_stream(channel)
    await call.write(request(["default"], node=NODE))
    response = await call.read()
    nack = request(["default"], response)
    nack.version_info = ""
    nack.error_detail.CopyFrom(status_pb2.Status(code=3, message="bad key"))
    await call.write(nack)
    await call.quiet()  # the same version is not sent again
    assert sds.streams[0].last_nack == "bad key"
    stale = request(["default", "ROOTCA"], response_nonce="not-the-last-nonce")
    await call.write(stale)
    await call.quiet()  # a stale request's names are ignored too
    await call.write(request(["default", "ROOTCA"], response))  # ACK with a new subscription
    both = await call.read()
    assert set(secrets_of(both)) == {"default", "ROOTCA"}


async def test_a_secret_this_agent_does_not_serve_is_never_answered(
    sds: SdsServer, channel: grpc.aio.Channel, authority: Authority
) -> None:
    sds.update(material(authority))
    call = open_stream(channel)
    await call.write(request(["file-cert:/etc/certs/cert-chain.pem"], node=NODE))
    await call.quiet()


async def test_a_stream_asking_for_another_type_is_refused(
    sds: SdsServer, channel: grpc.aio.Channel
) -> None:
    call = open_stream(channel)
    await call.write(
        discovery_pb2.DiscoveryRequest(
            type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster", node=NODE
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_fetch_secrets_answers_once_there_is_a_certificate(
    sds: SdsServer, channel: grpc.aio.Channel, authority: Authority
) -> None:
    fetch = channel.unary_unary(
        f"/{SERVICE}/FetchSecrets",
        request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
        response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await fetch(request(["default", "ROOTCA"]), timeout=5)
    assert early.value.code() == grpc.StatusCode.UNAVAILABLE
    sds.update(material(authority))
    response = await fetch(request(["default", "ROOTCA"]), timeout=5)
    assert set(secrets_of(response)) == {"default", "ROOTCA"}


async def test_the_socket_is_for_its_owner_only(sds: SdsServer) -> None:
    assert sds.socket_path.stat().st_mode & 0o777 == 0o600


async def test_a_new_trust_bundle_is_pushed_on_rootca_streams_only(
    sds: SdsServer, channel: grpc.aio.Channel, authority: Authority, tmp_path: Path
) -> None:
    """Root rotation: the same certificate with old and new roots reaches Envoy's ROOTCA
    stream; its `default` stream has nothing new to get."""
    current = material(authority)
    sds.update(current)
    certs, roots = open_stream(channel), open_stream(channel)
    await certs.write(request(["default"], node=NODE))
    await roots.write(request(["ROOTCA"], node=NODE))
    await certs.write(request(["default"], await certs.read()))
    await roots.write(request(["ROOTCA"], await roots.read()))
    new_root = open_ca(tmp_path / "next-ca").bundle.pem().decode()
    overlap = current.trust_bundle_pem + new_root
    sds.update(IdentityMaterial(current.cert_chain_pem, current.private_key_pem, overlap))
    pushed = await roots.read()
    bundle = secrets_of(pushed)["ROOTCA"].validation_context.trusted_ca.inline_bytes.decode()
    assert bundle == overlap
    await certs.quiet()
