"""The ``replay`` board backend: a board that serves what a recording holds.

A flight process reads its board through a tap (``fsw.board.TappedBoard``) that
publishes every sample it read (``tlm.<process>.board_sample``), every command
it sent (``board_command``), every board event it took (``board_event``) and
the board's description (``board_description``). A recording of a run
(``fsw up --record DIR``) therefore holds exactly what each flight process saw.
This backend serves it back, frame by frame, so the full flight code path runs
on recorded data::

    [processes.power]
    board = { backend = "replay", log = "recordings/anomaly" }

Options: ``log`` (a recording file or directory), ``source`` (the process
whose board to replay; defaults to ``kind``, which the runtime sets to the
process's own name). ``read()`` in frame ``t`` returns the samples recorded in
frame ``t`` in order (the last one again if flight code reads more often than
it did when recorded), or the latest earlier one; board events come out of
``poll_events()`` in the frame they were taken. Commands are checked against
the recorded description (a refused value raises :class:`BoardError` as a real
board would) and kept in :attr:`ReplayBoard.commands`, but they change
nothing: the recording is what it is. Past the end of the recording the link
is lost (:class:`BoardLinkLost`).

The log is streamed forward as frames advance, so memory does not grow with
its length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from fsw.board import (
    DEFAULT_TIMEOUT_S,
    Board,
    BoardDescription,
    BoardEvent,
    BoardStatus,
    LinkCounters,
    Sample,
    Value,
)
from fsw.errors import BoardError, BoardLinkLost, BoardUnavailable, CodecError, FswError
from fsw.messages import Kind, Message, decode
from hil.recording import BusRecord, LogReader
from hil.wire import Refusal, check_command

#: Commands kept for inspection (the oldest go first).
MAX_COMMANDS_KEPT: Final = 10_000

_PACKETS: Final = frozenset({"board_description", "board_sample", "board_event"})


class ReplayBoard(Board):
    """Serves one process's recorded board traffic; see the module docstring."""

    def __init__(
        self,
        log: str | Path,
        kind: str | None = None,
        source: str | None = None,
        run_dir: str | None = None,
        **options: Any,
    ) -> None:
        del run_dir, options  # accepted so a deployment can switch backends by one key
        self.source = source or kind
        if not self.source:
            msg = "replay board needs 'source' (or 'kind'): which process's board to replay"
            raise BoardUnavailable(msg)
        self.log = Path(log)
        self.counters = LinkCounters()
        self.commands: deque[tuple[int, str, Value]] = deque(maxlen=MAX_COMMANDS_KEPT)
        self._closed = False
        self._frame = -1
        self._reads_in_frame = 0
        self._pending: deque[Message] = deque()
        self._current: list[Sample] = []
        self._latest: Sample | None = None
        self._events: deque[BoardEvent] = deque(maxlen=1000)
        self._ended = False
        try:
            self._reader = LogReader(self.log)
            self._messages = self._stream()
        except (OSError, FswError) as exc:
            msg = f"cannot open recording {self.log}: {exc}"
            raise BoardUnavailable(msg) from exc
        self.description = self._find_description()

    # ------------------------------------------------------------------- the stream

    def _stream(self) -> Iterator[Message]:
        prefix = f"tlm.{self.source}.board_".encode()
        for record in self._reader:
            if not isinstance(record, BusRecord) or not record.ok or not record.topic.startswith(prefix):
                continue
            try:
                message = decode(record.topic, record.body)
            except CodecError:
                self.counters.frames_bad += 1
                continue
            if message.kind is Kind.TELEMETRY and message.name in _PACKETS:
                self.counters.frames_ok += 1
                yield message

    def _find_description(self) -> BoardDescription:
        for message in self._messages:
            if message.name == "board_description":
                raw = message.data.get("description")
                if isinstance(raw, dict):
                    return BoardDescription.from_map(raw)
            else:
                self._pending.append(message)
        msg = (
            f"recording {self.log} holds no board of {self.source!r} (no tlm.{self.source}.board_description)"
        )
        raise BoardUnavailable(msg)

    def _next_message(self) -> Message | None:
        if self._pending:
            return self._pending.popleft()
        return next(self._messages, None)

    def _advance(self, frame: int) -> None:
        """Take every recorded sample and event up to ``frame``; keep those of ``frame`` itself."""
        self._current = []
        while True:
            message = self._next_message()
            if message is None:
                self._ended = True
                return
            recorded = message.data.get("frame")
            if not isinstance(recorded, int):
                continue
            if recorded > frame:
                self._pending.appendleft(message)
                return
            if message.name == "board_sample":
                values = message.data.get("values")
                if isinstance(values, dict):
                    sample = Sample(float(message.data.get("board_time_s", 0.0)), values)
                    self._latest = sample
                    if recorded == frame:
                        self._current.append(sample)
            elif message.name == "board_event":
                data = message.data.get("data")
                self._events.append(
                    BoardEvent(
                        name=str(message.data.get("name", "")),
                        board_time_s=float(message.data.get("board_time_s", 0.0)),
                        severity=str(message.data.get("severity", "info")),
                        data=data if isinstance(data, dict) else {},
                    )
                )

    # ------------------------------------------------------------------- the contract

    def _check_open(self) -> None:
        if self._closed:
            msg = f"replay board of {self.source!r} is closed"
            raise BoardError(msg)

    def sync(self, frame: int, t_s: float, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Move to ``frame``: take the recorded samples and events up to it."""
        del t_s, timeout_s
        self._check_open()
        if frame <= self._frame:
            return
        self._frame = frame
        self._reads_in_frame = 0
        self._advance(frame)
        if self._ended and not self._current and not self._pending:
            self.counters.timeouts += 1
            msg = f"recording {self.log} of {self.source!r} ends before frame {frame}"
            raise BoardLinkLost(msg)

    def read(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Sample:
        """The next sample recorded in this frame, else the latest before it."""
        del timeout_s
        self._check_open()
        if self._current:
            sample = self._current[min(self._reads_in_frame, len(self._current) - 1)]
            self._reads_in_frame += 1
            return sample
        if self._latest is None:
            self.counters.timeouts += 1
            msg = f"recording of {self.source!r} has no sample at or before frame {self._frame}"
            raise BoardLinkLost(msg)
        return self._latest

    def command(self, actuator: str, value: Value, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Check ``value`` against the recorded description and keep it; it changes nothing."""
        del timeout_s
        self._check_open()
        checked = check_command(self.description, actuator, value)
        if isinstance(checked, Refusal):
            raise BoardError(checked.reason)
        self.commands.append((self._frame, actuator, checked))

    def status(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> BoardStatus:
        """Up while the recording lasts."""
        del timeout_s
        self._check_open()
        board_time_s = self._latest.board_time_s if self._latest is not None else 0.0
        return BoardStatus(link_up=not self._ended, board_time_s=board_time_s)

    def poll_events(self) -> list[BoardEvent]:
        """The board events recorded up to the current frame, once each."""
        events = list(self._events)
        self._events.clear()
        return events

    def close(self) -> None:
        """Stop reading the recording. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._reader.close()
