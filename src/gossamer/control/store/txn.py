"""Pure rules for one write of a commit: preconditions, no-op detection, metadata stamping.

Every backend applies a commit the same way, so these rules live here, free of I/O:
1. `check_writes` refuses malformed commits before any storage is touched.
2. For each write, the backend reads the current object and calls `plan`, which raises
   `Conflict`/`NotFound` for a failed precondition, returns None for a no-op, or returns the
   `Change` to store at the commit's revision.
3. The store owns `metadata.resourceVersion`, `metadata.creationTimestamp` and
   `metadata.generation`: whatever the caller sent there is replaced, and ignored when deciding
   whether a put changes anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gossamer.control.store.base import Change, Conflict, NotFound, StoredObject, Write
from gossamer.spec.base import ResourceKey

STORE_FIELDS = ("resourceVersion", "creationTimestamp", "generation")


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps: RFC 3339, UTC, whole seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode(manifest: dict[str, Any]) -> str:
    """The canonical JSON text of a manifest (sorted keys, no NaN); raises ValueError."""
    try:
        return json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest is not plain JSON: {exc}") from exc


def check_writes(writes: Sequence[Write]) -> None:
    """Refuse a commit that is malformed whatever the store holds; raises ValueError.

    A key may appear once per commit (as in an etcd transaction), and each manifest must be a
    JSON object whose kind, metadata.name and (when given) metadata.namespace match its key.
    """
    seen: set[ResourceKey] = set()
    for write in writes:
        if write.key in seen:
            raise ValueError(f"{write.key} is written twice in one commit")
        seen.add(write.key)
        if write.expected_revision is not None and write.expected_revision < 0:
            raise ValueError(f"{write.key}: expected_revision must be None, 0 or positive")
        if write.manifest is not None:
            _check_manifest(write.key, write.manifest)


def _check_manifest(key: ResourceKey, manifest: dict[str, Any]) -> None:
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        raise ValueError(f"{key}: manifest has no metadata object")
    if manifest.get("kind") != key.kind:
        raise ValueError(f"{key}: manifest kind is {manifest.get('kind')!r}")
    if metadata.get("name") != key.name:
        raise ValueError(f"{key}: manifest metadata.name is {metadata.get('name')!r}")
    namespace = metadata.get("namespace", key.namespace)
    if namespace != key.namespace:
        raise ValueError(f"{key}: manifest metadata.namespace is {namespace!r}")


def plan(write: Write, current: StoredObject | None, revision: int, now: str) -> Change | None:
    """What `write` does to `current` in a commit at `revision` (timestamp `now`).

    Returns None when the write changes nothing. Raises `NotFound` when a delete, or a put with
    a positive expected_revision, finds no object; `Conflict` when the object exists but the
    write expected it not to (0) or expected another mod_revision.
    """
    expected = write.expected_revision
    if current is None:
        if write.manifest is None or (expected is not None and expected > 0):
            raise NotFound(write.key, expected)
        return Change("put", write.key, _stamp(write, revision, revision, now, 1), revision)
    if expected is not None and expected != current.mod_revision:
        raise Conflict(write.key, expected, current.mod_revision)
    if write.manifest is None:
        return Change("delete", write.key, current, revision)
    if unstamped(write.manifest) == unstamped(current.manifest):
        return None
    generation = current.generation
    if write.manifest.get("spec") != current.manifest.get("spec"):
        generation += 1
    created = str(current.manifest["metadata"]["creationTimestamp"])
    stored = _stamp(write, current.create_revision, revision, created, generation)
    return Change("put", write.key, stored, revision)


def unstamped(manifest: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of `manifest` without the store-written metadata fields."""
    metadata = {k: v for k, v in manifest.get("metadata", {}).items() if k not in STORE_FIELDS}
    return {**manifest, "metadata": metadata}


def _stamp(
    write: Write, create_revision: int, mod_revision: int, created: str, generation: int
) -> StoredObject:
    assert write.manifest is not None
    # A round trip through JSON both deep-copies the caller's dict (later mutations of it must
    # not reach the store) and proves that it is plain JSON.
    manifest: dict[str, Any] = json.loads(encode(write.manifest))
    manifest["metadata"].update(
        resourceVersion=str(mod_revision), creationTimestamp=created, generation=generation
    )
    return StoredObject(write.key, manifest, create_revision, mod_revision)
