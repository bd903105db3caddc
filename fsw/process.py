"""The process runtime: the base class of every process on the bus.

A :class:`Process` owns its bus sockets and runs one loop that waits on them
with a deadline: it answers commands, publishes its heartbeat, and stops on
SIGTERM or SIGINT within its grace period. :class:`FlightProcess` adds the frame
discipline: on every clock tick it syncs its board, runs its control loop at
its declared rate, publishes housekeeping at its declared rate, and reports the
frame done to the clock (which is what makes lockstep simulation and the
lateness health monitor work).

Start-up handshake, with no sleeps: the process publishes heartbeats quickly
until it receives its own heartbeat back through the broker (its publish and
subscribe paths both work), registers its dictionary with the command router
and waits for the router's acknowledgement, then joins the clock. Only then
does it act on ticks.

Commands: a handler is a method named ``command_<name>``, called with the
validated arguments. It returns ``None`` or a result map (completed), raises
:class:`~fsw.errors.CommandRejected` (rejected with the reason), raises
anything else (accepted, then failed with the error), or returns
:data:`DEFERRED` and later calls :meth:`Process.finish_command`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time as time_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar, Final

import zmq

from fsw.board import Board, TappedBoard, open_board
from fsw.bus import LINGER_MS, Bus, connect, pack_body, unpack_body
from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import (
    ARM,
    DISARM,
    NOOP,
    PING,
    ArgType,
    Dictionary,
    EventDef,
    Point,
    Severity,
)
from fsw.errors import BoardError, BoardLinkLost, CodecError, CommandRejected, FswError
from fsw.log import configure_logging, get_logger
from fsw.messages import Kind, Message, Sequencer
from fsw.run import RunOptions
from fsw.timesource import MonotonicTime, TimeSource

#: Heartbeat period while waiting for the own heartbeat to come back (wall seconds).
JOIN_PROBE_PERIOD_S: Final = 0.05

#: Resend period of the dictionary registration until the router acknowledges it.
REGISTER_RETRY_S: Final = 0.5

#: Most bus messages handled in one pass before the loop looks at its other sockets.
MAX_MESSAGES_PER_PASS: Final = 200

#: Log level of an event by its severity.
LOG_LEVELS: Final = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "error": "error",
    "critical": "critical",
}

#: Minimum mission time between two ``frame_error`` events of one process.
FRAME_ERROR_EVENT_INTERVAL_S: Final = 1.0

#: Returned by a command handler that completes later through ``finish_command``.
DEFERRED: Final = object()

ROUTER_NAME: Final = "bus"

#: Points every process publishes in its housekeeping packet.
RUNTIME_POINTS: Final = (
    Point("frame", ArgType.INT, description="Last frame handled."),
    Point("cycle_time_s", ArgType.FLOAT, "s", "Wall time of the last control cycle."),
    Point("frame_errors", ArgType.INT, description="Control cycles that raised."),
    Point("bus_sent", ArgType.INT, description="Messages published."),
    Point("bus_received", ArgType.INT, description="Valid messages received."),
    Point("bus_lost", ArgType.INT, description="Messages lost (sequence gaps) on the way in."),
    Point("bus_malformed", ArgType.INT, description="Malformed frames received and dropped."),
    Point("commands_completed", ArgType.INT, description="Commands completed."),
    Point("commands_rejected", ArgType.INT, description="Commands rejected or failed."),
)

#: Events every process may publish.
RUNTIME_EVENTS: Final = (
    EventDef("process_started", Severity.INFO, "The process joined the bus."),
    EventDef("process_stopping", Severity.INFO, "The process is stopping on request."),
    EventDef(
        "frame_error",
        Severity.ERROR,
        "Control cycles raised (count since the last report, at most one a mission second); it goes on.",
    ),
    EventDef("malformed_frame", Severity.WARNING, "Malformed bus frames were dropped."),
    EventDef("board_link_lost", Severity.ERROR, "The board stopped answering."),
    EventDef("board_link_restored", Severity.INFO, "The board answers again."),
    EventDef("command_failed", Severity.WARNING, "A command raised while executing."),
    EventDef("command_armed", Severity.INFO, "A critical command was armed (arm-then-execute)."),
    EventDef(
        "critical_command_refused",
        Severity.WARNING,
        "A critical command arrived unarmed or after its arm window and was rejected.",
    ),
)


@dataclass(frozen=True)
class Frame:
    """One minor frame: its number and mission time (seconds)."""

    number: int
    t_s: float
    period_s: float


class SignalWakeup:
    """Turns SIGTERM and SIGINT into a readable file descriptor and a flag.

    The descriptor goes into the poller so a stop request wakes the loop at
    once. Restores the previous handlers on ``close()`` (idempotent).
    """

    def __init__(self) -> None:
        self.stop_requested = False
        self.signal_name = ""
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        self._closed = False

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = True
        self.signal_name = signal.Signals(signum).name

    def fileno(self) -> int:
        """The descriptor that becomes readable when a signal arrives."""
        return self._read_fd

    def drain(self) -> None:
        """Read and discard the wake-up bytes."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 512):
                pass

    def close(self) -> None:
        """Restore the previous handlers and close the pipe. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


Handler = Callable[[], None]


class Process:
    """A process on the bus: heartbeat, commands, orderly stop.

    Subclasses declare ``dictionary`` and implement hooks; they never touch
    the sockets. Construct in the process that runs it, then call :meth:`run`.
    """

    dictionary: ClassVar[Dictionary] = Dictionary()
    #: Whether this process reports every frame to the clock when the run is lockstep.
    frame_participant: ClassVar[bool] = False

    def __init__(
        self,
        deployment: Deployment,
        spec: ProcessSpec,
        options: RunOptions,
        *,
        time: TimeSource | None = None,
    ) -> None:
        self.deployment = deployment
        self.spec = spec
        self.options = options
        self.name = spec.name
        self.params: Mapping[str, Any] = spec.params
        self.time = time or MonotonicTime()
        self.log = get_logger(process=spec.name)
        self.mode = ""
        self.frame = -1
        self.mission_time_s = 0.0
        self.frame_errors = 0
        self.commands_completed = 0
        self.commands_rejected = 0
        self.board: Board | None = None
        self._board_link_up = True
        self._joined = False
        self._registered = False
        self._echo_seen = False
        self._stop = False
        self._readers: list[tuple[Any, Handler]] = []
        self._sequencer = Sequencer()
        full = self.full_dictionary()
        self._events = {e.name: e for e in full.events}
        self._critical = frozenset(c.name for c in full.commands if c.critical)
        #: Armed critical commands and the wall time (``self.time``) their window closes.
        self._armed: dict[str, float] = {}
        self._next_heartbeat_s = 0.0
        self._next_register_s = 0.0
        self._last_cycle_s = 0.0
        self.context: zmq.Context[zmq.Socket[bytes]] | None = None
        self.bus: Bus | None = None
        self._dispatch: zmq.Socket[bytes] | None = None

    # ----------------------------------------------------------------- declarations

    @classmethod
    def full_dictionary(cls) -> Dictionary:
        """This process's dictionary with the runtime's own points, events and commands."""
        runtime = Dictionary(
            telemetry=RUNTIME_POINTS, events=RUNTIME_EVENTS, commands=(PING, NOOP, ARM, DISARM)
        )
        return runtime.merged(cls.dictionary)

    # ----------------------------------------------------------------- hooks

    def subscriptions(self) -> tuple[bytes, ...]:
        """Topic prefixes this process wants besides ticks and its own heartbeat."""
        return ()

    def setup(self) -> None:
        """Open boards and files. Runs once, before the bus handshake."""

    def on_joined(self) -> None:
        """Called once the handshake is complete."""

    def on_message(self, message: Message) -> None:
        """A message matching :meth:`subscriptions` arrived."""

    def housekeeping(self) -> dict[str, Any]:
        """Values of this process's own telemetry points."""
        return {}

    def next_timer_s(self) -> float | None:
        """Wall time (of ``self.time``) at which :meth:`on_timer` wants to run, if any."""
        return None

    def on_timer(self) -> None:
        """Called when the time from :meth:`next_timer_s` has come."""

    def teardown(self) -> None:
        """Release what :meth:`setup` opened. Runs once, even after an error."""

    def heartbeat_data(self) -> dict[str, Any]:
        """Extra fields for the heartbeat (the supervisor shows them)."""
        return {}

    def statistics(self) -> dict[str, Any]:
        """What this run did, for the end-of-run summary: extremes, totals and counts.

        Plain numbers (or short strings) keyed with their unit (``battery_soc_min``,
        ``energy_not_served_wh``, ``fuel_temp_peak_c``). Sent once, in the final heartbeat
        (state ``stopping``); ``fsw up`` prints them under the process's name.
        """
        return {}

    # ----------------------------------------------------------------- helpers for subclasses

    def add_reader(self, source: Any, handler: Handler) -> None:
        """Call ``handler`` whenever ``source`` (a zmq socket or fd) is readable."""
        self._readers.append((source, handler))

    def event(self, name: str, **data: Any) -> None:
        """Publish event ``name`` with ``data`` and log it. Severity comes from the dictionary."""
        self.publish_event(name, data)

    def publish_event(
        self, name: str, data: Mapping[str, Any], *, at_s: float | None = None, level: str = ""
    ) -> None:
        """:meth:`event`, with this occurrence's severity ``level`` (default: the dictionary's)
        and mission time ``at_s`` on the envelope (default: this process's frame time)."""
        declared = self._events.get(name)
        if declared is None:
            self.log.warning("undeclared_event", event_name=name)
        severity = level or (declared.severity.value if declared else Severity.INFO.value)
        getattr(self.log, LOG_LEVELS.get(severity, "info"))(name, severity=severity, **data)
        if self.bus is not None:
            self.bus.publish(Kind.EVENT, name, {"severity": severity, **data}, at_s)

    def telemetry(self, name: str, data: Mapping[str, Any]) -> None:
        """Publish a telemetry packet ``name``."""
        if self.bus is not None:
            self.bus.publish(Kind.TELEMETRY, name, data)

    def publish_housekeeping(self) -> None:
        """Publish the ``hk`` packet: runtime points plus :meth:`housekeeping`."""
        if self.bus is None:
            return
        stats = self.bus.stats
        points: dict[str, Any] = {
            "frame": self.frame,
            "cycle_time_s": round(self._last_cycle_s, 6),
            "frame_errors": self.frame_errors,
            "bus_sent": stats.sent,
            "bus_received": stats.received,
            "bus_lost": stats.lost,
            "bus_malformed": stats.malformed,
            "commands_completed": self.commands_completed,
            "commands_rejected": self.commands_rejected,
        }
        points.update(self.housekeeping())
        self.bus.publish(Kind.TELEMETRY, "hk", points)

    def open_board(self) -> Board | None:
        """Open the board the deployment names for this process, if any."""
        if self.spec.board is None:
            return None
        options = dict(self.spec.board)
        backend = str(options.pop("backend"))
        if backend == "sim":
            options.setdefault("run_dir", str(self.deployment.run_dir))
            options.setdefault("kind", self.name)
        elif backend == "replay":
            options.setdefault("source", self.name)
        return open_board(backend, self.options.board_backends, **options)

    def finish_command(
        self,
        command_id: str,
        command: str,
        *,
        ok: bool,
        reason: str = "",
        result: Mapping[str, Any] | None = None,
    ) -> None:
        """Complete a command whose handler returned :data:`DEFERRED`."""
        self._ack(command_id, command, "completed" if ok else "failed", reason, result)

    def request_stop(self) -> None:
        """Ask the loop to stop after the current pass."""
        self._stop = True

    # ----------------------------------------------------------------- the loop

    def run(self) -> int:
        """Run until SIGTERM/SIGINT or :meth:`request_stop`; return the exit status."""
        wakeup = SignalWakeup()
        self.context = zmq.Context()
        try:
            self.setup()
            self._open_sockets()
            poller = zmq.Poller()
            poller.register(wakeup.fileno(), zmq.POLLIN)
            handlers: dict[Any, Handler] = {wakeup.fileno(): wakeup.drain}
            for source, handler in self._readers:
                poller.register(source, zmq.POLLIN)
                handlers[source] = handler
            while not (self._stop or wakeup.stop_requested):
                timeout_ms = self._timeout_ms()
                for source, _ in poller.poll(timeout_ms):
                    handlers[source]()
                    if self._stop or wakeup.stop_requested:
                        break
                self._on_time()
            reason = wakeup.signal_name or "request"
            self.log.info("process_stopping", reason=reason)
            self._heartbeat(state="stopping")  # final counters and mode, for the run summary
            if self.bus is not None:
                self.bus.publish(Kind.EVENT, "process_stopping", {"severity": "info", "reason": reason})
            return 0
        finally:
            try:
                self.teardown()
            finally:
                self._close_sockets()
                wakeup.close()

    def _open_sockets(self) -> None:
        if self.context is None:
            raise FswError("process context missing")
        bus_config = self.deployment.bus
        self.bus = Bus(
            self.name,
            bus_config.publish,
            bus_config.subscribe,
            high_water_mark=bus_config.high_water_mark,
            time=self.time,
            context=self.context,
        )
        self.bus.subscribe(f"hb.{self.name}.".encode())
        for prefix in self.subscriptions():
            self.bus.subscribe(prefix)
        self._dispatch = connect(
            self.context,
            zmq.DEALER,
            bus_config.dispatch,
            high_water_mark=bus_config.high_water_mark,
            identity=self.name.encode(),
        )
        self.add_reader(self.bus.subscriber, self._on_bus)
        self.add_reader(self._dispatch, self._on_dispatch)
        self._open_extra_sockets()

    def _open_extra_sockets(self) -> None:
        """Subclasses of the runtime open their own sockets here."""

    def _close_sockets(self) -> None:
        if self._dispatch is not None:
            self._dispatch.close(linger=LINGER_MS)
            self._dispatch = None
        self._close_extra_sockets()
        if self.bus is not None:
            self.bus.close()
        if self.context is not None:
            self.context.term()
            self.context = None

    def _close_extra_sockets(self) -> None:
        """Subclasses of the runtime close their own sockets here."""

    def _timeout_ms(self) -> int:
        now_s = self.time.now_s()
        due = [self._next_heartbeat_s]
        if not self._registered and self._echo_seen:
            due.append(self._next_register_s)
        timer = self.next_timer_s()
        if timer is not None:
            due.append(timer)
        return max(0, int((min(due) - now_s) * 1000.0 + 0.999))

    def _on_time(self) -> None:
        now_s = self.time.now_s()
        if now_s >= self._next_heartbeat_s:
            self._heartbeat()
            period = self.deployment.bus.heartbeat_period_s if self._echo_seen else JOIN_PROBE_PERIOD_S
            self._next_heartbeat_s = now_s + period
        if self._echo_seen and not self._registered and now_s >= self._next_register_s:
            self._register()
            self._next_register_s = now_s + REGISTER_RETRY_S
        timer = self.next_timer_s()
        if timer is not None and now_s >= timer:
            self.on_timer()

    def _heartbeat(self, state: str | None = None) -> None:
        if self.bus is None:
            return
        stats = self.bus.stats
        data = {
            "pid": os.getpid(),
            "state": state or ("running" if self._joined else "joining"),
            "frame": self.frame,
            "mode": self.mode,
            "sent": stats.sent,
            "received": stats.received,
            "lost": stats.lost,
            "malformed": stats.malformed,
            "frame_errors": self.frame_errors,
        }
        data.update(self.heartbeat_data())
        if state == "stopping":
            statistics = self.statistics()
            if statistics:
                data["statistics"] = statistics
        self.bus.publish(Kind.HEARTBEAT, "hb", data)

    def _register(self) -> None:
        if self._dispatch is None:
            return
        body = pack_body(
            Message(
                Kind.COMMAND,
                self.name,
                "register",
                self.mission_time_s,
                self._sequencer.next(Kind.COMMAND),
                {
                    "id": f"register-{self.name}-{os.getpid()}",
                    "target": ROUTER_NAME,
                    "args": {"dictionary": self.full_dictionary().to_json()},
                },
            )
        )
        with contextlib.suppress(zmq.Again):
            self._dispatch.send(body, zmq.NOBLOCK)

    def _on_bus(self) -> None:
        if self.bus is None:
            return
        for _ in range(MAX_MESSAGES_PER_PASS):
            message = self.bus.receive()
            if message is None:
                return
            self._handle(message)

    def _handle(self, message: Message) -> None:
        """Route one valid bus message: own heartbeat echo, tick, or :meth:`on_message`."""
        if message.kind is Kind.HEARTBEAT and message.source == self.name:
            if not self._echo_seen:
                self._echo_seen = True
                self._next_register_s = 0.0
        elif message.kind is Kind.TICK:
            self._on_tick(message)
        else:
            self.on_message(message)

    def _on_tick(self, message: Message) -> None:
        """Clock ticks reach every process; only flight processes act on them."""

    def _complete_join(self) -> None:
        self._joined = True
        self.event("process_started", pid=os.getpid(), entry=self.spec.entry)
        self.on_joined()

    def _on_dispatch(self) -> None:
        if self._dispatch is None:
            return
        for _ in range(MAX_MESSAGES_PER_PASS):
            try:
                body = self._dispatch.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = unpack_body(body)
            except CodecError as exc:
                self.log.warning("malformed_dispatch", reason=str(exc))
                continue
            if message.kind is Kind.ACK and message.name == "register":
                if not self._registered:
                    self._registered = True
                    self._on_registered()
                continue
            if message.kind is Kind.COMMAND:
                self._execute(message)

    def _on_registered(self) -> None:
        """Registered with the router: complete the join (flight processes also tell the clock)."""
        self._complete_join()

    def _execute(self, message: Message) -> None:
        command_id = str(message.data.get("id", ""))
        args = message.data.get("args", {})
        handler = getattr(self, f"command_{message.name}", None)
        if handler is None or not isinstance(args, dict):
            self._ack(command_id, message.name, "rejected", f"{self.name} has no handler for {message.name}")
            return
        if message.name in self._critical and not self._take_arm(message.name):
            reason = (
                f"{message.name} is a critical command: send `arm command={message.name}` to "
                f"{self.name}, then {message.name} within {self.deployment.bus.arm_window_s:g} s"
            )
            self.event("critical_command_refused", command=message.name)
            self._ack(command_id, message.name, "rejected", reason)
            return
        try:
            result = handler(**args)
        except CommandRejected as exc:
            self._ack(command_id, message.name, "rejected", exc.reason)
            return
        except Exception as exc:  # a handler bug must not take the process down
            self._ack(command_id, message.name, "accepted")
            self._ack(command_id, message.name, "failed", f"{type(exc).__name__}: {exc}")
            self.event("command_failed", command=message.name, error=str(exc)[:200])
            return
        self._ack(command_id, message.name, "accepted")
        if result is DEFERRED:
            return
        self._ack(command_id, message.name, "completed", "", result if isinstance(result, dict) else None)

    def _ack(
        self,
        command_id: str,
        command: str,
        status: str,
        reason: str = "",
        result: Mapping[str, Any] | None = None,
    ) -> None:
        if status == "completed":
            self.commands_completed += 1
        elif status in ("rejected", "failed"):
            self.commands_rejected += 1
        if self._dispatch is None:
            return
        data: dict[str, Any] = {"id": command_id, "target": self.name, "status": status}
        if reason:
            data["reason"] = reason
        if result:
            data["result"] = dict(result)
        body = pack_body(
            Message(Kind.ACK, self.name, command, self.mission_time_s, self._sequencer.next(Kind.ACK), data)
        )
        with contextlib.suppress(zmq.Again):
            self._dispatch.send(body, zmq.NOBLOCK)

    # ----------------------------------------------------------------- standard commands

    def command_ping(self) -> dict[str, Any]:
        """Answer with pid, frame and mission time."""
        return {"pid": os.getpid(), "frame": self.frame, "t_s": self.mission_time_s}

    def command_noop(self) -> None:
        """Do nothing."""

    def command_arm(self, command: str) -> dict[str, Any]:
        """Arm critical ``command`` for ``arm_window_s`` wall seconds; rejected if not critical."""
        if command not in self._critical:
            critical = ", ".join(sorted(self._critical)) or "none"
            msg = f"{command!r} is not a critical command of {self.name} (critical: {critical})"
            raise CommandRejected(msg)
        window_s = self.deployment.bus.arm_window_s
        self._armed[command] = self.time.now_s() + window_s
        self.event("command_armed", command=command, window_s=window_s)
        return {"armed": command, "window_s": window_s}

    def command_disarm(self) -> dict[str, Any]:
        """Cancel every armed critical command."""
        cancelled = sorted(self._armed)
        self._armed.clear()
        return {"disarmed": cancelled}

    def _take_arm(self, command: str) -> bool:
        """Consume the arm of ``command``: True if it was armed and its window is still open."""
        deadline_s = self._armed.pop(command, None)
        return deadline_s is not None and self.time.now_s() <= deadline_s


class FlightProcess(Process):
    """A process that runs on clock frames: board sync, control loop, housekeeping.

    Subclasses implement :meth:`on_frame` (the control loop, called every
    ``rate_hz``) and :meth:`housekeeping`. ``self.board`` is the board the
    deployment names, opened in :meth:`setup`.

    The process tells the clock, when it joins, every how many frames it has
    work (its control cycle and its housekeeping); the clock sends it a tick
    (``tick.clock.<name>``) only on those frames and waits only for those. Ticks
    come straight from the clock's tick socket (``[bus] ticks``), a hop shorter
    than the broker; the process joins once the clock has answered its tick
    subscription with a hello, so no tick is sent before it can arrive.
    """

    frame_participant: ClassVar[bool] = True
    #: Take ticks from the bus (``tick.clock.frame``, through the broker) instead of the
    #: clock's direct socket. The broker forwards in order, so a tick reaches this process
    #: behind the messages published before the clock sent it: a process that acts on other
    #: processes' telemetry in mission time (fault protection) never runs ahead of it.
    ticks_through_bus: ClassVar[bool] = False

    def __init__(
        self,
        deployment: Deployment,
        spec: ProcessSpec,
        options: RunOptions,
        *,
        time: TimeSource | None = None,
    ) -> None:
        super().__init__(deployment, spec, options, time=time)
        period_s = deployment.clock.frame_period_s
        self.frame_period_s = period_s
        self._frames_per_cycle = spec.frames_per_cycle(period_s)
        self._frames_per_housekeeping = spec.frames_per_housekeeping(period_s)
        self._frames: zmq.Socket[bytes] | None = None
        self._ticks: zmq.Socket[bytes] | None = None
        #: The clock answered this process's tick subscription (the direct tick path works).
        self._tick_path_up = False
        self._join_pending = False
        self._frame_error_event_s = -FRAME_ERROR_EVENT_INTERVAL_S
        self._frame_errors_reported = 0

    def on_frame(self, frame: Frame) -> None:
        """Run one control cycle. Board reads see the world at this frame."""

    def subscriptions(self) -> tuple[bytes, ...]:
        """What the subclass adds (:meth:`extra_subscriptions`), and the bus's ticks if it takes them."""
        bus_ticks = (b"tick.clock.frame",) if self.ticks_through_bus else ()
        return (*bus_ticks, *self.extra_subscriptions())

    def extra_subscriptions(self) -> tuple[bytes, ...]:
        """Topic prefixes this process wants besides ticks."""
        return ()

    def setup(self) -> None:
        """Open the board named in the deployment, tapped so its traffic is telemetry."""
        board = self.open_board()
        if board is not None and self.spec.board_tap:
            self.board = TappedBoard(board, self.telemetry, lambda: self.frame)
        else:
            self.board = board

    def teardown(self) -> None:
        """Close the board."""
        if self.board is not None:
            self.board.close()
            self.board = None

    def _open_extra_sockets(self) -> None:
        if self.context is None:
            return
        self._frames = connect(
            self.context,
            zmq.PUSH,
            self.deployment.bus.frames,
            high_water_mark=self.deployment.bus.high_water_mark,
        )
        if self.ticks_through_bus:
            # The bus subscription is up once the own heartbeat echoes: the tick path with it.
            self._tick_path_up = True
            return
        self._ticks = connect(
            self.context,
            zmq.SUB,
            self.deployment.bus.ticks,
            high_water_mark=self.deployment.bus.high_water_mark,
        )
        self._ticks.setsockopt(zmq.SUBSCRIBE, f"tick.clock.{self.name}".encode())
        self.add_reader(self._ticks, self._on_direct_ticks)

    def _close_extra_sockets(self) -> None:
        for socket in (self._frames, self._ticks):
            if socket is not None:
                socket.close(linger=LINGER_MS)
        self._frames = self._ticks = None

    def _on_direct_ticks(self) -> None:
        """Ticks from the clock's own socket (one hop, not through the broker), and its hello."""
        if self._ticks is None or self.bus is None:
            return
        for _ in range(MAX_MESSAGES_PER_PASS):
            message = self.bus.receive(self._ticks)
            if message is None:
                return
            if message.data.get("hello") is True:
                self._tick_path_up = True
                self._send_join()
            else:
                self._handle(message)

    def _on_registered(self) -> None:
        if self.board is not None:
            self.telemetry("board_description", {"description": self.board.description.to_map()})
        self._join_pending = True
        self._send_join()
        self._complete_join()

    def _send_join(self) -> None:
        """Tell the clock this process takes part, once registered and its tick path is up."""
        if self._join_pending and self._tick_path_up:
            self._join_pending = False
            self._report("join", self.frame, every=[self._frames_per_cycle, self._frames_per_housekeeping])

    def _report(self, name: str, frame: int, **extra: Any) -> None:
        if self._frames is None or not self.spec.lockstep:
            return
        body = pack_body(
            Message(
                Kind.HEARTBEAT,
                self.name,
                name,
                self.mission_time_s,
                self._sequencer.next(Kind.HEARTBEAT),
                {"frame": frame, **extra},
            )
        )
        with contextlib.suppress(zmq.Again):
            self._frames.send(body, zmq.NOBLOCK)

    def _on_tick(self, message: Message) -> None:
        if not self._joined or message.name != ("frame" if self.ticks_through_bus else self.name):
            return
        number = message.data.get("frame")
        if not isinstance(number, int) or number <= self.frame:
            return
        if number % self._frames_per_cycle and number % self._frames_per_housekeeping:
            return  # a bus tick of a frame this process has no work in (the clock does not wait)
        self.frame = number
        self.mission_time_s = message.t_s
        if self.bus is not None:
            self.bus.mission_time_s = message.t_s
        frame = Frame(number, message.t_s, self.frame_period_s)
        if number % self._frames_per_cycle == 0:
            self._cycle(frame)
        if number % self._frames_per_housekeeping == 0:
            self.publish_housekeeping()
        self._report("frame_done", number)

    def _frame_error(self, exc: BaseException) -> None:
        """Count a failed cycle; report it at most once a mission second, with the count since.

        Mission time, not wall time: a seeded simulation reports the same errors every run.
        """
        self.frame_errors += 1
        now_s = self.mission_time_s
        if now_s - self._frame_error_event_s < FRAME_ERROR_EVENT_INTERVAL_S:
            return
        self._frame_error_event_s = now_s
        count = self.frame_errors - self._frame_errors_reported
        self._frame_errors_reported = self.frame_errors
        self.event("frame_error", count=count, error=f"{type(exc).__name__}: {exc}"[:200])

    def _cycle(self, frame: Frame) -> None:
        started_s = time_module.perf_counter()
        try:
            if self.board is not None:
                self.board.sync(frame.number, frame.t_s)
            self.on_frame(frame)
        except BoardLinkLost as exc:
            self.frame_errors += 1
            if self._board_link_up:
                self._board_link_up = False
                self.event("board_link_lost", error=str(exc)[:200])
        except BoardError as exc:
            self._frame_error(exc)
        except Exception as exc:  # the control loop must survive its own bugs
            self.log.exception("frame_error")
            self._frame_error(exc)
        else:
            if not self._board_link_up:
                self._board_link_up = True
                self.event("board_link_restored")
        finally:
            self._last_cycle_s = time_module.perf_counter() - started_s


def main_for(cls: type[Process], deployment: Deployment, spec: ProcessSpec, options: RunOptions) -> int:
    """Configure logging and run ``cls`` as this OS process; return the exit status."""
    configure_logging(spec.name)
    die_with_parent()
    return cls(deployment, spec, options).run()
