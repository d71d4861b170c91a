"""A workload's side of getting its certificate: key, CSR, and one TLS request to 15012.

The key is made here and never leaves the process. The control plane's TLS certificate must
chain to the pinned mesh roots and carry the control plane's SPIFFE identity before the
bootstrap credential is sent. A workload that already holds a certificate presents it as its
TLS client certificate too, so it can renew after its bootstrap credential has expired.
`fetch_trust_bundle` asks for the roots to trust now (they change during a root rotation).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography import x509

from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.identity.spiffe import SpiffeId
from gossamer.transport.svid import spiffe_id
from gossamer.transport.tls import IdentityMaterial, client_ssl_context

CONTROL_PLANE_ID = "spiffe://cluster.local/ns/istio-system/sa/istiod"


class CertificateRefused(RuntimeError):
    """The control plane refused, or is not who it should be; the message says which."""


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    address: str  # host:port of the certificate service (15012)
    credential: str
    root_pem: str  # the pinned mesh root(s)
    identity: SpiffeId
    ttl_seconds: int | None = None
    control_plane_id: str = CONTROL_PLANE_ID
    node_id: str | None = None  # the proxy's xDS node id: the CA records what it issued to it
    client_material: IdentityMaterial | None = None  # a certificate to authenticate with


def _pinned_context(
    root_pem: str, expected: str, client: IdentityMaterial | None = None
) -> ssl.SSLContext:
    """TLS 1.3 to a server chained to the pinned root whose SPIFFE id is `expected`, checked
    inside the handshake (before any request byte, so the credential never leaves otherwise);
    presenting `client` when given."""
    if client is not None:
        ctx = client_ssl_context(client, alpn=("http/1.1",))  # trusts client's bundle too
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # mesh identities are URI SANs, checked below
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=root_pem)
    ctx.sslobject_class = _identity_checking(expected)
    return ctx


def _identity_checking(expected: str) -> type[ssl.SSLObject]:
    def do_handshake(self: ssl.SSLObject) -> None:
        ssl.SSLObject.do_handshake(self)
        der = self.getpeercert(binary_form=True)
        got = spiffe_id(x509.load_der_x509_certificate(der)) if der else None
        if got != expected:
            raise ssl.SSLCertVerificationError(
                f"the certificate service is {got!r}, expected {expected!r}"
            )

    return type("IdentityCheckingSSLObject", (ssl.SSLObject,), {"do_handshake": do_handshake})


async def _call(
    request: CertificateRequest, method: str, path: str, body: dict[str, object] | None = None
) -> dict[str, Any]:
    """One request to the certificate service; CertificateRefused on any failure."""
    context = _pinned_context(request.root_pem, request.control_plane_id, request.client_material)
    connector = aiohttp.TCPConnector(ssl=context)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Authorization": f"Bearer {request.credential}"} if request.credential else {}
    url = f"https://{request.address}{path}"
    params = {"nodeId": request.node_id} if request.node_id and body is None else None
    data = json.dumps(body) if body is not None else None
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as s,
            s.request(method, url, data=data, headers=headers, params=params) as response,
        ):
            reply = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise CertificateRefused(f"certificate service {request.address}: {exc}") from exc
    if response.status != 200 or not isinstance(reply, dict):
        error = reply.get("error", reply) if isinstance(reply, dict) else reply
        raise CertificateRefused(f"{response.status}: {error}")
    return reply


async def fetch_certificate(request: CertificateRequest) -> IdentityMaterial:
    key = new_key()
    body: dict[str, object] = {"csr": make_csr(key, request.identity).decode()}
    if request.ttl_seconds is not None:
        body["ttlSeconds"] = request.ttl_seconds
    if request.node_id:
        body["nodeId"] = request.node_id
    reply = await _call(request, "POST", "/v1/certificates", body)
    return IdentityMaterial(reply["certChain"], key_pem(key).decode(), reply["trustBundle"])


async def fetch_trust_bundle(request: CertificateRequest) -> str:
    """The roots the mesh trusts now (PEM), authenticated as `fetch_certificate` is."""
    reply = await _call(request, "GET", "/v1/trust-bundle")
    bundle = str(reply.get("trustBundle", ""))
    if "BEGIN CERTIFICATE" not in bundle:
        raise CertificateRefused("the certificate service answered an empty trust bundle")
    return bundle
