"""ProxyNode: who is on an ADS stream, parsed from the xDS `node` with Istio's id conventions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf import json_format

ProxyKind = Literal["sidecar", "router", "proxyless"]
_KINDS: frozenset[str] = frozenset({"sidecar", "router", "proxyless"})
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class Locality:
    region: str = ""
    zone: str = ""
    sub_zone: str = ""


@dataclass(frozen=True, slots=True)
class ProxyNode:
    """A data-plane client as it introduced itself on the first request of a stream.

    Node ids follow Istio: `<kind>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` with kind sidecar,
    router or proxyless. Other ids are accepted: a user agent starting with "gRPC" makes the
    node proxyless, anything else a sidecar. Istio's metadata keys NAMESPACE, LABELS,
    SERVICE_ACCOUNT, WORKLOAD_NAME, INSTANCE_IPS (and GENERATOR=grpc) override or augment what
    the id says. Equality covers every field; the hash skips the metadata and labels dicts.
    """

    id: str
    cluster: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    user_agent_name: str = ""
    locality: Locality = Locality()
    kind: ProxyKind = "sidecar"
    ips: tuple[str, ...] = ()
    namespace: str = DEFAULT_NAMESPACE
    workload: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    service_account: str = ""

    @property
    def ip(self) -> str:
        """The first instance IP, or "" when the node gave none."""
        return self.ips[0] if self.ips else ""

    @classmethod
    def from_proto(cls, node: Any) -> ProxyNode:
        """Parse an `envoy.config.core.v3.Node`; never fails on odd ids (they are the peer's)."""
        metadata: dict[str, Any] = (
            json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
        )
        loc = node.locality
        return cls.parse(
            node_id=str(node.id),
            cluster=str(node.cluster),
            metadata=metadata,
            user_agent_name=str(node.user_agent_name),
            locality=Locality(str(loc.region), str(loc.zone), str(loc.sub_zone)),
        )

    @classmethod
    def parse(
        cls,
        node_id: str,
        *,
        cluster: str = "",
        metadata: Mapping[str, Any] | None = None,
        user_agent_name: str = "",
        locality: Locality = Locality(),
    ) -> ProxyNode:
        """Derive kind, ips, namespace and workload from the id, then apply metadata."""
        meta = dict(metadata or {})
        parts = node_id.split("~")
        kind: ProxyKind
        ips: tuple[str, ...] = ()
        namespace = ""
        workload = ""
        if len(parts) == 4 and parts[0] in _KINDS:
            kind = parts[0]  # type: ignore[assignment]
            ips = tuple(ip for ip in parts[1].split(",") if ip)
            pod, _, pod_ns = parts[2].rpartition(".")
            workload = pod if pod else parts[2]
            namespace = pod_ns if pod else parts[3].split(".", 1)[0]
        else:
            kind = "proxyless" if user_agent_name.startswith("gRPC") else "sidecar"
        if str(meta.get("GENERATOR", "")).lower() == "grpc":
            kind = "proxyless"
        if meta.get("NAMESPACE"):
            namespace = str(meta["NAMESPACE"])
        if meta.get("WORKLOAD_NAME"):
            workload = str(meta["WORKLOAD_NAME"])
        if meta.get("INSTANCE_IPS"):
            ips = tuple(ip.strip() for ip in str(meta["INSTANCE_IPS"]).split(",") if ip.strip())
        raw_labels = meta.get("LABELS")
        labels = (
            {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
        )
        return cls(
            id=node_id,
            cluster=cluster,
            metadata=meta,
            user_agent_name=user_agent_name,
            locality=locality,
            kind=kind,
            ips=ips,
            namespace=namespace or DEFAULT_NAMESPACE,
            workload=workload,
            labels=labels,
            service_account=str(meta.get("SERVICE_ACCOUNT", "")),
        )

    def __repr__(self) -> str:
        return f"<ProxyNode {self.kind} {self.id!r} ns={self.namespace} ip={self.ip or '-'}>"
