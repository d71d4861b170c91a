"""Another process that holds a home's runtime lock, as a running `gossamer up` does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

HOLD_LOCK = """
import sys
from pathlib import Path
from gossamer.runtime import state
lock = state.acquire(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""


@contextmanager
def holding_lock(home: Path, prefix: Sequence[str] = ()) -> Iterator[subprocess.Popen[str]]:
    """Hold the lock until the block ends (stdin closes) or the process is signalled.
    `prefix` runs it as someone else (e.g. `setpriv --reuid=...`)."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-c", HOLD_LOCK, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
