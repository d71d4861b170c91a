"""Reading and writing the CA's PEM files, with errors that name the file and the reason.

Writes are atomic (temporary file in the same directory, fsync, rename) and get their final
mode before the rename, so a private key is never readable by others, not even for a moment.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from gossamer.control.ca.errors import CaFileError

DIR_MODE = 0o700
KEY_MODE = 0o600
CERT_MODE = 0o644

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) with mode 0700, and tighten it if it already exists."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data`; readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; a key must never be wider
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CaFileError(path, f"cannot read: {exc.strerror or exc}") from exc


def read_certs(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (at least one)."""
    data = _read(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CaFileError(path, f"not a PEM certificate file ({exc})") from exc
    if not certs:
        raise CaFileError(path, "holds no certificate")
    return certs


def read_cert(path: Path) -> x509.Certificate:
    """The single certificate a PEM file must hold."""
    certs = read_certs(path)
    if len(certs) != 1:
        raise CaFileError(path, f"expected one certificate, found {len(certs)}")
    return certs[0]


def read_signing_key(path: Path) -> SigningKey:
    """An unencrypted EC or RSA private key (the kinds a CA can sign with here)."""
    data = _read(path)
    try:
        key: CertificateIssuerPrivateKeyTypes | object = serialization.load_pem_private_key(
            data, password=None
        )
    except (ValueError, TypeError) as exc:
        raise CaFileError(path, f"not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CaFileError(path, f"unsupported CA key type {type(key).__name__} (EC or RSA only)")
    return key


def key_to_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certs_to_pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
