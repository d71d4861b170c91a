"""Istio's standard metrics from a Gossamer → Gossamer pair on loopback: productpage's sidecar
(source reports) calls reviews' sidecar (destination reports) over real mTLS with certificates
from the real mesh CA, or in plaintext; each sidecar's metrics are read as its admin endpoint
renders them (admin_stats.report_of → Prometheus text) and parsed strictly. Over mTLS the two
sidecars exchange metadata (x-envoy-peer-metadata), so each names the other's workload; the
apps never see those headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import duration_pb2

from gossamer.control.translate import listeners
from gossamer.proxy import admin_render
from gossamer.proxy.admin_stats import report_of
from gossamer.proxy.dataplane import Dataplane
from gossamer.telemetry import peer_metadata
from gossamer.telemetry.istio_labels import WorkloadFacts
from gossamer.telemetry.istio_metrics import attach
from gossamer.telemetry.prometheus import render
from gossamer.waits import bounded
from tests.proxy.config.mtls_listeners import Mode, inbound_listener, port_chains
from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client, Message
from tests.proxy.server.mtls_world import PRODUCTPAGE, SERVER, Identities, clusters, inbound
from tests.proxy.server.protos import free_port, route, static_cluster, tcp_listener
from tests.proxy.server.upstreams import Upstream
from tests.proxy.upstream.tls.world import ALPN_TCP, assignment, eds_cluster, mesh_context, mesh_sni
from tests.telemetry.prometheus_text import Parsed, parse

REVIEWS = "reviews.default.svc.cluster.local"
PEER_HEADERS = {"x-envoy-peer-metadata", "x-envoy-peer-metadata-id"}
PRODUCTPAGE_NODE = "sidecar~10.0.0.1~productpage-v1-0.default~default.svc.cluster.local"
REVIEWS_NODE = "sidecar~10.0.0.2~reviews-v2-0.default~default.svc.cluster.local"
OUTBOUND = f"outbound|9080||{REVIEWS}"
DB = "db.default.svc.cluster.local"
DB_OUTBOUND = f"outbound|9000||{DB}"
PRODUCTPAGE_FACTS = WorkloadFacts.of("productpage-v1", "default", {"app": "productpage",
                                                                   "version": "v1"})  # fmt: skip
REVIEWS_FACTS = WorkloadFacts.of("reviews-v2", "default", {"app": "reviews", "version": "v2"})


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return Identities.create(tmp_path)


def scraped(dataplane: Dataplane) -> Parsed:
    """The sidecar's Istio metrics as /stats/prometheus renders them, parsed strictly."""
    return parse(render(admin_render.istio_families(report_of(dataplane)["istio"])))


def series(parsed: Parsed, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Samples of `name` whose labels include `labels`."""
    return [
        (ls, v)
        for n, ls, v in parsed.samples
        if n == name and all(ls.get(k) == want for k, want in labels.items())
    ]


@asynccontextmanager
async def server_sidecar(
    ids: Identities, mode: Mode, app: Upstream | None = None, rbac: list[Any] | None = None
) -> AsyncIterator[tuple[int, Dataplane]]:
    """reviews-v2's sidecar: inbound chains in `mode` (and `rbac` filters) before an HTTP app."""
    app = await (app or Upstream("reviews-app")).start()
    port = free_port()
    try:
        async with running(*clusters(app.port, free_port()), inbound(mode, port, rbac or [])) as dp:
            attach(dp, REVIEWS_FACTS, REVIEWS_NODE)
            dp.set_identity(ids.of(SERVER))
            yield port, dp
    finally:
        await app.stop()


@asynccontextmanager
async def client_sidecar(
    ids: Identities, server_port: int, *, meshed: bool
) -> AsyncIterator[tuple[int, Dataplane]]:
    """productpage-v1's sidecar: outbound to reviews with auto mTLS."""
    listen = free_port()
    context = mesh_context(mesh_sni(9080), [SERVER.uri])
    resources = [
        eds_cluster(OUTBOUND, auto_mtls=context),
        assignment(OUTBOUND, server_port, meshed=[server_port] if meshed else []),
        simple(listen, OUTBOUND),
    ]
    async with running(*resources) as dp:
        attach(dp, PRODUCTPAGE_FACTS, PRODUCTPAGE_NODE)
        dp.set_identity(ids.of(PRODUCTPAGE))
        yield listen, dp


async def get(port: int, host: str = "reviews", extra: str = "") -> int:
    return (await exchange(port, host, extra)).status


async def exchange(port: int, host: str = "reviews", extra: str = "") -> Message:
    client = await Client.connect(port)
    try:
        return await client.get("/", host, extra)
    finally:
        await client.close()


async def test_mtls_requests_carry_both_identities_on_both_reporters(ids: Identities) -> None:
    app = Upstream("reviews-app")
    async with (
        server_sidecar(ids, "STRICT", app) as (server_port, server),
        client_sidecar(ids, server_port, meshed=True) as (listen, client),
    ):
        for _ in range(3):
            reply = await exchange(listen)
            assert reply.status == 200
            assert not PEER_HEADERS & set(reply.headers)  # productpage's app sees none
        assert all(not PEER_HEADERS & set(r.headers) for r in app.requests)  # nor reviews'
        source = scraped(client)
        labels = {
            "reporter": "source",
            "source_workload": "productpage-v1",
            "source_workload_namespace": "default",
            "source_principal": PRODUCTPAGE.uri,
            "source_app": "productpage",
            "source_version": "v1",
            "source_canonical_service": "productpage",
            "source_canonical_revision": "v1",
            "destination_principal": SERVER.uri,
            "destination_workload": "reviews-v2",  # told by reviews' sidecar (its response)
            "destination_workload_namespace": "default",
            "destination_app": "reviews",
            "destination_version": "v2",
            "destination_canonical_service": "reviews",
            "destination_canonical_revision": "v2",
            "destination_cluster": "Kubernetes",
            "destination_service": REVIEWS,
            "destination_service_name": "reviews",
            "destination_service_namespace": "default",
            "request_protocol": "http",
            "response_code": "200",
            "response_flags": "-",
            "connection_security_policy": "unknown",
        }
        ((_, count),) = series(source, "istio_requests_total", **labels)
        assert count == 3
        ((_, observed),) = series(source, "istio_request_duration_milliseconds_count", **labels)
        assert observed == 3
        ((_, inf),) = series(source, "istio_request_duration_milliseconds_bucket", le="+Inf")
        assert inf == 3

        destination = scraped(server)
        labels = {
            "reporter": "destination",
            "source_principal": PRODUCTPAGE.uri,
            "source_workload": "productpage-v1",  # told by productpage's sidecar (its request)
            "source_workload_namespace": "default",
            "source_app": "productpage",
            "source_version": "v1",
            "source_canonical_service": "productpage",
            "source_cluster": "Kubernetes",
            "destination_principal": SERVER.uri,
            "destination_workload": "reviews-v2",
            "destination_workload_namespace": "default",
            "destination_app": "reviews",
            "destination_version": "v2",
            "destination_canonical_service": "reviews",
            "destination_service_name": "reviews",
            "destination_service_namespace": "default",
            "response_code": "200",
            "connection_security_policy": "mutual_tls",
        }
        ((_, count),) = series(destination, "istio_requests_total", **labels)
        assert count == 3


async def test_plaintext_gives_none_and_unknown_principals(ids: Identities) -> None:
    async with (
        server_sidecar(ids, "PERMISSIVE") as (server_port, server),
        client_sidecar(ids, server_port, meshed=False) as (listen, client),
    ):
        assert await get(listen) == 200
        ((labels, count),) = series(scraped(client), "istio_requests_total", reporter="source")
        assert count == 1
        assert labels["destination_principal"] == "unknown"
        assert labels["source_principal"] == PRODUCTPAGE.uri  # its own side is still known
        ((labels, count),) = series(scraped(server), "istio_requests_total", reporter="destination")
        assert count == 1
        assert labels["connection_security_policy"] == "none"
        assert labels["source_principal"] == "unknown"
        assert labels["source_workload"] == "unknown"  # no mTLS, no metadata exchange


async def test_a_denial_still_names_the_workload_that_denied(ids: Identities) -> None:
    allow_nothing = [{"rules": {}}]
    async with (
        server_sidecar(ids, "STRICT", rbac=allow_nothing) as (server_port, server),
        client_sidecar(ids, server_port, meshed=True) as (listen, client),
    ):
        reply = await exchange(listen)
        assert reply.status == 403 and not PEER_HEADERS & set(reply.headers)
    ((labels, _),) = series(scraped(client), "istio_requests_total", reporter="source")
    assert labels["response_code"] == "403" and labels["destination_workload"] == "reviews-v2"
    ((labels, _),) = series(scraped(server), "istio_requests_total", reporter="destination")
    assert labels["response_code"] == "403" and labels["source_workload"] == "productpage-v1"


async def test_a_plaintext_client_cannot_name_its_workload(ids: Identities) -> None:
    """Metadata is believed only from a peer with a mesh identity: a plaintext caller sending
    the headers stays `unknown`, and the app behind the sidecar never sees them."""
    app = Upstream("reviews-app")
    forged = peer_metadata.encode(WorkloadFacts.of("admin", "kube-system", {"app": "admin"}))
    headers = f"x-envoy-peer-metadata: {forged.decode()}\r\nx-envoy-peer-metadata-id: x\r\n"
    async with server_sidecar(ids, "PERMISSIVE", app) as (server_port, server):
        reply = await exchange(server_port, extra=headers)
        assert reply.status == 200
        assert not PEER_HEADERS & set(reply.headers)  # nor does it answer with ours
    ((labels, _),) = series(scraped(server), "istio_requests_total", reporter="destination")
    assert labels["source_workload"] == "unknown" and labels["source_app"] == "unknown"
    assert not PEER_HEADERS & set(app.requests[0].headers)


async def test_a_refused_connection_is_a_503_with_flag_uf(ids: Identities) -> None:
    dead = free_port()  # nothing listens there
    async with client_sidecar(ids, dead, meshed=False) as (listen, client):
        assert await get(listen) == 503
        ((labels, count),) = series(scraped(client), "istio_requests_total", reporter="source")
        assert (labels["response_code"], labels["response_flags"], count) == ("503", "UF", 1)
        assert labels["destination_service"] == REVIEWS


async def test_a_route_timeout_is_a_504_ut_that_lasted_the_timeout(ids: Identities) -> None:
    slow = await Upstream("slow", delay=2.0).start()
    listen = free_port()
    timeout = duration_pb2.Duration(nanos=300_000_000)
    try:
        table = simple(listen, OUTBOUND, route(OUTBOUND, timeout=timeout))
        async with running(static_cluster(OUTBOUND, slow.port), table) as client:
            assert await get(listen) == 504
            labels = {"response_code": "504", "response_flags": "UT"}
            parsed = scraped(client)
            ((_, took),) = series(parsed, "istio_request_duration_milliseconds_sum", **labels)
            assert 290 <= took < 2000
            ((_, under),) = series(parsed, "istio_request_duration_milliseconds_bucket", le="250")
            assert under == 0
    finally:
        await slow.stop()


async def test_an_unrouted_request_is_a_404_with_flag_nr(ids: Identities) -> None:
    listen = free_port()
    table_only_for = simple(listen, OUTBOUND, domains=["reviews"])
    async with running(static_cluster(OUTBOUND, free_port()), table_only_for) as client:
        assert await get(listen, host="nowhere") == 404
        ((labels, _),) = series(scraped(client), "istio_requests_total", response_code="404")
        assert labels["response_flags"] == "NR"
        assert labels["destination_service"] == "unknown"


async def _echo_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echoes one line, then closes (the sidecars' TLS leg carries no half-close)."""
    writer.write(await reader.readuntil(b"\n"))
    await writer.drain()
    writer.close()


async def test_tcp_connections_and_bytes_are_counted_on_both_sides(ids: Identities) -> None:
    """A TCP client → productpage's tcp_proxy → mTLS → reviews' STRICT TCP chain → an echo."""
    app = await asyncio.start_server(_echo_line, "127.0.0.1", 0)
    server_port, listen = free_port(), free_port()
    tcp_chain = [listeners.tcp_proxy_filter("inbound|9000||", [("db-app", 1)])]
    inbound_db = inbound_listener(
        "in", server_port, port_chains("STRICT", server_port, tcp_chain, http=False)
    )
    context = mesh_context(mesh_sni(9000, DB), [SERVER.uri], ALPN_TCP)
    try:
        async with (
            running(static_cluster("db-app", app.sockets[0].getsockname()[1]), inbound_db) as srv,
            running(
                eds_cluster(DB_OUTBOUND, auto_mtls=context),
                assignment(DB_OUTBOUND, server_port, meshed=[server_port]),
                tcp_listener("db", listen, DB_OUTBOUND),
            ) as cli,
        ):
            attach(srv, REVIEWS_FACTS)
            srv.set_identity(ids.of(SERVER))
            attach(cli, PRODUCTPAGE_FACTS)
            cli.set_identity(ids.of(PRODUCTPAGE))
            for payload in (b"x" * 999 + b"\n", b"y" * 499 + b"\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", listen)
                writer.write(payload)
                assert await bounded(reader.readexactly(len(payload)), 5) == payload
                assert await bounded(reader.read(), 5) == b""
                writer.close()
                await writer.wait_closed()

            async def closed(dp: Dataplane) -> float:
                for _ in range(100):  # bounded: the proxy sees the close a moment later
                    found = series(scraped(dp), "istio_tcp_connections_closed_total")
                    if found and found[0][1] == 2:
                        return found[0][1]
                    await asyncio.sleep(0.05)
                return -1

            assert await closed(cli) == 2
            assert await closed(srv) == 2
            source = scraped(cli)
            ((labels, opened),) = series(source, "istio_tcp_connections_opened_total")
            assert opened == 2
            assert labels["reporter"] == "source"
            assert labels["destination_principal"] == SERVER.uri
            assert labels["destination_service"] == DB
            assert labels["request_protocol"] == "tcp"
            assert series(source, "istio_tcp_received_bytes_total")[0][1] == 1500
            assert series(source, "istio_tcp_sent_bytes_total")[0][1] == 1500
            destination = scraped(srv)
            ((labels, _),) = series(destination, "istio_tcp_connections_opened_total")
            assert labels["reporter"] == "destination"
            assert labels["source_principal"] == PRODUCTPAGE.uri
            assert labels["connection_security_policy"] == "mutual_tls"
            assert labels["destination_workload"] == "reviews-v2"
    finally:
        app.close()
