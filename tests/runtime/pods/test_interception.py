"""The istio-init equivalent rules, checked as data (no root needed), and the inbound
passthrough source (127.0.0.6) for real inside a pod namespace (root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.runtime.pods import PodAddressing, PodNetwork
from gossamer.runtime.pods.interception import (
    IN_REDIRECT_CHAIN,
    INBOUND_CHAIN,
    INBOUND_PASSTHROUGH_SOURCE,
    OUTPUT_CHAIN,
    REDIRECT_CHAIN,
    InterceptionPorts,
    interception_rules,
)

SIDECAR_ID = 1337  # Istio's proxy UID and GID
STEP_TIMEOUT_S = 10.0


def rule_texts(ports: InterceptionPorts | None = None) -> list[str]:
    return [" ".join(argv) for argv in interception_rules(ports)]


def test_every_rule_is_a_nat_table_argv_list() -> None:
    for argv in interception_rules():
        assert argv[:4] == ["iptables", "-w", "-t", "nat"]


def test_chains_are_created_before_they_are_used() -> None:
    texts = rule_texts()
    for chain in (OUTPUT_CHAIN, REDIRECT_CHAIN, INBOUND_CHAIN, IN_REDIRECT_CHAIN):
        created = texts.index(f"iptables -w -t nat -N {chain}")
        first_use = min(i for i, text in enumerate(texts) if f"-j {chain}" in text)
        assert created < first_use


def test_outbound_tcp_goes_to_15001_and_inbound_to_15006() -> None:
    texts = rule_texts()
    assert f"iptables -w -t nat -A {REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports 15001" in texts
    assert f"iptables -w -t nat -A {IN_REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports 15006" in texts
    assert f"iptables -w -t nat -A OUTPUT -p tcp -j {OUTPUT_CHAIN}" in texts
    assert f"iptables -w -t nat -A PREROUTING -p tcp -j {INBOUND_CHAIN}" in texts
    # The catch-all redirect is the last outbound rule, after every exception.
    assert texts[-1] == f"iptables -w -t nat -A {OUTPUT_CHAIN} -j {REDIRECT_CHAIN}"


def test_sidecar_uid_gid_and_loopback_are_not_intercepted() -> None:
    texts = rule_texts(InterceptionPorts(sidecar_uid=2001, sidecar_gid=2002))
    returns = [t for t in texts if f"-A {OUTPUT_CHAIN}" in t and t.endswith("-j RETURN")]
    assert f"iptables -w -t nat -A {OUTPUT_CHAIN} -m owner --uid-owner 2001 -j RETURN" in returns
    assert f"iptables -w -t nat -A {OUTPUT_CHAIN} -m owner --gid-owner 2002 -j RETURN" in returns
    assert f"iptables -w -t nat -A {OUTPUT_CHAIN} -d 127.0.0.1/32 -j RETURN" in returns


def test_sidecar_ports_are_excluded_from_inbound_redirect() -> None:
    texts = rule_texts(InterceptionPorts(excluded_inbound_ports=(15000, 15021, 22)))
    excluded = [t for t in texts if f"-A {INBOUND_CHAIN}" in t and t.endswith("-j RETURN")]
    assert [t.split("--dport ")[1].split()[0] for t in excluded] == ["15000", "15021", "22"]
    catch_all = texts.index(f"iptables -w -t nat -A {INBOUND_CHAIN} -p tcp -j {IN_REDIRECT_CHAIN}")
    assert all(texts.index(t) < catch_all for t in excluded)


def test_default_exclusions_cover_the_sidecar_ports() -> None:
    ports = InterceptionPorts().excluded_inbound_ports
    assert {15000, 15001, 15006, 15020, 15021, 15090} <= set(ports)


def test_inbound_passthrough_source_is_returned_before_any_owner_rule() -> None:
    texts = rule_texts()
    passthrough = f"iptables -w -t nat -A {OUTPUT_CHAIN} -o lo -s 127.0.0.6/32 -j RETURN"
    assert INBOUND_PASSTHROUGH_SOURCE == "127.0.0.6"
    output_rules = [t for t in texts if f"-A {OUTPUT_CHAIN} " in t]
    # First in the chain (as istio-init): the sidecar's GID rules would otherwise send its
    # delivery to the pod IP back into 15006.
    assert output_rules[0] == passthrough
    owner_rules = [i for i, t in enumerate(texts) if "-m owner" in t]
    assert owner_rules and texts.index(passthrough) < min(owner_rules)


root_only = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"),
    reason="needs root with iproute2 and iptables to create network namespaces",
)

# Accepts one connection, reports "<peer ip> <data>", echoes.
ACCEPT_ONE = """
import socket, sys
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])))
srv.settimeout(10)
print("ready", flush=True)
conn, peer = srv.accept()
data = conn.recv(100)
conn.sendall(data)
print(peer[0], data.decode(), flush=True)
"""

# Connects as the sidecar's UID and GID, optionally from a source address, as the sidecar does.
CONNECT_AS_SIDECAR = """
import os, socket, sys
host, port, gid, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.setgid(gid)
os.setuid(gid)
sock = socket.socket()
sock.settimeout(5)
if source:
    sock.bind((source, 0))
sock.connect((host, port))
sock.sendall(b"hi")
print(sock.recv(100).decode())
"""


@pytest.fixture
def intercepted_pod(tmp_path: Path) -> Iterator[PodNetwork]:
    """One pod with the interception rules, on a bridge and CIDR no other test uses."""
    addressing = PodAddressing(
        pod_cidr="10.243.0.0/24",
        service_cidr="10.244.0.0/24",
        bridge="gsmh2i",
        netns_prefix="gsmh2i-",
    )
    pod = PodNetwork(
        f"p{os.getpid()}",
        addressing.pod_ip(0),
        addressing,
        {},
        InterceptionPorts(sidecar_uid=SIDECAR_ID, sidecar_gid=SIDECAR_ID),
        tmp_path / "netns",
    )
    try:
        pod.apply()
        yield pod
    finally:
        pod.teardown()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    assert pod.netns not in listed.stdout.split()


def _accept_one(netns: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", ACCEPT_ONE, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _connect_as_sidecar(netns: str, host: str, port: int, source: str) -> str:
    argv = [sys.executable, "-c", CONNECT_AS_SIDECAR, host, str(port), str(SIDECAR_ID), source]
    done = subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _report(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=STEP_TIMEOUT_S)
    assert proc.returncode == 0, err
    return out.strip()


@root_only
def test_sidecar_delivery_from_127_0_0_6_reaches_the_app_on_the_pod_ip(
    intercepted_pod: PodNetwork,
) -> None:
    """From 127.0.0.6 the sidecar reaches the app; from the pod IP it lands on 15006."""
    ns, ip = intercepted_pod.netns, intercepted_pod.pod_ip
    app, inbound = _accept_one(ns, 9080), _accept_one(ns, 15006)
    try:
        assert _connect_as_sidecar(ns, ip, 9080, INBOUND_PASSTHROUGH_SOURCE) == "hi"
        assert _report(app) == "127.0.0.6 hi"
        assert _connect_as_sidecar(ns, ip, 9080, "") == "hi"
        assert _report(inbound) == f"{ip} hi"  # redirected: it would loop into the sidecar
    finally:
        for proc in (app, inbound):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
