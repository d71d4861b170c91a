"""AuthorizationPolicy → Envoy RBAC configs, compared with Istio's authz-builder oracle and
checked for the decisions istio-semantics §8 documents."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from gossamer.control.registry import Workload
from gossamer.control.translate.authz import (
    HTTP_RBAC_FILTER,
    NETWORK_RBAC_FILTER,
    enforced_policies,
    http_rbac_filters,
    network_rbac_filters,
)
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy
from tests.control.translate.authz.policies import HTTPBIN, oracle_in, oracle_out, policy

ANY_PERMISSION = {"andRules": {"rules": [{"any": True}]}}
ANY_PRINCIPAL = {"andIds": {"ids": [{"any": True}]}}


def http(policies: list[AuthorizationPolicy], workload: Workload = HTTPBIN) -> list[Any]:
    return [json_format.MessageToDict(f) for f in http_rbac_filters(policies, workload)]


def tcp(policies: list[AuthorizationPolicy], workload: Workload = HTTPBIN) -> list[Any]:
    return [json_format.MessageToDict(f) for f in network_rbac_filters(policies, workload)]


def rules_of(filter_json: Any) -> Any:
    return filter_json["typedConfig"]["rules"]


@pytest.mark.parametrize(
    ("name", "build"),
    [("http-allow-empty-rule", http), ("http-allow-nil-rule", http), ("tcp-allow-only-http", tcp)],
)
def test_output_is_the_oracles(name: str, build: Any) -> None:
    assert build(oracle_in(name)) == [oracle_out(name)]


def test_deny_empty_rule_denies_everything() -> None:
    [deny] = http(oracle_in("http-deny-empty-rule"))
    assert deny["name"] == HTTP_RBAC_FILTER
    assert rules_of(deny) == {
        "action": "DENY",
        "policies": {
            "ns[foo]-policy[deny-all]-rule[0]": {
                "permissions": [ANY_PERMISSION],
                "principals": [ANY_PRINCIPAL],
            }
        },
    }


def test_deny_filter_runs_before_allow_filter() -> None:
    deny, allow = http(oracle_in("http-deny-and-allow"))
    assert rules_of(deny)["action"] == "DENY"
    assert "action" not in rules_of(allow)  # ALLOW is the enum's zero value
    denied = rules_of(deny)["policies"]["ns[foo]-policy[httpbin-deny]-rule[0]"]
    allowed = rules_of(allow)["policies"]["ns[foo]-policy[httpbin-allow]-rule[0]"]
    peer = {"authenticated": {"principalName": {"exact": "spiffe://deny"}}}
    assert denied["principals"] == [{"andIds": {"ids": [{"orIds": {"ids": [peer]}}]}}]
    assert allowed["principals"][0]["andIds"]["ids"][0]["orIds"]["ids"][0] == {
        "authenticated": {"principalName": {"exact": "spiffe://allow"}}
    }


def test_audit_is_a_log_filter_ahead_of_deny_and_allow() -> None:
    audit = policy("  action: AUDIT\n  rules: [{}]\n", name="audit")
    deny = policy("  action: DENY\n  rules: [{}]\n", name="deny")
    allow = policy("  rules: [{}]\n", name="allow")
    actions = [rules_of(f).get("action", "ALLOW") for f in http([allow, deny, audit])]
    assert actions == ["LOG", "DENY", "ALLOW"]


def _full_rule() -> tuple[Any, Any]:
    [allow] = http(oracle_in("http-allow-full-rule"))
    policies = rules_of(allow)["policies"]
    return policies["ns[foo]-policy[httpbin-1]-rule[0]"], policies[
        "ns[foo]-policy[httpbin-1]-rule[1]"
    ]


def test_full_rule_service_accounts_match_any_trust_domain_and_default_to_policy_namespace() -> (
    None
):
    rule0, _ = _full_rule()
    [principal] = rule0["principals"]
    allowed, denied = principal["andIds"]["ids"]
    regexes = [
        i["authenticated"]["principalName"]["safeRegex"]["regex"] for i in allowed["orIds"]["ids"]
    ]
    assert regexes == [
        "spiffe://.+/ns/my-ns/(.+/|)sa/my-sa(/.+)?",
        "spiffe://.+/ns/foo/(.+/|)sa/sa-only(/.+)?",
    ]
    assert "notId" in denied


def _ids(clause: Any) -> list[Any]:
    return clause["orIds"]["ids"] if "orIds" in clause else clause["notId"]["orIds"]["ids"]


def test_full_rule_sources() -> None:
    _, rule1 = _full_rule()
    ids = rule1["principals"][0]["andIds"]["ids"]
    principals, not_principals = _ids(ids[0]), _ids(ids[1])
    assert [p["authenticated"]["principalName"] for p in principals] == [
        {"exact": "spiffe://principal"},
        {"prefix": "spiffe://principal-prefix-"},
        {"safeRegex": {"regex": "spiffe://.*-suffix-principal"}},
        {"safeRegex": {"regex": ".+"}},
    ]
    assert "notId" in ids[1] and len(not_principals) == 4
    request_principal = _ids(ids[2])[0]["andIds"]["ids"]
    assert [r["metadata"]["path"] for r in request_principal] == [
        [{"key": "payload"}, {"key": "iss"}],
        [{"key": "payload"}, {"key": "sub"}],
    ]
    assert {r["metadata"]["filter"] for r in request_principal} == {"envoy.filters.http.jwt_authn"}
    namespaces = [n["authenticated"]["principalName"]["safeRegex"]["regex"] for n in _ids(ids[4])]
    assert namespaces == [
        ".*/ns/ns/.*",
        ".*/ns/ns-prefix-.*/.*",
        ".*/ns/.*-ns-suffix/.*",
        ".*/ns/.*/.*",
    ]
    assert _ids(ids[6]) == [
        {"remoteIp": {"addressPrefix": "1.2.3.4", "prefixLen": 32}},
        {"remoteIp": {"addressPrefix": "5.6.0.0", "prefixLen": 16}},
    ]
    assert _ids(ids[8])[1] == {"directRemoteIp": {"addressPrefix": "5.6.0.0", "prefixLen": 16}}


def test_full_rule_operations_and_destination_conditions() -> None:
    _, rule1 = _full_rule()
    rules = rule1["permissions"][0]["andRules"]["rules"]
    hosts = [r["header"] for r in rules[0]["orRules"]["rules"]]
    assert hosts == [
        {"name": ":authority", "stringMatch": {"exact": "exact.com", "ignoreCase": True}},
        {"name": ":authority", "stringMatch": {"suffix": ".suffix.com", "ignoreCase": True}},
        {"name": ":authority", "stringMatch": {"prefix": "prefix.", "ignoreCase": True}},
        {"name": ":authority", "presentMatch": True},
    ]
    methods = [r["header"] for r in rules[2]["orRules"]["rules"]]
    assert methods[0] == {"name": ":method", "stringMatch": {"exact": "method"}}
    paths = rules[4]["orRules"]["rules"]
    assert [p["urlPath"]["path"] for p in paths[:4]] == [
        {"exact": "/exact"},
        {"prefix": "/prefix/"},
        {"suffix": "/suffix"},
        {"safeRegex": {"regex": ".+"}},
    ]
    assert [p["uriTemplate"]["typedConfig"]["pathTemplate"] for p in paths[4:]] == [
        "/path/template/*",
        "/**/path/template",
    ]
    assert rules[6] == {"orRules": {"rules": [{"destinationPort": 80}, {"destinationPort": 90}]}}
    assert rules[7] == {
        "notRule": {"orRules": {"rules": [{"destinationPort": 8000}, {"destinationPort": 9000}]}}
    }
    sni = [r["requestedServerName"] for r in rules[12]["orRules"]["rules"]]
    assert sni[0] == {"exact": "exact.com"}
    envoy_metadata = rules[14]["orRules"]["rules"][0]["metadata"]
    assert envoy_metadata == {
        "filter": "envoy.filters.a.b",
        "path": [{"key": "c"}],
        "value": {"stringMatch": {"exact": "exact"}},
    }


def test_full_rule_nested_claims_read_the_jwt_payload() -> None:
    _, rule1 = _full_rule()
    ids = rule1["principals"][0]["andIds"]["ids"]
    claim_paths = [
        [k["key"] for k in i["metadata"]["path"]]
        for clause in ids
        if "orIds" in clause
        for i in clause["orIds"]["ids"]
        if "metadata" in i and i["metadata"]["path"][-1]["key"] == "nested2"
    ]
    assert claim_paths and set(map(tuple, claim_paths)) == {("payload", "nested1", "nested2")}


def test_tcp_deny_rules_with_http_fields_match_more() -> None:
    [deny] = tcp(oracle_in("tcp-deny-both-http-tcp"))
    assert deny["name"] == NETWORK_RBAC_FILTER
    assert deny["typedConfig"]["statPrefix"] == "tcp."
    policies = rules_of(deny)["policies"]
    assert len(policies) == 11  # DENY keeps every rule

    def rule(index: int) -> Any:
        return policies[f"ns[foo]-policy[httpbin-deny]-rule[{index}]"]

    deny_all = {"permissions": [ANY_PERMISSION], "principals": [ANY_PRINCIPAL]}
    for index in (0, 1, 2, 8):  # only HTTP attributes: every connection is denied
        assert rule(index) == deny_all, index
    ns1 = {"authenticated": {"principalName": {"safeRegex": {"regex": ".*/ns/ns-1/.*"}}}}
    port80 = {"orRules": {"rules": [{"destinationPort": 80}]}}
    assert rule(7) == {
        "permissions": [{"andRules": {"rules": [port80]}}],
        "principals": [{"andIds": {"ids": [{"orIds": {"ids": [ns1]}}]}}],
    }
    assert rule(3)["permissions"] == [ANY_PERMISSION]  # methods dropped, namespace kept
    assert rule(4)["principals"] == [ANY_PRINCIPAL]  # requestPrincipals dropped, port kept
    assert rule(9)["permissions"] == [{"andRules": {"rules": [port80]}}]


def test_tcp_allow_rule_with_an_http_field_is_dropped_but_a_tcp_rule_stays() -> None:
    allow = policy(
        "  rules:\n"
        "  - to: [{operation: {ports: ['80'], methods: [GET]}}]\n"
        "  - to: [{operation: {ports: ['81']}}]\n"
    )
    [config] = tcp([allow])
    assert list(rules_of(config)["policies"]) == ["ns[foo]-policy[p]-rule[1]"]
    [http_config] = http([allow])
    assert len(rules_of(http_config)["policies"]) == 2


def test_a_given_spiffe_prefix_is_not_doubled() -> None:
    allow = policy("  rules:\n  - from: [{source: {principals: [spiffe://td/ns/a/sa/b]}}]\n")
    [config] = http([allow])
    ids = rules_of(config)["policies"]["ns[foo]-policy[p]-rule[0]"]["principals"][0]["andIds"][
        "ids"
    ]
    assert ids[0]["orIds"]["ids"][0]["authenticated"]["principalName"] == {
        "exact": "spiffe://td/ns/a/sa/b"
    }


def test_suffix_principal_regex_escapes_dots() -> None:
    allow = policy("  rules:\n  - from: [{source: {principals: ['*.local/ns/a/sa/b']}}]\n")
    [config] = http([allow])
    ids = rules_of(config)["policies"]["ns[foo]-policy[p]-rule[0]"]["principals"][0]["andIds"][
        "ids"
    ]
    assert ids[0]["orIds"]["ids"][0]["authenticated"]["principalName"] == {
        "safeRegex": {"regex": "spiffe://.*\\.local/ns/a/sa/b"}
    }


def test_dry_run_policies_are_shadow_rules_only() -> None:
    deny = policy("  action: DENY\n  rules: [{}]\n", dry_run=True)
    [config] = http([deny])
    typed = config["typedConfig"]
    assert "rules" not in typed  # nothing enforced
    assert typed["shadowRules"]["action"] == "DENY"
    assert typed["shadowRulesStatPrefix"] == "istio_dry_run_deny_"


def test_no_policy_no_filter() -> None:
    assert http([]) == [] and tcp([]) == []


def _names(policies: list[AuthorizationPolicy], workload: Workload) -> list[str]:
    return [p.name for p in enforced_policies(policies, workload)]


def test_which_policies_a_workload_enforces() -> None:
    mesh = policy("  rules: [{}]\n", name="mesh", namespace="istio-system")
    root_selected = policy(
        "  selector: {matchLabels: {app: httpbin}}\n  rules: [{}]\n",
        name="root-selected",
        namespace="istio-system",
    )
    namespace_wide = policy("  rules: [{}]\n", name="ns-wide")
    other_namespace = policy("  rules: [{}]\n", name="other", namespace="bar")
    other_app = policy("  selector: {matchLabels: {app: other}}\n  rules: [{}]\n", name="other-app")
    targeted = policy("  targetRefs: [{kind: Service, name: httpbin}]\n  rules: [{}]\n", name="tr")
    custom = policy("  action: CUSTOM\n  provider: {name: ext}\n  rules: [{}]\n", name="custom")
    everything = [mesh, root_selected, namespace_wide, other_namespace, other_app, targeted, custom]
    assert _names(everything, HTTPBIN) == ["mesh", "root-selected", "ns-wide"]
    in_bar = Workload(name="x", namespace="bar", address="127.0.0.2", labels={"app": "httpbin"})
    assert _names(everything, in_bar) == ["mesh", "root-selected", "other"]
