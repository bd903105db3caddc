"""The recording log format: an append-only file of checksummed records, and its reader.

A log is one or more files ``<run_id>-<index:05d>.fswlog`` in one directory. Each
file is a sequence of records::

    +------+------+----------------+----------------+---------------------------+
    | 0xF5 | 0x7A | length (u32 BE)| CRC-32 (u32 BE)| payload (length bytes)    |
    +------+------+----------------+----------------+---------------------------+
      sync marker      of payload     of payload       one msgpack map

* the CRC is CRC-32 (ISO-HDLC, as :func:`zlib.crc32`) of the payload bytes;
* ``length`` is at most :data:`MAX_PAYLOAD_BYTES`;
* the payload is one msgpack map with string keys; ``"k"`` says what it is.

The first record of every file is a **header** (:class:`LogHeader`)::

    {"k": "header", "version": 1, "created_unix_s": float, "base": str,
     "run_id": str, "file_index": int, "deployment": str (TOML text or "")}

Every other record is a **bus record** (:class:`BusRecord`), one bus message as it
came off the subscriber socket::

    {"k": "bus", "t": float (mission time), "w": float (wall unix time),
     "topic": bin, "body": bin, "ok": bool}

``ok`` is false for a frame that failed :func:`fsw.messages.decode` (malformed frames
are recorded too, flagged); its ``t`` is then the last known mission time. A message
of other than two frames also carries ``"frames": [bin, ...]`` (every frame, in order).

:func:`encode_record` and :func:`decode_record` are a symmetric pair of pure functions.
:class:`LogWriter` appends records, rotates files by size and fsyncs by policy;
:class:`LogReader` reads one file or a whole directory and accounts for every byte:
kept (in a good record), skipped (bad marker, length, CRC or payload; it resynchronises
on the next marker whose length and CRC check out) or torn (an incomplete last record,
what a kill -9 or a power cut mid-write leaves). ``kept + skipped + torn`` is always the
file size. The reader never raises on file content.

The format is specified for other tools in ``docs/recording.md``.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import queue
import re
import struct
import threading
import time as time_module
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack

from fsw.errors import CodecError, ConfigError
from fsw.resource import Resource
from fsw.timesource import MonotonicTime, TimeSource

#: Two bytes that open every record.
SYNC_MARKER: Final = b"\xf5\x7a"
#: Version of the log format, written into every header.
FORMAT_VERSION: Final = 1
#: Bytes before the payload: marker (2), length (4), CRC-32 (4).
RECORD_HEADER_BYTES: Final = 10
#: Largest payload of one record. Bus bodies are at most 256 KiB, so this leaves room
#: for the topic, the other fields and a deployment text in a header.
MAX_PAYLOAD_BYTES: Final = 1024 * 1024
#: Largest record, framing included.
MAX_RECORD_BYTES: Final = RECORD_HEADER_BYTES + MAX_PAYLOAD_BYTES
#: Suffix of every log file.
LOG_SUFFIX: Final = ".fswlog"
#: Default size at which a writer starts a new file.
DEFAULT_MAX_FILE_BYTES: Final = 64 * 1024 * 1024
#: Smallest ``max_file_bytes`` a writer accepts.
MIN_FILE_BYTES: Final = 4096
#: Bytes a writer holds in memory before handing them to the kernel.
WRITE_BUFFER_BYTES: Final = 64 * 1024
#: fsync policies: after every record, at most every ``fsync_interval_s``, or never.
FSYNC_POLICIES: Final = ("always", "interval", "never")
#: Wall seconds before asking again for an fsync while the background one is in flight.
BACKGROUND_RETRY_S: Final = 0.02
#: Longest wait for a background fsync when closing (wall seconds).
BACKGROUND_CLOSE_TIMEOUT_S: Final = 10.0
#: Reasons a reader skips bytes.
SKIP_REASONS: Final = ("marker", "length", "crc", "payload")

_FRAMING: Final = struct.Struct(">2sII")
_U32: Final = struct.Struct(">I")
_RUN_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME: Final = re.compile(
    r"^(?P<run>[A-Za-z0-9_-]{1,64})-(?P<index>\d{5,})" + re.escape(LOG_SUFFIX) + "$"
)
_MAX_CREATE_ATTEMPTS: Final = 1000


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogHeader:
    """The first record of every log file.

    ``created_unix_s`` is wall time (Unix seconds); ``deployment`` the deployment TOML
    text of the run, or ``""``.
    """

    base: str
    run_id: str
    file_index: int
    created_unix_s: float
    deployment: str = ""
    version: int = FORMAT_VERSION


@dataclass(frozen=True)
class BusRecord:
    """One bus message as received: its raw frames, mission and wall time, and whether it decoded.

    ``t_s`` is the envelope's mission time (seconds), or the last known mission time
    for a frame that does not decode (``ok`` false); ``wall_unix_s`` the wall time it
    was recorded (Unix seconds). ``frames`` holds every frame of a message that did
    not have exactly two (then ``topic`` and ``body`` are its first two, or ``b""``).
    """

    t_s: float
    wall_unix_s: float
    topic: bytes
    body: bytes
    ok: bool = True
    frames: tuple[bytes, ...] | None = None

    def wire_frames(self) -> list[bytes]:
        """The frames to send to reproduce this message byte for byte."""
        if self.frames is not None:
            return list(self.frames)
        return [self.topic, self.body]


Record = LogHeader | BusRecord


def encode_payload(record: Record) -> bytes:
    """Encode ``record`` as its msgpack payload (without framing).

    Pure. Raises :class:`CodecError` if a field cannot be encoded or the payload
    exceeds :data:`MAX_PAYLOAD_BYTES`.
    """
    raw: dict[str, Any]
    if isinstance(record, LogHeader):
        raw = {
            "k": "header",
            "version": record.version,
            "created_unix_s": float(record.created_unix_s),
            "base": record.base,
            "run_id": record.run_id,
            "file_index": record.file_index,
            "deployment": record.deployment,
        }
    else:
        raw = {
            "k": "bus",
            "t": float(record.t_s),
            "w": float(record.wall_unix_s),
            "topic": bytes(record.topic),
            "body": bytes(record.body),
            "ok": bool(record.ok),
        }
        if record.frames is not None:
            raw["frames"] = [bytes(f) for f in record.frames]
    try:
        payload: bytes = msgpack.packb(raw, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        msg = f"cannot encode {raw['k']} record: {exc}"
        raise CodecError(msg) from exc
    if len(payload) > MAX_PAYLOAD_BYTES:
        msg = f"{raw['k']} record of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        raise CodecError(msg)
    return payload


def frame_payload(payload: bytes) -> bytes:
    """Put the marker, length and CRC-32 in front of ``payload``. Pure."""
    return _FRAMING.pack(SYNC_MARKER, len(payload), zlib.crc32(payload)) + payload


def encode_record(record: Record) -> bytes:
    """Encode ``record`` as one framed record, ready to append to a log file.

    Pure; the inverse of :func:`decode_record`. Raises :class:`CodecError` (see
    :func:`encode_payload`).
    """
    return frame_payload(encode_payload(record))


def _number(raw: dict[str, Any], key: str, what: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{what} record field {key!r} is {value!r}, not a number"
        raise CodecError(msg)
    return float(value)


def _typed(raw: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        msg = f"{what} record field {key!r} is {type(value).__name__}, not {kind.__name__}"
        raise CodecError(msg)
    return value


def decode_payload(payload: bytes) -> Record:
    """Decode one record payload (a msgpack map). Pure.

    Raises :class:`CodecError` naming what is wrong: not msgpack, not a map, an
    unknown kind, a missing field or a field of the wrong type. Unknown extra keys
    are ignored (a later format version may add some).
    """
    try:
        raw = msgpack.unpackb(payload, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        msg = f"record payload is not msgpack: {type(exc).__name__}: {exc}"
        raise CodecError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"record payload is {type(raw).__name__}, not a map"
        raise CodecError(msg)
    kind = raw.get("k")
    if kind == "bus":
        frames_raw = raw.get("frames")
        frames: tuple[bytes, ...] | None = None
        if frames_raw is not None:
            if not isinstance(frames_raw, list) or not all(isinstance(f, bytes) for f in frames_raw):
                msg = "bus record field 'frames' is not a list of byte strings"
                raise CodecError(msg)
            frames = tuple(frames_raw)
        return BusRecord(
            t_s=_number(raw, "t", "bus"),
            wall_unix_s=_number(raw, "w", "bus"),
            topic=_typed(raw, "topic", bytes, "bus"),
            body=_typed(raw, "body", bytes, "bus"),
            ok=_typed(raw, "ok", bool, "bus"),
            frames=frames,
        )
    if kind == "header":
        return LogHeader(
            base=_typed(raw, "base", str, "header"),
            run_id=_typed(raw, "run_id", str, "header"),
            file_index=_typed(raw, "file_index", int, "header"),
            created_unix_s=_number(raw, "created_unix_s", "header"),
            deployment=_typed(raw, "deployment", str, "header"),
            version=_typed(raw, "version", int, "header"),
        )
    msg = f"unknown record kind {kind!r}"
    raise CodecError(msg)


def decode_record(data: bytes) -> Record:
    """Decode exactly one framed record; the inverse of :func:`encode_record`. Pure.

    Raises :class:`CodecError` for a bad marker, length or CRC, trailing bytes, or
    a bad payload.
    """
    if len(data) < RECORD_HEADER_BYTES:
        msg = f"{len(data)} bytes is shorter than a record header"
        raise CodecError(msg)
    marker, length, crc = _FRAMING.unpack_from(data)
    if marker != SYNC_MARKER:
        msg = f"bad sync marker {marker!r}"
        raise CodecError(msg)
    if length > MAX_PAYLOAD_BYTES or RECORD_HEADER_BYTES + length != len(data):
        msg = f"record length {length} does not match the {len(data) - RECORD_HEADER_BYTES} payload bytes"
        raise CodecError(msg)
    payload = data[RECORD_HEADER_BYTES:]
    computed = zlib.crc32(payload)
    if crc != computed:
        msg = f"CRC 0x{crc:08X} does not match computed 0x{computed:08X}"
        raise CodecError(msg)
    return decode_payload(payload)


# --- scanning -------------------------------------------------------------------------


@dataclass
class ScanCounts:
    """Byte and record accounting of one file: ``bytes_total == kept + skipped + torn``."""

    bytes_total: int = 0
    bytes_kept: int = 0
    bytes_skipped: int = 0
    bytes_torn: int = 0
    records: int = 0
    skipped_regions: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))

    def add(self, other: ScanCounts) -> None:
        """Add ``other``'s counts to these."""
        self.bytes_total += other.bytes_total
        self.bytes_kept += other.bytes_kept
        self.bytes_skipped += other.bytes_skipped
        self.bytes_torn += other.bytes_torn
        self.records += other.records
        self.skipped_regions += other.skipped_regions
        for reason, count in other.skipped_by_reason.items():
            self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + count


# Outcomes of checking a position for a record.
_OK: Final = "ok"
_INCOMPLETE: Final = "incomplete"


def _check(buffer: Any, pos: int, end: int) -> tuple[str, int]:
    """Check for a record at ``pos``: (``_OK`` or ``_INCOMPLETE`` or a skip reason, payload length)."""
    left = end - pos
    if left < RECORD_HEADER_BYTES:
        # Too short for a header: the start of a record cut off by the end of the file?
        if left == 1 and buffer[pos] == SYNC_MARKER[0]:
            return _INCOMPLETE, 0
        if buffer[pos : pos + 2] != SYNC_MARKER:
            return "marker", 0
        if left >= 6 and _U32.unpack_from(buffer, pos + 2)[0] > MAX_PAYLOAD_BYTES:
            return "length", 0
        return _INCOMPLETE, 0
    marker, length, crc = _FRAMING.unpack_from(buffer, pos)
    if marker != SYNC_MARKER:
        return "marker", 0
    if length > MAX_PAYLOAD_BYTES:
        return "length", 0
    if left < RECORD_HEADER_BYTES + length:
        return _INCOMPLETE, length
    start = pos + RECORD_HEADER_BYTES
    if zlib.crc32(buffer[start : start + length]) != crc:
        return "crc", length
    return _OK, length


def _next_candidate(buffer: Any, start: int, end: int, *, allow_incomplete: bool) -> int:
    """Position of the next record at or after ``start`` that checks out (or is cut off), else ``end``."""
    pos = start
    while pos < end:
        found: int = buffer.find(SYNC_MARKER, pos, end)
        if found < 0:
            last = end - 1
            if allow_incomplete and last >= start and buffer[last] == SYNC_MARKER[0]:
                return last
            return end
        status, _ = _check(buffer, found, end)
        if status == _OK or (allow_incomplete and status == _INCOMPLETE):
            return found
        pos = found + 1
    return end


def scan(buffer: Any, counts: ScanCounts | None = None) -> Iterator[tuple[int, Record]]:
    """Yield ``(offset, record)`` for every good record of one file's bytes, in order.

    ``buffer`` is ``bytes`` or an ``mmap``. Never raises on content: bytes that are
    not a good record are added to ``counts`` as skipped (by reason) or, for an
    incomplete last record, as torn, so that ``bytes_total == bytes_kept +
    bytes_skipped + bytes_torn``. After a bad record it resynchronises on the next
    sync marker whose length and CRC check out.
    """
    c = counts if counts is not None else ScanCounts()
    end = len(buffer)
    c.bytes_total += end
    pos = 0
    while pos < end:
        status, length = _check(buffer, pos, end)
        if status == _OK:
            size = RECORD_HEADER_BYTES + length
            try:
                record = decode_payload(buffer[pos + RECORD_HEADER_BYTES : pos + size])
            except CodecError:
                _skip(c, "payload", size)
                pos += size
                continue
            c.bytes_kept += size
            c.records += 1
            yield pos, record
            pos += size
            continue
        if status == _INCOMPLETE:
            # A record cut off by the end of the file, unless good records follow it
            # (then its length was damaged and it is skipped).
            following = _next_candidate(buffer, pos + 1, end, allow_incomplete=False)
            if following == end:
                c.bytes_torn += end - pos
                return
            _skip(c, "length", following - pos)
            pos = following
            continue
        following = _next_candidate(buffer, pos + 1, end, allow_incomplete=True)
        _skip(c, status, following - pos)
        pos = following


def _skip(counts: ScanCounts, reason: str, size: int) -> None:
    counts.bytes_skipped += size
    counts.skipped_regions += 1
    counts.skipped_by_reason[reason] = counts.skipped_by_reason.get(reason, 0) + size


# --- reading --------------------------------------------------------------------------


@dataclass
class FileReport:
    """What reading one log file found. ``error`` is set if the file could not be read at all."""

    path: Path
    counts: ScanCounts = field(default_factory=ScanCounts)
    headers: int = 0
    error: str = ""


@dataclass
class ReadStats:
    """Accounting of everything a :class:`LogReader` read, per file and in total."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def total(self) -> ScanCounts:
        """The counts of every file added up."""
        total = ScanCounts()
        for report in self.files:
            total.add(report.counts)
        return total

    @property
    def unreadable(self) -> list[FileReport]:
        """Files that could not be opened or mapped."""
        return [f for f in self.files if f.error]


def log_files(path: str | Path) -> list[Path]:
    """The log files at ``path``: the file itself, or every ``*.fswlog`` of a directory, sorted by name.

    Raises :class:`ConfigError` if ``path`` does not exist or a directory holds no log file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(LOG_SUFFIX) and p.is_file())
        if not files:
            msg = f"{path}: no {LOG_SUFFIX} files in this directory"
            raise ConfigError(msg)
        return files
    if path.is_file():
        return [path]
    msg = f"{path}: no such log file or directory"
    raise ConfigError(msg)


class LogReader(Resource):
    """Reads the records of a log file, or of every log file of a directory in name order.

    Iterating yields :class:`LogHeader` and :class:`BusRecord` objects in file order;
    ``stats`` accounts for every byte read so far (complete once iteration has ended).
    Iterating again starts over (and resets ``stats``). File content never raises;
    a file that cannot be opened is reported in ``stats`` and skipped. The constructor
    raises :class:`ConfigError` if ``path`` holds no log. One file is open at a time,
    during iteration; ``close()`` (idempotent) releases it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files: tuple[Path, ...] = tuple(log_files(self.path))
        self.stats = ReadStats()
        self._iteration: Generator[Record, None, None] | None = None

    def __iter__(self) -> Iterator[Record]:
        self.close()
        self.stats = ReadStats()
        self._iteration = self._records()
        return self._iteration

    def _records(self) -> Generator[Record, None, None]:
        for path in self.files:
            report = FileReport(path)
            self.stats.files.append(report)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                report.error = f"cannot open: {exc.strerror}"
                continue
            try:
                size = os.fstat(fd).st_size
                if size == 0:
                    continue
                with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
                    for _, record in scan(mapped, report.counts):
                        if isinstance(record, LogHeader):
                            report.headers += 1
                        yield record
            except (OSError, ValueError) as exc:
                report.error = f"cannot read: {exc}"
            finally:
                os.close(fd)

    def close(self) -> None:
        """Stop an iteration in progress and close its file. Idempotent."""
        if self._iteration is not None:
            self._iteration.close()
            self._iteration = None


# --- selecting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which bus records to take: topic prefixes, a mission-time window, malformed or not.

    Times are compared with the *mission clock*: the highest mission time recorded so
    far in the log (records of processes that carry no mission time, such as the
    supervisor's, do not move it back). It restarts with a header of another run.
    ``since_s`` is inclusive, ``until_s`` inclusive; ``None`` means unbounded.
    """

    topics: tuple[bytes, ...] = (b"",)
    since_s: float | None = None
    until_s: float | None = None
    include_malformed: bool = False

    def matches(self, record: BusRecord, mission_clock_s: float) -> bool:
        """Whether ``record``, seen at ``mission_clock_s``, is selected."""
        if not record.ok and not self.include_malformed:
            return False
        if self.since_s is not None and mission_clock_s < self.since_s:
            return False
        if self.until_s is not None and mission_clock_s > self.until_s:
            return False
        return record.topic.startswith(self.topics) if self.topics else False


@dataclass
class Selected:
    """One selected bus record with its mission clock and run segment (0, 1, ... per run)."""

    record: BusRecord
    mission_clock_s: float
    segment: int


@dataclass
class SelectionCounts:
    """What :func:`select` took and left."""

    records: int = 0
    selected: int = 0
    malformed_skipped: int = 0
    filtered_out: int = 0
    headers: list[LogHeader] = field(default_factory=list)


def select(
    records: Iterable[Record], selection: Selection, counts: SelectionCounts | None = None
) -> Iterator[Selected]:
    """Yield the bus records ``selection`` takes, in log order, with their mission clock.

    Headers are collected into ``counts.headers`` (one per file).
    """
    c = counts if counts is not None else SelectionCounts()
    clock_s = -math.inf
    segment = -1
    run_id: str | None = None
    for record in records:
        if isinstance(record, LogHeader):
            c.headers.append(record)
            if record.run_id != run_id:
                run_id = record.run_id
                segment += 1
                clock_s = -math.inf
            continue
        c.records += 1
        segment = max(segment, 0)
        if math.isfinite(record.t_s):
            clock_s = max(clock_s, record.t_s)
        mission_clock_s = clock_s if math.isfinite(clock_s) else 0.0
        if selection.matches(record, mission_clock_s):
            c.selected += 1
            yield Selected(record, mission_clock_s, segment)
        elif not record.ok and not selection.include_malformed:
            c.malformed_skipped += 1
        else:
            c.filtered_out += 1


# --- writing --------------------------------------------------------------------------


@dataclass
class WriterStats:
    """What a :class:`LogWriter` did. ``bytes`` counts headers too; ``records`` bus records only."""

    records: int = 0
    bytes: int = 0
    files: int = 0
    fsyncs: int = 0
    write_errors: int = 0
    records_lost: int = 0


def file_name(run_id: str, index: int) -> str:
    """Name of file ``index`` of run ``run_id``: ``<run_id>-<index:05d>.fswlog``."""
    return f"{run_id}-{index:05d}{LOG_SUFFIX}"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _BackgroundSync:
    """fsyncs a file off the caller's thread, one request at a time.

    :meth:`request` hands over a duplicate of the descriptor, so the caller may close or
    rotate its file meanwhile. The outcome of each fsync is kept for the caller to pick up
    (:meth:`take_error`). ``close()`` (idempotent) stops the thread within its deadline.
    """

    def __init__(self) -> None:
        self.fsyncs = 0
        self._error: OSError | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._requests: queue.Queue[int | None] = queue.Queue(maxsize=1)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-fsync", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether an fsync is in flight."""
        return not self._idle.is_set()

    def request(self, fd: int) -> bool:
        """Start an fsync of ``fd``'s file; ``False`` if one is still in flight. Raises :class:`OSError`."""
        if self.busy or self._closed:
            return False
        duplicate = os.dup(fd)
        self._idle.clear()
        self._requests.put_nowait(duplicate)
        return True

    def _run(self) -> None:
        while True:
            fd = self._requests.get()
            if fd is None:
                return
            try:
                os.fsync(fd)
                self.fsyncs += 1
            except OSError as exc:
                self._error = exc
            finally:
                os.close(fd)
                self._idle.set()

    def take_error(self) -> OSError | None:
        """The error of a finished fsync, once."""
        error, self._error = self._error, None
        return error

    def wait(self, timeout_s: float) -> bool:
        """Block until no fsync is in flight, at most ``timeout_s``; return whether it finished."""
        return self._idle.wait(timeout_s)

    def close(self, timeout_s: float = BACKGROUND_CLOSE_TIMEOUT_S) -> None:
        """Let the fsync in flight finish (at most ``timeout_s``) and stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._idle.wait(timeout_s)
        with contextlib.suppress(queue.Full):
            self._requests.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)


class LogWriter(Resource):
    """Appends records to ``<directory>/<run_id>-<index:05d>.fswlog``, rotating and fsyncing.

    A new writer never appends to an existing file: it starts at the index after the
    highest one of ``run_id`` in ``directory`` (so a restarted recorder leaves the torn
    tail of its predecessor alone). A file is rotated before a record would take it past
    ``max_file_bytes`` (a record larger than that gets a file of its own). Every file
    starts with a :class:`LogHeader`.

    fsync policies: ``always`` (each record is on disk when :meth:`write` returns),
    ``interval`` (records reach the disk at most ``fsync_interval_s`` of wall time after
    they were written, if :meth:`sync_if_due` or :meth:`write` is called; see
    :meth:`next_sync_due_s`), ``never`` (the kernel decides; :meth:`close` still
    flushes). A kill -9 or power cut loses at most the records not yet synced, and
    never damages records synced before. With ``background_sync`` the interval fsyncs run
    on a thread of the writer's own, so a slow disk never stalls the caller (a process
    reading the bus); an fsync still in flight when the next is due delays that one.

    Disk errors raise :class:`OSError`; the file in use is then abandoned (its buffered
    records counted in ``stats.records_lost``) and the next write starts a new file.
    Wall time for fsync intervals comes from ``time``; the Unix time stamped into
    records from ``wall_clock``. Not thread-safe. ``close()`` is idempotent.

    Raises :class:`ConfigError` for bad options and :class:`OSError` if the first file
    cannot be created.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        base: str,
        run_id: str,
        deployment_text: str = "",
        fsync: str = "interval",
        fsync_interval_s: float = 1.0,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        time: TimeSource | None = None,
        wall_clock: Callable[[], float] = time_module.time,
        background_sync: bool = False,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            msg = f"fsync policy {fsync!r} must be one of {', '.join(FSYNC_POLICIES)}"
            raise ConfigError(msg)
        if not (fsync_interval_s > 0 and math.isfinite(fsync_interval_s)):
            msg = f"fsync_interval_s = {fsync_interval_s!r} must be a positive number of seconds"
            raise ConfigError(msg)
        if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int):
            msg = f"max_file_bytes = {max_file_bytes!r} must be an integer"
            raise ConfigError(msg)
        if max_file_bytes < MIN_FILE_BYTES:
            msg = f"max_file_bytes = {max_file_bytes} must be at least {MIN_FILE_BYTES}"
            raise ConfigError(msg)
        if not _RUN_ID.match(run_id):
            msg = f"run id {run_id!r} must be 1-64 letters, digits, '-' or '_'"
            raise ConfigError(msg)
        self.directory = Path(directory)
        self.base = base
        self.run_id = run_id
        self.deployment_text = deployment_text
        self.fsync = fsync
        self.fsync_interval_s = float(fsync_interval_s)
        self.max_file_bytes = max_file_bytes
        self.stats = WriterStats()
        self.path: Path | None = None
        self._time = time or MonotonicTime()
        self._wall_clock = wall_clock
        self._packer = msgpack.Packer(use_bin_type=True)
        self._buffer = bytearray()
        self._buffered_records = 0
        self._fd: int | None = None
        self._index = -1
        self._file_bytes = 0
        self._file_records = 0
        self._unsynced = False
        self._last_sync_s = self._time.now_s()
        self._closed = False
        self._syncer: _BackgroundSync | None = None
        self._fsyncs_here = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        self._index = self._highest_index()
        self._open_next()
        if background_sync and fsync == "interval":
            self._syncer = _BackgroundSync()

    # ----------------------------------------------------------------- files

    def _highest_index(self) -> int:
        highest = -1
        for path in self.directory.iterdir():
            match = _FILE_NAME.match(path.name)
            if match and match.group("run") == self.run_id:
                highest = max(highest, int(match.group("index")))
        return highest

    def _open_next(self) -> None:
        """Create the next file and write its header. Raises :class:`OSError` (counted)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd: int | None = None
        path = self.directory
        try:
            for _ in range(_MAX_CREATE_ATTEMPTS):
                self._index += 1
                path = self.directory / file_name(self.run_id, self._index)
                try:
                    fd = os.open(path, flags, 0o644)
                except FileExistsError:
                    continue
                break
        except OSError:
            self.stats.write_errors += 1
            raise
        if fd is None:
            self.stats.write_errors += 1
            msg = f"{self.directory}: no free log file name for run {self.run_id}"
            raise FileExistsError(msg)
        self._fd = fd
        self.path = path
        self.stats.files += 1
        self._file_bytes = 0
        self._file_records = 0
        header = LogHeader(
            base=self.base,
            run_id=self.run_id,
            file_index=self._index,
            created_unix_s=self._wall_clock(),
            deployment=self.deployment_text,
        )
        try:
            data = encode_record(header)
        except CodecError:
            # A deployment text too large for one record: keep the header, drop the text.
            data = encode_record(
                LogHeader(header.base, header.run_id, header.file_index, header.created_unix_s)
            )
        self._append(data)
        if self.fsync != "never":
            self.sync()
            # Make the new name itself durable; some file systems cannot fsync a directory.
            with contextlib.suppress(OSError):
                _fsync_directory(self.directory)

    def _abandon(self) -> None:
        """Give up the current file after a disk error: drop its buffer, close it."""
        self.stats.write_errors += 1
        self.stats.records_lost += self._buffered_records
        self._buffer.clear()
        self._buffered_records = 0
        self._unsynced = False
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # ----------------------------------------------------------------- writing

    def _append(self, data: bytes) -> None:
        self._buffer += data
        self._file_bytes += len(data)
        self.stats.bytes += len(data)
        self._unsynced = True

    def write(self, record: BusRecord) -> None:
        """Append one bus record (see :meth:`write_bus`)."""
        self.write_bus(
            record.topic,
            record.body,
            t_s=record.t_s,
            ok=record.ok,
            wall_unix_s=record.wall_unix_s,
            frames=record.frames,
        )

    def write_bus(
        self,
        topic: bytes,
        body: bytes,
        *,
        t_s: float,
        ok: bool,
        wall_unix_s: float | None = None,
        frames: Sequence[bytes] | None = None,
    ) -> None:
        """Append one bus record; ``wall_unix_s`` defaults to now.

        Blocks only for the disk: at most one write of the buffer, plus an fsync when
        the policy says so. Raises :class:`CodecError` if the record is too large
        (nothing is written), :class:`OSError` on a disk error, and
        :class:`ValueError` once closed.
        """
        if self._closed:
            msg = f"log writer of {self.directory} is closed"
            raise ValueError(msg)
        if self._syncer is not None:
            self._check_background()
        raw: dict[str, Any] = {
            "k": "bus",
            "t": float(t_s),
            "w": self._wall_clock() if wall_unix_s is None else float(wall_unix_s),
            "topic": topic,
            "body": body,
            "ok": ok,
        }
        if frames is not None:
            raw["frames"] = list(frames)
        try:
            payload = self._packer.pack(raw)
        except (TypeError, ValueError, OverflowError) as exc:
            self._packer.reset()
            msg = f"cannot encode bus record: {exc}"
            raise CodecError(msg) from exc
        if len(payload) > MAX_PAYLOAD_BYTES:
            msg = f"bus record of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
            raise CodecError(msg)
        data = _FRAMING.pack(SYNC_MARKER, len(payload), zlib.crc32(payload)) + payload
        if self._fd is None:
            self._open_next()
        elif self._file_records and self._file_bytes + len(data) > self.max_file_bytes:
            self._rotate()
        self._append(data)
        self._buffered_records += 1
        self._file_records += 1
        self.stats.records += 1
        if self.fsync == "always":
            self.sync()
            return
        if len(self._buffer) >= WRITE_BUFFER_BYTES:
            self.flush()
        if self.fsync == "interval" and self._time.now_s() - self._last_sync_s >= self.fsync_interval_s:
            self._interval_sync()

    def _finish_file(self) -> None:
        """Flush (``never``) or sync the current file, then close it whatever happens."""
        try:
            if self.fsync == "never":
                self.flush()
            else:
                self.sync()
        finally:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None

    def _rotate(self) -> None:
        self._finish_file()
        self._open_next()

    def flush(self) -> None:
        """Hand the buffered records to the kernel (they then survive a kill -9, not a power cut).

        Raises :class:`OSError` on a disk error (the file is then abandoned).
        """
        if not self._buffer or self._fd is None:
            return
        data = bytes(self._buffer)
        try:
            written = os.write(self._fd, data)
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError:
            self._abandon()
            raise
        self._buffer.clear()
        self._buffered_records = 0

    def sync(self) -> None:
        """Flush and fsync now, whatever the policy: every record written so far is on disk.

        Raises :class:`OSError` on a disk error (the file is then abandoned).
        """
        if self._syncer is not None:
            self._check_background()
        self.flush()
        if self._fd is None or not self._unsynced:
            return
        self._sync_now()

    def _interval_sync(self) -> None:
        """The interval policy's sync: on the background thread if there is one."""
        if self._syncer is None:
            self.sync()
            return
        self._check_background()
        self.flush()
        if self._fd is None or not self._unsynced:
            return
        try:
            started = self._syncer.request(self._fd)
        except OSError:
            self._abandon()
            raise
        if started:
            self._unsynced = False
            self._last_sync_s = self._time.now_s()

    def _check_background(self) -> None:
        """Take the outcome of background fsyncs: count them, raise the error of a failed one."""
        syncer = self._syncer
        if syncer is None:
            return
        self.stats.fsyncs = self._fsyncs_here + syncer.fsyncs
        error = syncer.take_error()
        if error is not None:
            self._abandon()
            raise error

    def _sync_now(self) -> None:
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError:
            self._abandon()
            raise
        self._fsyncs_here += 1
        self.stats.fsyncs = self._fsyncs_here + (self._syncer.fsyncs if self._syncer is not None else 0)
        self._unsynced = False
        self._last_sync_s = self._time.now_s()

    def next_sync_due_s(self) -> float | None:
        """When (``time`` seconds) :meth:`sync_if_due` has work to do; ``None`` if it has none."""
        if self.fsync == "interval" and self._unsynced and self._fd is not None:
            due_s = self._last_sync_s + self.fsync_interval_s
            if self._syncer is not None and self._syncer.busy:
                due_s = max(due_s, self._time.now_s() + BACKGROUND_RETRY_S)
            return due_s
        if self.fsync == "never" and self._buffer:
            return self._last_sync_s + self.fsync_interval_s
        return None

    def sync_if_due(self) -> None:
        """Sync (``interval``) or flush (``never``) if :meth:`next_sync_due_s` has come.

        Raises :class:`OSError` on a disk error (the file is then abandoned).
        """
        due = self.next_sync_due_s()
        if self._syncer is not None:
            self._check_background()
        if due is None or self._time.now_s() < due:
            return
        if self.fsync == "interval":
            self._interval_sync()
        else:
            self.flush()
            self._last_sync_s = self._time.now_s()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Flush, fsync (unless the policy is ``never``) and close the file. Idempotent.

        Raises :class:`OSError` if the last flush fails; the file is closed anyway.
        """
        if self._closed:
            return
        self._closed = True
        try:
            try:
                if self._syncer is not None:
                    self._syncer.wait(BACKGROUND_CLOSE_TIMEOUT_S)
            finally:
                self._finish_file()
        finally:
            if self._syncer is not None:
                self._syncer.close()
                self.stats.fsyncs = self._fsyncs_here + self._syncer.fsyncs


__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "FORMAT_VERSION",
    "FSYNC_POLICIES",
    "LOG_SUFFIX",
    "MAX_PAYLOAD_BYTES",
    "MAX_RECORD_BYTES",
    "MIN_FILE_BYTES",
    "RECORD_HEADER_BYTES",
    "SKIP_REASONS",
    "SYNC_MARKER",
    "BusRecord",
    "FileReport",
    "LogHeader",
    "LogReader",
    "LogWriter",
    "ReadStats",
    "Record",
    "ScanCounts",
    "Selected",
    "Selection",
    "SelectionCounts",
    "WriterStats",
    "decode_payload",
    "decode_record",
    "encode_payload",
    "encode_record",
    "file_name",
    "frame_payload",
    "log_files",
    "scan",
    "select",
]
