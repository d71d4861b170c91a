"""Credential refresh against a real control plane: pods holding an identity get a fresh
credential and the current trust bundle; pods without one are left alone; one refusal does
not stop the round."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gossamer.control.plane import ControlPlane
from gossamer.runtime.credential_refresh import refresh_once
from gossamer.runtime.registration import (
    CREDENTIAL_FILE,
    ROOT_CERT_FILE,
    PodRecord,
    RegistryClient,
    write_identity_files,
)
from tests.runtime.running_plane import api_url, running_plane


def record(name: str, service_account: str = "bookinfo-reviews") -> PodRecord:
    return PodRecord(name, "default", "10.231.0.9", {"app": name}, service_account, {})


async def test_a_round_renews_what_pods_hold_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_plane(tmp_path / "plane") as plane:
        client = RegistryClient(api_url(plane), plane.token)
        try:
            holding, bare, refused = (tmp_path / n for n in ("holding", "bare", "refused"))
            write_identity_files(holding, "stale-credential", "stale-bundle")
            write_identity_files(refused, "stale-credential", "stale-bundle")
            bare.mkdir()
            owners = [
                (record("reviews-v1-0"), holding),
                (record("details-v1-0"), bare),  # no identity: no credential written
                (record("bad-0", service_account="Not A Name!"), refused),
            ]
            with caplog.at_level(logging.WARNING, logger="gossamer.runtime.credential_refresh"):
                await refresh_once(client, lambda: owners)
        finally:
            await client.close()
        fresh = (holding / CREDENTIAL_FILE).read_text()
        assert fresh != "stale-credential" and fresh
        assert (holding / ROOT_CERT_FILE).read_text() == _bundle(plane)
        assert not (bare / CREDENTIAL_FILE).exists()
        assert (refused / CREDENTIAL_FILE).read_text() == "stale-credential"
        assert "refreshing the credential of bad-0" in caplog.text


def _bundle(plane: ControlPlane) -> str:
    assert plane.ca is not None
    return plane.ca.bundle.pem().decode()
