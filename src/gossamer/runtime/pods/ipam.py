"""Pod addresses, handed out as Kubernetes' IPAM does: the next free one after the last given.

Why not the lowest free one: a replaced pod then gets a new address, so no proxy (or peer's ARP
cache, or connection pool) mistakes the new pod for the one that just left.
"""

from __future__ import annotations

from gossamer.runtime.pods.addressing import PodAddressing

PodKey = tuple[str, str]  # (namespace, pod name)
MAX_PODS = 50000  # addresses per node (the job pods use the range above)


class PodIpam:
    """Which pod holds which address of `addressing`'s pod range."""

    def __init__(self, addressing: PodAddressing, size: int = MAX_PODS) -> None:
        self.addressing = addressing
        self.size = size
        self._owners: dict[int, PodKey] = {}
        self._next = 0

    def allocate(self, pod: PodKey) -> str:
        """An address for `pod`; RuntimeError when every address is taken."""
        for _ in range(self.size):
            index, self._next = self._next, (self._next + 1) % self.size
            if index not in self._owners:
                self._owners[index] = pod
                return self.addressing.pod_ip(index)
        raise RuntimeError(f"no free pod address left in {self.addressing.pod_cidr}")

    def release(self, pod: PodKey) -> None:
        """Free every address `pod` holds (none is fine)."""
        for index in [i for i, owner in self._owners.items() if owner == pod]:
            del self._owners[index]
