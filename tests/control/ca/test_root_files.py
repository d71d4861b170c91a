"""The self-signed root: created on first use in $GOSSAMER_HOME/ca with safe modes, reloaded
on later starts, and refused with the file and the reason when its files are unusable."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gossamer.control.ca import Authority, CaFileError, ca_dir_of, open_ca
from tests.control.ca.support import Issue, ca_cert, pem, private_pem


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def root_files(ca_dir: Path) -> tuple[Path, Path]:
    serial = json.loads((ca_dir / "state.json").read_text())["signing"]
    return ca_dir / "roots" / f"{serial}-cert.pem", ca_dir / "roots" / f"{serial}-key.pem"


def test_ca_dir_is_under_gossamer_home(tmp_path: Path) -> None:
    assert ca_dir_of(tmp_path) == tmp_path / "ca"


def test_first_use_creates_a_p256_root_with_safe_modes(ca_dir: Path, now: datetime) -> None:
    old_umask = os.umask(0)  # with no umask to narrow them, the modes are the CA's own choice
    try:
        authority = open_ca(ca_dir, now=now)
    finally:
        os.umask(old_umask)
    cert_file, key_file = root_files(ca_dir)
    assert mode(ca_dir) == 0o700
    assert mode(key_file) == 0o600
    assert mode(cert_file) == 0o644
    assert mode(ca_dir / "trust-bundle.pem") == 0o644
    root = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert root == authority.cert
    assert not authority.plugged
    assert (ca_dir / "trust-bundle.pem").read_bytes() == authority.bundle.pem()


def test_root_certificate_is_a_ten_year_ca(authority: Authority, now: datetime) -> None:
    root = authority.cert
    key = root.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Gossamer"
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert root.not_valid_after_utc - now == timedelta(days=3650)
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 1
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    root.verify_directly_issued_by(root)


def test_later_starts_load_the_same_root(ca_dir: Path, now: datetime, issue: Issue) -> None:
    first = open_ca(ca_dir, now=now)
    _, issued = issue(first)
    again = open_ca(ca_dir, now=now + timedelta(days=30))
    assert again.cert == first.cert
    issued.leaf.verify_directly_issued_by(again.cert)
    assert len(list((ca_dir / "roots").iterdir())) == 2  # one cert, one key: nothing new


def test_existing_wide_directory_is_tightened(ca_dir: Path, now: datetime) -> None:
    ca_dir.mkdir(parents=True, mode=0o755)
    os.chmod(ca_dir, 0o755)
    open_ca(ca_dir, now=now)
    assert mode(ca_dir) == 0o700


def test_unreadable_key_is_named(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    _, key_file = root_files(ca_dir)
    key_file.write_text("not a key")
    with pytest.raises(CaFileError, match="not an unencrypted PEM private key") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == key_file
    assert str(key_file) in str(err.value)


def test_missing_key_is_named(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    _, key_file = root_files(ca_dir)
    key_file.unlink()
    with pytest.raises(CaFileError, match="cannot read") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == key_file


def test_mismatched_key_is_refused(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    _, key_file = root_files(ca_dir)
    key_file.write_bytes(private_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CaFileError, match="does not match") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == key_file


def test_expired_root_is_refused(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    cert_file, _ = root_files(ca_dir)
    with pytest.raises(CaFileError, match="expired at") as err:
        open_ca(ca_dir, now=now + timedelta(days=3651))
    assert err.value.path == cert_file


def test_non_ca_certificate_is_refused(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    cert_file, key_file = root_files(ca_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    leafish = ca_cert(
        "not a ca", key, None, now - timedelta(days=1), now + timedelta(days=9), False
    )
    cert_file.write_bytes(pem(leafish))
    key_file.write_bytes(private_pem(key))
    with pytest.raises(CaFileError, match="not a CA certificate") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == cert_file


def test_malformed_state_is_named(ca_dir: Path, now: datetime) -> None:
    open_ca(ca_dir, now=now)
    (ca_dir / "state.json").write_text("{")
    with pytest.raises(CaFileError, match="malformed root state") as err:
        open_ca(ca_dir, now=now)
    assert err.value.path == ca_dir / "state.json"


def test_concurrent_first_starts_make_one_root(ca_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from gossamer.control.ca import open_ca; "
        "print(open_ca(Path(sys.argv[1])).cert.serial_number)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ca_dir)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    serials = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(serials) == 1
    assert len(list((ca_dir / "roots").iterdir())) == 2


def test_a_stale_trust_bundle_is_rewritten(ca_dir: Path, now: datetime) -> None:
    authority = open_ca(ca_dir, now=now)
    (ca_dir / "trust-bundle.pem").write_bytes(b"")
    open_ca(ca_dir, now=now)
    assert (ca_dir / "trust-bundle.pem").read_bytes() == authority.bundle.pem()
