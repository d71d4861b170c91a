"""The JWKS of a jwtRule, resolved by the control plane and inlined (as istiod does by default).

`jwks` is used as given. A `jwksUri` is fetched here, never by the proxies, and only from this
machine: `file://` paths are read, `http(s)://` URIs are fetched when their host is a loopback
address or `localhost` (with the rule's `timeout`), anything else is refused. A refused or
failed fetch is logged and replaced by a JWKS whose key nobody holds, as Istio does: every token
for that issuer is then rejected (401) while requests without one still pass, so a broken key
source never opens the door. Results are cached for `CACHE_SECONDS` (failures for
`RETRY_SECONDS`), so translation does not refetch per proxy or per push."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

log = logging.getLogger(__name__)
CACHE_SECONDS = 20 * 60  # Istio's default JWKS refresh interval
RETRY_SECONDS = 60
MAX_JWKS_BYTES = 1 << 20


def _unusable_jwks() -> str:
    """A valid JWKS whose private key is thrown away at once."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    key = json.loads(ECAlgorithm.to_jwk(public))
    key.update({"kid": "gossamer-unavailable", "alg": "ES256", "use": "sig"})
    return json.dumps({"keys": [key]}, sort_keys=True)


UNUSABLE_JWKS = _unusable_jwks()


class JwksRefused(ValueError):
    """The URI is not one Gossamer fetches from, or the fetch failed; the message says why."""


@dataclass(frozen=True, slots=True)
class _Cached:
    text: str | None
    error: str
    until: float


class JwksResolver:
    """URI → JWKS text, cached; `now` is injectable for tests."""

    def __init__(self) -> None:
        self._cache: dict[str, _Cached] = {}

    def jwks_for(self, uri: str, timeout: timedelta, now: float | None = None) -> str:
        """The JWKS at `uri`, or UNUSABLE_JWKS (logged) when it cannot be had."""
        moment = time.monotonic() if now is None else now
        cached = self._cache.get(uri)
        if cached is None or cached.until <= moment:
            try:
                cached = _Cached(fetch(uri, timeout), "", moment + CACHE_SECONDS)
            except JwksRefused as e:
                log.error("RequestAuthentication jwksUri %s: %s; tokens will be rejected", uri, e)
                cached = _Cached(None, str(e), moment + RETRY_SECONDS)
            self._cache[uri] = cached
        return cached.text if cached.text is not None else UNUSABLE_JWKS

    def error_for(self, uri: str) -> str:
        """Why the last fetch of `uri` failed ("" when it did not)."""
        cached = self._cache.get(uri)
        return cached.error if cached is not None else ""


def fetch(uri: str, timeout: timedelta) -> str:
    """Read a `file://` URI or fetch a loopback `http(s)://` one; JwksRefused otherwise."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise JwksRefused("file:// URIs must name a local path (file:///path)")
        try:
            return _checked(Path(unquote(parts.path)).read_bytes()[: MAX_JWKS_BYTES + 1])
        except OSError as e:
            raise JwksRefused(f"cannot read {parts.path}: {e.strerror or e}") from None
    if parts.scheme not in ("http", "https"):
        raise JwksRefused(f"scheme {parts.scheme or '(none)'} is not supported")
    if not _is_loopback(parts.hostname or ""):
        raise JwksRefused(
            "Gossamer does not fetch keys from outside this machine: give the JWKS inline "
            "(jwks), as a file:// URI, or from a loopback address"
        )
    try:
        with _OPENER.open(uri, timeout=timeout.total_seconds()) as response:
            return _checked(response.read(MAX_JWKS_BYTES + 1))
    except OSError as e:  # URLError, HTTPError, timeouts
        raise JwksRefused(f"fetch failed: {e}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could point off the machine: it is an error, never followed."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# No proxies from the environment (the fetch must stay on loopback), no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked(raw: bytes) -> str:
    if len(raw) > MAX_JWKS_BYTES:
        raise JwksRefused(f"larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise JwksRefused(f"not JSON: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksRefused('not a JWKS (an object with a "keys" list)')
    return raw.decode()
