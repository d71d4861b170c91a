"""Where pods and services live: the pod and service CIDRs and the names derived from a pod.

Kept apart from the commands so plans are pure and testable without root."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

BRIDGE_NAME = "gossamer0"
NETNS_PREFIX = "gsm-"
HOST_VETH_PREFIX = "gsmh"
POD_VETH_PREFIX = "gsmp"
_IFNAME_MAX = 15


@dataclass(frozen=True, slots=True)
class PodAddressing:
    """The private ranges Gossamer uses; chosen to be unlikely to clash with LANs or Docker."""

    pod_cidr: str = "10.231.0.0/16"
    service_cidr: str = "10.232.0.0/16"
    bridge: str = BRIDGE_NAME
    netns_prefix: str = NETNS_PREFIX

    @property
    def pod_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.pod_cidr)

    @property
    def service_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.service_cidr)

    @property
    def gateway(self) -> str:
        """The bridge's own address: the first host of the pod CIDR, every pod's default route."""
        return str(self.pod_network.network_address + 1)

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.pod_network.prefixlen}"

    def pod_ip(self, index: int) -> str:
        """Address of the pod with this index (0-based); .1 is the gateway."""
        address = self.pod_network.network_address + 2 + index
        if address not in self.pod_network or address == self.pod_network.broadcast_address:
            raise ValueError(f"pod index {index} does not fit in {self.pod_cidr}")
        return str(address)

    def service_vip(self, index: int) -> str:
        """Virtual IP of the service with this index (0-based), starting at .10 like kube-dns."""
        address = self.service_network.network_address + 10 + index
        if address not in self.service_network or address == self.service_network.broadcast_address:
            raise ValueError(f"service index {index} does not fit in {self.service_cidr}")
        return str(address)

    def netns_name(self, pod: str) -> str:
        return f"{self.netns_prefix}{pod}"


def veth_names(netns: str) -> tuple[str, str]:
    """(host side, pod side before rename) for a namespace; interface names are ≤ 15 bytes, so
    they carry a short stable hash of the namespace name instead of the name itself."""
    digest = hashlib.sha1(netns.encode()).hexdigest()[: _IFNAME_MAX - len(HOST_VETH_PREFIX)]
    return f"{HOST_VETH_PREFIX}{digest}", f"{POD_VETH_PREFIX}{digest}"
