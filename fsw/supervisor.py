"""The supervisor: starts every process of a run, restarts the ones that fail, stops them all.

It runs in the ``fsw up`` process. Children are separate OS processes
(``python -m fsw.launch RUN_DIR NAME``, a fresh interpreter each: nothing is
inherited but the environment), started in dependency order: the broker first,
then the clock and the deployment's processes, each once those it names in
``start_after`` are ready. A child is *ready* when its heartbeat, with state
``running``, has come through the broker.

Policy is data (:class:`~fsw.deployment.RestartPolicy`, per process): a child
that exits, or whose heartbeat is older than ``heartbeat_timeout_s``, is
killed and restarted after a doubling backoff, at most ``max_restarts`` times
within ``window_s``; past that it stays down and ``restart_budget_exhausted``
is published. Every exit and restart is an event on the bus.

Stopping: SIGTERM to every child (flight processes first, the broker last),
then SIGKILL to whatever is still alive after ``grace_s``. Children also get
SIGTERM from the kernel if the supervisor itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import time as time_module
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final

import msgpack
import zmq

from fsw import run as run_module
from fsw.bus import Bus, connect
from fsw.deployment import Deployment, ProcessSpec, parse
from fsw.errors import ConfigError, DeadlineMissed, ProcessError
from fsw.launch import framework_spec
from fsw.log import get_logger
from fsw.messages import Kind, Message
from fsw.process import SignalWakeup
from fsw.run import RunOptions
from fsw.timesource import MonotonicTime, TimeSource

#: Wall seconds to wait for the broker's first heartbeat.
BROKER_START_TIMEOUT_S: Final = 15.0

#: Events kept in memory for the summary (older ones are counted, not kept).
MAX_EVENTS_KEPT: Final = 100_000

SUPERVISOR_NAME: Final = "supervisor"

#: Name of the recorder process that ``--record`` adds, and its entry-point group.
RECORDER_NAME: Final = "recorder"
PROCESS_ENTRY_POINT_GROUP: Final = "fsw.processes"

#: Event fields that differ between two runs of the same seed (not part of the history digest).
_VOLATILE_FIELDS: Final = frozenset({"pid", "exit_code", "signal"})


@dataclass
class Child:
    """One supervised process and everything the supervisor knows about it."""

    spec: ProcessSpec
    state: str = "pending"  # pending, starting, ready, backoff, failed, stopped
    popen: subprocess.Popen[bytes] | None = None
    started_s: float = 0.0
    next_start_s: float = 0.0
    last_heartbeat_s: float | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    restart_times: deque[float] = field(default_factory=deque)
    last_exit: int | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None


@dataclass
class Summary:
    """What a run did, printed when it ends."""

    run_id: str
    reason: str
    wall_s: float
    frames: int
    mission_time_s: float
    messages: int
    lost: int
    malformed: int
    late_frames: int
    missed_frames: int
    restarts: dict[str, int]
    modes: dict[str, str]
    events: int
    events_by_severity: dict[str, int]
    event_digest: str
    frames_per_wall_s: float
    #: Per process, the statistics of its final heartbeat (see ``Process.statistics``).
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dict(vars(self))


def event_record(message: Message) -> dict[str, Any]:
    """The stable form of an event: mission time, source, name and data without volatile fields."""
    data = {k: v for k, v in message.data.items() if k not in _VOLATILE_FIELDS}
    return {"t": message.t_s, "src": message.source, "name": message.name, "data": data}


def history_digest(records: list[dict[str, Any]]) -> str:
    """SHA-256 of an event history, independent of arrival order within a mission time."""
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in records)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class Supervisor:
    """Runs one base. Construct, then :meth:`run` (blocking) in the ``fsw up`` process."""

    def __init__(
        self,
        deployment: Deployment,
        deployment_text: str,
        options: RunOptions,
        *,
        events_out: Path | None = None,
        on_progress: Callable[[int, int | None, float], None] | None = None,
        time: TimeSource | None = None,
    ) -> None:
        if options.record_dir is not None:
            deployment_text = with_recorder(
                deployment_text,
                options.record_dir,
                options.record_topics,
                frame_period_s=deployment.clock.frame_period_s,
            )
            deployment = parse(deployment_text, source=deployment.source, run_dir=deployment.run_dir)
        self.deployment = deployment
        self.options = options
        self.time = time or MonotonicTime()
        self.log = get_logger(process=SUPERVISOR_NAME)
        self.children: dict[str, Child] = {}
        for name in ("bus", "clock"):
            self.children[name] = Child(framework_spec(deployment, name))
        for spec in deployment.processes:
            self.children[spec.name] = Child(spec)
        self.events: list[dict[str, Any]] = []
        self.events_seen = 0
        self.severities: Counter[str] = Counter()
        self._events_out = events_out
        self._events_file: IO[str] | None = None
        self._on_progress = on_progress
        self._stop_reason = ""
        self._started_wall_s = 0.0
        self._clock_started_s: float | None = None
        self._clock_finished_s: float | None = None
        self._log_dir = deployment.run_dir / "logs"
        run_module.write(deployment.run_dir, deployment_text, options)
        self._bus: Bus | None = None
        self._status: zmq.Socket[bytes] | None = None
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None

    # ----------------------------------------------------------------- children

    def _spawn(self, child: Child) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / f"{child.spec.name}.log"
        with log_path.open("ab") as log_file:
            child.popen = subprocess.Popen(
                [sys.executable, "-m", "fsw.launch", str(self.deployment.run_dir), child.spec.name],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        child.state = "starting"
        child.started_s = self.time.now_s()
        child.last_heartbeat_s = None
        self.log.info("process_spawned", name=child.spec.name, pid=child.popen.pid)

    def _ready(self, name: str) -> bool:
        return self.children[name].state == "ready"

    def _startable(self, child: Child) -> bool:
        if child.spec.name == "bus":
            return True
        if not self._ready("bus"):
            return False
        if (
            RECORDER_NAME in self.children
            and child.spec.name not in ("clock", RECORDER_NAME)
            and not self._ready(RECORDER_NAME)
        ):
            return False  # a recording starts before the first flight process
        return all(self._ready(dep) for dep in child.spec.start_after)

    def _check_children(self) -> None:
        now_s = self.time.now_s()
        for child in self.children.values():
            if (
                child.state in ("pending", "backoff")
                and now_s >= child.next_start_s
                and self._startable(child)
            ):
                if child.state == "backoff":
                    self._publish_event("process_restarted", process=child.spec.name, restarts=child.restarts)
                self._spawn(child)
                continue
            if child.popen is None or child.state not in ("starting", "ready"):
                continue
            code = child.popen.poll()
            if code is not None:
                child.last_exit = code
                self._publish_event(
                    "process_exited",
                    process=child.spec.name,
                    exit_code=code,
                    signal=signal.Signals(-code).name if code < 0 else "",
                )
                self._schedule_restart(child, now_s)
                continue
            policy = child.spec.restart
            since = child.last_heartbeat_s if child.last_heartbeat_s is not None else child.started_s
            if now_s - since > policy.heartbeat_timeout_s:
                self._publish_event("process_hung", process=child.spec.name, silent_s=round(now_s - since, 3))
                self._kill(child)
                self._schedule_restart(child, now_s)

    def _schedule_restart(self, child: Child, now_s: float) -> None:
        policy = child.spec.restart
        while child.restart_times and now_s - child.restart_times[0] > policy.window_s:
            child.restart_times.popleft()
        if len(child.restart_times) >= policy.max_restarts:
            child.state = "failed"
            self._publish_event(
                "restart_budget_exhausted",
                process=child.spec.name,
                restarts=len(child.restart_times),
                window_s=policy.window_s,
            )
            return
        child.restart_times.append(now_s)
        child.restarts += 1
        child.state = "backoff"
        child.next_start_s = now_s + policy.backoff_s(len(child.restart_times))

    def _kill(self, child: Child) -> None:
        if child.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.popen.kill()
        child.popen.wait(timeout=5.0)
        child.last_exit = child.popen.returncode

    def stop_all(self) -> None:
        """SIGTERM every child (broker last), SIGKILL what outlives its grace period."""
        order = [c for n, c in self.children.items() if n not in ("bus", "clock")]
        order += [self.children["clock"], self.children["bus"]]
        for group in (order[:-1], order[-1:]):
            running = [c for c in group if c.popen is not None and c.popen.poll() is None]
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            for child in running:
                popen = child.popen
                if popen is None:
                    continue
                try:
                    popen.wait(timeout=child.spec.restart.grace_s)
                except subprocess.TimeoutExpired:
                    self.log.warning(
                        "process_killed", name=child.spec.name, grace_s=child.spec.restart.grace_s
                    )
                    popen.kill()
                    popen.wait(timeout=5.0)
                child.last_exit = popen.returncode
                child.state = "stopped"
        for child in self.children.values():
            if child.state not in ("failed",):
                child.state = "stopped"

    # ----------------------------------------------------------------- bus

    def _on_message(self, message: Message) -> None:
        if message.kind is Kind.HEARTBEAT:
            child = self.children.get(message.source)
            if child is None or child.state not in ("starting", "ready", "stopped"):
                return
            pid = message.data.get("pid")
            if child.popen is None or pid != child.popen.pid:
                return
            child.last_heartbeat_s = self.time.now_s()
            child.heartbeat = dict(message.data)
            if child.state == "starting" and message.data.get("state") == "running":
                child.state = "ready"
            if message.source == "clock" and self._on_progress is not None:
                final = message.data.get("final_frame")
                self._on_progress(
                    int(message.data.get("frame", 0)) + 1,
                    final if isinstance(final, int) else None,
                    message.t_s,
                )
            return
        if message.kind is Kind.EVENT:
            # The history starts once the broker is up: what it said before can race our subscription.
            if self._ready("bus"):
                self._record_event(message)
            if message.source == "clock" and message.name == "clock_started":
                self._clock_started_s = self.time.now_s()
            if message.source == "clock" and message.name == "run_complete":
                self._stop_reason = "duration reached"
                self._clock_finished_s = self.time.now_s()

    def _record_event(self, message: Message) -> None:
        self.events_seen += 1
        self.severities[str(message.data.get("severity", "info"))] += 1
        record = event_record(message)
        if len(self.events) < MAX_EVENTS_KEPT:
            self.events.append(record)
        if self._events_file is not None:
            self._events_file.write(json.dumps({**record, "seq": message.seq}, default=str) + "\n")

    def _publish_event(self, name: str, **data: Any) -> None:
        self.log.info(name, **data)
        if self._bus is not None:
            self._bus.publish(Kind.EVENT, name, {"severity": "warning", **data})

    def _on_status_request(self) -> None:
        if self._status is None:
            return
        try:
            self._status.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
        self._status.send(msgpack.packb(self.status(), use_bin_type=True))

    def status(self) -> dict[str, Any]:
        """The run as ``fsw status`` shows it."""
        now_s = self.time.now_s()
        clock_hb = self.children["clock"].heartbeat
        lateness = clock_hb.get("lateness", {}) if isinstance(clock_hb.get("lateness"), dict) else {}
        processes = []
        for name, child in self.children.items():
            late = lateness.get(name, [0, 0])
            processes.append(
                {
                    "name": name,
                    "state": child.state,
                    "pid": child.pid,
                    "restarts": child.restarts,
                    "heartbeat_age_s": None
                    if child.last_heartbeat_s is None
                    else round(now_s - child.last_heartbeat_s, 3),
                    "frame": child.heartbeat.get("frame"),
                    "mode": child.heartbeat.get("mode", ""),
                    "late_frames": late[0] if isinstance(late, list) and late else 0,
                    "missed_frames": late[1] if isinstance(late, list) and len(late) > 1 else 0,
                    "lost": child.heartbeat.get("lost", 0),
                }
            )
        return {
            "base": self.deployment.name,
            "run_id": self.options.run_id,
            "mode": "real time" if self.options.speed is None else f"simulated x{self.options.speed}",
            "frame": clock_hb.get("frame"),
            "frames_per_s": clock_hb.get("frames_per_s"),
            "uptime_s": round(now_s - self._started_wall_s, 3),
            "processes": processes,
        }

    # ----------------------------------------------------------------- the loop

    def run(self) -> Summary:
        """Start the base and supervise it until a signal, ``run_complete`` or :meth:`request_stop`.

        Raises :class:`ProcessError` if the broker does not come up.
        """
        wakeup = SignalWakeup()
        self._context = zmq.Context()
        self._started_wall_s = self.time.now_s()
        wall_started = time_module.perf_counter()
        if self._events_out is not None:
            self._events_file = self._events_out.open("w", encoding="utf-8")
        try:
            bus = self.deployment.bus
            self._bus = Bus(
                SUPERVISOR_NAME,
                bus.publish,
                bus.subscribe,
                subscribe=(b"hb.", b"evt."),
                high_water_mark=bus.high_water_mark,
                time=self.time,
                context=self._context,
            )
            self._status = connect(self._context, zmq.REP, bus.status, high_water_mark=100, bind=True)
            poller = zmq.Poller()
            poller.register(wakeup.fileno(), zmq.POLLIN)
            poller.register(self._bus.subscriber, zmq.POLLIN)
            poller.register(self._status, zmq.POLLIN)
            self._check_children()
            broker_deadline_s = self.time.now_s() + BROKER_START_TIMEOUT_S
            while not wakeup.stop_requested and not self._stop_reason:
                for source, _ in poller.poll(100):
                    if source == wakeup.fileno():
                        wakeup.drain()
                    elif source is self._status:
                        self._on_status_request()
                    else:
                        for _ in range(1000):
                            message = self._bus.receive()
                            if message is None:
                                break
                            self._on_message(message)
                self._check_children()
                if not self._ready("bus") and self.time.now_s() > broker_deadline_s:
                    log_path = self._log_dir / "bus.log"
                    msg = f"the broker did not come up within {BROKER_START_TIMEOUT_S:g} s (see {log_path})"
                    raise ProcessError(msg)
            reason = self._stop_reason or (
                f"signal {wakeup.signal_name}" if wakeup.signal_name else "stopped"
            )
            self.stop_all()
            self._drain_events(poller)  # the final heartbeats and events of the children
            return self._summary(reason, time_module.perf_counter() - wall_started)
        finally:
            self.stop_all()
            self._close(wakeup)

    def _drain_events(self, poller: zmq.Poller) -> None:
        """Take the events already on their way before the summary is written."""
        if self._bus is None:
            return
        while poller.poll(50):
            taken = 0
            while (message := self._bus.receive()) is not None:
                self._on_message(message)
                taken += 1
            if not taken:
                break

    def _close(self, wakeup: SignalWakeup) -> None:
        if self._events_file is not None:
            self._events_file.close()
            self._events_file = None
        if self._status is not None:
            self._status.close(linger=0)
            self._status = None
        if self._bus is not None:
            self._bus.close()
            self._bus = None
        if self._context is not None:
            self._context.term()
            self._context = None
        wakeup.close()

    def _summary(self, reason: str, wall_s: float) -> Summary:
        heartbeats = {name: c.heartbeat for name, c in self.children.items()}
        clock = heartbeats["clock"]
        lateness = clock.get("lateness", {})
        late = missed = 0
        if isinstance(lateness, dict):
            for pair in lateness.values():
                if isinstance(pair, list) and len(pair) == 2:
                    late += int(pair[0])
                    missed += int(pair[1])
        frame = clock.get("frame", -1)
        frames = int(frame) + 1 if isinstance(frame, int) else 0
        run_complete = [e for e in self.events if e["src"] == "clock" and e["name"] == "run_complete"]
        if run_complete:
            frames = int(run_complete[-1]["data"].get("frames", frames))
        running_s = None
        if self._clock_started_s is not None:
            running_s = (self._clock_finished_s or self.time.now_s()) - self._clock_started_s
        return Summary(
            run_id=self.options.run_id,
            reason=reason,
            wall_s=round(wall_s, 3),
            frames=frames,
            mission_time_s=round(frames * self.deployment.clock.frame_period_s, 6),
            messages=sum(int(hb.get("sent", 0)) for hb in heartbeats.values()),
            lost=sum(int(hb.get("lost", 0)) for hb in heartbeats.values()),
            malformed=sum(int(hb.get("malformed", 0)) for hb in heartbeats.values()),
            late_frames=late,
            missed_frames=missed,
            restarts={name: c.restarts for name, c in self.children.items()},
            modes={name: str(hb.get("mode", "")) for name, hb in heartbeats.items() if hb.get("mode")},
            events=self.events_seen,
            events_by_severity=dict(self.severities),
            event_digest=history_digest(self.events),
            frames_per_wall_s=round(frames / running_s, 1) if running_s else 0.0,
            statistics={
                name: dict(hb["statistics"])
                for name, hb in heartbeats.items()
                if isinstance(hb.get("statistics"), dict)
            },
        )


#: The recorder ``fsw up --record`` adds is due every this many frames.
RECORDER_EVERY_FRAMES: Final = 10


def with_recorder(
    deployment_text: str,
    record_dir: str,
    topics: tuple[str, ...] = (),
    *,
    frame_period_s: float = 0.1,
) -> str:
    """Add the recorder process (entry point ``fsw.processes:recorder``) to a deployment.

    ``topics``: the topic prefixes it records (empty: everything). The recorder is a
    lockstep participant due every :data:`RECORDER_EVERY_FRAMES` frames, so the base
    never runs more than that ahead of its recording.

    Raises :class:`ConfigError` if no recorder is installed or the deployment
    already has a process named ``recorder``.
    """
    entries = {ep.name: ep for ep in metadata.entry_points(group=PROCESS_ENTRY_POINT_GROUP)}
    if RECORDER_NAME not in entries:
        msg = "no recorder is installed (entry point fsw.processes:recorder)"
        raise ConfigError(msg)
    if f"[processes.{RECORDER_NAME}]" in deployment_text:
        msg = f"the deployment already has a [processes.{RECORDER_NAME}]: drop --record or that table"
        raise ConfigError(msg)
    directory = json.dumps(str(Path(record_dir).resolve()))
    selection = f", topics = {json.dumps(list(topics))}" if topics else ""
    period_s = RECORDER_EVERY_FRAMES * frame_period_s
    return (
        f"{deployment_text.rstrip()}\n\n[processes.{RECORDER_NAME}]\n"
        f'entry = "{entries[RECORDER_NAME].value}"\nlockstep = true\n'
        f"rate_hz = {1.0 / period_s!r}\nhousekeeping_period_s = {period_s!r}\n"
        f"params = {{ dir = {directory}{selection} }}\n"
    )


def new_run_id() -> str:
    """A fresh run identifier."""
    return uuid.uuid4().hex[:12]


def query_status(endpoint: str, timeout_s: float = 2.0) -> dict[str, Any]:
    """Ask a running supervisor for its status. Raises :class:`DeadlineMissed` if none answers."""
    with zmq.Context() as context:
        socket = connect(context, zmq.REQ, endpoint, high_water_mark=10)
        try:
            socket.send(b"status")
            if not socket.poll(int(timeout_s * 1000), zmq.POLLIN):
                msg = f"no supervisor answered on {endpoint} within {timeout_s:g} s (is the base up?)"
                raise DeadlineMissed(msg)
            raw = msgpack.unpackb(socket.recv(), raw=False)
        finally:
            socket.close(linger=0)
    if not isinstance(raw, dict):
        msg = f"malformed status reply from {endpoint}"
        raise ProcessError(msg)
    return raw


def clean_run_dir(run_dir: Path) -> None:
    """Remove stale socket files and logs of an earlier run in ``run_dir``."""
    if not run_dir.exists():
        return
    for path in run_dir.iterdir():
        if path.is_socket() or path.name in ("logs",):
            if path.is_dir():
                for item in path.iterdir():
                    with contextlib.suppress(OSError):
                        item.unlink()
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


__all__ = ["Child", "Summary", "Supervisor", "clean_run_dir", "new_run_id", "query_status"]
