"""What analyzers look things up in: services, pods and namespaces of a Corpus, as istioctl does.

Theory of operation (files-only analysis, like `istioctl analyze --use-kube=false`):
1. The corpus holds only what the files hold. As istioctl does, an ingress gateway Pod
   (`istio: ingressgateway`, see `workloads`) and its Service `istio-ingressgateway.istio-system`
   are assumed.
2. Lookups use every resource of a kind (a union), so alternative versions of one resource in
   several files never make a reference "missing". Conflict checks use `latest()`: one resource
   per namespace/name, the last one read, as applying the files in order would leave it.
3. A reference is only checked against a kind the files actually contain: with no Service or
   ServiceEntry at all, hosts are not checked (`Registry.known`); with no DestinationRule,
   subsets are not; with no Gateway, gateway references are not. istioctl reports every such
   reference as missing; for a VirtualService checked alone that is noise, not a finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from gossamer.spec.analyzers.base import Corpus
from gossamer.spec.analyzers.workloads import ROOT_NAMESPACE
from gossamer.spec.base import Loc, Resource, problem
from gossamer.spec.core import Service
from gossamer.spec.findings import Finding, Level
from gossamer.spec.networking.names import host_matches
from gossamer.spec.networking.serviceentry import ServiceEntry

R = TypeVar("R", bound=Resource)

CLUSTER_DOMAIN = "svc.cluster.local"
EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
_FQDN = re.compile(r"^(.+)\.(.+)\.svc\.cluster\.local$")

LEVELS = {
    "IST0101": Level.ERROR,
    "IST0109": Level.ERROR,
    "IST0110": Level.ERROR,
    "IST0111": Level.ERROR,
    "IST0112": Level.ERROR,
    "IST0127": Level.WARNING,
    "IST0128": Level.WARNING,
    "IST0129": Level.WARNING,
    "IST0130": Level.WARNING,
    "IST0131": Level.INFO,
    "IST0132": Level.WARNING,
    "IST0134": Level.WARNING,
    "IST0145": Level.ERROR,
    "IST0149": Level.ERROR,
    "IST0167": Level.WARNING,
    "IST0173": Level.ERROR,
    "IST0174": Level.WARNING,
}


def message(code: str, at: Loc, text: str) -> Finding:
    """A finding with istioctl's code and that code's level."""
    return problem(at, text, level=LEVELS[code], code=code)


def quoted(text: str) -> str:
    """Go's %q for the names these messages quote."""
    return json.dumps(text)


def not_found(at: Loc, what: str, value: str) -> Finding:
    """IST0101 ReferencedResourceNotFound."""
    return message("IST0101", at, f"Referenced {what} not found: {quoted(value)}")


def selector_text(labels: Mapping[str, str]) -> str:
    """A label selector as Kubernetes prints it: `a=1,b=2`, sorted by key."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def latest(corpus: Corpus, kind: type[R]) -> list[R]:
    """One resource per namespace/name (the last read), in the order they were first read."""
    found: dict[tuple[str, str], R] = {}
    for r in corpus.of(kind):
        found.pop((r.namespace, r.name), None)
        found[(r.namespace, r.name)] = r
    return list(found.values())


# --- hosts ----------------------------------------------------------------------------------------


def to_fqdn(namespace: str, host: str) -> str:
    """Istio's ConvertHostToFQDN: only a short name (no dot, no wildcard) is expanded."""
    if host.startswith("*") or "." in host:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def resource_name(namespace: str, host: str) -> tuple[str, str]:
    """Istio's GetResourceNameFromHost: (namespace, name) of `name.ns.svc.cluster.local`, else
    the host itself in `namespace`."""
    match = _FQDN.match(host)
    return (match.group(2), match.group(1)) if match else (namespace, host)


@dataclass(frozen=True, slots=True)
class Entry:
    """A registry service as the analyzers see it: its ports and workload selector."""

    ports: tuple[int, ...]
    selector: Mapping[str, str] = field(default_factory=dict)


class Registry:
    """Services and ServiceEntries by (visibility scope, FQDN): Istio's ServiceEntry host map."""

    def __init__(self, corpus: Corpus) -> None:
        self.entries: dict[tuple[str, str], Entry] = {}
        self.known = False  # whether the files hold any Service or ServiceEntry at all
        for se in corpus.of(ServiceEntry):
            self.known = True
            self._add_service_entry(se)
        for svc in corpus.of(Service):
            self.known = True
            ports = tuple(p.port for p in svc.spec.ports)
            self._add_service(svc.namespace, svc.name, svc.metadata.annotations, ports)
        # istioctl's default ingress gateway Service.
        self._add_service(ROOT_NAMESPACE, "istio-ingressgateway", {}, (80, 443, 31400, 15443))

    def _add_service_entry(self, se: ServiceEntry) -> None:
        spec = se.spec
        selector = dict(spec.workload_selector.labels) if spec.workload_selector else {}
        entry = Entry(tuple(p.number for p in spec.ports), selector)
        for host in spec.hosts:
            for export in spec.export_to or ["*"]:
                scope = se.namespace if export == "." else export
                self.entries[(scope, to_fqdn(se.namespace, host))] = entry
                if scope == "*":
                    break

    def _add_service(
        self, namespace: str, name: str, annotations: Mapping[str, str], ports: tuple[int, ...]
    ) -> None:
        entry = Entry(ports)
        export = annotations.get(EXPORT_TO_ANNOTATION, "")
        scopes = [s.strip() for s in export.split(",")] if export else ["*"]
        for scope in scopes:
            self.entries[(namespace if scope == "." else scope, to_fqdn(namespace, name))] = entry

    def lookup(self, namespace: str, export_to: Iterable[str], host: str) -> Entry | None:
        """Istio's GetDestinationHost: what `host`, written in `namespace` by a resource exported
        to `export_to`, refers to; None when nothing visible there has that name."""
        fqdn = to_fqdn(namespace, host)
        if (found := self.entries.get(("*", fqdn))) is not None:
            return found
        scopes = [namespace if e == "." else e for e in export_to] or [namespace]
        for scope in scopes:
            if (found := self.entries.get((scope, fqdn))) is not None:
                return found
        if host.startswith("*"):
            # Gossamer, not Istio: a wildcard (a DestinationRule's `*.example.com`) refers to
            # every visible service it matches, so it is found when one of them is.
            for (scope, known), entry in self.entries.items():
                if scope in ("*", namespace) and host_matches(host, known):
                    return entry
        bare = host.removeprefix("*")
        for (scope, se_host), entry in self.entries.items():
            visible = scope in ("*", namespace)
            if visible and se_host.startswith("*") and bare.endswith(se_host[1:]):
                return entry
        return None
