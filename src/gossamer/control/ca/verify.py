"""Verifying a peer's certificate chain against the trust bundle and reading its SPIFFE ID.

Uses `cryptography.x509.verification` (RFC 5280 path building with the CA/B web PKI profile).
Mesh peers are named by SPIFFE URI, not by host name, so both directions use the client
verifier, which checks the chain, validity and EKU but no DNS name; the identity is then read
from the leaf's URI SAN and compared with the expected one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from gossamer.control.ca.bundle import TrustBundle
from gossamer.control.ca.errors import PeerRejected
from gossamer.identity.spiffe import InvalidSpiffeId, SpiffeId


def leaf_identity(leaf: x509.Certificate) -> SpiffeId:
    """The single SPIFFE ID in a leaf's SAN; PeerRejected if there is none or several."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise PeerRejected("certificate has no subjectAltName") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    spiffe = [u for u in uris if u.startswith("spiffe://")]
    if len(spiffe) != 1:
        raise PeerRejected(f"certificate must name exactly one SPIFFE ID, found {spiffe}")
    try:
        return SpiffeId.parse(spiffe[0])
    except InvalidSpiffeId as exc:
        raise PeerRejected(str(exc)) from exc


def verify_peer(
    chain: Sequence[x509.Certificate],
    bundle: TrustBundle,
    now: datetime | None = None,
    expect: SpiffeId | None = None,
) -> SpiffeId:
    """Verify leaf `chain[0]` with intermediates `chain[1:]`; return the peer's identity.

    With `expect`, a valid chain for any other identity is refused too (outbound: the peer must
    be the workload the destination says it runs as).
    """
    if not chain:
        raise PeerRejected("no certificate presented")
    now = datetime.now(UTC) if now is None else now
    verifier = PolicyBuilder().store(Store(list(bundle.roots))).time(now).build_client_verifier()
    try:
        verifier.verify(chain[0], list(chain[1:]))
    except VerificationError as exc:
        raise PeerRejected(f"certificate chain does not verify: {exc}") from exc
    identity = leaf_identity(chain[0])
    if expect is not None and identity != expect:
        raise PeerRejected(f"peer is {identity.uri!r}, expected {expect.uri!r}")
    return identity
