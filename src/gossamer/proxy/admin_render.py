"""The admin endpoints' bodies, in Envoy's shapes: /config_dump, /clusters, /stats, Prometheus.

Pure functions of a stats snapshot (admin_stats) or of the accepted resources, so they are the
same for one process or N workers, and testable without a server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from gossamer.proxy.admin_stats import Snapshot
from gossamer.telemetry.envoy_tags import prometheus_name
from gossamer.telemetry.istio_metrics import DURATION_BUCKETS_MS
from gossamer.telemetry.prometheus import Counter, Family, Gauge, Histogram

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

_ADMIN = "type.googleapis.com/envoy.admin.v3."
# (resource type, dump type, list field, entry field): the order Envoy's /config_dump uses.
_DUMPS = (
    (CLUSTER, "ClustersConfigDump", "dynamic_active_clusters", "cluster"),
    (LISTENER, "ListenersConfigDump", "dynamic_listeners", "listener"),
    (ROUTE, "RoutesConfigDump", "dynamic_route_configs", "route_config"),
    (ENDPOINT, "EndpointsConfigDump", "dynamic_endpoint_configs", "endpoint_config"),
)
# Envoy's default histogram buckets (ms), used when a cluster reports none of its own.
ENVOY_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                    60000, 300000, 600000, 1800000, 3600000)  # fmt: skip


def _register_extension_types() -> None:
    """MessageToDict must resolve every `Any` inside the resources: import the extensions the
    control plane sends (HTTP filters, tcp_proxy, protocol options, retry host predicates)."""
    from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: F401
    from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
    from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
    from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2  # noqa: F401
    from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
        http_connection_manager_pb2,
    )
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
    from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401


def _timestamp(when: float | None) -> str:
    if when is None:
        return ""
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds")


def config_dump(
    resources: Mapping[str, Mapping[str, Message]],
    versions: Mapping[str, str],
    updated: Mapping[str, float],
) -> dict[str, Any]:
    """Envoy's /config_dump: one `*ConfigDump` per type with version_info, and every resource
    as JSON (MessageToDict) with its version and last_updated (`updated`: type → epoch s)."""
    _register_extension_types()
    configs: list[dict[str, Any]] = []
    for type_url, dump, list_field, entry_field in _DUMPS:
        version = versions.get(type_url, "")
        when = _timestamp(updated.get(type_url))
        entries = []
        for name, pb in sorted(resources.get(type_url, {}).items()):
            body = {"@type": type_url, **json_format.MessageToDict(pb)}
            entry: dict[str, Any] = {"version_info": version, "last_updated": when}
            if type_url == LISTENER:
                entries.append({"name": name, "active_state": {**entry, entry_field: body}})
            else:
                entries.append({**entry, entry_field: body})
        configs.append({"@type": _ADMIN + dump, "version_info": version, list_field: entries})
    return {"configs": configs}


_HOST_STATS = ("rq_active", "rq_error", "rq_success", "rq_total")


def clusters_text(snapshot: Snapshot) -> str:
    """Envoy's /clusters: `cluster::key::value` and `cluster::host:port::stat::value` lines."""
    lines: list[str] = []
    for name, cluster in snapshot.items():
        for key, value in cluster.get("thresholds", {}).items():
            lines.append(f"{name}::default_priority::{key}::{value}")
        lines.append(f"{name}::added_via_api::true")
        for host in cluster["hosts"]:
            prefix = f"{name}::{host['address']}"
            for stat in _HOST_STATS:
                lines.append(f"{prefix}::{stat}::{host.get(stat, 0)}")
            lines.append(f"{prefix}::health_flags::{health_flags_text(host['health_flags'])}")
            lines.append(f"{prefix}::weight::{host['weight']}")
            region, _, zone = str(host.get("locality", "")).partition("/")
            lines.append(f"{prefix}::region::{region}")
            lines.append(f"{prefix}::zone::{zone.partition('/')[0]}")
            lines.append(f"{prefix}::priority::{host.get('priority', 0)}")
    return "".join(line + "\n" for line in lines)


def health_flags_text(flags: list[str]) -> str:
    """As Envoy prints them: `healthy`, or failure flags each with a leading slash."""
    if flags == ["healthy"]:
        return "healthy"
    return "".join(f if f.startswith("/") else "/" + f for f in flags)


def _socket_address(address: str) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    return {"address": host.strip("[]"), "port_value": int(port)}


def _host_stat(name: str, value: int) -> dict[str, Any]:
    kind = "GAUGE" if name.endswith("active") else "COUNTER"
    return {"name": name, "type": kind, "value": str(value)}


def clusters_json(snapshot: Snapshot) -> dict[str, Any]:
    """Envoy's /clusters?format=json (cluster_statuses / host_statuses)."""
    statuses = []
    for name, cluster in snapshot.items():
        hosts = []
        for host in cluster["hosts"]:
            flags = host["health_flags"]
            health: dict[str, Any] = {"eds_health_status": "HEALTHY"}
            for flag in flags:
                if flag != "healthy":
                    health[flag.strip("/")] = True
            hosts.append(
                {
                    "address": {"socket_address": _socket_address(host["address"])},
                    "stats": [_host_stat(s, host.get(s, 0)) for s in _HOST_STATS],
                    "health_status": health,
                    "weight": host["weight"],
                }
            )
        statuses.append({"name": name, "added_via_api": True, "host_statuses": hosts})
    return {"cluster_statuses": statuses}


def stats_values(
    snapshot: Snapshot, pattern: str | None = None, counters: Mapping[str, int] | None = None
) -> list[tuple[str, int]]:
    """Envoy's /stats: (`cluster.<name>.<stat>`, value) and `counters` under their own full
    names (listener TLS and RBAC counters: admin_stats.report_of), sorted by name; `pattern` is
    Envoy's `filter` (a regex searched in the name). ValueError names a bad regex."""
    matcher = None
    if pattern:
        try:
            matcher = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    out: list[tuple[str, int]] = []
    for name, cluster in snapshot.items():
        values = {**cluster["counters"], **cluster["gauges"]}
        hosts = cluster["hosts"]
        values["membership_total"] = len(hosts)
        values["membership_healthy"] = sum(1 for h in hosts if h["health_flags"] == ["healthy"])
        for stat, value in values.items():
            full = f"cluster.{name}.{stat}"
            if matcher is None or matcher.search(full):
                out.append((full, value))
    for full, value in (counters or {}).items():
        if matcher is None or matcher.search(full):
            out.append((full, value))
    return sorted(out)


def stats_text(values: list[tuple[str, int]]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in values)


def stats_json(values: list[tuple[str, int]]) -> dict[str, Any]:
    return {"stats": [{"name": name, "value": value} for name, value in values]}


def _prometheus_name(stat: str) -> str:
    return "envoy_cluster_" + stat.replace(".", "_").replace("-", "_")


def prometheus_families(snapshot: Snapshot) -> list[Family]:
    """Per cluster, with Envoy's tag extraction: `upstream_rq_<code>` → envoy_cluster_upstream_rq
    {envoy_response_code}, `upstream_rq_<N>xx` → envoy_cluster_upstream_rq_xx
    {envoy_response_code_class}, every other counter as envoy_cluster_<stat>, gauges likewise,
    latency as the envoy_cluster_upstream_rq_time histogram (ms)."""
    by_code = Counter("envoy_cluster_upstream_rq", "Upstream requests by response code")
    by_class = Counter("envoy_cluster_upstream_rq_xx", "Upstream requests by response class")
    counters: dict[str, Counter] = {}
    gauges: dict[str, Gauge] = {}
    healthy = Gauge("envoy_cluster_membership_healthy", "Healthy hosts")
    total = Gauge("envoy_cluster_membership_total", "Hosts")
    latency: Histogram | None = None
    for name, cluster in snapshot.items():
        label = {"envoy_cluster_name": name}
        for stat, value in cluster["counters"].items():
            code = stat.removeprefix("upstream_rq_")
            if code != stat and len(code) == 3 and code.isdigit():
                by_code.add({"envoy_response_code": code, **label}, value)
            elif code != stat and len(code) == 3 and code[0].isdigit() and code[1:] == "xx":
                by_class.add({"envoy_response_code_class": code[0], **label}, value)
            else:
                family = counters.get(stat)
                if family is None:
                    family = counters[stat] = Counter(_prometheus_name(stat), stat)
                family.add(label, value)
        for stat, value in cluster["gauges"].items():
            gauge = gauges.get(stat)
            if gauge is None:
                gauge = gauges[stat] = Gauge(_prometheus_name(stat), stat)
            gauge.set(label, value)
        hosts = cluster["hosts"]
        total.set(label, len(hosts))
        healthy.set(label, sum(1 for h in hosts if h["health_flags"] == ["healthy"]))
        observed = cluster.get("latency_ms")
        if observed is not None:
            if latency is None:
                latency = Histogram(
                    "envoy_cluster_upstream_rq_time",
                    "Upstream request time (ms)",
                    bounds=tuple(observed["bounds"]),
                )
            latency.add_counts(label, observed["counts"], observed["sum"])
    families: list[Family] = [by_code, by_class, *counters.values(), *gauges.values()]
    families += [healthy, total]
    if latency is not None:
        families.append(latency)
    return families


def certificate_families(certs: dict[str, Any]) -> list[Family]:
    """Istio's agent gauge from the `/certs` view: seconds until the workload certificate
    (`resource_name="default"`) and the earliest trust bundle root (`"ROOTCA"`) expire; nothing
    before the first certificate."""
    expiry = Gauge(
        "istio_agent_cert_expiry_seconds",
        "The time remaining, in seconds, before the certificate chain will expire. "
        "A negative value indicates the cert is expired.",
    )
    for entry in certs.get("certificates", []):
        chain = entry.get("cert_chain", [])
        roots = entry.get("ca_cert", [])
        if chain:
            expiry.set({"resource_name": "default"}, chain[0]["seconds_until_expiration"])
        if roots:
            earliest = min(r["seconds_until_expiration"] for r in roots)
            expiry.set({"resource_name": "ROOTCA"}, earliest)
    return [expiry] if expiry.samples else []


def counter_families(counters: Mapping[str, int]) -> list[Family]:
    """Listener TLS and RBAC counters with Envoy's tag extraction (telemetry/envoy_tags), one
    family per extracted name, in name order."""
    families: dict[str, Counter] = {}
    for stat, value in sorted(counters.items()):
        name, labels = prometheus_name(stat)
        family = families.get(name)
        if family is None:
            family = families[name] = Counter(name, name.removeprefix("envoy_"))
        family.add(dict(labels), value)
    return list(families.values())


_TCP_FAMILIES = (
    ("istio_tcp_connections_opened_total", "Total TCP connections opened"),
    ("istio_tcp_connections_closed_total", "Total TCP connections closed"),
    ("istio_tcp_sent_bytes_total", "Bytes sent to the client on TCP connections"),
    ("istio_tcp_received_bytes_total", "Bytes received from the client on TCP connections"),
)


def istio_families(snapshot: Mapping[str, Any]) -> list[Family]:
    """Istio's standard metrics from a (merged) telemetry/istio_metrics snapshot."""
    total = Counter("istio_requests_total", "Total requests")
    duration = Histogram(
        "istio_request_duration_milliseconds", "Request duration", bounds=DURATION_BUCKETS_MS
    )
    for pairs, values in snapshot.get("requests", []):
        labels = dict((str(k), str(v)) for k, v in pairs)
        total.add(labels, values[0])
        duration.add_counts(labels, [int(n) for n in values[2:]], values[1])
    tcp = [Counter(name, text) for name, text in _TCP_FAMILIES]
    for pairs, values in snapshot.get("tcp", []):
        labels = dict((str(k), str(v)) for k, v in pairs)
        for family, value in zip(tcp, values, strict=True):
            family.add(labels, value)
    return [total, duration, *tcp]
