"""FrozenHeap: config-lifetime objects leave the collector's walks; leaked cycles are bounded."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gossamer.proxy.supervisor_heap import YOUNG_THRESHOLD, FrozenHeap


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Node:
    """A cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


def test_tune_raises_only_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    FrozenHeap.tune()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


def test_a_full_collection_after_an_apply_no_longer_walks_the_config() -> None:
    config = [{"route": i, "headers": [b"x"] * 3} for i in range(50_000)]
    heap = FrozenHeap()
    assert len(gc.get_objects()) > len(config)  # what every full collection walks
    heap.config_applied()
    assert gc.get_freeze_count() > len(config)
    assert len(gc.get_objects()) < len(config) // 10


def test_the_first_apply_collects_garbage_cycles_before_freezing() -> None:
    node = _Node()
    gone = weakref.ref(node)
    del node
    heap = FrozenHeap()
    heap.config_applied()
    assert gone() is None
    assert heap.full_collections == 1


def test_cycles_leaked_into_the_frozen_set_are_freed_once_it_has_grown_enough() -> None:
    heap = FrozenHeap()
    heap.config_applied()
    node = _Node()
    gone = weakref.ref(node)
    heap.config_applied()  # frozen while alive (as an old config or a busy connection)
    del node
    gc.collect()
    assert gone() is not None  # frozen: the collector does not see it
    heap.config_applied()  # no growth: no stall
    assert heap.full_collections == 1
    grown = [[i] for i in range(gc.get_freeze_count() + 40_000)]
    heap.config_applied()
    assert heap.full_collections == 2
    assert gone() is None
    del grown
