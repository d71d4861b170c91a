"""The HTTP bench's mesh as YAML for the control plane: services, hops, mTLS policy.

- `bench` (one WorkloadEntry at 127.0.0.1:<upstream>): the application, for single hops.
- `hop-<kind>` for kind in envoy, gossamer, envoy-mtls, gossamer-mtls: targetPort = the
  upstream's port, one WorkloadEntry at <hop B's IP>:<hop B's inbound port>, so sidecar A's
  outbound cluster reaches sidecar B and B forwards to the application at the targetPort.
  The `-mtls` hops' WorkloadEntries carry Istio's `security.istio.io/tlsMode: istio` label (a
  workload with a sidecar holding a certificate: auto mTLS applies) and a service account of
  their own (the SAN sidecar A verifies); a STRICT PeerAuthentication on each `-mtls` B makes
  plaintext impossible, so those rows cannot silently measure plaintext.
- `new-<kind>`: a second Service over the same B with a DestinationRule closing every upstream
  connection after one request (`maxRequestsPerConnection: 1`): each request through it costs
  sidecar A a new connection to B (a full mTLS handshake on the `-mtls` kinds).
Gossamer B runs as an explicit-mode pod does: its WorkloadEntry at <its IP>:15006, its inbound
on <its IP>:15006 (the plane then targets the app's port) and it delivers to <its IP>:<upstream>,
where the upstream listens too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gossamer.control.translate.names import INBOUND_CAPTURE_PORT

NS = "default"
CLIENT = "bench-client"
CLIENT_SERVICE_ACCOUNT = "bench"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
KINDS = ("envoy", "gossamer", "envoy-mtls", "gossamer-mtls")
# Where each B listens: Envoy B on 127.0.0.1 (its node claims ENVOY_B_NODE_IP, the address of no
# WorkloadEntry, so the translator finds it by labels, not as the app: see envoy_inbound.py);
# each Gossamer B on an address of its own, port 15006 (explicit-mode pods). None of them is in
# `gossamer up`'s pod ranges (10.231.0.0/16, 127.231.0.0/16).
HOP_IPS = {
    "envoy": "127.0.0.1",
    "gossamer": "127.0.0.2",
    "envoy-mtls": "127.0.0.1",
    "gossamer-mtls": "127.0.0.3",
}
ENVOY_B_NODE_IP = "127.0.0.4"
UPSTREAM_IPS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")  # every address a B delivers to


def fqdn(service: str) -> str:
    return f"{service}.{NS}.svc.cluster.local"


def is_mtls(kind: str) -> bool:
    return kind.endswith("-mtls")


def hop_app(kind: str) -> str:
    """B's `app` label (its Service selects it; its PeerAuthentication too)."""
    return f"hop-{kind}"


def hop_service_account(kind: str) -> str:
    """B's identity; the plaintext B's keep the bench's one, as before mTLS."""
    return f"hop-{kind}-b" if is_mtls(kind) else CLIENT_SERVICE_ACCOUNT


@dataclass(frozen=True)
class Ports:
    upstream: int
    services: dict[str, int]  # service name -> service port (Envoy A's listener port)
    hop_inbound: dict[str, int]  # kind -> sidecar B's inbound port

    def host(self, service: str) -> str:
        return f"{fqdn(service)}:{self.services[service]}"


def allocate_ports(pick: Callable[[], int]) -> Ports:
    """Every port the bench's mesh uses; `pick()` gives one nothing listens on."""
    names = ["bench", *(f"hop-{k}" for k in KINDS), *(f"new-{k}" for k in KINDS)]
    services = {name: pick() for name in names}
    inbound = {
        kind: INBOUND_CAPTURE_PORT if kind.startswith("gossamer") else pick() for kind in KINDS
    }
    return Ports(pick(), services, inbound)


def _service(name: str, app: str, port: int, target: int | None) -> str:
    target_line = f", targetPort: {target}" if target else ""
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\n"
        f"spec:\n  selector: {{app: {app}}}\n"
        f"  ports: [{{name: http, port: {port}{target_line}}}]\n"
    )


def _entry(app: str, address: str, port: int, service_account: str, mtls: bool) -> str:
    labels = f"app: {app}" + (f", {TLS_MODE_LABEL}: istio" if mtls else "")
    return (
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
        f"metadata: {{name: {app}-instance, namespace: {NS}}}\n"
        f"spec:\n  address: {address}\n  labels: {{{labels}}}\n"
        f"  serviceAccount: {service_account}\n  ports: {{http: {port}}}\n"
    )


def _strict(app: str) -> str:
    return (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        f"metadata: {{name: {app}-strict, namespace: {NS}}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  mtls: {{mode: STRICT}}\n"
    )


def _one_request_per_connection(service: str) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        f"metadata: {{name: {service}, namespace: {NS}}}\n"
        f"spec:\n  host: {fqdn(service)}\n"
        "  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}\n"
    )


def mesh_yaml(ports: Ports) -> str:
    docs = [
        _service("bench", "bench-app", ports.services["bench"], None),
        _entry("bench-app", "127.0.0.1", ports.upstream, "bench-app", False),
    ]
    for kind in KINDS:
        app, mtls = hop_app(kind), is_mtls(kind)
        for prefix in ("hop", "new"):
            name = f"{prefix}-{kind}"
            docs.append(_service(name, app, ports.services[name], ports.upstream))
        address, inbound = HOP_IPS[kind], ports.hop_inbound[kind]
        docs.append(_entry(app, address, inbound, hop_service_account(kind), mtls))
        docs.append(_one_request_per_connection(f"new-{kind}"))
        if mtls:
            docs.append(_strict(app))
    return "---\n".join(docs)
