"""Helpers for end-to-end tests: child processes that die with us, and a real control plane.

Children are started without `preexec_fn` (it can crash children of a process that runs gRPC,
see xds-notes) through `gossamer.runtime.envoy.with_parent_death_signal`, so a child never
outlives the test run. Only processes started here are ever stopped, by their pid.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime.envoy import with_parent_death_signal
from tests.e2e.harness import ControlPlane


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
        with_parent_death_signal(argv),
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


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A real `gossamer controlplane` on free ports, stopped (by its PID) after the test."""
    plane = ControlPlane(tmp_path / "home", log_level="warning")
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


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
