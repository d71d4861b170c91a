"""The analyzer seam: a Corpus of parsed resources in, findings with IST codes out."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.loader import Document

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Corpus:
    """Everything analysed together: served resources, plus the documents of kinds Gossamer does
    not serve but analyzers read (Pod labels, Namespace names), as Istio's analyzers do."""

    resources: Sequence[Resource]
    others: Sequence[Document] = ()
    origin: dict[int, Document] = field(default_factory=dict)  # id(resource) → its document

    def of(self, kind: type[R]) -> list[R]:
        return [r for r in self.resources if isinstance(r, kind)]

    def others_of(self, kind: str) -> list[dict[str, Any]]:
        return [d.body for d in self.others if d.body.get("kind") == kind]

    def namespaces(self) -> set[str]:
        """Namespaces known to exist: declared Namespace objects and any namespace in use."""
        known = {r.namespace for r in self.resources}
        for body in self.others:
            meta = body.body.get("metadata") or {}
            if body.body.get("kind") == "Namespace" and isinstance(meta.get("name"), str):
                known.add(meta["name"])
            elif isinstance(meta.get("namespace"), str):
                known.add(meta["namespace"])
        return known

    def locate(self, resource: Resource, finding: Finding) -> Finding:
        doc = self.origin.get(id(resource))
        return finding.located(
            source=doc.source if doc else None,
            document=doc.index if doc else None,
            kind=resource.kind,
            namespace=resource.namespace,
            name=resource.name,
        )


Analyzer = Callable[[Corpus], Iterable[tuple[Resource, Finding]]]
ANALYZERS: list[Analyzer] = []


def analyzer(func: Analyzer) -> Analyzer:
    """Register an analyzer: it yields (resource the finding is about, finding)."""
    ANALYZERS.append(func)
    return func


def _load_all() -> None:
    import gossamer.spec.analyzers as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "base":
            importlib.import_module(f"{package.__name__}.{info.name}")


def analyze(corpus: Corpus) -> list[Finding]:
    """Run every registered analyzer; findings come back located and sorted by place."""
    _load_all()
    found: list[Finding] = []
    for run in ANALYZERS:
        found.extend(corpus.locate(resource, finding) for resource, finding in run(corpus))
    return sorted(found, key=_order)


def _order(f: Finding) -> tuple[str, int, str]:
    return (f.source or "", f.document if f.document is not None else -1, f.code or "")


def iter_unique(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen: set[Finding] = set()
    for f in findings:
        if f not in seen:
            seen.add(f)
            yield f
