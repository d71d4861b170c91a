"""Sidecar selection: IST0101 no Pod, IST0110/IST0111 conflicts, IST0167 ambient (no effect).

As Istio's sidecar SelectorAnalyzer: a Sidecar with workload-selector labels must select a Pod
of its own namespace; a Pod selected by two Sidecars gets IST0110 on each of them (once per
Pod). Sidecars without selector apply to the whole namespace, so two of them conflict (IST0111).
A Sidecar whose Pod or namespace runs in ambient mode (no sidecar proxy) has no effect: IST0167
instead. Resources with the same namespace/name count once (the last read).
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.workloads import Pod, namespace_ambient, namespace_labels, pods
from gossamer.spec.analyzers.world import (
    latest,
    message,
    not_found,
    quoted,
    selector_text,
    selects,
)
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.networking.sidecar import Sidecar


def _names(sidecars: list[Sidecar]) -> str:
    return "[" + " ".join(sorted(s.name for s in sidecars)) + "]"


def _ineffective(reason: str) -> Finding:
    return message("IST0167", (), f"The policy has no impact: {reason}.")


@analyzer
def sidecar_selectors(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    workloads = pods(corpus)
    by_pod: dict[tuple[str, str], list[Sidecar]] = {}
    pod_of: dict[tuple[str, str], Pod] = {}
    by_namespace: dict[str, list[Sidecar]] = {}
    for sidecar in latest(corpus, Sidecar):
        selector = sidecar.spec.workload_selector
        labels = dict(selector.labels) if selector is not None else {}
        if not labels:
            by_namespace.setdefault(sidecar.namespace, []).append(sidecar)
            continue
        matched = [
            p for p in workloads if p.namespace == sidecar.namespace and selects(labels, p.labels)
        ]
        for pod in matched:
            by_pod.setdefault((pod.namespace, pod.name), []).append(sidecar)
            pod_of[(pod.namespace, pod.name)] = pod
        if not matched:
            text = selector_text(labels)
            yield sidecar, not_found(("spec", "workloadSelector", "labels"), "selector", text)
    reported: set[tuple[str, str]] = set()
    for key, sidecars in by_pod.items():
        pod = pod_of[key]
        if len(sidecars) == 1 and not pod.ambient:
            continue
        for sidecar in sidecars:
            if pod.ambient:
                if (sidecar.namespace, sidecar.name) not in reported:
                    reported.add((sidecar.namespace, sidecar.name))
                    yield (
                        sidecar,
                        _ineffective(
                            "selected workload is in ambient mode, the policy has no impact"
                        ),
                    )
                continue
            yield (
                sidecar,
                message(
                    "IST0110",
                    ("metadata", "name"),
                    f"The Sidecars {_names(sidecars)} in namespace {quoted(key[0])} select the "
                    f"same workload pod {quoted(key[1])}, which can lead to undefined behavior.",
                ),
            )
    namespaces = namespace_labels(corpus)
    for namespace, sidecars in by_namespace.items():
        if namespace_ambient(namespaces.get(namespace)):
            for sidecar in sidecars:
                if (sidecar.namespace, sidecar.name) not in reported:
                    reported.add((sidecar.namespace, sidecar.name))
                    yield (
                        sidecar,
                        _ineffective("namespace is in ambient mode, the policy has no impact"),
                    )
            continue
        if len(sidecars) > 1:
            for sidecar in sidecars:
                yield (
                    sidecar,
                    message(
                        "IST0111",
                        (),
                        f"The Sidecars {_names(sidecars)} in namespace {quoted(namespace)} have no "
                        "workload selector, which can lead to undefined behavior.",
                    ),
                )
