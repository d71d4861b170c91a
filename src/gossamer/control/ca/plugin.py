"""Istio's plug-in CA: an intermediate the operator provides, in the `cacerts` layout.

Files (all required): `ca-cert.pem` (the intermediate that signs leaves), `ca-key.pem` (its key),
`cert-chain.pem` (ca-cert first, then any further intermediates, optionally the root) and
`root-cert.pem` (one or more roots: the trust bundle). Each is checked before use and an error
names the file and the reason: unreadable, not PEM, key not matching, expired, not a CA, or a
chain that does not lead to a root in root-cert.pem.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.bundle import TrustBundle
from gossamer.control.ca.errors import CaFileError
from gossamer.control.ca.pemfiles import read_cert, read_certs, read_signing_key
from gossamer.control.ca.root import check_ca_cert, check_key_matches, is_self_issued

CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
CERT_CHAIN = "cert-chain.pem"
ROOT_CERT = "root-cert.pem"
PLUGIN_FILES = (CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT)


def plugin_present(directory: Path) -> bool:
    """Any one of the four files means the operator meant to plug in a CA."""
    return any((directory / name).exists() for name in PLUGIN_FILES)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def load_plugin(directory: Path, now: datetime, trust_domain: str) -> Authority:
    """Load and check the plug-in CA in `directory`; raise CaFileError naming the bad file."""
    for name in PLUGIN_FILES:
        if not (directory / name).exists():
            raise CaFileError(
                directory / name, f"missing (a plug-in CA needs {', '.join(PLUGIN_FILES)})"
            )
    cert = read_cert(directory / CA_CERT)
    check_ca_cert(directory / CA_CERT, cert, now)
    key = read_signing_key(directory / CA_KEY)
    check_key_matches(directory / CA_KEY, key, cert)
    roots = read_certs(directory / ROOT_CERT)
    for root in roots:
        check_ca_cert(directory / ROOT_CERT, root, now)
    chain = read_certs(directory / CERT_CHAIN)
    if chain[0] != cert:
        raise CaFileError(directory / CERT_CHAIN, f"first certificate is not {CA_CERT}")
    intermediates = [c for c in chain if not is_self_issued(c)]
    for child, parent in itertools.pairwise(intermediates):
        check_ca_cert(directory / CERT_CHAIN, parent, now)
        if not _issued_by(child, parent):
            raise CaFileError(
                directory / CERT_CHAIN,
                f"{child.subject.rfc4514_string()} is not signed by the "
                f"next certificate {parent.subject.rfc4514_string()}",
            )
    if not any(_issued_by(intermediates[-1], root) for root in roots):
        raise CaFileError(
            directory / ROOT_CERT,
            f"no root here signed {intermediates[-1].subject.rfc4514_string()} "
            f"(the last intermediate of {CERT_CHAIN})",
        )
    return Authority(
        key=key,
        cert=cert,
        intermediates=tuple(intermediates),
        bundle=TrustBundle(tuple(roots)),
        plugged=True,
        trust_domain=trust_domain,
    )
