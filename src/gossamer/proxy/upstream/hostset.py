"""Which hosts a backend may pick right now, and the balancer over them.

Rules, applied whenever health, ejections or endpoints change (never per request):
1. Routable = healthy per EDS (HEALTHY, UNKNOWN, DEGRADED) and not ejected by outlier detection.
2. Priorities: the lowest priority level with a routable host serves all traffic (a simple form of
   Envoy's priority failover: no partial spill by overprovisioning factor). With none routable,
   the lowest level is used.
3. Panic (Envoy): if routable hosts are fewer than `panic_threshold` percent of that level's
   hosts, balance over all of them, routable or not. A threshold of 0 disables panic.
4. Locality weighting (only with `common_lb_config.locality_weighted_lb_config`, as Envoy): a
   locality's effective weight is its weight x min(1, overprovisioning x routable fraction);
   localities without a weight get no traffic. Round robin, least request and random pick a
   locality by EDF then a host in it; ring hash and Maglev scale host weights by locality share.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from gossamer.proxy.upstream.balancer import (
    Balancer,
    Edf,
    LeastRequest,
    NoHosts,
    Random,
    RandomPick,
    RoundRobin,
)
from gossamer.proxy.upstream.cluster import ClusterConfig
from gossamer.proxy.upstream.consistent import Maglev, RingHash
from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.proxy.upstream.hosts import HostState

HASHING = frozenset({"RING_HASH", "MAGLEV"})


@dataclass(frozen=True, slots=True)
class Selection:
    """The result of applying the rules: the balancer and whether it runs in panic mode."""

    balancer: Balancer
    panic: bool
    eligible: int


def select(
    hosts: Sequence[HostState],
    config: ClusterConfig,
    locality_weights: dict[str, int | None],
    overprovisioning: int,
    random: Random,
) -> Selection:
    """Apply rules 1-4 to `hosts` (all hosts of the backend, any priority)."""
    if not hosts:
        return Selection(NoHosts(), panic=False, eligible=0)
    levels = sorted({h.priority for h in hosts})
    level = [h for h in hosts if h.priority == levels[0]]
    routable = [h for h in level if h.routable]
    for priority in levels[1:]:
        if routable:
            break
        candidates = [h for h in hosts if h.priority == priority]
        healthy = [h for h in candidates if h.routable]
        if healthy:
            level, routable = candidates, healthy
    panic = 100.0 * len(routable) / len(level) < config.panic_threshold
    eligible = level if panic else routable
    if not eligible:
        return Selection(NoHosts(), panic=panic, eligible=0)
    if config.locality_weighted and any(w for w in locality_weights.values()):
        balancer = _by_locality(eligible, level, config, locality_weights, overprovisioning, random)
    else:
        balancer = build_balancer(eligible, [float(h.weight) for h in eligible], config, random)
    return Selection(balancer, panic=panic, eligible=len(eligible))


def build_balancer(
    hosts: Sequence[HostState], weights: Sequence[float], config: ClusterConfig, random: Random
) -> Balancer:
    options = config.lb_options
    lb = config.lb
    if lb == "RING_HASH":
        return RingHash(
            hosts, weights, random, options.minimum_ring_size, options.maximum_ring_size
        )
    if lb == "MAGLEV":
        return Maglev(hosts, weights, random, options.maglev_table_size)
    if lb == "RANDOM":
        return RandomPick(hosts, random)
    if lb == "LEAST_REQUEST":
        return LeastRequest(
            hosts, weights, random, options.choice_count, options.active_request_bias
        )
    return RoundRobin(hosts, weights, random)  # ROUND_ROBIN, CLUSTER_PROVIDED


def _by_locality(
    eligible: Sequence[HostState],
    level: Sequence[HostState],
    config: ClusterConfig,
    locality_weights: dict[str, int | None],
    overprovisioning: int,
    random: Random,
) -> Balancer:
    groups: dict[str, list[HostState]] = {}
    for host in eligible:
        groups.setdefault(host.locality, []).append(host)
    sizes: dict[str, int] = {}
    for host in level:
        sizes[host.locality] = sizes.get(host.locality, 0) + 1
    effective: dict[str, float] = {}
    for name, members in groups.items():
        weight = locality_weights.get(name) or 0
        # In panic every host is eligible and the locality counts in full.
        fraction = len(members) / sizes[name]
        effective[name] = weight * min(1.0, overprovisioning / 100.0 * fraction)
    chosen = [name for name in groups if effective[name] > 0]
    if not chosen:
        return NoHosts()
    if config.lb in HASHING:
        # Envoy's hash tables scale each host by its share of its locality times the locality's
        # configured weight (not the health-adjusted one).
        hosts: list[HostState] = []
        weights: list[float] = []
        for name in chosen:
            members = groups[name]
            total = float(sum(h.weight for h in members))
            share = float(locality_weights.get(name) or 0)
            hosts.extend(members)
            weights.extend(share * h.weight / total for h in members)
        return build_balancer(hosts, weights, config, random)
    inner = [
        build_balancer(groups[n], [float(h.weight) for h in groups[n]], config, random)
        for n in chosen
    ]
    return LocalityPick(inner, [effective[n] for n in chosen], [groups[n] for n in chosen])


class LocalityPick:
    """Envoy's locality choice: EDF over effective locality weights, then the locality's balancer.
    With `avoid`, another locality is tried before giving up on the avoided host."""

    __slots__ = ("_balancers", "_members", "_next")

    def __init__(
        self,
        balancers: Sequence[Balancer],
        weights: Sequence[float],
        members: Sequence[Sequence[HostState]],
    ):
        self._balancers = list(balancers)
        self._members = list(members)
        fixed = list(weights)
        self._next: Callable[[], int] = Edf(fixed, fixed.__getitem__).next

    def pick(self, hash_key: int | None, avoid: Collection[Endpoint]) -> HostState | None:
        host = self._balancers[self._next()].pick(hash_key, avoid)
        if host is None or not avoid or host.endpoint not in avoid:
            return host
        for balancer, members in zip(self._balancers, self._members, strict=True):
            if any(h.endpoint not in avoid for h in members):
                return balancer.pick(hash_key, avoid)
        return host
