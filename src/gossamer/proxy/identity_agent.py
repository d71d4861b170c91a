"""The sidecar's identity: fetch a certificate at start, renew it at half its life, keep its
trust bundle current, show it.

What Istio's pilot-agent does for Envoy, in process: the key is made here and never written
anywhere; the bootstrap credential and the pinned root come from files the runtime put in the
pod's work dir. A failed fetch is retried with back-off while the proxy keeps serving.

Root rotation: every `bundle_refresh` seconds the agent asks the certificate service for the
trust bundle; when its roots change, `on_material` gets the same certificate with the new bundle
(new connections trust the new root long before any leaf needs it). The agent pins the roots of
its root file plus those of the latest bundle, so it still trusts 15012 once the new root signs
the control plane's certificate; and a new bundle that no longer vouches for its own leaf makes
it renew at once. Once it holds a certificate it presents it to 15012, so renewals go on after
the bootstrap credential has expired. `/certs` on the admin port shows the identity, serial,
validity and the trust bundle's roots (Envoy's endpoint name).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from gossamer.identity.renewal import renew_at
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.certificates import (
    CertificateRefused,
    CertificateRequest,
    fetch_certificate,
    fetch_trust_bundle,
)
from gossamer.transport.tls import IdentityMaterial
from gossamer.waits import set_within

log = logging.getLogger("gossamer.proxy")
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
BUNDLE_REFRESH = 60.0
T = TypeVar("T")


def _roots(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def _serials(pem: str) -> list[str]:
    return [f"{root.serial_number:x}" for root in _roots(pem)]


class IdentityAgent:
    def __init__(
        self,
        address: str,
        credential_file: Path,
        root_cert_file: Path,
        identity: SpiffeId,
        on_material: Callable[[IdentityMaterial], None] = lambda _m: None,
        *,
        node_id: str | None = None,
        bundle_refresh: float = BUNDLE_REFRESH,
        ttl_seconds: int | None = None,
    ) -> None:
        self.address = address
        self.credential_file = credential_file
        self.root_cert_file = root_cert_file
        self.identity = identity
        self.on_material = on_material
        self.node_id = node_id
        self.bundle_refresh = bundle_refresh
        self.ttl_seconds = ttl_seconds
        self.material: IdentityMaterial | None = None
        self.last_error = ""
        self._renew_now = asyncio.Event()

    def _request(self, authenticate_with_certificate: bool = True) -> CertificateRequest:
        latest = self.material.trust_bundle_pem if self.material is not None else ""
        client = self.material if authenticate_with_certificate and self._leaf_valid() else None
        return CertificateRequest(
            self.address,
            self.credential_file.read_text().strip(),
            self.root_cert_file.read_text() + latest,
            self.identity,
            ttl_seconds=self.ttl_seconds,
            node_id=self.node_id,
            client_material=client,
        )

    def _leaf_valid(self) -> bool:
        if self.material is None:
            return False
        leaf = self.material.leaf()
        now = datetime.now(UTC)
        return leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc

    async def _authenticated(self, call: Callable[[CertificateRequest], Awaitable[T]]) -> T:
        """`call` to 15012 authenticated by the current certificate when it is valid, else (or
        if 15012 refuses that one, e.g. its root has left the bundle) by the credential alone."""
        request = self._request()
        if request.client_material is None:
            return await call(request)
        try:
            return await call(request)
        except (CertificateRefused, OSError) as exc:
            log.info("certificate for %s: 15012 refused the current certificate (%s); "
                     "using the bootstrap credential", self.identity, exc)  # fmt: skip
            return await call(self._request(authenticate_with_certificate=False))

    async def run(self) -> None:
        """Until cancelled: hold a valid certificate, renewing ahead of expiry, and keep the
        trust bundle current."""
        refresher = asyncio.create_task(self._refresh_bundle(), name="trust-bundle-refresh")
        try:
            await self._keep_certificate()
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    async def _keep_certificate(self) -> None:
        retry = RETRY_FIRST
        while True:
            try:
                material = await self._authenticated(fetch_certificate)
            except (CertificateRefused, OSError) as exc:
                self.last_error = str(exc)
                log.warning("certificate for %s: %s; retrying in %gs", self.identity, exc, retry)
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
                continue
            retry, self.last_error = RETRY_FIRST, ""
            self._adopt(material)
            leaf = material.leaf()
            log.info(
                "certificate for %s: serial %x, valid until %s",
                self.identity, leaf.serial_number, leaf.not_valid_after_utc.isoformat(),
            )  # fmt: skip
            wait = (renew_at(leaf, rng=random.Random()) - datetime.now(UTC)).total_seconds()
            self._renew_now.clear()
            await set_within(self._renew_now, max(wait, 1.0))

    def _adopt(self, material: IdentityMaterial) -> None:
        previous = self.material.trust_bundle_pem if self.material is not None else None
        self.material = material
        if previous is not None and _serials(previous) != _serials(material.trust_bundle_pem):
            self._log_bundle_change(previous, material.trust_bundle_pem)
        self.on_material(material)

    def _log_bundle_change(self, before: str, after: str) -> None:
        log.warning(
            "trust bundle for %s changed: roots %s -> %s",
            self.identity, ",".join(_serials(before)) or "-", ",".join(_serials(after)) or "-",
        )  # fmt: skip

    async def _refresh_bundle(self) -> None:
        while True:
            await asyncio.sleep(self.bundle_refresh)
            if self.material is None:
                continue  # the certificate's own fetch brings a bundle
            try:
                bundle = await self._authenticated(fetch_trust_bundle)
            except (CertificateRefused, OSError) as exc:
                log.info("trust bundle for %s: %s", self.identity, exc)
                continue
            current = self.material
            if current is None or _serials(bundle) == _serials(current.trust_bundle_pem):
                continue
            self._adopt(dataclasses.replace(current, trust_bundle_pem=bundle))
            if not _issuer_in(bundle, current.cert_chain_pem):
                log.warning(
                    "certificate for %s: its issuer left the trust bundle; renewing now",
                    self.identity,
                )
                self._renew_now.set()

    def certs(self) -> dict[str, Any]:
        """Envoy's `/certs` shape: the CA bundle's roots and the chain, with time to expiry."""
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
                    "ca_cert": [
                        {
                            "serial_number": f"{root.serial_number:x}",
                            "subject": root.subject.rfc4514_string(),
                            "valid_from": root.not_valid_before_utc.isoformat(),
                            "expiration_time": root.not_valid_after_utc.isoformat(),
                            "seconds_until_expiration": int(
                                (root.not_valid_after_utc - now).total_seconds()
                            ),
                        }
                        for root in _roots(self.material.trust_bundle_pem)
                    ],
                    "ca_cert_pem": self.material.trust_bundle_pem,
                }
            ]
        }


def _issuer_in(bundle_pem: str, chain_pem: str) -> bool:
    """Whether the certificate chain (leaf first) still verifies against the bundle's roots."""
    roots, chain = _roots(bundle_pem), _roots(chain_pem)
    if not roots or not chain:
        return False
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError:
        return False
    return True
