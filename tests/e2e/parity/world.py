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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

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
ALWAYS = 10**9  # fail_first large enough to mean "every request with an x-fail-key"


def fqdn(service: str) -> str:
    return f"{service}.{NS}.svc.cluster.local"


def backend_specs() -> list[BackendSpec]:
    specs = []
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
        self.ports = {service: free_port() for service in INSTANCES}
        self.base_revision = self.cp.apply(base_world_yaml(self.ports, self.backends.ports))

    def authority(self, service: str) -> str:
        return f"{fqdn(service)}:{self.ports[service]}"

    def stop(self) -> None:
        self.backends.stop()
        self.cp.stop()
