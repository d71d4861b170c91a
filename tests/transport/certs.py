"""The TLS tests' CA: the mesh's own (`gossamer.control.ca`) over a throwaway in-memory root, so
what the tests trust and present is exactly what a workload would get from the control plane."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from gossamer.control.ca import Authority, TrustBundle
from gossamer.control.ca.root import new_root
from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.identity.spiffe import SpiffeId
from gossamer.transport.tls import IdentityMaterial


@dataclass(frozen=True)
class TestCA:
    """A self-signed root that issues workload certificates through the mesh CA's Authority."""

    __test__ = False  # not a pytest class

    authority: Authority

    @classmethod
    def create(cls, name: str = "gossamer test root") -> TestCA:
        key, cert = new_root(datetime.datetime.now(datetime.UTC), name)
        return cls(Authority(key, cert, (), TrustBundle((cert,)), plugged=False))

    @property
    def root_pem(self) -> str:
        return self.authority.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(
        self,
        spiffe_id: str,
        *,
        valid_from: datetime.datetime | None = None,
        valid_for: datetime.timedelta = datetime.timedelta(hours=24),
        trust_bundle_pem: str | None = None,
    ) -> IdentityMaterial:
        """A workload certificate with URI SAN `spiffe_id` and its key, as the CA signs a
        workload's CSR, trusting this root by default. `valid_from` in the past makes an
        expired leaf (`Authority.sign(..., now=...)`)."""
        identity = SpiffeId.parse(spiffe_id)
        authority = dataclasses.replace(self.authority, trust_domain=identity.trust_domain)
        key = new_key()
        issued = authority.sign(make_csr(key, identity), identity, ttl=valid_for, now=valid_from)
        return IdentityMaterial(
            cert_chain_pem=issued.chain_pem().decode(),
            private_key_pem=key_pem(key).decode(),
            trust_bundle_pem=trust_bundle_pem or self.root_pem,
        )
