"""One worker position of the supervisor's pool: its process, the socketpair link to it, and
what it has applied.

A worker is started through the parent-death launcher (never `preexec_fn` in a gRPC process),
so it dies with the supervisor. The slot learns that its worker died from EOF on the link, reaps
it by PID, and starts a new one after a backoff (100 ms doubling to 5 s, reset after 10 s of
uptime); the new worker gets the pool's latest config first thing (see worker.py for the
frames).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gossamer.proxy.admin_stats import Report
from gossamer.proxy.worker import LinkClosed, frame_bytes, read_frame
from gossamer.runtime.envoy import with_parent_death_signal
from gossamer.waits import set_within

if TYPE_CHECKING:
    from gossamer.proxy.supervisor_workers import WorkerPool

log = logging.getLogger("gossamer.proxy.workers")

_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
_STABLE_AFTER = 10.0
_STATS_TIMEOUT = 2.0
KILL_GRACE = 3.0  # after the drain timeout (or a closed link) before a worker is killed


class WorkerSlot:
    """One worker position: its current process, link and what it has applied."""

    def __init__(self, index: int, pool: WorkerPool) -> None:
        self.index = index
        self.pool = pool
        self.proc: subprocess.Popen[bytes] | None = None
        self.applied = 0
        self.identity_serial = ""  # what the running worker confirmed holding
        self.restarts = 0
        self.wake = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        pid = self.proc.pid if self.proc is not None else None
        return f"<WorkerSlot {self.index} pid={pid} applied={self.applied}>"

    def describe(self) -> dict[str, Any]:
        alive = self.proc is not None and self.proc.poll() is None
        return {
            "index": self.index,
            "pid": self.proc.pid if alive and self.proc is not None else None,
            "applied_generation": self.applied,
            "restarts": self.restarts,
        }

    async def run(self) -> None:
        backoff = _FIRST_BACKOFF
        while not self.pool.stopping.is_set():
            began = time.monotonic()
            code = await self._run_once()
            if self.pool.stopping.is_set():
                return
            if time.monotonic() - began > _STABLE_AFTER:
                backoff = _FIRST_BACKOFF
            log.warning("worker %d exited (%s); restarting in %.1fs", self.index, code, backoff)
            self.restarts += 1
            if await set_within(self.pool.stopping, backoff):
                return
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _run_once(self) -> int | None:
        """Start a worker, serve its link until EOF, reap it; its exit code."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "gossamer.proxy.worker", "--fd", str(child.fileno())]
        argv += ["--options", json.dumps(self.pool.options)]
        try:
            # Started from the event loop's (main) thread on purpose: PDEATHSIG is tied to the
            # forking thread, and Popen without preexec_fn returns in a few milliseconds.
            proc = subprocess.Popen(  # noqa: ASYNC220
                with_parent_death_signal(argv), pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL
            )
        except OSError:
            parent.close()
            raise
        finally:
            child.close()
        self.proc, self.applied, self.identity_serial = proc, 0, ""
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        self._writer = writer
        sender = asyncio.create_task(self._send_configs())
        try:
            while True:
                self._handle(await read_frame(reader))
        except (LinkClosed, ConnectionError):
            pass
        finally:
            self._writer = None
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(LinkClosed("worker exited"))
            self._pending.clear()
            writer.close()
        return await self._reap(proc)

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "hello":
            log.info("worker %d started: pid %s", self.index, message.get("pid"))
        elif op == "applied":
            self.applied = int(message["generation"])
            log.info("worker %d applied generation %d", self.index, self.applied)
        elif op == "failed":
            log.error("worker %d failed generation %s: %s", self.index,
                      message.get("generation"), message.get("error"))  # fmt: skip
        elif op == "identity_applied":
            self.identity_serial = str(message.get("serial", ""))
        elif op == "identity_failed":
            log.error("worker %d refused the identity: %s", self.index, message.get("error"))
        elif op == "stats":
            future = self._pending.pop(int(message.get("id") or 0), None)
            if future is not None and not future.done():
                future.set_result(message)
        elif op == "drained":
            log.info("worker %d drained", self.index)
        else:
            raise RuntimeError(f"worker {self.index}: unknown message {op!r}")

    async def _send_configs(self) -> None:
        sent, identity_sent = 0, ""
        while True:
            self.wake.clear()
            pool = self.pool
            if pool.identity_frame is not None and identity_sent != pool.identity_serial:
                identity_sent = pool.identity_serial
                await self._write(pool.identity_frame)
            generation, frame = pool.latest_frame()
            if frame is not None and generation != sent:
                await self._write(frame)
                sent = generation
            await self.wake.wait()

    async def _write(self, frame: bytes) -> bool:
        writer = self._writer
        if writer is None:
            return False
        async with self._write_lock:
            try:
                writer.write(frame)
                await writer.drain()
            except ConnectionError:
                return False
        return True

    async def send(self, message: Mapping[str, Any]) -> bool:
        return await self._write(frame_bytes(message))

    async def stats(self) -> Report | None:
        """The worker's stats (admin_stats.report_of), None if it is not running or does not
        answer in time."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            if not await self.send({"op": "stats", "id": ident}):
                return None
            async with asyncio.timeout(_STATS_TIMEOUT):
                reply = await future
        except (TimeoutError, LinkClosed):
            return None
        finally:
            self._pending.pop(ident, None)
        return reply

    async def _reap(self, proc: subprocess.Popen[bytes]) -> int | None:
        try:
            return await asyncio.to_thread(proc.wait, KILL_GRACE)
        except subprocess.TimeoutExpired:
            log.warning("worker %d (pid %d) closed its link but did not exit; killing it",
                        self.index, proc.pid)  # fmt: skip
            proc.kill()
            return await asyncio.to_thread(proc.wait)

    def kill(self) -> None:
        """SIGKILL this slot's worker (by its PID) if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
