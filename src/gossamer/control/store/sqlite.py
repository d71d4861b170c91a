"""The embedded store: one SQLite file in $GOSSAMER_HOME, durable on return, one writer at a time.

Theory of operation:
1. Tables: `objects` (one row per key: manifest JSON, create/mod revisions), `meta` (one row:
   the global revision and the revision history is compacted up to) and `events` (one row per
   change, numbered (revision, seq), kept for watch replay). `PRAGMA user_version` is the schema
   version, so a later Gossamer can migrate and an older one refuses a newer file.
2. WAL journal with `synchronous=FULL`: SQLite fsyncs the WAL before COMMIT returns, so every
   commit this store acknowledged survives kill -9 and power loss.
3. A commit is one `BEGIN IMMEDIATE` transaction: each write is planned against the current row
   by the pure rules in `txn`; any refusal rolls everything back, so a multi-document apply is
   all or nothing. Watchers are fed only after COMMIT returned.
4. An flock on `<file>.lock` makes the store single-writer: a second control plane on the same
   $GOSSAMER_HOME fails fast with `StoreLocked`, naming the PID that holds it.
5. History is trimmed by whole commits once it exceeds `history` events by a tenth (so the
   trimming is amortised); a watch from before the trimmed revision raises `Compacted`.

SQLite runs synchronously inside the async methods on purpose: every call is a few indexed
statements on a local file (a commit adds one fsync), so handing each to a thread would cost
more than it saves, and running them on the loop makes each call atomic with respect to the
other tasks, which is what lets the feed register a watch and replay history without a gap.
Waiting for changes never blocks: watchers wait on an asyncio.Event (see `feed`).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gossamer.control.store import txn
from gossamer.control.store.base import Change, Compacted, NotFound, StoredObject, StoreError, Write
from gossamer.control.store.feed import Batch, Feed, Watch
from gossamer.control.store.lockfile import LockFile
from gossamer.spec.base import ResourceKey

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    compacted INTEGER NOT NULL
);
INSERT INTO meta (id, revision, compacted) VALUES (1, 0, 0);
CREATE TABLE objects (
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    manifest TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    PRIMARY KEY (grp, kind, namespace, name)
) WITHOUT ROWID;
CREATE TABLE events (
    revision INTEGER NOT NULL, seq INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    manifest TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    PRIMARY KEY (revision, seq)
) WITHOUT ROWID;
"""

_KEY = "grp = ? AND kind = ? AND namespace = ? AND name = ?"
_OBJECT = "grp, kind, namespace, name, manifest, create_revision, mod_revision"


class SqliteStore:
    """The `Store` on one SQLite file. Open with `SqliteStore.open`; the opener closes it.

    Used from one event loop (the one its watches wait on). Raises `StoreError` for storage
    failures, with the SQLite error as its cause.
    """

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock: LockFile, history: int, buffer: int
    ) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock = lock
        self._history = history
        self._events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        self._feed = Feed(self._replay, buffer)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, history: int = 10_000, watch_buffer: int = 1024
    ) -> SqliteStore:
        """Open (creating it and its directory if needed) the store file at `path`.

        `history` is how many change events are kept for watch replay; `watch_buffer` how many
        commits a watcher may fall behind before it re-reads history. Raises `StoreLocked` when
        another process (or another open in this one) holds the store, `StoreError` when the
        file is not a usable store.
        """
        if history < 1:
            raise ValueError("history must keep at least one event")
        file = Path(path).expanduser()
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = LockFile.acquire(file.with_name(file.name + ".lock"))
        try:
            conn = _connect(file)
            try:
                return cls(file, conn, lock, history, watch_buffer)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            lock.release()
            raise

    async def revision(self) -> int:
        with self._storage("read the revision") as conn:
            return _revision(conn)

    async def get(self, key: ResourceKey) -> StoredObject:
        with self._storage(f"read {key}") as conn:
            row = conn.execute(f"SELECT {_OBJECT} FROM objects WHERE {_KEY}", key).fetchone()
        if row is None:
            raise NotFound(key)
        return _object(row)

    async def list(
        self, group: str | None = None, kind: str | None = None, namespace: str | None = None
    ) -> tuple[int, builtins.list[StoredObject]]:
        filters = [("grp", group), ("kind", kind), ("namespace", namespace)]
        given = [(column, value) for column, value in filters if value is not None]
        where = " AND ".join(f"{column} = ?" for column, _ in given) or "1"
        query = f"SELECT {_OBJECT} FROM objects WHERE {where} ORDER BY grp, kind, namespace, name"
        with self._storage("list objects") as conn:
            conn.execute("BEGIN")  # one read transaction: the rows are at the revision read
            try:
                revision = _revision(conn)
                rows = conn.execute(query, [value for _, value in given]).fetchall()
            finally:
                conn.execute("COMMIT")
        return revision, [_object(row) for row in rows]

    async def commit(self, writes: Sequence[Write]) -> tuple[int, builtins.list[Change]]:
        txn.check_writes(writes)
        now = txn.now_rfc3339()
        with self._storage("commit") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                revision = _revision(conn)
                planned = (txn.plan(w, _current(conn, w.key), revision + 1, now) for w in writes)
                changes = [change for change in planned if change is not None]
                if not changes:
                    conn.execute("ROLLBACK")
                    return revision, []
                revision += 1
                trimmed = self._apply(conn, revision, changes)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._events += len(changes) - trimmed
        self._feed.publish(revision, changes)
        return revision, changes

    def watch(self, after_revision: int) -> Watch:
        self._storage_open()
        return self._feed.watch(after_revision)

    async def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        self._feed.close()
        try:
            conn.close()  # the last connection checkpoints the WAL into the main file
        finally:
            self._lock.release()

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"<SqliteStore {self.path} {state} events={self._events} {self._feed!r}>"

    def _apply(
        self, conn: sqlite3.Connection, revision: int, changes: builtins.list[Change]
    ) -> int:
        """Write the rows of one commit; returns how many events compaction removed."""
        for seq, change in enumerate(changes):
            stored = change.object
            manifest = txn.encode(stored.manifest)
            if change.op == "put":
                conn.execute(
                    f"INSERT OR REPLACE INTO objects ({_OBJECT}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*change.key, manifest, *_revisions(stored)),
                )
            else:
                conn.execute(f"DELETE FROM objects WHERE {_KEY}", change.key)
            conn.execute(
                f"INSERT INTO events (revision, seq, op, {_OBJECT})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (revision, seq, change.op, *change.key, manifest, *_revisions(stored)),
            )
        conn.execute("UPDATE meta SET revision = ? WHERE id = 1", (revision,))
        if self._events + len(changes) <= self._history + self._history // 10:
            return 0
        # Trim whole commits only: the newest commit that falls outside the kept window goes
        # with everything before it, so a watch either gets a commit entirely or `Compacted`.
        row = conn.execute(
            "SELECT revision FROM events ORDER BY revision DESC, seq DESC LIMIT 1 OFFSET ?",
            (self._history,),
        ).fetchone()
        if row is None:
            return 0
        cursor = conn.execute("DELETE FROM events WHERE revision <= ?", (row[0],))
        conn.execute("UPDATE meta SET compacted = max(compacted, ?) WHERE id = 1", (row[0],))
        return cursor.rowcount

    def _replay(self, after: int) -> builtins.list[Batch]:
        with self._storage("read history") as conn:
            conn.execute("BEGIN")
            try:
                compacted = int(conn.execute("SELECT compacted FROM meta").fetchone()[0])
                rows = conn.execute(
                    f"SELECT revision, op, {_OBJECT} FROM events WHERE revision > ?"
                    " ORDER BY revision, seq",
                    (after,),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        if after < compacted:
            raise Compacted(after, compacted)
        batches: builtins.list[Batch] = []
        for revision, op, *row in rows:
            stored = _object(row)
            if not batches or batches[-1][0] != revision:
                batches.append((revision, []))
            batches[-1][1].append(Change(op, stored.key, stored, revision))
        return batches

    def _storage_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _storage(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The open connection; SQLite failures inside become `StoreError`."""
        conn = self._storage_open()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: could not {doing}: {exc}") from exc


def _connect(file: Path) -> sqlite3.Connection:
    """Connect, set durability pragmas and bring the schema to SCHEMA_VERSION."""
    try:
        # isolation_level=None: no implicit transactions; this module says BEGIN and COMMIT.
        conn = sqlite3.connect(file, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {file}: {exc}") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"store {file}: the file system does not support SQLite's WAL mode")
        conn.execute("PRAGMA synchronous = FULL")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {file} has schema version {version}, newer than this Gossamer "
                f"understands ({SCHEMA_VERSION}): upgrade Gossamer"
            )
        if version == 0:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{file} is not a usable Gossamer store: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _revision(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT revision FROM meta").fetchone()[0])


def _current(conn: sqlite3.Connection, key: ResourceKey) -> StoredObject | None:
    row = conn.execute(f"SELECT {_OBJECT} FROM objects WHERE {_KEY}", key).fetchone()
    return None if row is None else _object(row)


def _revisions(stored: StoredObject) -> tuple[int, int]:
    return stored.create_revision, stored.mod_revision


def _object(row: Sequence[Any]) -> StoredObject:
    group, kind, namespace, name, manifest, create_revision, mod_revision = row
    key = ResourceKey(group, kind, namespace, name)
    return StoredObject(key, json.loads(manifest), int(create_revision), int(mod_revision))
