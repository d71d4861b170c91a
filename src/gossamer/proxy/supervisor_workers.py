"""The supervisor's worker processes as a pool: the latest config (and identity) serialized once
for every worker, pushes, readiness across workers, merged stats, drain.

Each `WorkerSlot` (supervisor_worker_slot.py) owns one worker process at a time, restarts it
after a backoff, and hands a new worker the latest config first thing. During a drain nothing
is restarted; a worker still alive after the drain timeout (+3 s grace) is killed by its PID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from gossamer.proxy.admin_stats import Report
from gossamer.proxy.supervisor_worker_slot import KILL_GRACE, WorkerSlot
from gossamer.proxy.worker import config_message, frame_bytes, identity_message, identity_version


class WorkerPool:
    """`count` worker slots sharing the latest config; `run()` until `stopping` and drained."""

    def __init__(self, count: int, options: Mapping[str, Any], stopping: asyncio.Event) -> None:
        self.options = dict(options)
        self.stopping = stopping
        self.slots = [WorkerSlot(i, self) for i in range(count)]
        self.generation = 0
        self._config: Any = None
        self._frame: bytes | None = None
        self.identity_serial = ""  # of the latest identity pushed ("" = none yet)
        self.identity_frame: bytes | None = None
        # (type URL, name) → (proto, its bytes): the proto is kept so its id is not reused.
        self._bytes: dict[tuple[str, str], tuple[Any, bytes]] = {}
        self._bytes_next: dict[tuple[str, str], tuple[Any, bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        self._tasks = [asyncio.create_task(slot.run()) for slot in self.slots]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for slot in self.slots:
                slot.kill()

    def push(self, generation: int, config: Any) -> None:
        """A newly accepted ProxyConfig; every worker gets it (or a later one) soon."""
        self.generation, self._config, self._frame = generation, config, None
        for slot in self.slots:
            slot.wake.set()

    def push_identity(self, material: Any) -> None:
        """A new workload certificate; every worker (and every restarted one) gets it before
        its next config."""
        self.identity_serial = identity_version(material)
        self.identity_frame = frame_bytes(identity_message(material))
        for slot in self.slots:
            slot.wake.set()

    def identity_everywhere(self) -> bool:
        """Every worker holds the latest identity pushed."""
        return all(slot.identity_serial == self.identity_serial for slot in self.slots)

    def latest_frame(self) -> tuple[int, bytes | None]:
        """(generation, `config` frame) of the latest config, serialized once per generation."""
        if self._config is None:
            return 0, None
        if self._frame is None:
            raw = {
                type_url: [
                    (name, self._serialized(type_url, name, pb)) for name, pb in protos.items()
                ]
                for type_url, protos in self._config.resources.items()
            }
            self._bytes = self._bytes_next
            self._bytes_next = {}
            message = config_message(self.generation, self._config.versions, raw)
            self._frame = frame_bytes(message)
        return self.generation, self._frame

    def _serialized(self, type_url: str, name: str, pb: Any) -> bytes:
        """Bytes of a resource, reused while the config keeps the very same proto object (RDS
        and EDS pushes keep the protos of the names they do not carry). Deterministic, so the
        worker's builder sees unchanged bytes and keeps the compiled value."""
        key = (type_url, name)
        cached = self._bytes.get(key)
        data = cached[1] if cached is not None and cached[0] is pb else None
        if data is None:
            data = pb.SerializeToString(deterministic=True)
        self._bytes_next[key] = (pb, data)
        return data

    def all_applied(self, generation: int) -> bool:
        """Every worker runs `generation` or later (a restarted one starts from 0)."""
        return all(slot.applied >= generation for slot in self.slots)

    def describe(self) -> list[dict[str, Any]]:
        return [slot.describe() for slot in self.slots]

    async def stats(self) -> list[Report]:
        replies = await asyncio.gather(*(slot.stats() for slot in self.slots))
        return [r for r in replies if r is not None]

    async def drain(self, grace: float) -> None:
        """Ask every worker to drain; wait until they exit (kill any that outlive the grace)."""
        await asyncio.gather(*(slot.send({"op": "drain", "timeout": grace}) for slot in self.slots))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace + KILL_GRACE)
        for slot in self.slots:
            slot.kill()
