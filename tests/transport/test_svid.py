"""SPIFFE identities read off certificates: one parse per certificate, never another's."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gossamer.transport import svid
from gossamer.transport.svid import identity_of_der
from gossamer.transport.tls import IdentityMaterial
from tests.transport.certs import TestCA

SERVER_ID = "spiffe://cluster.local/ns/default/sa/reviews"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/productpage"


def test_each_certificate_gives_its_own_identity_however_often_it_is_asked(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Peer identities are parsed once per certificate; a cache turning over (2 entries here)
    never hands one certificate another's identity."""
    monkeypatch.setattr(svid, "_IDENTITIES", {})
    monkeypatch.setattr(svid, "_CACHED_IDENTITIES", 2)
    ids = [SERVER_ID, CLIENT_ID, "spiffe://cluster.local/ns/prod/sa/ratings"]
    ders = [_der(ca.issue(i)) for i in ids]
    for _ in range(3):
        assert [identity_of_der(d) for d in ders] == ids
    assert len(svid._IDENTITIES) == 2
    without_spiffe = ca.root_pem  # the root has no URI SAN
    root_der = x509.load_pem_x509_certificate(without_spiffe.encode()).public_bytes(
        serialization.Encoding.DER
    )
    assert identity_of_der(root_der) is None


def _der(material: IdentityMaterial) -> bytes:
    return material.leaf().public_bytes(serialization.Encoding.DER)
