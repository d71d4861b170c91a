"""When a workload renews its certificate, and how healthy a certificate is (`gossamer check`).

Renewal happens at `fraction` of the certificate's validity window, moved by up to ±`jitter`
of that window so a fleet issued together does not renew together. Health levels: an expired
(or not yet valid) certificate is an error; a root or intermediate expiring within 30 days is a
warning (it takes the whole mesh with it); a leaf past its latest renewal point is a warning
(its workload failed to renew).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from cryptography import x509

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.errors import PeerRejected
from gossamer.control.ca.verify import leaf_identity
from gossamer.identity.renewal import RENEW_FRACTION, RENEW_JITTER

CA_WARNING_WINDOW = timedelta(days=30)


class Level(Enum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CertHealth:
    """One certificate as `gossamer check` and `proxy-config secret` show it."""

    name: str  # SPIFFE ID for a leaf, subject for a CA
    serial: str
    is_ca: bool
    not_before: datetime
    not_after: datetime
    expires_in: timedelta  # negative once expired
    expired: bool
    level: Level
    message: str


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _name(cert: x509.Certificate, is_ca: bool) -> str:
    if is_ca:
        return cert.subject.rfc4514_string()
    try:
        return leaf_identity(cert).uri
    except PeerRejected:
        return cert.subject.rfc4514_string() or "(no identity)"


def cert_health(
    cert: x509.Certificate,
    now: datetime,
    ca_warning: timedelta = CA_WARNING_WINDOW,
    renew_by: float = RENEW_FRACTION + RENEW_JITTER,
) -> CertHealth:
    """Classify `cert` at `now`; `renew_by` is the latest renewal point as a lifetime share."""
    is_ca = _is_ca(cert)
    expires_in = cert.not_valid_after_utc - now
    expired = expires_in <= timedelta(0)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    kind = "CA certificate" if is_ca else "certificate"
    if expired:
        level, message = Level.ERROR, f"{kind} expired at {cert.not_valid_after_utc.isoformat()}"
    elif now < cert.not_valid_before_utc:
        level, message = Level.ERROR, f"{kind} not valid until {cert.not_valid_before_utc}"
    elif is_ca and expires_in < ca_warning:
        level, message = Level.WARNING, f"{kind} expires in {expires_in} (rotate the root)"
    elif not is_ca and now > cert.not_valid_before_utc + lifetime * renew_by:
        level, message = Level.WARNING, f"not renewed; expires in {expires_in}"
    else:
        level, message = Level.OK, f"{kind} valid for {expires_in}"
    return CertHealth(
        name=_name(cert, is_ca),
        serial=f"{cert.serial_number:x}",
        is_ca=is_ca,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        expires_in=expires_in,
        expired=expired,
        level=level,
        message=message,
    )


def ca_health(authority: Authority, now: datetime) -> list[CertHealth]:
    """The CA's own certificates (signing certificate, intermediates, every trusted root)."""
    certs = [authority.cert, *authority.intermediates, *authority.bundle.roots]
    unique = list(dict.fromkeys(certs))  # the self-signed signing root is also in the bundle
    return [cert_health(cert, now) for cert in unique]
