"""The recorder process: every frame on the bus, raw, into an append-only log.

:class:`Recorder` is a flight process (a lockstep participant without a board) that
subscribes to everything (prefix ``b""``) and writes each message it receives, as
received, into a log of ``hil.recording``: valid messages with their mission time,
malformed ones too, flagged (``ok`` false, the last known mission time). It handles
its own ticks and heartbeat echo exactly as the runtime does, so it joins the clock and
reports its frames: in a simulated run frame 0 goes out only once the recorder has
joined (the recording starts at frame 0), and the clock waits for the recorder on its
due frames (every control and housekeeping period, by default every second of mission
time), so the base never runs more than that ahead of its recording. The log's fsyncs
run on a thread of the writer's own: a slow disk does not stall the bus loop.

Deployment (``fsw up --record DIR`` adds the same)::

    [processes.recorder]
    entry = "hil.recorder:Recorder"
    [processes.recorder.params]
    dir = "recordings"             # default: <state_dir>/recordings
    fsync = "interval"             # always | interval | never
    fsync_interval_s = 1.0         # wall seconds between two fsyncs (interval)
    max_file_bytes = 67108864      # rotate at this size
    topics = ["tlm.power.hk"]      # topic prefixes to record (default [""]: everything)

A disk error never stops the base: it is counted (``write_errors``), reported as a
``recording_error`` event, and the frames that arrive until the next attempt (once per
:data:`RETRY_INTERVAL_S` of wall time) are counted as dropped. :class:`BusTap` is that
logic without the process around it; ``fsw record`` uses it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from fsw import run as run_module
from fsw.bus import MALFORMED_EVENT_INTERVAL_S, covers, receive_frames
from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import ArgType, CommandDef, Dictionary, EventDef, Point, Severity
from fsw.errors import CodecError, CommandRejected, ConfigError, FswError
from fsw.messages import Kind, Message, decode
from fsw.process import FlightProcess
from fsw.run import RunOptions
from fsw.timesource import TimeSource
from hil.recording import DEFAULT_MAX_FILE_BYTES, FSYNC_POLICIES, MIN_FILE_BYTES, LogWriter

#: Wall seconds between two attempts to write again after a disk error.
RETRY_INTERVAL_S: Final = 1.0

#: Most messages recorded in one pass before the loop looks at its other sockets.
RECORDER_BATCH: Final = 1000

#: Most messages recorded from the subscriber's queue when stopping.
MAX_DRAIN_ON_STOP: Final = 100_000

#: Longest topic prefix the ``topics`` parameter accepts.
MAX_TOPIC_PREFIX_CHARS: Final = 200

#: Streams (source, kind) whose sequence numbers are followed for loss; more are not followed.
MAX_STREAMS: Final = 10_000


@dataclass
class TapStats:
    """What a :class:`BusTap` saw and did with it."""

    received: int = 0
    recorded: int = 0
    malformed: int = 0
    dropped: int = 0
    oversize: int = 0
    open_errors: int = 0
    last_error: str = ""


class BusTap:
    """Records raw bus messages into a log; survives disk errors.

    ``open_writer`` makes the :class:`~hil.recording.LogWriter` (it may raise
    :class:`OSError` or :class:`ConfigError`; it is then tried again every
    ``retry_interval_s``). Each message
    is checked with :func:`fsw.messages.decode` and recorded with its mission time, or
    flagged malformed with the last known mission time (that of the last tick).
    ``on_error(text)`` is called when recording starts failing, ``on_resume(text)``
    when it works again. Never raises :class:`OSError`. Not thread-safe.
    """

    def __init__(
        self,
        open_writer: Callable[[], LogWriter],
        *,
        time: TimeSource,
        retry_interval_s: float = RETRY_INTERVAL_S,
        on_error: Callable[[str], None] | None = None,
        on_resume: Callable[[str], None] | None = None,
        topics: tuple[bytes, ...] = (b"",),
    ) -> None:
        self.stats = TapStats()
        #: Topic prefixes written to the log; other messages are decoded (for the mission
        #: time) but not kept.
        self.topics = topics
        self.writer: LogWriter | None = None
        self.mission_time_s = 0.0
        self._open_writer = open_writer
        self._time = time
        self._retry_interval_s = retry_interval_s
        self._on_error = on_error
        self._on_resume = on_resume
        self._failing = False
        self._retry_at_s = 0.0
        self._closed = False

    @property
    def failing(self) -> bool:
        """Whether the last attempt to write failed (frames are being dropped)."""
        return self._failing

    def open(self) -> bool:
        """Make the writer now if there is none; return whether there is one."""
        if self.writer is None:
            try:
                self.writer = self._open_writer()
            except OSError as exc:
                self.stats.open_errors += 1
                self._fail(f"cannot start a log: {exc}")
                return False
            except ConfigError as exc:
                self.stats.open_errors += 1
                self._fail(f"not recording: {exc}")
                return False
        return True

    def record(self, frames: list[bytes]) -> tuple[Message | None, str]:
        """Record one received message (its frames); return it decoded, or ``None`` and why not."""
        self.stats.received += 1
        message: Message | None = None
        reason = ""
        extra: list[bytes] | None = None
        if len(frames) == 2:
            topic, body = frames
            try:
                message = decode(topic, body)
            except CodecError as exc:
                reason = str(exc)
        else:
            topic = frames[0] if frames else b""
            body = frames[1] if len(frames) > 1 else b""
            extra = frames
            reason = f"message has {len(frames)} frames, expected 2 (topic, body)"
        if message is None:
            self.stats.malformed += 1
            t_s = self.mission_time_s
        else:
            t_s = message.t_s
            if message.kind is Kind.TICK:
                self.mission_time_s = t_s
        if topic.startswith(self.topics):
            self._write(topic, body, t_s, message is not None, extra)
        return message, reason

    def _write(self, topic: bytes, body: bytes, t_s: float, ok: bool, frames: list[bytes] | None) -> None:
        writer = self.writer
        if writer is None or self._failing:
            if self._closed or self._time.now_s() < self._retry_at_s or not self.open():
                self.stats.dropped += 1
                return
            writer = self.writer
            if writer is None:
                self.stats.dropped += 1
                return
        try:
            writer.write_bus(topic, body, t_s=t_s, ok=ok, frames=frames)
        except CodecError:
            self.stats.oversize += 1
            self.stats.dropped += 1
            return
        except (OSError, ValueError) as exc:
            self.stats.dropped += 1
            self._fail(f"cannot write {writer.directory}: {exc}")
            return
        self.stats.recorded += 1
        if self._failing:
            self._failing = False
            if self._on_resume is not None:
                self._on_resume(str(writer.path))

    def _fail(self, text: str) -> None:
        self.stats.last_error = text
        self._retry_at_s = self._time.now_s() + self._retry_interval_s
        if not self._failing:
            self._failing = True
            if self._on_error is not None:
                self._on_error(text)

    def next_timer_s(self) -> float | None:
        """When (``time`` seconds) :meth:`on_timer` has work: an interval sync or flush."""
        if self.writer is None or self._failing:
            return None
        return self.writer.next_sync_due_s()

    def on_timer(self) -> None:
        """Sync or flush the log if its policy says it is time."""
        if self.writer is None:
            return
        try:
            self.writer.sync_if_due()
        except OSError as exc:
            self._fail(f"cannot sync {self.writer.directory}: {exc}")

    def sync(self) -> bool:
        """Flush and fsync every record written so far; return whether that worked."""
        if self.writer is None or self.writer.closed:
            return False
        try:
            self.writer.sync()
        except OSError as exc:
            self._fail(f"cannot sync {self.writer.directory}: {exc}")
            return False
        return not self._failing

    @property
    def records_lost(self) -> int:
        """Frames not in the log: dropped here, or accepted and then lost to a disk error."""
        lost = self.writer.stats.records_lost if self.writer is not None else 0
        return self.stats.dropped + lost

    def close(self) -> None:
        """Flush, fsync (per policy) and close the log. Idempotent; never raises :class:`OSError`."""
        if self._closed:
            return
        self._closed = True
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError as exc:
                self._fail(f"cannot close {self.writer.directory}: {exc}")


@dataclass(frozen=True)
class RecorderSettings:
    """The recorder's parameters, checked."""

    directory: Path
    fsync: str = "interval"
    fsync_interval_s: float = 1.0
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    topics: tuple[str, ...] = ("",)


def recorder_settings(params: Mapping[str, Any], default_dir: Path, where: str) -> RecorderSettings:
    """Check the recorder's ``params``; raises :class:`ConfigError` naming ``where`` and the key."""
    unknown = sorted(set(params) - {"dir", "fsync", "fsync_interval_s", "max_file_bytes", "topics"})
    if unknown:
        msg = f"[{where}] unknown parameter(s) {', '.join(unknown)}"
        raise ConfigError(msg)
    directory = params.get("dir", "")
    if not isinstance(directory, str):
        msg = f"[{where}] dir = {directory!r} must be a directory path"
        raise ConfigError(msg)
    fsync = params.get("fsync", "interval")
    if fsync not in FSYNC_POLICIES:
        msg = f"[{where}] fsync = {fsync!r} must be one of {', '.join(FSYNC_POLICIES)}"
        raise ConfigError(msg)
    interval_s = params.get("fsync_interval_s", 1.0)
    if (
        isinstance(interval_s, bool)
        or not isinstance(interval_s, (int, float))
        or not (interval_s > 0 and math.isfinite(interval_s))
    ):
        msg = f"[{where}] fsync_interval_s = {interval_s!r} must be a positive number of seconds"
        raise ConfigError(msg)
    max_file_bytes = params.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)
    if (
        isinstance(max_file_bytes, bool)
        or not isinstance(max_file_bytes, int)
        or max_file_bytes < MIN_FILE_BYTES
    ):
        msg = f"[{where}] max_file_bytes = {max_file_bytes!r} must be an integer of at least {MIN_FILE_BYTES}"
        raise ConfigError(msg)
    topics = params.get("topics", [""])
    if (
        not isinstance(topics, list)
        or not topics
        or not all(isinstance(t, str) and len(t) <= MAX_TOPIC_PREFIX_CHARS for t in topics)
    ):
        msg = f"[{where}] topics = {topics!r} must be a non-empty list of topic prefixes (strings)"
        raise ConfigError(msg)
    return RecorderSettings(
        directory=Path(directory).expanduser() if directory else default_dir,
        fsync=str(fsync),
        fsync_interval_s=float(interval_s),
        max_file_bytes=max_file_bytes,
        topics=tuple(topics),
    )


class SequenceWatch:
    """Counts messages lost on the way in from gaps in each (source, kind) stream's sequence numbers.

    Follows at most ``max_streams`` streams (memory stays bounded whatever arrives), and
    only the streams a subscription to ``prefixes`` takes whole (``tlm.power.`` takes the
    power telemetry stream; ``tlm.power.hk`` takes part of it, whose gaps are not losses).
    """

    def __init__(self, max_streams: int = MAX_STREAMS, prefixes: tuple[bytes, ...] = (b"",)) -> None:
        self.lost = 0
        self.source_restarts = 0
        self._max_streams = max_streams
        self._prefixes = prefixes
        self._last_seq: dict[tuple[str, str], int] = {}
        self._covered: dict[tuple[str, str], bool] = {}

    def account(self, message: Message) -> int:
        """Take ``message`` into account; return how many messages of its stream went missing before it."""
        stream = (message.source, message.kind.value)
        covered = self._covered.get(stream)
        if covered is None:
            covered = covers(self._prefixes, message.kind.value, message.source)
            if len(self._covered) < self._max_streams:
                self._covered[stream] = covered
        if not covered:
            return 0
        last = self._last_seq.get(stream)
        if last is None:
            if len(self._last_seq) < self._max_streams:
                self._last_seq[stream] = message.seq
            return 0
        self._last_seq[stream] = message.seq
        if message.seq > last + 1:
            gap = message.seq - last - 1
            self.lost += gap
            return gap
        if message.seq <= last:
            self.source_restarts += 1
        return 0


class Recorder(FlightProcess):
    """Records every frame on the bus into ``hil.recording`` log files."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("records_written", ArgType.INT, description="Bus messages written to the log."),
            Point("bytes_written", ArgType.INT, "B", "Bytes written to the log, headers included."),
            Point("files", ArgType.INT, description="Log files started."),
            Point("fsyncs", ArgType.INT, description="fsync calls on the log."),
            Point("write_errors", ArgType.INT, description="Disk errors (open, write, fsync)."),
            Point("records_dropped", ArgType.INT, description="Messages received but not in the log."),
            Point("malformed_recorded", ArgType.INT, description="Malformed frames recorded, flagged."),
            Point("log_file", ArgType.STR, description="Name of the file being written."),
        ),
        events=(
            EventDef("recording_started", Severity.INFO, "The recorder writes its log."),
            EventDef("recording_error", Severity.ERROR, "The log cannot be written; messages are dropped."),
            EventDef("recording_resumed", Severity.INFO, "The log is written again after an error."),
        ),
        commands=(CommandDef("flush", description="Write every message received so far to disk (fsync)."),),
    )

    def __init__(
        self,
        deployment: Deployment,
        spec: ProcessSpec,
        options: RunOptions,
        *,
        time: TimeSource | None = None,
    ) -> None:
        super().__init__(deployment, spec, options, time=time)
        # A bad parameter is reported (recording_error) and nothing is recorded; the base runs on.
        self.settings: RecorderSettings | None = None
        self._settings_error = ""
        try:
            self.settings = recorder_settings(
                spec.params, deployment.state_dir / "recordings", f"processes.{spec.name}.params"
            )
        except ConfigError as exc:
            self._settings_error = f"{deployment.source}: {exc}"
        self.tap: BusTap | None = None
        #: The topic prefixes it records (``topics``; everything while its settings are bad).
        self.topics = tuple(
            t.encode() for t in (self.settings.topics if self.settings is not None else ("",))
        )
        self._sequences = SequenceWatch(prefixes=self.topics)
        self._malformed_reported = 0
        self._malformed_event_at_s = -MALFORMED_EVENT_INTERVAL_S
        self._error_to_report = ""

    def extra_subscriptions(self) -> tuple[bytes, ...]:
        """The ``topics`` prefixes: everything by default."""
        return self.topics

    def _deployment_text(self) -> str:
        try:
            return (self.deployment.run_dir / run_module.DEPLOYMENT_FILE).read_text(encoding="utf-8")
        except OSError:
            return ""

    @property
    def _directory_text(self) -> str:
        return str(self.settings.directory) if self.settings is not None else ""

    def _open_writer(self) -> LogWriter:
        if self.settings is None:
            raise ConfigError(self._settings_error)
        return LogWriter(
            self.settings.directory,
            base=self.deployment.name,
            run_id=self.options.run_id,
            deployment_text=self._deployment_text(),
            fsync=self.settings.fsync,
            fsync_interval_s=self.settings.fsync_interval_s,
            max_file_bytes=self.settings.max_file_bytes,
            time=self.time,
            background_sync=True,
        )

    def setup(self) -> None:
        """Start the log (a failure is reported once joined, and retried)."""
        super().setup()
        self.tap = BusTap(
            self._open_writer,
            time=self.time,
            on_error=self._on_record_error,
            on_resume=self._on_resume,
            topics=self.topics,
        )
        self.tap.open()

    def on_joined(self) -> None:
        """Say where the log goes (or why it cannot)."""
        if self.tap is None:
            return
        if self.tap.writer is not None and not self.tap.failing and self.settings is not None:
            self.event(
                "recording_started",
                dir=self._directory_text,
                file=self.tap.writer.path.name if self.tap.writer.path else "",
                fsync=self.settings.fsync,
            )
        elif self._error_to_report:
            self.event("recording_error", error=self._error_to_report[:200], dir=self._directory_text)

    def _on_record_error(self, text: str) -> None:
        self.log.error("recording_error", error=text)
        if self._joined:
            self.event("recording_error", error=text[:200], dir=self._directory_text)
        else:
            self._error_to_report = text

    def _on_resume(self, path: str) -> None:
        dropped = self.tap.records_lost if self.tap is not None else 0
        self.event("recording_resumed", file=Path(path).name, records_dropped=dropped)

    # ----------------------------------------------------------------- the bus, raw

    def _on_bus(self) -> None:
        """Record every frame as received, then handle it as the runtime does."""
        bus, tap = self.bus, self.tap
        if bus is None or tap is None:
            super()._on_bus()
            return
        for _ in range(RECORDER_BATCH):
            frames = receive_frames(bus.subscriber)
            if frames is None:
                return
            message, reason = tap.record(frames)
            if message is None:
                self._malformed(reason)
                continue
            bus.stats.received += 1
            self._account(message)
            self._handle(message)

    def _account(self, message: Message) -> None:
        """Count messages lost on the way in (sequence gaps) in the bus counters."""
        if self.bus is None:
            return
        restarts = self._sequences.source_restarts
        self.bus.stats.lost += self._sequences.account(message)
        self.bus.stats.source_restarts += self._sequences.source_restarts - restarts

    def _malformed(self, reason: str) -> None:
        """Count a malformed frame (it is recorded, flagged) and report at most once a second."""
        if self.bus is None:
            return
        stats = self.bus.stats
        stats.malformed += 1
        stats.last_malformed = reason
        now_s = self.time.now_s()
        if now_s - self._malformed_event_at_s >= MALFORMED_EVENT_INTERVAL_S:
            count = stats.malformed - self._malformed_reported
            self._malformed_reported = stats.malformed
            self._malformed_event_at_s = now_s
            self.event("malformed_frame", count=count, reason=reason[:200])

    # ----------------------------------------------------------------- time, telemetry, stop

    def next_timer_s(self) -> float | None:
        """The log's next interval sync."""
        return self.tap.next_timer_s() if self.tap is not None else None

    def on_timer(self) -> None:
        """Sync the log if due."""
        if self.tap is not None:
            self.tap.on_timer()

    def housekeeping(self) -> dict[str, Any]:
        """Log counters."""
        tap = self.tap
        writer = tap.writer if tap is not None else None
        stats = writer.stats if writer is not None else None
        return {
            "records_written": tap.stats.recorded if tap is not None else 0,
            "bytes_written": stats.bytes if stats is not None else 0,
            "files": stats.files if stats is not None else 0,
            "fsyncs": stats.fsyncs if stats is not None else 0,
            "write_errors": (stats.write_errors if stats is not None else 0)
            + (tap.stats.open_errors if tap is not None else 0),
            "records_dropped": tap.records_lost if tap is not None else 0,
            "malformed_recorded": tap.stats.malformed if tap is not None else 0,
            "log_file": writer.path.name if writer is not None and writer.path is not None else "",
        }

    def heartbeat_data(self) -> dict[str, Any]:
        """Records written and dropped, for ``fsw status`` watchers."""
        if self.tap is None:
            return {}
        return {"records": self.tap.stats.recorded, "records_dropped": self.tap.records_lost}

    def command_flush(self) -> dict[str, Any]:
        """Write every message received so far to disk and fsync."""
        tap = self.tap
        if tap is None or tap.writer is None:
            raise CommandRejected("the recorder has no log open (see its recording_error event)")
        if not tap.sync():
            msg = f"flush failed: {tap.stats.last_error}"
            raise FswError(msg)
        path = tap.writer.path
        return {
            "file": str(path) if path is not None else "",
            "records": tap.stats.recorded,
            "bytes": tap.writer.stats.bytes,
        }

    def teardown(self) -> None:
        """Record what is already queued, then close the log (flush, fsync)."""
        try:
            tap, bus = self.tap, self.bus
            if tap is not None and bus is not None:
                for _ in range(MAX_DRAIN_ON_STOP):
                    frames = receive_frames(bus.subscriber)
                    if frames is None:
                        break
                    tap.record(frames)
            if tap is not None:
                tap.close()
        finally:
            super().teardown()


__all__ = [
    "RETRY_INTERVAL_S",
    "BusTap",
    "Recorder",
    "RecorderSettings",
    "SequenceWatch",
    "TapStats",
    "recorder_settings",
]
