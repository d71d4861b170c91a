"""Keep Python's cyclic garbage collector from stalling the event loop.

Measured (bench, `--concurrency 1`, 1000 rps): a full (generation 2) collection walked ~86k
objects (imports, grpc, protobuf resources, compiled config) and stopped the loop for ~30 ms
every few hundred thousand requests: the p99 outliers. Almost all of those objects live as long
as a config does, so after each apply they are moved to the permanent generation
(`gc.freeze()`): later collections walk only what requests allocate. The young generation's
threshold is raised too: a request allocates a few dozen containers, and at CPython's default
(700) a collection ran every ~20 requests for nothing (request objects die by refcount).

Frozen objects are never collected, so garbage *cycles* among them (an old config or a closed
connection that was frozen while alive) would leak. The frozen count is watched: when it has
grown by half since the last full collection, the heap is unfrozen, collected once and frozen
again (a single stall at a config push, not under steady traffic).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
_GROWTH = 1.5  # frozen objects may grow to this multiple of the last clean count
_SLACK = 20_000  # ... plus this many (small heaps grow a lot in relative terms)


class FrozenHeap:
    """Owned by a process that applies configs (supervisor or worker); one per process."""

    def __init__(self) -> None:
        self._clean_count = -1  # frozen objects right after the last full collection
        self.full_collections = 0  # full re-collections done (tests read it)

    @staticmethod
    def tune() -> None:
        """At process start: fewer young collections (see the module docstring)."""
        _, middle, old = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)

    def config_applied(self) -> None:
        """After a config is applied: freeze what is alive now; collect fully first when this
        is the first apply or the frozen set has grown enough to hold leaked cycles."""
        gc.freeze()
        frozen = gc.get_freeze_count()
        if self._clean_count < 0 or frozen > self._clean_count * _GROWTH + _SLACK:
            gc.unfreeze()
            gc.collect()
            self.full_collections += 1
            gc.freeze()
            self._clean_count = gc.get_freeze_count()
