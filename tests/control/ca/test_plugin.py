"""Istio's plug-in CA (cacerts): used instead of the self-signed root when present; leaves are
signed by the intermediate and come with their chain; bad files are named with the reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gossamer.control.ca import CaFileError, SpiffeId, open_ca, verify_peer
from tests.control.ca.support import Issue, WritePlugin


def test_plugin_ca_signs_with_the_intermediate(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin, issue: Issue
) -> None:
    plugin = write_plugin()
    authority = open_ca(ca_dir, now=now)
    assert authority.plugged
    assert authority.cert == plugin.intermediate
    assert authority.bundle.roots == (plugin.root,)
    assert not (ca_dir / "state.json").exists()  # no self-signed root was made
    _, issued = issue(authority, ns="shop", sa="cart")
    assert issued.leaf.issuer == plugin.intermediate.subject
    assert issued.intermediates == (plugin.intermediate,)  # the root is trusted, not sent
    assert issued.chain_pem().count(b"BEGIN CERTIFICATE") == 2
    chain = [issued.leaf, *issued.intermediates]
    assert verify_peer(chain, issued.bundle) == SpiffeId("shop", "cart")


def test_chain_without_the_root_is_accepted(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin(root_in_chain=False)
    assert open_ca(ca_dir, now=now).intermediates == (plugin.intermediate,)


def test_a_missing_plugin_file_is_named_not_ignored(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin()
    (plugin.directory / "cert-chain.pem").unlink()
    with pytest.raises(CaFileError, match="missing") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "cert-chain.pem"
    assert not (ca_dir / "state.json").exists()  # never falls back to a self-signed root


def test_mismatched_plugin_key_is_refused(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin(wrong_key=True)
    with pytest.raises(CaFileError, match="does not match") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "ca-key.pem"


def test_expired_intermediate_is_refused(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin(intermediate_not_after=now - timedelta(hours=1))
    with pytest.raises(CaFileError, match="expired at") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "ca-cert.pem"


def test_non_ca_intermediate_is_refused(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin(intermediate_is_ca=False)
    with pytest.raises(CaFileError, match="not a CA certificate") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "ca-cert.pem"


def test_unparseable_root_file_is_named(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin()
    (plugin.directory / "root-cert.pem").write_text("garbage")
    with pytest.raises(CaFileError) as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "root-cert.pem"


def test_intermediate_from_another_root_is_refused(
    ca_dir: Path, tmp_path: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    from tests.control.ca.support import write_plugin_files

    plugin = write_plugin()
    other = write_plugin_files(tmp_path / "other", now)
    (plugin.directory / "root-cert.pem").write_bytes(
        (other.directory / "root-cert.pem").read_bytes()
    )
    (plugin.directory / "cert-chain.pem").write_bytes(
        (plugin.directory / "ca-cert.pem").read_bytes()
    )
    with pytest.raises(CaFileError, match="no root here signed") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "root-cert.pem"


def test_chain_must_start_with_ca_cert(
    ca_dir: Path, now: datetime, write_plugin: WritePlugin
) -> None:
    plugin = write_plugin()
    (plugin.directory / "cert-chain.pem").write_bytes(
        (plugin.directory / "root-cert.pem").read_bytes()
    )
    with pytest.raises(CaFileError, match=r"first certificate is not ca-cert\.pem") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == plugin.directory / "cert-chain.pem"
