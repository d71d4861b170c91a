"""What a running `gossamer up` leaves in $GOSSAMER_HOME for other commands to find.

`runtime.lock` is held (flock) for the runtime's whole life: a second `up` fails fast and names
the first. `runtime.json` says where things are; `pods.json` is the pod list `get pods` prints.
Both are replaced atomically (write + rename) so readers never see half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from gossamer.control.store.base import StoreLocked
from gossamer.control.store.lockfile import LockFile

LOCK = "runtime.lock"
RUNTIME = "runtime.json"
PODS = "pods.json"
SERVICES = "services.json"  # [[name, namespace, vip], ...] for `gossamer run` pods
PROBE_WAIT = 0.5  # seconds acquire waits out a holder that names no PID (see acquire)


class RuntimeRunning(RuntimeError):
    """Another `gossamer up` holds the lock on this home."""

    def __init__(self, home: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"Gossamer is already running ({who}, home {home}); "
            "`gossamer down` stops it, `gossamer get pods` shows it"
        )
        self.pid = pid


def acquire(home: Path) -> LockFile:
    """Take the runtime lock. A holder that names no PID is given `PROBE_WAIT` seconds to go
    away or to write its PID: `running_pid` holds a shared lock for an instant, and a holder
    that has just locked writes its PID right after."""
    home.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + PROBE_WAIT
    while True:
        try:
            return LockFile.acquire(home / LOCK)
        except StoreLocked as exc:
            if exc.pid is not None or time.monotonic() >= deadline:
                raise RuntimeRunning(home, exc.pid) from None
        time.sleep(0.02)


NETWORK_LOCK = Path("/run/gossamer-pods.lock")


class PodNetworkInUse(RuntimeError):
    """Another `gossamer up` (any home) runs netns pods on this machine: one bridge, one owner."""

    def __init__(self, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another gossamer up ({who}) runs pods on this machine; "
            "stop it first (`gossamer down --home <its home>`)"
        )
        self.pid = pid


def acquire_network(path: Path = NETWORK_LOCK) -> LockFile:
    """Held by a netns-mode `up` for its whole life: nothing else cleans up pod networks."""
    try:
        return LockFile.acquire(path)
    except StoreLocked as exc:
        raise PodNetworkInUse(exc.pid) from None


def write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def running_pid(home: Path) -> int | None:
    """The PID of the `up` that holds the lock (-1 if it has not written it yet), or None when
    none runs. Probes with a shared flock for an instant and never writes; `acquire` waits such
    a probe out, so it cannot make a starting `up` fail."""
    path = home / LOCK
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None
