"""One JWT as Envoy's jwt_verify_lib parses and checks it, before any key is involved.

Parsing names the first defect with Envoy's status (three dot-separated base64url parts, JSON
header with a string `alg`, JSON payload with typed registered claims); `time_status` applies
`exp`/`nbf` with the provider's clock skew; `audiences_allowed` compares audiences as Envoy does,
ignoring an `http://` or `https://` scheme and one trailing slash."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gossamer.proxy.authn.status import JwtStatus

SUPPORTED_ALGS = frozenset(
    [
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "HS256",
        "HS384",
        "HS512",
        "EdDSA",
    ]
)
_BASE64URL = re.compile(rb"^[A-Za-z0-9_-]*=*$")


@dataclass(frozen=True, slots=True)
class Jwt:
    """A parsed token: `signed` is `header.payload` (what the signature covers),
    `payload_segment` the payload's base64url text as sent (forward_payload_header)."""

    alg: str
    kid: str | None
    payload: dict[str, Any]
    signed: bytes
    payload_segment: bytes
    signature: bytes

    @property
    def issuer(self) -> str:
        iss = self.payload.get("iss")
        return iss if isinstance(iss, str) else ""

    @property
    def audiences(self) -> list[str]:
        aud = self.payload.get("aud")
        if isinstance(aud, str):
            return [aud]
        return list(aud) if isinstance(aud, list) else []


def b64url_decode(segment: bytes) -> bytes | None:
    if not _BASE64URL.match(segment):
        return None
    try:
        return base64.urlsafe_b64decode(segment.rstrip(b"=") + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


_PARSED: dict[bytes, Jwt | JwtStatus] = {}
CACHED_TOKENS = 1024


def parse(token: bytes) -> Jwt | JwtStatus:
    """The token parsed, or the status naming its first defect (remembered per token)."""
    parsed = _PARSED.get(token)
    if parsed is None:
        if len(_PARSED) >= CACHED_TOKENS:
            _PARSED.clear()
        parsed = _PARSED[token] = _parse(token)
    return parsed


def _parse(token: bytes) -> Jwt | JwtStatus:
    parts = token.split(b".")
    if len(parts) != 3:
        return JwtStatus.BAD_FORMAT
    header_b64, payload_b64, signature_b64 = parts
    header_raw = b64url_decode(header_b64)
    if header_raw is None:
        return JwtStatus.HEADER_BAD_BASE64
    header = _json_object(header_raw)
    if header is None:
        return JwtStatus.HEADER_BAD_JSON
    alg = header.get("alg")
    if not isinstance(alg, str):
        return JwtStatus.HEADER_BAD_ALG
    if alg not in SUPPORTED_ALGS:
        return JwtStatus.HEADER_UNSUPPORTED_ALG
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        return JwtStatus.HEADER_BAD_KID
    payload_raw = b64url_decode(payload_b64)
    if payload_raw is None:
        return JwtStatus.PAYLOAD_BAD_BASE64
    payload = _json_object(payload_raw)
    if payload is None:
        return JwtStatus.PAYLOAD_BAD_JSON
    problem = _claim_types(payload)
    if problem is not None:
        return problem
    signature = b64url_decode(signature_b64)
    if signature is None:
        return JwtStatus.SIGNATURE_BAD_BASE64
    return Jwt(alg, kid, payload, header_b64 + b"." + payload_b64, payload_b64, signature)


def _claim_types(payload: dict[str, Any]) -> JwtStatus | None:
    for name, status in (("iss", JwtStatus.ISS_NOT_STRING), ("sub", JwtStatus.SUB_NOT_STRING)):
        if name in payload and not isinstance(payload[name], str):
            return status
    for name, status in (
        ("iat", JwtStatus.IAT_NOT_INTEGER),
        ("nbf", JwtStatus.NBF_NOT_INTEGER),
        ("exp", JwtStatus.EXP_NOT_INTEGER),
    ):
        if name in payload and _seconds(payload[name]) is None:
            return status
    aud = payload.get("aud")
    strings = isinstance(aud, list) and all(isinstance(a, str) for a in aud)
    if aud is not None and not isinstance(aud, str) and not strings:
        return JwtStatus.AUD_NOT_STRINGS
    return None


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def time_status(jwt: Jwt, now: float, clock_skew: int) -> JwtStatus:
    """Envoy: expired when now > exp + skew, not yet valid when now + skew < nbf (0 = absent)."""
    nbf = _seconds(jwt.payload.get("nbf")) or 0
    exp = _seconds(jwt.payload.get("exp")) or 0
    if nbf and now + clock_skew < nbf:
        return JwtStatus.NOT_YET_VALID
    if exp and now > exp + clock_skew:
        return JwtStatus.EXPIRED
    return JwtStatus.OK


def _audience_key(audience: str) -> str:
    for scheme in ("https://", "http://"):
        if audience.startswith(scheme):
            audience = audience[len(scheme) :]
            break
    return audience[:-1] if audience.endswith("/") else audience


def audiences_allowed(jwt: Jwt, allowed: Collection[str]) -> bool:
    """No configured audiences: any token passes; else one of the token's must be allowed."""
    if not allowed:
        return True
    wanted = {_audience_key(a) for a in allowed}
    return any(_audience_key(a) in wanted for a in jwt.audiences)
