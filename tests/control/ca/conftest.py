"""Fixtures for the mesh CA tests: a fixed clock, a fresh CA directory, issuance, plug-in CA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gossamer.control.ca import Authority, IssuedCert, SpiffeId, make_csr, new_key, open_ca
from tests.control.ca.support import Issue, Plugin, WritePlugin, write_plugin_files


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / "ca"


@pytest.fixture
def authority(ca_dir: Path, now: datetime) -> Authority:
    return open_ca(ca_dir, now=now)


@pytest.fixture
def issue() -> Issue:
    def _issue(
        authority: Authority,
        ns: str = "default",
        sa: str = "reviews",
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, IssuedCert]:
        identity = SpiffeId(ns, sa)
        key = new_key()
        return key, authority.sign(make_csr(key, identity), identity, ttl=ttl, now=now)

    return _issue


@pytest.fixture
def write_plugin(ca_dir: Path, now: datetime) -> WritePlugin:
    def _write(**options: Any) -> Plugin:
        return write_plugin_files(ca_dir, now, **options)

    return _write
