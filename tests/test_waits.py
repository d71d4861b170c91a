"""gossamer.waits: deadlines that never lose a cancellation (Python 3.11's wait_for does when
the result and the cancel arrive in the same loop iteration, and a stopped task goes on)."""

from __future__ import annotations

import asyncio

import pytest

from gossamer.waits import bounded, set_within

ROUNDS = 50


async def test_bounded_returns_the_result_or_times_out() -> None:
    assert await bounded(asyncio.sleep(0, "done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await bounded(asyncio.sleep(5), 0.05)


async def test_a_cancel_racing_the_result_still_cancels() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(ROUNDS):
        answer: asyncio.Future[str] = loop.create_future()
        waiting = asyncio.create_task(bounded(answer, 5))
        await asyncio.sleep(0)  # the task now waits on `answer`
        answer.set_result("late")  # the result arrives ...
        waiting.cancel()  # ... and the stop, in the same iteration
        with pytest.raises(asyncio.CancelledError):
            await waiting


async def test_set_within_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await set_within(event, 0.05) is False
    event.set()
    assert await set_within(event, 5) is True


async def test_a_stop_racing_the_event_still_cancels_the_sleeper() -> None:
    """A restart loop sleeping on its stop event must end when cancelled as the event fires."""
    for _ in range(ROUNDS):
        stopping = asyncio.Event()
        sleeper = asyncio.create_task(set_within(stopping, 5))
        await asyncio.sleep(0)
        stopping.set()
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
