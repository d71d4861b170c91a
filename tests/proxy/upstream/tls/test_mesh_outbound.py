"""The sidecar's outbound mTLS through a real Dataplane (uvloop), to real TLS 1.3 servers
holding certificates from the real mesh CA: who the server sees, whom the sidecar refuses, and
how auto mTLS, rotation and CDS changes reach the connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from gossamer.proxy.admin_render import stats_values
from gossamer.proxy.admin_stats import snapshot_backends
from gossamer.proxy.config.snapshot import SnapshotBuilder
from gossamer.proxy.dataplane import Dataplane
from gossamer.proxy.server.local_reply import CONNECT_FAILURE, CONNECTION_TERMINATION
from gossamer.waits import bounded
from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, proxy_config
from tests.proxy.server.upstreams import Upstream
from tests.proxy.upstream.tls.world import (
    Cluster,
    MeshCa,
    TlsUpstream,
    assignment,
    eds_cluster,
    mesh_context,
    mesh_sni,
    spiffe,
    tls_socket,
)

SIDECAR = spiffe("productpage")
REVIEWS = spiffe("reviews")


@pytest.fixture
async def reviews(ca: MeshCa) -> AsyncIterator[TlsUpstream]:
    server = await TlsUpstream(ca.material("reviews"), name="reviews").start()
    yield server
    await server.stop()


def istio_mutual(port: int, sans: list[str]) -> Cluster:
    return eds_cluster("reviews", transport=tls_socket(mesh_context(mesh_sni(port), sans)))


def to_reviews(port: int, upstream: int) -> AbstractAsyncContextManager[Dataplane]:
    """A sidecar whose listener on `port` sends host `reviews` over ISTIO_MUTUAL (expecting
    reviews' identity) to its one endpoint on `upstream`."""
    cluster = istio_mutual(upstream, [REVIEWS])
    return running(cluster, assignment("reviews", upstream), simple(port, "reviews"))


async def test_mtls_flows_and_the_server_sees_the_sidecars_identity(
    ca: MeshCa, reviews: TlsUpstream
) -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    port = free_port()
    async with to_reviews(port, reviews.port) as dp:
        dp.set_identity(ca.material("productpage"))
        client = await Client.connect(port)
        for i in range(3):
            resp = await client.get(f"/r{i}", "reviews")
            assert resp.status == 200, resp.body
            assert resp.headers["x-peer"] == SIDECAR
            assert resp.headers["x-path"] == f"/r{i}"
        await client.close()
        assert len(reviews.seen) == 1  # keep-alive over TLS: one connection for three
        seen = reviews.seen[0]
        assert seen.version == "TLSv1.3"
        assert seen.sni == mesh_sni(reviews.port)
        assert seen.alpn == "http/1.1"  # from the client's istio-http/1.1, istio, http/1.1
        counters = dp.backends["reviews"].stats.counters()
        assert counters["ssl.handshake"] == 1
        assert counters["upstream_cx_connect_fail"] == 0


async def test_a_server_with_an_unexpected_identity_is_refused_before_any_request_byte(
    ca: MeshCa,
) -> None:
    impostor = await TlsUpstream(ca.material("ratings"), name="ratings").start()
    port = free_port()
    try:
        async with to_reviews(port, impostor.port) as dp:
            dp.set_identity(ca.material("productpage"))
            client = await Client.connect(port)
            resp = await client.get("/", "reviews")
            assert resp.status == 503
            assert resp.body == CONNECT_FAILURE  # Envoy 1.40 adds no transport failure reason
            await client.close()
            counters = dp.backends["reviews"].stats.counters()
            assert counters["upstream_cx_connect_fail"] == 1
            assert counters["ssl.fail_verify_san"] == 1
            assert counters["ssl.handshake"] == 0
            assert counters["ssl.connection_error"] == 0
            assert impostor.requests == 0
            shown = dict(stats_values(snapshot_backends(dp), r"\.ssl\."))  # admin /stats
            assert shown["cluster.reviews.ssl.fail_verify_san"] == 1
    finally:
        await impostor.stop()


async def test_a_server_from_another_ca_fails_verification(tmp_path: Path, ca: MeshCa) -> None:
    stranger = MeshCa.open(tmp_path / "elsewhere")
    other = await TlsUpstream(stranger.material("reviews"), mutual=False).start()
    port = free_port()
    try:
        async with to_reviews(port, other.port) as dp:
            dp.set_identity(ca.material("productpage"))
            client = await Client.connect(port)
            assert (await client.get("/", "reviews")).status == 503
            await client.close()
            counters = dp.backends["reviews"].stats.counters()
            assert (counters["ssl.fail_verify_error"], counters["upstream_cx_connect_fail"]) == (
                1,
                1,
            )
            assert other.requests == 0
    finally:
        await other.stop()


async def test_a_server_refusing_the_sidecars_certificate_is_a_reset_after_the_handshake(
    tmp_path: Path, ca: MeshCa
) -> None:
    """TLS 1.3: the client's handshake ends before the server judges its certificate, so the
    refusal arrives on the first read: Envoy 1.40 answers 503 "connection termination" (it also
    counts ssl.connection_error, which uvloop gives us no way to see: the alert reaches the
    protocol as a plain close)."""
    stranger = MeshCa.open(tmp_path / "elsewhere")
    material = ca.material("reviews")
    trusting_others = type(material)(
        material.cert_chain_pem,
        material.private_key_pem,
        stranger.material("x").trust_bundle_pem,  # trusts only the other CA's clients
    )
    picky = await TlsUpstream(trusting_others).start()
    port = free_port()
    try:
        async with to_reviews(port, picky.port) as dp:
            dp.set_identity(ca.material("productpage"))
            client = await Client.connect(port)
            resp = await client.get("/", "reviews")
            assert (resp.status, resp.body) == (503, CONNECTION_TERMINATION)
            await client.close()
            counters = dp.backends["reviews"].stats.counters()
            assert counters["ssl.handshake"] == 1
            assert picky.requests == 0
    finally:
        await picky.stop()


async def test_without_a_certificate_yet_mesh_tls_is_a_connect_failure(
    ca: MeshCa, reviews: TlsUpstream
) -> None:
    port = free_port()
    async with to_reviews(port, reviews.port) as dp:
        client = await Client.connect(port)
        resp = await client.get("/", "reviews")
        assert (resp.status, resp.body) == (503, CONNECT_FAILURE)
        dp.set_identity(ca.material("productpage"))
        resp = await client.get("/", "reviews")
        assert (resp.status, resp.headers["x-peer"]) == (200, SIDECAR)
        await client.close()


async def test_auto_mtls_one_cluster_serves_a_meshed_and_a_plaintext_endpoint(
    ca: MeshCa, reviews: TlsUpstream
) -> None:
    plain = await Upstream("legacy").start()
    port = free_port()
    cluster = eds_cluster("reviews", auto_mtls=mesh_context(mesh_sni(9080), [REVIEWS]))
    endpoints = assignment("reviews", reviews.port, plain.port, meshed=[reviews.port])
    try:
        async with running(cluster, endpoints, simple(port, "reviews")) as dp:
            dp.set_identity(ca.material("productpage"))
            client = await Client.connect(port)
            served: dict[str, int] = {}
            for _ in range(6):
                resp = await client.get("/", "reviews")
                assert resp.status == 200, resp.body
                name = resp.headers["x-upstream"]
                served[name] = served.get(name, 0) + 1
                if name == "reviews":
                    assert resp.headers["x-peer"] == SIDECAR
            await client.close()
            assert served == {"reviews": 3, "legacy": 3}
            assert len(reviews.seen) == 1 and plain.connections == 1
            assert plain.requests[0].method == "GET"  # plaintext HTTP, not a ClientHello
    finally:
        await plain.stop()


async def test_rotation_mid_traffic_loses_nothing_and_new_connections_use_the_new_cert(
    ca: MeshCa, reviews: TlsUpstream
) -> None:
    port = free_port()
    cluster = eds_cluster(
        "reviews",
        transport=tls_socket(mesh_context(mesh_sni(reviews.port), [REVIEWS])),
        max_requests_per_connection=4,  # keeps opening connections while traffic runs
    )
    first, second = ca.material("productpage"), ca.material("productpage")
    async with running(cluster, assignment("reviews", reviews.port), simple(port, "reviews")) as dp:
        dp.set_identity(first)
        serials: list[str] = []
        failures: list[object] = []

        async def traffic(rounds: int) -> None:
            client = await Client.connect(port)
            try:
                for _ in range(rounds):
                    resp = await client.get("/", "reviews")
                    if resp.status != 200:
                        failures.append((resp.status, resp.body))
                    serials.append(resp.headers.get("x-serial", ""))
                    if len(serials) == 40:  # a third of the way: the agent renews
                        dp.set_identity(second)
            finally:
                await client.close()

        await bounded(asyncio.gather(*(traffic(30) for _ in range(4))), 30)
        assert failures == []
        assert len(serials) == 120
        old, new = f"{first.serial:x}", f"{second.serial:x}"
        assert serials[0] == old and serials[-1] == new
        assert set(serials) == {old, new}
        assert dp.identity is not None and dp.identity.generation == 2


async def test_a_cds_change_of_expected_sans_retires_pooled_connections_but_a_repush_does_not(
    ca: MeshCa, reviews: TlsUpstream
) -> None:
    port = free_port()
    builder = SnapshotBuilder()
    listener = simple(port, "reviews")
    endpoints = assignment("reviews", reviews.port)

    async def push(dp: Dataplane, sans: list[str]) -> None:
        await dp.apply(
            proxy_config(istio_mutual(reviews.port, sans), endpoints, listener, builder=builder)
        )

    wide = [REVIEWS, spiffe("reviews-v2")]
    async with running(
        istio_mutual(reviews.port, wide), endpoints, listener, builder=builder
    ) as dp:
        dp.set_identity(ca.material("productpage"))
        client = await Client.connect(port)
        assert (await client.get("/", "reviews")).status == 200
        await push(dp, wide)  # same cluster again: the warm connection stays
        assert (await client.get("/", "reviews")).status == 200
        assert len(reviews.seen) == 1
        await push(dp, [REVIEWS])  # the expected identities changed: a new handshake
        assert (await client.get("/", "reviews")).status == 200
        assert len(reviews.seen) == 2
        await push(dp, [spiffe("someone-else")])
        resp = await client.get("/", "reviews")
        assert resp.status == 503  # never the pooled connection verified for other SANs
        await client.close()


async def test_large_bodies_stream_both_ways_over_tls(ca: MeshCa, reviews: TlsUpstream) -> None:
    port = free_port()
    size = 8 * 1024 * 1024
    async with to_reviews(port, reviews.port) as dp:
        dp.set_identity(ca.material("productpage"))
        client = await Client.connect(port)
        upload = b"u" * size
        head = f"POST /up HTTP/1.1\r\nhost: reviews\r\ncontent-length: {size}\r\n\r\n"
        await client.send(head.encode() + upload)
        resp = await client.response(within=30)
        assert (resp.status, resp.headers["x-received"]) == (200, str(size))
        resp = await client.get(f"/big/{size}", "reviews")
        assert resp.status == 200 and len(resp.body) == size
        await client.close()
        assert len(reviews.seen) == 1
