"""When a workload renews its certificate: at `fraction` of its validity window, moved by up to
±`jitter` of that window so a fleet issued together does not renew together."""

from __future__ import annotations

import random
from datetime import datetime

from cryptography import x509

RENEW_FRACTION = 0.5
RENEW_JITTER = 0.1


def renew_at(
    cert: x509.Certificate,
    fraction: float = RENEW_FRACTION,
    jitter: float = RENEW_JITTER,
    rng: random.Random | None = None,
) -> datetime:
    """The moment to renew `cert`: not-before + lifetime * (fraction ± jitter)."""
    if jitter < 0 or not 0 < fraction - jitter <= fraction + jitter < 1:
        raise ValueError(f"need 0 < fraction ± jitter < 1, got {fraction} ± {jitter}")
    rng = rng or random.Random()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    share = fraction + rng.uniform(-jitter, jitter)
    return cert.not_valid_before_utc + lifetime * share
