"""A provider's JSON Web Key Set, and signature checks against it as Envoy makes them.

A key is a candidate for a token when their `kid`s do not differ (either may be absent), the
key's `alg` (when given) is the token's, and its type fits the token's algorithm (an EC key's
curve must be the algorithm's). No candidate: `NO_MATCHING_KEY`; candidates but no valid
signature: `VERIFICATION_FAILS`. A set that does not parse holds no keys (Envoy logs it and
every token then fails), so a bad JWKS never takes the listener down."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from jwt import PyJWK
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import PyJWKError

from gossamer.proxy.authn.status import JwtStatus
from gossamer.proxy.authn.token import Jwt

log = logging.getLogger(__name__)
_ALGORITHMS = get_default_algorithms()
_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC", "HS": "oct", "Ed": "OKP"}
_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@dataclass(frozen=True, slots=True)
class Jwk:
    kid: str | None
    alg: str | None
    kty: str
    crv: str | None
    key: Any  # a cryptography public key, or bytes for an `oct` key

    def fits(self, jwt: Jwt) -> bool:
        if jwt.kid is not None and self.kid is not None and jwt.kid != self.kid:
            return False
        if self.alg is not None and self.alg != jwt.alg:
            return False
        if _KEY_TYPE.get(jwt.alg[:2]) != self.kty:
            return False
        curve = _CURVE.get(jwt.alg)
        return curve is None or self.crv == curve


CACHED_VERDICTS = 1024


@dataclass(frozen=True, slots=True)
class JwkSet:
    """`verify` remembers its verdict per token (signature checks cost ~100 µs; Envoy caches
    verified tokens too); time, issuer and audience checks are redone on every request."""

    keys: tuple[Jwk, ...]
    _verdicts: dict[bytes, JwtStatus] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, where: str = "jwks") -> JwkSet:
        try:
            return cls(tuple(_jwk(item) for item in _key_list(json.loads(text))))
        except (ValueError, TypeError, KeyError, PyJWKError) as e:
            log.warning("%s: invalid JWKS, every token will fail: %s", where, e)
            return cls(())

    def verify(self, jwt: Jwt) -> JwtStatus:
        key = jwt.signed + b"." + jwt.signature
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= CACHED_VERDICTS:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._verify(jwt)
        return verdict

    def _verify(self, jwt: Jwt) -> JwtStatus:
        candidates = [k for k in self.keys if k.fits(jwt)]
        if not candidates:
            return JwtStatus.NO_MATCHING_KEY
        algorithm = _ALGORITHMS[jwt.alg]
        for jwk in candidates:
            try:
                if algorithm.verify(jwt.signed, jwk.key, jwt.signature):
                    return JwtStatus.OK
            except (ValueError, TypeError):
                continue
        return JwtStatus.VERIFICATION_FAILS


def _key_list(document: Any) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS is an object with a "keys" list')
    if not document["keys"]:
        raise ValueError("the JWKS has no keys")
    return list(document["keys"])


def _jwk(item: Any) -> Jwk:
    if not isinstance(item, dict):
        raise ValueError("a key must be an object")
    kty, alg, kid, crv = item.get("kty"), item.get("alg"), item.get("kid"), item.get("crv")
    if not isinstance(kty, str):
        raise ValueError('a key needs "kty"')
    if alg is not None and alg not in _ALGORITHMS:
        raise ValueError(f"unsupported key alg {alg!r}")
    key = PyJWK(item, algorithm=alg or _default_alg(kty, crv)).key
    return Jwk(
        kid if isinstance(kid, str) else None,
        alg if isinstance(alg, str) else None,
        kty,
        crv if isinstance(crv, str) else None,
        key,
    )


def _default_alg(kty: str, crv: Any) -> str:
    """PyJWK needs an algorithm to load a key; the key's own type decides which."""
    if kty == "EC":
        return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(str(crv), "ES256")
    return {"RSA": "RS256", "oct": "HS256", "OKP": "EdDSA"}.get(kty, "RS256")
