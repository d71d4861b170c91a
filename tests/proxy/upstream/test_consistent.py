"""RING_HASH and MAGLEV: stickiness, spread, weights, disruption when a host leaves."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gossamer.proxy.upstream import Endpoint
from gossamer.proxy.upstream.consistent import Maglev, RingHash
from gossamer.proxy.upstream.hosts import HostState
from tests.proxy.upstream.fixtures import backend, endpoint_set, group, hosts, picks, shares

_KEYGEN = random.Random(11)
KEYS = [_KEYGEN.getrandbits(64) for _ in range(4000)]


def owners(b: object, keys: list[int]) -> dict[int, str]:
    out = {}
    for key in keys:
        ep = b.pick(key)  # type: ignore[attr-defined]
        assert ep is not None
        out[key] = ep.host
    return out


@pytest.mark.parametrize("lb", ["RING_HASH", "MAGLEV"])
def test_same_key_same_host_and_keys_spread_over_all_hosts(lb: str) -> None:
    b = backend(endpoint_set(group(hosts(5))), lb=lb)
    first = owners(b, KEYS)
    assert owners(b, KEYS) == first
    spread = shares(picks_from(first))
    assert set(spread) == {f"10.0.0.{i}" for i in range(1, 6)}
    tolerance = 0.07 if lb == "RING_HASH" else 0.03  # a 1024-entry ring is coarser than Maglev
    for share in spread.values():
        assert share == pytest.approx(0.2, abs=tolerance)


def picks_from(assignment: dict[int, str]) -> Counter[str]:
    return Counter(assignment.values())


def ring_owners(ring: RingHash) -> dict[int, str]:
    out = {}
    for key in KEYS:
        host = ring.pick(key, ())
        assert host is not None
        out[key] = host.endpoint.host
    return out


def test_ring_with_the_same_points_per_host_moves_only_the_removed_hosts_keys() -> None:
    states = [HostState(ep) for ep in hosts(5)]
    rand = random.Random(1).random
    five = ring_owners(RingHash(states, [1.0] * 5, rand, minimum_ring_size=1000))  # 200 each
    four = ring_owners(RingHash(states[:4], [1.0] * 4, rand, minimum_ring_size=800))  # 200 each
    moved = [k for k in KEYS if five[k] != four[k]]
    assert moved and all(five[k] == "10.0.0.5" for k in moved)
    assert len(moved) == sum(1 for k in KEYS if five[k] == "10.0.0.5")


def test_ring_with_the_same_points_per_host_gives_a_new_host_only_keys_it_takes() -> None:
    states = [HostState(ep) for ep in hosts(5)]
    rand = random.Random(1).random
    four = ring_owners(RingHash(states[:4], [1.0] * 4, rand, minimum_ring_size=800))
    five = ring_owners(RingHash(states, [1.0] * 5, rand, minimum_ring_size=1000))
    assert all(five[k] == "10.0.0.5" for k in KEYS if four[k] != five[k])


def remove_the_fifth_host(lb: str) -> tuple[float, dict[int, str]]:
    """Owners of KEYS before and after 10.0.0.5 leaves a five-host `lb` backend: the share of
    the other hosts' keys that stayed put, and the owners after."""
    eps = hosts(5)
    b = backend(endpoint_set(group(eps)), lb=lb)
    before = owners(b, KEYS)
    b.reconfigure(b.config, endpoint_set(group(eps[:4])))
    after = owners(b, KEYS)
    kept = [k for k in KEYS if before[k] != "10.0.0.5"]
    return sum(1 for k in kept if before[k] == after[k]) / len(kept), after


def test_ring_hash_backend_removing_a_host_keeps_most_other_keys() -> None:
    """Envoy rescales the ring to the lightest host (1024 entries: 205 per host for 5 hosts, 256
    for 4), so a few keys of remaining hosts move too; nothing like hash-mod-N's 80 %."""
    stayed, after = remove_the_fifth_host("RING_HASH")
    assert stayed > 0.8
    assert "10.0.0.5" not in after.values()


def test_maglev_removing_a_host_disrupts_few_other_keys() -> None:
    stayed, _ = remove_the_fifth_host("MAGLEV")
    assert stayed > 0.95


@pytest.mark.parametrize("lb", ["RING_HASH", "MAGLEV"])
def test_weights_scale_the_share_of_keys(lb: str) -> None:
    light, heavy = hosts(2)
    b = backend(endpoint_set(group((light, Endpoint(heavy.host, heavy.port, 3)))), lb=lb)
    share = shares(picks_from(owners(b, KEYS)))
    assert share["10.0.0.2"] == pytest.approx(0.75, abs=0.04)


def test_ring_size_honours_minimum_and_weights() -> None:
    states = [HostState(ep) for ep in hosts(3)]
    ring = RingHash(states, [1.0, 1.0, 2.0], random.Random(1).random, minimum_ring_size=1024)
    assert 1024 <= ring.size <= 1100
    small = RingHash(states, [1.0] * 3, random.Random(1).random, minimum_ring_size=6)
    assert small.size == 6


def test_maglev_table_shares_are_exact_to_one_slot_per_round() -> None:
    states = [HostState(ep) for ep in hosts(3)]
    table = Maglev(states, [1.0, 2.0, 1.0], random.Random(1).random, table_size=1009)
    counts = picks_from({k: (table.pick(k, ()) or states[0]).endpoint.host for k in range(1009)})
    assert counts["10.0.0.2"] == pytest.approx(1009 / 2, abs=2)
    assert counts["10.0.0.1"] == pytest.approx(1009 / 4, abs=2)


@pytest.mark.parametrize("lb", ["RING_HASH", "MAGLEV"])
def test_no_hash_key_means_a_random_host(lb: str) -> None:
    b = backend(endpoint_set(group(hosts(4))), lb=lb)
    for share in shares(picks(b, 8000)).values():
        assert share == pytest.approx(0.25, abs=0.07)


def test_unhealthy_host_leaves_the_ring_and_its_keys_move() -> None:
    eps = hosts(5)
    b = backend(endpoint_set(group(eps)), lb="RING_HASH", panic_threshold=0.0)
    before = owners(b, KEYS)
    sick = Endpoint(eps[2].host, eps[2].port, healthy=False)
    b.reconfigure(b.config, endpoint_set(group((*eps[:2], sick, *eps[3:]))))
    after = owners(b, KEYS)
    assert "10.0.0.3" not in after.values()
    kept = [k for k in KEYS if before[k] != "10.0.0.3"]
    assert sum(1 for k in kept if before[k] == after[k]) / len(kept) > 0.8
