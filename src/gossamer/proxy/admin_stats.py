"""Backend stats as plain JSON values: taken from one Dataplane, merged across workers.

Why plain values: workers live in other processes, so their backends' stats cross a socket;
the admin endpoints render the same shape whether it came from one process or was merged from
N. The shape, per cluster name:

    {"counters": {"upstream_rq_total": 12, "upstream_rq_200": 12, ...},
     "gauges": {"upstream_rq_active": 0, ...},
     "latency_ms": {"bounds": [0.5, 1, ...], "counts": [...one more than bounds], "sum": 8.5},
     "thresholds": {"max_connections": 1024, ...},
     "hosts": [{"address": "127.0.0.1:8001", "health_flags": ["healthy"], "weight": 1,
                "locality": "", "priority": 0, "rq_active": 0, "rq_error": 0,
                "rq_success": 12, "rq_total": 12}]}

Merging sums every counter, gauge, histogram bucket and per-host number; health flags are the
union of the flags workers report, with "healthy" only when no worker reports a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ClusterSnapshot = dict[str, Any]
Snapshot = dict[str, ClusterSnapshot]  # cluster name → ClusterSnapshot

HEALTHY = "healthy"
_HOST_IDENTITY = ("address",)
_HOST_KEPT = ("weight", "health_flags", "locality", "priority")


def snapshot_backends(dataplane: Any) -> Snapshot:
    """The stats of every Backend the Dataplane holds (`dataplane.backends`: name → Backend)."""
    return {name: _cluster_snapshot(backend) for name, backend in dataplane.backends.items()}


def _cluster_snapshot(backend: Any) -> ClusterSnapshot:
    stats = backend.stats
    snap: ClusterSnapshot = {
        "counters": dict(stats.counters()),
        "gauges": dict(stats.gauges()),
        "hosts": [_host_snapshot(h) for h in backend.hosts()],
    }
    # One request-time histogram per cluster, as Envoy's upstream_rq_time (the backend keeps
    # one per response class for Istio's labels; all share the same bounds).
    classes = list(stats.latency)
    if classes:
        counts = [sum(column) for column in zip(*(h.buckets for h in classes), strict=True)]
        snap["latency_ms"] = {
            "bounds": list(classes[0].bounds),
            "counts": counts,
            "sum": sum(h.sum for h in classes),
        }
    thresholds = getattr(getattr(backend, "config", None), "thresholds", None)
    if thresholds is not None:
        snap["thresholds"] = {
            name: int(getattr(thresholds, name))
            for name in ("max_connections", "max_pending_requests", "max_requests", "max_retries")
        }
    return snap


def _host_snapshot(host: Any) -> dict[str, Any]:
    """From upstream's HostStatus (`address` is `host:port`, `[v6]:port` for IPv6)."""
    return {
        "address": host.address,
        "health_flags": list(host.health_flags) or [HEALTHY],
        "weight": host.weight,
        "locality": host.locality,
        "priority": host.priority,
        "rq_active": host.rq_active,
        "rq_error": host.rq_error,
        "rq_success": host.rq_success,
        "rq_total": host.rq_total,
    }


def merge_snapshots(snapshots: Iterable[Snapshot]) -> Snapshot:
    """One snapshot summing all of `snapshots` (each from one worker), cluster order kept."""
    merged: Snapshot = {}
    for snapshot in snapshots:
        for name, cluster in snapshot.items():
            into = merged.get(name)
            if into is None:
                merged[name] = _copy_cluster(cluster)
            else:
                _merge_cluster(into, cluster)
    return merged


def _copy_cluster(cluster: Mapping[str, Any]) -> ClusterSnapshot:
    copy: ClusterSnapshot = {
        "counters": dict(cluster.get("counters", {})),
        "gauges": dict(cluster.get("gauges", {})),
        "hosts": [dict(h, health_flags=list(h["health_flags"])) for h in cluster.get("hosts", [])],
    }
    if "latency_ms" in cluster:
        latency = cluster["latency_ms"]
        copy["latency_ms"] = {
            "bounds": list(latency["bounds"]),
            "counts": list(latency["counts"]),
            "sum": latency["sum"],
        }
    if "thresholds" in cluster:
        copy["thresholds"] = dict(cluster["thresholds"])
    return copy


def _sum_into(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


def _merge_cluster(into: ClusterSnapshot, more: Mapping[str, Any]) -> None:
    _sum_into(into["counters"], more.get("counters", {}))
    _sum_into(into["gauges"], more.get("gauges", {}))
    latency = more.get("latency_ms")
    if latency is not None:
        mine = into.get("latency_ms")
        if mine is None:
            into["latency_ms"] = {**latency, "counts": list(latency["counts"])}
        elif list(mine["bounds"]) == list(latency["bounds"]):
            mine["counts"] = [a + b for a, b in zip(mine["counts"], latency["counts"], strict=True)]
            mine["sum"] += latency["sum"]
        else:  # cannot happen: every worker runs the same code
            raise ValueError("workers report latency histograms with different buckets")
    hosts = {tuple(h[k] for k in _HOST_IDENTITY): h for h in into["hosts"]}
    for host in more.get("hosts", []):
        key = tuple(host[k] for k in _HOST_IDENTITY)
        mine_host = hosts.get(key)
        if mine_host is None:
            copy = dict(host, health_flags=list(host["health_flags"]))
            into["hosts"].append(copy)
            hosts[key] = copy
            continue
        mine_host["health_flags"] = merge_health_flags(
            mine_host["health_flags"], host["health_flags"]
        )
        for field, value in host.items():
            if field in _HOST_IDENTITY or field in _HOST_KEPT:
                continue
            if isinstance(value, int | float):
                mine_host[field] = mine_host.get(field, 0) + value


def merge_health_flags(a: Iterable[str], b: Iterable[str]) -> list[str]:
    """A host is healthy only if healthy everywhere; otherwise the union of failure flags."""
    failures = [f for f in dict.fromkeys([*a, *b]) if f != HEALTHY]
    return failures or [HEALTHY]


def rbac_counters(config: Any) -> dict[str, int]:
    """Envoy's RBAC counters under their full names (`http.<stat_prefix>.rbac.allowed`,
    `<network stat_prefix>rbac.denied`, ...) for every RBAC filter of the accepted listeners
    (`config`: a ProxyConfig or None), summed over chains sharing a name as Envoy's stat store
    does. Plain values, so workers' counters merge with `merge_counters`."""
    out: dict[str, int] = {}
    if config is None:
        return out
    for listener in config.listeners.values():
        chains = list(listener.chains)
        if listener.default_chain is not None:
            chains.append(listener.default_chain)
        for chain in chains:
            handler = chain.handler
            for rbac in (getattr(handler, "rbac", None), getattr(handler, "network_rbac", None)):
                if rbac is None:
                    continue
                for one in rbac.filters:
                    _sum_into(out, one.stats.names())
    return out


def merge_counters(snapshots: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Workers' `rbac_counters` summed by name."""
    out: dict[str, int] = {}
    for snapshot in snapshots:
        _sum_into(out, snapshot)
    return dict(sorted(out.items()))


# --- everything a worker reports: backends, security counters, Istio's metrics ---------------

Report = dict[str, Any]  # {"clusters": Snapshot, "counters": {name: n}, "istio": {...}}


def report_of(dataplane: Any) -> Report:
    """One Dataplane's stats: its backends, its listeners' TLS counters and RBAC counters under
    Envoy's names, and Istio's standard metrics (telemetry/istio_metrics)."""
    from gossamer.telemetry.istio_metrics import recorder_of

    counters = rbac_counters(getattr(dataplane, "config", None))
    _sum_into(counters, getattr(dataplane, "listener_counters", {}))
    return {
        "clusters": snapshot_backends(dataplane),
        "counters": counters,
        "istio": recorder_of(dataplane).snapshot(),
    }


def merge_reports(reports: Iterable[Mapping[str, Any]]) -> Report:
    """Workers' reports summed: clusters as `merge_snapshots`, counters by name, Istio's series
    by label set."""
    from gossamer.telemetry.istio_metrics import merge

    reports = list(reports)
    return {
        "clusters": merge_snapshots(r.get("clusters", {}) for r in reports),
        "counters": merge_counters(r.get("counters", {}) for r in reports),
        "istio": merge(r.get("istio", {}) for r in reports),
    }
