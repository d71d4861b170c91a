"""A real control plane and the `gossamer` CLI as child processes, shared by the CLI tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.harness import ControlPlane, gossamer_argv


@contextmanager
def started(home: Path, log_level: str = "info") -> Iterator[ControlPlane]:
    """`gossamer controlplane --home HOME`, stopped (by its PID) on leaving."""
    cp = ControlPlane(home, log_level=log_level)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


def run_gossamer(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`gossamer ARGS...` with `env`, run to its end (60 s at most); its exit code and output."""
    return subprocess.run(
        [*gossamer_argv(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
