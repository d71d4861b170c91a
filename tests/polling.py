"""Waiting in async tests for a condition something else reaches (a push, a renewal, a task)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    condition: Callable[[], bool], within: float = 10.0, what: str = "the condition"
) -> None:
    """Poll `condition` every 10 ms; AssertionError naming `what` once `within` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.01)
