"""A config push while requests are in flight fails none of them, on either data plane.

Steady keep-alive load runs through the data plane while the reviews VirtualService moves from
100% v1 to 100% v2 and back, and while a DestinationRule changes the reviews clusters (a CDS
push: new pools and balancers). Every reply must be a 200, and the moves must take effect."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.e2e.harness import BackgroundLoad, HttpClient, tally, until
from tests.e2e.parity.dataplanes import DataPlane
from tests.e2e.parity.runner import Parity
from tests.e2e.parity.world import NS

pytestmark = [pytest.mark.e2e, pytest.mark.envoy]


def all_to(version: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": NS},
            "spec": {
                "hosts": ["reviews"],
                "http": [{"route": [{"destination": {"host": "reviews", "subset": version}}]}],
            },
        }
    )


def subsets(lb: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews-subsets", "namespace": NS},
            "spec": {
                "host": "reviews",
                "trafficPolicy": {"loadBalancer": {"simple": lb}},
                "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")],
            },
        }
    )


@pytest.mark.parametrize("plane_name", ["envoy", "gossamer"])
def test_pushes_under_load_fail_no_request(
    plane_name: str, parity: Parity, request: pytest.FixtureRequest
) -> None:
    plane: DataPlane = request.getfixturevalue(f"{plane_name}_plane")
    cp = parity.world.cp
    load = BackgroundLoad(
        plane.port_for("reviews"),
        parity.world.authority("reviews"),
        concurrency=3,
        max_requests=20_000,
        max_seconds=60,
    )
    cp.apply(all_to("v1"))
    until(lambda: probe_version(plane, parity) == "v1", 15, "reviews all v1")
    load.start()
    try:
        for step in ("v2", "v1", "v2"):
            cp.apply(all_to(step))
            began = time.monotonic()
            until(lambda s=step, t=began: only(load, t, s), 10, f"the move to {step}")  # type: ignore[misc]
        for lb in ("ROUND_ROBIN", "LEAST_REQUEST"):
            before = load.count()
            cp.apply(subsets(lb))
            until(lambda b=before: load.count() > b + 200, 15, "traffic after a CDS push")  # type: ignore[misc]
    finally:
        replies = load.stop()
        cp.delete(all_to("v1"))
        cp.apply(subsets("LEAST_REQUEST"))
    failed = [r for _, r in replies if r.status != 200]
    assert len(replies) > 500, f"too little load to judge: {len(replies)}"
    assert not failed, f"{len(failed)} of {len(replies)} failed: {tally(failed)}"


def probe_version(plane: DataPlane, parity: Parity) -> str:
    """One probe's version, on a connection of its own."""
    client = HttpClient(plane.port_for("reviews"))
    try:
        return client.get(parity.world.authority("reviews")).version
    finally:
        client.close()


def only(load: BackgroundLoad, since: float, version: str) -> bool:
    """The last 30 replies after `since` all came from `version`."""
    recent = load.since(since)[-30:]
    return len(recent) == 30 and all(r.version == version for r in recent)
