"""Backend: the live state of one cluster (hosts, balancer, breakers, outlier detection, stats).

Per request the router calls, on the event loop (no locks: single-threaded by design):
  `breaker.try_request()` → `pick(hash_key, avoid)` → `started(endpoint)` → ... →
  `finished(endpoint, status, latency, reset=...)` → `breaker.end_request()`.
`pick` returning None means no host is eligible (503, `no healthy upstream`). The balancer is
rebuilt only when eligibility changes (EDS push, ejection, return from ejection) or the lb policy
changes; counters and per-host state survive `reconfigure` for hosts that remain.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable, Collection

from gossamer.proxy.upstream.breaker import CircuitBreaker
from gossamer.proxy.upstream.cluster import ClusterConfig
from gossamer.proxy.upstream.endpoints import Endpoint, EndpointSet
from gossamer.proxy.upstream.hosts import HostState, HostStatus
from gossamer.proxy.upstream.hostset import Selection, select
from gossamer.proxy.upstream.outlier import OutlierDetector
from gossamer.proxy.upstream.stats import ClusterStats

Clock = Callable[[], float]
MAX_KEPT_SELECTIONS = 8
# What a reset reason (the router's vocabulary, as RetryPolicy.retriable_after) is charged as.
RESET_STATUS = {"timeout": 504, "connect-failure": 503, "reset": 503, "refused-stream": 503}


class Backend:
    __slots__ = (
        "_balancer",
        "_clock",
        "_hosts",
        "_outlier",
        "_panic",
        "_random",
        "_selections",
        "_shape",
        "breaker",
        "config",
        "endpoints",
        "stats",
    )

    def __init__(
        self,
        config: ClusterConfig,
        endpoints: EndpointSet | None = None,
        clock: Clock = time.monotonic,
        rng: random_module.Random | None = None,
    ) -> None:
        self._clock = clock
        self._random = (rng or random_module.Random()).random
        self.stats = ClusterStats()
        self.breaker = CircuitBreaker(config.thresholds, self.stats)
        self.config = config
        self._hosts: dict[Endpoint, HostState] = {}
        self._outlier: OutlierDetector | None = None
        self._shape: object = None
        self._panic = False
        self._selections: dict[frozenset[Endpoint], Selection] = {}
        self.endpoints = EndpointSet(config.name)
        self.reconfigure(config, endpoints)

    # -- configuration -------------------------------------------------------------------------

    def reconfigure(self, config: ClusterConfig, endpoints: EndpointSet | None = None) -> None:
        """Adopt a new config and/or endpoint set. Hosts that remain (same host:port) keep active
        requests, counters and outlier state; the balancer is rebuilt only if what it balances
        over (hosts, weights, health, localities, lb policy and its options) changed.
        `endpoints` None: the cluster's inline endpoints if it has some, else the current ones."""
        if endpoints is None:
            endpoints = config.static or self.endpoints
        old = self._hosts
        hosts: dict[Endpoint, HostState] = {}
        transport = config.transport
        self.stats.tls = transport is not None
        for group in endpoints.localities:
            for listed in group.endpoints:
                ep = listed  # the TLS this host gets travels with its Endpoint:
                if transport is not None:
                    ep = listed.using(transport.tls_for(listed.socket_match, group.socket_match))
                state = old.get(ep)
                if state is None:
                    state = HostState(ep, group.locality, group.priority)
                else:
                    state.endpoint, state.weight = ep, ep.weight
                    state.locality, state.priority = group.locality, group.priority
                hosts[ep] = state
        if self._outlier is not None:
            gone = sum(1 for ep, s in old.items() if ep not in hosts and s.ejected_at is not None)
            self.stats.od_ejections_active -= gone
        self._hosts = hosts
        self.breaker.limits = config.thresholds
        if config.outlier is None:
            if self._outlier is not None:  # detection switched off: every ejection ends now
                for state in hosts.values():
                    state.ejected_at = None
                    state.ejections = 0
                self.stats.od_ejections_active = 0
                self._shape = None
            self._outlier = None
        elif self._outlier is None:
            self._outlier = OutlierDetector(config.outlier, self.stats, self._random, self._clock())
        else:
            self._outlier.config = config.outlier
        shape = (
            config.lb,
            config.lb_options,
            config.panic_threshold,
            config.locality_weighted,
            endpoints.overprovisioning_factor,
            tuple(
                (
                    g.locality,
                    g.weight,
                    g.priority,
                    tuple((e, e.weight, e.healthy) for e in g.endpoints),
                )
                for g in endpoints.localities
            ),
        )
        self.config = config
        self.endpoints = endpoints
        if shape != self._shape:
            self._shape = shape
            self._selections.clear()
            self._rebuild()

    def _rebuild(self) -> None:
        """Choose the balancer for the current routable set. Results are kept per routable set
        until the next endpoint or policy change, so a host that leaves and comes back (outlier
        ejection) gets the balancer built before instead of a new one (Maglev: ~40 ms)."""
        routable = frozenset(ep for ep, host in self._hosts.items() if host.routable)
        chosen = self._selections.get(routable)
        if chosen is None:
            weights = {g.locality: g.weight for g in self.endpoints.localities}
            chosen = select(
                list(self._hosts.values()),
                self.config,
                weights,
                self.endpoints.overprovisioning_factor,
                self._random,
            )
            if len(self._selections) >= MAX_KEPT_SELECTIONS:
                self._selections.clear()
            self._selections[routable] = chosen
        self._balancer = chosen.balancer
        self._panic = chosen.panic

    # -- hot path --------------------------------------------------------------------------------

    def pick(
        self, hash_key: int | None = None, avoid: Collection[Endpoint] = ()
    ) -> Endpoint | None:
        """The host for the next attempt; hosts in `avoid` only when nothing else is eligible."""
        outlier = self._outlier
        if outlier is not None:
            now = self._clock()
            if now >= outlier.next_sweep and outlier.due(now, self._hosts.values()):
                self._rebuild()
        host = self._balancer.pick(hash_key, avoid)
        if host is None:
            self.stats.upstream_cx_none_healthy += 1
            return None
        if self._panic:
            self.stats.lb_healthy_panic += 1
        return host.endpoint

    def started(self, endpoint: Endpoint) -> None:
        """A request is being sent to `endpoint` (counts toward least-request and rq_total)."""
        self.stats.upstream_rq_total += 1
        host = self._hosts.get(endpoint)
        if host is not None:
            host.active += 1
            host.rq_total += 1

    def finished(
        self, endpoint: Endpoint, status: int | None, latency: float, reset: str | None = None
    ) -> None:
        """The attempt ended: `status` of the upstream response, or None with the `reset` reason
        ("connect-failure", "reset", "refused-stream", "timeout"); `latency` in seconds."""
        stats = self.stats
        stats.upstream_rq_completed += 1
        charged = status
        if status is None:
            if reset == "timeout":
                stats.upstream_rq_timeout += 1
            elif reset == "connect-failure":
                stats.upstream_cx_connect_fail += 1
            else:
                stats.upstream_rq_rx_reset += 1
            charged = RESET_STATUS.get(reset or "reset", 503)
        stats.response(charged or 503, latency * 1000.0)
        host = self._hosts.get(endpoint)
        if host is None:  # removed by an EDS push while the request was in flight
            return
        if host.active:  # 0: the host left and came back while this request was in flight
            host.active -= 1
        if status is None or status >= 500:
            host.rq_error += 1
        else:
            host.rq_success += 1
        outlier = self._outlier
        if outlier is not None:
            now = self._clock()
            changed = now >= outlier.next_sweep and outlier.due(now, self._hosts.values())
            ejected = outlier.observe(host, status, charged or 503, self._hosts.values(), now)
            if ejected or changed:
                self._rebuild()

    # -- admin -----------------------------------------------------------------------------------

    def hosts(self) -> list[HostStatus]:
        """Per-host status for `/clusters`, in EDS order."""
        return [state.status() for state in self._hosts.values()]

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:
        ejected = sum(1 for h in self._hosts.values() if h.ejected_at is not None)
        return f"<Backend {self.config.name} endpoints={len(self._hosts)} ejected={ejected}>"
