"""Envoy parity: each scenario in scenarios/ runs on a real Envoy and on the Gossamer sidecar,
both programmed by one real control plane; each must meet the scenario's expectation, and the
two must agree on what a user sees (statuses, which backends answered, the proxy's own reply
bodies, response header names, the request header names a backend receives).

Scenarios calling `service: guarded` go through each plane's client-side sidecar to the same
plane's server-side sidecar (Envoy → Envoy, Gossamer → Gossamer, mesh mTLS with certificates
from the control plane's CA), which enforces the scenario's AuthorizationPolicy,
PeerAuthentication and RequestAuthentication as the workload's inbound side (dataplanes.py).

Not covered: unknown-host passthrough (allow_any → PassthroughCluster). On loopback with
INTERCEPTION_MODE NONE the original destination is Envoy's own listener, so Envoy would proxy to
itself; there is no outcome worth holding the sidecar to."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.parity.dataplanes import DataPlane
from tests.e2e.parity.runner import Outcome, Parity
from tests.e2e.parity.scenario import Scenario, load_all
from tests.e2e.parity.world import other_kind

pytestmark = [pytest.mark.e2e, pytest.mark.envoy]

SCENARIOS = load_all()
PLANES = ("envoy", "gossamer")
CASES = [pytest.param(s, p, id=f"{s.name}-{p}") for s in SCENARIOS for p in PLANES]


def _known_failure(scenario: Scenario, plane: str, request: pytest.FixtureRequest) -> None:
    if scenario.skip:
        pytest.skip(scenario.skip)
    if plane in scenario.known_failures:
        reason = scenario.known_failures[plane]
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.mark.parametrize(("scenario", "plane_name"), CASES)
def test_scenario(scenario: Scenario, plane_name: str, request: pytest.FixtureRequest) -> None:
    _known_failure(scenario, plane_name, request)
    parity: Parity = request.getfixturevalue("parity")
    plane: DataPlane = request.getfixturevalue(f"{plane_name}_plane")
    if scenario.crosses:  # Envoy ↔ Gossamer: the other kind's server-side sidecar must be up
        request.getfixturevalue(f"{other_kind(plane_name)}_plane")
    outcome = parity.run(scenario, plane)
    if os.environ.get("PARITY_VERBOSE") == "1":
        print(f"\n{outcome.describe()}" + "".join(c.samples() for c in outcome.calls))
    assert not outcome.problems, f"{scenario.summary}\n{outcome.describe()}"


def _differences(envoy: Outcome, gossamer: Outcome) -> list[str]:
    return [
        f"{call} {key}: envoy {json.dumps(want)} gossamer {json.dumps(got)}"
        for call, summary in envoy.summary.items()
        for key, want in summary.items()
        if (got := gossamer.summary.get(call, {}).get(key)) != want
    ]


def _both(parity: Parity, scenario: str) -> tuple[Outcome, Outcome]:
    missing = [p for p in PLANES if (scenario, p) not in parity.outcomes]
    if missing:
        pytest.skip(f"no result from {', '.join(missing)} for {scenario}")
    return parity.outcomes[(scenario, "envoy")], parity.outcomes[(scenario, "gossamer")]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_planes_agree(scenario: Scenario, parity: Parity, request: pytest.FixtureRequest) -> None:
    _known_failure(scenario, "agree", request)
    envoy, gossamer = _both(parity, scenario.name)
    differences = _differences(envoy, gossamer)
    assert not differences, "\n".join(differences)
