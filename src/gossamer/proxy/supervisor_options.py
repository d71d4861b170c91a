"""`gossamer proxy`'s options: what it was told on its command line, and the xDS node they make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gossamer.runtime.envoy_bootstrap import IDENTITY_METADATA, node_id, node_metadata


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """Everything `gossamer proxy` was told on its command line (see docs/sidecar.md)."""

    controlplane: str
    namespace: str = "default"
    service_account: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)
    workload: str = "workload"
    ip: str = "127.0.0.1"
    explicit: bool = False
    # The INTERCEPTION_MODE announced: REDIRECT asks for the capture listeners (iptables, or the
    # explicit data plane); NONE for Istio's no-iptables layout (listeners bound per port).
    interception_mode: str = "REDIRECT"
    # Istio's ISTIO_KUBE_APP_PROBERS JSON: probes the sidecar runs for the prober (app_health.py)
    app_probers: str = ""
    outbound_port: int = 15001
    inbound_port: int = 15006
    admin_port: int = 15000
    stats_port: int = 15020
    health_port: int = 15021
    concurrency: int = 2
    drain_timeout: float = 5.0
    log_level: str = "info"
    gateway: bool = False  # an ingress gateway (router node): serves Istio Gateway listeners
    gateway_address: str = "127.0.0.1"  # where gateway listeners on 0.0.0.0 bind (gateway mode)
    ca_address: str = ""  # the certificate service (15012); "" = no workload certificate
    credential_file: str = ""  # the pod's bootstrap credential (from the runtime)
    root_cert_file: str = ""  # the pinned mesh root

    @property
    def node_id(self) -> str:
        return node_id(
            "router" if self.gateway else "sidecar", self.ip, self.workload, self.namespace
        )

    @property
    def admin_host(self) -> str:
        """Explicit sidecars share the host's loopback: each binds only its own --ip, so several
        run side by side on the same port numbers. In a pod: 127.0.0.1, as Envoy's admin."""
        return self.ip if self.explicit else "127.0.0.1"

    @property
    def stats_host(self) -> str:
        """Where stats and health listen: --ip for host processes (explicit sidecars, the
        gateway), else every address (the pod IP, as Istio's 15020/15021). A host process on
        0.0.0.0:15020 would keep every explicit sidecar off 15020 on its own loopback IP."""
        return self.ip if self.explicit or self.gateway else "0.0.0.0"

    @property
    def cluster(self) -> str:
        return f"{self.workload}.{self.namespace}"

    def metadata(self) -> dict[str, Any]:
        # REDIRECT even in explicit mode: the sidecar wants the capture listeners; explicit
        # (no iptables) is handled by the data plane.
        return node_metadata(
            namespace=self.namespace,
            labels=self.labels,
            interception_mode=self.interception_mode,
            workload_name=self.workload,
            pod_name=self.workload,
            service_account=self.service_account,
            instance_ips=(self.ip,),
            extra={IDENTITY_METADATA: "true"} if self.ca_address else None,
        )

    def node(self) -> Any:
        """The Envoy `Node` proto sent on the ADS stream."""
        from gossamer.proxy.xds_client import make_node

        return make_node(self.node_id, self.cluster, self.metadata())

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "labels": dict(self.labels)}
