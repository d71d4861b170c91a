"""Live per-host state (mutable, owned by one Backend) and its snapshot for `/clusters`."""

from __future__ import annotations

from dataclasses import dataclass

from gossamer.proxy.upstream.endpoints import Endpoint

FAILED_OUTLIER_CHECK = "/failed_outlier_check"
FAILED_EDS_HEALTH = "/failed_eds_health"


class HostState:
    """Everything a Backend tracks about one upstream host. It outlives EDS pushes that keep the
    host (matched by `host:port`), so active requests, ejections and counters carry over."""

    __slots__ = (
        "active",
        "consecutive_5xx",
        "consecutive_gateway",
        "consecutive_local",
        "ejected_at",
        "ejections",
        "endpoint",
        "locality",
        "priority",
        "rq_error",
        "rq_success",
        "rq_total",
        "weight",
    )

    def __init__(self, endpoint: Endpoint, locality: str = "", priority: int = 0) -> None:
        self.endpoint = endpoint
        self.weight = endpoint.weight
        self.locality = locality
        self.priority = priority
        self.active = 0
        self.rq_total = 0
        self.rq_error = 0
        self.rq_success = 0
        self.consecutive_5xx = 0
        self.consecutive_gateway = 0
        self.consecutive_local = 0
        self.ejected_at: float | None = None  # None: not ejected
        self.ejections = 0  # Envoy's ejection-time multiplier ("times ejected in a row")

    @property
    def routable(self) -> bool:
        """Healthy per EDS and not ejected by outlier detection."""
        return self.endpoint.healthy and self.ejected_at is None

    def status(self) -> HostStatus:
        flags: list[str] = []
        if self.ejected_at is not None:
            flags.append(FAILED_OUTLIER_CHECK)
        if not self.endpoint.healthy:
            flags.append(FAILED_EDS_HEALTH)
        return HostStatus(
            address=self.endpoint.address,
            weight=self.weight,
            locality=self.locality,
            priority=self.priority,
            health_flags=tuple(flags),
            rq_active=self.active,
            rq_total=self.rq_total,
            rq_error=self.rq_error,
            rq_success=self.rq_success,
            ejected=self.ejected_at is not None,
        )

    def __repr__(self) -> str:
        state = " ejected" if self.ejected_at is not None else ""
        return f"<Host {self.endpoint.address} w={self.weight} active={self.active}{state}>"


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One line group of Envoy's `/clusters` output for a host."""

    address: str
    weight: int
    locality: str
    priority: int
    health_flags: tuple[str, ...]  # empty: healthy
    rq_active: int
    rq_total: int
    rq_error: int
    rq_success: int
    ejected: bool

    @property
    def health_text(self) -> str:
        """Envoy prints `healthy` when no flag is set, else the flags run together."""
        return "".join(self.health_flags) or "healthy"
