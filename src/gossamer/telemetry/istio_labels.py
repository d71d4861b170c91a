"""Istio's standard metric labels, from what one sidecar knows (scrape time only).

The sidecar's own side (`source_*` on source reports, `destination_*` on destination reports)
comes from its workload: name, namespace, the `app`/`version` labels, the canonical service
(`service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`, else the
workload name) and revision, its SPIFFE id. The other side's principal is the verified
certificate's URI SAN; its workload, namespace, app, version and canonical names come from
Istio's HTTP metadata exchange (telemetry/peer_metadata.py) when the peer sent them, else (TCP,
a peer without a sidecar, Envoy sidecars) they are the literal `unknown`, as Istio renders a
peer that sent no metadata. `connection_security_policy` is `mutual_tls` or
`none` on destination reports and `unknown` on source reports (Istio's rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "unknown"
CLUSTER_ID = "Kubernetes"  # Istio's default CLUSTER_ID for a single-cluster mesh

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    """The sidecar's own workload, as Istio's labels name it."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = "latest"

    @classmethod
    def of(cls, workload: str, namespace: str, labels: Mapping[str, str]) -> WorkloadFacts:
        app = labels.get("app")
        version = labels.get("version")
        canonical = (
            labels.get("service.istio.io/canonical-name")
            or labels.get("app.kubernetes.io/name")
            or app
            or workload
        )
        revision = (
            labels.get("service.istio.io/canonical-revision")
            or labels.get("app.kubernetes.io/version")
            or version
            or "latest"
        )
        return cls(workload, namespace, app or UNKNOWN, version or UNKNOWN, canonical, revision)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WorkloadFacts:
        """From `gossamer proxy`'s options as JSON (ProxyOptions.as_json)."""
        labels = options.get("labels") or {}
        return cls.of(
            str(options.get("workload", UNKNOWN)),
            str(options.get("namespace", UNKNOWN)),
            {str(k): str(v) for k, v in dict(labels).items()},
        )


UNKNOWN_WORKLOAD = WorkloadFacts()


def _side(facts: WorkloadFacts | None, principal: str | None) -> list[str]:
    """workload, namespace, principal, app, version, canonical service, revision, cluster."""
    if facts is None:
        return [UNKNOWN, UNKNOWN, principal or UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN,
                UNKNOWN]  # fmt: skip
    return [facts.workload, facts.namespace, principal or UNKNOWN, facts.app, facts.version,
            facts.canonical_service, facts.canonical_revision, CLUSTER_ID]  # fmt: skip


def service_of(
    cluster: str | None, host: str | None, own_namespace: str | None
) -> tuple[str, str, str]:
    """destination_service (FQDN), _name and _namespace from the cluster name
    (`outbound|port|subset|fqdn`, `inbound|port|name|fqdn`) or, for an inbound cluster without
    a service (`inbound|port||`, a passthrough), the Host the client asked for.
    `own_namespace` is given on destination reports only."""
    fqdn = ""
    if cluster is not None:
        parts = cluster.split("|")
        if len(parts) == 4 and parts[0] in ("outbound", "inbound"):
            fqdn = parts[3]
        elif own_namespace is None:  # outbound PassthroughCluster, BlackHoleCluster, ...
            return cluster, cluster, UNKNOWN
    if not fqdn:
        fqdn = host or ""
    if not fqdn:
        return UNKNOWN, UNKNOWN, own_namespace or UNKNOWN
    labels = fqdn.split(".")
    if len(labels) >= 3 and labels[2] == "svc":
        return fqdn, labels[0], labels[1]
    return fqdn, fqdn, own_namespace or UNKNOWN  # a ServiceEntry host, a bare name


def _common(
    facts: WorkloadFacts, principal: str | None, inbound: bool, peer: str | None,
    cluster: str | None, host: str | None, peer_facts: WorkloadFacts | None = None,
) -> list[tuple[str, str]]:  # fmt: skip
    if inbound:
        src, dst = _side(peer_facts, peer), _side(facts, principal)
    else:
        src, dst = _side(facts, principal), _side(peer_facts, peer)
    service, name, namespace = service_of(cluster, host, facts.namespace if inbound else None)
    return [
        ("reporter", "destination" if inbound else "source"),
        ("source_workload", src[0]),
        ("source_canonical_service", src[5]),
        ("source_canonical_revision", src[6]),
        ("source_workload_namespace", src[1]),
        ("source_principal", src[2]),
        ("source_app", src[3]),
        ("source_version", src[4]),
        ("source_cluster", src[7]),
        ("destination_workload", dst[0]),
        ("destination_workload_namespace", dst[1]),
        ("destination_principal", dst[2]),
        ("destination_app", dst[3]),
        ("destination_version", dst[4]),
        ("destination_service", service),
        ("destination_canonical_service", dst[5]),
        ("destination_canonical_revision", dst[6]),
        ("destination_service_name", name),
        ("destination_service_namespace", namespace),
        ("destination_cluster", dst[7]),
    ]


def security_policy(inbound: bool, peer: str | None) -> str:
    if not inbound:
        return UNKNOWN
    return "mutual_tls" if peer is not None else "none"


def http_labels(
    facts: WorkloadFacts, principal: str | None, inbound: bool, peer: str | None,
    cluster: str | None, host: str | None, code: int, flags: str,
    peer_facts: WorkloadFacts | None = None,
) -> Labels:  # fmt: skip
    """The labels of istio_requests_total / istio_request_duration_milliseconds; `peer_facts`:
    the other side's workload, when it told us (metadata exchange)."""
    labels = _common(facts, principal, inbound, peer, cluster, host, peer_facts)
    labels += [
        ("request_protocol", "http"),
        ("response_code", str(code)),
        ("grpc_response_status", ""),
        ("response_flags", flags),
        ("connection_security_policy", security_policy(inbound, peer)),
    ]
    return tuple(labels)


def tcp_labels(
    facts: WorkloadFacts, principal: str | None, inbound: bool, peer: str | None,
    cluster: str | None, flags: str,
) -> Labels:  # fmt: skip
    """The labels of the istio_tcp_* metrics."""
    labels = _common(facts, principal, inbound, peer, cluster, None)
    labels += [
        ("request_protocol", "tcp"),
        ("response_flags", flags),
        ("connection_security_policy", security_policy(inbound, peer)),
    ]
    return tuple(labels)
