"""A flow-controlled queue of codec events between a producer Protocol and one consumer task.

The producer (a Protocol's data_received) puts events; when more than `high` body bytes wait,
it pauses its transport's reading, and the consumer resumes it once they fall below `low`. So
a slow reader on one side slows the writer on the other without unbounded buffering.
The loop is given, not looked up: `asyncio.get_running_loop()` costs a getpid() system call
per call on CPython 3.11, and `get` runs once or twice per request."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gossamer.codec.http1 import Body


class ChannelClosed(Exception):
    """The producer went away before the message ended (peer reset or closed)."""


class EventChannel:
    """Events in order; `get()` waits for the next one and raises ChannelClosed after `fail`."""

    __slots__ = (
        "_buffered",
        "_error",
        "_events",
        "_high",
        "_loop",
        "_low",
        "_pause",
        "_paused",
        "_resume",
        "_waiter",
    )

    def __init__(
        self,
        pause: Callable[[], None],
        resume: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        high: int = 256 * 1024,
        low: int = 64 * 1024,
    ) -> None:
        self._events: deque[object] = deque()
        self._buffered = 0
        self._pause = pause
        self._resume = resume
        self._loop = loop
        self._high = high
        self._low = low
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    def put(self, event: object, size: int = 0) -> None:
        self._events.append(event)
        if size:
            self._buffered += size
            if self._buffered > self._high and not self._paused:
                self._paused = True
                self._pause()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        """No more events will come; `get` raises `error` once the queued ones are taken."""
        if self._error is None:
            self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ready(self) -> bool:
        return bool(self._events)

    def peek(self) -> list[object]:
        """The queued events, not taken."""
        return list(self._events)

    def get_nowait(self) -> object:
        event = self._events.popleft()
        self._taken(event)
        return event

    async def get(self) -> object:
        while not self._events:
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = self._events.popleft()
        self._taken(event)
        return event

    def _taken(self, event: object) -> None:
        if self._buffered:
            # Not getattr(event, "data", None): for events without `data` that builds an
            # AttributeError (message formatting included) once per response.
            if isinstance(event, Body):
                self._buffered -= len(event.data)
            elif isinstance(event, bytes):
                self._buffered -= len(event)
            if self._paused and self._buffered < self._low:
                self._paused = False
                self._resume()

    def release(self) -> None:
        """The consumer is done: drop what is queued and let the producer read again."""
        self._events.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._resume()
