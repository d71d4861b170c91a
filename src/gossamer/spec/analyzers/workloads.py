"""Pods and Namespaces as analyzers read them from the documents Gossamer does not serve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gossamer.spec.analyzers.base import Corpus
from gossamer.spec.workload import Workload

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


# Controllers whose `spec.template` describes the Pods they will run.
CONTROLLERS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def _pod(namespace: str, name: str, meta: Mapping[str, Any], spec: object) -> Pod:
    spec = spec if isinstance(spec, dict) else {}
    containers = [
        (str(c.get("name", "")), str(c.get("image") or ""))
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]
    return Pod(
        namespace,
        name,
        strings(meta.get("labels")),
        strings(meta.get("annotations")),
        tuple(containers),
    )


def pods(corpus: Corpus) -> list[Pod]:
    """Pods of the corpus, the Pods its Deployments (and other controllers) and Gossamer
    Workloads will run, named after them, plus istioctl's default ingress gateway Pod.

    istioctl reads Pod objects only; files rarely hold Pods, and a Deployment's template or a
    Workload says exactly which labels its Pods will carry, so Gossamer counts them too. A
    Workload's pods always have a sidecar.
    """
    found: list[Pod] = []
    for body in corpus.others_of("Pod"):
        meta = meta_of(body)
        namespace = str(meta.get("namespace") or "default")
        found.append(_pod(namespace, str(meta.get("name") or ""), meta, body.get("spec")))
    for kind in CONTROLLERS:
        for body in corpus.others_of(kind):
            meta = meta_of(body)
            spec = body.get("spec")
            template = spec.get("template") if isinstance(spec, dict) else None
            if isinstance(template, dict):
                namespace = str(meta.get("namespace") or "default")
                name = str(meta.get("name") or "")
                found.append(_pod(namespace, name, meta_of(template), template.get("spec")))
    for workload in corpus.of(Workload):
        if workload.spec.replicas > 0:
            owner = workload.metadata
            found.append(
                Pod(
                    owner.namespace or "default",
                    owner.name,
                    dict(owner.labels or {}),
                    dict(owner.annotations or {}),
                    (("istio-proxy", "gossamer"),),
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
