"""AuthorizationPolicy: actions, rule shapes, condition keys, CUSTOM, scope (reference §8)."""

from __future__ import annotations

import pytest

from gossamer.spec import Level, Parsed, parse_text
from gossamer.spec.security.authorizationpolicy import (
    AuthorizationPolicy,
    ScopeLevel,
    key_problem,
)


def parse(spec: str, namespace: str = "foo", annotations: str = "{}") -> Parsed:
    text = (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: ap, namespace: {namespace}, annotations: {annotations}}}\n"
        f"spec:\n{spec}"
    )
    [parsed] = parse_text(text)
    return parsed


def errors(parsed: Parsed) -> list[str]:
    return [f.reason for f in parsed.findings if f.is_error]


def warnings(parsed: Parsed) -> list[str]:
    return [f.reason for f in parsed.findings if f.level is Level.WARNING]


def test_empty_spec_is_allow_nothing() -> None:
    parsed = parse("  {}\n")
    assert isinstance(parsed.resource, AuthorizationPolicy)
    assert parsed.resource.spec.action == "ALLOW"
    assert parsed.resource.spec.rules_ is None


def test_deny_needs_rules_but_an_empty_rule_is_fine() -> None:
    assert any(
        "DENY action without `rules` is meaningless" in r for r in errors(parse("  action: DENY\n"))
    )
    assert parse("  action: DENY\n  rules: [{}]\n").ok


def test_unknown_action() -> None:
    assert errors(parse("  action: PERMIT\n"))[0].startswith('Unsupported value: "PERMIT"')


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("[{from: []}]", "`from` must not be empty"),
        ("[{to: []}]", "`to` must not be empty"),
        ("[{from: [{}]}]", "`from.source` must not be nil"),
        ("[{from: [{source: {}}]}]", "`from.source` must not be empty"),
        ("[{to: [{operation: {}}]}]", "`to.operation` must not be empty"),
        (
            "[{from: [{source: {principals: ['']}}]}]",
            "empty value not allowed, found in Principals",
        ),
        ("[{from: [{source: {ipBlocks: ['1.2.3.4/99']}}]}]", "bad CIDR range (1.2.3.4/99)"),
        ("[{from: [{source: {serviceAccounts: ['a/b/c']}}]}]", "expected format 'serviceAccount'"),
        (
            "[{from: [{source: {serviceAccounts: [sa], namespaces: [ns]}}]}]",
            "Cannot set serviceAccounts",
        ),
        ("[{to: [{operation: {ports: ['http']}}]}]", "bad port (http)"),
        ("[{to: [{operation: {paths: ['/{**}/a/{**}']}}]}]", "{**} is not the last operator"),
        ("[{to: [{operation: {paths: ['/a{b}']}}]}]", "beyond a supported path template"),
        ("[{when: [{key: source.ip}]}]", "at least one of `values` or `notValues` must be set"),
        (
            "[{when: [{key: destination.namespace, values: [a]}]}]",
            "replaced by the metadata.namespace",
        ),
        ("[{when: [{key: request.headers, values: [a]}]}]", "should have format a[b]"),
        ("[{when: [{key: bogus.key, values: [a]}]}]", "unknown attribute: bogus.key"),
    ],
)
def test_rule_errors(rules: str, message: str) -> None:
    reasons = errors(parse(f"  rules: {rules}\n"))
    assert any(message in r for r in reasons), reasons


@pytest.mark.parametrize(
    "key",
    [
        "request.headers[x-user]",
        "request.auth.claims[groups]",
        "request.auth.claims[a][b]",
        "source.trustDomain",
        "experimental.envoy.filters.a.b[c]",
        "connection.sni",
    ],
)
def test_known_condition_keys(key: str) -> None:
    assert key_problem(key, ["v"]) is None


def test_provider_only_with_custom() -> None:
    reasons = errors(parse("  provider: {name: ext}\n  rules: [{}]\n"))
    assert reasons == ["`provider` must not be with non CUSTOM action, found ALLOW"]


def test_custom_is_accepted_with_a_warning_that_gossamer_does_not_enforce_it() -> None:
    parsed = parse("  action: CUSTOM\n  provider: {name: ext-authz}\n  rules: [{}]\n")
    assert parsed.ok
    assert any("CUSTOM (ext-authz) is not supported by Gossamer" in w for w in warnings(parsed))


def test_custom_needs_rules_and_a_provider_and_no_identity_fields() -> None:
    assert any("CUSTOM action without `rules`" in r for r in errors(parse("  action: CUSTOM\n")))
    assert "`provider.name` must not be empty" in errors(parse("  action: CUSTOM\n  rules: [{}]\n"))
    parsed = parse(
        "  action: CUSTOM\n  provider: {name: x}\n"
        "  rules: [{from: [{source: {principals: [p]}}],\n"
        "           when: [{key: request.auth.principal, values: [a]}]}]\n"
    )
    assert "From.Principals is currently not supported with CUSTOM action" in errors(parsed)
    assert "request.auth.principal is currently not supported with CUSTOM action" in errors(parsed)


def test_deny_with_only_http_fields_warns_about_tcp() -> None:
    parsed = parse("  action: DENY\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n")
    assert parsed.ok
    assert any("will deny all traffic to TCP ports" in w for w in warnings(parsed))
    scoped = parse(
        "  action: DENY\n  rules: [{to: [{operation: {methods: [GET], ports: ['80']}}]}]\n"
    )
    assert warnings(scoped) == []


@pytest.mark.parametrize(
    ("namespace", "spec", "level", "text"),
    [
        ("istio-system", "  {}\n", ScopeLevel.MESH, "mesh-wide"),
        ("foo", "  {}\n", ScopeLevel.NAMESPACE, "namespace foo"),
        (
            "foo",
            "  selector: {matchLabels: {app: a}}\n",
            ScopeLevel.WORKLOAD,
            "workloads matching app=a in namespace foo",
        ),
        (
            "istio-system",
            "  selector: {matchLabels: {app: a}}\n",
            ScopeLevel.WORKLOAD,
            "workloads matching app=a in all namespaces",
        ),
        (
            "foo",
            "  targetRefs: [{kind: Service, name: s}]\n",
            ScopeLevel.TARGETS,
            "Service s in namespace foo",
        ),
    ],
)
def test_scope(namespace: str, spec: str, level: ScopeLevel, text: str) -> None:
    policy = parse(spec, namespace=namespace).resource
    assert isinstance(policy, AuthorizationPolicy)
    assert policy.scope().level is level
    assert str(policy.scope()) == text


def test_dry_run_annotation() -> None:
    policy = parse("  {}\n", annotations='{"istio.io/dry-run": "true"}').resource
    assert isinstance(policy, AuthorizationPolicy)
    assert policy.dry_run


def test_rule_http_only_classification() -> None:
    policy = parse(
        "  action: DENY\n  rules:\n"
        "  - from: [{source: {namespaces: [ns]}}]\n    to: [{operation: {ports: ['80']}}]\n"
        "  - from: [{source: {requestPrincipals: ['*']}}]\n"
    ).resource
    assert isinstance(policy, AuthorizationPolicy)
    assert [r.http_only() for r in policy.spec.rules_ or []] == [False, True]
