"""The certificate service's operations side, for real (control plane in the test's loop, TLS
on 15012): refusals logged with the peer and the identities, renewal by workload certificate
once the bootstrap credential has expired, the trust-bundle endpoint, the record of what was
issued to each proxy, and the CA's metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.certificates import (
    CertificateRefused,
    CertificateRequest,
    fetch_certificate,
    fetch_trust_bundle,
)
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime.registration import write_identity_files
from tests.control.planes import started
from tests.ports import free_port

REVIEWS = SpiffeId("default", "reviews")
NODE = "sidecar~10.1.0.7~reviews-v1-0.default~default.svc.cluster.local"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    config = PlaneConfig(
        home=tmp_path / "home",
        xds_port=0,
        api_port=0,
        ca_port=0,
        workload_cert_ttl=timedelta(seconds=3),
    )
    async with started(config) as cp:
        yield cp


def ask(plane: ControlPlane, credential: str, **more: Any) -> CertificateRequest:
    assert plane.ca is not None
    root = plane.ca.bundle.pem().decode()
    return CertificateRequest(f"127.0.0.1:{plane.ca_port}", credential, root, REVIEWS, **more)


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "certificate refused" in r.getMessage()]


async def api_get(plane: ControlPlane, path: str, token: bool = True) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {plane.token}"} if token else {}
    url = f"http://127.0.0.1:{plane.api_port}{path}"
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


async def test_the_configured_ttl_is_the_default_lifetime(plane: ControlPlane) -> None:
    material = await fetch_certificate(ask(plane, plane.credentials.issue(REVIEWS)))
    leaf = material.leaf()
    assert leaf.not_valid_after_utc - datetime.now(UTC) <= timedelta(seconds=3)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc  # whole seconds in X.509
    assert timedelta(seconds=3) <= lifetime <= timedelta(seconds=5)


async def test_an_expired_credential_is_refused_and_logged_with_peer_and_identity(
    plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    expired = plane.credentials.issue(REVIEWS, now=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(CertificateRefused, match=r"401.*expired"):
        await fetch_certificate(ask(plane, expired))
    (line,) = refusals(caplog)
    assert "127.0.0.1" in line and REVIEWS.uri in line and "expired at" in line


async def test_a_bad_csr_is_refused_and_logged(
    plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    credential = plane.credentials.issue(REVIEWS)
    url = f"https://127.0.0.1:{plane.ca_port}/v1/certificates"
    from gossamer.proxy.certificates import _pinned_context  # the workload's own pinning

    request = ask(plane, credential)
    context = _pinned_context(request.root_pem, request.control_plane_id)
    headers = {"Authorization": f"Bearer {credential}"}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as s,
        s.post(
            url, json={"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"}, headers=headers
        ) as r,
    ):
        assert r.status == 403
        assert "not a PEM certificate signing request" in (await r.json())["error"]
    (line,) = refusals(caplog)
    assert "127.0.0.1" in line and REVIEWS.uri in line and "(by credential)" in line


async def test_asking_for_another_identity_names_both_in_the_log(
    plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ratings = SpiffeId("default", "ratings")
    request = CertificateRequest(
        f"127.0.0.1:{plane.ca_port}",
        plane.credentials.issue(REVIEWS),
        ask(plane, "").root_pem,
        ratings,
    )
    with pytest.raises(CertificateRefused, match="403"):
        await fetch_certificate(request)
    (line,) = refusals(caplog)
    assert f"certificate refused for 127.0.0.1: {REVIEWS.uri}" in line
    assert ratings.uri in line and "authorised only for" in line


async def test_renewals_go_on_after_the_bootstrap_credential_expires(
    plane: ControlPlane, tmp_path: Path
) -> None:
    """The credential lives 1 s, the certificates 3 s: every renewal after the first second is
    authenticated by the certificate being replaced."""
    assert plane.ca is not None
    credential = plane.credentials.issue(REVIEWS, ttl=timedelta(seconds=1))
    write_identity_files(tmp_path / "pod", credential, plane.ca.bundle.pem().decode())
    serials: list[int] = []
    agent = IdentityAgent(
        f"127.0.0.1:{plane.ca_port}",
        tmp_path / "pod" / "credential",
        tmp_path / "pod" / "root-cert.pem",
        REVIEWS,
        lambda m: serials.append(m.serial),
        node_id=NODE,
    )
    task = asyncio.create_task(agent.run())
    try:
        for _ in range(200):
            if len(serials) >= 4:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(set(serials)) >= 4, (serials, agent.last_error)
    assert agent.last_error == ""


async def test_without_any_proof_nothing_is_issued_nor_the_bundle_served(
    plane: ControlPlane,
) -> None:
    with pytest.raises(CertificateRefused, match=r"401: a bootstrap credential .* or a workload"):
        await fetch_trust_bundle(ask(plane, ""))
    bundle = await fetch_trust_bundle(ask(plane, plane.credentials.issue(REVIEWS)))
    assert plane.ca is not None and bundle == plane.ca.bundle.pem().decode()


async def test_what_was_issued_to_a_proxy_is_served_by_the_api(plane: ControlPlane) -> None:
    material = await fetch_certificate(ask(plane, plane.credentials.issue(REVIEWS), node_id=NODE))
    status, record = await api_get(plane, "/api/v1/proxies/reviews-v1-0/secrets")
    assert status == 200, record
    assert record["source"] == "issued by the CA"
    assert record["nodeId"] == NODE and record["identity"] == REVIEWS.uri
    assert record["serial"] == f"{material.serial:x}"
    assert record["notAfter"] == material.leaf().not_valid_after_utc.isoformat()
    assert plane.ca is not None
    assert [r["serial"] for r in record["trustBundle"]] == [f"{plane.ca.cert.serial_number:x}"]
    status, missing = await api_get(plane, "/api/v1/proxies/details-v1-0/secrets")
    assert status == 404 and "no certificate" in missing["error"]["message"]


async def test_the_ca_metrics_are_istiods(plane: ControlPlane) -> None:
    await fetch_certificate(ask(plane, plane.credentials.issue(REVIEWS)))
    with contextlib.suppress(CertificateRefused):
        await fetch_certificate(ask(plane, "gsm1.forged.forged"))
    status, text = await api_get(plane, "/metrics", token=False)  # scraped without the token
    assert status == 200
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert plane.ca is not None
    root_end = plane.ca.cert.not_valid_after_utc.timestamp()
    assert samples["citadel_server_root_cert_expiry_timestamp"] == int(root_end)
    assert samples["citadel_server_cert_chain_expiry_timestamp"] == int(root_end)
    left = samples["citadel_server_root_cert_expiry_seconds"]
    assert 3649 * 86400 < left <= 3650 * 86400
    assert samples["citadel_server_csr_count"] == 2
    assert samples["citadel_server_success_cert_issuance_count"] == 1
    assert samples['gossamer_ca_refused_count{status="401"}'] == 1
    assert "# TYPE citadel_server_root_cert_expiry_timestamp gauge" in text


async def test_a_restarted_plane_learns_its_proxies_from_their_bundle_refreshes(
    tmp_path: Path,
) -> None:
    """The ledger lives in memory: after a restart, a proxy's next trust-bundle refresh (it
    presents its certificate) brings it back, so a root rotation still waits for it."""
    config = PlaneConfig(home=tmp_path / "home", xds_port=0, api_port=0, ca_port=free_port())
    async with started(config) as before:
        material = await fetch_certificate(
            ask(before, before.credentials.issue(REVIEWS), node_id=NODE)
        )

    async with started(config) as plane:
        status, _ = await api_get(plane, "/api/v1/proxies/reviews-v1-0/secrets")
        assert status == 404  # forgotten with the old process

        refresh = ask(plane, "", node_id=NODE, client_material=material)  # no credential
        await fetch_trust_bundle(refresh)
        status, record = await api_get(plane, "/api/v1/proxies/reviews-v1-0/secrets")
        assert status == 200, record
        assert record["source"].startswith("presented by the proxy")
        assert record["serial"] == f"{material.serial:x}" and record["identity"] == REVIEWS.uri
        assert record["issuedAt"] is None

        await api_post(plane, "/api/v1/ca/rotation", {"step": "begin", "overlap": "48h"})
        status, refused = await api_post(plane, "/api/v1/ca/rotation", {"step": "promote"})
        assert status == 409 and NODE in refused["error"]["message"]

        await fetch_trust_bundle(refresh)  # the proxy's next refresh brings the new root
        status, promoted = await api_post(plane, "/api/v1/ca/rotation", {"step": "promote"})
        assert status == 200 and promoted["phase"] == "overlap", promoted


async def api_post(plane: ControlPlane, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {plane.token}"}
    url = f"http://127.0.0.1:{plane.api_port}{path}"
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()
