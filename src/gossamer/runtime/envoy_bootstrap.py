"""Build the Envoy v3 bootstrap a Gossamer data plane starts from; pure, no I/O.

Theory of operation: `bootstrap()` returns JSON-ready dicts that point Envoy's ADS at the control
plane through one static cluster, `xds-grpc`, over explicit HTTP/2. Listeners and clusters all
come over ADS (`lds_config`/`cds_config` = `{ads: {}}`). A sidecar's bootstrap adds a static
readiness listener (15021) that proxies the admin's `/ready`, and a mesh sidecar the `sds-grpc`
cluster to its agent. Running the result is runtime/envoy.py's job.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

XDS_CLUSTER = "xds-grpc"
SDS_CLUSTER = "sds-grpc"  # Istio's name; the mesh TLS contexts' SDS config sources name it
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with the final NUL
ADMIN_CLUSTER = "gossamer-admin"  # static: the readiness listener's way to the admin's /ready
READINESS_LISTENER = "gossamer-readiness"
READINESS_PATH = "/healthz/ready"
_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"


def node_id(kind: str, ip: str, pod: str, namespace: str = "default") -> str:
    """Istio's node id: `sidecar~10.0.0.7~reviews-v1-abc.default~default.svc.cluster.local`."""
    return f"{kind}~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"


# The node metadata key saying "this proxy holds a mesh certificate" (its SDS secrets will be
# served); the translator emits mesh TLS only for such proxies (control/translate/peer_authn.py).
IDENTITY_METADATA = "SDS"


def node_metadata(
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    interception_mode: str = "REDIRECT",
    workload_name: str = "",
    pod_name: str = "",
    service_account: str = "default",
    instance_ips: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Istio's node metadata keys (NAMESPACE, LABELS, INTERCEPTION_MODE, ...) as the control
    plane reads them. INTERCEPTION_MODE NONE asks for listeners bound on the service ports
    (no iptables); REDIRECT for the 15001/15006 capture listeners."""
    meta: dict[str, Any] = {
        "NAMESPACE": namespace,
        "LABELS": dict(labels or {}),
        "INTERCEPTION_MODE": interception_mode,
        "SERVICE_ACCOUNT": service_account,
        "CLUSTER_ID": "Kubernetes",
    }
    if workload_name:
        meta["WORKLOAD_NAME"] = workload_name
    if pod_name:
        meta["NAME"] = pod_name
    if instance_ips:
        meta["INSTANCE_IPS"] = ",".join(instance_ips)
    meta.update(extra or {})
    return meta


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def bootstrap(
    node_id: str,
    *,
    cluster: str,
    metadata: Mapping[str, Any],
    xds_host: str,
    xds_port: int,
    admin_port: int,
    admin_host: str = "127.0.0.1",
    locality: Mapping[str, str] | None = None,
    xds_connect_timeout_s: float = 1.0,
    readiness_port: int | None = None,
) -> dict[str, Any]:
    """An Envoy v3 bootstrap that takes all listeners and clusters from ADS at xds_host:xds_port.

    Pure: no I/O. `admin_port` 0 lets Envoy pick (EnvoyProcess reads the bound port back). The
    `xds-grpc` cluster is STATIC for an IP literal, STRICT_DNS for a name, and speaks explicit
    HTTP/2 with keepalive so a dead control plane is noticed. `readiness_port` adds a static
    listener on 0.0.0.0 serving `/healthz/ready` from the admin's `/ready` (see
    `readiness_listener`); it needs a fixed `admin_port`.
    """
    node: dict[str, Any] = {"id": node_id, "cluster": cluster, "metadata": dict(metadata)}
    if locality:
        node["locality"] = dict(locality)
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    xds_cluster = {
        "name": XDS_CLUSTER,
        "type": "STATIC" if _is_ip(xds_host) else "STRICT_DNS",
        "connect_timeout": f"{xds_connect_timeout_s:g}s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(xds_host, xds_port)}}]}
            ],
        },
        "typed_extension_protocol_options": _explicit_http2(
            {"connection_keepalive": {"interval": "30s", "timeout": "10s"}}
        ),
    }
    static: dict[str, Any] = {"clusters": [xds_cluster]}
    if readiness_port is not None:
        if admin_port == 0:
            raise ValueError("readiness_port needs a fixed admin_port (the listener proxies to it)")
        static["clusters"].append(admin_cluster(admin_host, admin_port))
        static["listeners"] = [readiness_listener(readiness_port)]
    return {
        "node": node,
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "lds_config": dict(ads_source),
            "cds_config": dict(ads_source),
        },
        "static_resources": static,
        "admin": {"address": _socket_address(admin_host, admin_port)},
    }


def _explicit_http2(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        _HTTP_PROTOCOL_OPTIONS: {
            "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
            "explicit_http_config": {"http2_protocol_options": dict(options)},
        }
    }


def sds_cluster(socket_path: Path) -> dict[str, Any]:
    """Istio's `sds-grpc` static cluster: gRPC (explicit HTTP/2) to the agent's Unix socket,
    where Envoy fetches the `default` and `ROOTCA` secrets the mesh TLS contexts name."""
    if len(os.fsencode(socket_path)) > UNIX_PATH_MAX:
        raise ValueError(f"SDS socket path {socket_path} is longer than {UNIX_PATH_MAX} bytes")
    endpoint = {"endpoint": {"address": {"pipe": {"path": str(socket_path)}}}}
    return {
        "name": SDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": SDS_CLUSTER,
            "endpoints": [{"lb_endpoints": [endpoint]}],
        },
        "typed_extension_protocol_options": _explicit_http2({}),
    }


def admin_cluster(admin_host: str, admin_port: int) -> dict[str, Any]:
    """A static cluster to Envoy's own admin listener."""
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket_address(admin_host, admin_port)}}
                    ]
                }
            ],
        },
    }


def readiness_listener(port: int, address: str = "0.0.0.0") -> dict[str, Any]:
    """`GET /healthz/ready` on address:port, answered by the admin's `/ready` (200 only once the
    initial xDS fetch is done), as Istio's pilot-agent serves 15021. The admin itself stays on
    127.0.0.1, so kubelet-style probes from outside the pod see readiness and nothing else."""
    route = {
        "match": {"path": READINESS_PATH},
        "route": {"cluster": ADMIN_CLUSTER, "prefix_rewrite": "/ready", "timeout": "2s"},
    }
    hcm = {
        "@type": f"type.googleapis.com/{_HCM}",
        "stat_prefix": READINESS_LISTENER,
        "route_config": {
            "name": READINESS_LISTENER,
            "virtual_hosts": [{"name": "readiness", "domains": ["*"], "routes": [route]}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"type.googleapis.com/{_ROUTER}"},
            }
        ],
    }
    return {
        "name": READINESS_LISTENER,
        "address": _socket_address(address, port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
