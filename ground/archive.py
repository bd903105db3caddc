"""The ground archive: every packet received and every command sent, in one SQLite file (WAL).

One writer (the station) and any number of readers (``fsw ground history``, ``plot``,
other tools with only ``sqlite3``). Writes are batched: the station hands
:meth:`Archive.write` every packet and verification report of the last few tenths of a
second in one transaction (``synchronous = NORMAL``: a crash of the machine may lose the
last batch, never corrupt the file). A command is written, in its own transaction,
*before* it is sent, and so are the telecommand counters (:meth:`Archive.reserve`), so
a restarted station never reuses a sequence number the base has seen.

Schema (version :data:`SCHEMA_VERSION`; times are UTC Unix seconds; ``unix_s`` is the
packet's own time stamp, ``received_s``/``sent_s`` the ground's wall clock)::

    packets        id, received_s, unix_s, kind, apid, service, subtype, seq_count,
                   source, name, content (JSON), error, raw (the packet's bytes)
    commands       id, sent_s, origin, request (hex), target, command, args (JSON), apid,
                   seq_count, key_id, sequence, raw, stage, final, ok, code, failure,
                   reason, finished_s
    verifications  id, command_id, packet_id, received_s, unix_s, stage, ok, code,
                   failure, reason
    meta           key, value (JSON): schema, telecommand counters, newest packet time
    housekeeping   (view) id, unix_s, received_s, source, vals (JSON: point -> value)
    events         (view) id, unix_s, received_s, source, name, severity, data (JSON)

``kind`` is ``hk``, ``event``, ``verification``, ``pong``, ``other`` or ``invalid``
(see :class:`ground.telemetry.Packet`). A point's values over time, in plain SQL::

    SELECT unix_s, json_extract(vals, '$.battery_soc') FROM housekeeping
     WHERE source = 'power' ORDER BY unix_s
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsw.errors import ConfigError, StorageError
from fsw.resource import Resource
from ground.telemetry import FINAL_STAGES, Packet

#: Schema version written into the archive; an archive of another version is refused.
SCHEMA_VERSION: Final = 1
#: Wall seconds a statement waits on a lock before it fails.
BUSY_TIMEOUT_S: Final = 5.0
#: Most rows a history query returns unless told otherwise.
DEFAULT_LIMIT: Final = 1000

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS packets (
        id INTEGER PRIMARY KEY,
        received_s REAL NOT NULL,
        unix_s REAL,
        kind TEXT NOT NULL,
        apid INTEGER,
        service INTEGER,
        subtype INTEGER,
        seq_count INTEGER,
        source TEXT,
        name TEXT,
        content TEXT,
        error TEXT NOT NULL DEFAULT '',
        raw BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS packets_by_kind ON packets (kind, source, unix_s)",
    """CREATE TABLE IF NOT EXISTS commands (
        id INTEGER PRIMARY KEY,
        sent_s REAL NOT NULL,
        origin TEXT NOT NULL,
        request TEXT NOT NULL,
        target TEXT NOT NULL,
        command TEXT NOT NULL,
        args TEXT NOT NULL,
        apid INTEGER NOT NULL,
        seq_count INTEGER NOT NULL,
        key_id INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        raw BLOB NOT NULL,
        stage TEXT NOT NULL DEFAULT 'sent',
        final INTEGER NOT NULL DEFAULT 0,
        ok INTEGER,
        code INTEGER,
        failure TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        finished_s REAL)""",
    "CREATE INDEX IF NOT EXISTS commands_by_request ON commands (request)",
    "CREATE INDEX IF NOT EXISTS commands_by_time ON commands (sent_s)",
    """CREATE TABLE IF NOT EXISTS verifications (
        id INTEGER PRIMARY KEY,
        command_id INTEGER NOT NULL REFERENCES commands (id),
        packet_id INTEGER,
        received_s REAL NOT NULL,
        unix_s REAL,
        stage TEXT NOT NULL,
        ok INTEGER NOT NULL,
        code INTEGER,
        failure TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX IF NOT EXISTS verifications_by_command ON verifications (command_id)",
    """CREATE VIEW IF NOT EXISTS housekeeping AS
        SELECT id, unix_s, received_s, source, content AS vals FROM packets WHERE kind = 'hk'""",
    """CREATE VIEW IF NOT EXISTS events AS
        SELECT id, unix_s, received_s, source, name,
               json_extract(content, '$.severity') AS severity,
               json_extract(content, '$.data') AS data
          FROM packets WHERE kind = 'event'""",
)

_INSERT_PACKET: Final = (
    "INSERT INTO packets (id, received_s, unix_s, kind, apid, service, subtype, seq_count, source, "
    "name, content, error, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: Event severities, lowest first (``--severity warning`` shows warning and above).
SEVERITIES: Final = ("debug", "info", "warning", "error", "critical")


def _sanitize(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


_encode: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_encode_any: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str).encode


def to_json_text(value: Any) -> str:
    """Compact JSON of ``value``; NaN and infinities become null, bytes hex, others ``str``."""
    try:
        return _encode(value)
    except (ValueError, TypeError):
        return _encode_any(_sanitize(value))


@dataclass(frozen=True)
class CommandRecord:
    """A telecommand as sent (see the ``commands`` table)."""

    sent_s: float
    origin: str
    request: str
    target: str
    command: str
    args: Mapping[str, Any]
    apid: int
    seq_count: int
    key_id: int
    sequence: int
    raw: bytes


@dataclass(frozen=True)
class VerificationRecord:
    """One verification report of a command (see the ``verifications`` table)."""

    command_id: int
    #: The TM[1,x] packet that carried it (its ``id`` is set when the batch is written).
    packet: Packet | None
    received_s: float
    unix_s: float | None
    stage: str
    ok: bool
    code: int | None
    failure: str
    reason: str


@dataclass
class TelecommandCounters:
    """The telecommand counters a station must never reuse: the packet sequence count (14 bits,
    one counter for every APID) and, per key id, the highest sequence number reserved."""

    seq_count: int = 0
    reserved: dict[int, int] = field(default_factory=dict)
    active_key: int | None = None


class Archive(Resource):
    """The archive at ``path`` (created with its directory if missing, unless ``readonly``).

    Raises :class:`StorageError` naming the file if it cannot be opened, is not an
    archive, or is of another schema version; :class:`ConfigError` if ``readonly`` and
    it does not exist. Not thread-safe: one thread per :class:`Archive`.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._next_packet_id = 1
        #: Packets written, total, since opened.
        self.packets_written = 0
        try:
            if readonly:
                if not self.path.is_file():
                    msg = f"no archive at {self.path} (the station writes one: fsw ground station)"
                    raise ConfigError(msg)
                db = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open archive {self.path}: {exc}"
            raise StorageError(msg) from exc
        self._db = db
        try:
            self._prepare(db)
        except sqlite3.Error as exc:
            self.close()
            msg = f"archive {self.path} is not usable: {exc}"
            raise StorageError(msg) from exc
        except StorageError:
            self.close()
            raise

    def _prepare(self, db: sqlite3.Connection) -> None:
        if self.readonly:
            version = self._meta(db, "schema")
            if version is None:
                msg = f"{self.path} is not a ground archive (no schema version)"
                raise StorageError(msg)
        else:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    db.execute(statement)
                version = self._meta(db, "schema")
                if version is None:
                    version = SCHEMA_VERSION
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema', ?)", (json.dumps(SCHEMA_VERSION),)
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            row = db.execute("SELECT max(id) FROM packets").fetchone()
            self._next_packet_id = (row[0] or 0) + 1
        if version != SCHEMA_VERSION:
            msg = f"archive {self.path} has schema {version}, this software reads {SCHEMA_VERSION}"
            raise StorageError(msg)

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> Any:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return None if row is None else json.loads(row[0])

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            msg = f"archive {self.path} is closed"
            raise StorageError(msg)
        return self._db

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    # ----------------------------------------------------------------- writing

    def ingest(self, packets: Sequence[Packet]) -> list[int]:
        """Write ``packets`` in one transaction; return their row ids (in order)."""
        return self.write(packets, ())

    def write(self, packets: Sequence[Packet], verifications: Iterable[VerificationRecord]) -> list[int]:
        """Write ``packets`` and ``verifications`` (updating their commands) in one transaction.

        Returns the packets' row ids. Raises :class:`StorageError` if the write fails
        (nothing of the batch is then written).
        """
        db = self._conn()
        first = self._next_packet_id
        ids = list(range(first, first + len(packets)))
        rows = [
            (
                row_id,
                p.received_s,
                p.unix_s,
                p.kind,
                p.apid,
                p.service,
                p.subtype,
                p.seq_count,
                p.source,
                p.name,
                to_json_text(p.content) if p.content else None,
                p.error,
                p.raw,
            )
            for row_id, p in zip(ids, packets, strict=True)
        ]
        for row_id, p in zip(ids, packets, strict=True):
            p.id = row_id
        newest = max((p.unix_s for p in packets if p.unix_s is not None), default=None)
        try:
            db.execute("BEGIN")
            try:
                db.executemany(_INSERT_PACKET, rows)
                for v in verifications:
                    self._write_verification(db, v)
                if newest is not None:
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('newest_unix_s', ?) ON CONFLICT(key) DO "
                        "UPDATE SET value = max(CAST(value AS REAL), CAST(excluded.value AS REAL))",
                        (json.dumps(newest),),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            for p in packets:
                p.id = None
            msg = f"cannot write to archive {self.path}: {exc}"
            raise StorageError(msg) from exc
        self._next_packet_id = first + len(packets)
        self.packets_written += len(packets)
        return ids

    @staticmethod
    def _write_verification(db: sqlite3.Connection, v: VerificationRecord) -> None:
        db.execute(
            "INSERT INTO verifications (command_id, packet_id, received_s, unix_s, stage, ok, code, "
            "failure, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                v.command_id,
                v.packet.id if v.packet is not None else None,
                v.received_s,
                v.unix_s,
                v.stage,
                int(v.ok),
                v.code,
                v.failure,
                v.reason,
            ),
        )
        final = v.stage in FINAL_STAGES
        db.execute(
            "UPDATE commands SET stage = ?, final = max(final, ?), ok = ?, code = coalesce(?, code), "
            "failure = CASE WHEN ? != '' THEN ? ELSE failure END, "
            "reason = CASE WHEN ? != '' THEN ? ELSE reason END, "
            "finished_s = CASE WHEN ? THEN ? ELSE finished_s END WHERE id = ? AND final = 0",
            (
                v.stage,
                int(final),
                int(v.ok) if final else None,
                v.code,
                v.failure,
                v.failure,
                v.reason,
                v.reason,
                int(final),
                v.received_s,
                v.command_id,
            ),
        )

    def record_command(self, command: CommandRecord, counters: TelecommandCounters) -> int:
        """Write ``command`` and the counters it used, durably, before it is sent; return its id."""
        db = self._conn()
        try:
            db.execute("BEGIN")
            try:
                cursor = db.execute(
                    "INSERT INTO commands (sent_s, origin, request, target, command, args, apid, seq_count, "
                    "key_id, sequence, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        command.sent_s,
                        command.origin,
                        command.request,
                        command.target,
                        command.command,
                        to_json_text(dict(command.args)),
                        command.apid,
                        command.seq_count,
                        command.key_id,
                        command.sequence,
                        command.raw,
                    ),
                )
                self._put_counters(db, counters)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            msg = f"cannot write to archive {self.path}: {exc}"
            raise StorageError(msg) from exc
        return int(cursor.lastrowid or 0)

    def reserve(self, counters: TelecommandCounters) -> None:
        """Write the telecommand counters durably (before any number under them is used)."""
        db = self._conn()
        try:
            db.execute("PRAGMA synchronous = FULL")  # this one must survive a power loss
            try:
                self._put_counters(db, counters)
            finally:
                db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            msg = f"cannot write to archive {self.path}: {exc}"
            raise StorageError(msg) from exc

    @staticmethod
    def _put_counters(db: sqlite3.Connection, counters: TelecommandCounters) -> None:
        value = {
            "seq_count": counters.seq_count,
            "reserved": {str(k): v for k, v in counters.reserved.items()},
            "active_key": counters.active_key,
        }
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('telecommands', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (json.dumps(value),),
        )

    def counters(self) -> TelecommandCounters:
        """The telecommand counters as last written (zeros in a new archive)."""
        raw = self._meta(self._conn(), "telecommands")
        if not isinstance(raw, dict):
            return TelecommandCounters()
        reserved = raw.get("reserved", {})
        active = raw.get("active_key")
        return TelecommandCounters(
            seq_count=int(raw.get("seq_count", 0)),
            reserved={int(k): int(v) for k, v in reserved.items()} if isinstance(reserved, dict) else {},
            active_key=int(active) if isinstance(active, int) else None,
        )

    # ----------------------------------------------------------------- reading

    def newest_unix_s(self) -> float | None:
        """The newest packet time stamp archived (UTC Unix seconds), or ``None`` if no packet."""
        value = self._meta(self._conn(), "newest_unix_s")
        return float(value) if value is not None else None

    def newest_sent_s(self) -> float | None:
        """When the last command was sent (ground wall clock), or ``None``."""
        row = self._conn().execute("SELECT max(sent_s) FROM commands").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def packets(
        self,
        *,
        since_s: float | None = None,
        kinds: Sequence[str] = (),
        source: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[dict[str, Any]]:
        """Packets with a time stamp at or after ``since_s``, oldest first (the last ``limit``)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if since_s is not None:
            where.append("unix_s >= ?")
            params.append(since_s)
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params.extend(kinds)
        if source is not None:
            where.append("source = ?")
            params.append(source)
        query = (
            "SELECT * FROM (SELECT id, received_s, unix_s, kind, apid, service, subtype, seq_count, source, "  # noqa: S608 - placeholders only
            f"name, content, error, raw FROM packets WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?) "
            "ORDER BY id"
        )
        rows = self._query(query, (*params, limit))
        return [
            {
                "id": r[0],
                "received_s": r[1],
                "unix_s": r[2],
                "kind": r[3],
                "apid": r[4],
                "service": r[5],
                "subtype": r[6],
                "seq_count": r[7],
                "source": r[8],
                "name": r[9],
                "content": json.loads(r[10]) if r[10] else {},
                "error": r[11],
                "size": len(r[12]),
                "raw": bytes(r[12]).hex(),
            }
            for r in rows
        ]

    def events(
        self, *, since_s: float | None = None, severity: str = "debug", limit: int = DEFAULT_LIMIT
    ) -> list[dict[str, Any]]:
        """Events at or above ``severity`` with a time stamp at or after ``since_s``, oldest first."""
        if severity not in SEVERITIES:
            msg = f"severity {severity!r} is not one of {', '.join(SEVERITIES)}"
            raise ConfigError(msg)
        wanted = SEVERITIES[SEVERITIES.index(severity) :]
        rows = self._query(
            "SELECT * FROM (SELECT id, unix_s, received_s, source, name, severity, data FROM events "  # noqa: S608 - placeholders only
            f"WHERE unix_s >= ? AND severity IN ({', '.join('?' * len(wanted))}) "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            (since_s if since_s is not None else -math.inf, *wanted, limit),
        )
        return [
            {
                "id": r[0],
                "unix_s": r[1],
                "received_s": r[2],
                "source": r[3],
                "name": r[4],
                "severity": r[5],
                "data": json.loads(r[6]) if r[6] else {},
            }
            for r in rows
        ]

    def commands(
        self,
        *,
        since_s: float | None = None,
        include_keepalive: bool = False,
        limit: int = DEFAULT_LIMIT,
        command_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Commands sent at or after ``since_s`` (ground clock), oldest first, each with its stages.

        Keep-alive pings are left out unless ``include_keepalive``; ``command_id`` selects one.
        """
        where = "sent_s >= ?" + ("" if include_keepalive else " AND origin != 'keepalive'")
        params: list[Any] = [since_s if since_s is not None else -math.inf]
        if command_id is not None:
            where += " AND id = ?"
            params.append(command_id)
        rows = self._query(
            "SELECT * FROM (SELECT id, sent_s, origin, request, target, command, args, apid, seq_count, "  # noqa: S608 - placeholders only
            "key_id, sequence, stage, final, ok, code, failure, reason, finished_s FROM commands "
            f"WHERE {where} ORDER BY id DESC LIMIT ?) ORDER BY id",
            (*params, limit),
        )
        out = []
        for r in rows:
            stages = self._query(
                "SELECT stage, ok, code, failure, reason, received_s, unix_s FROM verifications "
                "WHERE command_id = ? ORDER BY id",
                (r[0],),
            )
            out.append(
                {
                    "id": r[0],
                    "sent_s": r[1],
                    "origin": r[2],
                    "request": r[3],
                    "target": r[4],
                    "command": r[5],
                    "args": json.loads(r[6]),
                    "apid": r[7],
                    "seq_count": r[8],
                    "key_id": r[9],
                    "sequence": r[10],
                    "stage": r[11],
                    "final": bool(r[12]),
                    "ok": None if r[13] is None else bool(r[13]),
                    "code": r[14],
                    "failure": r[15],
                    "reason": r[16],
                    "finished_s": r[17],
                    "stages": [
                        {
                            "stage": s[0],
                            "ok": bool(s[1]),
                            "code": s[2],
                            "failure": s[3],
                            "reason": s[4],
                            "received_s": s[5],
                            "unix_s": s[6],
                        }
                        for s in stages
                    ],
                }
            )
        return out

    def command_by_request(self, request: str) -> dict[str, Any] | None:
        """The latest command with request id ``request`` (hex), with its stages, or ``None``."""
        rows = self._query("SELECT max(id) FROM commands WHERE request = ?", (request,))
        if not rows or rows[0][0] is None:
            return None
        found = self.commands(since_s=None, include_keepalive=True, limit=1, command_id=int(rows[0][0]))
        return found[0] if found else None

    def series(
        self,
        source: str,
        points: Sequence[str],
        *,
        since_s: float | None = None,
        until_s: float | None = None,
    ) -> tuple[list[float], dict[str, list[float | None]]]:
        """Time stamps and values of ``points`` of ``source``'s housekeeping, oldest first.

        Values that are not numbers (strings, missing) are ``None``; booleans are 0/1.
        """
        columns = ", ".join(f"json_extract(content, ?) AS c{i}" for i in range(len(points)))
        rows = self._query(
            f"SELECT unix_s, {columns} FROM packets WHERE kind = 'hk' AND source = ? "  # noqa: S608 - placeholders only
            "AND unix_s >= ? AND unix_s <= ? ORDER BY unix_s",
            (
                *(f"$.{p}" for p in points),
                source,
                since_s if since_s is not None else -math.inf,
                until_s if until_s is not None else math.inf,
            ),
        )
        times = [float(r[0]) for r in rows]
        values = {
            p: [float(r[i + 1]) if isinstance(r[i + 1], (int, float)) else None for r in rows]
            for i, p in enumerate(points)
        }
        return times, values

    def counts(self) -> dict[str, int]:
        """Packets by kind, and commands, in the archive."""
        out = {str(k): int(n) for k, n in self._query("SELECT kind, count(*) FROM packets GROUP BY kind", ())}
        out["commands"] = int(self._query("SELECT count(*) FROM commands", ())[0][0])
        return out

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return list(self._conn().execute(sql, tuple(params)).fetchall())
        except sqlite3.Error as exc:
            msg = f"cannot read archive {self.path}: {exc}"
            raise StorageError(msg) from exc
