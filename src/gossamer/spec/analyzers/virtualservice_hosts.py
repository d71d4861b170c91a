"""VirtualService destinations: IST0101 host, port or subset not found, IST0112 port required.

Hosts resolve as Istio's DestinationHostAnalyzer does: the short name is expanded in the
VirtualService's namespace, then looked up among the Services and ServiceEntries visible there
(exportTo), wildcard ServiceEntry hosts last. Subsets must be defined by a DestinationRule for
the same host (namespace/name), as in Istio's DestinationRuleAnalyzer.

Files-only rule (see `world`): with no Service or ServiceEntry in the files, hosts are not
checked; with no DestinationRule, subsets are not. So a Bookinfo VirtualService validated alone
gives no IST0101, and validated with `platform-kube-bookinfo.yaml` and
`destination-rule-all.yaml` it is checked for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.world import Registry, message, not_found, quoted, resource_name
from gossamer.spec.base import Loc, Resource
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import Destination
from gossamer.spec.networking.destinationrule import DestinationRule
from gossamer.spec.networking.virtualservice import VirtualService


@dataclass(frozen=True, slots=True)
class Target:
    """A destination of a VirtualService and where it is written."""

    at: Loc
    destination: Destination | None  # None: an entry without one (Istio sees host "")
    mirror: bool = False

    @property
    def host(self) -> str:
        return self.destination.host if self.destination is not None else ""

    @property
    def subset(self) -> str:
        return (self.destination.subset or "") if self.destination is not None else ""

    @property
    def port(self) -> int | None:
        d = self.destination
        return d.port.number if d is not None and d.port is not None else None


def route_targets(vs: VirtualService) -> Iterator[Target]:
    """Route destinations (tcp, tls, then http, as Istio lists them)."""
    spec = vs.spec
    for i, tcp in enumerate(spec.tcp):
        for j, rd in enumerate(tcp.route):
            yield Target(("spec", "tcp", i, "route", j, "destination"), rd.destination)
    for i, tls in enumerate(spec.tls):
        for j, rd in enumerate(tls.route):
            yield Target(("spec", "tls", i, "route", j, "destination"), rd.destination)
    for i, http in enumerate(spec.http):
        for j, hd in enumerate(http.route):
            yield Target(("spec", "http", i, "route", j, "destination"), hd.destination)


def mirror_targets(vs: VirtualService) -> Iterator[Target]:
    for i, http in enumerate(vs.spec.http):
        if http.mirror is not None:
            yield Target(("spec", "http", i, "mirror"), http.mirror, mirror=True)
        for j, m in enumerate(http.mirrors):
            yield Target(("spec", "http", i, "mirrors", j, "destination"), m.destination, True)


@analyzer
def destination_hosts(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0101 for hosts (and host:port) nothing visible defines; IST0112 when a multi-port
    service is the destination without a port."""
    registry = Registry(corpus)
    if not registry.known:
        return
    for vs in corpus.of(VirtualService):
        targets = [*route_targets(vs), *mirror_targets(vs)]
        for t in targets:
            host = t.host
            entry = registry.lookup(vs.namespace, vs.spec.export_to, host)
            at = (*t.at, "host")
            if entry is None:
                yield vs, not_found(at, "mirror host" if t.mirror else "host", host)
            elif t.port is None:
                if len(entry.ports) > 1:
                    ports = " ".join(str(p) for p in entry.ports)
                    yield (
                        vs,
                        message(
                            "IST0112",
                            at,
                            f"This VirtualService routes to a service {quoted(host)} that exposes "
                            f"multiple ports [{ports}]. Specifying a port in the destination is "
                            "required to disambiguate.",
                        ),
                    )
            elif t.port not in entry.ports:
                yield vs, not_found((*t.at, "port"), "host:port", f"{host}:{t.port}")


@analyzer
def destination_subsets(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0101 for a subset no DestinationRule of that host defines."""
    rules = corpus.of(DestinationRule)
    if not rules:
        return
    defined = {
        (resource_name(dr.namespace, dr.spec.host), s.name) for dr in rules for s in dr.spec.subsets
    }
    for vs in corpus.of(VirtualService):
        for t in [*route_targets(vs), *mirror_targets(vs)]:
            subset = t.subset
            if not subset or (resource_name(vs.namespace, t.host), subset) in defined:
                continue
            what = "mirror+subset" if t.mirror else "host+subset"
            yield (
                vs,
                not_found((*t.at, "subset"), f"{what} in destinationrule", f"{t.host}+{subset}"),
            )
