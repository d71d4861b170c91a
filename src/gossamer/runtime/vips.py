"""Service VIPs: the address each service name resolves to inside pods.

A Kubernetes Service carries a clusterIP; Services applied here usually do not, so the runtime
gives each hostname a virtual IP from the service CIDR. The address is a hash of the hostname,
so it does not move when other services come and go (pods keep the same hosts entries); a
collision probes forward, in hostname order, which keeps the outcome deterministic.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping

_FIRST_HOST = 10  # .1-.9 stay free, like kube-dns at .10


def assign_vips(
    hostnames: Iterable[str], service_cidr: str, fixed: Mapping[str, str] | None = None
) -> dict[str, str]:
    """hostname → VIP. `fixed` holds addresses a service already has (its clusterIP)."""
    network = ipaddress.IPv4Network(service_cidr)
    slots = network.num_addresses - _FIRST_HOST - 1  # no broadcast
    if slots <= 0:
        raise ValueError(f"service CIDR {service_cidr} is too small")
    result = dict(fixed or {})
    taken = set(result.values())
    for hostname in sorted(set(hostnames) - result.keys()):
        digest = int.from_bytes(hashlib.sha256(hostname.encode()).digest()[:8], "big")
        for probe in range(slots):
            address = str(network.network_address + _FIRST_HOST + (digest + probe) % slots)
            if address not in taken:
                result[hostname] = address
                taken.add(address)
                break
        else:
            raise ValueError(f"service CIDR {service_cidr} is full")
    return result
