"""Bootstrap credentials: how a pod proves, once, which identity it may ask a certificate for.

The runtime asks the control plane (admin API) for a credential bound to a pod's namespace and
service account and hands it to the pod's sidecar; the sidecar presents it with its CSR on
15012. A credential is `gsm1.<payload>.<mac>`: the payload (namespace, service account, expiry)
in base64url, authenticated with HMAC-SHA256 under a secret only the control plane holds
(`ca/credential.key`, 0600). Short-lived (an hour by default): it is needed again only if the
sidecar restarts without its certificate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gossamer.control.ca.errors import CaError
from gossamer.identity.spiffe import InvalidSpiffeId, SpiffeId

PREFIX = "gsm1"
SECRET_FILE = "credential.key"
DEFAULT_CREDENTIAL_TTL = timedelta(hours=1)


class CredentialRejected(CaError):
    """A credential that is malformed, forged or expired; the message says which."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(ca_dir: Path) -> bytes:
    """The HMAC secret, created (0600) on first use next to the CA's files."""
    path = ca_dir / SECRET_FILE
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) < 32:
            raise CaError(f"{path}: credential secret is too short ({len(secret)} bytes)") from None
        return secret
    with os.fdopen(fd, "wb") as f:
        secret = secrets.token_bytes(32)
        f.write(secret)
    return secret


@dataclass(frozen=True, slots=True)
class CredentialIssuer:
    secret: bytes = b""

    def issue(
        self,
        identity: SpiffeId,
        ttl: timedelta = DEFAULT_CREDENTIAL_TTL,
        now: datetime | None = None,
    ) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "td": identity.trust_domain,
            "ns": identity.namespace,
            "sa": identity.service_account,
            "exp": int((now + ttl).timestamp()),
        }
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{PREFIX}.{payload}.{self._mac(payload)}"

    def verify(self, credential: str, now: datetime | None = None) -> SpiffeId:
        """The identity the credential grants; CredentialRejected if it grants none."""
        parts = credential.strip().split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise CredentialRejected("malformed credential")
        _, payload, mac = parts
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise CredentialRejected("credential signature does not match (forged or altered)")
        try:
            claims = json.loads(_unb64(payload))
            identity = SpiffeId(claims["ns"], claims["sa"], claims["td"])
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (ValueError, KeyError, TypeError, InvalidSpiffeId) as exc:
            raise CredentialRejected(f"unreadable credential: {exc}") from None
        if (now or datetime.now(UTC)) >= expires:
            raise CredentialRejected(f"credential for {identity} expired at {expires.isoformat()}")
        return identity

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())
