"""A workload's side of getting its certificate: key, CSR, and one TLS request to 15012.

The key is made here and never leaves the process. The control plane's TLS certificate must
chain to the pinned mesh root and carry the control plane's SPIFFE identity before the
bootstrap credential is sent.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass

import aiohttp
from cryptography import x509

from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.identity.spiffe import SpiffeId
from gossamer.transport.tls import IdentityMaterial, spiffe_id

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


def _pinned_context(root_pem: str, expected: str) -> ssl.SSLContext:
    """TLS 1.3 to a server chained to the pinned root whose SPIFFE id is `expected`, checked
    inside the handshake (before any request byte, so the credential never leaves otherwise)."""
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


async def fetch_certificate(request: CertificateRequest) -> IdentityMaterial:
    key = new_key()
    body: dict[str, object] = {"csr": make_csr(key, request.identity).decode()}
    if request.ttl_seconds is not None:
        body["ttlSeconds"] = request.ttl_seconds
    context = _pinned_context(request.root_pem, request.control_plane_id)
    connector = aiohttp.TCPConnector(ssl=context)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Authorization": f"Bearer {request.credential}"}
    url = f"https://{request.address}/v1/certificates"
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as s,
            s.post(url, data=json.dumps(body), headers=headers) as response,
        ):
            reply = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CertificateRefused(f"certificate service {request.address}: {exc}") from exc
    if response.status != 200:
        raise CertificateRefused(f"{response.status}: {reply.get('error', reply)}")
    return IdentityMaterial(reply["certChain"], key_pem(key).decode(), reply["trustBundle"])
