"""Waiting with a deadline without losing a cancellation.

On Python 3.11, `asyncio.wait_for` returns the inner result when the waiting task is cancelled in
the same loop iteration as the inner awaitable completes: the cancellation is lost, and a task
told to stop goes on (python/cpython#86296, fixed in 3.12). A stop, a drain or a test teardown
that awaits such a task then waits forever. `asyncio.timeout` has no such race, so the code uses
it (ruff bans `asyncio.wait_for`); this module holds the shapes that recur.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def set_within(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`; whether it was set (a sleep that a stop cuts short)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """`asyncio.wait_for` without its lost-cancellation race: the result of `awaitable`, or
    TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        return await awaitable
