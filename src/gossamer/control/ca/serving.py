"""The certificate service's own TLS identity, swapped without restarting the listener.

15012's server certificate is issued by the mesh CA to the control plane itself
(`spiffe://<td>/ns/istio-system/sa/istiod`). It must always chain to a root every client
trusts at that moment: during a root rotation's TRUSTING phase the old root still signs it;
PROMOTE re-issues it from the new root (clients have had the new bundle since BEGIN). It is
also re-issued at half its life. The listener keeps one outer `SSLContext` whose SNI callback
(OpenSSL calls it for every ClientHello, with or without a server name) hands each new
connection the current context; open connections keep theirs.

Clients may present their workload certificate (verified against the current bundle) instead
of a bootstrap credential, so renewals keep working after the credential has expired.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta

from gossamer.control.ca.authority import Authority
from gossamer.identity.csr import key_pem, make_csr, new_key
from gossamer.identity.spiffe import SpiffeId
from gossamer.transport.tls import IdentityMaterial, server_context

log = logging.getLogger("gossamer.ca")
CONTROL_PLANE_NAMESPACE = "istio-system"
CONTROL_PLANE_ACCOUNT = "istiod"
SERVING_TTL = timedelta(hours=24)
ALPN = ("http/1.1",)


def control_plane_identity(authority: Authority) -> SpiffeId:
    return SpiffeId(CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_ACCOUNT, authority.trust_domain)


def own_material(authority: Authority, ttl: timedelta = SERVING_TTL) -> IdentityMaterial:
    """The control plane's serving certificate, issued by its own CA like any workload's."""
    key = new_key()
    identity = control_plane_identity(authority)
    issued = authority.sign(make_csr(key, identity), identity, min(ttl, authority.max_ttl))
    return IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )


def _context(material: IdentityMaterial) -> ssl.SSLContext:
    """TLS 1.3, presenting `material`; a client certificate is optional, and checked against the
    trust bundle when given."""
    ctx = server_context(material, require_client_cert=False, alpn=ALPN)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class ServingTls:
    """The outer context given to the listener, and the current inner one."""

    def __init__(self, authority: Authority, ttl: timedelta = SERVING_TTL) -> None:
        self.ttl = ttl
        self.material = own_material(authority, ttl)
        self._current = _context(self.material)
        self.context = _context(self.material)
        self.context.sni_callback = self._pick

    def _pick(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        connection.context = self._current

    def reissue(self, authority: Authority) -> None:
        """A new certificate from `authority` (and its bundle for client certificates) for every
        connection from now on."""
        material = own_material(authority, self.ttl)
        self._current = _context(material)
        self.material = material
        leaf = material.leaf()
        log.info(
            "certificate service: serving certificate %x from %s, valid until %s",
            leaf.serial_number, leaf.issuer.rfc4514_string(), leaf.not_valid_after_utc.isoformat(),
        )  # fmt: skip

    def renew_in(self, now: datetime | None = None) -> float:
        """Seconds until half the serving certificate's life has passed (at least 1)."""
        leaf = self.material.leaf()
        now = datetime.now(UTC) if now is None else now
        half = (
            leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
        )
        return max((half - now).total_seconds(), 1.0)
