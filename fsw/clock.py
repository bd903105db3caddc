"""The frame clock process: mission time as a message.

The clock publishes one ``tick.clock.frame`` per minor frame (data: ``frame``,
``period_s``; the envelope's ``t`` is the mission time ``frame * period_s``) for
anyone listening. A flight process says, when it joins, every how many frames
it has work (``every``: its control cycle and housekeeping periods in frames);
on those frames the clock also publishes ``tick.clock.<process>`` for it, and
the process answers with a ``frame_done`` report on ``[bus] frames`` (a PUSH
socket straight to the clock). Frames where nobody is due cost one publish.

* **Real-time mode** (no ``--speed``): ticks are paced by the wall clock. A
  process that has not reported frame ``t`` when tick ``t + 1`` goes out is
  late; lateness per process is telemetry and the health monitor's input.
* **Simulated mode** (``--speed N`` or ``--speed max``): lockstep. The clock
  waits until every process that joined has reported frame ``t`` before it
  sends ``t + 1`` (and, at speed N, not before N times real time allows). It
  starts frame 0 only when every lockstep process of the deployment has
  joined, so a seeded run is reproducible event for event. A process that
  does not report within ``[clock] frame_timeout_s`` of wall time is counted
  late, reported as an event, and left out until it joins again.

With a duration, the clock stops after the last frame and publishes the event
``run_complete``. Its progress survives a restart: the frame reached is kept
in ``<state_dir>/clock.json`` for the same run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time as time_module
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import zmq

from fsw.bus import LINGER_MS, connect, send_frames, unpack_body
from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import ArgType, Dictionary, EventDef, Point, Severity
from fsw.errors import CodecError
from fsw.messages import Kind, Message, Sequencer, encode
from fsw.process import Process
from fsw.run import RunOptions
from fsw.timesource import TimeSource

#: Wall seconds between two saves of the clock's progress.
SAVE_PERIOD_S: Final = 1.0


@dataclass
class Participant:
    """What the clock knows of one process that reports frames."""

    name: str
    joined: bool = False
    last_done: int = -1
    late_frames: int = 0
    missed_frames: int = 0
    every: tuple[int, ...] = (1,)

    def due(self, frame: int) -> bool:
        """Whether the participant has work in ``frame``."""
        return any(frame % n == 0 for n in self.every)


#: Topic prefix of the ticks sent to each participant (``tick.clock.<name>``).
TICK_PREFIX: Final = b"tick.clock."


class FrameClock(Process):
    """Publishes ticks; in lockstep, waits for every participant between them."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("frames_per_s", ArgType.FLOAT, "1/s", "Frames completed per wall second."),
            Point("state", ArgType.STR, description="waiting, running or finished."),
            Point("late", ArgType.INT, description="Late frame reports, all processes."),
            Point("missed", ArgType.INT, description="Frames a process never reported."),
        ),
        events=(
            EventDef("clock_started", Severity.INFO, "Frame 0 (or the resumed frame) went out."),
            EventDef("participant_joined", Severity.INFO, "A process started reporting frames."),
            EventDef(
                "participant_missed_frame", Severity.WARNING, "A process did not report a frame in time."
            ),
            EventDef("participants_missing", Severity.WARNING, "Start timeout: some processes never joined."),
            EventDef("run_complete", Severity.INFO, "The requested duration has been run."),
        ),
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
        self.period_s = deployment.clock.frame_period_s
        self.participants = {name: Participant(name) for name in deployment.lockstep_participants}
        self.state = "waiting"
        self.next_frame = 0
        self.final_frame = (
            None if options.duration_s is None else max(1, round(options.duration_s / self.period_s))
        )
        self._awaiting: set[str] = set()
        self._due: set[str] = set()
        self._tick_sent_s = 0.0
        self._start_deadline_s = 0.0
        self._paced_start_s = 0.0
        self._paced_start_frame = 0
        self._reports: zmq.Socket[bytes] | None = None
        self._ticks: zmq.Socket[bytes] | None = None
        self._tick_sequencer = Sequencer()
        self._state_path = deployment.state_dir / "clock.json"
        self._saved_at_s = -SAVE_PERIOD_S
        self._rate_frames = 0
        self._rate_at_s = 0.0
        self.frames_per_s = 0.0
        self._resumed = False
        self._realtime_epoch_s = 0.0

    # ----------------------------------------------------------------- sockets

    def _open_extra_sockets(self) -> None:
        if self.context is None:
            return
        self._reports = connect(
            self.context,
            zmq.PULL,
            self.deployment.bus.frames,
            high_water_mark=self.deployment.bus.high_water_mark,
            bind=True,
        )
        self.add_reader(self._reports, self._on_reports)
        self._ticks = connect(
            self.context,
            zmq.XPUB,
            self.deployment.bus.ticks,
            high_water_mark=self.deployment.bus.high_water_mark,
            bind=True,
        )
        self._ticks.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, so every joiner gets its hello
        self.add_reader(self._ticks, self._on_tick_subscriptions)

    def _close_extra_sockets(self) -> None:
        for socket in (self._reports, self._ticks):
            if socket is not None:
                socket.close(linger=LINGER_MS)
        self._reports = self._ticks = None

    def _on_tick_subscriptions(self) -> None:
        """Answer each participant's tick subscription with a hello on the tick socket."""
        if self._ticks is None:
            return
        for _ in range(1000):
            try:
                notice = self._ticks.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not notice.startswith(b"\x01" + TICK_PREFIX):  # subscriptions only, not unsubscriptions
                continue
            name = notice[1 + len(TICK_PREFIX) :].decode(errors="replace")
            self._send_tick(name, {"frame": -1, "hello": True}, self.mission_time_s)

    def _send_tick(self, name: str, data: dict[str, Any], t_s: float) -> None:
        if self._ticks is None:
            return
        message = Message(Kind.TICK, self.name, name, t_s, self._tick_sequencer.next(Kind.TICK), data)
        send_frames(self._ticks, *encode(message))

    def setup(self) -> None:
        """Resume the frame count of this run, if a previous clock left one."""
        self._load_progress()

    def on_joined(self) -> None:
        """Start ticking (real time), or start waiting for participants (lockstep)."""
        now_s = self.time.now_s()
        self._rate_at_s = now_s
        if not self.options.lockstep:
            self._begin(now_s)
            return
        if self._resumed:
            # The processes were running before this clock restarted: they will not rejoin.
            for participant in self.participants.values():
                participant.joined = True
            self._begin(now_s)
            return
        self._start_deadline_s = now_s + self.deployment.clock.start_timeout_s
        if not self.participants:
            self._begin(now_s)

    def _begin(self, now_s: float) -> None:
        self.state = "running"
        self._paced_start_s = now_s
        self._paced_start_frame = self.next_frame
        self.event("clock_started", frame=self.next_frame, lockstep=self.options.lockstep)

    # ----------------------------------------------------------------- reports

    def _on_reports(self) -> None:
        if self._reports is None:
            return
        for _ in range(1000):
            try:
                body = self._reports.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                report = unpack_body(body)
            except CodecError as exc:
                self.log.warning("malformed_frame_report", reason=str(exc))
                continue
            frame = report.data.get("frame")
            if not isinstance(frame, int):
                continue
            participant = self.participants.get(report.source)
            if participant is None:
                participant = self.participants[report.source] = Participant(report.source)
            if report.name == "join":
                every = report.data.get("every", [1])
                if isinstance(every, list) and every and all(type(n) is int and n > 0 for n in every):
                    participant.every = tuple(every)
                self._join(participant)
            elif report.name == "frame_done":
                self._done(participant, frame)

    def _join(self, participant: Participant) -> None:
        if participant.joined and participant.name not in self._awaiting:
            return
        participant.joined = True
        # Frames sent before it joined are not its to report.
        participant.last_done = max(participant.last_done, self.next_frame - 1)
        if participant.name in self._awaiting:
            # Restarted while the clock waited on it: it never saw this frame.
            self._awaiting.discard(participant.name)
            participant.missed_frames += 1
        self.event("participant_joined", participant=participant.name, frame=self.next_frame)
        if self.state == "waiting" and all(p.joined for p in self.participants.values()):
            self._begin(self.time.now_s())

    def _done(self, participant: Participant, frame: int) -> None:
        if not participant.joined:
            # Left out after a missed frame and back now (it was frozen, not restarted).
            self._join(participant)
        participant.last_done = max(participant.last_done, frame)
        if frame == self.next_frame - 1:
            self._awaiting.discard(participant.name)

    # ----------------------------------------------------------------- ticking

    def next_timer_s(self) -> float | None:
        """When the next tick, start or timeout decision is due."""
        if self.state == "finished" or not self._joined:
            return None
        if self.state == "waiting":
            return self._start_deadline_s
        if self.options.lockstep and self._awaiting:
            return self._tick_sent_s + self.deployment.clock.frame_timeout_s
        return self._pace_s()

    def _pace_s(self) -> float:
        speed = self.options.speed if self.options.lockstep else 1.0
        if speed is None or math.isinf(speed):
            return self._tick_sent_s  # already due: tick as soon as the frame is done
        return self._paced_start_s + (self.next_frame - self._paced_start_frame) * self.period_s / speed

    def on_timer(self) -> None:
        """Tick, or decide about a late participant or a start timeout."""
        now_s = self.time.now_s()
        if self.state == "waiting":
            missing = sorted(p.name for p in self.participants.values() if not p.joined)
            self.event("participants_missing", missing=missing)
            self._begin(now_s)
            return
        if self.options.lockstep and self._awaiting:
            for name in sorted(self._awaiting):
                participant = self.participants[name]
                participant.missed_frames += 1
                participant.joined = False
                self.event("participant_missed_frame", participant=name, frame=self.next_frame - 1)
            self._awaiting.clear()
        if self.final_frame is not None and self.next_frame >= self.final_frame:
            self._finish()
            return
        if not self.options.lockstep:
            self._count_realtime_lateness()
        self._tick(now_s)

    def _count_realtime_lateness(self) -> None:
        previous = self.next_frame - 1
        if previous < 0:
            return
        for name in self._due:
            participant = self.participants[name]
            if participant.joined and participant.last_done < previous:
                participant.late_frames += 1

    def _tick(self, now_s: float) -> None:
        frame = self.next_frame
        t_s = frame * self.period_s
        self.frame = frame
        self.mission_time_s = t_s
        due = [p.name for p in self.participants.values() if p.joined and p.due(frame)]
        if self.bus is not None:
            self.bus.mission_time_s = t_s
            data = {"frame": frame, "period_s": self.period_s}
            for name in due:  # the participants first, straight: they are the frame's critical path
                self._send_tick(name, data, t_s)
            self.bus.publish(Kind.TICK, "frame", data, t_s)
        self.next_frame = frame + 1
        self._tick_sent_s = now_s
        self._due = set(due)
        if self.options.lockstep:
            self._awaiting = set(due)
        self._rate_frames += 1
        hk_frames = self.spec.frames_per_housekeeping(self.period_s)
        if frame % hk_frames == 0:
            self._update_rate(now_s)
            self.publish_housekeeping()
        if now_s - self._saved_at_s >= SAVE_PERIOD_S:
            self._save_progress(now_s)

    def _finish(self) -> None:
        self.state = "finished"
        self._update_rate(self.time.now_s())
        self.publish_housekeeping()
        self._save_progress(self.time.now_s())
        self.event(
            "run_complete",
            frames=self.next_frame,
            mission_time_s=self.next_frame * self.period_s,
        )

    def _update_rate(self, now_s: float) -> None:
        elapsed_s = now_s - self._rate_at_s
        if elapsed_s > 0:
            self.frames_per_s = self._rate_frames / elapsed_s
            if elapsed_s >= 1.0:
                self._rate_frames = 0
                self._rate_at_s = now_s

    # ----------------------------------------------------------------- telemetry

    def housekeeping(self) -> dict[str, Any]:
        """Clock state, frame rate and lateness per participant."""
        points: dict[str, Any] = {
            "frames_per_s": round(self.frames_per_s, 3),
            "state": self.state,
            "late": sum(p.late_frames for p in self.participants.values()),
            "missed": sum(p.missed_frames for p in self.participants.values()),
        }
        points["participants"] = {
            p.name: {
                "joined": p.joined,
                "late": p.late_frames,
                "missed": p.missed_frames,
                "last_done": p.last_done,
            }
            for p in self.participants.values()
        }
        return points

    def heartbeat_data(self) -> dict[str, Any]:
        """Frame progress and lateness for the supervisor's status and progress bar."""
        return {
            "clock_state": self.state,
            "final_frame": self.final_frame,
            "frames_per_s": round(self.frames_per_s, 1),
            "lateness": {p.name: [p.late_frames, p.missed_frames] for p in self.participants.values()},
        }

    # ----------------------------------------------------------------- persistence

    def _load_progress(self) -> None:
        try:
            raw = json.loads(self._state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(raw, dict) or raw.get("run_id") != self.options.run_id:
            return
        frame = raw.get("next_frame")
        if isinstance(frame, int) and frame > 0:
            self.next_frame = frame
            self._resumed = True
            self.log.info("clock_resumed", frame=frame)

    def _save_progress(self, now_s: float) -> None:
        self._saved_at_s = now_s
        path: Path = self._state_path
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "run_id": self.options.run_id,
                        "next_frame": self.next_frame,
                        "saved_unix_s": time_module.time(),
                    }
                ),
                encoding="utf-8",
            )
            os.replace(tmp, path)
