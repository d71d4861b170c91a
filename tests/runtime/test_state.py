"""What `gossamer up` leaves in its home: the runtime lock and atomically replaced JSON files."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.runtime import state
from tests.runtime.lock_holder import holding_lock


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with holding_lock(tmp_path) as proc:
        yield proc


def test_a_second_acquire_fails_naming_the_holder(tmp_path: Path) -> None:
    lock = state.acquire(tmp_path / "home")
    try:
        with pytest.raises(state.RuntimeRunning, match=f"pid {os.getpid()}") as caught:
            state.acquire(tmp_path / "home")
        assert caught.value.pid == os.getpid()
        assert "gossamer down" in str(caught.value)
    finally:
        lock.release()
    state.acquire(tmp_path / "home").release()  # free again once released


def test_running_pid_is_none_without_a_lock_file_or_a_holder(tmp_path: Path) -> None:
    assert state.running_pid(tmp_path) is None
    state.acquire(tmp_path).release()
    assert (tmp_path / state.LOCK).exists()
    assert state.running_pid(tmp_path) is None


def test_running_pid_names_another_process_and_leaves_its_lock_alone(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    for _ in range(3):
        assert state.running_pid(tmp_path) == holder.pid
    assert (tmp_path / state.LOCK).read_text() == f"{holder.pid}\n"
    with pytest.raises(state.RuntimeRunning, match=f"pid {holder.pid}"):
        state.acquire(tmp_path)


def test_running_pid_is_minus_one_while_the_holder_has_not_written_its_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.truncate(tmp_path / state.LOCK, 0)  # as just after the holder's flock
    assert state.running_pid(tmp_path) == -1
    with pytest.raises(state.RuntimeRunning, match="another process"):
        state.acquire(tmp_path)


def test_acquire_is_not_refused_because_a_reader_was_probing_the_lock(tmp_path: Path) -> None:
    """`running_pid` (down, run, get pods) holds a shared flock for an instant; an `up` that
    starts in that instant must wait it out, not report "already running (another process)"."""
    state.acquire(tmp_path).release()
    fd = os.open(tmp_path / state.LOCK, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a probe, frozen mid-way
    releaser = threading.Timer(0.1, os.close, (fd,))
    releaser.start()
    try:
        lock = state.acquire(tmp_path)
    finally:
        releaser.join()
    assert (tmp_path / state.LOCK).read_text() == f"{os.getpid()}\n"
    lock.release()


def test_write_json_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / state.PODS
    path.write_text("old")
    inode = path.stat().st_ino
    state.write_json(path, [{"name": "reviews-0", "ready": True}])
    assert json.loads(path.read_text()) == [{"name": "reviews-0", "ready": True}]
    assert path.stat().st_ino != inode  # a rename, not a rewrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.PODS]
    assert state.read_json(path) == [{"name": "reviews-0", "ready": True}]


def test_read_json_is_none_for_a_missing_or_broken_file(tmp_path: Path) -> None:
    assert state.read_json(tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text('{"pid": ')
    assert state.read_json(tmp_path / "broken.json") is None
