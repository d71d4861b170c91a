"""Fan-out of committed batches to watchers: history replay, then live batches, never blocking.

Theory of operation:
1. The backend calls `Feed.publish(revision, changes)` right after each commit is durable, on
   the event loop; publishing only appends to each watcher's buffer and wakes it, so a slow or
   stuck watcher never delays a commit or the loop.
2. A `Watch` is registered when it is created, before it reads anything, and then replays
   history from the backend (`replay(after)`), so no commit can fall between the replay and the
   live batches; batches at or below the last revision it delivered are skipped, so none is
   delivered twice.
3. Buffers are bounded: when a watcher's buffer overflows, the buffer is dropped and the watcher
   replays from the backend's history instead (raising `Compacted` if even that is gone), so
   memory stays bounded whatever the consumer does.
4. Closing the feed ends every watch after it has delivered the batches already buffered.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable

from gossamer.control.store.base import Change, StoreError

Batch = tuple[int, list[Change]]
Replay = Callable[[int], list[Batch]]
"""Reads the stored history after a revision, one batch per commit; raises `Compacted`."""


class Feed:
    """The live watchers of one store. Used from the store's event loop only."""

    def __init__(self, replay: Replay, buffer: int = 1024) -> None:
        if buffer < 1:
            raise ValueError("a watch buffer holds at least one batch")
        self._replay = replay
        self._buffer = buffer
        # Weak, so a watch abandoned without aclose() stops being fed once it is collected.
        self._watches: weakref.WeakSet[Watch] = weakref.WeakSet()
        self.closed = False

    def watch(self, after_revision: int) -> Watch:
        if after_revision < 0:
            raise ValueError("after_revision must be 0 or positive")
        watch = Watch(self, after_revision)
        if self.closed:
            watch._end()
        else:
            self._watches.add(watch)
        return watch

    def publish(self, revision: int, changes: list[Change]) -> None:
        """Hand one committed batch to every watcher; never blocks, never raises."""
        for watch in list(self._watches):
            watch._offer(revision, changes)

    def close(self) -> None:
        """End every watch (each delivers what it has buffered first); idempotent."""
        self.closed = True
        for watch in list(self._watches):
            watch._end()
        self._watches.clear()

    def _discard(self, watch: Watch) -> None:
        self._watches.discard(watch)

    def __len__(self) -> int:
        return len(self._watches)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Feed {state} watches={len(self)} buffer={self._buffer}>"


class Watch:
    """One watcher's async iterator of batches; made by `Feed.watch`, stopped by `aclose()`.

    Iterating raises `Compacted` when the history it needs is gone (and the watch then ends);
    it ends cleanly when the feed closes. A watch that had overflowed its buffer when the feed
    closed ends without the batches it missed: `revision` says where to resume.
    """

    def __init__(self, feed: Feed, after_revision: int) -> None:
        self._feed = feed
        self._last = after_revision
        self._pending: deque[Batch] = deque()
        self._replay_needed = True
        self._ended = False
        self._wake = asyncio.Event()

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> list[Change]:
        while True:
            if self._replay_needed and not self._ended:
                self._replay_needed = False
                try:
                    # Everything buffered so far is in the replay too: both come from commits
                    # that finished before this synchronous read.
                    self._pending = deque(self._feed._replay(self._last))
                except StoreError:  # Compacted, or the storage failed: this watch is over
                    self._stop()
                    raise
            if self._pending:
                revision, changes = self._pending.popleft()
                if revision <= self._last:
                    continue
                self._last = revision
                return changes
            if self._ended:
                self._stop()
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    async def aclose(self) -> None:
        """Stop watching; the iterator then ends. Idempotent."""
        self._stop()

    @property
    def revision(self) -> int:
        """The revision of the last batch delivered (or the one the watch started after)."""
        return self._last

    def _offer(self, revision: int, changes: list[Change]) -> None:
        if self._ended:
            return
        if len(self._pending) >= self._buffer_size:
            self._pending.clear()
            self._replay_needed = True
        else:
            self._pending.append((revision, changes))
        self._wake.set()

    @property
    def _buffer_size(self) -> int:
        return self._feed._buffer

    def _end(self) -> None:
        self._ended = True
        self._wake.set()

    def _stop(self) -> None:
        self._pending.clear()
        self._end()
        self._feed._discard(self)

    def __repr__(self) -> str:
        state = "ended" if self._ended else "live"
        return f"<Watch after={self._last} pending={len(self._pending)} {state}>"
