"""Open-loop HTTP/1.1 load at a fixed rate; prints latency percentiles as one JSON line.

Run by http_proxies.py as a child pinned to CPU 0: `http_load.py --port P --host H --rate 1000
--seconds 5`. It opens `--conns` keep-alive connections, warms them, prints {"ready": true},
waits for a line on stdin, then runs the schedule and prints the result.

Method: a 0.5 ms timer tick sends every request that has fallen due since the previous tick
(request i is due at t0 + i/rate), each on an idle connection; a request never waits for a
response to another one unless all connections are busy (then it queues and its wait counts).
Latency runs from the tick that found the request due to the last byte of its response, so the
timer's own lateness is left out but any queueing behind a slow proxy is included. The run is
bounded: rate x seconds requests, then at most 5 s to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
from typing import Any, cast

from gossamer.waits import bounded

TICK = 0.0005
DRAIN = 5.0


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time (Content-Length responses)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.need = -1  # bytes still expected for the current response body; -1: in the head
        self.status = 0
        self.due = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].split(b"\r\n")
                self.buffer = self.buffer[end + 4 :]
                self.status = int(head[0].split(b" ", 2)[1])
                self.need = 0
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        self.need = int(value)
            if len(self.buffer) < self.need:
                return
            self.buffer = self.buffer[self.need :]
            self.need = -1
            self.run.done(self, self.status)
            if not self.buffer:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.run.lost(self)


class Run:
    def __init__(self, host: str, rate: float) -> None:
        head = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gossamer-bench\r\n\r\n"
        self.request = head.encode()
        self.rate = rate
        self.idle: collections.deque[Connection] = collections.deque()
        self.queued: collections.deque[float] = collections.deque()
        self.latencies: list[float] = []
        self.recording = False
        self.errors = 0
        self.in_flight = 0
        self.finished = asyncio.Event()

    def dispatch(self, due: float) -> None:
        self.in_flight += 1
        if self.idle:
            self.idle.popleft().send(due)
        else:
            self.queued.append(due)

    def done(self, conn: Connection, status: int) -> None:
        now = time.perf_counter()
        if self.recording:
            if status == 200:
                self.latencies.append(now - conn.due)
            else:
                self.errors += 1
        self.in_flight -= 1
        if self.queued:
            conn.send(self.queued.popleft())
        else:
            self.idle.append(conn)
        if self.in_flight == 0:
            self.finished.set()

    def lost(self, conn: Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        elif not self.finished.is_set():
            self.errors += 1
            self.in_flight -= 1


async def schedule(run: Run, seconds: float) -> int:
    """Dispatch rate x seconds requests on the open-loop schedule; returns how many."""
    total = int(run.rate * seconds)
    sent = 0
    start = time.perf_counter()
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * run.rate) + 1)
        while sent < due:
            run.dispatch(now)
            sent += 1
        await asyncio.sleep(TICK)
    return sent


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = Run(args.host, args.rate)
    for _ in range(args.conns):
        _, conn = await loop.create_connection(lambda: Connection(run), "127.0.0.1", args.port)
        run.idle.append(conn)
    if args.warmup > 0:
        await schedule(run, args.warmup)
        if run.in_flight:
            run.finished.clear()
            await bounded(run.finished.wait(), DRAIN)
    print(json.dumps({"ready": True}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    run.recording = True
    began = time.perf_counter()
    sent = await schedule(run, args.seconds)
    if run.in_flight:  # `finished` may have been set mid-run, whenever nothing was in flight
        run.finished.clear()
        try:
            await bounded(run.finished.wait(), DRAIN)
        except TimeoutError:
            run.errors += run.in_flight
    elapsed = time.perf_counter() - began
    lat = sorted(run.latencies)
    n = len(lat)

    def pct(q: float) -> float:
        return lat[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {
        "sent": sent,
        "ok": n,
        "errors": run.errors,
        "seconds": elapsed,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--conns", type=int, default=16)
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(main_async(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
