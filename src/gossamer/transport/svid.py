"""SPIFFE identities (X509-SVIDs) read off certificates and TLS connections.

A mesh peer is known by the one `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` URI SAN of its
certificate: for authorization principals, metrics, XFCC and the outbound SAN check. Reading it
from a connection is on the path of every new connection, so a DER certificate is parsed once.
"""

from __future__ import annotations

import ssl

from cryptography import x509

SPIFFE_SCHEME = "spiffe://"
SslConnection = ssl.SSLObject | ssl.SSLSocket


def spiffe_id(cert: x509.Certificate) -> str | None:
    """The certificate's SPIFFE id: its only URI SAN, when that is a spiffe:// URI (an X509-SVID
    carries exactly one); None otherwise."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1 or not uris[0].startswith(SPIFFE_SCHEME):
        return None
    return uris[0]


def peer_identity(ssl_object: SslConnection) -> str | None:
    """The SPIFFE id of a connection's verified peer; None without a peer certificate or SVID."""
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return identity_of_der(der)


_IDENTITIES: dict[bytes, str | None] = {}
_CACHED_IDENTITIES = 1024


def identity_of_der(der: bytes) -> str | None:
    """`spiffe_id` of a DER certificate, parsed once per certificate: every new connection from
    (or to) the same peer presents the same bytes, and parsing costs ~30 µs."""
    try:
        return _IDENTITIES[der]
    except KeyError:
        pass
    identity = spiffe_id(x509.load_der_x509_certificate(der))
    if len(_IDENTITIES) >= _CACHED_IDENTITIES:
        del _IDENTITIES[next(iter(_IDENTITIES))]  # the oldest: rotated certificates age out
    _IDENTITIES[der] = identity
    return identity
