"""The control plane's config store: the interface, its SQLite backend, and `open_store`."""

from __future__ import annotations

from pathlib import Path

from gossamer.control.store.base import (
    Change,
    Compacted,
    Conflict,
    NotFound,
    Store,
    StoredObject,
    StoreError,
    StoreLocked,
    Write,
)
from gossamer.control.store.feed import Watch
from gossamer.control.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_FILE",
    "Change",
    "Compacted",
    "Conflict",
    "NotFound",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreLocked",
    "StoredObject",
    "Watch",
    "Write",
    "open_store",
]

DEFAULT_FILE = "store.db"
"""The store's file name when `open_store` is given a directory such as $GOSSAMER_HOME."""


def open_store(url: str) -> Store:
    """Open the store that `url` names; the caller closes it.

    `sqlite:///abs/path/store.db` or a plain path (`~` expanded) opens the embedded store; a
    path that is an existing directory means `<dir>/store.db`. `etcd://host:2379,...` is
    reserved for the replicated backend. Raises `StoreError` for an unknown or unsupported URL,
    and whatever `SqliteStore.open` raises (`StoreLocked`, `StoreError`).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        path = Path(url)
    elif scheme == "sqlite":
        if not rest.startswith("/"):
            raise StoreError(
                f"store URL {url!r}: write sqlite:///absolute/path (three slashes) or a plain path"
            )
        path = Path(rest)
    elif scheme == "etcd":
        raise StoreError(
            f"store URL {url!r}: the etcd backend arrives with the multi-node work; for now use "
            "the embedded store (sqlite:///path or a plain path)"
        )
    else:
        raise StoreError(f"store URL {url!r}: unknown scheme {scheme!r} (use sqlite:// or a path)")
    path = path.expanduser()
    if path.is_dir():
        path = path / DEFAULT_FILE
    return SqliteStore.open(path)
