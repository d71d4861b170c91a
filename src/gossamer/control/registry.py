"""The service registry's live part: workloads that register themselves and must keep beating.

Config-defined workloads (WorkloadEntry, ServiceEntry endpoints) live in the store; workloads
started by a local runtime announce themselves here with a time to live, renew it with
heartbeats, and disappear when they stop renewing (a crashed node's pods do not linger).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Workload:
    """One instance that can receive traffic: a pod, a WorkloadEntry, a ServiceEntry endpoint.

    `ports` maps port names (and, for runtime pods, stringified numbers) to the instance's own
    port numbers; `locality` is `region/zone/subzone` (any part may be empty).
    """

    name: str
    namespace: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    locality: str = ""
    weight: int = 0  # 0 = unset (the default weight of 1 applies)
    ports: Mapping[str, int] = field(default_factory=dict)
    network: str = ""
    ready: bool = True
    has_sidecar: bool = True
    source: str = "runtime"  # runtime | WorkloadEntry | ServiceEntry

    @property
    def uid(self) -> str:
        return f"{self.source}/{self.namespace}/{self.name}"

    def __repr__(self) -> str:
        state = "ready" if self.ready else "not-ready"
        return f"<Workload {self.namespace}/{self.name} {self.address} {state}>"


@dataclass(slots=True)
class _Lease:
    workload: Workload
    expires_at: float


class Registry:
    """Runtime-registered workloads with leases. Not thread-safe: use it from one event loop.

    `on_change` is called (synchronously) after every change that alters the visible set.
    """

    def __init__(
        self, *, clock: Clock = time.monotonic, on_change: Callable[[], None] | None = None
    ) -> None:
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._on_change = on_change
        self.generation = 0

    def register(self, workload: Workload, ttl: float) -> None:
        """Add or replace a workload; it stays until `ttl` seconds pass without a heartbeat."""
        previous = self._leases.get(workload.uid)
        self._leases[workload.uid] = _Lease(workload, self._clock() + ttl)
        if previous is None or previous.workload != workload:
            self._changed()

    def heartbeat(self, uid: str, ttl: float, *, ready: bool | None = None) -> bool:
        """Renew a lease (and optionally flip readiness). False if the workload is unknown."""
        lease = self._leases.get(uid)
        if lease is None:
            return False
        lease.expires_at = self._clock() + ttl
        if ready is not None and ready != lease.workload.ready:
            lease.workload = replace(lease.workload, ready=ready)
            self._changed()
        return True

    def deregister(self, uid: str) -> bool:
        if self._leases.pop(uid, None) is None:
            return False
        self._changed()
        return True

    def expire(self) -> list[Workload]:
        """Drop workloads whose lease ran out; returns them."""
        now = self._clock()
        gone = [uid for uid, lease in self._leases.items() if lease.expires_at <= now]
        dropped = [self._leases.pop(uid).workload for uid in gone]
        if dropped:
            self._changed()
        return dropped

    def workloads(self) -> tuple[Workload, ...]:
        return tuple(sorted((lease.workload for lease in self._leases.values()), key=_order))

    def _changed(self) -> None:
        self.generation += 1
        if self._on_change is not None:
            self._on_change()

    def __repr__(self) -> str:
        return f"<Registry workloads={len(self._leases)} generation={self.generation}>"


def _order(w: Workload) -> tuple[str, str, str]:
    return (w.namespace, w.name, w.address)
