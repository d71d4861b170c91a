"""An exclusive lock file so that only one control plane at a time opens a store."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from gossamer.control.store.base import StoreLocked


class LockFile:
    """An flock(2) held on `<path>` for as long as this object is not released.

    flock (not POSIX fcntl/lockf record locks) because its locks belong to the open file: two
    opens in one process conflict just as two processes do, and the kernel drops the lock when
    its holder dies, even by SIGKILL, so a crashed control plane never leaves a stale lock. The
    holder writes its PID into the file so that the refusal can name it; the file itself is
    never deleted, since deleting a lock file races with the next process locking it.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path) -> LockFile:
        """Take the lock without waiting; raises `StoreLocked` naming the holder's PID.

        The caller releases it with `release()`.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StoreLocked(str(path), pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Drop the lock; idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor of the open file releases the flock

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "released"
        return f"<LockFile {self.path} {state}>"


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None  # the holder has not written it yet, or the file is not ours
