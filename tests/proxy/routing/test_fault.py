"""Fault injection config: per-route (else per-vhost) HTTPFault, percentages and decisions."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import Fault
from tests.proxy.routing.requests import pick, selected, table

FAULT = "envoy.filters.http.fault"
HTTP_FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"


def http_fault(**spec: Any) -> dict[str, Any]:
    return {FAULT: {"@type": HTTP_FAULT, **spec}}


def percent(numerator: int, denominator: str = "HUNDRED") -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator}


def faults(
    route: dict[str, Any] | None = None, vhost: dict[str, Any] | None = None
) -> list[Fault | None]:
    """The fault of route "plain" (no own config) and route "own" (route-level config)."""
    routes = [
        {"name": "own", "match": {"path": "/own"}, "route": {"cluster": "a"}},
        {"name": "plain", "match": {"prefix": "/"}, "route": {"cluster": "a"}},
    ]
    if route is not None:
        routes[0]["typed_per_filter_config"] = route
    vh: dict[str, Any] = {"name": "vh", "domains": ["*"], "routes": routes}
    if vhost is not None:
        vh["typed_per_filter_config"] = vhost
    t = table({"name": "rc", "virtual_hosts": [vh]})
    assert pick(t, "/own") == "own"
    return [selected(t, "/own").fault, selected(t, "/x").fault]


def test_route_config_wins_over_the_virtual_hosts() -> None:
    own, plain = faults(
        route=http_fault(abort={"http_status": 503, "percentage": percent(100)}),
        vhost=http_fault(delay={"fixed_delay": "2s", "percentage": percent(100)}),
    )
    assert own == Fault(None, 0.0, 503, None, 1.0)
    assert plain == Fault(2.0, 1.0, None, None, 0.0)
    assert faults() == [None, None]


def test_filter_config_wrapper_is_unwrapped() -> None:
    wrapped = {
        FAULT: {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            "config": {"@type": HTTP_FAULT, "abort": {"http_status": 418, "percentage": {}}},
        }
    }
    own, _ = faults(route=wrapped)
    assert own is not None and own.abort_status == 418 and own.abort_fraction == 0.0


@pytest.mark.parametrize(
    ("pct", "fraction"),
    [
        (percent(50), 0.5),
        (percent(1, "TEN_THOUSAND"), 0.0001),
        (percent(250_000, "MILLION"), 0.25),
        (percent(150), 1.0),  # above the denominator: always
        ({}, 0.0),  # unset: never
    ],
)
def test_fractional_percentages(pct: dict[str, Any], fraction: float) -> None:
    own, _ = faults(route=http_fault(delay={"fixed_delay": "1s", "percentage": pct}))
    assert own is not None and own.delay_fraction == pytest.approx(fraction)


def test_decisions_fire_at_their_rates_independently() -> None:
    own, _ = faults(
        route=http_fault(
            delay={"fixed_delay": "0.2s", "percentage": percent(30)},
            abort={"http_status": 503, "percentage": percent(10)},
        )
    )
    assert own is not None
    rng = random.Random(11)
    n = 20_000
    decisions = [own.decide(rng.random(), rng.random()) for _ in range(n)]
    delays = sum(1 for d, _ in decisions if d == 0.2)
    aborts = sum(1 for _, a in decisions if a == 503)
    both = sum(1 for d, a in decisions if d is not None and a is not None)
    assert abs(delays / n - 0.3) < 0.015
    assert abs(aborts / n - 0.1) < 0.01
    assert abs(both / n - 0.03) < 0.006  # independent: 30% x 10%
    assert all(d in (None, 0.2) and a in (None, 503) for d, a in decisions)


def test_grpc_abort_answers_200_with_the_grpc_status() -> None:
    own, _ = faults(route=http_fault(abort={"grpc_status": 14, "percentage": percent(100)}))
    assert own is not None and own.abort_grpc_status == 14
    assert own.decide(0.5, 0.5) == (None, 200)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"delay": {"header_delay": {}}}, "delay"),
        ({"abort": {"header_abort": {}}}, "abort"),
        ({"abort": {"http_status": 700}}, "http_status"),
        ({"headers": [{"name": "x"}]}, "headers"),
        ({"upstream_cluster": "c"}, "upstream_cluster"),
    ],
)
def test_unsupported_faults_are_rejected(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigRejected, match=f"route 0.typed_per_filter_config.*{field}"):
        faults(route=http_fault(**spec))
