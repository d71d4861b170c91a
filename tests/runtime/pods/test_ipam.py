"""Pod addresses: the next free one after the last given, never the one just freed."""

from __future__ import annotations

import pytest

from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.pods.ipam import PodIpam

ADDRESSING = PodAddressing()


def test_addresses_are_handed_out_in_order() -> None:
    ipam = PodIpam(ADDRESSING)
    got = [ipam.allocate(("default", f"p{i}")) for i in range(3)]
    assert got == [ADDRESSING.pod_ip(0), ADDRESSING.pod_ip(1), ADDRESSING.pod_ip(2)]
    assert len(set(got)) == 3


def test_a_replaced_pod_gets_a_new_address_not_the_one_just_freed() -> None:
    ipam = PodIpam(ADDRESSING)
    first = ipam.allocate(("default", "reviews-v1-0"))
    ipam.allocate(("default", "ratings-v1-0"))
    ipam.release(("default", "reviews-v1-0"))
    again = ipam.allocate(("default", "reviews-v1-0"))
    assert again != first
    assert again == ADDRESSING.pod_ip(2)


def test_freed_addresses_come_back_after_a_wrap_and_a_full_range_is_an_error() -> None:
    ipam = PodIpam(ADDRESSING, size=3)
    for name in ("a", "b", "c"):
        ipam.allocate(("default", name))
    with pytest.raises(RuntimeError, match="no free pod address"):
        ipam.allocate(("default", "d"))
    ipam.release(("default", "b"))
    assert ipam.allocate(("default", "d")) == ADDRESSING.pod_ip(1)
    ipam.release(("default", "nobody"))  # releasing what holds nothing is fine
