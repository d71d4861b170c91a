"""The per-type compile functions owned by routing and upstream, resolved on first use.

Why indirect: proxy/routing and proxy/upstream are written in parallel with this package; binding
them at call time keeps LDS compilation and the snapshot importable (and testable) on their own.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from gossamer.proxy.config.rejected import ConfigRejected

# The compiled values (RouteTable, ClusterConfig, EndpointSet) are opaque to this package.
RouteTable = Any
ClusterConfig = Any
EndpointSet = Any

log = logging.getLogger(__name__)

_WHERE = {
    "compile_route_config": "gossamer.proxy.routing",
    "compile_cluster": "gossamer.proxy.upstream.cluster",
    "compile_assignment": "gossamer.proxy.upstream.endpoints",
}
_resolved: dict[str, Callable[[Any], Any]] = {}


def _compiler(name: str) -> Callable[[Any], Any]:
    found = _resolved.get(name)
    if found is None:
        module = importlib.import_module(_WHERE[name])
        found = _resolved[name] = getattr(module, name)
    return found


def compile_route_config(pb: Any) -> RouteTable:
    """RouteConfiguration → RouteTable (proxy/routing); raises ConfigRejected."""
    return _checked("compile_route_config", f'route "{pb.name}"', pb)


def compile_cluster(pb: Any) -> ClusterConfig:
    """Cluster → ClusterConfig (proxy/upstream/cluster.py); raises ConfigRejected."""
    return _checked("compile_cluster", f'cluster "{pb.name}"', pb)


def compile_assignment(pb: Any) -> EndpointSet:
    """ClusterLoadAssignment → EndpointSet (proxy/upstream/endpoints.py); raises ConfigRejected."""
    return _checked("compile_assignment", f'endpoints "{pb.cluster_name}"', pb)


def _checked(name: str, what: str, pb: Any) -> Any:
    """A compiler that fails with anything but ConfigRejected has a bug, yet the push is still
    unusable: NACK it with the resource named rather than kill the xDS stream."""
    try:
        return _compiler(name)(pb)
    except ConfigRejected:
        raise
    except Exception as exc:
        log.exception("%s: compiler bug", what)
        raise ConfigRejected(f"{what}: cannot compile: {type(exc).__name__}: {exc}") from exc
