"""The `x-forwarded-client-cert` header as Envoy's connection manager rewrites it.

Mode (`forward_client_cert_details`): ALWAYS_FORWARD_ONLY never touches it; SANITIZE (Envoy's
default) removes it, and so does every other mode on a connection without a client certificate
(plaintext, or TLS without one); FORWARD_ONLY keeps it as sent; APPEND_FORWARD appends this hop's
element after a comma, SANITIZE_SET replaces the header with it. The element is
`By=<our URI SAN>;Hash=<sha256 of the client's DER certificate, hex>` followed by the
`set_current_client_cert_details` fields in Envoy's order: `Subject="<RFC 2253>"`,
`Cert="<url-encoded PEM>"`, `URI=<client URI SAN>` (the key stays, empty, without one), then
`DNS=<each DNS SAN>`. `chain` (the peer's whole chain) is NACKed by the compiler."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gossamer.codec.headers import Headers
from gossamer.proxy.authz.gate import PeerFacts

HEADER = b"x-forwarded-client-cert"
CACHED_ELEMENTS = 1024
SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY = range(5)


@dataclass(frozen=True, slots=True)
class ClientCertPolicy:
    """One connection manager's XFCC settings (its HCM fields of the same names)."""

    mode: int = SANITIZE
    subject: bool = False
    cert: bool = False
    dns: bool = False
    uri: bool = False

    def apply(self, headers: Headers, peer: PeerFacts, dataplane: Any) -> None:
        """Rewrite `headers` for a request from `peer` (its connection's facts);
        `dataplane.identity` (a MeshTls, or None) is our certificate, for `By=`."""
        mode = self.mode
        if mode == ALWAYS_FORWARD_ONLY:
            return
        # the peer's certificate, read once per connection (the same bytes object each request,
        # so the element cache's key hashes once)
        der = peer.certificate if mode != SANITIZE else None
        if not der:
            if HEADER in headers:
                headers.remove(HEADER)
            return
        if mode == FORWARD_ONLY:
            return
        local_uris = _LOCAL_URIS.of(getattr(dataplane, "identity", None))
        key = (self, der, local_uris)
        element = _ELEMENTS.get(key)
        if element is None:  # parsing the certificate costs ~30 µs: once per client cert
            if len(_ELEMENTS) >= CACHED_ELEMENTS:
                _ELEMENTS.clear()
            element = _ELEMENTS[key] = self.element(der, local_uris)
        previous = headers.joined(HEADER) if mode == APPEND_FORWARD else None
        headers.set(HEADER, previous + b"," + element if previous else element)

    def element(self, der: bytes, local_uris: Sequence[str]) -> bytes:
        """This hop's XFCC element for a client certificate (DER)."""
        parts = [f"By={uri}" for uri in local_uris]
        parts.append("Hash=" + hashlib.sha256(der).hexdigest())
        if self.subject or self.cert or self.dns or self.uri:
            cert = x509.load_der_x509_certificate(der)
            if self.subject:
                parts.append(f'Subject="{cert.subject.rfc4514_string()}"')
            if self.cert:
                pem = cert.public_bytes(Encoding.PEM).decode()
                parts.append(f'Cert="{quote(pem, safe="")}"')
            if self.uri:
                uris = _sans(cert, x509.UniformResourceIdentifier)
                parts += [f"URI={u}" for u in uris] if uris else ["URI="]
            if self.dns:
                parts += [f"DNS={name}" for name in _sans(cert, x509.DNSName)]
        return ";".join(parts).encode()


def _sans(cert: x509.Certificate, kind: Any) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in extension.value.get_values_for_type(kind)]


class LocalUris:
    """Our certificate's URI SANs for `By=`, recomputed only when the identity rotates."""

    __slots__ = ("_material", "_uris")

    def __init__(self) -> None:
        self._material: object = None
        self._uris: tuple[str, ...] = ()

    def of(self, identity: Any) -> tuple[str, ...]:
        """`identity` is the dataplane's MeshTls (or None: no `By=`)."""
        if identity is None:
            return ()
        material = identity.material
        if material is not self._material:
            self._uris = tuple(_sans(material.leaf(), x509.UniformResourceIdentifier))
            self._material = material
        return self._uris


_LOCAL_URIS = LocalUris()
_ELEMENTS: dict[tuple[ClientCertPolicy, bytes, tuple[str, ...]], bytes] = {}
