"""Prometheus text exposition, parsed back by a strict parser written from the format spec."""

from __future__ import annotations

import math

import pytest

from gossamer.telemetry.prometheus import Counter, Gauge, Histogram, render
from tests.telemetry.prometheus_text import parse


def test_counters_sum_per_label_set_and_render_as_integers() -> None:
    rq = Counter("envoy_cluster_upstream_rq", "Requests by response code")
    rq.add({"envoy_response_code": "200", "envoy_cluster_name": "a"}, 3)
    rq.add({"envoy_response_code": "200", "envoy_cluster_name": "a"}, 4)
    rq.add({"envoy_response_code": "503", "envoy_cluster_name": "a"}, 1)
    text = render([rq])
    parsed = parse(text)
    assert parsed.types == {"envoy_cluster_upstream_rq": "counter"}
    assert (
        parsed.value("envoy_cluster_upstream_rq", envoy_response_code="200", envoy_cluster_name="a")
        == 7
    )
    assert 'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="a"} 7\n' in text


def test_label_values_and_help_are_escaped() -> None:
    nasty = 'outbound|9080||a"b\\c\nd'
    g = Gauge("envoy_cluster_membership_healthy", "Healthy hosts\nper cluster \\ now")
    g.set({"envoy_cluster_name": nasty}, 2)
    g.set({"envoy_cluster_name": nasty}, 3)
    parsed = parse(render([g]))
    assert parsed.helps["envoy_cluster_membership_healthy"] == "Healthy hosts\nper cluster \\ now"
    assert parsed.value("envoy_cluster_membership_healthy", envoy_cluster_name=nasty) == 3


def test_histogram_buckets_are_cumulative_and_end_with_inf_equal_to_count() -> None:
    h = Histogram("envoy_cluster_upstream_rq_time", "Latency ms", bounds=(0.5, 1, 5, 10))
    labels = {"envoy_cluster_name": "c"}
    for ms in (0.2, 0.7, 3, 3, 50):
        h.observe(labels, ms)
    h.add_counts(labels, [1, 0, 0, 0, 2], 200.0)  # a worker's own buckets
    parsed = parse(render([h]))
    bucket = "envoy_cluster_upstream_rq_time_bucket"
    got = [
        parsed.value(bucket, envoy_cluster_name="c", le=le)
        for le in ("0.5", "1", "5", "10", "+Inf")
    ]
    assert got == [2, 3, 5, 5, 8]
    assert parsed.value("envoy_cluster_upstream_rq_time_count", envoy_cluster_name="c") == 8
    assert parsed.value("envoy_cluster_upstream_rq_time_sum", envoy_cluster_name="c") == (
        pytest.approx(256.9)
    )


def test_several_families_render_in_order_and_empty_ones_are_left_out() -> None:
    a = Counter("a_total", "A")
    b = Counter("b", "B (empty)")
    c = Gauge("c", "C")
    a.add({}, 1)
    c.set({}, 0.25)
    text = render([a, b, c])
    parsed = parse(text)
    assert list(parsed.types) == ["a_total", "c"]
    assert parsed.value("c") == 0.25
    assert render([b]) == ""


@pytest.mark.parametrize("name", ["1abc", "a-b", "a b", ""])
def test_bad_metric_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="metric name"):
        Counter(name, "x")


@pytest.mark.parametrize("label", ["__name", "a-b", "1x"])
def test_bad_label_names_are_refused(label: str) -> None:
    with pytest.raises(ValueError, match="label name"):
        Counter("ok", "x").add({label: "v"}, 1)


def test_histogram_bounds_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        Histogram("h", "x", bounds=(5, 1))
    with pytest.raises(ValueError, match="ascending"):
        Histogram("h", "x", bounds=(1, math.inf))
