"""Processes the HTTP proxy bench starts: launch pinned to a CPU, measure, stop by PID.

Every child goes through `with_parent_death_signal` (the kernel kills it if the bench dies) and
`taskset` (its threads and children inherit the CPU). CPU time and RSS are read from /proc and
summed over the process and all its descendants (nginx and Gossamer run worker processes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from gossamer.runtime.envoy import with_parent_death_signal

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def pinned(argv: Sequence[str], cpu: int) -> list[str]:
    """`argv` run on one CPU (taskset execs it in place: the PID stays the one we started)."""
    taskset = shutil.which("taskset") or "/usr/bin/taskset"
    return [taskset, "-c", str(cpu), *argv]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every live process below it (by parent PID, one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (tells a PID apart from a later process reusing it)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime (all threads) summed over `pids`."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def rss_kib(pids: Sequence[int]) -> int:
    """VmRSS summed over `pids` (KiB)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def pin_tree(root: int, cpu: int) -> None:
    """Move every thread of `root` and its descendants to `cpu` (for processes we could not
    start through taskset, e.g. EnvoyProcess)."""
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), {cpu})


class Launched:
    """One child process started pinned, with PDEATHSIG; `stop()` signals only PIDs it owns."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, cpu: int) -> None:
        self.name = name
        self.log_path = log
        self._log: IO[bytes] = log.open("ab")
        self.proc = subprocess.Popen(
            with_parent_death_signal(pinned(argv, cpu)),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._seen: dict[int, int] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        """This process and its descendants now; remembered so `stop` can reap stragglers."""
        found = descendants(self.proc.pid)
        for pid in found:
            born = start_time(pid)
            if born is not None:
                self._seen.setdefault(pid, born)
        return found

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM our PID, SIGKILL after `grace`; then SIGKILL any descendant we saw that is
        still alive with the same start time (a worker its parent failed to take down)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(grace)
        for pid, born in self._seen.items():
            if pid != self.proc.pid and start_time(pid) == born:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()


class PeakRss:
    """Samples the summed RSS of some process trees every `period` seconds; `peak` in KiB."""

    def __init__(self, roots: Sequence[Launched | int], period: float = 0.25) -> None:
        self.roots = list(roots)
        self.period = period
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        out: list[int] = []
        for root in self.roots:
            out += root.pids() if isinstance(root, Launched) else descendants(root)
        return out

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        while not self._stop.wait(self.period) and time.monotonic() < deadline:
            self.peak = max(self.peak, rss_kib(self._pids()))

    def __enter__(self) -> PeakRss:
        self.peak = rss_kib(self._pids())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss_kib(self._pids()))


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent not idle since boot (user+nice+system+irq+softirq+steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_tree_seconds() -> float:
    """CPU time of this process, its reaped children (wrk, load generators) and its live
    descendants: what the bench itself spent, to tell other processes' load apart."""
    total = 0.0
    for pid in descendants(os.getpid()):
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(x) for x in fields[11:15]) / CLOCK_TICKS
    return total


def others_load(window: float = 1.0) -> float:
    """Share of one CPU that processes outside the bench used over the next `window` seconds."""
    busy, own = machine_busy_seconds(), own_tree_seconds()
    time.sleep(window)
    return max(0.0, machine_busy_seconds() - busy - (own_tree_seconds() - own)) / window


def wait_for_quiet(limit: float, threshold: float = 0.15) -> float:
    """Wait (at most `limit` seconds) until other processes use under `threshold` of one CPU
    for a second; returns the last share seen (the machine may be shared with other work)."""
    deadline = time.monotonic() + limit
    share = others_load()
    while share > threshold and time.monotonic() < deadline:
        share = others_load()
    return share


class OthersMeter:
    """CPU used by processes outside the bench between `__init__` and `share()` (in CPUs):
    reap the bench's own short-lived children before reading, so their time counts as ours."""

    def __init__(self) -> None:
        self.busy, self.own = machine_busy_seconds(), own_tree_seconds()
        self.began = time.monotonic()

    def share(self) -> float:
        others = machine_busy_seconds() - self.busy - (own_tree_seconds() - self.own)
        return max(0.0, others) / max(time.monotonic() - self.began, 1e-9)
