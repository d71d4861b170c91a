"""Retry policies: which outcomes retry, defaults, back-off bounds (Envoy's jittered doubling)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import Forward, RetryPolicy
from tests.proxy.routing.requests import one_vhost, selected


def policy(**retry: Any) -> RetryPolicy:
    route = {
        "name": "r",
        "match": {"prefix": "/"},
        "route": {"cluster": "a", "retry_policy": retry},
    }
    action = selected(one_vhost(route)).action
    assert isinstance(action, Forward) and action.retry is not None
    return action.retry


def test_defaults() -> None:
    p = policy(retry_on="5xx")
    assert p.num_retries == 1  # Envoy's default when a policy is present
    assert p.per_try_timeout is None
    assert not p.avoid_previous_hosts
    assert (p.base_interval, p.max_interval) == (0.025, 0.25)


def test_istio_default_policy_fields() -> None:
    p = policy(
        retry_on="connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        num_retries=2,
        per_try_timeout="0.5s",
        retriable_status_codes=[503],
        retry_host_predicate=[
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/"
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        host_selection_retry_max_attempts=5,
        retry_back_off={"base_interval": "0.1s"},
    )
    assert p.num_retries == 2 and p.per_try_timeout == 0.5
    assert p.retry_on == frozenset(
        {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}
    )
    assert p.retriable_status_codes == frozenset({503})
    assert p.avoid_previous_hosts and p.host_selection_max_attempts == 5
    assert (p.base_interval, p.max_interval) == (0.1, 1.0)  # max defaults to 10x base
    assert p.retriable_after(503, None)
    assert not p.retriable_after(502, None)
    assert p.retriable_after(None, "connect-failure")
    assert p.retriable_after(None, "refused-stream")
    assert not p.retriable_after(None, "reset")
    assert not p.retriable_after(None, "timeout")


OUTCOMES: list[tuple[int | None, str | None]] = [
    (500, None),
    (502, None),
    (503, None),
    (504, None),
    (409, None),
    (404, None),
    (200, None),
    (None, "connect-failure"),
    (None, "reset"),
    (None, "refused-stream"),
    (None, "timeout"),
]


@pytest.mark.parametrize(
    ("retry_on", "retried"),
    [
        ("5xx", {500, 502, 503, 504, "connect-failure", "reset", "refused-stream", "timeout"}),
        ("gateway-error", {502, 503, 504, "connect-failure", "reset", "refused-stream", "timeout"}),
        ("reset", {"connect-failure", "reset", "refused-stream", "timeout"}),
        ("connect-failure", {"connect-failure"}),
        ("reset-before-request", {"connect-failure"}),
        ("refused-stream", {"refused-stream"}),
        ("retriable-4xx", {409}),
        ("retriable-status-codes", {404}),
        ("retriable-headers", set()),
        ("unavailable", set()),  # gRPC status tokens are read from grpc-status by the caller
    ],
)
def test_what_each_retry_on_token_retries(retry_on: str, retried: set[int | str]) -> None:
    p = policy(retry_on=retry_on, retriable_status_codes=[404])
    got = {
        status if status is not None else reset
        for status, reset in OUTCOMES
        if p.retriable_after(status, reset)
    }
    assert got == retried


def test_retriable_status_codes_need_their_token() -> None:
    assert not policy(retry_on="5xx", retriable_status_codes=[404]).retriable_after(404, None)


def test_backoff_is_full_jitter_under_a_doubling_ceiling_capped_at_max() -> None:
    p = policy(retry_on="5xx")  # base 25 ms, max 250 ms
    ceilings = [0.025, 0.05, 0.1, 0.2, 0.25, 0.25]
    rng = random.Random(3)
    for attempt, ceiling in enumerate(ceilings, start=1):
        waits = [p.backoff(attempt, rng.random()) for _ in range(2000)]
        assert 0 <= min(waits) < ceiling * 0.1
        assert ceiling * 0.9 < max(waits) < ceiling
        assert abs(sum(waits) / len(waits) - ceiling / 2) < ceiling * 0.05
    assert p.backoff(1, 0.0) == 0.0
    assert p.backoff(3, 0.5) == 0.05


def test_backoff_respects_a_configured_max() -> None:
    p = policy(retry_on="5xx", retry_back_off={"base_interval": "0.1s", "max_interval": "0.15s"})
    assert p.backoff(1, 0.999) == 0.099
    assert p.backoff(2, 0.999) == 0.149  # 200 ms would exceed the max: capped at 150
    assert p.backoff(9, 0.999) == 0.149


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"retry_on": "5xx", "retry_back_off": {"base_interval": "0s"}}, "base_interval"),
        (
            {"retry_on": "5xx", "retry_back_off": {"base_interval": "1s", "max_interval": "0.5s"}},
            "max_interval",
        ),
        ({"retry_on": "5xx", "retry_host_predicate": [{"name": "other"}]}, "retry_host_predicate"),
    ],
)
def test_unusable_retry_policies_are_rejected(retry: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigRejected, match=f"route 0 route.retry_policy.*{field}"):
        policy(**retry)
