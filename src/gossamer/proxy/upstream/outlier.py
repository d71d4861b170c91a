"""Envoy's consecutive-failure outlier detection, evaluated lazily on an injected clock.

Theory of operation:
1. `observe` runs per response. Envoy's counters per host: consecutive 5xx, consecutive gateway
   failures (502/503/504), and, with split_external_local_origin_errors, consecutive local-origin
   failures (no response: connect failure, reset, timeout). Without the split a local-origin
   failure counts as a 503 (a timeout as a 504). Any other response resets the counters it
   does not feed.
2. Reaching a threshold is a detection (`ejections_detected_*`), and resets that counter. It is
   enforced with probability `enforcing_*` %, and only while ejected hosts stay within
   max_ejection_percent of all hosts (counting this one), or when none is ejected and
   always_eject_one_host is set; else `ejections_overflow`.
3. An ejected host stays out for base_ejection_time x (times ejected in a row), capped at
   max_ejection_time; the multiplier grows per ejection while below the cap.
4. Envoy sweeps every `interval` from the detector's start: a sweep returns hosts whose time is up
   and decrements the multiplier of hosts that are in service. Here sweeps are not timers: each
   `due(now)` runs every sweep whose time has passed, at its own scheduled instant, so results
   on a fake clock are exactly those of a timer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gossamer.proxy.upstream.cluster import OutlierConfig
from gossamer.proxy.upstream.hosts import HostState
from gossamer.proxy.upstream.stats import ClusterStats

GATEWAY = frozenset({502, 503, 504})


class OutlierDetector:
    __slots__ = ("config", "next_sweep", "random", "stats")

    def __init__(
        self,
        config: OutlierConfig,
        stats: ClusterStats,
        random: Callable[[], float],
        now: float,
    ) -> None:
        self.config = config
        self.stats = stats
        self.random = random
        self.next_sweep = now + config.interval

    def observe(
        self,
        host: HostState,
        status: int | None,
        local_status: int,
        hosts: Iterable[HostState],
        now: float,
    ) -> bool:
        """Feed one outcome; True when it ejected `host` (the caller rebuilds its balancer).
        `local_status` is what a local-origin failure counts as without the split (503; 504 for
        a timeout), as Envoy maps them."""
        config = self.config
        if status is None:
            if config.split_external_local_origin_errors:
                host.consecutive_local += 1
                if host.consecutive_local >= config.consecutive_local_origin_failure:
                    host.consecutive_local = 0
                    return self._detected(host, "local", hosts, now)
                return False
            status = local_status
        elif config.split_external_local_origin_errors:
            host.consecutive_local = 0
        if status < 500:
            host.consecutive_5xx = 0
            host.consecutive_gateway = 0
            return False
        ejected = False
        if status in GATEWAY:
            host.consecutive_gateway += 1
            if host.consecutive_gateway >= config.consecutive_gateway_failure:
                host.consecutive_gateway = 0
                ejected = self._detected(host, "gateway", hosts, now)
        else:
            host.consecutive_gateway = 0
        host.consecutive_5xx += 1
        if host.consecutive_5xx >= config.consecutive_5xx:
            host.consecutive_5xx = 0
            ejected = self._detected(host, "5xx", hosts, now) or ejected
        return ejected

    def _detected(self, host: HostState, kind: str, hosts: Iterable[HostState], now: float) -> bool:
        config, stats = self.config, self.stats
        if kind == "5xx":
            stats.od_ejections_detected_consecutive_5xx += 1
            enforcing = config.enforcing_consecutive_5xx
        elif kind == "gateway":
            stats.od_ejections_detected_consecutive_gateway_failure += 1
            enforcing = config.enforcing_consecutive_gateway_failure
        else:
            stats.od_ejections_detected_consecutive_local_origin_failure += 1
            enforcing = config.enforcing_consecutive_local_origin_failure
        if host.ejected_at is not None:
            return False
        if enforcing < 100 and self.random() * 100.0 >= enforcing:
            return False
        members = list(hosts)
        active = sum(1 for h in members if h.ejected_at is not None)
        allowed = 100.0 * (active + 1) / len(members) <= config.max_ejection_percent
        if not allowed and not (config.always_eject_one_host and active == 0):
            stats.od_ejections_overflow += 1
            return False
        host.ejected_at = now
        if config.base_ejection_time * host.ejections < config.max_ejection_time:
            host.ejections += 1
        stats.od_ejections_enforced_total += 1
        stats.od_ejections_active += 1
        if kind == "5xx":
            stats.od_ejections_enforced_consecutive_5xx += 1
        elif kind == "gateway":
            stats.od_ejections_enforced_consecutive_gateway_failure += 1
        else:
            stats.od_ejections_enforced_consecutive_local_origin_failure += 1
        return True

    def ejection_time(self, host: HostState) -> float:
        config = self.config
        return min(config.base_ejection_time * host.ejections, config.max_ejection_time)

    def due(self, now: float, hosts: Iterable[HostState]) -> bool:
        """Run every sweep scheduled at or before `now`; True when some host returned."""
        interval = self.config.interval
        members = list(hosts)
        returned = False
        while self.next_sweep <= now:
            at = self.next_sweep
            busy = False
            for host in members:
                if host.ejected_at is None:
                    if host.ejections:
                        host.ejections -= 1
                        busy = busy or host.ejections > 0
                elif at - host.ejected_at >= self.ejection_time(host):
                    host.ejected_at = None
                    host.consecutive_5xx = host.consecutive_gateway = host.consecutive_local = 0
                    self.stats.od_ejections_active -= 1
                    returned = True
                    busy = busy or host.ejections > 0
                else:
                    busy = True
            self.next_sweep = at + interval
            if not busy and self.next_sweep <= now:
                # Nothing left for later sweeps to change: skip to the first one after `now`.
                skipped = int((now - self.next_sweep) // interval) + 1
                self.next_sweep += skipped * interval
        return returned
