"""The mesh's services as pods resolve them, Gossamer's cluster DNS.

Each Kubernetes service gets a stable VIP (`vips.assign_vips`: its own `addresses` when it has
some, else one derived from its hostname, so it does not move as others come and go). The
table is written to `$GOSSAMER_HOME/services.json` for the CLI, and every pod's hosts file maps
the service's names (`reviews`, `reviews.default`, `reviews.default.svc.cluster.local`) to its
VIP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gossamer.runtime import state
from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.pods.hosts import NETNS_ETC, hosts_dir, hosts_file_text
from gossamer.runtime.vips import assign_vips

ServiceKey = tuple[str, str]  # (service name, namespace)


class ServiceDirectory:
    def __init__(self, addressing: PodAddressing, home: Path, etc_root: Path = NETNS_ETC) -> None:
        self.addressing = addressing
        self.home = home
        self.etc_root = etc_root  # where `ip netns exec` finds each pod's /etc files
        self.vips: dict[ServiceKey, str] = {}

    def update(self, services: Iterable[dict[str, Any]]) -> bool:
        """Take the registry's services (`/api/v1/registry`); True when a VIP changed."""
        fixed: dict[str, str] = {}
        names: dict[str, ServiceKey] = {}
        for svc in services:
            hostname: str = svc["hostname"]
            suffix = f".{svc['namespace']}.svc.cluster.local"
            if not hostname.endswith(suffix):
                continue  # ServiceEntry hosts resolve outside the mesh
            names[hostname] = (hostname.removesuffix(suffix), svc["namespace"])
            if svc.get("addresses"):
                fixed[hostname] = svc["addresses"][0]
        vips = assign_vips(names, self.addressing.service_cidr, fixed)
        current = {names[h]: vip for h, vip in vips.items() if h in names}
        if current == self.vips:
            return False
        self.vips = current
        rows = [[name, namespace, vip] for (name, namespace), vip in sorted(current.items())]
        state.write_json(self.home / state.SERVICES, rows)
        return True

    def rewrite_hosts(self, pods: Iterable[tuple[str, str]]) -> None:
        """Bring the hosts file of each (pod name, pod address) in step with the VIPs. In place
        (same inode): `ip netns exec` bind-mounted this very file into the pod's processes;
        written before it is cut, so a lookup never meets an empty file."""
        for name, address in pods:
            path = hosts_dir(self.addressing.netns_name(name), self.etc_root) / "hosts"
            text = hosts_file_text(name, address, self.vips)
            with contextlib.suppress(OSError), path.open("r+") as f:
                if f.read() != text:
                    f.seek(0)
                    f.write(text)
                    f.truncate()
