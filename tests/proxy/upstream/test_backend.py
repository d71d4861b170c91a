"""Backend: health, panic mode, priority failover, locality weights, reconfigure keeping state."""

from __future__ import annotations

import pytest

from gossamer.proxy.upstream import Endpoint
from tests.proxy.upstream.fixtures import (
    FakeClock,
    backend,
    ejecting_backend,
    endpoint_set,
    group,
    hosts,
    picks,
    respond,
    shares,
)


def sick(ep: Endpoint) -> Endpoint:
    return Endpoint(ep.host, ep.port, ep.weight, healthy=False)


def test_unhealthy_endpoints_are_never_picked() -> None:
    a, b_, c = hosts(3)
    b = backend(endpoint_set(group((a, sick(b_), c))), lb="ROUND_ROBIN")
    assert set(picks(b, 300)) == {"10.0.0.1", "10.0.0.3"}
    assert b.stats.lb_healthy_panic == 0


def test_panic_below_threshold_balances_over_all_hosts() -> None:
    eps = hosts(4)
    b = backend(endpoint_set(group((eps[0], *map(sick, eps[1:])))), lb="ROUND_ROBIN")
    assert sorted(picks(b, 400).values()) == [100] * 4  # 25 % healthy < 50 %: panic
    assert b.stats.lb_healthy_panic == 400


def test_panic_threshold_zero_disables_panic_mode() -> None:
    eps = hosts(4)
    b = backend(
        endpoint_set(group((eps[0], *map(sick, eps[1:])))), lb="ROUND_ROBIN", panic_threshold=0.0
    )
    assert set(picks(b, 100)) == {"10.0.0.1"}
    none = backend(endpoint_set(group(map(sick, eps))), panic_threshold=0.0)
    assert none.pick(None) is None
    assert none.stats.upstream_cx_none_healthy == 1


def test_at_threshold_is_not_panic() -> None:
    eps = hosts(4)
    b = backend(endpoint_set(group((*eps[:2], *map(sick, eps[2:])))), lb="ROUND_ROBIN")
    assert set(picks(b, 100)) == {"10.0.0.1", "10.0.0.2"}  # 50 % is not below 50 %


def test_empty_cluster_has_no_host() -> None:
    b = backend(endpoint_set())
    assert b.pick(None) is None
    assert b.pick(5) is None


def test_priority_one_serves_only_when_priority_zero_has_no_healthy_host() -> None:
    primary, standby = hosts(2), hosts(2, base=5)
    b = backend(
        endpoint_set(group(primary, priority=0), group(standby, priority=1)), lb="ROUND_ROBIN"
    )
    assert set(picks(b, 50)) == {"10.0.0.1", "10.0.0.2"}
    b.reconfigure(
        b.config,
        endpoint_set(group(map(sick, primary), priority=0), group(standby, priority=1)),
    )
    assert set(picks(b, 50)) == {"10.0.0.5", "10.0.0.6"}
    assert b.stats.lb_healthy_panic == 0


def test_locality_weights_choose_the_locality_then_the_host() -> None:
    east, west = hosts(3), hosts(1, base=7)
    eps = endpoint_set(group(east, "us/east", 1), group(west, "us/west", 3))
    b = backend(eps, lb="ROUND_ROBIN", locality_weighted=True)
    got = shares(picks(b, 4000))
    assert got["10.0.0.7"] == pytest.approx(0.75, abs=0.01)
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert got[host] == pytest.approx(0.25 / 3, abs=0.01)


def test_locality_weights_are_ignored_without_locality_weighted_lb_config() -> None:
    """As Envoy: weights on localities count only with common_lb_config.locality_weighted_lb_config
    (the control plane sets locality weights for gRPC clients, not for this)."""
    east, west = hosts(3), hosts(1, base=7)
    b = backend(
        endpoint_set(group(east, "us/east", 1), group(west, "us/west", 3)), lb="ROUND_ROBIN"
    )
    assert sorted(picks(b, 400).values()) == [100] * 4


def test_locality_effective_weight_falls_with_its_health() -> None:
    east, west = hosts(2), hosts(2, base=7)
    eps = endpoint_set(group(east, "east", 1), group((west[0], sick(west[1])), "west", 1))
    b = backend(eps, lb="LEAST_REQUEST", locality_weighted=True, panic_threshold=0.0)
    got = shares(picks(b, 6000))
    # west: 1 x min(1, 1.4 x 1/2) = 0.7 against east's 1.
    assert got["10.0.0.7"] == pytest.approx(0.7 / 1.7, abs=0.02)
    assert "10.0.0.8" not in got


def test_locality_without_weight_gets_no_traffic_when_weighting_is_on() -> None:
    eps = endpoint_set(group(hosts(1), "a", 2), group(hosts(1, base=5), "b", None))
    b = backend(eps, lb="RANDOM", locality_weighted=True)
    assert set(picks(b, 200)) == {"10.0.0.1"}


def test_reconfigure_keeps_active_requests_for_least_request() -> None:
    eps = hosts(2)
    b = backend(endpoint_set(group(eps)), lb="LEAST_REQUEST")
    for _ in range(20):
        b.started(eps[0])
    newcomer = hosts(1, base=9)[0]
    b.reconfigure(b.config, endpoint_set(group((*hosts(2), newcomer))))
    got = shares(picks(b, 3000))
    assert got["10.0.0.1"] == pytest.approx(1 / 9, abs=0.03)  # still busy after the push
    assert b.hosts()[0].rq_active == 20
    b.finished(eps[0], 200, 0.01)
    assert b.hosts()[0].rq_active == 19


def test_reconfigure_with_the_same_endpoints_keeps_the_round_robin_position() -> None:
    b = backend(endpoint_set(group(hosts(3))), lb="ROUND_ROBIN")
    first = [b.pick(None) for _ in range(2)]
    b.reconfigure(b.config, endpoint_set(group(hosts(3))))  # equal, new objects
    third = b.pick(None)
    assert third is not None and third not in first


def test_reconfigure_changing_weights_rebuilds_the_balancer() -> None:
    eps = hosts(2)
    b = backend(endpoint_set(group(eps)), lb="ROUND_ROBIN")
    heavier = Endpoint(eps[1].host, eps[1].port, weight=3)
    b.reconfigure(b.config, endpoint_set(group((eps[0], heavier))))
    assert shares(picks(b, 4000))["10.0.0.2"] == pytest.approx(0.75, abs=0.01)
    assert b.hosts()[1].weight == 3


def test_reconfigure_keeps_counters_and_ejections_and_drops_removed_hosts() -> None:
    clock = FakeClock()
    eps = hosts(3)
    b = ejecting_backend(eps, clock)
    respond(b, eps[1], 503, times=5, latency=0.002)
    assert b.stats.counter("upstream_rq_503") == 5
    b.reconfigure(b.config, endpoint_set(group((*eps, *hosts(1, base=4)))))
    assert b.stats.counter("upstream_rq_503") == 5
    status = {h.address: h for h in b.hosts()}
    assert status["10.0.0.2:8080"].ejected and status["10.0.0.2:8080"].rq_error == 5
    assert "10.0.0.2" not in picks(b, 100)
    b.reconfigure(b.config, endpoint_set(group((eps[0], eps[2]))))
    assert b.stats.gauges()["outlier_detection.ejections_active"] == 0
    b.finished(eps[1], 200, 0.001)  # a request that was in flight to the removed host
    assert b.stats.counter("upstream_rq_200") == 1


def test_static_endpoints_come_from_the_cluster_config() -> None:
    from gossamer.proxy.upstream import Backend, ClusterConfig

    static = endpoint_set(group(hosts(1)))
    b = Backend(ClusterConfig("inbound", kind="STATIC", static=static))
    assert b.pick(None) == hosts(1)[0]
    assert repr(b) == "<Backend inbound endpoints=1 ejected=0>"


def test_host_status_flags_for_clusters_page() -> None:
    eps = hosts(2)
    b = backend(endpoint_set(group((eps[0], sick(eps[1])), "us/east/a")))
    ok, bad = b.hosts()
    assert (ok.health_text, bad.health_text) == ("healthy", "/failed_eds_health")
    assert ok.locality == "us/east/a" and ok.address == "10.0.0.1:8080"


def test_reconfigure_without_endpoints_keeps_the_eds_hosts() -> None:
    from gossamer.proxy.upstream import ClusterConfig, Thresholds

    b = backend(endpoint_set(group(hosts(2))), lb="ROUND_ROBIN")
    b.reconfigure(ClusterConfig("web", lb="ROUND_ROBIN", thresholds=Thresholds(max_requests=1)))
    assert set(picks(b, 10)) == {"10.0.0.1", "10.0.0.2"}
    assert b.breaker.limits.max_requests == 1


def test_a_host_back_from_ejection_gets_the_balancer_it_had() -> None:
    clock = FakeClock()
    eps = hosts(3)
    b = ejecting_backend(eps, clock, lb="MAGLEV")
    before = {key: b.pick(key) for key in range(0, 10**6, 997)}
    respond(b, eps[0], 500, times=5)
    assert eps[0] not in {b.pick(key) for key in before}
    clock.advance(30.0)
    assert {key: b.pick(key) for key in before} == before


def test_reconfigure_to_another_policy_takes_effect() -> None:
    b = backend(endpoint_set(group(hosts(4))), lb="ROUND_ROBIN")
    assert len(picks(b, 4, hash_key=42)) == 4  # round robin ignores the key
    b.reconfigure(b.config.__class__("web", lb="RING_HASH"), b.endpoints)
    assert len(picks(b, 50, hash_key=42)) == 1  # the same key now sticks to one host


def test_a_host_that_left_and_came_back_mid_request_never_goes_negative() -> None:
    eps = hosts(2)
    b = backend(endpoint_set(group(eps)), lb="LEAST_REQUEST")
    b.started(eps[0])
    b.reconfigure(b.config, endpoint_set(group(eps[1:])))
    b.reconfigure(b.config, endpoint_set(group(eps)))
    b.finished(eps[0], 200, 0.001)
    assert [h.rq_active for h in b.hosts()] == [0, 0]


def test_ring_hash_with_locality_weights_gives_each_locality_its_share_of_keys() -> None:
    east, west = hosts(3), hosts(1, base=7)
    eps = endpoint_set(group(east, "us/east", 1), group(west, "us/west", 3))
    b = backend(eps, lb="RING_HASH", locality_weighted=True)
    keys = [k * 0x9E3779B97F4A7C15 & (2**64 - 1) for k in range(4000)]
    owners = {k: b.pick(k) for k in keys}
    west_share = sum(1 for ep in owners.values() if ep is not None and ep.host == "10.0.0.7")
    assert west_share / len(keys) == pytest.approx(0.75, abs=0.05)
