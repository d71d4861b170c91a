"""A throwaway CA issuing SPIFFE certificates, so Envoy sees real mTLS peer identities."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authz-test")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return _pem(self.cert)

    def issue(self, spiffe_id: str) -> tuple[str, str]:
        """(certificate PEM, key PEM) with `spiffe_id` as the only URI SAN."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _pem(cert), _key_pem(key)

    def client_context(self, spiffe_id: str, workdir: Path) -> ssl.SSLContext:
        """A client context presenting `spiffe_id` (server name not checked: SPIFFE has none)."""
        cert, key = self.issue(spiffe_id)
        name = spiffe_id.removeprefix("spiffe://").replace("/", "_")
        cert_path, key_path = workdir / f"{name}.crt", workdir / f"{name}.key"
        cert_path.write_text(cert)
        key_path.write_text(key)
        context = ssl.create_default_context(cadata=self.pem)
        context.check_hostname = False
        context.load_cert_chain(cert_path, key_path)
        return context

    def server_tls(self, spiffe_id: str) -> dict[str, object]:
        """An Envoy DownstreamTlsContext requiring a client certificate from this CA."""
        cert, key = self.issue(spiffe_id)
        return {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/"
                "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": True,
                "common_tls_context": {
                    "tls_certificates": [
                        {
                            "certificate_chain": {"inline_string": cert},
                            "private_key": {"inline_string": key},
                        }
                    ],
                    "validation_context": {"trusted_ca": {"inline_string": self.pem}},
                },
            },
        }
