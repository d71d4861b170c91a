"""The /etc/hosts a pod sees: `ip netns exec` bind-mounts /etc/netns/<netns>/hosts over it, so
apps resolve `reviews` like they would through cluster DNS."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def service_names(service: str, namespace: str, domain: str = "cluster.local") -> list[str]:
    """The names a Kubernetes pod in `namespace` may use for a service in `namespace`."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc.{domain}"]


def hosts_file_text(pod_hostname: str, pod_ip: str, services: Mapping[tuple[str, str], str]) -> str:
    """hosts(5) text: loopback, the pod's own name, then each (service, namespace) → VIP."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost", f"{pod_ip}\t{pod_hostname}"]
    for (service, namespace), vip in sorted(services.items()):
        lines.append(f"{vip}\t" + " ".join(service_names(service, namespace)))
    return "\n".join(lines) + "\n"


def hosts_dir(netns: str, etc_root: Path = NETNS_ETC) -> Path:
    return etc_root / netns
