"""Fault protection: the base's monitors, mode machine and stored sequences as one process.

The process (``fsw.protection:FaultProtection``, usually named ``protection``) watches
the telemetry and events of the other processes, evaluates the deployment's monitors
(:mod:`fsw.monitors`), drives the base mode machine (:mod:`fsw.modes`) and runs stored
command sequences (:mod:`fsw.sequences`); it keeps all of it in a SQLite state store
(:mod:`fsw.store`) so a ``kill -9`` or a restart of the whole base resumes where it was.

Inputs
    A monitor point ``<source>.<name>`` is read from the source's housekeeping
    (``tlm.<source>.hk``) and from its board samples (``tlm.<source>.board_sample``,
    every control cycle while the board is tapped: the fast path for reactor and power
    limits). An event monitor listens for ``evt.<source>.<name>``; health inputs come
    that way: the supervisor's ``process_restarted``, ``process_hung`` and
    ``restart_budget_exhausted``, a process's ``board_link_lost``, comms'
    ``command_loss``, the clock's ``participant_missed_frame``.

Responses
    A monitor that goes red (or to the level its response is due at) starts its
    response: a stored sequence, a mode request, or both; each is an event. A mode's
    entry sequence (``[processes.protection.params.entry_sequences]``) runs when the
    base enters it (a boot straight into ``NOMINAL`` runs none: the loads stay as the
    subsystems have them); entering a mode stops the entry sequence of the mode left.

Timing
    Ticks come through the broker like the telemetry, so the process never runs ahead of
    the data it judges (a busy broker delays its frames, not its view of them). Samples
    and events are evaluated when they arrive, with the mission time they carry, and a
    response goes out at once; time-driven checks (staleness, expressions, event
    clearing, recovery holds, sequence steps) run on the process's control cycle.
    Sequence steps are sent through the router like any command and wait for their
    final status without blocking the loop.

Persistence
    ``<state_dir>/protection.db`` (or ``params.store``): the mode, every monitor's
    state, enable flag, latch and transition count, the counters, the sequences in
    progress (their step) and uplinked sequences, and an event log of every event this
    process published. A damaged store is moved aside whole (``protection.db.damaged-N``)
    and a fresh one started, with a ``protection_store_damaged`` event. On start with a
    stored state the process resumes its mode, except ``NOMINAL`` (and ``BOOT``): those
    go through ``BOOT`` again, so the base never boots blind into ``NOMINAL`` while a red
    monitor stands; ``protection_resumed`` says what was resumed. A real-time base always
    resumes (a restart of the process or of the whole base); a simulated run (``--speed``)
    resumes only a store of the same run (the process restarted by the supervisor) and
    moves the store of an earlier simulated run aside (``protection.db.previous-run-N``):
    its mission time starts again at zero.

Parameters (``[processes.protection.params]``)
    ``monitors`` (a monitors file) and ``sequences`` (a directory of ``*.seq`` files):
    a path relative to the deployment file, or ``package:path`` for files shipped in a
    Python package (``subsystems:protection/monitors.toml``); ``store`` (a path, default
    ``<state_dir>/protection.db``); ``entry_sequences`` (a table: mode -> sequence);
    ``schedule`` (a table: sequence -> mission time it starts at, once: ``"10d"``);
    ``mode_timers`` (a table: mode -> ``{ after = "1h", sequence = ..., attempts = 6,
    backoff = 2 }``: the sequence starts ``after`` into the mode, then again after each
    wait, the wait multiplied by ``backoff`` (1: even), at most ``attempts`` times per stay);
    ``emergency_exit`` (false: EMERGENCY is left by ground only; true: also to SAFE
    once no monitor has been red for the hold, see :mod:`fsw.modes`);
    ``recovery_hold_s`` (600), ``boot_s`` (10: mission seconds ``BOOT`` lasts, the first
    look at the monitors, long enough for every housekeeping packet to arrive once),
    ``step_timeout_s`` (30: mission seconds a
    sequence step waits for its command's final status), ``event_log_rows`` (100000).
    Anything invalid raises :class:`~fsw.errors.ConfigError` naming the key or file.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Final

from fsw.bus import CommandClient, CommandOutcome
from fsw.deployment import Deployment, ProcessSpec, numeric_params
from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Point, Severity
from fsw.errors import CommandRejected, ConfigError, FswError, StorageError
from fsw.messages import Kind, Message
from fsw.modes import AUTO, BOOT, DEGRADED, EMERGENCY, GROUND, MODES, NOMINAL, BaseModes, ModeChange, Refusal
from fsw.monitors import DISABLED, GREEN, RED, YELLOW, MonitorBank, MonitorSpec, Transition, load_monitors
from fsw.process import FlightProcess, Frame
from fsw.run import RunOptions, parse_duration
from fsw.sequences import ABORTED, DONE, WAITING, Sequence, SequenceRun, load_sequence, parse_sequence
from fsw.store import StateStore, quarantine
from fsw.timesource import TimeSource

#: ``[processes.protection.params]`` numbers: name -> (default, low, high).
PARAMS: Final[dict[str, tuple[float, float, float]]] = {
    "recovery_hold_s": (600.0, 0.0, 1e7),
    "boot_s": (10.0, 0.0, 1e6),
    "step_timeout_s": (30.0, 0.1, 1e6),
    "event_log_rows": (100_000.0, 100.0, 1e8),
}
_TEXT_PARAMS: Final = (
    "monitors",
    "sequences",
    "store",
    "entry_sequences",
    "schedule",
    "mode_timers",
    "emergency_exit",
)

#: Sequences running at once, at most (a start past it is refused).
MAX_RUNNING: Final = 16
#: Sequences loaded and uplinked, at most.
MAX_SEQUENCES: Final = 256
#: Longest uplinked sequence text (characters).
MAX_UPLINK_CHARS: Final = 100_000

_SEVERITY_OF_STATE: Final = {GREEN: "info", YELLOW: "warning", RED: "error", DISABLED: "warning"}


def resolve_file(reference: str, deployment: Deployment, key: str) -> Path:
    """The file a parameter names: ``package:path`` (a packaged resource) or a path.

    A relative path is taken from the deployment file's directory (from the working
    directory for an embedded deployment). Raises :class:`ConfigError` naming ``key``.
    """
    package, sep, inner = reference.partition(":")
    if sep and package.replace("_", "").replace(".", "").isalnum() and not Path(package).is_absolute():
        try:
            traversable = resources.files(package).joinpath(inner)
        except (ModuleNotFoundError, TypeError) as exc:
            msg = f"[{key}] {reference!r}: no package {package!r}"
            raise ConfigError(msg) from exc
        return Path(str(traversable))
    path = Path(reference).expanduser()
    if not path.is_absolute():
        source = Path(deployment.source)
        base = source.parent if source.is_file() else Path.cwd()
        path = base / path
    return path


def deployment_dictionaries(deployment: Deployment) -> dict[str, Dictionary]:
    """Every process's full dictionary (see :func:`fsw.launch.deployment_dictionaries`)."""
    from fsw.launch import deployment_dictionaries as load  # noqa: PLC0415 - the launcher imports this module

    return load(deployment)


def check_points(
    specs: Iterable[MonitorSpec], deployment: Deployment, dictionaries: Mapping[str, Dictionary]
) -> None:
    """Refuse monitors whose points or events no process of ``deployment`` can produce.

    A point must be a telemetry point of its source, or the source must have a board (its
    channels are read from board samples); an event must be one its source's dictionary
    declares (the supervisor's are not checked: it has no dictionary). Raises
    :class:`ConfigError` naming the monitor.
    """
    sources = set(dictionaries) | {"supervisor"}
    boards = {spec.name for spec in deployment.processes if spec.board is not None}
    for spec in specs:
        names = sorted(spec.points) + [e for e in (spec.event, spec.clear_event) if e]
        for name in names:
            source, _, point = name.partition(".")
            if source not in sources:
                msg = f"monitor {spec.name!r}: no process {source!r} in this deployment ({name})"
                raise ConfigError(msg)
            if name in spec.points and source not in boards:
                known = {p.name for p in dictionaries[source].telemetry} if source in dictionaries else set()
                if point not in known:
                    msg = f"monitor {spec.name!r}: {source} has no telemetry point {point!r}"
                    raise ConfigError(msg)
            elif name not in spec.points and source in dictionaries:
                events = {e.name for e in dictionaries[source].events}
                if point not in events:
                    msg = f"monitor {spec.name!r}: {source} has no event {point!r} ({name})"
                    raise ConfigError(msg)


class FaultProtection(FlightProcess):
    """The fault-protection process (see the module docstring)."""

    #: Ticks through the broker, behind the telemetry they follow: never ahead of its data.
    ticks_through_bus: ClassVar[bool] = True

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("mode", ArgType.STR, "", "Base mode: " + ", ".join(MODES) + "."),
            Point("mode_changes", ArgType.INT, "", "Mode changes since the store began."),
            Point("monitors_red", ArgType.INT, "", "Monitors red now."),
            Point("monitors_yellow", ArgType.INT, "", "Monitors yellow now."),
            Point("monitors_disabled", ArgType.INT, "", "Monitors disabled by command."),
            Point("red", ArgType.STR, "", "Names of the red monitors, comma-separated."),
            Point("responses", ArgType.INT, "", "Monitor responses started."),
            Point("sequences_running", ArgType.INT, "", "Stored sequences running."),
            Point("sequences_completed", ArgType.INT, "", "Sequences run to their end."),
            Point("sequences_aborted", ArgType.INT, "", "Sequences aborted (a step failed or was stopped)."),
            Point("store_errors", ArgType.INT, "", "Writes to the state store that failed."),
        ),
        events=(
            EventDef("mode_changed", Severity.WARNING, "The base mode changed (previous, mode, cause, by)."),
            EventDef("mode_request_refused", Severity.WARNING, "A mode request the table refuses now."),
            EventDef("monitor_changed", Severity.WARNING, "A monitor changed state (and why)."),
            EventDef("response_started", Severity.WARNING, "A monitor's response started (sequence, mode)."),
            EventDef("response_skipped", Severity.WARNING, "A response's sequence is running or unknown."),
            EventDef("sequence_started", Severity.INFO, "A stored sequence started (by whom)."),
            EventDef("sequence_completed", Severity.INFO, "A stored sequence ran to its end."),
            EventDef("sequence_aborted", Severity.ERROR, "A stored sequence was aborted (reason)."),
            EventDef("sequence_uplinked", Severity.INFO, "A sequence was uplinked and checked."),
            EventDef("protection_resumed", Severity.WARNING, "Started from a stored state."),
            EventDef("protection_store_damaged", Severity.ERROR, "The state store was damaged: moved aside."),
            EventDef("protection_store_error", Severity.ERROR, "A write to the state store failed."),
        ),
        commands=(
            CommandDef(
                "set_mode",
                (Arg("mode", ArgType.STR, choices=MODES[1:]),),
                "Ask for a base mode (ground rows of the mode table); rejected with the reason otherwise.",
            ),
            CommandDef("enable_monitor", (Arg("name", ArgType.STR),), "Enable a monitor."),
            CommandDef(
                "disable_monitor",
                (Arg("name", ArgType.STR),),
                "Disable a monitor (it stops responding until enabled).",
                critical=True,
            ),
            CommandDef("rearm_monitor", (Arg("name", ArgType.STR),), "Unlatch a one-shot monitor."),
            CommandDef("list_monitors", (), "Every monitor's state (result: monitors)."),
            CommandDef("start_sequence", (Arg("name", ArgType.STR),), "Start a stored sequence."),
            CommandDef("stop_sequence", (Arg("name", ArgType.STR),), "Stop a running sequence."),
            CommandDef("list_sequences", (), "Loaded sequences and the running ones (result)."),
            CommandDef(
                "uplink_sequence",
                (Arg("text", ArgType.STR, description="The sequence file's text."),),
                "Check a sequence against the dictionaries and keep it (replaces one of the same name).",
            ),
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
        where = f"processes.{spec.name}.params"
        numbers = {k: v for k, v in spec.params.items() if k not in _TEXT_PARAMS}
        values = numeric_params(numbers, PARAMS, where)
        self.recovery_hold_s = values["recovery_hold_s"]
        self.boot_s = values["boot_s"]
        self.step_timeout_s = values["step_timeout_s"]
        self.event_log_rows = int(values["event_log_rows"])
        self.dictionaries = deployment_dictionaries(deployment)
        self.specs = self._load_monitors(where)
        self.sequences = self._load_sequences(where)
        self.entry_sequences = self._entry_sequences(where)
        self.schedule = self._schedule(where)
        #: Scheduled sequences already started (kept in the store: each starts once).
        self._scheduled_done: set[str] = set()
        self.store_path = self._store_path(where)
        self.bank = MonitorBank(self.specs)
        emergency_exit = spec.params.get("emergency_exit", False)
        if not isinstance(emergency_exit, bool):
            msg = f"[{where}] emergency_exit must be true or false, got {emergency_exit!r}"
            raise ConfigError(msg)
        self.emergency_exit = emergency_exit
        self.mode_timers = self._mode_timers(where)
        #: Mode timers' sequences started in the present mode (reset on every mode change).
        self._timer_starts = 0
        self.modes = BaseModes(recovery_hold_s=self.recovery_hold_s, emergency_exit=emergency_exit)
        self.runs: dict[str, SequenceRun] = {}
        self._run_by: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        self.counters = {
            "mode_changes": 0,
            "responses": 0,
            "sequences_completed": 0,
            "sequences_aborted": 0,
        }
        self.store_errors = 0
        self.store: StateStore | None = None
        self.client: CommandClient | None = None
        self._booted_s: float | None = None
        self._points = self.bank.points
        #: The monitored fields of each source (``power`` -> {``battery_soc``, ...}).
        self._fields: dict[str, frozenset[str]] = {}
        for point in self._points:
            source, _, field = point.partition(".")
            self._fields[source] = self._fields.get(source, frozenset()) | {field}
        self._watched_events = self.bank.events
        self._impairing = {s.name for s in self.specs if s.response.mode == DEGRADED}
        self._uplinked: dict[str, str] = {}
        #: Events found while starting (a resumed state, a damaged store), published once joined.
        self._deferred_events: list[tuple[str, dict[str, Any]]] = []
        #: Events published while a response is under way, appended to the log after its send.
        self._unlogged: list[tuple[float, str, dict[str, Any]]] = []
        self._responding = False
        #: Mission time of each point's last sample judged.
        self._sampled_t_s: dict[str, float] = {}
        #: Mission time of the sample or event being judged (events are stamped with it).
        self._judging_t_s: float | None = None

    # ----------------------------------------------------------------- configuration

    def _load_monitors(self, where: str) -> tuple[MonitorSpec, ...]:
        reference = self.params.get("monitors", "")
        if not reference:
            return ()
        if not isinstance(reference, str):
            msg = f"[{where}] monitors must be a path"
            raise ConfigError(msg)
        specs = load_monitors(resolve_file(reference, self.deployment, f"{where}.monitors"))
        check_points(specs, self.deployment, self.dictionaries)
        for spec in specs:
            if spec.response.mode and spec.response.mode not in MODES[1:]:
                msg = f"monitor {spec.name!r}: response mode must be one of {', '.join(MODES[1:])}"
                raise ConfigError(msg)
        return specs

    def _load_sequences(self, where: str) -> dict[str, Sequence]:
        reference = self.params.get("sequences", "")
        if not reference:
            for spec in self.specs:
                if spec.response.sequence:
                    name = spec.response.sequence
                    msg = (
                        f"monitor {spec.name!r}: response sequence {name!r}, but [{where}] names no sequences"
                    )
                    raise ConfigError(msg)
            return {}
        if not isinstance(reference, str):
            msg = f"[{where}] sequences must be a directory path"
            raise ConfigError(msg)
        directory = resolve_file(reference, self.deployment, f"{where}.sequences")
        if not directory.is_dir():
            msg = f"[{where}] sequences: {directory} is not a directory"
            raise ConfigError(msg)
        loaded: dict[str, Sequence] = {}
        for path in sorted(directory.glob("*.seq"))[:MAX_SEQUENCES]:
            sequence = load_sequence(path, self.dictionaries)
            if sequence.name in loaded:
                msg = f"{path}: a sequence named {sequence.name!r} is already loaded"
                raise ConfigError(msg)
            loaded[sequence.name] = sequence
        for spec in self.specs:
            if spec.response.sequence and spec.response.sequence not in loaded:
                name = spec.response.sequence
                msg = f"monitor {spec.name!r}: response sequence {name!r} is not in {directory}"
                raise ConfigError(msg)
        return loaded

    def _entry_sequences(self, where: str) -> dict[str, str]:
        raw = self.params.get("entry_sequences", {})
        if not isinstance(raw, Mapping):
            msg = f"[{where}] entry_sequences must be a table of mode = sequence"
            raise ConfigError(msg)
        for mode, name in raw.items():
            if mode not in MODES[1:]:
                msg = f"[{where}.entry_sequences] {mode!r} is not a mode ({', '.join(MODES[1:])})"
                raise ConfigError(msg)
            if name not in self.sequences:
                msg = f"[{where}.entry_sequences] {mode} = {name!r}: no such sequence"
                raise ConfigError(msg)
        return {str(k): str(v) for k, v in raw.items()}

    def _schedule(self, where: str) -> dict[str, float]:
        raw = self.params.get("schedule", {})
        if not isinstance(raw, Mapping):
            msg = f'[{where}] schedule must be a table of sequence = mission time ("36h", "10d")'
            raise ConfigError(msg)
        schedule: dict[str, float] = {}
        for name, when in raw.items():
            if name not in self.sequences:
                msg = f"[{where}.schedule] {name!r}: no such sequence"
                raise ConfigError(msg)
            try:
                schedule[str(name)] = parse_duration(str(when))
            except ConfigError as exc:
                msg = f"[{where}.schedule] {name}: {exc}"
                raise ConfigError(msg) from exc
        return schedule

    def _mode_timers(self, where: str) -> dict[str, tuple[float, str, int, float]]:
        """``mode_timers``: mode -> (after_s, sequence, attempts, backoff), checked."""
        raw = self.params.get("mode_timers", {})
        if not isinstance(raw, Mapping):
            msg = f"[{where}] mode_timers must be a table of mode = {{ after, sequence, attempts }}"
            raise ConfigError(msg)
        timers: dict[str, tuple[float, str, int, float]] = {}
        for mode, table in raw.items():
            key = f"[{where}.mode_timers] {mode}"
            if mode not in MODES[1:]:
                msg = f"{key}: not a mode ({', '.join(MODES[1:])})"
                raise ConfigError(msg)
            if not isinstance(table, Mapping) or set(table) - {"after", "sequence", "attempts", "backoff"}:
                msg = f"{key} must be a table of after, sequence, attempts and backoff"
                raise ConfigError(msg)
            backoff = table.get("backoff", 1.0)
            if (
                isinstance(backoff, bool)
                or not isinstance(backoff, (int, float))
                or not 1.0 <= backoff <= 10.0
            ):
                msg = f"{key}: backoff must be a number from 1 to 10, got {backoff!r}"
                raise ConfigError(msg)
            name, attempts = table.get("sequence"), table.get("attempts", 1)
            if name not in self.sequences:
                msg = f"{key}: sequence {name!r} is not loaded"
                raise ConfigError(msg)
            if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
                msg = f"{key}: attempts must be a whole number from 1 to 100, got {attempts!r}"
                raise ConfigError(msg)
            try:
                after_s = parse_duration(str(table.get("after", "")))
            except ConfigError as exc:
                msg = f"{key}: after: {exc}"
                raise ConfigError(msg) from exc
            timers[str(mode)] = (after_s, str(name), attempts, float(backoff))
        return timers

    def _store_path(self, where: str) -> Path:
        reference = self.params.get("store", "")
        if not reference:
            return self.deployment.state_dir / f"{self.name}.db"
        if not isinstance(reference, str):
            msg = f"[{where}] store must be a path"
            raise ConfigError(msg)
        return resolve_file(reference, self.deployment, f"{where}.store")

    # ----------------------------------------------------------------- lifecycle

    def extra_subscriptions(self) -> tuple[bytes, ...]:
        """Housekeeping and board samples of monitored sources, and every event."""
        sources = sorted({p.partition(".")[0] for p in self._points})
        topics = [f"tlm.{s}.hk".encode() for s in sources]
        topics += [f"tlm.{s}.board_sample".encode() for s in sources]
        return (*topics, b"evt.")

    def setup(self) -> None:
        """Open the state store (resuming from it) and the command client."""
        super().setup()
        self._open_store()
        if self.context is None:
            msg = "process context missing"
            raise FswError(msg)
        self.client = CommandClient(
            self.deployment.bus.command, source=self.name, time=self.time, context=self.context
        )
        self.add_reader(self.client.socket, self._on_outcomes)

    def teardown(self) -> None:
        """Save the state and close the client and the store."""
        try:
            self._save_all()
        finally:
            if self.client is not None:
                self.client.close()
                self.client = None
            if self.store is not None:
                self.store.close()
                self.store = None
            super().teardown()

    def _open_store(self) -> None:
        try:
            self.store = StateStore(self.store_path, max_events=self.event_log_rows)
        except StorageError as exc:
            moved = quarantine(self.store_path)
            self.store = StateStore(self.store_path, max_events=self.event_log_rows)
            damaged = {"error": str(exc)[:200], "moved_to": moved.name}
            self._deferred_events.append(("protection_store_damaged", damaged))
        stored_run = self.store.get("run_id")
        new_run = stored_run not in (None, self.options.run_id)
        if self.options.lockstep and stored_run not in (None, self.options.run_id):
            # A simulated run starts its mission time at zero: the state of another one
            # does not apply. It is kept whole, moved aside.
            self.store.close()
            moved = quarantine(self.store_path, label="previous-run")
            self.log.info("protection_state_set_aside", moved_to=moved.name, run_id=stored_run)
            self.store = StateStore(self.store_path, max_events=self.event_log_rows)
        if stored_run != self.options.run_id:
            self._put("run_id", self.options.run_id, 0.0)
        self._resume(new_run=new_run)

    def _resume(self, *, new_run: bool = False) -> None:
        """Take up the stored state. In a new run (the whole base restarted) an event
        monitor that is not latched starts green: the processes whose events it counts
        started again too, and one that is still in trouble says so again (a board still
        silent is lost again), while one that is not never sends the clearing event."""
        if self.store is None:
            return
        self._uplinked = {}
        for name, text in dict(self.store.get("uplinked", {}) or {}).items():
            with contextlib.suppress(ConfigError):
                source = f"uplinked {name}"
                self.sequences[str(name)] = parse_sequence(
                    str(text), source=source, dictionaries=self.dictionaries
                )
                self._uplinked[str(name)] = str(text)
        self._scheduled_done = {str(n) for n in self.store.get("scheduled_done", []) or []}
        counters = self.store.get("counters", {}) or {}
        for key in self.counters:
            if isinstance(counters.get(key), int):
                self.counters[key] = counters[key]
        stored_monitors = self.store.get("monitors", {}) or {}
        for name, saved in stored_monitors.items():
            if name not in self.bank.specs or not isinstance(saved, dict):
                continue
            memory = self.bank.states[name]
            self.bank.enabled[name] = bool(saved.get("enabled", True))
            state = saved.get("state", GREEN)
            memory.latched = bool(saved.get("latched", False))
            if new_run and self.bank.specs[name].kind == "event" and not memory.latched:
                state = GREEN
            memory.state = memory.candidate = state if state in (GREEN, YELLOW, RED) else GREEN
            memory.transitions = int(saved.get("transitions", 0))
        stored_mode = self.store.get("mode")
        mode = stored_mode.get("mode") if isinstance(stored_mode, dict) else None
        red = self._red()
        resumed_runs: list[str] = []
        for saved in self.store.get("sequences", []) or []:
            name = saved.get("name") if isinstance(saved, dict) else None
            if name in self.sequences and len(self.runs) < MAX_RUNNING:
                run = SequenceRun(self.sequences[name], 0.0, self.step_timeout_s)
                run.index = min(int(saved.get("index", 0)), len(run.sequence.steps))
                if run.index >= len(run.sequence.steps):
                    continue
                self.runs[name] = run
                self._run_by[name] = str(saved.get("by", "resumed"))
                resumed_runs.append(name)
        if mode in MODES and mode not in (BOOT, NOMINAL):
            self.modes = BaseModes(
                recovery_hold_s=self.recovery_hold_s, initial=mode, emergency_exit=self.emergency_exit
            )
        self.modes.set_red(red, 0.0, red & self._impairing)
        self.mode = self.modes.mode
        if mode is not None:
            self._deferred_events.append(
                (
                    "protection_resumed",
                    {
                        "stored_mode": mode,
                        "mode": self.modes.mode,
                        "red": ",".join(sorted(red)),
                        "sequences": ",".join(resumed_runs),
                    },
                )
            )

    def _publish_deferred(self) -> None:
        """Publish what the start found (a resumed state, a damaged store), once: at the first
        frame, so the events carry the mission time of the resume, not 0."""
        for name, data in self._deferred_events:
            self._event(name, **data)
        self._deferred_events = []

    # ----------------------------------------------------------------- inputs

    def on_message(self, message: Message) -> None:
        """Feed samples and events to the monitors; respond at once."""
        if message.kind is Kind.TELEMETRY:
            if message.name == "hk":
                values = message.data
            elif message.name == "board_sample":
                raw = message.data.get("values")
                values = raw if isinstance(raw, dict) else {}
            else:
                return
            out: list[Transition] = []
            for field in self._fields.get(message.source, ()) & values.keys():
                point, value = f"{message.source}.{field}", values[field]
                # A reading comes in the board sample and again in housekeeping: judged once.
                if message.t_s > self._sampled_t_s.get(point, -math.inf):
                    self._sampled_t_s[point] = message.t_s
                    out += self.bank.observe(point, value, message.t_s)
            self._on_transitions(out, message.t_s)
        elif message.kind is Kind.EVENT and message.source != self.name:
            name = f"{message.source}.{message.name}"
            if name in self._watched_events:
                # A process that does not follow the frames (the supervisor) stamps its events
                # with mission time 0: such an event happened now, not at the start of the run.
                t_s = max(message.t_s, self.mission_time_s)
                self._on_transitions(self.bank.observe_event(name, message.data, t_s), t_s)

    def on_frame(self, frame: Frame) -> None:
        """Time-driven monitors, the mode machine's own moves, and sequence steps."""
        t_s = frame.t_s
        self._on_transitions(self.bank.check(t_s), t_s)
        if self._booted_s is None:
            self._booted_s = t_s
            self.modes.hold_from(t_s)  # a resumed mode holds from its first frame
            self._publish_deferred()
        if self.modes.mode != BOOT or self._boot_ready(t_s):
            self._apply(self.modes.step(t_s), t_s)
        self._mode_timer(t_s)
        for name, at_s in self.schedule.items():
            if t_s >= at_s and name not in self._scheduled_done:
                self._scheduled_done.add(name)
                self._put("scheduled_done", sorted(self._scheduled_done), t_s)
                self._start(name, "time", t_s)
        self._step_sequences(t_s)

    def _mode_timer(self, t_s: float) -> None:
        """Start the present mode's timer sequence each ``after`` in the mode, up to ``attempts``."""
        timer = self.mode_timers.get(self.modes.mode)
        if timer is None:
            return
        after_s, name, attempts, backoff = timer
        # Attempt k (from 1) comes after + after*backoff + ... + after*backoff**(k-1) in the mode.
        due_s = self.modes.entered_s + sum(after_s * backoff**i for i in range(self._timer_starts + 1))
        if self._timer_starts < attempts and t_s >= due_s and name not in self.runs:
            self._timer_starts += 1
            self._start(name, f"timer:{self.modes.mode}:{self._timer_starts}", t_s)

    def _boot_ready(self, t_s: float) -> bool:
        """``BOOT`` ends ``boot_s`` of mission time after the first frame: the first look."""
        started_s = self._booted_s if self._booted_s is not None else t_s
        return t_s - started_s >= self.boot_s

    def _red(self) -> set[str]:
        return {name for name in self.bank.specs if self.bank.state(name) == RED}

    def _on_transitions(self, transitions: list[Transition], t_s: float) -> None:
        if not transitions:
            return
        self._responding = True
        self._judging_t_s = t_s
        try:
            self._transitions(transitions, t_s)
        finally:
            self._responding = False
            self._judging_t_s = None
            self._log_events()

    def _transitions(self, transitions: list[Transition], t_s: float) -> None:
        for change in transitions:
            cause = ", ".join(f"{k}={_short(v)}" for k, v in change.cause.items())
            self._event(
                "monitor_changed",
                severity_override=_SEVERITY_OF_STATE.get(change.state, "warning"),
                monitor=change.monitor,
                previous=change.previous,
                state=change.state,
                cause=cause[:200],
                respond=change.respond,
            )
        red = self._red()
        self.modes.set_red(red, t_s, red & self._impairing)
        for change in transitions:
            if change.respond:
                self._respond(change, t_s)
        self._save_monitors(t_s)

    def _respond(self, change: Transition, t_s: float) -> None:
        response = change.response
        if not (response.sequence or response.mode):
            return
        self.counters["responses"] += 1
        self._event(
            "response_started", monitor=change.monitor, sequence=response.sequence, mode=response.mode
        )
        if response.sequence:
            self._start(response.sequence, f"monitor:{change.monitor}", t_s)
        if response.mode:
            self._request(response.mode, f"monitor {change.monitor}", AUTO, t_s)

    # ----------------------------------------------------------------- modes

    def _request(self, mode: str, cause: str, by: str, t_s: float) -> ModeChange | Refusal | None:
        self.modes.now_s = t_s
        result = self.modes.request(mode, cause, by)
        if isinstance(result, Refusal):
            self._event("mode_request_refused", mode=mode, cause=cause, by=by, reason=result.reason)
        else:
            self._apply(result, t_s)
        return result

    def _apply(self, change: ModeChange | None, t_s: float) -> None:
        if change is None:
            return
        self.mode = change.mode
        self.counters["mode_changes"] += 1
        self._timer_starts = 0
        self._event(
            "mode_changed",
            severity_override="critical" if change.mode == EMERGENCY else "warning",
            previous=change.previous,
            mode=change.mode,
            cause=change.cause,
            by=change.by,
        )
        for name, by in list(self._run_by.items()):
            if by.startswith("mode:") and by != f"mode:{change.mode}":
                self._finish(name, ABORTED, f"left {by[5:]}")
        entry = self.entry_sequences.get(change.mode)
        if entry and not (change.previous == BOOT and change.mode == NOMINAL):
            self._start(entry, f"mode:{change.mode}", t_s, restart=True)
        self._put("mode", {"mode": change.mode, "t_s": t_s, "cause": change.cause, "by": change.by}, t_s)

    # ----------------------------------------------------------------- sequences

    def _start(self, name: str, by: str, t_s: float, *, restart: bool = False) -> str:
        """Start sequence ``name``; returns why not ('' when started)."""
        if name not in self.sequences:
            reason = f"no sequence {name!r} (loaded: {', '.join(sorted(self.sequences)) or 'none'})"
        elif name in self.runs and not restart:
            reason = f"{name} is running"
        elif len(self.runs) >= MAX_RUNNING and name not in self.runs:
            reason = f"{MAX_RUNNING} sequences are running already"
        else:
            if name in self.runs:
                self._finish(name, ABORTED, f"restarted by {by}")
            self.runs[name] = SequenceRun(self.sequences[name], t_s, self.step_timeout_s)
            self._run_by[name] = by
            self._event("sequence_started", sequence=name, by=by, steps=len(self.sequences[name].steps))
            self._step_sequences(t_s)
            return ""
        if not by.startswith("ground"):
            self._event("response_skipped", sequence=name, by=by, reason=reason)
        return reason

    def _step_sequences(self, t_s: float) -> None:
        if self.client is None:
            return
        changed = False
        for name, run in list(self.runs.items()):
            run.check(t_s)
            step = run.due(t_s)
            if step is not None:
                try:
                    command_id = self.client.send(step.target, step.command, step.args)
                except FswError as exc:
                    run.completed(False, str(exc), t_s)
                else:
                    self._pending[command_id] = name
                changed = True
            if run.state in (DONE, ABORTED):
                self._finish(name, run.state, run.reason)
                changed = True
        if changed:
            self._save_sequences(t_s)

    def _on_outcomes(self) -> None:
        if self.client is None:
            return
        outcomes: list[CommandOutcome] = self.client.drain()
        t_s = self.mission_time_s
        for outcome in outcomes:
            name = self._pending.pop(outcome.id, None)
            run = self.runs.get(name or "")
            if run is None or run.state != WAITING:
                continue
            run.completed(outcome.ok, outcome.reason or outcome.status, t_s)
        if outcomes:
            self._step_sequences(t_s)

    def _finish(self, name: str, state: str, reason: str) -> None:
        run = self.runs.pop(name, None)
        by = self._run_by.pop(name, "")
        if run is None:
            return
        for command_id in [i for i, n in self._pending.items() if n == name]:
            del self._pending[command_id]
        if state == DONE:
            self.counters["sequences_completed"] += 1
            self._event("sequence_completed", sequence=name, by=by)
        else:
            run.stop(reason)
            self.counters["sequences_aborted"] += 1
            self._event("sequence_aborted", sequence=name, by=by, reason=(run.reason or reason)[:300])

    # ----------------------------------------------------------------- persistence

    def _put(self, key: str, value: Any, t_s: float) -> None:
        if self.store is None:
            return
        try:
            self.store.put(key, value, t_s)
        except StorageError as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: StorageError) -> None:
        self.store_errors += 1
        if self.store_errors == 1 or self.store_errors % 100 == 0:
            self.log.error("protection_store_error", error=str(exc)[:200], errors=self.store_errors)
            if self.bus is not None:
                data = {"severity": "error", "error": str(exc)[:200]}
                self.bus.publish(Kind.EVENT, "protection_store_error", data)

    def _save_monitors(self, t_s: float) -> None:
        monitors = {
            name: {
                "state": memory.state,
                "enabled": self.bank.enabled[name],
                "latched": memory.latched,
                "transitions": memory.transitions,
            }
            for name, memory in self.bank.states.items()
        }
        self._put("monitors", monitors, t_s)
        self._put("counters", dict(self.counters), t_s)

    def _save_sequences(self, t_s: float) -> None:
        runs = [
            {"name": name, "index": run.index, "by": self._run_by.get(name, "")}
            for name, run in self.runs.items()
        ]
        self._put("sequences", runs, t_s)
        self._put("counters", dict(self.counters), t_s)

    def _save_all(self) -> None:
        t_s = self.mission_time_s
        self._save_monitors(t_s)
        self._save_sequences(t_s)

    def _event(self, name: str, severity_override: str = "", **data: Any) -> None:
        """Publish event ``name`` and append it to the store's event log.

        Stamped with the mission time of the sample or event being judged, while one is (so
        a response carries the time of what caused it, whenever that reached this process),
        else with this process's frame time.
        """
        t_s = self.mission_time_s if self._judging_t_s is None else self._judging_t_s
        self.publish_event(name, data, at_s=t_s, level=severity_override)
        if self.store is not None:
            self._unlogged.append((t_s, name, dict(data)))
            if not self._responding:
                self._log_events()

    def _log_events(self) -> None:
        """Append the events published so far to the store's event log."""
        unlogged, self._unlogged = self._unlogged, []
        if self.store is None:
            return
        for t_s, name, data in unlogged:
            try:
                self.store.append_event(t_s, name, data)
            except StorageError as exc:
                self._store_failed(exc)

    # ----------------------------------------------------------------- telemetry

    def housekeeping(self) -> dict[str, Any]:
        """Mode, monitor counts, sequence counts."""
        states = [self.bank.state(name) for name in self.bank.specs]
        red = sorted(self._red())
        return {
            "mode": self.modes.mode,
            "mode_changes": self.counters["mode_changes"],
            "monitors_red": len(red),
            "monitors_yellow": states.count(YELLOW),
            "monitors_disabled": states.count(DISABLED),
            "red": ",".join(red)[:500],
            "responses": self.counters["responses"],
            "sequences_running": len(self.runs),
            "sequences_completed": self.counters["sequences_completed"],
            "sequences_aborted": self.counters["sequences_aborted"],
            "store_errors": self.store_errors,
        }

    def statistics(self) -> dict[str, Any]:
        """Mode at the end, changes, responses, sequences."""
        return {"mode": self.modes.mode, **self.counters, "monitors_red": len(self._red())}

    # ----------------------------------------------------------------- commands

    def _monitor(self, name: str) -> str:
        if name not in self.bank.specs:
            msg = f"no monitor {name!r} (known: {', '.join(sorted(self.bank.specs)) or 'none'})"
            raise CommandRejected(msg)
        return name

    def command_set_mode(self, mode: str) -> dict[str, Any]:
        """Ask for ``mode`` as ground; rejected with the table's reason."""
        result = self._request(mode, "ground command", GROUND, self.mission_time_s)
        if isinstance(result, Refusal):
            raise CommandRejected(result.reason)
        return {"mode": self.modes.mode, "changed": result is not None}

    def command_enable_monitor(self, name: str) -> dict[str, Any]:
        """Enable monitor ``name``."""
        return self._set_enabled(self._monitor(name), enabled=True)

    def command_disable_monitor(self, name: str) -> dict[str, Any]:
        """Disable monitor ``name`` (critical: armed first)."""
        return self._set_enabled(self._monitor(name), enabled=False)

    def _set_enabled(self, name: str, *, enabled: bool) -> dict[str, Any]:
        t_s = self.mission_time_s
        change = self.bank.set_enabled(name, enabled, t_s)
        self._on_transitions([change] if change else [], t_s)
        self._save_monitors(t_s)
        return {"monitor": name, "state": self.bank.state(name)}

    def command_rearm_monitor(self, name: str) -> dict[str, Any]:
        """Unlatch one-shot monitor ``name``."""
        t_s = self.mission_time_s
        change = self.bank.rearm(self._monitor(name), t_s)
        self._on_transitions([change] if change else [], t_s)
        return {"monitor": name, "state": self.bank.state(name)}

    def command_list_monitors(self) -> dict[str, Any]:
        """Every monitor's state."""
        return {"monitors": {name: self.bank.state(name) for name in self.bank.specs}}

    def command_start_sequence(self, name: str) -> dict[str, Any]:
        """Start stored sequence ``name``."""
        reason = self._start(name, "ground", self.mission_time_s)
        if reason:
            raise CommandRejected(reason)
        return {"sequence": name, "steps": len(self.sequences[name].steps)}

    def command_stop_sequence(self, name: str) -> dict[str, Any]:
        """Stop running sequence ``name``."""
        if name not in self.runs:
            msg = f"{name!r} is not running (running: {', '.join(sorted(self.runs)) or 'none'})"
            raise CommandRejected(msg)
        self._finish(name, ABORTED, "stopped by command")
        self._save_sequences(self.mission_time_s)
        return {"sequence": name}

    def command_list_sequences(self) -> dict[str, Any]:
        """Loaded sequences (with their step counts) and the running ones."""
        return {
            "loaded": {name: len(seq.steps) for name, seq in sorted(self.sequences.items())},
            "running": {
                name: {"step": run.index + 1, "state": run.state, "by": self._run_by.get(name, "")}
                for name, run in self.runs.items()
            },
        }

    def command_uplink_sequence(self, text: str) -> dict[str, Any]:
        """Check ``text`` as a sequence and keep it (in the store, so it survives restarts)."""
        if len(text) > MAX_UPLINK_CHARS:
            msg = f"sequence text is {len(text)} characters, more than {MAX_UPLINK_CHARS}"
            raise CommandRejected(msg)
        try:
            sequence = parse_sequence(text, source="uplink", dictionaries=self.dictionaries)
        except ConfigError as exc:
            raise CommandRejected(str(exc)) from exc
        if not sequence.name:
            msg = "an uplinked sequence needs a `sequence <name>` line"
            raise CommandRejected(msg)
        if sequence.name in self.runs:
            msg = f"{sequence.name} is running: stop it first"
            raise CommandRejected(msg)
        if sequence.name not in self.sequences and len(self.sequences) >= MAX_SEQUENCES:
            msg = f"{MAX_SEQUENCES} sequences are loaded already"
            raise CommandRejected(msg)
        self.sequences[sequence.name] = sequence
        self._uplinked[sequence.name] = text
        self._put("uplinked", dict(self._uplinked), self.mission_time_s)
        self._event("sequence_uplinked", sequence=sequence.name, steps=len(sequence.steps))
        return {"sequence": sequence.name, "steps": len(sequence.steps)}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)[:60]


__all__ = ["PARAMS", "FaultProtection", "check_points", "deployment_dictionaries", "resolve_file"]
