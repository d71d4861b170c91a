"""The per-type compile functions owned by routing and upstream, behind one NACK rule.

Every compiler raises ConfigRejected for what it cannot apply. One that fails with anything else
has a bug, yet the push is still unusable: it is logged and NACKed with the resource named,
instead of killing the xDS stream (Envoy NACKs whatever it cannot load).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import RouteTable
from gossamer.proxy.routing import compile_route_config as _compile_routes
from gossamer.proxy.upstream.cluster import ClusterConfig
from gossamer.proxy.upstream.cluster import compile_cluster as _compile_cluster
from gossamer.proxy.upstream.endpoints import EndpointSet
from gossamer.proxy.upstream.endpoints import compile_assignment as _compile_assignment

__all__ = [
    "ClusterConfig",
    "EndpointSet",
    "RouteTable",
    "compile_assignment",
    "compile_cluster",
    "compile_route_config",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


def compile_route_config(pb: Any) -> RouteTable:
    """RouteConfiguration → RouteTable (proxy/routing); raises ConfigRejected."""
    return _checked(_compile_routes, f'route "{pb.name}"', pb)


def compile_cluster(pb: Any) -> ClusterConfig:
    """Cluster → ClusterConfig (proxy/upstream/cluster.py); raises ConfigRejected."""
    return _checked(_compile_cluster, f'cluster "{pb.name}"', pb)


def compile_assignment(pb: Any) -> EndpointSet:
    """ClusterLoadAssignment → EndpointSet (proxy/upstream/endpoints.py); raises ConfigRejected."""
    return _checked(_compile_assignment, f'endpoints "{pb.cluster_name}"', pb)


def _checked(compile_: Callable[[Any], T], what: str, pb: Any) -> T:
    try:
        return compile_(pb)
    except ConfigRejected:
        raise
    except Exception as exc:
        log.exception("%s: compiler bug", what)
        raise ConfigRejected(f"{what}: cannot compile: {type(exc).__name__}: {exc}") from exc
