"""The certificate service on 15012: a CSR plus a bootstrap credential in, a chain out.

Served over TLS 1.3 with a certificate the CA issues to the control plane itself
(`spiffe://<td>/ns/istio-system/sa/istiod`); clients pin the mesh root and check that identity,
so a credential is only ever sent to the real control plane. The identity a certificate is
signed for comes from the credential, never from the CSR; a refusal is logged with the peer's
address and answered 403 with the reason.

    POST /v1/certificates   Authorization: Bearer <credential>
    {"csr": "<PEM>", "ttlSeconds": 86400}      (ttlSeconds optional)
    → 200 {"certChain": "<leaf + intermediates PEM>", "trustBundle": "<roots PEM>"}
"""

from __future__ import annotations

import json
import logging
import ssl
from datetime import timedelta
from typing import Any

from aiohttp import web

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.credentials import CredentialIssuer, CredentialRejected
from gossamer.control.ca.errors import CaError, CsrRejected
from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.identity.spiffe import SpiffeId
from gossamer.transport.tls import IdentityMaterial, server_context

log = logging.getLogger(__name__)
CONTROL_PLANE_NAMESPACE = "istio-system"
CONTROL_PLANE_ACCOUNT = "istiod"
MAX_BODY = 64 * 1024
_AUTHORITY: web.AppKey[Authority] = web.AppKey("authority", Authority)
_ISSUER: web.AppKey[CredentialIssuer] = web.AppKey("issuer", CredentialIssuer)


def control_plane_identity(authority: Authority) -> SpiffeId:
    return SpiffeId(CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_ACCOUNT, authority.trust_domain)


def own_material(authority: Authority) -> IdentityMaterial:
    """The control plane's serving certificate, issued by its own CA like any workload's."""
    key = new_key()
    identity = control_plane_identity(authority)
    issued = authority.sign(make_csr(key, identity), identity)
    return IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )


def tls_context(authority: Authority) -> ssl.SSLContext:
    return server_context(own_material(authority), require_client_cert=False, alpn=("http/1.1",))


def make_app(authority: Authority, issuer: CredentialIssuer) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[_AUTHORITY] = authority
    app[_ISSUER] = issuer
    app.router.add_post("/v1/certificates", create_certificate)
    return app


def _refuse(status: int, reason: str, request: web.Request) -> web.Response:
    log.warning("certificate refused for %s: %s", request.remote, reason)
    return web.json_response({"error": reason}, status=status)


async def create_certificate(request: web.Request) -> web.Response:
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer "):
        return _refuse(
            401, "a bootstrap credential is required (Authorization: Bearer ...)", request
        )
    try:
        identity = request.app[_ISSUER].verify(authorization.removeprefix("Bearer "))
    except CredentialRejected as exc:
        return _refuse(401, str(exc), request)
    try:
        body: dict[str, Any] = json.loads(await request.read())
        csr = str(body["csr"]).encode()
        ttl = timedelta(seconds=int(body["ttlSeconds"])) if "ttlSeconds" in body else None
    except (ValueError, KeyError, TypeError) as exc:
        return _refuse(400, f"body must be JSON with a PEM 'csr': {exc}", request)
    try:
        issued = request.app[_AUTHORITY].sign(csr, identity, ttl)
    except CsrRejected as exc:
        return _refuse(403, f"{identity}: {exc}", request)
    except CaError as exc:
        return _refuse(503, str(exc), request)
    log.info("certificate issued to %s for %s", request.remote, identity)
    return web.json_response(
        {"certChain": issued.chain_pem().decode(), "trustBundle": issued.bundle_pem().decode()}
    )


async def start_service(
    authority: Authority, issuer: CredentialIssuer, host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Serve 15012 (port 0: any free port); returns the runner and the bound port."""
    runner = web.AppRunner(make_app(authority, issuer), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls_context(authority))
    await site.start()
    bound = port
    for address in runner.addresses:  # the bound (host, port) of each site
        bound = int(address[1])
    return runner, bound
