"""Bootstrap credentials: bound to one identity, short-lived, unforgeable without the secret."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gossamer.control.ca.credentials import (
    CredentialIssuer,
    CredentialRejected,
    load_or_create_secret,
)
from gossamer.identity.spiffe import SpiffeId

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REVIEWS = SpiffeId("default", "bookinfo-reviews")


def test_a_credential_grants_exactly_the_identity_it_was_issued_for() -> None:
    issuer = CredentialIssuer(b"k" * 32)
    credential = issuer.issue(REVIEWS, timedelta(minutes=5), NOW)
    assert issuer.verify(credential, NOW + timedelta(minutes=4)) == REVIEWS


def test_an_expired_credential_is_refused_and_says_when_it_expired() -> None:
    issuer = CredentialIssuer(b"k" * 32)
    credential = issuer.issue(REVIEWS, timedelta(minutes=5), NOW)
    with pytest.raises(CredentialRejected, match="expired at 2026-11-25T12:05"):
        issuer.verify(credential, NOW + timedelta(minutes=5))


def test_an_altered_or_foreign_credential_is_refused() -> None:
    issuer = CredentialIssuer(b"k" * 32)
    credential = issuer.issue(REVIEWS, timedelta(minutes=5), NOW)
    prefix, _payload, mac = credential.split(".")
    other = issuer.issue(SpiffeId("default", "bookinfo-ratings"), timedelta(minutes=5), NOW)
    swapped = f"{prefix}.{other.split('.')[1]}.{mac}"  # ratings' claims under reviews' MAC
    with pytest.raises(CredentialRejected, match="forged or altered"):
        issuer.verify(swapped, NOW)
    with pytest.raises(CredentialRejected, match="forged or altered"):
        CredentialIssuer(b"x" * 32).verify(credential, NOW)
    for garbage in ("", "gsm1", "gsm2.a.b", "gsm1.a.b.c", "Bearer x"):
        with pytest.raises(CredentialRejected):
            issuer.verify(garbage, NOW)


def test_the_secret_is_created_once_private_and_then_reused(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    first = load_or_create_secret(ca_dir)
    assert len(first) == 32
    assert (ca_dir / "credential.key").stat().st_mode & 0o777 == 0o600
    assert os.stat(ca_dir).st_mode & 0o777 == 0o700
    assert load_or_create_secret(ca_dir) == first
