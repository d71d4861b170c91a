"""Store watches: history replay, live batches, overflow, compaction, and ending on close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gossamer.control.store import Change, Compacted, SqliteStore, Watch, Write
from gossamer.waits import bounded

Doc = Callable[..., Write]  # the `vs` fixture: builds a put of a VirtualService


def summary(batch: list[Change]) -> list[tuple[int, str, str]]:
    return [(c.revision, c.op, c.key.name) for c in batch]


async def test_history_replays_one_batch_per_commit(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("a")])
    await store.commit([vs("b"), vs("c")])
    await store.commit([vs("b", hosts=("x",))])
    await store.commit([Write.delete(vs("a").key)])
    watch = store.watch(1)
    assert summary(await anext(watch)) == [(2, "put", "b"), (2, "put", "c")]
    assert summary(await anext(watch)) == [(3, "put", "b")]
    [deleted] = await anext(watch)
    assert (deleted.op, deleted.object.mod_revision, deleted.revision) == ("delete", 1, 4)
    assert deleted.object.manifest["metadata"]["resourceVersion"] == "1"
    await watch.aclose()


async def test_live_batches_follow_the_replay(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("a")])
    watch = store.watch(0)
    assert summary(await anext(watch)) == [(1, "put", "a")]
    waiting = asyncio.create_task(anext(watch))
    await asyncio.sleep(0)  # one turn of the loop: the task is now parked on the feed
    assert not waiting.done()
    _, changes = await store.commit([vs("b"), vs("c")])
    assert await bounded(waiting, 5) == changes
    await store.commit([vs("b")])  # a no-op commit produces no batch
    await store.commit([Write.delete(vs("c").key)])
    assert summary(await anext(watch)) == [(3, "delete", "c")]
    assert watch.revision == 3
    await watch.aclose()


async def test_a_list_then_watch_misses_and_repeats_nothing(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("a")])
    revision, _ = await store.list()
    watch = store.watch(revision)
    await store.commit([vs("b")])
    assert summary(await anext(watch)) == [(2, "put", "b")]
    await watch.aclose()


async def test_a_slow_watcher_rereads_history(tmp_path: Path, vs: Doc) -> None:
    async with SqliteStore.open(tmp_path / "store.db", watch_buffer=2) as store:
        watch = store.watch(0)
        for name in "abcdef":  # six commits overflow the two-batch buffer
            await store.commit([vs(name)])
        seen = [summary(await anext(watch)) for _ in range(6)]
        assert seen == [[(i + 1, "put", name)] for i, name in enumerate("abcdef")]
        await store.commit([vs("g")])
        assert summary(await anext(watch)) == [(7, "put", "g")]


async def test_trimmed_history_raises_compacted(tmp_path: Path, vs: Doc) -> None:
    async with SqliteStore.open(tmp_path / "store.db", history=3) as store:
        for index in range(10):
            await store.commit([vs(f"vs-{index}")])
        with pytest.raises(Compacted, match="list again") as gone:
            await anext(store.watch(0))
        compacted = gone.value.compacted
        assert 0 < compacted <= 10 - 3
        replayed = [summary(b) async for b in _until(store.watch(compacted), 10)]
        assert [b[0][0] for b in replayed] == list(range(compacted + 1, 11))


async def test_a_watcher_whose_history_is_trimmed_gets_compacted(tmp_path: Path, vs: Doc) -> None:
    async with SqliteStore.open(tmp_path / "store.db", history=2, watch_buffer=1) as store:
        watch = store.watch(0)
        for index in range(8):
            await store.commit([vs(f"vs-{index}")])
        with pytest.raises(Compacted):
            await anext(watch)
        with pytest.raises(StopAsyncIteration):
            await anext(watch)


async def test_watches_end_when_the_store_closes(tmp_path: Path, vs: Doc) -> None:
    store = SqliteStore.open(tmp_path / "store.db")
    await store.commit([vs("a")])

    async def collect() -> list[list[Change]]:
        return [batch async for batch in store.watch(0)]

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)  # let it replay and park
    await store.commit([vs("b")])
    await store.close()
    batches = await bounded(collector, 5)
    assert [summary(b) for b in batches] == [[(1, "put", "a")], [(2, "put", "b")]]


async def test_aclose_detaches_the_watch(store: SqliteStore, vs: Doc) -> None:
    watch = store.watch(0)
    other = store.watch(0)
    assert "watches=2" in repr(store)
    await watch.aclose()
    assert "watches=1" in repr(store)
    with pytest.raises(StopAsyncIteration):
        await anext(watch)
    await store.commit([vs("a")])
    assert summary(await anext(other)) == [(1, "put", "a")]
    with pytest.raises(ValueError):
        store.watch(-1)


async def _until(watch: Watch, revision: int) -> AsyncIterator[list[Change]]:
    """The batches of `watch` up to and including `revision`; then the watch is closed."""
    try:
        async for batch in watch:
            yield batch
            if batch[0].revision >= revision:
                return
    finally:
        await watch.aclose()
