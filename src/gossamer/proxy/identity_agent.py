"""The sidecar's identity: fetch a certificate at start, renew it at half its life, show it.

What Istio's pilot-agent does for Envoy, in process: the key is made here and never written
anywhere; the bootstrap credential and the pinned root come from files the runtime put in the
pod's work dir. A failed fetch is retried with back-off while the proxy keeps serving.
`/certs` on the admin port shows the identity, serial and validity (Envoy's endpoint name).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gossamer.identity.renewal import renew_at
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.certificates import CertificateRefused, CertificateRequest, fetch_certificate
from gossamer.transport.tls import IdentityMaterial

log = logging.getLogger("gossamer.proxy")
RETRY_FIRST, RETRY_MAX = 1.0, 30.0


class IdentityAgent:
    def __init__(
        self,
        address: str,
        credential_file: Path,
        root_cert_file: Path,
        identity: SpiffeId,
        on_material: Callable[[IdentityMaterial], None] = lambda _m: None,
    ) -> None:
        self.address = address
        self.credential_file = credential_file
        self.root_cert_file = root_cert_file
        self.identity = identity
        self.on_material = on_material
        self.material: IdentityMaterial | None = None
        self.last_error = ""

    def _request(self) -> CertificateRequest:
        return CertificateRequest(
            self.address,
            self.credential_file.read_text().strip(),
            self.root_cert_file.read_text(),
            self.identity,
        )

    async def run(self) -> None:
        """Until cancelled: hold a valid certificate, renewing ahead of expiry."""
        retry = RETRY_FIRST
        while True:
            try:
                material = await fetch_certificate(self._request())
            except (CertificateRefused, OSError) as exc:
                self.last_error = str(exc)
                log.warning("certificate for %s: %s; retrying in %gs", self.identity, exc, retry)
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
                continue
            retry, self.last_error = RETRY_FIRST, ""
            self.material = material
            self.on_material(material)
            leaf = material.leaf()
            log.info(
                "certificate for %s: serial %x, valid until %s",
                self.identity, leaf.serial_number, leaf.not_valid_after_utc.isoformat(),
            )  # fmt: skip
            wait = (renew_at(leaf, rng=random.Random()) - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(wait, 1.0))

    def certs(self) -> dict[str, Any]:
        """Envoy's `/certs` shape: the CA bundle and the chain, with days until expiry."""
        if self.material is None:
            return {"certificates": [], "error": self.last_error or "no certificate yet"}
        leaf = self.material.leaf()
        now = datetime.now(UTC)
        return {
            "certificates": [
                {
                    "cert_chain": [
                        {
                            "serial_number": f"{leaf.serial_number:x}",
                            "subject_alt_names": [{"uri": self.material.identity}],
                            "valid_from": leaf.not_valid_before_utc.isoformat(),
                            "expiration_time": leaf.not_valid_after_utc.isoformat(),
                            "seconds_until_expiration": int(
                                (leaf.not_valid_after_utc - now).total_seconds()
                            ),
                        }
                    ],
                    "ca_cert_pem": self.material.trust_bundle_pem,
                }
            ]
        }
