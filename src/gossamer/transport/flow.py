"""Write-side back-pressure shared by the sidecar's downstream and upstream Protocols.

The transport calls `pause_writing` when its buffer passes the high-water mark and
`resume_writing` below the low one; a writer relaying a body awaits `drain()` (or takes
`writable()`) so a slow reader slows the sender instead of filling memory.
"""

from __future__ import annotations

import asyncio


class WriteFlow:
    """Mixin for an asyncio.Protocol with `loop` and `closed` attributes."""

    __slots__ = ("_drain", "_write_paused")

    loop: asyncio.AbstractEventLoop
    closed: bool

    def _init_flow(self) -> None:
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        """Wake whoever waits in `drain` (writes resumed, or the connection is going away)."""
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def drain(self) -> None:
        """Wait while the kernel send buffer is full."""
        writable = self.writable()
        if writable is not None:
            await writable

    def writable(self) -> asyncio.Future[None] | None:
        """None when writes go through now, else a future done once they do again."""
        if not self._write_paused or self.closed:
            return None
        if self._drain is None:
            self._drain = self.loop.create_future()
        return self._drain
