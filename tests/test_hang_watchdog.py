"""The suite's hang watchdog (tests/hang_watchdog.py): a teardown that hangs after pytest-timeout
has already failed the test ends the run within the limit, naming where it hung."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HANGS_AFTER_ITS_TIMEOUT = """
import threading, time
import pytest

@pytest.fixture
def stuck_on_teardown():
    yield
    threading.Event().wait()  # what a loop close waiting on a deaf task looks like

def test_slow(stuck_on_teardown):
    time.sleep(30)
"""


def test_a_hang_pytest_timeout_cannot_end_ends_the_run_with_its_stacks(tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGS_AFTER_ITS_TIMEOUT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GOSSAMER_TEST_HANG_LIMIT": "4"}
    argv = [sys.executable, "-m", "pytest", "-q", "-c", os.devnull, "-p", "no:cacheprovider"]
    argv += ["-p", "no:faulthandler", "-p", "tests.hang_watchdog", "-o", "timeout=1"]
    started = time.monotonic()
    done = subprocess.run(
        [*argv, str(tmp_path / "test_hangs.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode != 0
    assert took < 30, f"the run took {took:.0f}s: the watchdog did not end it"
    assert "Timeout (0:00:04)!" in done.stderr, done.stderr[-2000:]
    assert "in stuck_on_teardown" in done.stderr  # the stack names where it hung
