"""The sidecar's inbound mTLS against a real Envoy 1.40.

1. An Envoy client sidecar (an ISTIO_MUTUAL-style UpstreamTlsContext with file certificates,
   Istio's ALPN) reaches the Python sidecar's STRICT inbound; RBAC there sees Envoy's SPIFFE id.
2. Envoy as a STRICT server on the same DownstreamTlsContext shape (file certificates instead of
   SDS) and our sidecar count the same clients with the same listener `ssl.*` counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime.envoy import EnvoyProcess
from gossamer.transport.tls import CLIENT_ALPN_HTTP1
from tests.proxy.server.envoy_mtls import (
    LOOPBACK,
    envoy_present,
    envoy_running,
    hcm,
    http_get,
    mesh_cluster,
    outbound_listener,
    strict_server_bootstrap,
    tls_files,
)
from tests.proxy.server.mtls_world import (
    PRODUCTPAGE,
    RATINGS,
    SERVER,
    Identities,
    StrictSidecar,
    mesh_client_context,
    no_certificate_context,
    refused,
    strict_sidecar,
    tls_client,
)
from tests.proxy.server.test_inbound_mtls import ALLOW_PRODUCTPAGE

pytestmark = pytest.mark.envoy
__all__ = ["envoy_present"]  # a fixture the tests here use by name


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return Identities.create(tmp_path)


def _client_bootstrap(
    port: int,
    as_productpage: dict[str, str],
    as_ratings: dict[str, str],
    per_connection: int | None = None,
) -> Any:
    """Envoy as productpage's (and, on /ratings, ratings') client sidecar to the STRICT port."""

    def cluster(name: str, files: dict[str, str]) -> dict[str, Any]:
        return mesh_cluster(
            name, port, files, [SERVER.uri], alpn=CLIENT_ALPN_HTTP1, per_connection=per_connection
        )

    return {
        "node": {"id": "client", "cluster": "client"},
        "admin": {"address": LOOPBACK},
        "static_resources": {
            "listeners": [outbound_listener([("/ratings", "ratings"), ("/", "productpage")])],
            "clusters": [cluster("productpage", as_productpage), cluster("ratings", as_ratings)],
        },
    }


@dataclass
class EnvoyToStrict:
    """An Envoy client sidecar (productpage's and ratings' clusters) in front of the Python
    sidecar's STRICT inbound, whose RBAC allows productpage only."""

    sidecar: StrictSidecar
    envoy: EnvoyProcess
    outbound_port: int

    def get(self, path: str) -> Awaitable[tuple[int, str]]:
        return asyncio.to_thread(http_get, self.outbound_port, path)

    def counter(self, name: str) -> int:
        return self.sidecar.counter(name)


@asynccontextmanager
async def envoy_to_strict(
    ids: Identities, tmp_path: Path, per_connection: int | None = None
) -> AsyncIterator[EnvoyToStrict]:
    async with strict_sidecar(ids, 1, [{"rules": ALLOW_PRODUCTPAGE}]) as sidecar:
        bootstrap = _client_bootstrap(
            sidecar.port,
            tls_files(ids.of(PRODUCTPAGE), tmp_path / "productpage"),
            tls_files(ids.of(RATINGS), tmp_path / "ratings"),
            per_connection,
        )
        async with envoy_running(bootstrap, tmp_path / "envoy") as (envoy, ports):
            yield EnvoyToStrict(sidecar, envoy, ports["outbound"])


async def test_an_envoy_client_sidecar_reaches_the_strict_inbound(
    ids: Identities, tmp_path: Path, envoy_present: None
) -> None:
    async with envoy_to_strict(ids, tmp_path) as pair:
        status, body = await pair.get("/from-envoy")
        assert status == 200 and json.loads(body)["path"] == "/from-envoy"
        # The principal RBAC saw is Envoy's client certificate's: ratings is denied.
        assert await pair.get("/ratings") == (403, "RBAC: access denied")
        assert [r.target for r in pair.sidecar.app.requests] == ["/from-envoy"]
        assert pair.counter("ssl.handshake") >= 2


async def test_an_envoy_client_sidecar_resumes_its_session_and_keeps_its_identity(
    ids: Identities, tmp_path: Path, envoy_present: None
) -> None:
    """One request per connection from Envoy: Envoy's client offers the ticket our server
    issued, the handshake resumes, and RBAC still sees Envoy's certificate (productpage)."""
    async with envoy_to_strict(ids, tmp_path, per_connection=1) as pair:
        for _ in range(3):
            assert (await pair.get("/from-envoy"))[0] == 200
        assert (pair.counter("ssl.handshake"), pair.counter("ssl.session_reused")) == (3, 2)
        _, text = await asyncio.to_thread(pair.envoy.admin_get, "/stats?filter=productpage.ssl")
        assert "cluster.productpage.ssl.session_reused: 2" in text


def _server_bootstrap(files: dict[str, str]) -> Any:
    """Envoy as a STRICT inbound answering 200: the contract's chain, certificates from files."""
    return strict_server_bootstrap(
        files, [hcm([{"match": {"prefix": "/"}, "direct_response": {"status": 200}}])]
    )


COUNTERS = (
    "no_filter_chain_match",
    "ssl.handshake",
    "ssl.connection_error",
    "ssl.fail_verify_error",
    "ssl.fail_verify_no_cert",
    "ssl.no_certificate",
)


async def _knock(ids: Identities, port: int) -> None:
    """One good client, then plaintext, another CA, an expired certificate, no certificate."""
    good = await tls_client(port, mesh_client_context(ids.of(PRODUCTPAGE)))
    assert (await good.get("/", "reviews")).status == 200
    await good.close()
    bundle = ids.of(PRODUCTPAGE).trust_bundle_pem
    stranger = dataclasses.replace(ids.stranger_identity(), trust_bundle_pem=bundle)
    for context in (
        None,
        mesh_client_context(stranger),
        mesh_client_context(ids.expired),
        no_certificate_context(ids.of(PRODUCTPAGE)),
    ):
        assert await refused(port, context)


async def test_listener_ssl_counters_are_envoys(
    ids: Identities, tmp_path: Path, envoy_present: None
) -> None:
    bootstrap = _server_bootstrap(tls_files(ids.of(SERVER), tmp_path / "srv"))
    async with envoy_running(bootstrap, tmp_path) as (envoy, envoy_ports):
        await _knock(ids, envoy_ports["strict"])
        await asyncio.sleep(0.2)
        _, text = await asyncio.to_thread(envoy.admin_get, "/stats?format=json")
        stats = {s["name"]: s.get("value", 0) for s in json.loads(text)["stats"] if "name" in s}
        prefix = "listener.127.0.0.1_0."  # Envoy names a listener by its configured address
        theirs = {name: int(stats.get(prefix + name, 0)) for name in COUNTERS}
    async with strict_sidecar(ids, 1) as sidecar:
        await _knock(ids, sidecar.port)
        ours = {name: sidecar.counter(name) for name in COUNTERS}
    assert ours == theirs
    assert theirs["ssl.fail_verify_error"] == 2  # the comparison is not between two blanks
