"""ClusterStats: Envoy counter names from real request outcomes, Istio's duration histogram."""

from __future__ import annotations

from gossamer.proxy.upstream import ISTIO_BUCKETS_MS, LatencyHistogram
from tests.proxy.upstream.fixtures import backend, endpoint_set, group, hosts


def test_responses_count_by_code_and_class() -> None:
    eps = hosts(1)
    b = backend(endpoint_set(group(eps)))
    for status in (200, 200, 204, 404, 503):
        b.started(eps[0])
        b.finished(eps[0], status, 0.003)
    counters = b.stats.counters()
    assert counters["upstream_rq_total"] == 5
    assert counters["upstream_rq_completed"] == 5
    assert counters["upstream_rq_200"] == 2
    assert counters["upstream_rq_2xx"] == 3
    assert counters["upstream_rq_4xx"] == 1
    assert counters["upstream_rq_503"] == 1
    assert counters["upstream_rq_5xx"] == 1
    host = b.hosts()[0]
    assert (host.rq_total, host.rq_success, host.rq_error, host.rq_active) == (5, 4, 1, 0)


def test_resets_are_charged_like_envoy_local_replies() -> None:
    eps = hosts(1)
    b = backend(endpoint_set(group(eps)))
    for reason in ("timeout", "connect-failure", "reset"):
        b.started(eps[0])
        b.finished(eps[0], None, 0.5, reset=reason)
    assert b.stats.counter("upstream_rq_timeout") == 1
    assert b.stats.counter("upstream_rq_504") == 1
    assert b.stats.counter("upstream_cx_connect_fail") == 1
    assert b.stats.counter("upstream_rq_rx_reset") == 1
    assert b.stats.counter("upstream_rq_503") == 2
    assert b.hosts()[0].rq_error == 3


def test_latency_histogram_uses_istio_buckets_per_response_class() -> None:
    eps = hosts(1)
    b = backend(endpoint_set(group(eps)))
    for status, seconds in ((200, 0.0004), (200, 0.003), (200, 0.003), (500, 0.2), (500, 9999.0)):
        b.started(eps[0])
        b.finished(eps[0], status, seconds)
    ok = dict(b.stats.latency[2].cumulative())
    assert ok[0.5] == 1 and ok[1] == 1 and ok[5] == 3 and ok[float("inf")] == 3
    assert b.stats.latency[2].count == 3
    assert abs(b.stats.latency[2].sum - 6.4) < 1e-9
    failed = dict(b.stats.latency[5].cumulative())
    assert failed[250] == 1 and failed[3600000] == 1 and failed[float("inf")] == 2


def test_bucket_bounds_are_inclusive_upper_bounds() -> None:
    h = LatencyHistogram()
    h.record(5.0)
    assert dict(h.cumulative())[5] == 1
    assert ISTIO_BUCKETS_MS[0] == 0.5 and ISTIO_BUCKETS_MS[-1] == 3600000
    assert len(h.cumulative()) == len(ISTIO_BUCKETS_MS) + 1


def test_counters_survive_reconfigure_and_render_with_envoy_names() -> None:
    eps = hosts(2)
    b = backend(endpoint_set(group(eps)))
    b.started(eps[1])
    b.finished(eps[1], 201, 0.01)
    b.reconfigure(b.config, endpoint_set(group(eps[:1])))
    names = b.stats.counters()
    assert names["upstream_rq_201"] == 1
    assert "outlier_detection.ejections_enforced_total" in names
    assert "upstream_rq_pending_overflow" in names
    assert repr(b.stats) == "<ClusterStats rq_total=1 active=0 5xx=0>"
