"""Helpers for the mesh CA tests: an operator's CA certificates built with `cryptography` alone
(as openssl or step would make them), and the types of the fixtures in conftest.py."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gossamer.control.ca import IssuedCert

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
DAY = timedelta(days=1)

Issue = Callable[..., tuple[ec.EllipticCurvePrivateKey, IssuedCert]]
"""issue(authority, ns="default", sa="reviews", ttl=None, now=None) → (workload key, issued)."""


@dataclass
class Plugin:
    directory: Path
    root: x509.Certificate
    intermediate: x509.Certificate


WritePlugin = Callable[..., Plugin]


def ca_cert(
    subject_cn: str,
    key: Key,
    issuer: tuple[Key, x509.Certificate] | None,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool = True,
) -> x509.Certificate:
    """A CA certificate (self-signed when `issuer` is None); `is_ca=False` makes a non-CA."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Operator"),
            x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
        ]
    )
    signer_key, issuer_name = (key, name) if issuer is None else (issuer[0], issuer[1].subject)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
        .sign(signer_key, hashes.SHA256())
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def private_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_plugin_files(
    ca_dir: Path,
    now: datetime,
    intermediate_is_ca: bool = True,
    intermediate_not_after: datetime | None = None,
    wrong_key: bool = False,
    root_in_chain: bool = True,
) -> Plugin:
    """Istio's cacerts files in ca_dir/cacerts: an RSA root and an EC intermediate."""
    directory = ca_dir / "cacerts"
    directory.mkdir(parents=True)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = ca_cert("Operator Root", root_key, None, now - DAY, now + 3650 * DAY)
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = ca_cert(
        "Operator Intermediate",
        int_key,
        (root_key, root),
        now - DAY,
        intermediate_not_after or now + 365 * DAY,
        is_ca=intermediate_is_ca,
    )
    written_key = ec.generate_private_key(ec.SECP256R1()) if wrong_key else int_key
    (directory / "ca-cert.pem").write_bytes(pem(inter))
    (directory / "ca-key.pem").write_bytes(private_pem(written_key))
    (directory / "root-cert.pem").write_bytes(pem(root))
    (directory / "cert-chain.pem").write_bytes(pem(inter, root) if root_in_chain else pem(inter))
    return Plugin(directory=directory, root=root, intermediate=inter)


def peer_uris(conn: ssl.SSLSocket) -> list[str]:
    """The URI SANs of the certificate the TLS peer presented (empty if none)."""
    cert = conn.getpeercert() or {}
    names: tuple[tuple[str, str], ...] = tuple(cert.get("subjectAltName", ()))  # type: ignore[arg-type]
    return [value for kind, value in names if kind == "URI"]
