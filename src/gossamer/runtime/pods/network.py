"""Creating and removing a pod's network: netns, veth into the `gossamer0` bridge, address and
default route, hosts file and interception rules. Commands are argv lists (never a shell), every
step of teardown tolerates objects that are already gone, so teardown and `cleanup_all` are
idempotent and safe after a crash."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gossamer.runtime.pods.addressing import (
    HOST_VETH_PREFIX,
    NETNS_PREFIX,
    PodAddressing,
    veth_names,
)
from gossamer.runtime.pods.hosts import NETNS_ETC, hosts_dir, hosts_file_text, resolv_conf_text
from gossamer.runtime.pods.interception import InterceptionPorts, interception_rules

_TIMEOUT_S = 20.0
FORWARD_COMMENT = "gossamer-bridge"


class PodNetworkError(RuntimeError):
    """A command needed to build a pod network failed; the message carries its stderr."""


def run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise PodNetworkError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def forward_rule(bridge: str) -> list[str]:
    """Host FORWARD rule letting pods talk across the bridge even when the policy is DROP."""
    return [
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        FORWARD_COMMENT,
        "-j",
        "ACCEPT",
    ]


def bridge_mac(bridge: str) -> str:
    """A fixed, locally administered MAC for the bridge. Why: a bridge without one takes the
    lowest MAC of its ports, so every pod joining could change it under the pods' ARP caches
    (and under a capture on it)."""
    digest = hashlib.sha256(bridge.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def bridge_commands(addressing: PodAddressing) -> list[list[str]]:
    b = addressing.bridge
    return [
        ["ip", "link", "add", b, "type", "bridge"],
        ["ip", "link", "set", b, "address", bridge_mac(b)],
        ["ip", "addr", "add", addressing.gateway_cidr, "dev", b],
        ["ip", "link", "set", b, "up"],
    ]


@dataclass(slots=True)
class PodNetwork:
    """One pod's network. `plan()` lists the commands; `apply()` runs them; `teardown()` undoes."""

    pod: str
    pod_ip: str
    addressing: PodAddressing = field(default_factory=PodAddressing)
    services: Mapping[tuple[str, str], str] = field(default_factory=dict)
    interception: InterceptionPorts | None = field(default_factory=InterceptionPorts)
    etc_root: Path = NETNS_ETC
    owns_bridge: bool = True  # False: whoever runs many pods removes the bridge once, at the end

    @property
    def netns(self) -> str:
        return self.addressing.netns_name(self.pod)

    @property
    def host_veth(self) -> str:
        return veth_names(self.netns)[0]

    def plan(self) -> list[list[str]]:
        """Commands after the bridge exists: namespace, veth, addresses, routes, interception."""
        ns = self.netns
        host_if, pod_if = veth_names(ns)
        prefix = self.addressing.pod_network.prefixlen
        commands = [
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", pod_if],
            ["ip", "link", "set", host_if, "master", self.addressing.bridge],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "link", "set", pod_if, "netns", ns],
            ["ip", "-n", ns, "link", "set", pod_if, "name", "eth0"],
            ["ip", "-n", ns, "addr", "add", f"{self.pod_ip}/{prefix}", "dev", "eth0"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "link", "set", "eth0", "up"],
            ["ip", "-n", ns, "route", "add", "default", "via", self.addressing.gateway],
        ]
        if self.interception is not None:
            commands += [in_netns(ns, rule) for rule in interception_rules(self.interception)]
        return commands

    def hosts_text(self) -> str:
        return hosts_file_text(self.pod, self.pod_ip, self.services)

    def apply(self) -> None:
        """Build the pod network; on failure, remove whatever part was made and re-raise.
        A namespace of that name that already exists is another pod's: refused, untouched."""
        ensure_bridge(self.addressing)
        if self.netns in list_netns(self.addressing.netns_prefix):
            raise PodNetworkError(f"a pod network named {self.netns} already exists")
        try:
            directory = hosts_dir(self.netns, self.etc_root)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "hosts").write_text(self.hosts_text())
            (directory / "resolv.conf").write_text(resolv_conf_text())
            for argv in self.plan():
                run(argv)
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        """Remove the namespace, veth and hosts dir; the bridge too when no pod uses it."""
        remove_pod_objects(self.netns, self.etc_root)
        if self.owns_bridge:
            remove_bridge_if_unused(self.addressing)


def ensure_bridge(addressing: PodAddressing) -> None:
    """Create the bridge with its gateway address and the FORWARD rule, unless already there."""
    b = addressing.bridge
    if run(["ip", "link", "show", b], check=False).returncode != 0:
        for argv in bridge_commands(addressing):
            run(argv)
    rule = forward_rule(b)
    if run(["iptables", "-w", "-C", "FORWARD", *rule], check=False).returncode != 0:
        run(["iptables", "-w", "-I", "FORWARD", "1", *rule])


def remove_pod_objects(netns: str, etc_root: Path = NETNS_ETC) -> None:
    """Deleting the namespace destroys its eth0 and with it the host end of the veth; the
    explicit delete covers a veth whose pod end never reached the namespace."""
    run(["ip", "netns", "delete", netns], check=False)
    run(["ip", "link", "delete", veth_names(netns)[0]], check=False)
    shutil.rmtree(hosts_dir(netns, etc_root), ignore_errors=True)
    with contextlib.suppress(OSError):
        etc_root.rmdir()  # only succeeds once no pod's hosts dir is left


def bridge_ports(bridge: str) -> list[str]:
    result = run(["ip", "-o", "link", "show", "master", bridge], check=False)
    if result.returncode != 0:
        return []
    return [line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines() if line]


def remove_bridge_if_unused(addressing: PodAddressing) -> None:
    b = addressing.bridge
    if run(["ip", "link", "show", b], check=False).returncode != 0:
        remove_forward_rule(b)
        return
    if bridge_ports(b):
        return
    run(["ip", "link", "delete", b, "type", "bridge"], check=False)
    remove_forward_rule(b)


def remove_forward_rule(bridge: str) -> None:
    rule = forward_rule(bridge)
    while run(["iptables", "-w", "-C", "FORWARD", *rule], check=False).returncode == 0:
        run(["iptables", "-w", "-D", "FORWARD", *rule], check=False)


def list_netns(prefix: str = NETNS_PREFIX) -> list[str]:
    result = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(prefix)]


def cleanup_all(
    prefix: str = NETNS_PREFIX,
    addressing: PodAddressing | None = None,
    etc_root: Path = NETNS_ETC,
) -> None:
    """Remove leftovers of a crashed run: only namespaces, hosts dirs and veths with our
    prefixes, then our bridge and its FORWARD rule."""
    for netns in list_netns(prefix):
        remove_pod_objects(netns, etc_root)
    if etc_root.is_dir():
        for directory in etc_root.iterdir():
            if directory.name.startswith(prefix):
                shutil.rmtree(directory, ignore_errors=True)
    addressing = addressing or PodAddressing()
    result = run(["ip", "-o", "link", "show", "type", "veth"], check=False)
    for line in result.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(HOST_VETH_PREFIX) and _veth_is_ours(line, prefix, addressing.bridge):
            run(["ip", "link", "delete", name], check=False)
    remove_bridge_if_unused(addressing)


def _veth_is_ours(link_line: str, prefix: str, bridge: str) -> bool:
    """Every runtime's host veths share one name prefix: a veth on another bridge or into a
    namespace without our prefix is a live pod of another runtime (or test), not a leftover."""
    words = link_line.split()

    def after(key: str) -> str | None:
        return words[words.index(key) + 1] if key in words[:-1] else None

    master, netns = after("master"), after("link-netns")
    return (master is None or master == bridge) and (netns is None or netns.startswith(prefix))
