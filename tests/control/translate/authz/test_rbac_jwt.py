"""requestPrincipals and `request.auth.*` conditions read what Envoy's jwt_authn filter leaves
in metadata: real signed tokens through jwt_authn → our RBAC filters → allow or 403."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gossamer.control.translate.authz import DENIED_BODY, http_rbac_filters
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy
from tests.control.translate.authz.envoys import (
    SKIP_WITHOUT_ENVOY,
    bootstrap,
    get,
    http_listener,
    running,
)
from tests.control.translate.authz.policies import HTTPBIN, policy
from tests.control.translate.authz.tokens import ISSUER, Issuer

pytestmark = SKIP_WITHOUT_ENVOY

ISSUER_ALLOWED = Issuer()

SCENARIOS: dict[str, list[AuthorizationPolicy]] = {
    "alice-only": [
        policy(f"  rules:\n  - from: [{{source: {{requestPrincipals: ['{ISSUER}/alice']}}}}]\n")
    ],
    "any-subject-of-issuer": [
        policy(f"  rules:\n  - from: [{{source: {{requestPrincipals: ['{ISSUER}/*']}}}}]\n")
    ],
    "deny-bob": [
        policy(
            "  action: DENY\n  rules:\n"
            f"  - when: [{{key: request.auth.principal, values: ['{ISSUER}/bob']}}]\n"
        )
    ],
    "group-admin": [
        policy("  rules:\n  - when: [{key: 'request.auth.claims[groups]', values: [admin]}]\n")
    ],
    "nested-team": [
        policy("  rules:\n  - when: [{key: 'request.auth.claims[org][team]', values: ['core*']}]\n")
    ],
    "audience": [
        policy("  rules:\n  - when: [{key: request.auth.audiences, values: [httpbin]}]\n")
    ],
}


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    jwt = ISSUER_ALLOWED.jwt_filter()
    listeners = [
        http_listener(name, http_rbac_filters(policies, HTTPBIN), before=[jwt])
        for name, policies in SCENARIOS.items()
    ]
    with running(bootstrap(listeners), tmp_path_factory.mktemp("authz-jwt")) as bound:
        yield bound


def _call(ports: dict[str, int], scenario: str, **claims: object) -> int:
    headers = {"Authorization": f"Bearer {ISSUER_ALLOWED.token(**claims)}"} if claims else {}
    answer = get(ports[scenario], "/", headers=headers)
    if answer.status == 403:
        assert answer.body == DENIED_BODY
    return answer.status


def test_request_principal_is_issuer_slash_subject(ports: dict[str, int]) -> None:
    assert _call(ports, "alice-only", sub="alice") == 200
    assert _call(ports, "alice-only", sub="bob") == 403
    assert _call(ports, "alice-only") == 403  # no token: no request principal


def test_request_principal_subject_wildcard(ports: dict[str, int]) -> None:
    assert _call(ports, "any-subject-of-issuer", sub="carol") == 200
    assert _call(ports, "any-subject-of-issuer") == 403


def test_deny_on_request_auth_principal(ports: dict[str, int]) -> None:
    assert _call(ports, "deny-bob", sub="bob") == 403
    assert _call(ports, "deny-bob", sub="alice") == 200
    assert _call(ports, "deny-bob") == 200


def test_list_claim_matches_any_element(ports: dict[str, int]) -> None:
    assert _call(ports, "group-admin", sub="a", groups=["dev", "admin"]) == 200
    assert _call(ports, "group-admin", sub="a", groups=["dev"]) == 403
    assert _call(ports, "group-admin", sub="a", groups="admin") == 200  # a string claim too


def test_nested_claim_with_prefix(ports: dict[str, int]) -> None:
    assert _call(ports, "nested-team", sub="a", org={"team": "core-infra"}) == 200
    assert _call(ports, "nested-team", sub="a", org={"team": "web"}) == 403


def test_audiences(ports: dict[str, int]) -> None:
    assert _call(ports, "audience", sub="a", aud=["other", "httpbin"]) == 200
    assert _call(ports, "audience", sub="a", aud="httpbin") == 200
    assert _call(ports, "audience", sub="a", aud="other") == 403


def test_an_invalid_token_is_refused_before_authorization(ports: dict[str, int]) -> None:
    forged = Issuer().token(sub="alice")  # signed by a key the JWKS does not hold
    answer = get(ports["any-subject-of-issuer"], "/", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status == 401
