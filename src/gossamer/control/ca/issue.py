"""Turning a workload's CSR into a leaf certificate for the identity the caller is authorised for.

Rules, in the order they are checked:
1. The CSR parses and its signature verifies (the workload holds the private key).
2. Its key is ECDSA P-256; anything else is refused with the type found.
3. The identity comes from the caller (the authenticated channel), never from the CSR. A CSR
   that names a SPIFFE ID (SAN URI or subject CN) other than that identity is refused, naming
   both; a CSR naming nothing is fine (the SAN is added here).
4. The leaf: empty subject, SAN URI = identity (critical, as RFC 5280 §4.2.1.6 requires with an
   empty subject), CA:false, keyUsage digitalSignature+keyEncipherment, extKeyUsage
   serverAuth+clientAuth, SKI and AKI, a random serial, not-before backdated a little for clock
   skew, not-after = now + ttl but never past the signing chain's own not-after.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gossamer.control.ca.errors import CsrRejected
from gossamer.control.ca.pemfiles import SigningKey
from gossamer.identity.spiffe import SpiffeId

CLOCK_SKEW = timedelta(seconds=60)


def load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its signature and key (rules 1 and 2)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CsrRejected(f"not a PEM certificate signing request ({exc})") from exc
    if not csr.is_signature_valid:
        raise CsrRejected("CSR signature does not verify (the requester must hold the key)")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CsrRejected(f"CSR key is {type(key).__name__}; workload keys must be ECDSA P-256")
    if not isinstance(key.curve, ec.SECP256R1):
        raise CsrRejected(f"CSR key is on curve {key.curve.name}; workload keys must be P-256")
    return csr


def requested_identities(csr: x509.CertificateSigningRequest) -> list[str]:
    """Every identity-like value the CSR asks for: SAN URIs and DNS names, subject CNs."""
    asked: list[str] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        asked += san.get_values_for_type(x509.UniformResourceIdentifier)
        asked += san.get_values_for_type(x509.DNSName)
        asked += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    for attr in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value
        asked.append(value if isinstance(value, str) else value.decode())
    return asked


def check_requested_identity(csr: x509.CertificateSigningRequest, identity: SpiffeId) -> None:
    """Rule 3: a CSR may name the caller's own identity or nothing at all."""
    for asked in requested_identities(csr):
        if asked != identity.uri:
            raise CsrRejected(
                f"CSR asks for identity {asked!r} but the caller is authorised only for "
                f"{identity.uri!r}"
            )


def build_leaf(
    csr: x509.CertificateSigningRequest,
    identity: SpiffeId,
    issuer_key: SigningKey,
    issuer_cert: x509.Certificate,
    ttl: timedelta,
    now: datetime,
    latest: datetime,
    clock_skew: timedelta = CLOCK_SKEW,
) -> x509.Certificate:
    """Rule 4, with not-after capped at `latest` (the signing chain's end).

    The backdate is at most a tenth of the TTL so short-lived certificates keep their life.
    """
    not_before = now - min(clock_skew, ttl / 10)
    not_after = min(now + ttl, latest)
    key = csr.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)  # load_csr checked it
    try:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer_cert.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(aki, critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
