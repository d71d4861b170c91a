"""Making a self-signed mesh root, and the checks every CA certificate must pass before use."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gossamer.control.ca.errors import CaFileError
from gossamer.control.ca.pemfiles import SigningKey

ROOT_LIFETIME = timedelta(days=3650)
ROOT_ORGANIZATION = "Gossamer"


def new_root(
    now: datetime, common_name: str, lifetime: timedelta = ROOT_LIFETIME
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh P-256 key and a self-signed root that may sign one level of intermediates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ROOT_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def check_ca_cert(path: Path, cert: x509.Certificate, now: datetime) -> None:
    """Refuse a certificate that cannot act as a CA right now, naming the file and the reason."""
    if now < cert.not_valid_before_utc:
        raise CaFileError(path, f"not valid until {cert.not_valid_before_utc.isoformat()}")
    if now >= cert.not_valid_after_utc:
        raise CaFileError(path, f"expired at {cert.not_valid_after_utc.isoformat()}")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CaFileError(path, "not a CA certificate (no basicConstraints)") from None
    if not constraints.ca:
        raise CaFileError(path, "not a CA certificate (basicConstraints CA:false)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise CaFileError(path, "not a CA certificate (keyUsage lacks keyCertSign)")


def check_key_matches(path: Path, key: SigningKey, cert: x509.Certificate) -> None:
    """Refuse a key file whose key is not the one the certificate certifies."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, fmt) != cert.public_key().public_bytes(enc, fmt):
        raise CaFileError(path, "private key does not match the CA certificate")


def is_self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer
