"""Pod and service addressing derived from the configured CIDRs."""

from __future__ import annotations

import pytest

from gossamer.runtime.pods.addressing import PodAddressing, veth_names


def test_defaults_are_private_and_distinct() -> None:
    addressing = PodAddressing()
    assert addressing.pod_network.is_private and addressing.service_network.is_private
    assert not addressing.pod_network.overlaps(addressing.service_network)


def test_gateway_and_pods_come_from_the_pod_cidr() -> None:
    addressing = PodAddressing(pod_cidr="10.99.0.0/24", service_cidr="10.98.0.0/24")
    assert addressing.gateway == "10.99.0.1"
    assert addressing.gateway_cidr == "10.99.0.1/24"
    assert addressing.pod_ip(0) == "10.99.0.2"
    assert addressing.service_vip(0) == "10.98.0.10"
    with pytest.raises(ValueError):
        addressing.pod_ip(253)


def test_veth_names_fit_the_kernel_limit_and_are_stable() -> None:
    host, pod = veth_names("gsm-a-very-long-pod-name-indeed")
    assert len(host) <= 15 and len(pod) <= 15 and host != pod
    assert veth_names("gsm-a-very-long-pod-name-indeed") == (host, pod)
    assert veth_names("gsm-other")[0] != host
