"""Backends (Envoy's clusters): endpoints, balancers, circuit breakers, outlier detection, pools."""

from gossamer.proxy.upstream.backend import Backend
from gossamer.proxy.upstream.breaker import CircuitBreaker
from gossamer.proxy.upstream.cluster import (
    ClusterConfig,
    LbOptions,
    OutlierConfig,
    Thresholds,
    compile_cluster,
)
from gossamer.proxy.upstream.endpoints import (
    Endpoint,
    EndpointSet,
    LocalityEndpoints,
    compile_assignment,
)
from gossamer.proxy.upstream.hosts import HostStatus
from gossamer.proxy.upstream.stats import ISTIO_BUCKETS_MS, ClusterStats, LatencyHistogram

__all__ = [
    "ISTIO_BUCKETS_MS",
    "Backend",
    "CircuitBreaker",
    "ClusterConfig",
    "ClusterStats",
    "Endpoint",
    "EndpointSet",
    "HostStatus",
    "LatencyHistogram",
    "LbOptions",
    "LocalityEndpoints",
    "OutlierConfig",
    "Thresholds",
    "compile_assignment",
    "compile_cluster",
]
