"""Envoy parity: each scenario in scenarios/ runs on a real Envoy and on the Gossamer sidecar,
both programmed by one real control plane; each must meet the scenario's expectation, and the
two must agree on what a user sees (statuses, which backends answered)."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.parity.dataplanes import DataPlane
from tests.e2e.parity.runner import Parity
from tests.e2e.parity.scenario import Scenario, load_all

pytestmark = [pytest.mark.e2e, pytest.mark.envoy]

SCENARIOS = load_all()
PLANES = ("envoy", "gossamer")
CASES = [pytest.param(s, p, id=f"{s.name}-{p}") for s in SCENARIOS for p in PLANES]


@pytest.mark.parametrize(("scenario", "plane_name"), CASES)
def test_scenario(scenario: Scenario, plane_name: str, request: pytest.FixtureRequest) -> None:
    if plane_name in scenario.known_failures:
        reason = scenario.known_failures[plane_name]
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    parity: Parity = request.getfixturevalue("parity")
    plane: DataPlane = request.getfixturevalue(f"{plane_name}_plane")
    outcome = parity.run(scenario, plane)
    if os.environ.get("PARITY_VERBOSE") == "1":
        print(f"\n{outcome.describe()}" + "".join(c.samples() for c in outcome.calls))
    assert not outcome.problems, f"{scenario.summary}\n{outcome.describe()}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_planes_agree(scenario: Scenario, parity: Parity) -> None:
    missing = [p for p in PLANES if (scenario.name, p) not in parity.outcomes]
    if missing:
        pytest.skip(f"no result from {', '.join(missing)} for {scenario.name}")
    envoy = parity.outcomes[(scenario.name, "envoy")]
    gossamer = parity.outcomes[(scenario.name, "gossamer")]
    assert gossamer.summary == envoy.summary, (
        f"envoy: {json.dumps(envoy.summary)}\ngossamer: {json.dumps(gossamer.summary)}"
    )
