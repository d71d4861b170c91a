"""DestinationRules as clients in one namespace see them: lookup, merge, subsets, policy."""

from __future__ import annotations

from gossamer.control.translate.policy import DEFAULT_POLICY, ClusterPolicy, Subset
from gossamer.control.world import World


class DestinationRules:
    """The DestinationRules visible to clients in `namespace`, indexed by host."""

    def __init__(self, world: World, namespace: str) -> None:
        self.world = world
        self.namespace = namespace

    def subsets(self, host: str) -> list[Subset]:
        return []

    def resolve(self, host: str, port: int, subset: str = "") -> ClusterPolicy:
        return DEFAULT_POLICY
