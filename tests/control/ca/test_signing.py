"""Workload leaves from CSRs: Istio's certificate shape, and only the caller's own identity."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gossamer.control.ca import (
    DEFAULT_TTL,
    Authority,
    CaError,
    CsrRejected,
    PeerRejected,
    SpiffeId,
    leaf_identity,
    make_csr,
    new_key,
    open_ca,
    verify_peer,
)
from tests.control.ca.support import Issue, WritePlugin

REVIEWS = SpiffeId("default", "reviews")


def csr_for(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    sans: list[x509.GeneralName],
    cn: str | None = None,
) -> bytes:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_leaf_has_istio_shape(authority: Authority, issue: Issue, now: datetime) -> None:
    key, issued = issue(authority, now=now)
    leaf = issued.leaf
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical  # the subject is empty (RFC 5280 §4.2.1.6)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/default/sa/reviews"
    ]
    assert len(san.value) == 1
    assert leaf.subject == x509.Name([])
    assert leaf.issuer == authority.cert.subject
    assert leaf.public_key() == key.public_key()
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == root_ski.value.digest
    assert verify_peer([leaf], issued.bundle, now=now) == REVIEWS


def test_default_ttl_is_24h_with_a_small_backdate(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, now=now)
    assert timedelta(hours=24) == DEFAULT_TTL
    assert issued.leaf.not_valid_after_utc == now + timedelta(hours=24)
    assert issued.leaf.not_valid_before_utc == now - timedelta(seconds=60)


def test_ttl_is_configurable_and_short_ttls_keep_most_of_their_life(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, ttl=timedelta(minutes=2), now=now)
    assert issued.leaf.not_valid_after_utc == now + timedelta(minutes=2)
    assert issued.leaf.not_valid_before_utc == now - timedelta(seconds=12)


def test_serials_are_random_and_distinct(authority: Authority, issue: Issue) -> None:
    serials = {issue(authority)[1].leaf.serial_number for _ in range(5)}
    assert len(serials) == 5


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), timedelta(days=91)])
def test_bad_ttls_are_refused(authority: Authority, issue: Issue, ttl: timedelta) -> None:
    with pytest.raises(CsrRejected, match="TTL"):
        issue(authority, ttl=ttl)


def test_leaf_never_outlives_the_root(authority: Authority, issue: Issue, now: datetime) -> None:
    late = authority.cert.not_valid_after_utc - timedelta(hours=1)
    _, issued = issue(authority, now=late)
    assert issued.leaf.not_valid_after_utc == authority.cert.not_valid_after_utc


def test_csr_for_another_identity_is_refused_naming_both(authority: Authority) -> None:
    key = new_key()
    csr = make_csr(key, SpiffeId("default", "ratings"))
    with pytest.raises(CsrRejected) as refused:
        authority.sign(csr, REVIEWS)
    assert "spiffe://cluster.local/ns/default/sa/ratings" in str(refused.value)
    assert "spiffe://cluster.local/ns/default/sa/reviews" in str(refused.value)


@pytest.mark.parametrize(
    ("sans", "cn", "asked"),
    [
        ([x509.DNSName("reviews.default.svc")], None, "reviews.default.svc"),
        ([], "spiffe://cluster.local/ns/kube-system/sa/admin", "kube-system"),
        (
            [
                x509.UniformResourceIdentifier(REVIEWS.uri),
                x509.UniformResourceIdentifier("spiffe://cluster.local/ns/x/sa/y"),
            ],
            None,
            "ns/x/sa/y",
        ),
    ],
)
def test_any_other_name_in_the_csr_is_refused(
    authority: Authority, sans: list[x509.GeneralName], cn: str | None, asked: str
) -> None:
    with pytest.raises(CsrRejected, match=asked):
        authority.sign(csr_for(new_key(), sans, cn), REVIEWS)


def test_csr_naming_nothing_gets_the_callers_identity(authority: Authority, now: datetime) -> None:
    issued = authority.sign(csr_for(new_key(), []), REVIEWS, now=now)
    assert verify_peer([issued.leaf], authority.bundle, now=now) == REVIEWS


def test_identity_outside_the_trust_domain_is_refused(authority: Authority) -> None:
    other = SpiffeId("default", "reviews", trust_domain="example.org")
    with pytest.raises(CsrRejected, match="trust domain"):
        authority.sign(make_csr(new_key(), other), other)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSAPublicKey"),
        (ec.generate_private_key(ec.SECP384R1()), "secp384r1"),
    ],
)
def test_keys_other_than_p256_are_refused(
    authority: Authority, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, says: str
) -> None:
    with pytest.raises(CsrRejected, match=says) as refused:
        authority.sign(csr_for(key, []), REVIEWS)
    assert "P-256" in str(refused.value)


def test_garbage_and_forged_csrs_are_refused(authority: Authority) -> None:
    with pytest.raises(CsrRejected, match="not a PEM"):
        authority.sign(b"hello", REVIEWS)
    good = make_csr(new_key(), REVIEWS)
    der = bytearray(x509.load_pem_x509_csr(good).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # flip a byte of the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrRejected, match="signature"):
        authority.sign(forged, REVIEWS)


def test_private_key_never_reaches_the_ca(authority: Authority) -> None:
    key = new_key()
    csr = make_csr(key, REVIEWS)
    assert b"PRIVATE KEY" not in csr
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    assert secret not in x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)


def test_extensions_the_csr_requests_are_ignored(authority: Authority, now: datetime) -> None:
    key = new_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    leaf = authority.sign(csr, REVIEWS, now=now).leaf
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_leaf_never_outlives_a_plugin_intermediate(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin, issue: Issue
) -> None:
    plugin = write_plugin(intermediate_not_after=now + timedelta(hours=12))
    _, issued = issue(open_ca(ca_dir, now=now), now=now)
    assert issued.leaf.not_valid_after_utc == plugin.intermediate.not_valid_after_utc


def test_nothing_is_signed_once_the_ca_has_expired(authority: Authority, issue: Issue) -> None:
    with pytest.raises(CaError, match="CA chain expired"):
        issue(authority, now=authority.cert.not_valid_after_utc)


def test_verify_peer_checks_the_expected_identity(
    authority: Authority, issue: Issue, now: datetime
) -> None:
    _, issued = issue(authority, sa="reviews", now=now)
    assert verify_peer([issued.leaf], authority.bundle, now=now, expect=REVIEWS) == REVIEWS
    with pytest.raises(
        PeerRejected, match=re.escape("expected 'spiffe://cluster.local/ns/default/sa/x'")
    ):
        verify_peer([issued.leaf], authority.bundle, now=now, expect=SpiffeId("default", "x"))


@pytest.mark.parametrize(
    ("sans", "says"),
    [
        ([], "no subjectAltName"),
        ([x509.DNSName("reviews")], "exactly one SPIFFE ID"),
        (
            [
                x509.UniformResourceIdentifier("spiffe://cluster.local/ns/a/sa/b"),
                x509.UniformResourceIdentifier("spiffe://cluster.local/ns/a/sa/c"),
            ],
            "exactly one SPIFFE ID",
        ),
        ([x509.UniformResourceIdentifier("spiffe://cluster.local/x")], "path must be"),
    ],
)
def test_a_leaf_must_name_exactly_one_workload_identity(
    now: datetime, sans: list[x509.GeneralName], says: str
) -> None:
    key = new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(hours=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=True)
    with pytest.raises(PeerRejected, match=says):
        leaf_identity(builder.sign(key, hashes.SHA256()))
