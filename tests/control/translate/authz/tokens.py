"""A test issuer: an ES256 key, its JWKS, and signed JWTs, for Envoy's jwt_authn filter."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://issuer.test"
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> str:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "kid": "test",
            "alg": "ES256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        return json.dumps({"keys": [jwk]})

    def token(self, **claims: Any) -> str:
        header = {"alg": "ES256", "typ": "JWT", "kid": "test"}
        payload = {"iss": ISSUER, "exp": int(time.time()) + 3600, **claims}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def jwt_filter(self) -> dict[str, Any]:
        """jwt_authn as a RequestAuthentication would configure it: the validated payload in
        metadata under `payload`; no token is let through, a bad one gets 401."""
        provider = {
            "issuer": ISSUER,
            "local_jwks": {"inline_string": self.jwks()},
            "payload_in_metadata": "payload",
        }
        return {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": JWT_AUTHN_TYPE,
                "providers": {"test": provider},
                "rules": [
                    {
                        "match": {"prefix": "/"},
                        "requires": {
                            "requires_any": {
                                "requirements": [{"provider_name": "test"}, {"allow_missing": {}}]
                            }
                        },
                    }
                ],
            },
        }
