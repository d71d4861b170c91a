"""Pods and Namespaces as analyzers read them from the documents Gossamer does not serve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gossamer.spec.analyzers.base import Corpus

ROOT_NAMESPACE = "istio-system"


@dataclass(frozen=True, slots=True)
class Pod:
    """The parts of a Pod document analyzers read."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[tuple[str, str], ...] = ()  # (name, image), init containers included

    @property
    def ambient(self) -> bool:
        return self.annotations.get("ambient.istio.io/redirection") == "enabled"

    @property
    def has_proxy(self) -> bool:
        return any(name == "istio-proxy" and image for name, image in self.containers)


# istioctl adds this Pod (and the Service below) when analysing files only.
DEFAULT_INGRESS_POD = Pod(
    ROOT_NAMESPACE,
    "istio-ingressgateway-dummypod",
    {"istio": "ingressgateway"},
    containers=(("istio-proxy", ""),),
)


def meta_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, dict) else {}


def strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def pods(corpus: Corpus) -> list[Pod]:
    """Pods of the corpus, plus istioctl's default ingress gateway Pod."""
    found: list[Pod] = []
    for body in corpus.others_of("Pod"):
        meta = meta_of(body)
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        containers = [
            (str(c.get("name", "")), str(c.get("image") or ""))
            for key in ("containers", "initContainers")
            for c in spec.get(key) or []
            if isinstance(c, dict)
        ]
        found.append(
            Pod(
                str(meta.get("namespace") or "default"),
                str(meta.get("name") or ""),
                strings(meta.get("labels")),
                strings(meta.get("annotations")),
                tuple(containers),
            )
        )
    if not any(p.namespace == ROOT_NAMESPACE and p.name == DEFAULT_INGRESS_POD.name for p in found):
        found.append(DEFAULT_INGRESS_POD)
    return found


def namespace_labels(corpus: Corpus) -> dict[str, dict[str, str]]:
    """Labels of each declared Namespace object."""
    return {
        str(meta_of(b).get("name")): strings(meta_of(b).get("labels"))
        for b in corpus.others_of("Namespace")
        if meta_of(b).get("name")
    }


def pod_in_mesh(pod: Pod, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    """Istio's PodInMesh: a proxy container, else the inject label/annotation, else the
    namespace's `istio-injection` label."""
    if pod.has_proxy:
        return True
    for meta in (pod.labels, pod.annotations):
        if "sidecar.istio.io/inject" in meta:
            return meta["sidecar.istio.io/inject"] == "true"
    if pod.namespace in namespaces:
        return namespaces[pod.namespace].get("istio-injection") == "enabled"
    return False


def namespace_ambient(labels: Mapping[str, str] | None) -> bool:
    """Istio's NamespaceInAmbientMode (sidecar injection or a revision label wins)."""
    if labels is None or labels.get("istio-injection") == "enabled" or labels.get("istio.io/rev"):
        return False
    return labels.get("istio.io/dataplane-mode") == "ambient"
