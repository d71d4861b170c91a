"""SO_ORIGINAL_DST for real: iptables REDIRECT inside a network namespace this test creates.

Needs root, `ip` and `iptables`; skipped otherwise. Everything runs inside the namespace (the
client, the proxy, the upstreams), which is deleted afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAPTURE_PORT = 15001
INBOUND_PORT = 15006


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if shutil.which("ip") is None or shutil.which("iptables") is None:
        pytest.skip("needs the ip and iptables commands")
    name = f"gsm-test-{uuid.uuid4().hex[:8]}"
    try:
        _run("ip", "netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace: {exc.stderr.decode().strip()}")
    try:
        inside = ("ip", "netns", "exec", name)
        _run(*inside, "ip", "link", "set", "lo", "up")
        try:
            _run(*inside, "ip", "link", "add", "gsm0", "type", "dummy")
            device = "gsm0"
        except subprocess.CalledProcessError:
            device = "lo"  # no dummy driver: the VIP range routes via loopback instead
        _run(*inside, "ip", "addr", "add", "10.77.0.1/24", "dev", device)
        _run(*inside, "ip", "link", "set", device, "up")
        try:
            _run(
                *inside, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
                "-d", "10.77.0.9", "--dport", "8080",
                "-j", "REDIRECT", "--to-ports", str(INBOUND_PORT),
            )  # fmt: skip
            _run(
                *inside, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
                "-d", "10.77.0.0/24", "-j", "REDIRECT", "--to-ports", str(CAPTURE_PORT),
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"iptables nat is not usable here: {exc.stderr.decode().strip()}")
        yield name
    finally:
        subprocess.run(
            ["ip", "netns", "delete", name], check=False, capture_output=True, timeout=20
        )


def test_redirected_connections_are_routed_by_their_original_destination(netns: str) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "tests.transport.netns_child",
         str(CAPTURE_PORT), str(INBOUND_PORT)],
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"},
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert result["raw"] == ["10.77.0.7", 80]
    assert (result["http_status"], result["http_upstream"]) == (200, "a")
    assert result["upstream_saw"] == "/captured"
    assert result["tcp"] == "PING"
    assert result["inbound"] == "app"
