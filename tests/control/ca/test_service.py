"""The certificate service on 15012, for real: a control plane in the test's loop, TLS, the
admin API issuing credentials, and the workload-side client making its own key and CSR."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from gossamer.control.ca import TrustBundle, verify_peer
from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.identity.csr import make_csr, new_key
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.certificates import CertificateRefused, CertificateRequest, fetch_certificate
from tests.control.planes import started

REVIEWS = SpiffeId("default", "bookinfo-reviews")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with started(PlaneConfig(home=tmp_path, xds_port=0, api_port=0, ca_port=0)) as cp:
        yield cp


async def credential_for(plane: ControlPlane, namespace: str, account: str) -> str:
    headers = {"Authorization": f"Bearer {plane.token}"}
    body = {"namespace": namespace, "serviceAccount": account}
    url = f"http://127.0.0.1:{plane.api_port}/api/v1/credentials"
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        assert r.status == 201, await r.text()
        reply = await r.json()
    assert reply["identity"] == f"spiffe://cluster.local/ns/{namespace}/sa/{account}"
    return str(reply["credential"])


def root_pem(plane: ControlPlane) -> str:
    assert plane.ca is not None
    return plane.ca.bundle.pem().decode()


def ask(plane: ControlPlane, credential: str, identity: SpiffeId = REVIEWS) -> CertificateRequest:
    return CertificateRequest(f"127.0.0.1:{plane.ca_port}", credential, root_pem(plane), identity)


async def test_a_workload_gets_a_certificate_for_its_own_identity(plane: ControlPlane) -> None:
    credential = await credential_for(plane, "default", "bookinfo-reviews")
    material = await fetch_certificate(ask(plane, credential))
    assert material.identity == REVIEWS.uri
    chain = [x509.load_pem_x509_certificate(material.cert_chain_pem.encode())]
    bundle = TrustBundle.from_pem(material.trust_bundle_pem.encode())
    assert verify_peer(chain, bundle, expect=REVIEWS) == REVIEWS
    assert "PRIVATE KEY" in material.private_key_pem  # made by the workload, kept by it


async def test_asking_for_another_identity_is_refused_and_logged(
    plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    credential = await credential_for(plane, "default", "bookinfo-reviews")
    ratings = SpiffeId("default", "bookinfo-ratings")
    with caplog.at_level(logging.WARNING), pytest.raises(CertificateRefused, match="403"):
        await fetch_certificate(ask(plane, credential, ratings))
    refusal = [r.getMessage() for r in caplog.records if "certificate refused" in r.getMessage()]
    assert refusal and "127.0.0.1" in refusal[0] and "bookinfo-ratings" in refusal[0]


async def test_without_a_valid_credential_nothing_is_issued(plane: ControlPlane) -> None:
    for credential in ("", "gsm1.bogus.bogus"):
        with pytest.raises(CertificateRefused, match="401"):
            await fetch_certificate(ask(plane, credential))


async def test_the_client_sends_its_credential_only_to_the_control_plane(
    plane: ControlPlane,
) -> None:
    """A server whose certificate carries another identity (any workload the CA signed) is
    refused before the answer is used."""
    credential = await credential_for(plane, "default", "bookinfo-reviews")
    request = ask(plane, credential)
    impostor = CertificateRequest(
        request.address,
        credential,
        request.root_pem,
        REVIEWS,
        control_plane_id="spiffe://cluster.local/ns/istio-system/sa/someone-else",
    )
    with pytest.raises(CertificateRefused, match="expected"):
        await fetch_certificate(impostor)


async def test_a_server_outside_the_pinned_root_is_refused(
    plane: ControlPlane, tmp_path: Path
) -> None:
    other = ControlPlane(PlaneConfig(home=tmp_path / "other", xds_port=0, api_port=0, ca_port=0))
    await other.start()
    try:
        credential = await credential_for(plane, "default", "bookinfo-reviews")
        request = CertificateRequest(
            f"127.0.0.1:{other.ca_port}", credential, root_pem(plane), REVIEWS
        )
        with pytest.raises(CertificateRefused):
            await fetch_certificate(request)
    finally:
        await other.stop()


async def test_plaintext_is_not_served(plane: ControlPlane) -> None:
    csr = make_csr(new_key(), REVIEWS).decode()
    url = f"http://127.0.0.1:{plane.ca_port}/v1/certificates"
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as s, s.post(url, json={"csr": csr}) as r:
            await r.read()
