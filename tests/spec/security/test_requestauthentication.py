"""RequestAuthentication: JWT rules, targetRefs, and the API server's messages (reference §7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gossamer.spec import Parsed, parse_text
from gossamer.spec.security.authorizationpolicy import ScopeLevel
from gossamer.spec.security.requestauthentication import RequestAuthentication


def parse(spec: str) -> Parsed:
    text = (
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        f"metadata: {{name: ra, namespace: foo}}\nspec:\n{spec}"
    )
    [parsed] = parse_text(text)
    return parsed


def errors(parsed: Parsed) -> list[str]:
    return [f.reason for f in parsed.findings if f.is_error]


def test_defaults() -> None:
    parsed = parse("  jwtRules:\n  - issuer: https://issuer\n    jwksUri: https://issuer/jwks\n")
    assert isinstance(parsed.resource, RequestAuthentication)
    [rule] = parsed.resource.spec.jwt_rules
    assert rule.timeout == timedelta(seconds=5)
    assert rule.forward_original_token is False
    assert [(h.name, h.prefix) for h in rule.token_locations] == [("Authorization", "Bearer ")]
    assert parsed.resource.scope().level is ScopeLevel.NAMESPACE


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{issuer: x, jwksUri: 'ftp://x/jwks'}",
            "url must have scheme http://, https:// or file://",
        ),
        ("{issuer: x, jwksUri: 'https://x', jwks: '{}'}", "only one of jwks or jwksUri can be set"),
        ("{audiences: [a]}", "issuer or jwksUri must be non-empty string"),
        ("{issuer: x, timeout: 0s}", "must be a valid duration greater than 1ms"),
        ("{issuer: x, timeout: soon}", "must be a valid duration greater than 1ms"),
        (
            "{issuer: x, fromHeaders: [{prefix: p}]}",
            "spec.jwtRules[0].fromHeaders[0].name: Required value",
        ),
        (
            "{issuer: x, audiences: ['']}",
            "spec.jwtRules[0].audiences[0] in body should be at least 1 chars long",
        ),
        (
            "{issuer: x, outputClaimToHeaders: [{claim: c, header: ':x'}]}",
            "header in body should match",
        ),
        ("{issuer: x, presence: MANDATORY}", 'Unsupported value: "MANDATORY"'),
    ],
)
def test_jwt_rule_errors(rule: str, message: str) -> None:
    reasons = errors(parse(f"  jwtRules: [{rule}]\n"))
    assert any(message in r for r in reasons), reasons


def test_null_rule_is_not_an_object() -> None:
    assert errors(parse("  jwtRules: [~]\n")) == ["spec.jwtRules[0] in body must be of type object"]


def test_selector_and_target_refs_exclude_each_other() -> None:
    reasons = errors(
        parse("  selector: {matchLabels: {a: b}}\n  targetRefs: [{kind: Service, name: s}]\n")
    )
    assert reasons == ["only one of targetRefs or selector can be set"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("{kind: Service}", "spec.targetRef.name: Required value"),
        (
            "{kind: Service, name: s, namespace: other}",
            "cross namespace referencing is not currently supported",
        ),
        ("{group: __, kind: Service, name: s}", "spec.targetRef.group in body should match"),
        ("{kind: Deployment, name: s}", "targetRef must be to one of"),
    ],
)
def test_target_ref_rules(ref: str, message: str) -> None:
    reasons = errors(parse(f"  targetRef: {ref}\n"))
    assert any(message in r for r in reasons), reasons


def test_target_refs_scope() -> None:
    parsed = parse(
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
        "  jwtRules: [{issuer: x}]\n"
    )
    assert isinstance(parsed.resource, RequestAuthentication)
    scope = parsed.resource.scope()
    assert scope.level is ScopeLevel.TARGETS
    assert str(scope) == "Gateway gw in namespace foo"
