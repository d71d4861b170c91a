"""AuthorizationPolicy: IST0127 no matching workloads, IST0101 unknown source namespaces.

As Istio's AuthorizationPoliciesAnalyzer:
1. Workloads are Pods in the mesh (a proxy container, the inject label, or an injected
   namespace) or in ambient mode. A selector-less policy in the root namespace (istio-system)
   covers the mesh: nothing to check; with a selector it needs a matching workload anywhere.
   Elsewhere a selector-less policy needs some workload in its namespace, and a selector needs
   a matching workload there.
2. Every `from.source.namespaces` / `notNamespaces` value (`*`, `prefix*`, `*suffix` or a name)
   must match a known namespace: declared Namespace objects or namespaces resources live in
   (`Corpus.namespaces()`, more lenient than istioctl, which reads only Namespace objects).
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.workloads import ROOT_NAMESPACE, namespace_labels, pod_in_mesh, pods
from gossamer.spec.analyzers.world import message, not_found, selector_text, selects
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy


def namespace_matches(namespace: str, pattern: str) -> bool:
    """Istio's namespaceMatch: `*`, `*suffix`, `prefix*` or a name (case-insensitive)."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return namespace.endswith(pattern[1:])
    if pattern.endswith("*"):
        return namespace.startswith(pattern[:-1])
    return namespace.lower() == pattern.lower()


def _no_workloads(labels: str) -> Finding:
    return message(
        "IST0127",
        (),
        f"No matching workloads for this resource with the following labels: {labels}",
    )


@analyzer
def authorization_policies(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    declared = namespace_labels(corpus)
    workloads: dict[str, list[dict[str, str]]] = {}
    for pod in pods(corpus):
        in_mesh = pod_in_mesh(pod, declared) or pod.ambient
        workloads.setdefault(pod.namespace, []).extend([dict(pod.labels)] if in_mesh else [])
    everywhere = [labels for found in workloads.values() for labels in found]
    known = corpus.namespaces()
    for ap in corpus.of(AuthorizationPolicy):
        selector = ap.spec.selector
        wanted = dict(selector.match_labels) if selector is not None else {}
        if ap.namespace == ROOT_NAMESPACE:
            if selector is not None and not any(selects(wanted, w) for w in everywhere):
                yield ap, _no_workloads(selector_text(wanted))
        elif selector is None:
            if not workloads.get(ap.namespace):
                yield ap, _no_workloads("")
        elif not any(selects(wanted, w) for w in workloads.get(ap.namespace, [])):
            yield ap, _no_workloads(selector_text(wanted))
        for r_index, rule in enumerate(ap.spec.rules_ or []):
            for f_index, from_ in enumerate(rule.from_ or []):
                source = from_.source
                if source is None:
                    continue
                at = ("spec", "rules", r_index, "from", f_index, "source")
                for field, values in (
                    ("namespaces", source.namespaces),
                    ("notNamespaces", source.not_namespaces),
                ):
                    for index, pattern in enumerate(values):
                        if not any(namespace_matches(ns, pattern) for ns in known):
                            yield ap, not_found((*at, field, index), "namespace", pattern)
