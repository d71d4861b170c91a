"""Envoy's per-cluster resource limits (circuit breakers, priority DEFAULT).

"Open" means traffic is blocked: a `try_*` that would exceed its limit returns False, counts the
overflow under Envoy's name and changes nothing else. Every successful `try_*` must be paired
with exactly one `end_*`. Limits are read at call time, so `reconfigure` may change them while
requests are in flight (a lowered limit blocks new work until enough of it ends).
"""

from __future__ import annotations

from gossamer.proxy.upstream.cluster import Thresholds
from gossamer.proxy.upstream.stats import ClusterStats


class CircuitBreaker:
    __slots__ = ("limits", "stats")

    def __init__(self, limits: Thresholds, stats: ClusterStats) -> None:
        self.limits = limits
        self.stats = stats

    def try_request(self) -> bool:
        """max_requests: Envoy counts its overflow as `upstream_rq_pending_overflow` too."""
        stats = self.stats
        if stats.rq_active >= self.limits.max_requests:
            stats.upstream_rq_pending_overflow += 1
            return False
        stats.rq_active += 1
        return True

    def end_request(self) -> None:
        self.stats.rq_active -= 1

    def try_pending(self) -> bool:
        """max_pending_requests: a request waiting for a connection to become available."""
        stats = self.stats
        if stats.rq_pending_active >= self.limits.max_pending_requests:
            stats.upstream_rq_pending_overflow += 1
            return False
        stats.rq_pending_active += 1
        return True

    def end_pending(self) -> None:
        self.stats.rq_pending_active -= 1

    def try_connection(self) -> bool:
        stats = self.stats
        if stats.cx_active >= self.limits.max_connections:
            stats.upstream_cx_overflow += 1
            return False
        stats.cx_active += 1
        return True

    def end_connection(self) -> None:
        self.stats.cx_active -= 1

    def try_retry(self) -> bool:
        """max_retries: concurrent retries in flight; a granted retry counts `upstream_rq_retry`."""
        stats = self.stats
        if stats.rq_retry_active >= self.limits.max_retries:
            stats.upstream_rq_retry_overflow += 1
            return False
        stats.rq_retry_active += 1
        stats.upstream_rq_retry += 1
        return True

    def end_retry(self) -> None:
        self.stats.rq_retry_active -= 1

    def remaining(self) -> dict[str, int]:
        """Envoy's `circuit_breakers.default.remaining_*` gauges (track_remaining)."""
        limits, stats = self.limits, self.stats
        return {
            "remaining_cx": max(0, limits.max_connections - stats.cx_active),
            "remaining_pending": max(0, limits.max_pending_requests - stats.rq_pending_active),
            "remaining_rq": max(0, limits.max_requests - stats.rq_active),
            "remaining_retries": max(0, limits.max_retries - stats.rq_retry_active),
        }

    def open(self) -> dict[str, int]:
        """Envoy's `circuit_breakers.default.*_open` gauges: 1 while the limit is reached."""
        limits, stats = self.limits, self.stats
        return {
            "cx_open": int(stats.cx_active >= limits.max_connections),
            "rq_pending_open": int(stats.rq_pending_active >= limits.max_pending_requests),
            "rq_open": int(stats.rq_active >= limits.max_requests),
            "rq_retry_open": int(stats.rq_retry_active >= limits.max_retries),
        }

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<CircuitBreaker rq={s.rq_active}/{self.limits.max_requests} "
            f"pending={s.rq_pending_active}/{self.limits.max_pending_requests} "
            f"cx={s.cx_active}/{self.limits.max_connections} "
            f"retries={s.rq_retry_active}/{self.limits.max_retries}>"
        )
