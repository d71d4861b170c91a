"""Envoy's balancers over a fixed list of eligible hosts: LEAST_REQUEST, ROUND_ROBIN, RANDOM.

Theory of operation:
1. A balancer is built for one set of eligible hosts (health, ejections, priority and panic are
   already decided by `hostset.py`) and rebuilt when that set changes; `pick` is the hot path.
2. Equal weights take the cheap path (an index, or two random draws); unequal weights use an
   earliest-deadline-first schedule as Envoy does (each host's next deadline is 1/weight later).
3. `avoid` (hosts already tried by this request) is honoured when another host exists: the
   balancer picks again a few times, then takes any other host at random.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.proxy.upstream.hosts import HostState

Random = Callable[[], float]
RETRY_PICKS = 3


class Balancer(Protocol):
    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None: ...


class NoHosts:
    """Nothing eligible: every pick is a 503 `no healthy upstream`."""

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        return None


def pick_avoiding(
    balancer: Balancer,
    first: HostState,
    hosts: Sequence[HostState],
    hash_key: int | None,
    avoid: Collection[Endpoint],
    random: Random,
) -> HostState:
    """`first` was in `avoid`: pick again, then fall back to a random host not in `avoid`;
    `first` itself when every host is to be avoided."""
    for _ in range(RETRY_PICKS):
        host = balancer.pick(hash_key, ())
        if host is not None and host.endpoint not in avoid:
            return host
    others = [h for h in hosts if h.endpoint not in avoid]
    if not others:
        return first
    return others[int(random() * len(others))]


class Edf:
    """Earliest-deadline-first schedule over host indices (Envoy's weighted round robin).
    `weight_of(i)` is asked each time host i is re-queued, so weights may change with load."""

    __slots__ = ("_heap", "_weight_of")

    def __init__(self, weights: Sequence[float], weight_of: Callable[[int], float]) -> None:
        self._weight_of = weight_of
        self._heap = [(1.0 / w, i) for i, w in enumerate(weights) if w > 0]
        heapq.heapify(self._heap)

    def next(self) -> int:
        heap = self._heap
        deadline, i = heap[0]
        heapq.heapreplace(heap, (deadline + 1.0 / self._weight_of(i), i))
        return i


class RoundRobin:
    __slots__ = ("_edf", "_hosts", "_index", "_random")

    def __init__(self, hosts: Sequence[HostState], weights: Sequence[float], random: Random):
        self._hosts = list(hosts)
        self._random = random
        n = len(self._hosts)
        self._index = int(random() * n) if n else 0  # Envoy starts each worker at a random host
        self._edf: Edf | None = None
        if len(set(weights)) > 1:
            fixed = list(weights)
            self._edf = Edf(fixed, fixed.__getitem__)
            for _ in range(self._index):  # a random starting point in the schedule too
                self._edf.next()

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        hosts = self._hosts
        if not hosts:
            return None
        edf = self._edf
        if edf is None:
            i = self._index
            self._index = i + 1
            host = hosts[i % len(hosts)]
        else:
            host = hosts[edf.next()]
        if avoid and host.endpoint in avoid:
            return pick_avoiding(self, host, hosts, hash_key, avoid, self._random)
        return host


class LeastRequest:
    """Equal weights: power of `choice_count` random choices by active requests. Unequal: EDF with
    weight / (active + 1) ** active_request_bias, computed when a host is re-queued."""

    __slots__ = ("_bias", "_choices", "_edf", "_hosts", "_random", "_weights")

    def __init__(
        self,
        hosts: Sequence[HostState],
        weights: Sequence[float],
        random: Random,
        choice_count: int = 2,
        active_request_bias: float = 1.0,
    ):
        self._hosts = list(hosts)
        self._weights = list(weights)
        self._random = random
        self._choices = choice_count
        self._bias = active_request_bias
        self._edf: Edf | None = None
        if len(set(weights)) > 1:
            self._edf = Edf(self._weights, self._dynamic_weight)

    def _dynamic_weight(self, i: int) -> float:
        bias = self._bias
        if bias == 0.0:
            return self._weights[i]
        active = self._hosts[i].active + 1
        return self._weights[i] / (active if bias == 1.0 else active**bias)

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        hosts = self._hosts
        n = len(hosts)
        if n == 0:
            return None
        if self._edf is not None:
            host = hosts[self._edf.next()]
        else:
            random = self._random
            host = hosts[int(random() * n)]
            if self._choices == 2:  # the default, unrolled: this is the per-request hot path
                other = hosts[int(random() * n)]
                if other.active < host.active:
                    host = other
            else:
                for _ in range(self._choices - 1):
                    other = hosts[int(random() * n)]
                    if other.active < host.active:
                        host = other
        if avoid and host.endpoint in avoid:
            return pick_avoiding(self, host, hosts, hash_key, avoid, self._random)
        return host


class RandomPick:
    """Envoy's RANDOM ignores host weights: a uniform draw over eligible hosts."""

    __slots__ = ("_hosts", "_random")

    def __init__(self, hosts: Sequence[HostState], random: Random):
        self._hosts = list(hosts)
        self._random = random

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        hosts = self._hosts
        if not hosts:
            return None
        host = hosts[int(self._random() * len(hosts))]
        if avoid and host.endpoint in avoid:
            return pick_avoiding(self, host, hosts, hash_key, avoid, self._random)
        return host
