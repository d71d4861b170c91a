"""The /etc/hosts a pod sees: `ip netns exec` bind-mounts /etc/netns/<netns>/hosts over it, so
apps resolve `reviews` like they would through cluster DNS."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def service_names(service: str, namespace: str, domain: str = "cluster.local") -> list[str]:
    """The names a Kubernetes pod in `namespace` may use for a service in `namespace`."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc.{domain}"]


def hosts_file_text(pod_hostname: str, pod_ip: str, services: Mapping[tuple[str, str], str]) -> str:
    """hosts(5) text: loopback, the pod's own name, then each (service, namespace) → VIP.

    The pod shares the host's UTS namespace, so `gethostname()` inside it is the machine's
    name; it maps to the pod IP here, or every `getfqdn()` (Python's http.server calls it)
    would wait for a DNS server the pod cannot reach."""
    names = (
        pod_hostname
        if pod_hostname == socket.gethostname()
        else f"{pod_hostname} {socket.gethostname()}"
    )
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost", f"{pod_ip}\t{names}"]
    for (service, namespace), vip in sorted(services.items()):
        lines.append(f"{vip}\t" + " ".join(service_names(service, namespace)))
    return "\n".join(lines) + "\n"


def resolv_conf_text(namespace: str = "default", domain: str = "cluster.local") -> str:
    """resolv.conf(5) for a pod: Kubernetes' search path, and no name server to wait for.

    Mesh names resolve from the hosts file; a pod has no cluster DNS, and the host's resolver is
    often on the host's loopback, which the pod cannot reach. Without a name server a lookup of
    an unknown name fails at once instead of after the resolver's timeouts."""
    search = f"{namespace}.svc.{domain} svc.{domain} {domain}"
    return f"search {search}\noptions ndots:1 timeout:1 attempts:1\n"


def hosts_dir(netns: str, etc_root: Path = NETNS_ETC) -> Path:
    return etc_root / netns
