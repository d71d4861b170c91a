"""PodNetwork as data (plan) and for real (as root): two pods on the bridge, interception,
hosts resolution and a teardown that leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.runtime.pods import PodAddressing, PodNetwork, cleanup_all
from gossamer.runtime.pods.addressing import veth_names
from gossamer.runtime.pods.interception import InterceptionPorts

SIDECAR_UID = 1337
# Real pods in these tests live on a bridge, range and prefix of their own, never the default
# `gossamer0`/`gsm-` a running `gossamer up` on this machine owns.
TEST_NET = PodAddressing(
    pod_cidr="10.236.0.0/24", service_cidr="10.237.0.0/24", bridge="gsmtnet0", netns_prefix="gsmtn-"
)
STEP_TIMEOUT_S = 10.0


def test_plan_builds_the_namespace_veth_and_default_route() -> None:
    pod = PodNetwork("web-0", "10.231.0.2", interception=None)
    plan = [" ".join(argv) for argv in pod.plan()]
    host_if, pod_if = veth_names("gsm-web-0")
    assert plan[0] == "ip netns add gsm-web-0"
    assert f"ip link set {host_if} master gossamer0" in plan
    assert f"ip -n gsm-web-0 link set {pod_if} name eth0" in plan
    assert "ip -n gsm-web-0 addr add 10.231.0.2/16 dev eth0" in plan
    assert "ip -n gsm-web-0 link set lo up" in plan
    assert plan[-1] == "ip -n gsm-web-0 route add default via 10.231.0.1"
    assert not any("iptables" in line for line in plan)


def test_plan_runs_interception_rules_inside_the_pod_namespace() -> None:
    plan = PodNetwork("web-0", "10.231.0.2").plan()
    rules = [argv for argv in plan if "iptables" in argv]
    assert rules and all(argv[:4] == ["ip", "netns", "exec", "gsm-web-0"] for argv in rules)


root_only = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"),
    reason="needs root with iproute2 and iptables to create network namespaces",
)

LISTEN = """
import socket, sys
from gossamer.transport.original_dst import original_destination
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])))
srv.settimeout(10)
print("ready", flush=True)
conn, _ = srv.accept()
dst = original_destination(conn)
data = conn.recv(100)
conn.sendall(data)
print(f"{dst[0]}:{dst[1]}" if dst else "none", data.decode(), flush=True)
"""

CONNECT = """
import os, socket, sys
uid = int(sys.argv[3])
if uid:
    os.setgid(uid)
    os.setuid(uid)
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as sock:
    sock.sendall(b"hello")
    print(sock.recv(100).decode())
"""


def in_pod(netns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def start_listener(netns: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        in_pod(netns, sys.executable, "-c", LISTEN, str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def connect(netns: str, host: str, port: int, uid: int = 0) -> str:
    result = subprocess.run(
        in_pod(netns, sys.executable, "-c", CONNECT, host, str(port), str(uid)),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def listener_report(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=STEP_TIMEOUT_S)
    assert proc.returncode == 0, err
    return out.strip()


def leftovers(pods: list[PodNetwork]) -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    for pod in pods:
        if pod.netns in netns.stdout.split():
            found.append(pod.netns)
        if pod.host_veth in links.stdout:
            found.append(pod.host_veth)
        if (pod.etc_root / pod.netns).exists():
            found.append(str(pod.etc_root / pod.netns))
    bridge = pods[0].addressing.bridge
    if f": {bridge}:" in links.stdout:
        found.append(bridge)
    forward = subprocess.run(
        ["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=False
    )
    found += [line for line in forward.stdout.splitlines() if bridge in line]
    return found


@pytest.fixture
def two_pods() -> Iterator[tuple[PodNetwork, PodNetwork]]:
    """Pod a intercepts outbound and inbound traffic; pod b is a plain pod."""
    addressing = TEST_NET
    etc = Path("/etc/netns")
    services = {("reviews", "default"): addressing.service_vip(0)}
    suffix = str(os.getpid())
    a = PodNetwork(
        f"t{suffix}-a",
        addressing.pod_ip(0),
        addressing,
        services,
        InterceptionPorts(sidecar_uid=SIDECAR_UID, sidecar_gid=SIDECAR_UID),
        etc,
    )
    b = PodNetwork(f"t{suffix}-b", addressing.pod_ip(1), addressing, services, None, etc)
    try:
        a.apply()
        b.apply()
        yield a, b
    finally:
        a.teardown()
        b.teardown()
    assert leftovers([a, b]) == []
    a.teardown()  # idempotent
    b.teardown()


@root_only
def test_pods_reach_each_other_over_the_bridge(two_pods: tuple[PodNetwork, PodNetwork]) -> None:
    """The sidecar's UID is exempt from interception, so it reaches pod b's app directly."""
    a, b = two_pods
    server = start_listener(b.netns, 9080)
    try:
        assert connect(a.netns, b.pod_ip, 9080, uid=SIDECAR_UID) == "hello"
        assert listener_report(server) == "none hello"
    finally:
        server.kill()
        server.wait()


@root_only
def test_outbound_tcp_from_the_app_is_redirected_to_15001(
    two_pods: tuple[PodNetwork, PodNetwork],
) -> None:
    a, b = two_pods
    sidecar = start_listener(a.netns, 15001)
    try:
        assert connect(a.netns, b.pod_ip, 9080) == "hello"
        assert listener_report(sidecar) == f"{b.pod_ip}:9080 hello"
    finally:
        sidecar.kill()
        sidecar.wait()


@root_only
def test_inbound_tcp_to_the_pod_is_redirected_to_15006(
    two_pods: tuple[PodNetwork, PodNetwork],
) -> None:
    a, b = two_pods
    sidecar = start_listener(a.netns, 15006)
    try:
        assert connect(b.netns, a.pod_ip, 9080) == "hello"
        assert listener_report(sidecar) == f"{a.pod_ip}:9080 hello"
    finally:
        sidecar.kill()
        sidecar.wait()


@root_only
def test_hosts_file_resolves_service_names_to_the_vip(
    two_pods: tuple[PodNetwork, PodNetwork],
) -> None:
    a, _ = two_pods
    vip = a.addressing.service_vip(0)
    for name in ("reviews", "reviews.default", "reviews.default.svc.cluster.local"):
        result = subprocess.run(
            in_pod(
                a.netns,
                sys.executable,
                "-c",
                f"import socket; print(socket.gethostbyname({name!r}))",
            ),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
        assert result.stdout.strip() == vip, result.stderr


@root_only
def test_cleanup_all_removes_a_crashed_runs_leftovers() -> None:
    pod = PodNetwork(f"t{os.getpid()}-crash", TEST_NET.pod_ip(5), TEST_NET, interception=None)
    try:
        pod.apply()
        cleanup_all(TEST_NET.netns_prefix, TEST_NET)
        assert leftovers([pod]) == []
    finally:
        pod.teardown()


@root_only
def test_loopback_traffic_inside_the_pod_is_not_intercepted(
    two_pods: tuple[PodNetwork, PodNetwork],
) -> None:
    a, _ = two_pods
    app = start_listener(a.netns, 9080)
    try:
        assert connect(a.netns, "127.0.0.1", 9080) == "hello"
        assert listener_report(app).endswith("hello")
    finally:
        app.kill()
        app.wait()


@root_only
def test_bridge_stays_while_another_pod_uses_it(two_pods: tuple[PodNetwork, PodNetwork]) -> None:
    a, b = two_pods
    a.teardown()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert f": {b.addressing.bridge}:" in links.stdout
    assert a.host_veth not in links.stdout and b.host_veth in links.stdout


@root_only
def test_cleanup_all_leaves_foreign_namespaces_alone() -> None:
    foreign = f"other-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", foreign], check=True, timeout=STEP_TIMEOUT_S)
    try:
        cleanup_all(TEST_NET.netns_prefix, TEST_NET)
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
        assert foreign in names.stdout.split()
    finally:
        subprocess.run(["ip", "netns", "delete", foreign], check=False, timeout=STEP_TIMEOUT_S)


@root_only
def test_cleanup_all_spares_pods_of_another_bridge_and_prefix() -> None:
    """All host veths share one name prefix: another runtime's (or test's) live pod stays.
    (Cleans a runtime of its own, never the default `gsm-`/gossamer0 one a real `up` may own.)"""
    ours = PodAddressing(pod_cidr="10.247.34.0/24", bridge="gsmh1cc", netns_prefix="gsmh1x-")
    other = PodAddressing(pod_cidr="10.247.33.0/24", bridge="gsmh1cl", netns_prefix="gsmh1c-")
    pod = PodNetwork(f"t{os.getpid()}-other", other.pod_ip(0), other, interception=None)
    try:
        pod.apply()
        cleanup_all(ours.netns_prefix, ours)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
        assert pod.host_veth in links.stdout and f": {other.bridge}:" in links.stdout
    finally:
        pod.teardown()
    assert leftovers([pod]) == []
