"""The workload side of issuance: a fresh ECDSA P-256 key and a CSR naming the wanted identity.

The private key stays in the process that calls `new_key`; only the CSR (public key, wanted
SPIFFE ID, signature proving possession) goes to the CA.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gossamer.identity.spiffe import SpiffeId


def new_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 key: the only kind the mesh CA signs for workloads."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: what a TLS context or Envoy's SDS secret loads."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_csr(key: ec.EllipticCurvePrivateKey, identity: SpiffeId) -> bytes:
    """A PEM CSR for `identity` with an empty subject, as Istio's agents send."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]),
        critical=True,
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
