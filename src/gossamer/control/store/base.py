"""The config store's interface, modelled on etcd so that an etcd backend maps onto it 1:1.

Theory of operation:
1. The store holds one JSON manifest per `ResourceKey` and a single global revision, an integer
   that starts at 0 (empty store) and grows by one with every commit that changes something.
2. A commit is one atomic transaction of `Write`s: every write is checked against its
   precondition (`expected_revision`) and either all of them are applied, at the same new
   revision, or none is. Changes carry that revision, as etcd's do.
3. An object's `mod_revision` is the revision of the commit that last changed it, and is also its
   Kubernetes `metadata.resourceVersion`; `create_revision` is the revision that created it.
4. Watchers see every commit as one batch, in revision order, from any revision the store still
   has history for; older history is compacted away and asking for it raises `Compacted`.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gossamer.spec.base import ResourceKey


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object as stored: its manifest with the store's metadata filled in.

    `manifest` is the document as applied, with `metadata.resourceVersion` (str(mod_revision)),
    `metadata.creationTimestamp` (RFC 3339 UTC, kept from creation) and `metadata.generation`
    (1 on create, +1 whenever `spec` changes) written by the store. Objects handed out by a store
    may be shared (for example between watchers): treat the manifest as read-only.
    """

    key: ResourceKey
    manifest: dict[str, Any]
    create_revision: int
    mod_revision: int

    @property
    def resource_version(self) -> str:
        return str(self.mod_revision)

    @property
    def generation(self) -> int:
        return int(self.manifest["metadata"]["generation"])


@dataclass(frozen=True, slots=True)
class Write:
    """One write of a commit: put `manifest` at `key`, or delete `key` when `manifest` is None.

    `expected_revision` is the precondition: None = unconditional (put creates or replaces;
    delete needs the object to exist); 0 = the object must not exist yet (create only);
    n > 0 = the object must currently be at mod_revision n (update or delete what you read).
    """

    key: ResourceKey
    manifest: dict[str, Any] | None
    expected_revision: int | None = None

    @classmethod
    def put(
        cls, key: ResourceKey, manifest: dict[str, Any], expected_revision: int | None = None
    ) -> Write:
        return cls(key, manifest, expected_revision)

    @classmethod
    def create(cls, key: ResourceKey, manifest: dict[str, Any]) -> Write:
        return cls(key, manifest, 0)

    @classmethod
    def delete(cls, key: ResourceKey, expected_revision: int | None = None) -> Write:
        return cls(key, None, expected_revision)


@dataclass(frozen=True, slots=True)
class Change:
    """What one write of a commit did; `object` is the new object, or for a delete the old one."""

    op: Literal["put", "delete"]
    key: ResourceKey
    object: StoredObject
    revision: int


class StoreError(Exception):
    """Base of every error a store raises on purpose (bad state, refused write, I/O failure)."""


class Conflict(StoreError):
    """A write's `expected_revision` did not hold: the object exists, or was changed meanwhile.

    `actual` is the object's current mod_revision. Maps to HTTP 409.
    """

    def __init__(self, key: ResourceKey, expected: int, actual: int) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        if expected == 0:
            message = f"{key} already exists (resourceVersion {actual})"
        else:
            message = (
                f"{key} was modified (resourceVersion {actual}, you sent {expected}): "
                "re-read and retry"
            )
        super().__init__(message)


class NotFound(StoreError):
    """The object does not exist (get, delete, or update with a resourceVersion). Maps to 404."""

    def __init__(self, key: ResourceKey, expected: int | None = None) -> None:
        self.key = key
        self.expected = expected
        sent = f" (you sent resourceVersion {expected}; it was deleted)" if expected else ""
        super().__init__(f"{key} not found{sent}")


class Compacted(StoreError):
    """A watch asked for history that the store no longer keeps: list again, then watch."""

    def __init__(self, requested: int, compacted: int) -> None:
        self.requested = requested
        self.compacted = compacted
        super().__init__(
            f"history after revision {requested} is no longer kept (compacted up to revision "
            f"{compacted}): list again and watch from the list's revision"
        )


class StoreLocked(StoreError):
    """Another control plane holds this store; `pid` is its process id when known."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"store {path} is in use by {holder}: another control plane runs on this "
            "GOSSAMER_HOME; stop it, or use a different GOSSAMER_HOME"
        )


class Store(Protocol):
    """The config store; one instance is used from one event loop.

    Errors: methods raise `StoreError` subclasses for refused writes and storage failures, and
    `ValueError` for malformed calls (a manifest that does not match its key or is not JSON, a
    key written twice in one commit, a negative revision). Every method except `close` raises
    `StoreError` once the store is closed. The caller that opened a store closes it.
    """

    async def revision(self) -> int:
        """The current global revision (0 for a store that never changed)."""
        ...

    async def get(self, key: ResourceKey) -> StoredObject:
        """The object at `key`; raises `NotFound`."""
        ...

    async def list(
        self, group: str | None = None, kind: str | None = None, namespace: str | None = None
    ) -> tuple[int, builtins.list[StoredObject]]:
        """Objects matching every filter given, sorted by key, and the revision they are at.

        Watching from that revision afterwards misses nothing and repeats nothing.
        """
        ...

    async def commit(self, writes: Sequence[Write]) -> tuple[int, builtins.list[Change]]:
        """Apply `writes` atomically: all of them or, on any error, none.

        Returns the revision after the commit and one Change per write that changed something.
        A put whose manifest equals the stored one (ignoring the store-written metadata) is a
        no-op with no Change; when nothing changes, the revision does not move. When this
        returns, the commit is durable. Raises `Conflict` or `NotFound` for a failed
        precondition (naming the first failing write), `StoreError` for storage failures.
        """
        ...

    def watch(self, after_revision: int) -> AsyncIterator[builtins.list[Change]]:
        """Every commit after `after_revision`, one list of changes per commit, in order.

        First replays the stored history, then yields live commits as they happen. Raises
        `Compacted` (while iterating) when that history was trimmed, including when a watcher
        falls so far behind that its history is trimmed before it reads it. The iterator ends
        cleanly when the store closes; its consumer may stop early with `aclose()`.
        """
        ...

    async def close(self) -> None:
        """End every watch, release the storage and its lock. Idempotent."""
        ...
