"""A real Envoy server (static bootstrap, DownstreamTlsContext from files, client certificate
required, ALPN h2 and http/1.1, as an Envoy sidecar's inbound mTLS chain) accepts the Python
sidecar's outbound mTLS, reads its SPIFFE id, and is refused when it is not whom the cluster
expects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gossamer.proxy.dataplane import Dataplane
from gossamer.runtime import envoy as rt
from tests.proxy.server.harness import running, simple
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port
from tests.proxy.upstream.tls.world import (
    MeshCa,
    assignment,
    eds_cluster,
    mesh_context,
    mesh_sni,
    spiffe,
    tls_socket,
)

pytestmark = [pytest.mark.envoy, pytest.mark.e2e]

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


@pytest.fixture
def envoy_binary() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


def inbound_listener(chain: Path, key: Path, root: Path) -> dict[str, Any]:
    """An Envoy sidecar's inbound mTLS chain, with files instead of SDS."""
    reported = {
        "x-peer": "%DOWNSTREAM_PEER_URI_SAN%",
        "x-tls": "%DOWNSTREAM_TLS_VERSION%",
        "x-sni": "%REQUESTED_SERVER_NAME%",
    }
    hcm = {
        "@type": f"type.googleapis.com/{HCM}",
        "stat_prefix": "inbound",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "any",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}],
                    "response_headers_to_add": [
                        {"header": {"key": k, "value": v}} for k, v in reported.items()
                    ],
                }
            ]
        },
        "http_filters": [
            {"name": "router", "typed_config": {"@type": f"type.googleapis.com/{ROUTER}"}}
        ],
    }
    tls = {
        "@type": f"type.googleapis.com/{DOWNSTREAM_TLS}",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_2",
                "tls_maximum_protocol_version": "TLSv1_3",
            },
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": str(chain)},
                    "private_key": {"filename": str(key)},
                }
            ],
            "validation_context": {"trusted_ca": {"filename": str(root)}},
        },
    }
    inspector = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
    return {
        "name": "inbound",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        # As Istio's inbound listener: the SNI and ALPN are read before the chain is chosen.
        "listener_filters": [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {"@type": f"type.googleapis.com/{inspector}"},
            }
        ],
        "filter_chains": [
            {
                "filters": [{"name": "hcm", "typed_config": hcm}],
                "transport_socket": {"name": "tls", "typed_config": tls},
            }
        ],
    }


@pytest.fixture
def envoy_port(tmp_path: Path, envoy_binary: Path) -> Iterator[tuple[int, MeshCa]]:
    ca = MeshCa.open(tmp_path)
    chain, key, root = ca.files("reviews", tmp_path / "envoy-certs")
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [inbound_listener(chain, key, root)], "clusters": []},
    }
    with rt.EnvoyProcess(config, tmp_path / "envoy", binary=envoy_binary) as envoy:
        envoy.wait_ready()
        _, body = envoy.admin_get("/listeners?format=json")
        status = json.loads(body)["listener_statuses"][0]
        yield status["local_address"]["socket_address"]["port_value"], ca


@asynccontextmanager
async def sidecar_to_envoy(
    envoy_port: tuple[int, MeshCa], expected: str, per_connection: int | None = None
) -> AsyncIterator[tuple[Dataplane, Client]]:
    """productpage's sidecar with ISTIO_MUTUAL to the Envoy inbound (expecting `expected`'s
    identity), and a client connected to its outbound listener."""
    port, ca = envoy_port
    listen = free_port()
    context = mesh_context(mesh_sni(9080), [spiffe(expected)])
    cluster = eds_cluster(
        "reviews", transport=tls_socket(context), max_requests_per_connection=per_connection
    )
    async with running(cluster, assignment("reviews", port), simple(listen, "reviews")) as dp:
        dp.set_identity(ca.material("productpage"))
        client = await Client.connect(listen)
        try:
            yield dp, client
        finally:
            await client.close()


async def test_an_envoy_inbound_chain_accepts_the_sidecars_mtls(
    envoy_port: tuple[int, MeshCa],
) -> None:
    async with sidecar_to_envoy(envoy_port, "reviews") as (dp, client):
        for _ in range(2):
            resp = await client.get("/", "reviews")
            assert resp.status == 200, resp.body
            assert resp.headers["x-peer"] == spiffe("productpage")
            assert resp.headers["x-tls"] == "TLSv1.3"
            assert resp.headers["x-sni"] == mesh_sni(9080)
    counters = dp.backends["reviews"].stats.counters()
    assert (counters["ssl.handshake"], counters["upstream_rq_200"]) == (1, 2)


async def test_an_envoy_with_an_unexpected_identity_is_refused(
    envoy_port: tuple[int, MeshCa],
) -> None:
    async with sidecar_to_envoy(envoy_port, "ratings") as (dp, client):
        assert (await client.get("/", "reviews")).status == 503
    assert dp.backends["reviews"].stats.counters()["ssl.fail_verify_san"] == 1


async def test_new_connections_to_an_envoy_resume_the_session_it_issued(
    envoy_port: tuple[int, MeshCa],
) -> None:
    """One request per connection: Envoy's server hands out tickets (BoringSSL), and the
    sidecar's next connection resumes with one, as an Envoy client would."""
    async with sidecar_to_envoy(envoy_port, "reviews", per_connection=1) as (dp, client):
        for _ in range(3):
            resp = await client.get("/", "reviews")
            assert resp.status == 200, resp.body
            assert resp.headers["x-peer"] == spiffe("productpage")  # Envoy still knows us
    counters = dp.backends["reviews"].stats.counters()
    assert (counters["ssl.handshake"], counters["ssl.session_reused"]) == (3, 2)
