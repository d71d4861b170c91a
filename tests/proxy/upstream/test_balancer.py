"""Balancer distributions through Backend.pick: round robin, least request, random, and avoid."""

from __future__ import annotations

import pytest

from tests.proxy.upstream.fixtures import backend, endpoint_set, group, hosts, picks, shares


def test_round_robin_equal_weights_cycles_through_every_host() -> None:
    b = backend(endpoint_set(group(hosts(3))), lb="ROUND_ROBIN")
    order = [b.pick(None) for _ in range(6)]
    assert len({ep for ep in order[:3]}) == 3
    assert order[:3] == order[3:]
    assert sorted(picks(b, 3000).values()) == [1000, 1000, 1000]


def test_round_robin_weights_are_exact_over_a_cycle() -> None:
    a, b_, c = hosts(3)
    eps = (a, type(a)(b_.host, b_.port, weight=2), type(a)(c.host, c.port, weight=3))
    b = backend(endpoint_set(group(eps)), lb="ROUND_ROBIN")
    counts = picks(b, 6000)
    assert abs(counts["10.0.0.1"] - 1000) <= 2
    assert abs(counts["10.0.0.2"] - 2000) <= 2
    assert abs(counts["10.0.0.3"] - 3000) <= 2


def test_round_robin_weighted_interleaves_rather_than_bursts() -> None:
    light, heavy = hosts(2)
    eps = (light, type(light)(heavy.host, heavy.port, weight=3))
    b = backend(endpoint_set(group(eps)), lb="ROUND_ROBIN")
    seq = [ep.host for ep in (b.pick(None) for _ in range(40)) if ep is not None]
    text = "".join("H" if h == heavy.host else "L" for h in seq)
    assert text.count("L") == 10
    # EDF spreads the light host's turns: never a long burst of the heavy one (3 in a row, 4 when
    # float deadlines tie, as in Envoy's scheduler).
    assert max(len(run) for run in text.split("L")) <= 4


def test_least_request_idle_hosts_share_evenly() -> None:
    b = backend(endpoint_set(group(hosts(4))), lb="LEAST_REQUEST")
    for share in shares(picks(b, 20000)).values():
        assert share == pytest.approx(0.25, abs=0.02)


def test_least_request_prefers_idle_hosts_over_a_busy_one() -> None:
    eps = hosts(3)
    b = backend(endpoint_set(group(eps)), lb="LEAST_REQUEST")
    for _ in range(5):
        b.started(eps[0])
    got = shares(picks(b, 9000))
    # P2C: the busy host wins only when both random choices land on it: 1/9.
    assert got["10.0.0.1"] == pytest.approx(1 / 9, abs=0.02)
    assert got["10.0.0.2"] == pytest.approx(4 / 9, abs=0.03)


def test_least_request_under_held_load_keeps_active_requests_balanced() -> None:
    eps = hosts(4)
    b = backend(endpoint_set(group(eps)), lb="LEAST_REQUEST")
    held = []
    for _ in range(400):
        ep = b.pick(None)
        assert ep is not None
        b.started(ep)
        held.append(ep)
    active = [h.rq_active for h in b.hosts()]
    assert max(active) - min(active) <= 3  # round robin by chance would spread ±20


def test_least_request_unequal_weights_follow_weight_over_active_plus_one() -> None:
    light, heavy = hosts(2)
    heavy = type(heavy)(heavy.host, heavy.port, weight=4)
    b = backend(endpoint_set(group((light, heavy))), lb="LEAST_REQUEST")
    idle = shares(picks(b, 5000))
    assert idle["10.0.0.2"] == pytest.approx(0.8, abs=0.01)
    for _ in range(3):  # weight 4 / (3 + 1) = 1: now level with the light host
        b.started(heavy)
    busy = shares(picks(b, 5000))
    assert busy["10.0.0.2"] == pytest.approx(0.5, abs=0.02)


def test_random_is_uniform_and_like_envoy_ignores_weights() -> None:
    light, heavy = hosts(2)
    heavy = type(heavy)(heavy.host, heavy.port, weight=9)
    b = backend(endpoint_set(group((light, heavy))), lb="RANDOM")
    assert shares(picks(b, 20000))["10.0.0.1"] == pytest.approx(0.5, abs=0.02)


def test_same_seed_same_sequence() -> None:
    def sequence(seed: int) -> list[str]:
        b = backend(endpoint_set(group(hosts(5))), lb="RANDOM", seed=seed)
        return [ep.host for ep in (b.pick(None) for _ in range(50)) if ep is not None]

    assert sequence(3) == sequence(3)
    assert sequence(3) != sequence(4)


@pytest.mark.parametrize("lb", ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"])
def test_avoid_skips_previous_hosts_while_others_exist(lb: str) -> None:
    eps = hosts(3)
    b = backend(endpoint_set(group(eps)), lb=lb)
    for key in range(200):
        assert b.pick(key * 7919, avoid=(eps[0], eps[1])) == eps[2]
    everything = b.pick(1, avoid=eps)
    assert everything in eps  # nothing else to go to: a previous host rather than a 503
