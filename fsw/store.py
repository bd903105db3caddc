"""A process's durable state: named values and an event log in one SQLite file (WAL).

:class:`StateStore` keeps what must survive a ``kill -9`` of its process and a restart of
the whole base: values by key (a mode, monitor states and counters, sequences in
progress), written as msgpack, and an append-only event log bounded in rows (the oldest
go first; how many went is counted). Every write is its own transaction in WAL mode with
``synchronous = FULL``: once :meth:`StateStore.put` returns, the value survives a crash of
the process and of the machine. One writer: the process that opened the store.

A file that is not a store, or a damaged one, raises :class:`StorageError` naming it and
is left as it is: :func:`quarantine` moves it aside so a fresh store can start, and no
bytes of the old one are lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack

from fsw.errors import StorageError
from fsw.resource import Resource

#: Schema version written into the store; a store of another version is refused.
SCHEMA_VERSION: Final = 1
#: Default most rows kept in the event log.
MAX_EVENTS: Final = 100_000
#: Wall seconds a statement waits on a lock before it fails.
BUSY_TIMEOUT_S: Final = 5.0

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, t_s REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, t_s REAL NOT NULL, "
    "name TEXT NOT NULL, data BLOB NOT NULL)",
)


@dataclass(frozen=True)
class StoredEvent:
    """One row of the event log."""

    id: int
    t_s: float
    name: str
    data: dict[str, Any]


class StateStore(Resource):
    """Values and an event log in the SQLite file at ``path`` (created if missing).

    Raises :class:`StorageError` naming the file if it cannot be opened, is not a store,
    is damaged, or is of another schema version. Blocking: each call is one transaction
    of at most :data:`BUSY_TIMEOUT_S` waiting on a lock.
    """

    def __init__(self, path: str | Path, *, max_events: int = MAX_EVENTS) -> None:
        self.path = Path(path)
        self.max_events = max_events
        #: Event rows dropped to keep the log under ``max_events``.
        self.events_dropped = 0
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open state store {self.path}: {exc}"
            raise StorageError(msg) from exc
        self._db = db
        try:
            self._prepare(db)
        except (sqlite3.Error, StorageError) as exc:
            self.close()
            if isinstance(exc, StorageError):
                raise
            msg = f"state store {self.path} is not usable ({exc}); move it aside (fsw.store.quarantine)"
            raise StorageError(msg) from exc

    def _prepare(self, db: sqlite3.Connection) -> None:
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            msg = f"state store {self.path} is damaged ({check[0] if check else 'no answer'})"
            raise StorageError(msg)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        for statement in _SCHEMA:
            db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            msg = f"state store {self.path} has schema {row[0]}, this software reads {SCHEMA_VERSION}"
            raise StorageError(msg)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            msg = f"state store {self.path} is closed"
            raise StorageError(msg)
        return self._db

    def put(self, key: str, value: Any, t_s: float) -> None:
        """Store ``value`` (msgpack-able) under ``key`` at mission time ``t_s``; durable on return."""
        try:
            blob = msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError) as exc:
            msg = f"value of {key!r} cannot be stored: {exc}"
            raise StorageError(msg) from exc
        self._write(
            "INSERT INTO kv (key, value, t_s) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, t_s = excluded.t_s",
            (key, blob, t_s),
        )

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        try:
            row = self._conn().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            msg = f"cannot read {key!r} from state store {self.path}: {exc}"
            raise StorageError(msg) from exc
        if row is None:
            return default
        return _unpack(row[0], f"{self.path}: value of {key!r}")

    def append_event(self, t_s: float, name: str, data: dict[str, Any]) -> int:
        """Append an event; return its row id. The oldest rows beyond ``max_events`` go."""
        try:
            blob = msgpack.packb(data, use_bin_type=True)
        except (TypeError, ValueError) as exc:
            msg = f"event {name!r} cannot be stored: {exc}"
            raise StorageError(msg) from exc
        db = self._conn()
        try:
            cursor = db.execute("INSERT INTO events (t_s, name, data) VALUES (?, ?, ?)", (t_s, name, blob))
            event_id = int(cursor.lastrowid or 0)
            floor = event_id - self.max_events
            if floor > 0:
                deleted = db.execute("DELETE FROM events WHERE id <= ?", (floor,)).rowcount
                self.events_dropped += max(0, deleted)
        except sqlite3.Error as exc:
            msg = f"cannot append to the event log of {self.path}: {exc}"
            raise StorageError(msg) from exc
        return event_id

    def events(self, after_id: int = 0, limit: int = 1000) -> Iterator[StoredEvent]:
        """Events with an id above ``after_id``, oldest first, at most ``limit``."""
        try:
            rows = (
                self._conn()
                .execute(
                    "SELECT id, t_s, name, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            msg = f"cannot read the event log of {self.path}: {exc}"
            raise StorageError(msg) from exc
        for event_id, t_s, name, blob in rows:
            data = _unpack(blob, f"{self.path}: event {event_id}")
            yield StoredEvent(int(event_id), float(t_s), str(name), data if isinstance(data, dict) else {})

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self._conn().execute(sql, params)
        except sqlite3.Error as exc:
            msg = f"cannot write to state store {self.path}: {exc}"
            raise StorageError(msg) from exc

    def close(self) -> None:
        """Close the file (checkpointing the WAL). Idempotent."""
        db, self._db = self._db, None
        if db is not None:
            db.close()


def _unpack(blob: bytes, where: str) -> Any:
    try:
        return msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        msg = f"{where} is damaged: {exc}"
        raise StorageError(msg) from exc


def quarantine(path: str | Path, label: str = "damaged") -> Path:
    """Move a store that cannot be used (and its WAL files) aside; return where it went.

    Nothing is deleted: the file is renamed ``<name>.<label>-<n>``, ``n`` the first free
    number. Raises :class:`StorageError` if it cannot be moved.
    """
    source = Path(path)
    n = 1
    while source.with_name(f"{source.name}.{label}-{n}").exists():
        n += 1
    target = source.with_name(f"{source.name}.{label}-{n}")
    try:
        source.rename(target)
        for suffix in ("-wal", "-shm"):
            side = source.with_name(source.name + suffix)
            if side.exists():
                side.rename(target.with_name(target.name + suffix))
    except OSError as exc:
        msg = f"cannot move {source} aside: {exc}"
        raise StorageError(msg) from exc
    return target


__all__ = ["StateStore", "StoredEvent", "quarantine"]
