"""Scenario files: every one loads, and the tag the harness adds never loses a scenario's own
response headers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.parity.scenario import TAG_HEADER, ScenarioError, load, load_all


def test_every_scenario_loads_with_a_tagged_virtual_service() -> None:
    scenarios = load_all()
    assert len(scenarios) >= 20
    for scenario in scenarios:
        docs = list(yaml.safe_load_all(scenario.tagged_config("t")))
        routes = [r for d in docs if d["kind"] == "VirtualService" for r in d["spec"]["http"]]
        assert routes and all(r["headers"]["response"]["set"][TAG_HEADER] == "t" for r in routes), (
            scenario.name
        )


def test_tag_merges_with_the_scenarios_own_response_headers() -> None:
    scenario = next(s for s in load_all() if s.name == "header_operations")
    (doc,) = yaml.safe_load_all(scenario.tagged_config("t"))
    response = doc["spec"]["http"][0]["headers"]["response"]
    assert response["set"] == {"x-resp-set": "from-mesh", TAG_HEADER: "t"}
    assert response["remove"] == ["x-backend-version"]
    assert "x-parity-config" not in scenario.untagged_config()


def test_cluster_changing_scenarios_run_last() -> None:
    kinds = [any(d["kind"] == "DestinationRule" for d in s.config) for s in load_all()]
    assert kinds == sorted(kinds)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("config: []\ncalls: [{service: a}]\n", "needs a VirtualService"),
        ("calls: []\n", "no calls"),
        ("colls: []\n", "unknown keys"),
        ("calls: [{service: a, cout: 3}]\n", "unknown call keys"),
        ("calls: [{path: /}]\n", "needs `service`"),
        ("calls: [{service: a, fail_key: every}]\n", "fail_key"),
    ],
)
def test_malformed_scenarios_are_refused(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=why):
        load(path)


def test_authz_scenarios_run_against_each_planes_own_server() -> None:
    authz = [s for s in load_all() if s.name.startswith("authz_")]
    assert {s.name for s in authz} >= {
        "authz_allow_method_path",
        "authz_deny_header",
        "authz_allow_nothing",
        "authz_deny_before_allow",
        "authz_principals",
        "authz_namespaces",
        "authz_peer_strict",
        "authz_request_principals",
        "authz_cross_pairs",
    }
    for scenario in authz:
        assert not scenario.skip, scenario.name
        assert scenario.guarded, scenario.name
        docs = list(yaml.safe_load_all(scenario.tagged_config("t")))
        # {plane} documents come once per plane: each plane's client reaches its own server.
        hosts = {h for d in docs if d["kind"] == "VirtualService" for h in d["spec"]["hosts"]}
        assert hosts == {"guarded-envoy", "guarded-gossamer"}, scenario.name  # {other} too
        assert {"AuthorizationPolicy", "PeerAuthentication"} & {d["kind"] for d in docs}
        tags = [d for d in docs if d["metadata"]["name"] == "parity-tag"]
        assert tags and tags[0]["spec"]["action"] == "DENY", scenario.name


def test_scenarios_without_the_guarded_service_get_no_tag_policy() -> None:
    plain = [s for s in load_all() if not s.name.startswith("authz_")]
    assert plain
    for scenario in plain:
        assert not scenario.guarded, scenario.name
        assert "parity-tag" not in scenario.tagged_config("t"), scenario.name
