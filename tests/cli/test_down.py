"""`gossamer down`: says so when nothing runs, stops a running `up` by its PID.

As root, `down` also removes leftover namespaces and veths of the default pod network, which
would take down a mesh another test (or a developer) runs at the same time; so the command runs
as `nobody` here, where it only deals with the runtime lock of its own home.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.runtime import state
from tests.runtime.lock_holder import holding_lock

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
UNPRIVILEGED = AS_NOBODY if os.geteuid() == 0 else []


@pytest.fixture
def home() -> Iterator[Path]:
    """A home the unprivileged user owns (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="gsm-down-test-", dir="/tmp"))
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def down(home: Path) -> subprocess.CompletedProcess[str]:
    argv = [*UNPRIVILEGED, sys.executable, "-m", "gossamer.cli.main", "down", "--home", str(home)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_down_with_nothing_running_says_so_and_succeeds(home: Path) -> None:
    result = down(home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Gossamer is not running.\n"


def test_down_after_a_killed_run_removes_what_it_left(home: Path) -> None:
    for name in (state.RUNTIME, state.PODS, state.SERVICES):
        (home / name).write_text('{"mode": "explicit"}\n' if name == state.RUNTIME else "[]\n")
    result = down(home)
    assert result.returncode == 0, result.stderr
    assert "killed without cleaning up" in result.stdout and "Gossamer is down" in result.stdout
    assert not [n for n in (state.RUNTIME, state.PODS, state.SERVICES) if (home / n).exists()]


def test_down_stops_the_running_up_by_its_pid_and_removes_the_pod_list(home: Path) -> None:
    with holding_lock(home, UNPRIVILEGED) as running:
        (home / state.PODS).write_text("[]\n")
        result = down(home)
        assert running.wait(timeout=5) == -signal.SIGTERM
    assert result.returncode == 0, result.stderr
    assert f"stopping gossamer up (pid {running.pid})" in result.stdout
    assert "Gossamer is down" in result.stdout
    assert not (home / state.PODS).exists()
    assert state.running_pid(home) is None


def test_down_while_up_is_starting_asks_to_try_again(home: Path) -> None:
    with holding_lock(home, UNPRIVILEGED) as starting:
        os.truncate(home / state.LOCK, 0)  # locked, PID not written yet
        result = down(home)
        assert starting.poll() is None  # left alone
    assert result.returncode == 1
    assert "Gossamer is starting; try again in a moment." in result.stderr
