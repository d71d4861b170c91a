"""IST0134: a ServiceEntry with TCP (or unset-protocol) ports and no addresses.

Without an address a TCP port cannot be told apart from any other service on that port, so Istio
asks for `addresses`, unless the control plane allocated some (`status.addresses`) or DNS
auto-allocation is on (mesh config; Gossamer's files carry none, so it is taken as off).
One message per such port, as istioctl gives.
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.world import message
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.networking.serviceentry import ServiceEntry


def _allocated(se: ServiceEntry) -> bool:
    status = se.status or {}
    return bool(status.get("addresses"))


@analyzer
def addresses_required(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    for se in corpus.of(ServiceEntry):
        if se.spec.addresses or _allocated(se):
            continue
        for index, port in enumerate(se.spec.ports):
            if port.protocol == "" or port.protocol.upper() == "TCP":
                yield (
                    se,
                    message(
                        "IST0134",
                        ("spec", "ports", index),
                        "ServiceEntry addresses are required for this protocol.",
                    ),
                )
