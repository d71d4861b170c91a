"""Client-side traffic policy per (host, port, subset): the seam between DestinationRules and xDS.

Theory of operation:
1. `Policies` answers for one client namespace; `resolve(host, port, subset)` returns a
   `ClusterPolicy` with every Istio default already applied (§2.2-2.4), so the cluster and route
   builders never look at a DestinationRule.
2. Where the rule comes from (lookup order, merging, exportTo) is `destinations.py`'s job; this
   module only holds values and defaults.
3. Client TLS: `ClusterPolicy.tls` carries the DR's TLS block unchanged; `client_tls.py` turns
   it (or its absence: auto mTLS) into the cluster's transport socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

UNLIMITED = 2**32 - 1  # Istio's "effectively unlimited" circuit-breaker thresholds (§2.3)
DEFAULT_CONNECT_TIMEOUT = timedelta(seconds=10)

HashKind = Literal["header", "cookie", "source_ip", "query"]
Simple = Literal["LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "PASSTHROUGH"]


@dataclass(frozen=True, slots=True)
class HashKey:
    """What consistent-hash load balancing hashes on (cookie with a ttl: generated if absent)."""

    kind: HashKind
    name: str = ""
    path: str = ""
    ttl: timedelta | None = None


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    simple: Simple = "LEAST_REQUEST"
    hash: HashKey | None = None
    maglev_table_size: int = 0  # >0: MAGLEV instead of RING_HASH
    minimum_ring_size: int = 0

    @property
    def consistent(self) -> bool:
        return self.hash is not None


@dataclass(frozen=True, slots=True)
class ConnectionPool:
    max_connections: int = UNLIMITED
    max_pending_requests: int = UNLIMITED
    max_requests: int = UNLIMITED
    max_retries: int = UNLIMITED
    connect_timeout: timedelta = DEFAULT_CONNECT_TIMEOUT
    tcp_idle_timeout: timedelta | None = None
    http_idle_timeout: timedelta | None = None
    max_requests_per_connection: int = 0  # 0: unlimited
    max_connection_duration: timedelta | None = None
    h2_upgrade: bool = False


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    consecutive_5xx: int = 5
    consecutive_gateway_errors: int = 0
    consecutive_local_origin_failures: int = 5
    split_external_local_origin_errors: bool = False
    interval: timedelta = timedelta(seconds=10)
    base_ejection_time: timedelta = timedelta(seconds=30)
    max_ejection_percent: int = 10
    min_health_percent: int = 0


@dataclass(frozen=True, slots=True)
class ClusterPolicy:
    """Everything a cluster and the routes to it need from the DestinationRule, defaults applied."""

    lb: LoadBalancer = field(default_factory=LoadBalancer)
    pool: ConnectionPool = field(default_factory=ConnectionPool)
    outlier: OutlierDetection | None = None
    tls: object | None = None  # the DR's ClientTLSSettings; None: auto mTLS (client_tls.py)


DEFAULT_POLICY = ClusterPolicy()


@dataclass(frozen=True, slots=True)
class Subset:
    name: str
    labels: tuple[tuple[str, str], ...]

    @property
    def selector(self) -> dict[str, str]:
        return dict(self.labels)
