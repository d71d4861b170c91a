"""The base world every parity scenario builds on: a real control plane and real backends.

Services (ClusterIP-style Services whose endpoints are WorkloadEntries at 127.0.0.1, one test
backend each; see http_backends.py for what a backend can be asked to do):
- reviews: v1, v2, v3 (DestinationRule `reviews-subsets` defines subsets v1..v3)
- ratings: v1; flaky: v1; shadow: v1 (a mirror target); slow: v1 (circuit breaker)
- pool: v1, v2, v3 (load balancer scenarios set their own DestinationRule)
- outlier: v1 healthy, v2 answers 503 to every request that carries an x-fail-key
- empty: a Service with no endpoints at all
Each service gets its own free port, which is also Envoy's outbound listener port (INTERCEPTION_MODE
NONE binds 127.0.0.1:<port>).

And, for AuthorizationPolicy scenarios, one server-side sidecar of each kind:
- guarded-envoy / guarded-gossamer: a Service whose one WorkloadEntry (labels app: guarded,
  plane: <kind>, Istio's tlsMode: istio; service account `guarded`) is a server-side sidecar on
  its own loopback IP (SERVER_IPS) in INTERCEPTION_MODE NONE: its inbound listener holds
  <ip>:<port> and delivers to the test backend guarded-<kind>-v1 at 127.0.0.1:<port>. Policies
  select `app: guarded`, so both kinds enforce the same ones; each kind's client reaches its
  own kind's server (Service guarded-<kind>), over mesh mTLS with real certificates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gossamer.runtime.registration import CREDENTIAL_FILE, ROOT_CERT_FILE, write_identity_files
from tests.e2e.harness import Backends, BackendSpec, ControlPlane
from tests.ports import free_port

NS = "default"
INSTANCES: dict[str, tuple[str, ...]] = {
    "reviews": ("v1", "v2", "v3"),
    "ratings": ("v1",),
    "flaky": ("v1",),
    "shadow": ("v1",),
    "slow": ("v1",),
    "pool": ("v1", "v2", "v3"),
    "outlier": ("v1", "v2"),
    "empty": (),
}
PLANE_KINDS = ("envoy", "gossamer")
GUARDED = "guarded"  # a scenario's `service: guarded` is guarded-<plane> on each plane
GUARDED_OTHER = "guarded-other"  # ... and `guarded-other` the other plane's server
SERVER_IPS = {"envoy": "127.0.0.12", "gossamer": "127.0.0.13"}
SERVER_ACCOUNT = "guarded"
CLIENT_ACCOUNT = "client"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
ALWAYS = 10**9  # fail_first large enough to mean "every request with an x-fail-key"


def fqdn(service: str) -> str:
    return f"{service}.{NS}.svc.cluster.local"


def guarded(plane: str) -> str:
    """The service (and backend prefix) one plane's server-side sidecar fronts."""
    return f"{GUARDED}-{plane}"


def other_kind(plane: str) -> str:
    """The other plane's kind: its server is a cross pair's server (Envoy ↔ Gossamer mTLS)."""
    return next(p for p in PLANE_KINDS if p != plane)


def guarded_backend(plane: str) -> str:
    return f"{guarded(plane)}-v1"


def server_labels(plane: str) -> dict[str, str]:
    return {"app": GUARDED, "plane": plane, "version": "v1"}


def backend_specs() -> list[BackendSpec]:
    specs = [BackendSpec(guarded_backend(plane), "v1") for plane in PLANE_KINDS]
    for service, versions in INSTANCES.items():
        for version in versions:
            failing = service == "outlier" and version == "v2"
            specs.append(
                BackendSpec(f"{service}-{version}", version, fail_first=ALWAYS if failing else 0)
            )
    return specs


def base_world_yaml(ports: dict[str, int], backend_ports: dict[str, int]) -> str:
    docs: list[dict[str, Any]] = []
    for service, versions in INSTANCES.items():
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": NS},
                "spec": {
                    "selector": {"app": service},
                    "ports": [{"name": "http", "port": ports[service]}],
                },
            }
        )
        for version in versions:
            docs.append(
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "WorkloadEntry",
                    "metadata": {"name": f"{service}-{version}", "namespace": NS},
                    "spec": {
                        "address": "127.0.0.1",
                        "labels": {"app": service, "version": version},
                        "ports": {"http": backend_ports[f"{service}-{version}"]},
                    },
                }
            )
    for plane in PLANE_KINDS:
        docs += guarded_docs(plane, ports[guarded(plane)], backend_ports[guarded_backend(plane)])
    docs.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews-subsets", "namespace": NS},
            "spec": {
                "host": "reviews",
                "subsets": [{"name": v, "labels": {"version": v}} for v in INSTANCES["reviews"]],
            },
        }
    )
    return yaml.safe_dump_all(docs, sort_keys=False)


def guarded_docs(plane: str, port: int, app_port: int) -> list[dict[str, Any]]:
    """Service guarded-<plane> and its one WorkloadEntry: the server-side sidecar's address. The
    sidecar listens on <its IP>:<app port> and the app on 127.0.0.1:<app port> (NONE mode)."""
    name = guarded(plane)
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "selector": {"app": GUARDED, "plane": plane},
                "ports": [{"name": "http", "port": port, "targetPort": app_port}],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "WorkloadEntry",
            "metadata": {"name": guarded_backend(plane), "namespace": NS},
            "spec": {
                "address": SERVER_IPS[plane],
                "labels": {**server_labels(plane), TLS_MODE_LABEL: "istio"},
                "serviceAccount": SERVER_ACCOUNT,
                "ports": {"http": app_port},
            },
        },
    ]


@dataclass(frozen=True, slots=True)
class Identity:
    ca_address: str
    credential_file: Path
    root_cert_file: Path


class World:
    """Control plane + backends + the base world applied. Owner calls `stop()`."""

    def __init__(self, root: Path) -> None:
        self.cp = ControlPlane(root / "home", debounce_ms=20, log_level="warning")
        self.backends = Backends(backend_specs())
        self.ports: dict[str, int] = {}
        self.base_revision = 0

    def start(self) -> None:
        self.cp.start()
        self.backends.start()
        services = [*INSTANCES, *(guarded(plane) for plane in PLANE_KINDS)]
        self.ports = {service: free_port() for service in services}
        self.base_revision = self.cp.apply(base_world_yaml(self.ports, self.backends.ports))

    def authority(self, service: str) -> str:
        return f"{fqdn(service)}:{self.ports[service]}"

    def server_address(self, plane: str) -> tuple[str, int]:
        """Where plane's server-side sidecar listens (a client without a sidecar dials it)."""
        return SERVER_IPS[plane], self.backends.ports[guarded_backend(plane)]

    def identity(self, directory: Path, service_account: str) -> Identity:
        """A pod's bootstrap credential and the mesh root, written as the runtime writes them,
        and the control plane's certificate service (15012): what a sidecar needs to get a
        real certificate for `service_account` from the control plane's CA."""
        body = json.dumps({"namespace": NS, "serviceAccount": service_account})
        credential = str(self.cp.request("POST", "/api/v1/credentials", body)["credential"])
        bundle = str(self.cp.request("GET", "/api/v1/ca")["trustBundle"])
        write_identity_files(directory, credential, bundle)
        state = json.loads((self.cp.home / "controlplane.json").read_text())
        return Identity(str(state["ca"]), directory / CREDENTIAL_FILE, directory / ROOT_CERT_FILE)

    def stop(self) -> None:
        self.backends.stop()
        self.cp.stop()
