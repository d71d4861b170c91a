"""Store durability and exclusivity: kill -9 loses nothing acknowledged; one holder per file."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import gossamer
from gossamer.control.store import SqliteStore, StoredObject, StoreError, StoreLocked

# Commits create-only transactions of three VirtualServices each, forever, and prints each
# revision once `commit` has returned: a printed revision is an acknowledged one.
CHILD = """
import asyncio, sys
from gossamer.control.store import SqliteStore, Write
from gossamer.spec.base import ResourceKey

async def main(path):
    store = SqliteStore.open(path)
    index = 0
    while True:
        writes = []
        for _ in range(3):
            name = f"vs-{index}"
            index += 1
            key = ResourceKey("networking.istio.io", "VirtualService", "default", name)
            manifest = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                        "metadata": {"name": name}, "spec": {"hosts": [name]}}
            writes.append(Write(key, manifest, 0))
        revision, _ = await store.commit(writes)
        print(revision, flush=True)

asyncio.run(main(sys.argv[1]))
"""

ACKNOWLEDGED_BEFORE_KILL = 40


def start_child(path: Path) -> subprocess.Popen[str]:
    src = Path(gossamer.__file__).resolve().parent.parent  # the gossamer under test
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    child = start_child(path)
    acknowledged: list[int] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == 1:
                # While the child runs, it holds the store: a second opener is refused by name.
                with pytest.raises(StoreLocked, match=f"process {child.pid}"):
                    SqliteStore.open(path)
            if len(acknowledged) == ACKNOWLEDGED_BEFORE_KILL:
                child.send_signal(signal.SIGKILL)  # mid-stream: it is committing as we speak
                break
        child.wait(timeout=30)
        # Lines already in the pipe were acknowledged before the kill too; a line cut short by
        # the kill was not.
        rest = child.stdout.read()
        acknowledged += [int(line) for line in rest.splitlines(keepends=True) if line[-1:] == "\n"]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        stderr = child.stderr.read() if child.stderr else ""
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, f"child failed:\n{stderr}"
    assert child.returncode == -signal.SIGKILL
    assert acknowledged == list(range(1, len(acknowledged) + 1))

    revision, objects = _reopen_and_list(path)
    assert revision >= acknowledged[-1]
    names = {o.key.name for o in objects}
    assert {f"vs-{i}" for i in range(3 * acknowledged[-1])} <= names
    # Every commit is all or nothing, even one cut short by the kill: three objects a revision.
    per_revision = Counter(o.mod_revision for o in objects)
    assert set(per_revision.values()) == {3}
    assert sorted(per_revision) == list(range(1, revision + 1))


def _reopen_and_list(path: Path) -> tuple[int, list[StoredObject]]:
    async def read() -> tuple[int, list[StoredObject]]:
        async with SqliteStore.open(path) as store:  # the dead child's lock went with it
            return await store.list()

    return asyncio.run(read())


async def test_two_stores_on_one_path_are_refused(tmp_path: Path) -> None:
    first = SqliteStore.open(tmp_path / "store.db")
    with pytest.raises(StoreLocked) as refused:
        SqliteStore.open(tmp_path / "store.db")
    assert refused.value.pid == os.getpid()
    assert str(os.getpid()) in str(refused.value)
    await first.close()
    second = SqliteStore.open(tmp_path / "store.db")  # free again once the holder closed
    await second.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    await SqliteStore.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore.open(path)
