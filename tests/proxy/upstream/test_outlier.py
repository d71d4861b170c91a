"""Outlier detection on a fake clock: ejection, return, growing ejection time, limits, kinds."""

from __future__ import annotations

from gossamer.proxy.upstream import Backend, Endpoint
from gossamer.proxy.upstream.cluster import OutlierConfig
from tests.proxy.upstream.fixtures import (
    FakeClock,
    backend,
    ejecting_backend,
    endpoint_set,
    group,
    hosts,
    picks,
    respond,
)

INTERVAL, BASE = 10.0, 30.0


def setup(n: int = 2, **outlier: object) -> tuple[Backend, FakeClock, tuple[Endpoint, ...]]:
    clock = FakeClock(1000.0)
    eps = hosts(n)
    b = ejecting_backend(
        eps,
        clock,
        interval=INTERVAL,
        base_ejection_time=BASE,
        **outlier,  # type: ignore[arg-type]
    )
    return b, clock, eps


def ejected(b: Backend) -> set[str]:
    return {h.address.split(":")[0] for h in b.hosts() if h.ejected}


def test_five_consecutive_5xx_eject_the_host() -> None:
    b, _, (a, _c) = setup()
    respond(b, a, 500, 4)
    assert ejected(b) == set()
    respond(b, a, 503)
    assert ejected(b) == {"10.0.0.1"}
    assert set(picks(b, 20)) == {"10.0.0.2"}
    assert b.stats.counter("outlier_detection.ejections_enforced_total") == 1
    assert b.stats.counter("outlier_detection.ejections_enforced_consecutive_5xx") == 1
    assert b.hosts()[0].health_text == "/failed_outlier_check"


def test_a_success_resets_the_consecutive_count() -> None:
    b, _, (a, _c) = setup()
    respond(b, a, 500, 4)
    respond(b, a, 200)
    respond(b, a, 500, 4)
    assert ejected(b) == set()


def test_host_returns_at_the_first_sweep_after_base_ejection_time() -> None:
    b, clock, (a, _c) = setup()
    clock.advance(3)  # t=1003; sweeps run at 1010, 1020, 1030, 1040, ...
    respond(b, a, 500, 5)
    clock.now = 1039.9
    assert "10.0.0.1" not in picks(b, 10)  # the 1030 sweep saw 27 s < 30 s
    clock.now = 1040.0
    assert "10.0.0.1" in picks(b, 10)
    assert ejected(b) == set()
    assert b.stats.gauges()["outlier_detection.ejections_active"] == 0


def test_ejection_time_grows_with_each_ejection_in_a_row() -> None:
    b, clock, (a, _c) = setup()
    respond(b, a, 500, 5)  # t=1000, ejected for 30 s: back at sweep 1030
    clock.now = 1030.0
    b.pick(None)
    assert ejected(b) == set()
    respond(b, a, 500, 5)  # second time in a row: 60 s, back at sweep 1090
    clock.now = 1089.0
    b.pick(None)
    assert ejected(b) == {"10.0.0.1"}
    clock.now = 1090.0
    b.pick(None)
    assert ejected(b) == set()


def test_multiplier_decays_while_the_host_stays_healthy() -> None:
    b, clock, (a, _c) = setup()
    respond(b, a, 500, 5)
    clock.now = 1030.0
    respond(b, a, 500, 5)  # multiplier 2
    clock.now = 1090.0
    b.pick(None)  # back; healthy sweeps at 1100 and 1110 take the multiplier back to 0
    clock.now = 1110.0
    b.pick(None)
    respond(b, a, 500, 5)  # at 1110: ejected for 30 s again, back at sweep 1140
    clock.now = 1140.0
    b.pick(None)
    assert ejected(b) == set()


def test_ejection_time_is_capped_at_max_ejection_time() -> None:
    b, clock, (a, _c) = setup(max_ejection_time=40.0)
    for _ in range(4):
        respond(b, a, 500, 5)
        start = clock.now
        while ejected(b):
            clock.advance(INTERVAL)
            b.pick(None)
        assert clock.now - start <= 40.0 + INTERVAL


def test_max_ejection_percent_limits_how_many_hosts_are_out() -> None:
    clock = FakeClock()
    eps = hosts(10)
    b = backend(
        endpoint_set(group(eps)), clock=clock, outlier=OutlierConfig(max_ejection_percent=10)
    )
    respond(b, eps[0], 500, 5)
    respond(b, eps[1], 500, 5)
    assert ejected(b) == {"10.0.0.1"}
    assert b.stats.counter("outlier_detection.ejections_overflow") == 1
    assert b.stats.counter("outlier_detection.ejections_detected_consecutive_5xx") == 2


def test_few_hosts_and_ten_percent_eject_nothing_unless_always_eject_one_host() -> None:
    b, _, (a, _b, _c) = setup(3)
    strict = backend(b.endpoints, clock=FakeClock(), outlier=OutlierConfig(max_ejection_percent=10))
    respond(strict, a, 500, 5)
    assert ejected(strict) == set()
    one = backend(
        b.endpoints,
        clock=FakeClock(),
        outlier=OutlierConfig(max_ejection_percent=10, always_eject_one_host=True),
    )
    respond(one, a, 500, 5)
    respond(one, _b, 500, 5)
    assert ejected(one) == {"10.0.0.1"}


def test_gateway_failures_count_only_502_503_504_and_need_enforcing() -> None:
    b, _, (a, _c) = setup(
        consecutive_5xx=100,
        consecutive_gateway_failure=3,
        enforcing_consecutive_gateway_failure=100,
    )
    respond(b, a, 502, 2)
    respond(b, a, 500)  # a 5xx that is not a gateway error breaks the run
    respond(b, a, 504, 2)
    assert ejected(b) == set()
    respond(b, a, 503)
    assert ejected(b) == {"10.0.0.1"}
    assert b.stats.counter("outlier_detection.ejections_enforced_consecutive_gateway_failure") == 1
    off, _, (x, _y) = setup(consecutive_5xx=100, consecutive_gateway_failure=3)  # enforcing 0
    respond(off, x, 502, 3)
    assert ejected(off) == set()
    assert (
        off.stats.counter("outlier_detection.ejections_detected_consecutive_gateway_failure") == 1
    )


def test_local_origin_failures_count_as_5xx_without_the_split() -> None:
    b, _, (a, _c) = setup()
    respond(b, a, None, 5, reset="connect-failure")
    assert ejected(b) == {"10.0.0.1"}
    assert b.stats.counter("upstream_cx_connect_fail") == 5


def test_split_local_origin_errors_have_their_own_threshold() -> None:
    b, _, (a, _c) = setup(
        split_external_local_origin_errors=True, consecutive_local_origin_failure=2
    )
    respond(b, a, 500, 4)
    respond(b, a, None, 1, reset="reset")
    respond(b, a, 200)  # the connection worked: the local-origin run is broken
    respond(b, a, None, 1, reset="timeout")
    assert ejected(b) == set()
    respond(b, a, None, 1, reset="timeout")
    assert ejected(b) == {"10.0.0.1"}
    assert (
        b.stats.counter("outlier_detection.ejections_enforced_consecutive_local_origin_failure")
        == 1
    )


def test_ejection_with_two_hosts_does_not_panic_at_fifty_percent() -> None:
    b, _, (a, _c) = setup()
    respond(b, a, 500, 5)
    assert set(picks(b, 10)) == {"10.0.0.2"}
    assert b.stats.lb_healthy_panic == 0


def test_all_hosts_ejected_with_panic_threshold_routes_to_all() -> None:
    b, _, eps = setup()
    for ep in eps:
        respond(b, ep, 500, 5)
    assert ejected(b) == {"10.0.0.1", "10.0.0.2"}
    assert set(picks(b, 20)) == {"10.0.0.1", "10.0.0.2"}  # panic: 0 % < 50 %


def test_switching_outlier_detection_off_returns_ejected_hosts() -> None:
    b, _, (a, _c) = setup()
    respond(b, a, 500, 5)
    assert ejected(b) == {"10.0.0.1"}
    b.reconfigure(b.config.__class__("web", lb="ROUND_ROBIN"), b.endpoints)
    assert ejected(b) == set()
    assert set(picks(b, 10)) == {"10.0.0.1", "10.0.0.2"}
    assert b.stats.gauges()["outlier_detection.ejections_active"] == 0
