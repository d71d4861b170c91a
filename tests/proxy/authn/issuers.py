"""Test token issuers: a key pair, its JWKS, and tokens signed with PyJWT (the test side)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gossamer.spec import parse_text
from gossamer.spec.security.requestauthentication import RequestAuthentication


class Issuer:
    """`name` is the `iss` claim; `alg` ES256 (EC P-256) or RS256 (RSA 2048)."""

    def __init__(self, name: str, alg: str = "ES256", kid: str = "k1") -> None:
        self.name, self.alg, self.kid = name, alg, kid
        if alg == "RS256":
            self.key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": kid, "alg": alg, "use": "sig"})
        self.jwk = public

    def jwks(self) -> str:
        return json.dumps({"keys": [self.jwk]})

    def token(self, *, key: Any = None, kid: str | None = None, **claims: Any) -> str:
        """Signed claims: `iss` and a one-hour `exp` unless given (None drops a claim)."""
        body: dict[str, Any] = {"iss": self.name, "exp": int(time.time()) + 3600}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": kid or self.kid}
        return jwt.encode(body, key or self.key, algorithm=self.alg, headers=headers)


def request_authentication(
    spec: str, *, name: str = "ra", namespace: str = "foo"
) -> RequestAuthentication:
    """One RequestAuthentication from the indented YAML body of its `spec`."""
    text = (
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}"
    )
    [parsed] = list(parse_text(text))
    assert isinstance(parsed.resource, RequestAuthentication), parsed.findings
    assert not [f for f in parsed.findings if f.is_error], parsed.findings
    return parsed.resource
