"""The certificate service on 15012: a CSR plus proof of identity in, a chain out.

Served over TLS 1.3 with a certificate the CA issues to the control plane itself
(`spiffe://<td>/ns/istio-system/sa/istiod`, see serving.py); clients pin the mesh roots and
check that identity, so a credential is only ever sent to the real control plane. The caller
proves its identity with its bootstrap credential or, once it has one, its workload certificate
(TLS client certificate, verified against the trust bundle): that identity is what gets signed,
never the CSR's. A refusal is logged with the peer's address and the identities involved, and
answered with the reason.

    POST /v1/certificates   Authorization: Bearer <credential>   (or a client certificate)
    {"csr": "<PEM>", "ttlSeconds": 86400, "nodeId": "<xDS node id>"}   (last two optional)
    → 200 {"certChain": "<leaf + intermediates PEM>", "trustBundle": "<roots PEM>"}

    GET /v1/trust-bundle?nodeId=<xDS node id>   (same authentication)
    → 200 {"trustBundle": "<roots PEM>"}   the roots to trust now (two during a rotation)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from cryptography import x509

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.credentials import CredentialIssuer, CredentialRejected
from gossamer.control.ca.errors import CaError, CsrRejected
from gossamer.control.ca.ledger import IssuanceLedger
from gossamer.control.ca.live import LiveCa
from gossamer.control.ca.serving import (
    CONTROL_PLANE_ACCOUNT,
    CONTROL_PLANE_NAMESPACE,
    ServingTls,
    control_plane_identity,
    own_material,
)
from gossamer.identity.spiffe import InvalidSpiffeId, SpiffeId
from gossamer.transport.svid import spiffe_id

__all__ = [
    "CONTROL_PLANE_ACCOUNT",
    "CONTROL_PLANE_NAMESPACE",
    "CertificateService",
    "control_plane_identity",
    "own_material",
]

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
_SERVICE: web.AppKey[CertificateService] = web.AppKey("service")


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class CertificateService:
    """15012: signs CSRs with the live CA, serves the trust bundle, records what it issued."""

    def __init__(self, live: LiveCa, issuer: CredentialIssuer, ledger: IssuanceLedger) -> None:
        self.live = live
        self.issuer = issuer
        self.ledger = ledger
        self.tls = ServingTls(live.authority)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._renewal: asyncio.Task[None] | None = None
        live.subscribe(self.tls.reissue)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app[_SERVICE] = self
        app.router.add_post("/v1/certificates", create_certificate)
        app.router.add_get("/v1/trust-bundle", trust_bundle)
        return app

    async def start(self, host: str, port: int) -> int:
        """Serve (port 0: any free port); returns the bound port."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self.tls.context)
        await site.start()
        self.port = port
        for address in self._runner.addresses:  # the bound (host, port) of each site
            self.port = int(address[1])
        self._renewal = asyncio.create_task(self._renew_own(), name="ca-serving-renewal")
        return self.port

    async def stop(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        if self._runner is not None:
            await self._runner.cleanup()

    async def _renew_own(self) -> None:
        while True:
            await asyncio.sleep(self.tls.renew_in())
            try:
                self.tls.reissue(self.live.authority)
            except CaError as exc:
                log.error("certificate service: cannot renew its own certificate: %s", exc)
                await asyncio.sleep(30)

    def authenticate(self, request: web.Request) -> tuple[SpiffeId, str]:
        """The caller's identity and how it proved it; _Refused (401) if it proved none."""
        by_certificate = _client_certificate_identity(request)
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            try:
                identity = self.issuer.verify(authorization.removeprefix("Bearer "))
            except CredentialRejected as exc:
                if by_certificate is None:
                    raise _Refused(401, str(exc)) from None
            else:
                return identity, "credential"
        if by_certificate is not None:
            return by_certificate, "certificate"
        raise _Refused(
            401,
            "a bootstrap credential (Authorization: Bearer ...) or a workload certificate "
            "is required",
        )


def _client_certificate(request: web.Request) -> x509.Certificate | None:
    """The client certificate the TLS layer verified, if one was presented."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return x509.load_der_x509_certificate(der) if der else None


def _client_certificate_identity(request: web.Request) -> SpiffeId | None:
    """The SPIFFE id of the client certificate the TLS layer verified, if one was presented."""
    presented = _client_certificate(request)
    if presented is None:
        return None
    uri = spiffe_id(presented)
    try:
        return SpiffeId.parse(uri) if uri else None
    except InvalidSpiffeId:
        return None


def _refuse(service: CertificateService, request: web.Request, refused: _Refused) -> web.Response:
    service.ledger.counts[f"refused_{refused.status}"] += 1
    log.warning("certificate refused for %s: %s", request.remote, refused)
    return web.json_response({"error": str(refused)}, status=refused.status)


def _body(raw: bytes) -> tuple[bytes, timedelta | None, str]:
    try:
        body: dict[str, Any] = json.loads(raw)
        csr = str(body["csr"]).encode()
        ttl = timedelta(seconds=int(body["ttlSeconds"])) if "ttlSeconds" in body else None
        node_id = str(body.get("nodeId") or "")
    except (ValueError, KeyError, TypeError) as exc:
        raise _Refused(400, f"body must be JSON with a PEM 'csr': {exc}") from None
    return csr, ttl, node_id


async def create_certificate(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    service.ledger.counts["csr"] += 1
    try:
        identity, proof = service.authenticate(request)
        csr, ttl, node_id = _body(await request.read())
        authority: Authority = service.live.authority
        try:
            issued = authority.sign(csr, identity, ttl)
        except CsrRejected as exc:
            raise _Refused(403, f"{identity} (by {proof}): {exc}") from None
        except CaError as exc:
            raise _Refused(503, str(exc)) from None
    except _Refused as refused:
        return _refuse(service, request, refused)
    service.ledger.counts["issued"] += 1
    service.ledger.record(node_id or identity.uri, issued, str(request.remote), datetime.now(UTC))
    log.info(
        "certificate %x issued to %s%s for %s (by %s)",
        issued.leaf.serial_number, request.remote, f" ({node_id})" if node_id else "",
        identity, proof,
    )  # fmt: skip
    return web.json_response(
        {"certChain": issued.chain_pem().decode(), "trustBundle": issued.bundle_pem().decode()}
    )


async def trust_bundle(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    try:
        identity, _ = service.authenticate(request)
    except _Refused as refused:
        return _refuse(service, request, refused)
    bundle = service.live.authority.bundle
    node_id = request.query.get("nodeId", "") or identity.uri  # as create_certificate keys it
    presented = _client_certificate(request)
    service.ledger.bundle_fetched(
        node_id, bundle.roots, datetime.now(UTC), presented, str(request.remote)
    )
    return web.json_response({"trustBundle": bundle.pem().decode()})
