"""A token's signature verdict is remembered, its time limits are not: the same token stops
passing once it expires (Envoy's 60 s clock skew included), and a token signed by another key
never passes however often it is sent."""

from __future__ import annotations

from gossamer.codec.headers import Headers
from gossamer.control.registry import Workload
from gossamer.control.translate.authn import JwksResolver, jwt_authn_filters
from gossamer.proxy.authn import Accepted, Denial, JwtAuthn, compile_jwt_authn
from tests.proxy.authn.issuers import Issuer, request_authentication

A = Issuer("https://a.example")
WORKLOAD = Workload(name="w", namespace="foo", address="127.0.0.1", labels={})


def _filter() -> JwtAuthn:
    ra = request_authentication(f"  jwtRules:\n  - issuer: {A.name}\n    jwks: '{A.jwks()}'\n")
    [pb] = jwt_authn_filters([ra], WORKLOAD, JwksResolver())
    return compile_jwt_authn(pb.typed_config, "test")


def _send(jwt: JwtAuthn, token: str, now: float) -> Denial | Accepted | None:
    headers = Headers([(b"authorization", b"Bearer " + token.encode())])
    return jwt.authenticate(b"GET", b"/", b"svc", headers, now=now)


def test_cached_token_still_expires() -> None:
    jwt = _filter()
    token = A.token(sub="alice", exp=1_000_000)
    for _ in range(3):
        assert isinstance(_send(jwt, token, now=999_000), Accepted)
    assert isinstance(_send(jwt, token, now=1_000_060), Accepted)  # within the skew
    late = _send(jwt, token, now=1_000_061)
    assert isinstance(late, Denial)
    assert (late.status, late.body) == (401, b"Jwt is expired")


def test_forged_token_fails_every_time() -> None:
    jwt = _filter()
    forged = A.token(sub="alice", key=Issuer(A.name).key)
    for _ in range(3):
        answer = _send(jwt, forged, now=0)
        assert isinstance(answer, Denial)
        assert answer.body == b"Jwt verification fails"


def test_accepted_payload_is_what_rbac_reads() -> None:
    answer = _send(_filter(), A.token(sub="alice", scope="read write", exp=None), now=0)
    assert isinstance(answer, Accepted)
    payload = answer.metadata["envoy.filters.http.jwt_authn"]["payload"]
    assert (payload["iss"], payload["sub"], payload["scope"]) == (
        A.name,
        "alice",
        ["read", "write"],
    )
