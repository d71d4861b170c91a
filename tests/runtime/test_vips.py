"""Service VIPs: stable per hostname, clusterIPs kept, collisions settled the same way every
time, always inside the service CIDR."""

from __future__ import annotations

import ipaddress

import pytest

from gossamer.runtime.vips import assign_vips

CIDR = "10.232.0.0/16"
BOOKINFO = [f"{n}.default.svc.cluster.local" for n in ("productpage", "details", "reviews")]


def test_adding_and_removing_other_services_does_not_move_a_vip() -> None:
    before = assign_vips(BOOKINFO, CIDR)
    more = assign_vips([*BOOKINFO, "ratings.default.svc.cluster.local", "x.ns.svc"], CIDR)
    fewer = assign_vips(BOOKINFO[:1], CIDR)
    assert {h: more[h] for h in BOOKINFO} == before
    assert fewer == {BOOKINFO[0]: before[BOOKINFO[0]]}
    assert len(set(before.values())) == len(BOOKINFO)


def test_the_order_names_arrive_in_does_not_matter() -> None:
    assert assign_vips(BOOKINFO, CIDR) == assign_vips(reversed(BOOKINFO), CIDR)


def test_a_fixed_cluster_ip_is_kept_and_never_handed_to_another_name() -> None:
    fixed = {"details.default.svc.cluster.local": "10.232.0.50"}
    vips = assign_vips(BOOKINFO, CIDR, fixed)
    assert vips["details.default.svc.cluster.local"] == "10.232.0.50"
    assert list(vips.values()).count("10.232.0.50") == 1


def test_a_collision_probes_forward_deterministically() -> None:
    small = "10.9.0.0/28"  # slots .10 to .14
    alone = assign_vips(["a"], small)["a"]
    squatter = {"other": alone}  # someone holds a's hashed slot
    moved = assign_vips(["a"], small, squatter)["a"]
    offset = int(ipaddress.IPv4Address(alone)) - int(ipaddress.IPv4Address("10.9.0.10"))
    expected = ipaddress.IPv4Address("10.9.0.10") + (offset + 1) % 5
    assert moved == str(expected)
    assert assign_vips(["a"], small, squatter)["a"] == moved  # same answer every time


def test_names_sharing_a_slot_are_settled_in_hostname_order() -> None:
    small = "10.9.0.0/28"
    names = [f"svc{i}" for i in range(5)]
    first = assign_vips(names, small)
    assert first == assign_vips(list(reversed(names)), small)
    assert len(set(first.values())) == 5  # every slot used once


def test_addresses_stay_inside_the_cidr_from_dot_10_and_never_the_broadcast() -> None:
    network = ipaddress.IPv4Network("10.9.0.0/27")
    names = [f"s{i}" for i in range(network.num_addresses - 11)]
    vips = assign_vips(names, str(network))
    lowest = network.network_address + 10
    for address in map(ipaddress.IPv4Address, vips.values()):
        assert lowest <= address < network.broadcast_address


def test_a_full_cidr_raises_naming_it() -> None:
    with pytest.raises(ValueError, match=r"10\.9\.0\.0/28 is full"):
        assign_vips([f"s{i}" for i in range(6)], "10.9.0.0/28")
    with pytest.raises(ValueError, match="too small"):
        assign_vips(["a"], "10.9.0.0/29")
