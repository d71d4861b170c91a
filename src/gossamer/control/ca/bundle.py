"""The trust bundle: every root a workload must trust, as one PEM concatenation.

During a root rotation it holds the old and the new root, so leaves from either verify.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True, slots=True)
class TrustBundle:
    roots: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if not self.roots:
            raise ValueError("a trust bundle needs at least one root")

    @classmethod
    def from_pem(cls, data: bytes) -> TrustBundle:
        return cls(tuple(x509.load_pem_x509_certificates(data)))

    def pem(self) -> bytes:
        return b"".join(r.public_bytes(serialization.Encoding.PEM) for r in self.roots)

    def serials(self) -> tuple[int, ...]:
        return tuple(r.serial_number for r in self.roots)

    def __contains__(self, cert: object) -> bool:
        return isinstance(cert, x509.Certificate) and cert in self.roots

    def __repr__(self) -> str:
        serials = ",".join(f"{s:x}"[:8] for s in self.serials())
        return f"<TrustBundle roots={len(self.roots)} serials={serials}>"
