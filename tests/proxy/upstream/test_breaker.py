"""Circuit breakers: each limit, its overflow counter, release, gauges, live limit changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gossamer.proxy.upstream import ClusterConfig, Thresholds
from gossamer.proxy.upstream.breaker import CircuitBreaker
from tests.proxy.upstream.fixtures import backend, endpoint_set, group, hosts


def breaker(**limits: int) -> CircuitBreaker:
    b = backend(endpoint_set(group(hosts(1))), thresholds=Thresholds(**limits))
    return b.breaker


@pytest.mark.parametrize(
    ("limit", "acquire", "release", "overflow"),
    [
        ("max_requests", "try_request", "end_request", "upstream_rq_pending_overflow"),
        ("max_pending_requests", "try_pending", "end_pending", "upstream_rq_pending_overflow"),
        ("max_connections", "try_connection", "end_connection", "upstream_cx_overflow"),
        ("max_retries", "try_retry", "end_retry", "upstream_rq_retry_overflow"),
    ],
)
def test_each_limit_opens_at_its_threshold_and_counts_overflow(
    limit: str, acquire: str, release: str, overflow: str
) -> None:
    cb = breaker(**{limit: 2})
    take: Callable[[], bool] = getattr(cb, acquire)
    give: Callable[[], None] = getattr(cb, release)
    assert take() and take()
    assert not take() and not take()
    assert cb.stats.counter(overflow) == 2
    give()
    assert take()
    assert cb.stats.counter(overflow) == 2
    others = {"max_requests", "max_pending_requests", "max_connections", "max_retries"} - {limit}
    for other in others:  # limits are independent
        assert Thresholds().__getattribute__(other) > 2


def test_envoy_defaults_1024_and_3_retries() -> None:
    cb = breaker()
    assert all(cb.try_request() for _ in range(1024))
    assert not cb.try_request()
    assert [cb.try_retry() for _ in range(4)] == [True, True, True, False]
    assert cb.stats.counter("upstream_rq_retry") == 3
    assert cb.stats.counter("upstream_rq_retry_overflow") == 1


def test_gauges_show_remaining_and_open() -> None:
    cb = breaker(max_requests=2, max_connections=5)
    cb.try_request()
    cb.try_connection()
    assert cb.remaining()["remaining_rq"] == 1
    assert cb.remaining()["remaining_cx"] == 4
    assert cb.open()["rq_open"] == 0
    cb.try_request()
    assert cb.open()["rq_open"] == 1
    assert cb.stats.gauges()["upstream_rq_active"] == 2
    assert "rq=2/2" in repr(cb)


def test_reconfigure_changes_limits_and_keeps_what_is_in_flight() -> None:
    b = backend(endpoint_set(group(hosts(1))), thresholds=Thresholds(max_requests=4))
    for _ in range(3):
        assert b.breaker.try_request()
    b.reconfigure(ClusterConfig("web", thresholds=Thresholds(max_requests=2)), b.endpoints)
    assert not b.breaker.try_request()  # 3 in flight, new limit 2
    b.breaker.end_request()
    b.breaker.end_request()
    assert b.breaker.try_request()
    assert b.stats.counter("upstream_rq_pending_overflow") == 1
