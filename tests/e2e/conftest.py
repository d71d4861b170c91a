"""Helpers for end-to-end tests: child processes that die with us, and a real control plane.

Children are started without `preexec_fn` (it can crash children of a process that runs gRPC,
see xds-notes): a tiny launcher sets PR_SET_PDEATHSIG and then execs the real command, so a
child never outlives the test run. Only processes started here are ever stopped, by their pid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
GOSSAMER = REPO / ".venv" / "bin" / "gossamer"
_LAUNCHER = (
    "import ctypes, os, signal, sys;"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL);"  # PR_SET_PDEATHSIG
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def launch(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.PIPE,
    stdout: Any = subprocess.PIPE,
    stderr: Any = None,
) -> subprocess.Popen[str]:
    """Start `argv` (argv[0] an absolute path) as a child that is killed if we die."""
    return subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, *argv],
        env={**os.environ, **(env or {})},
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=True,
    )


def stop(proc: subprocess.Popen[str], within: float = 10) -> None:
    """Close stdin (children here exit on EOF), then terminate, then kill: only this pid."""
    if proc.poll() is None and proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class JsonChild:
    """A child that answers one JSON line per JSON command line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited (rc={self.proc.poll()}) on {command}")
        reply: dict[str, Any] = json.loads(line)
        return reply


@dataclass
class RunningControlPlane:
    """`gossamer controlplane` in a temporary home: its xDS address and its REST API."""

    proc: subprocess.Popen[str]
    home: Path
    xds: str
    api: str
    token: str

    def apply(self, text: str) -> dict[str, Any]:
        """POST YAML to /api/v1/apply; returns the decoded answer (fails on HTTP errors)."""
        request = urllib.request.Request(
            f"{self.api}/api/v1/apply",
            data=text.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/yaml"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.api}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def start_control_plane(
    home: Path, *, debounce_ms: int = 20, within: float = 30
) -> RunningControlPlane:
    """Start the control plane on free ports (port 0) and wait for its controlplane.json."""
    home.mkdir(parents=True, exist_ok=True)
    state = home / "controlplane.json"
    log = (home / "controlplane.log").open("w")
    proc = launch(
        [
            str(GOSSAMER),
            "controlplane",
            "--home",
            str(home),
            "--xds-port",
            "0",
            "--api-port",
            "0",
            "--debounce-ms",
            str(debounce_ms),
            "--log-level",
            "warning",
        ],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + within
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise AssertionError(
                f"control plane did not start: {(home / 'controlplane.log').read_text()}"
            )
        time.sleep(0.05)
    info = json.loads(state.read_text())
    return RunningControlPlane(
        proc=proc,
        home=home,
        xds=str(info["xds"]),
        api=str(info["api"]),
        token=(home / "token").read_text().strip(),
    )


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[RunningControlPlane]:
    plane = start_control_plane(tmp_path / "home")
    try:
        yield plane
    finally:
        plane.proc.terminate()
        stop(plane.proc)


def grpc_bootstrap(
    path: Path, xds: str, node_id: str, metadata: dict[str, Any] | None = None
) -> Path:
    """A gRPC xDS bootstrap file for a proxyless client of this control plane."""
    path.write_text(
        json.dumps(
            {
                "xds_servers": [
                    {
                        "server_uri": xds,
                        "channel_creds": [{"type": "insecure"}],
                        "server_features": ["xds_v3"],
                    }
                ],
                "node": {"id": node_id, "metadata": metadata or {}},
            }
        )
    )
    return path
