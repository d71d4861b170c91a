"""Envoy B's bootstrap: the inbound side the control plane would send it, on a loopback port.

Without iptables, the plane's virtualInbound listener (15006, filter chains by original
destination port) cannot be reached, so Envoy B runs from a static bootstrap. Its content is
not rebuilt here: the bench's mesh YAML goes through the translator (`sidecar_resources`, the
function the control plane calls for every sidecar) for B's node, and the bootstrap keeps that
virtualInbound listener and the `inbound|...` clusters, with two changes only: the listener
binds 127.0.0.1:<listen port> and the application's chains match that port (as
tests/control/translate/test_mtls_envoy.py moves them). A node with `SDS: "true"` gets the
mesh mTLS chains (PeerAuthentication decides STRICT/PERMISSIVE) and a `sds-grpc` cluster to the
agent beside it, as `gossamer agent` serves any Envoy sidecar.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from google.protobuf.json_format import MessageToDict

from gossamer.control.translate.sidecar import sidecar_resources
from gossamer.control.world import build_world
from gossamer.control.xds.node import ProxyNode
from gossamer.runtime.envoy_bootstrap import IDENTITY_METADATA, node_id, node_metadata, sds_cluster
from gossamer.spec import parse_text
from gossamer.spec.base import Resource

VIRTUAL_INBOUND = "virtualInbound"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class InboundSide:
    """Who Envoy B is to the translator (its node) and where it serves."""

    pod: str
    namespace: str
    ip: str  # the node's IP: not the WorkloadEntry's, so B is found by labels, not as the app
    labels: dict[str, str]
    service_account: str
    target_port: int  # the application's port (the Service's targetPort)
    listen_port: int  # where B's listener binds on 127.0.0.1 (its WorkloadEntry's port)
    admin_port: int = 0
    sds_socket: Path | None = None  # with it: B holds a certificate (mesh mTLS inbound)

    def node(self) -> ProxyNode:
        extra = {IDENTITY_METADATA: "true"} if self.sds_socket is not None else None
        metadata = node_metadata(
            namespace=self.namespace,
            labels=self.labels,
            interception_mode="REDIRECT",
            workload_name=self.pod,
            pod_name=self.pod,
            service_account=self.service_account,
            instance_ips=[self.ip],
            extra=extra,
        )
        return ProxyNode.parse(self.node_id, metadata=metadata)

    @property
    def node_id(self) -> str:
        return node_id("sidecar", self.ip, self.pod, self.namespace)


def mesh_resources(yaml_text: str) -> list[Resource]:
    """The bench's mesh YAML as the control plane stores it; ValueError on any invalid doc."""
    out: list[Resource] = []
    for parsed in parse_text(yaml_text, source="bench"):
        errors = [f for f in parsed.findings if f.is_error]
        if errors:
            raise ValueError(f"bench mesh YAML: {errors}")
        if parsed.resource is not None:
            out.append(parsed.resource)
    return out


def inbound_bootstrap(yaml_text: str, side: InboundSide) -> dict[str, Any]:
    """Envoy B's static bootstrap (JSON-ready dict) from the translator's own resources."""
    resources = sidecar_resources(build_world(1, mesh_resources(yaml_text)), side.node())
    listener = _app_listener(resources, side)
    clusters = [
        MessageToDict(r)
        for r in resources
        if isinstance(r, cluster_pb2.Cluster) and r.name.startswith("inbound|")
    ]
    if side.sds_socket is not None:
        clusters.append(sds_cluster(side.sds_socket))
    return {
        "node": {"id": side.node_id, "cluster": f"{side.pod}.{side.namespace}"},
        "static_resources": {"listeners": [MessageToDict(listener)], "clusters": clusters},
        "admin": {
            "address": {"socket_address": {"address": LOOPBACK, "port_value": side.admin_port}}
        },
    }


def _app_listener(resources: list[Any], side: InboundSide) -> listener_pb2.Listener:
    """virtualInbound with only the application port's chains, moved to the listen port."""
    found = [
        r for r in resources if isinstance(r, listener_pb2.Listener) and r.name == VIRTUAL_INBOUND
    ]
    if not found:
        raise ValueError(f"the translator gave {side.node_id} no {VIRTUAL_INBOUND} listener")
    listener = listener_pb2.Listener()
    listener.CopyFrom(found[0])
    listener.address.socket_address.address = LOOPBACK
    listener.address.socket_address.port_value = side.listen_port
    chains = [
        c
        for c in listener.filter_chains
        if c.filter_chain_match.destination_port.value == side.target_port
    ]
    if not chains:
        raise ValueError(f"no inbound chain for port {side.target_port} for {side.node_id}")
    kept = []
    for chain in chains:
        copy = type(chain)()
        copy.CopyFrom(chain)
        copy.filter_chain_match.destination_port.value = side.listen_port
        kept.append(copy)
    del listener.filter_chains[:]
    listener.filter_chains.extend(kept)
    return listener
