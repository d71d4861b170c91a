"""Envoy's CidrRange as a predicate over an address (version must agree, as in Envoy)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network

from envoy.config.core.v3 import address_pb2

from gossamer.proxy.authz.request import IPAddress
from gossamer.proxy.config.rejected import ConfigRejected

AddressTest = Callable[[IPAddress | None], bool]


def cidr_test(pb: address_pb2.CidrRange, where: str) -> AddressTest:
    """`address_prefix/prefix_len`; host bits are ignored (Envoy truncates them); an absent
    address (no connection facts) never matches."""
    length = pb.prefix_len.value if pb.HasField("prefix_len") else None
    try:
        text = pb.address_prefix if length is None else f"{pb.address_prefix}/{length}"
        network = ip_network(text, strict=False)
    except ValueError as exc:
        raise ConfigRejected(f"{where}: invalid CIDR range: {exc}") from None
    version = network.version
    base = int(network.network_address)
    mask = int(network.netmask)

    def test(address: IPAddress | None) -> bool:
        return address is not None and address.version == version and int(address) & mask == base

    return test
