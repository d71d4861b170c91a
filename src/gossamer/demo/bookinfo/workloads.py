"""The six Bookinfo workloads as `gossamer.dev/v1alpha1` Workload manifests (for issue 4)."""

from __future__ import annotations

# (service, version) pairs as Istio's platform-kube-bookinfo.yaml deploys them.
DEPLOYMENTS: tuple[tuple[str, str], ...] = (
    ("productpage", "v1"),
    ("details", "v1"),
    ("reviews", "v1"),
    ("reviews", "v2"),
    ("reviews", "v3"),
    ("ratings", "v1"),
)


def workload_manifest(service: str, version: str) -> str:
    """One Workload: labels app/version, account bookinfo-<service>, port 9080, ready on /health."""
    return (
        "apiVersion: gossamer.dev/v1alpha1\n"
        "kind: Workload\n"
        "metadata:\n"
        f"  name: {service}-{version}\n"
        f"  labels: {{app: {service}, version: {version}}}\n"
        "spec:\n"
        f"  command: [python, -m, gossamer.demo.bookinfo, {service}, --version, {version},"
        " --host, $(POD_IP)]\n"
        f"  env: {{SERVICE_VERSION: {version}}}\n"
        "  ports: [{containerPort: 9080, name: http}]\n"
        f"  serviceAccount: bookinfo-{service}\n"
        "  readinessProbe: {httpGet: {path: /health, port: http}}\n"
    )


def workload_manifests() -> str:
    """All six Workloads as one multi-document YAML text that `gossamer validate` accepts."""
    return "---\n".join(workload_manifest(service, version) for service, version in DEPLOYMENTS)
