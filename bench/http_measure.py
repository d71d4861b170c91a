"""One measurement of one proxy row: wrk at full speed, then open-loop latency at a fixed rate.

The proxy's CPU (utime+stime over its process trees) is read just before and just after each
load, so CPU per request is the proxy's own cost over exactly the measured window; RSS is the
peak sampled during the load. Load generators run on CPU 0 (with the upstream); proxies on CPU 1.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossamer.runtime.envoy import with_parent_death_signal
from http_procs import (
    Launched,
    OthersMeter,
    PeakRss,
    cpu_seconds,
    descendants,
    pinned,
    rss_kib,
)

LOAD_SCRIPT = Path(__file__).with_name("http_load.py")
LOAD_CPU = 0


@dataclass
class Row:
    """A proxy (or a pair of them) under test and every sample taken of it."""

    name: str
    port: int
    host: str
    roots: list[Launched | int]  # whose process trees count as the proxy (int: a bare PID)
    two_hop: bool = False
    status: str = ""  # empty while usable; otherwise why the row has no numbers
    samples: dict[str, list[float]] = field(default_factory=dict)

    def pids(self) -> list[int]:
        out: list[int] = []
        for root in self.roots:
            out += root.pids() if isinstance(root, Launched) else descendants(root)
        return out

    def add(self, metric: str, value: float) -> None:
        self.samples.setdefault(metric, []).append(value)


def run_wrk(row: Row, seconds: float, connections: int, threads: int) -> None:
    """wrk keep-alive at full speed; samples rps, cpu_max (µs/req), rss_load (MiB)."""
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
    ]
    argv += ["-H", f"Host: {row.host}", f"http://127.0.0.1:{row.port}/"]
    before, others = cpu_seconds(row.pids()), OthersMeter()
    with PeakRss(row.roots) as peak:
        done = subprocess.run(
            with_parent_death_signal(pinned(argv, LOAD_CPU)),
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=False,
        )
    used = cpu_seconds(row.pids()) - before
    out = done.stdout
    total = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or total is None or rate is None:
        row.status = "wrk failed: " + " ".join((out + done.stderr).split())[-200:]
        return
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    requests = int(total.group(1))
    if bad is not None and int(bad.group(1)) > requests // 100:
        row.status = f"wrk: {bad.group(1)} of {requests} responses not 2xx"
        return
    failed = sum(int(n) for n in re.findall(r"\d+", errors.group(1))) if errors else 0
    if failed > requests // 100:
        row.status = f"wrk: socket errors {errors.group(1) if errors else ''} in {requests}"
        return
    row.add("rps", float(rate.group(1)))
    row.add("others", others.share() * 100)
    row.add("cpu_max", used / max(requests, 1) * 1e6)
    row.add("rss_load", peak.peak / 1024)


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The child's stdout lines, read by a daemon thread (so every wait can have a timeout)."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def run_latency(row: Row, rate: float, seconds: float, connections: int) -> None:
    """Open-loop load (http_load.py); samples p50/p90/p99 (ms), cpu_rate (µs/req), rss_load
    for pairs (they get no wrk run)."""
    argv = [sys.executable, str(LOAD_SCRIPT), "--port", str(row.port), "--host", row.host]
    argv += ["--rate", f"{rate:g}", "--seconds", f"{seconds:g}", "--conns", str(connections)]
    proc = subprocess.Popen(
        with_parent_death_signal(pinned(argv, LOAD_CPU)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _lines(proc)
        ready = _next_json(lines, 30)
        if not ready.get("ready"):
            row.status = f"load generator did not start: {_stderr_tail(proc)}"
            return
        before, others = cpu_seconds(row.pids()), OthersMeter()
        with PeakRss(row.roots) as peak:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            result = _next_json(lines, seconds + 30)
        used = cpu_seconds(row.pids()) - before
    finally:
        if proc.poll() is None:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    if "p50" not in result:
        row.status = f"load generator failed: {_stderr_tail(proc)}"
        return
    if result["errors"] > result["sent"] // 100:
        row.status = f"{result['errors']} of {result['sent']} requests failed at {rate:g} rps"
        return
    for q in ("p50", "p90", "p99"):
        row.add(q, float(result[q]))
    row.add("cpu_rate", used / max(int(result["sent"]), 1) * 1e6)
    row.add("others", others.share() * 100)
    if row.two_hop:
        row.add("rss_load", peak.peak / 1024)


def _next_json(lines: queue.Queue[str], timeout: float) -> dict[str, Any]:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        return {}
    try:
        value = json.loads(line) if line else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _stderr_tail(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    text = proc.stderr.read() if proc.stderr is not None else ""
    return text.strip()[-300:]


def idle_rss(row: Row) -> None:
    """RSS before any load, and how many processes it is summed over."""
    pids = row.pids()
    row.add("rss_idle", rss_kib(pids) / 1024)
    row.add("processes", len(pids))
