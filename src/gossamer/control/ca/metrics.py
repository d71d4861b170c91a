"""The CA's Prometheus families, named as istiod names them (citadel_server_*), so dashboards
and alerts written for Istio (`citadel_server_root_cert_expiry_timestamp - time() < 30d`) work.

The root gauges report the earliest-expiring trusted root (during a rotation the bundle holds
two); the chain gauges the signing certificate and its intermediates.
"""

from __future__ import annotations

from datetime import datetime

from gossamer.control.ca.authority import Authority
from gossamer.control.ca.ledger import IssuanceLedger
from gossamer.telemetry.prometheus import Counter, Family, Gauge


def ca_families(authority: Authority | None, ledger: IssuanceLedger, now: datetime) -> list[Family]:
    csr = Counter("citadel_server_csr_count", "The number of CSRs received by the CA.")
    csr.add({}, ledger.counts["csr"])
    issued = Counter(
        "citadel_server_success_cert_issuance_count",
        "The number of certificates issuances that have succeeded.",
    )
    issued.add({}, ledger.counts["issued"])
    refused = Counter("gossamer_ca_refused_count", "Certificate requests refused, by HTTP status.")
    for key, value in sorted(ledger.counts.items()):
        if key.startswith("refused_"):
            refused.add({"status": key.removeprefix("refused_")}, value)
    families: list[Family] = [csr, issued, refused]
    if authority is None:
        return families
    root_end = min(r.not_valid_after_utc for r in authority.bundle.roots)
    chain_end = min(c.not_valid_after_utc for c in (authority.cert, *authority.intermediates))
    for name, what, end in (
        ("root_cert", "root cert", root_end),
        ("cert_chain", "cert chain", chain_end),
    ):
        stamp = Gauge(
            f"citadel_server_{name}_expiry_timestamp",
            f"The unix timestamp, in seconds, when the CA's {what} will expire.",
        )
        stamp.set({}, int(end.timestamp()))
        left = Gauge(
            f"citadel_server_{name}_expiry_seconds",
            f"The time remaining, in seconds, before the CA's {what} will expire.",
        )
        left.set({}, int((end - now).total_seconds()))
        families += [stamp, left]
    roots = Gauge(
        "gossamer_ca_trusted_roots", "Roots in the trust bundle (2 during a root rotation)."
    )
    roots.set({}, len(authority.bundle.roots))
    families.append(roots)
    return families
