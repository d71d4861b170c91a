"""Selectors shared by many kinds: which workloads a policy applies to."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydantic import Field

from gossamer.spec.base import Loc, SpecModel, problem
from gossamer.spec.findings import Finding


class WorkloadSelector(SpecModel):
    """`{matchLabels: {...}}`: selects workloads whose labels contain all of these.

    An empty selector (`selector: {}`) selects every workload in scope.
    """

    match_labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items())

    def rules(self, at: Loc) -> Iterator[Finding]:
        for key, value in self.match_labels.items():
            if "*" in key or "*" in value:
                yield problem((*at, "matchLabels", key), "wildcard is not supported in selector")


class PolicyTargetReference(SpecModel):
    """Gateway API style reference to what a policy attaches to (targetRef / targetRefs)."""

    group: str = ""
    kind: str
    name: str
    namespace: str | None = None
