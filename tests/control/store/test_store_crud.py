"""Store CRUD, revisions, atomic commits, optimistic concurrency, no-op puts and generation."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gossamer.control.store import (
    Conflict,
    NotFound,
    SqliteStore,
    StoreError,
    Write,
    open_store,
)
from gossamer.spec.base import ResourceKey

Doc = Callable[..., Write]  # the `vs` fixture: builds a put of a VirtualService
SERVICE = ResourceKey("", "Service", "default", "reviews")


async def test_empty_store_is_at_revision_zero(store: SqliteStore) -> None:
    assert await store.revision() == 0
    assert await store.list() == (0, [])
    with pytest.raises(NotFound, match="VirtualService default/reviews not found"):
        await store.get(ResourceKey("networking.istio.io", "VirtualService", "default", "reviews"))


async def test_create_fills_in_metadata(store: SqliteStore, vs: Doc) -> None:
    write = vs("reviews")
    revision, changes = await store.commit([write])
    assert revision == 1
    [change] = changes
    assert (change.op, change.key, change.revision) == ("put", write.key, 1)
    stored = await store.get(write.key)
    assert stored == change.object
    assert (stored.create_revision, stored.mod_revision) == (1, 1)
    metadata = stored.manifest["metadata"]
    assert metadata["resourceVersion"] == "1"
    assert metadata["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", metadata["creationTimestamp"])
    assert stored.manifest["spec"] == write.manifest["spec"]  # type: ignore[index]
    assert "resourceVersion" not in write.manifest["metadata"]  # type: ignore[index]


async def test_update_and_delete_move_the_revision(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("reviews")])
    created = await store.get(vs("reviews").key)
    await store.commit([vs("other")])
    revision, [change] = await store.commit([vs("reviews", hosts=("reviews", "r2"))])
    assert revision == 3
    updated = await store.get(change.key)
    assert (updated.create_revision, updated.mod_revision) == (1, 3)
    assert (
        updated.manifest["metadata"]["creationTimestamp"]
        == (created.manifest["metadata"]["creationTimestamp"])
    )
    revision, [deleted] = await store.commit([Write.delete(change.key)])
    assert (revision, deleted.op, deleted.revision) == (4, "delete", 4)
    assert deleted.object == updated  # a delete carries the object as it was
    with pytest.raises(NotFound):
        await store.get(change.key)
    # Recreating starts a new life: new create_revision, generation 1.
    revision, [again] = await store.commit([vs("reviews")])
    assert (again.object.create_revision, again.object.generation) == (5, 1)


async def test_list_filters_and_sorts(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("b"), vs("a"), vs("c", namespace="prod")])
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews"}, "spec": {}}
    await store.commit([Write.put(SERVICE, service)])
    revision, everything = await store.list()
    assert revision == 2
    assert [o.key.name for o in everything] == ["reviews", "a", "b", "c"]  # sorted by key
    _, istio = await store.list(group="networking.istio.io", namespace="default")
    assert [o.key.name for o in istio] == ["a", "b"]
    _, services = await store.list(kind="Service")
    assert [o.key for o in services] == [SERVICE]
    assert await store.list(namespace="nowhere") == (2, [])


async def test_multi_write_is_atomic(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("exists")])
    before = await store.list()
    with pytest.raises(Conflict, match="already exists"):
        await store.commit([vs("new-1"), vs("exists", expected=0), vs("new-2")])
    assert await store.list() == before
    assert await store.revision() == 1
    revision, changes = await store.commit([vs("new-1"), vs("new-2"), vs("new-3")])
    assert revision == 2
    assert [c.revision for c in changes] == [2, 2, 2]


async def test_stale_resource_version_is_refused(store: SqliteStore, vs: Doc) -> None:
    _, [created] = await store.commit([vs("reviews")])
    await store.commit([vs("reviews", hosts=("changed",), expected=created.revision)])
    with pytest.raises(Conflict) as refused:
        await store.commit([vs("reviews", hosts=("mine",), expected=created.revision)])
    assert str(refused.value) == (
        "VirtualService default/reviews was modified (resourceVersion 2, you sent 1): "
        "re-read and retry"
    )
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    with pytest.raises(Conflict):
        await store.commit([Write.delete(created.key, expected_revision=1)])
    assert (await store.get(created.key)).manifest["spec"]["hosts"] == ["changed"]
    await store.commit([Write.delete(created.key, expected_revision=2)])
    assert await store.list() == (3, [])


async def test_create_only_and_missing_objects(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("reviews", expected=0)])
    with pytest.raises(Conflict) as refused:
        await store.commit([vs("reviews", expected=0)])
    assert refused.value.actual == 1
    with pytest.raises(NotFound):
        await store.commit([vs("ghost", expected=3)])
    with pytest.raises(NotFound):
        await store.commit([Write.delete(vs("ghost").key)])
    assert await store.revision() == 1


async def test_identical_reapply_is_a_no_op(store: SqliteStore, vs: Doc) -> None:
    _, [created] = await store.commit([vs("reviews"), vs("other")][:1])
    # Re-applying what `get` returned (store metadata included) is a no-op too.
    for write in (vs("reviews"), Write.put(created.key, created.object.manifest)):
        assert await store.commit([write]) == (1, [])
    revision, changes = await store.commit([vs("reviews"), vs("other")])
    assert (revision, [c.key.name for c in changes]) == (2, ["other"])
    assert (await store.get(created.key)).mod_revision == 1
    assert await store.commit([]) == (2, [])


async def test_generation_bumps_only_when_spec_changes(store: SqliteStore, vs: Doc) -> None:
    await store.commit([vs("reviews")])
    _, [relabelled] = await store.commit([vs("reviews", labels={"team": "a"})])
    assert (relabelled.object.generation, relabelled.object.mod_revision) == (1, 2)
    _, [respec] = await store.commit([vs("reviews", labels={"team": "a"}, hosts=("x",))])
    assert respec.object.generation == 2
    # Whatever generation the caller sends is the store's to decide.
    write = vs("reviews", labels={"team": "b"}, hosts=("x",))
    write.manifest["metadata"]["generation"] = 99  # type: ignore[index]
    _, [change] = await store.commit([write])
    assert change.object.generation == 2


async def test_malformed_commits_are_refused(store: SqliteStore, vs: Doc) -> None:
    with pytest.raises(ValueError, match="written twice"):
        await store.commit([vs("reviews"), vs("reviews")])
    wrong_name = Write(vs("reviews").key, vs("other").manifest)
    with pytest.raises(ValueError, match=r"metadata\.name"):
        await store.commit([wrong_name])
    not_json = vs("reviews")
    not_json.manifest["spec"]["when"] = object()  # type: ignore[index]
    with pytest.raises(ValueError, match="not plain JSON"):
        await store.commit([not_json])
    assert await store.revision() == 0


async def test_objects_survive_reopen(tmp_path: Path, vs: Doc) -> None:
    store = SqliteStore.open(tmp_path / "store.db")
    await store.commit([vs("a"), vs("b")])
    await store.commit([Write.delete(vs("a").key)])
    _, expected = await store.list()
    await store.close()
    async with SqliteStore.open(tmp_path / "store.db") as reopened:
        assert await reopened.list() == (2, expected)


async def test_closed_store_refuses_calls(tmp_path: Path, vs: Doc) -> None:
    store = SqliteStore.open(tmp_path / "store.db")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.commit([vs("a")])
    with pytest.raises(StoreError, match="closed"):
        store.watch(0)


async def test_open_store_urls(tmp_path: Path) -> None:
    for url in (f"sqlite://{tmp_path}/a.db", str(tmp_path / "b.db"), str(tmp_path)):
        store = open_store(url)
        assert await store.revision() == 0
        await store.close()
    assert _databases(tmp_path) == ["a.db", "b.db", "store.db"]
    with pytest.raises(StoreError, match="multi-node"):
        open_store("etcd://127.0.0.1:2379")
    with pytest.raises(StoreError, match="three slashes"):
        open_store("sqlite://relative.db")
    with pytest.raises(StoreError, match="unknown scheme"):
        open_store("redis://x")


async def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a usable Gossamer store"):
        SqliteStore.open(path)
    path.unlink()
    async with SqliteStore.open(path) as store:  # the lock was released by the failed open
        assert await store.revision() == 0


def _databases(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.db"))
