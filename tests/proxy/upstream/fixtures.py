"""Test helpers for proxy/upstream: endpoint sets, a fake clock, seeded backends, pick counts,
requests that succeed or fail."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from gossamer.proxy.upstream import Backend, ClusterConfig, Endpoint, EndpointSet
from gossamer.proxy.upstream.cluster import OutlierConfig
from gossamer.proxy.upstream.endpoints import LocalityEndpoints


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def hosts(n: int, *, weight: int = 1, healthy: bool = True, base: int = 1) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(f"10.0.0.{i}", 8080, weight=weight, healthy=healthy) for i in range(base, base + n)
    )


def group(
    endpoints: Iterable[Endpoint], locality: str = "", weight: int | None = None, priority: int = 0
) -> LocalityEndpoints:
    return LocalityEndpoints(locality, weight, priority, tuple(endpoints))


def endpoint_set(*groups: LocalityEndpoints, name: str = "web") -> EndpointSet:
    return EndpointSet(name, groups)


def backend(
    endpoints: EndpointSet,
    *,
    clock: FakeClock | None = None,
    seed: int = 7,
    **config: object,
) -> Backend:
    cfg = ClusterConfig(name=endpoints.name, **config)  # type: ignore[arg-type]
    return Backend(cfg, endpoints, clock=clock or FakeClock(), rng=random.Random(seed))


def picks(b: Backend, n: int, hash_key: int | None = None) -> Counter[str]:
    """How often each host address is picked in `n` picks (requests finish at once)."""
    out: Counter[str] = Counter()
    for _ in range(n):
        ep = b.pick(hash_key)
        assert ep is not None
        out[ep.host] += 1
    return out


def shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {host: n / total for host, n in counts.items()}


def ejecting_backend(
    eps: tuple[Endpoint, ...], clock: FakeClock, *, lb: str = "ROUND_ROBIN", **outlier: object
) -> Backend:
    """A backend over `eps` whose outlier detection may eject every host (Istio's default cap
    of 10 % would keep small test clusters from ejecting at all)."""
    config = OutlierConfig(max_ejection_percent=100, **outlier)  # type: ignore[arg-type]
    return backend(endpoint_set(group(eps)), clock=clock, lb=lb, outlier=config)


def respond(
    b: Backend,
    ep: Endpoint,
    status: int | None,
    times: int = 1,
    reset: str = "",
    latency: float = 0.001,
) -> None:
    """`times` requests to `ep` that end with `status` (None: no response, `reset` says why)."""
    for _ in range(times):
        b.started(ep)
        b.finished(ep, status, latency, reset=reset or None)
