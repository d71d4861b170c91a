"""Istio-init's nat rules, as data: which argv lists set up transparent interception in a pod.

Chains mirror Istio's (ISTIO_OUTPUT, ISTIO_REDIRECT, ISTIO_INBOUND, ISTIO_IN_REDIRECT) with our
prefix. Outbound TCP goes to the sidecar's 15001 unless it comes from the sidecar's own UID/GID or
goes to loopback; inbound TCP goes to 15006 unless it targets one of the sidecar's own ports.
The sidecar delivers inbound traffic to the pod IP from 127.0.0.6 (Istio >= 1.10); the first
output rule lets that through, or it would loop back into 15006."""

from __future__ import annotations

from dataclasses import dataclass

OUTPUT_CHAIN = "GOSSAMER_OUTPUT"
REDIRECT_CHAIN = "GOSSAMER_REDIRECT"
INBOUND_CHAIN = "GOSSAMER_INBOUND"
IN_REDIRECT_CHAIN = "GOSSAMER_IN_REDIRECT"
CHAINS = (OUTPUT_CHAIN, REDIRECT_CHAIN, INBOUND_CHAIN, IN_REDIRECT_CHAIN)
# The inbound cluster's upstream_bind_config source (control/translate/clusters.py).
INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6"
SIDECAR_PORTS = (15000, 15001, 15004, 15006, 15008, 15020, 15021, 15090)


@dataclass(frozen=True, slots=True)
class InterceptionPorts:
    """The sidecar's identity and ports; 1337 is Istio's proxy UID/GID."""

    sidecar_uid: int = 1337
    sidecar_gid: int = 1337
    outbound_port: int = 15001
    inbound_port: int = 15006
    excluded_inbound_ports: tuple[int, ...] = SIDECAR_PORTS


def nat(*args: str) -> list[str]:
    return ["iptables", "-w", "-t", "nat", *args]


def interception_rules(ports: InterceptionPorts | None = None) -> list[list[str]]:
    """iptables argv lists (nat table) to run inside a fresh pod namespace, in order."""
    p = ports or InterceptionPorts()
    uid, gid = str(p.sidecar_uid), str(p.sidecar_gid)
    to_out, to_in = str(p.outbound_port), str(p.inbound_port)
    rules = [nat("-N", chain) for chain in CHAINS]
    rules.append(nat("-A", REDIRECT_CHAIN, "-p", "tcp", "-j", "REDIRECT", "--to-ports", to_out))
    rules.append(nat("-A", IN_REDIRECT_CHAIN, "-p", "tcp", "-j", "REDIRECT", "--to-ports", to_in))
    rules.append(nat("-A", "PREROUTING", "-p", "tcp", "-j", INBOUND_CHAIN))
    for port in p.excluded_inbound_ports:
        rules.append(nat("-A", INBOUND_CHAIN, "-p", "tcp", "--dport", str(port), "-j", "RETURN"))
    rules.append(nat("-A", INBOUND_CHAIN, "-p", "tcp", "-j", IN_REDIRECT_CHAIN))
    rules.append(nat("-A", "OUTPUT", "-p", "tcp", "-j", OUTPUT_CHAIN))
    # istio-init's first ISTIO_OUTPUT rule: the sidecar's delivery to the app on the pod IP.
    source = f"{INBOUND_PASSTHROUGH_SOURCE}/32"
    rules.append(nat("-A", OUTPUT_CHAIN, "-o", "lo", "-s", source, "-j", "RETURN"))
    for match, owner in (("--uid-owner", uid), ("--gid-owner", gid)):
        # The sidecar calling its own pod's address over lo is inbound traffic (as in Istio);
        # apps talking over lo stay local; the sidecar's own outbound goes out untouched.
        not_loopback = ("!", "-d", "127.0.0.1/32", "-o", "lo")
        rules.append(
            nat(
                "-A",
                OUTPUT_CHAIN,
                *not_loopback,
                "-m",
                "owner",
                match,
                owner,
                "-j",
                IN_REDIRECT_CHAIN,
            )
        )
        rules.append(
            nat("-A", OUTPUT_CHAIN, "-o", "lo", "-m", "owner", "!", match, owner, "-j", "RETURN")
        )
        rules.append(nat("-A", OUTPUT_CHAIN, "-m", "owner", match, owner, "-j", "RETURN"))
    rules.append(nat("-A", OUTPUT_CHAIN, "-d", "127.0.0.1/32", "-j", "RETURN"))
    rules.append(nat("-A", OUTPUT_CHAIN, "-j", REDIRECT_CHAIN))
    return rules
