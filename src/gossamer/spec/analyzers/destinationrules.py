"""DestinationRules: IST0174 unknown host, IST0173 subset without Pods, IST0128/0129 no CA.

1. As Istio's SubsetSelectPodAnalyzer, the host must resolve (like a VirtualService destination,
   with the rule's exportTo) to a Service or ServiceEntry, else IST0174; then each subset's
   labels, merged with a ServiceEntry's workloadSelector, must select some Pod (any namespace,
   as Istio does), else IST0173 ("would give 503 UH"). Unlike Istio, a wildcard host is found
   when it matches some visible service. Files-only rule (see `world`): with no
   Service or ServiceEntry in the files, neither is checked. Pods include the Pods that
   Deployments will run (see `workloads`).
2. `tls.mode` SIMPLE or MUTUAL without `caCertificates` does not verify the server: IST0128 at
   the top level, IST0129 per port-level setting; a `credentialName` on a DestinationRule with a
   workloadSelector is accepted instead (the secret may carry the CA).
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.workloads import pods
from gossamer.spec.analyzers.world import Registry, message, selects
from gossamer.spec.base import Loc, Resource
from gossamer.spec.findings import Finding
from gossamer.spec.networking.destinationrule import DestinationRule
from gossamer.spec.networking.trafficpolicy import ClientTLSSettings


@analyzer
def subsets_select_pods(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    registry = Registry(corpus)
    if not registry.known:
        return
    workloads = pods(corpus)
    for dr in corpus.of(DestinationRule):
        if not dr.spec.host:
            continue  # refused by validation already
        entry = registry.lookup(dr.namespace, dr.spec.export_to, dr.spec.host)
        if entry is None:
            yield (
                dr,
                message(
                    "IST0174",
                    ("spec", "host"),
                    f"The host {dr.spec.host} defined in the DestinationRule does not match any "
                    "services in the mesh.",
                ),
            )
            continue
        for index, subset in enumerate(dr.spec.subsets):
            wanted = {**entry.selector, **subset.labels}
            if not any(selects(wanted, p.labels) for p in workloads):
                yield (
                    dr,
                    message(
                        "IST0173",
                        ("spec", "subsets", index),
                        f"The Subset {subset.name} defined in the DestinationRule does not select "
                        "any pods. Which may lead to 503 UH (NoHealthyUpstream).",
                    ),
                )


def _unverified(tls: ClientTLSSettings | None, selector: bool) -> bool:
    if tls is None or tls.mode not in ("SIMPLE", "MUTUAL"):
        return False
    return not tls.ca_certificates and not (tls.credential_name and selector)


@analyzer
def ca_certificates(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    for dr in corpus.of(DestinationRule):
        policy = dr.spec.traffic_policy
        if policy is None:
            continue
        selector = dr.spec.workload_selector is not None
        head = f"DestinationRule {dr.namespace}/{dr.name} in namespace {dr.namespace} has TLS mode"
        tail = "but no caCertificates are set to validate server identity for host"
        if _unverified(policy.tls, selector) and policy.tls is not None:
            at: Loc = ("spec", "trafficPolicy", "tls")
            text = f"{head} set to {policy.tls.mode} {tail}: {dr.spec.host}"
            yield dr, message("IST0128", at, text)
        for index, port in enumerate(policy.port_level_settings or []):
            if _unverified(port.tls, selector) and port.tls is not None:
                at = ("spec", "trafficPolicy", "portLevelSettings", index, "tls")
                number = port.port.number if port.port is not None else 0
                text = f"{head} set to {port.tls.mode} {tail}: {dr.spec.host} at port {number}"
                yield dr, message("IST0129", at, text)
