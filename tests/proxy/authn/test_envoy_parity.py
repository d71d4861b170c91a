"""RequestAuthentication end to end against a real Envoy: the translator's jwt_authn filter and
RBAC filters for the same policies, in the same listener proto, served by Envoy and by our
sidecar; every request must get the same answer (status, body, `www-authenticate`) and, when
forwarded, reach the upstream with the same path and token headers (stripped unless
forwardOriginalToken, payload and claim headers added)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from gossamer.control.registry import Workload
from gossamer.control.translate.authn import JwksResolver, jwt_authn_filters
from gossamer.control.translate.authz import http_rbac_filters
from gossamer.control.translate.policies import packed
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy
from gossamer.spec.security.requestauthentication import RequestAuthentication
from tests.control.translate.authz.policies import policy
from tests.ports import free_port
from tests.proxy.authn.issuers import Issuer, request_authentication
from tests.proxy.authn.parity import Observed, jwt_listener, observe, request
from tests.proxy.server.harness import running
from tests.proxy.server.protos import static_cluster
from tests.proxy.server.rbac_listeners import envoy_serving
from tests.proxy.server.upstreams import Upstream
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

A = Issuer("https://a.example")
B = Issuer("https://b.example", alg="RS256", kid="b1")
STRANGER = Issuer("https://a.example")  # same issuer name, another key
WORKLOAD = Workload(name="httpbin-1", namespace="foo", address="127.0.0.1", labels={"app": "x"})


def _rule_a(extra: str = "") -> str:
    return (
        f"  - issuer: {A.name}\n    audiences: [svc]\n    jwks: '{A.jwks()}'\n"
        "    outputPayloadToHeader: x-jwt-payload\n"
        "    outputClaimToHeaders: [{header: x-sub, claim: sub}, {header: x-groups, claim: grp}]\n"
        + extra
    )


RULE_B = f"  - issuer: {B.name}\n    jwks: '{B.jwks()}'\n    forwardOriginalToken: true\n"
ONE = request_authentication("  jwtRules:\n" + _rule_a())
TWO = request_authentication("  jwtRules:\n" + RULE_B + _rule_a(), name="two")
CUSTOM = request_authentication(
    f"  jwtRules:\n  - issuer: {A.name}\n    jwks: '{A.jwks()}'\n"
    "    fromHeaders: [{name: x-token}]\n    fromParams: [tok]\n",
    name="custom",
)
REQUIRE = policy("  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n")
CLAIMS = policy(
    "  rules:\n  - when:\n    - {key: 'request.auth.claims[groups]', values: [admins]}\n"
    "    - {key: 'request.auth.claims[scope]', values: [read]}\n"
)
DENY_MALLORY = policy(
    "  action: DENY\n  rules:\n"
    f"  - from: [{{source: {{requestPrincipals: ['{A.name}/mallory']}}}}]\n"
)
LISTENERS: dict[str, tuple[RequestAuthentication, list[AuthorizationPolicy]]] = {
    "one": (ONE, []),
    "two": (TWO, []),
    "custom": (CUSTOM, []),
    "require": (ONE, [REQUIRE]),
    "claims": (ONE, [CLAIMS]),
    "deny_mallory": (ONE, [DENY_MALLORY]),
}
NOW = int(time.time())


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


GOOD = A.token(sub="alice", aud="svc", grp="team-1")
VALID = request("/p?q=1", bearer(GOOD))
EXPIRED = request("/p?q=1", bearer(A.token(sub="alice", aud="svc", exp=NOW - 3600)))
WRONG_AUDIENCE = request("/p", bearer(A.token(sub="alice", aud="other")))
NO_TOKEN = request("/")
CASES: list[tuple[str, bytes]] = [
    ("one", VALID),
    ("one", EXPIRED),
    ("one", request("/p", bearer(A.token(sub="alice", aud="svc", exp=NOW - 30)))),  # skew
    ("one", request("/p", bearer(A.token(sub="alice", aud="svc", nbf=NOW + 3600)))),
    ("one", request("/p", bearer(B.token(sub="alice", aud="svc")))),  # unknown issuer
    ("one", WRONG_AUDIENCE),
    ("one", request("/p", bearer(A.token(sub="alice", aud=["x", "https://svc/"])))),
    ("one", request("/p", bearer(A.token(sub="alice", aud="svc", key=STRANGER.key)))),
    ("one", request("/p", bearer(A.token(sub="alice", aud="svc", kid="nope")))),
    ("one", request("/p", bearer("abc.def"))),
    ("one", request("/p", bearer("a.b.c"))),
    ("one", request("/p", ("authorization", "Basic abc"))),
    ("one", request("/p", ("authorization", f"bearer {GOOD}"))),
    ("one", NO_TOKEN),
    ("one", request(f"/p?access_token={GOOD}&x=1")),
    ("one", request(f"/p?z=%41&access_token={GOOD}&a=2&z=0")),
    ("one", request(f"/p?access_token={GOOD}")),
    ("one", request(f"/p?b=x+z%2F&access_token={GOOD}&a&c=&%61=1")),
    ("one", request("/p?access_token=" + A.token(sub="a", aud="svc", key=STRANGER.key))),
    ("one", request("/unrouted", bearer("abc.def"), host="elsewhere")),
    ("one", request("/long/" + "x" * 300 + "?q=" + "y" * 50, bearer("abc.def"))),
    ("one", request("/p", bearer("abc.def"), ("x-forwarded-proto", "https"))),
    ("one", request("http://svc/abs?x=1", bearer("abc.def"))),
    ("two", request("/", bearer(GOOD))),
    ("two", request("/", bearer(B.token(sub="bob")))),
    ("two", request("/", bearer(B.token(sub="bob", exp=NOW - 3600)))),
    ("two", request("/", bearer(Issuer("https://c.example").token(sub="eve")))),
    ("two", request("/")),
    ("custom", request("/", ("x-token", GOOD))),
    ("custom", request("/", bearer(GOOD))),  # the default location is not one of its own
    ("custom", request("/?tok=" + A.token(sub="alice", exp=NOW - 3600))),
    ("require", request("/", bearer(GOOD))),
    ("require", NO_TOKEN),
    ("require", request("/", bearer("abc.def"))),
    (
        "claims",
        request("/", bearer(A.token(sub="a", aud="svc", groups=["admins"], scope="x read"))),
    ),
    ("claims", request("/", bearer(A.token(sub="a", aud="svc", groups="admins", scope="read")))),
    ("claims", request("/", bearer(A.token(sub="a", aud="svc", groups=["users"], scope="read")))),
    ("claims", request("/", bearer(A.token(sub="a", aud="svc", groups=["admins"], scope="write")))),
    ("claims", request("/")),
    ("deny_mallory", request("/", bearer(A.token(sub="mallory", aud="svc")))),
    ("deny_mallory", request("/", bearer(A.token(sub="alice", aud="svc")))),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jwt-envoy")


async def observed_alike(
    protos: list[listener_pb2.Listener],
    ours_ports: dict[str, int],
    cases: list[tuple[str, bytes]],
    workdir: Path,
) -> dict[tuple[str, bytes], Observed]:
    """Serve `protos` (ours on `ours_ports`, by listener name) from Envoy and from our sidecar in
    front of one echo upstream; send each (listener, request) case to both and assert they saw
    the same; what ours saw, by case."""
    upstream = await Upstream("backend").start()
    cluster = static_cluster("backend", upstream.port)
    seen: list[Observed] = []
    try:
        with envoy_serving(protos, [cluster], workdir) as (_envoy, envoy_ports):
            async with running(cluster, *protos):
                mismatches = []
                for name, wire in cases:
                    theirs = await observe(envoy_ports[name], wire)
                    mine = await observe(ours_ports[name], wire)
                    seen.append(mine)
                    if mine != theirs:
                        mismatches.append((name, wire[:60], theirs, mine))
                assert mismatches == [], "\n".join(map(repr, mismatches))
    finally:
        await upstream.stop()
    return dict(zip(cases, seen, strict=True))


async def test_jwt_and_rbac_decisions_match_envoy(workdir: Path) -> None:
    resolver = JwksResolver()
    ours_ports = {name: free_port() for name in LISTENERS}
    protos = []
    for name, (ra, policies) in LISTENERS.items():
        filters = jwt_authn_filters([ra], WORKLOAD, resolver)
        filters += http_rbac_filters(policies, WORKLOAD)
        protos.append(jwt_listener(name, ours_ports[name], filters))
    got = await observed_alike(protos, ours_ports, CASES, workdir)
    # What Envoy and we agreed on includes (a few, spelled out):
    assert got["one", VALID].status == 200
    assert got["one", VALID].upstream_headers[0] == ("authorization", None)  # token stripped
    assert (got["one", EXPIRED].status, got["one", EXPIRED].body) == (401, b"Jwt is expired")
    assert got["one", WRONG_AUDIENCE].status == 403
    assert got["one", NO_TOKEN].status == 200  # no token and no policy: passes
    assert got["require", NO_TOKEN].status == 403  # requestPrincipals ["*"] needs one


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HS_SECRET = b"0123456789abcdef0123456789abcdef"
HS_JWKS = json.dumps(
    {"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256", "k": _b64url(HS_SECRET)}]}
)


def _provider(issuer: Issuer, *headers: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "issuer": issuer.name,
        "local_jwks": {"inline_string": issuer.jwks()},
        "payload_in_metadata": "payload",
        **extra,
    }
    if headers:
        out["from_headers"] = [{"name": h} for h in headers]
    return out


def _jwt_filter(providers: dict[str, Any], rules: list[Any]) -> hcm_pb2.HttpFilter:
    config = {"providers": providers, "rules": rules, "bypass_cors_preflight": True}
    message = json_format.ParseDict(config, jwt_pb2.JwtAuthentication())
    return hcm_pb2.HttpFilter(name="envoy.filters.http.jwt_authn", typed_config=packed(message))


def _everything(requires: dict[str, Any]) -> list[Any]:
    return [{"match": {"prefix": "/"}, "requires": requires}]


RAW: dict[str, hcm_pb2.HttpFilter] = {
    "required": _jwt_filter({"a": _provider(A)}, _everything({"provider_name": "a"})),
    "all": _jwt_filter(
        {"a": _provider(A, "x-a"), "b": _provider(B, "x-b")},
        _everything(
            {"requires_all": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}
        ),
    ),
    "failed_ok": _jwt_filter(
        {"a": _provider(A, forward_payload_header="x-jwt-payload")},
        _everything({"allow_missing_or_failed": {}}),
    ),
    "paths": _jwt_filter(
        {"a": _provider(A)},
        [
            {"match": {"path": "/api/open"}},
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}},
        ],
    ),
    "hs": _jwt_filter(
        {"h": {"issuer": "hs", "local_jwks": {"inline_string": HS_JWKS}}},
        _everything({"provider_name": "h"}),
    ),
}
HS_TOKEN = pyjwt.encode({"iss": "hs", "sub": "x"}, HS_SECRET, "HS256", headers={"kid": "h1"})
PREFLIGHT = (
    b"OPTIONS /api HTTP/1.1\r\nhost: svc\r\norigin: http://o.example\r\n"
    b"access-control-request-method: GET\r\nauthorization: Bearer abc.def\r\n\r\n"
)
RAW_CASES: list[tuple[str, bytes]] = [
    ("required", NO_TOKEN),
    ("required", request("/", bearer(GOOD))),
    ("all", request("/", ("x-a", GOOD), ("x-b", B.token(sub="b")))),
    ("all", request("/", ("x-a", GOOD))),
    ("all", request("/", ("x-b", B.token(sub="b")))),
    ("failed_ok", request("/", bearer("abc.def"))),
    ("failed_ok", request("/", bearer(GOOD))),
    ("failed_ok", request("/", bearer(A.token(sub="a", exp=NOW - 3600)))),
    ("paths", request("/api/x", bearer("abc.def"))),
    ("paths", request("/api/open", bearer("abc.def"))),
    ("paths", request("/other", bearer("abc.def"))),
    ("paths", request("/api")),
    ("paths", PREFLIGHT),
    ("paths", PREFLIGHT.replace(b"access-control-request-method", b"x-other")),
    ("hs", request("/", bearer(HS_TOKEN))),
    ("hs", request("/", bearer(HS_TOKEN[:-2] + "xx"))),
]


async def test_requirement_kinds_and_rules_match_envoy(workdir: Path) -> None:
    ours_ports = {name: free_port() for name in RAW}
    protos = [jwt_listener(name, ours_ports[name], [f]) for name, f in RAW.items()]
    got = await observed_alike(protos, ours_ports, RAW_CASES, workdir / "raw")
    missing = got["required", NO_TOKEN]
    assert (missing.status, missing.body) == (401, b"Jwt is missing")
    assert missing.www_authenticate == 'Bearer realm="http://svc/"'
    assert got["paths", PREFLIGHT].status == 200
