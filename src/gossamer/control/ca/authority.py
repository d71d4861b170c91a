"""A loaded CA: the key and certificate that sign workload leaves, the chain sent with them, and
the trust bundle. Pure: no file I/O here (see `cadir.open_ca`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gossamer.control.ca.bundle import TrustBundle
from gossamer.control.ca.errors import CaError, CsrRejected
from gossamer.control.ca.issue import build_leaf, check_requested_identity, load_csr
from gossamer.control.ca.pemfiles import SigningKey
from gossamer.identity.spiffe import DEFAULT_TRUST_DOMAIN, SpiffeId

DEFAULT_TTL = timedelta(hours=24)
MAX_TTL = timedelta(days=90)  # Istio's default max-workload-cert-ttl


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A signed leaf, the intermediates to present with it, and the roots to trust peers by."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    bundle: TrustBundle

    def chain_pem(self) -> bytes:
        """Leaf then intermediates: what a TLS endpoint presents (`load_cert_chain`)."""
        certs = (self.leaf, *self.intermediates)
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    def bundle_pem(self) -> bytes:
        return self.bundle.pem()


@dataclass(frozen=True, slots=True)
class Authority:
    """Signs workload CSRs. `plugged` says the operator provided the CA (Istio's cacerts)."""

    key: SigningKey
    cert: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    bundle: TrustBundle
    plugged: bool
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    default_ttl: timedelta = DEFAULT_TTL
    max_ttl: timedelta = MAX_TTL

    def sign(
        self,
        csr_pem: bytes,
        identity: SpiffeId,
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> IssuedCert:
        """Sign `csr_pem` for `identity`, the identity the caller was authenticated as.

        Raises CsrRejected for a bad CSR, a foreign identity or trust domain, or a bad TTL;
        CaError if the CA's own chain has expired since it was loaded. A leaf never outlives
        the chain that signed it.
        """
        ttl = self.default_ttl if ttl is None else ttl
        if ttl <= timedelta(0):
            raise CsrRejected(f"TTL must be positive, got {ttl}")
        if ttl > self.max_ttl:
            raise CsrRejected(f"TTL {ttl} exceeds the maximum {self.max_ttl}")
        if identity.trust_domain != self.trust_domain:
            raise CsrRejected(
                f"identity {identity.uri!r} is outside this CA's trust domain {self.trust_domain!r}"
            )
        csr = load_csr(csr_pem)
        check_requested_identity(csr, identity)
        now = datetime.now(UTC) if now is None else now
        latest = min(c.not_valid_after_utc for c in (self.cert, *self.intermediates))
        if now >= latest:
            raise CaError(f"the CA chain expired at {latest.isoformat()}; nothing can be signed")
        leaf = build_leaf(csr, identity, self.key, self.cert, ttl, now, latest)
        return IssuedCert(leaf=leaf, intermediates=self.intermediates, bundle=self.bundle)

    def __repr__(self) -> str:
        kind = "plug-in" if self.plugged else "self-signed"
        return f"<Authority {kind} serial={self.cert.serial_number:x} {self.bundle!r}>"
