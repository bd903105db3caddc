"""The deployment file: which processes run, where, at what rates, with which boards.

A deployment is one TOML file. Every key has a default, so the smallest valid
file names only its processes; the base ships an embedded default (the
``fsw.deployments`` entry point named ``default``) so ``fsw up`` runs with no
file at all. Every error names the file and the key::

    [base]
    name = "lunar-base"            # also names the run directory
    run_dir = ""                   # sockets and board links; default: a per-user temp dir
    state_dir = ""                 # persistent state; default: <run_dir>/state

    [clock]
    frame_period_s = 0.1           # one minor frame
    frame_timeout_s = 2.0          # lockstep: wall time to wait for a late participant
    start_timeout_s = 30.0         # lockstep: wall time to wait for every participant to join
    housekeeping_period_s = 1.0    # mission time between two clock housekeeping packets

    [bus]
    publish = "ipc://{run_dir}/pub"        # publishers connect here (broker XSUB)
    subscribe = "ipc://{run_dir}/sub"      # subscribers connect here (broker XPUB)
    command = "ipc://{run_dir}/cmd"        # commanders connect here (router)
    dispatch = "ipc://{run_dir}/dispatch"  # processes receive commands here (router)
    frames = "ipc://{run_dir}/frames"      # frame reports to the clock
    ticks = "ipc://{run_dir}/ticks"        # the clock's ticks to each participant, direct
    status = "ipc://{run_dir}/status"      # supervisor status queries
    high_water_mark = 10000
    heartbeat_period_s = 1.0
    command_timeout_s = 1.0                # a target must accept or reject within this
    arm_window_s = 30.0                    # a critical command must follow its arm within this

    [restart]                      # the default supervision policy
    backoff_initial_s = 0.5
    backoff_max_s = 30.0
    max_restarts = 5               # ... within window_s, then the child is left down
    window_s = 300.0
    grace_s = 3.0                  # SIGTERM, then SIGKILL after this
    heartbeat_timeout_s = 5.0      # a child silent this long is hung and restarted

    [processes.power]
    entry = "subsystems.power:PowerProcess"
    rate_hz = 1.0                  # control loop rate; a whole number of frames
    housekeeping_period_s = 1.0
    start_after = ["simulator"]
    board = { backend = "sim", kind = "power" }
    restart = { max_restarts = 10 }        # overrides the default policy
    [processes.power.params]               # the process's own options
    shed_dod = 0.8
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from fsw.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Entry-point group that names embedded deployments; ``default`` is used by ``fsw up``.
DEPLOYMENT_ENTRY_POINT_GROUP: Final = "fsw.deployments"


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor restarts one child. Times are wall-clock seconds."""

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_restarts: int = 5
    window_s: float = 300.0
    grace_s: float = 3.0
    heartbeat_timeout_s: float = 5.0

    def backoff_s(self, attempt: int) -> float:
        """Delay before restart number ``attempt`` (1, 2, ...): doubling, capped."""
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class ClockConfig:
    """Frame timing. ``frame_period_s`` is mission time; the timeouts are wall time."""

    frame_period_s: float = 0.1
    frame_timeout_s: float = 2.0
    start_timeout_s: float = 30.0
    housekeeping_period_s: float = 1.0


@dataclass(frozen=True)
class BusConfig:
    """Endpoints and limits of the bus, with ``{run_dir}`` already filled in."""

    publish: str
    subscribe: str
    command: str
    dispatch: str
    frames: str
    status: str
    ticks: str = ""
    high_water_mark: int = 10000
    heartbeat_period_s: float = 1.0
    command_timeout_s: float = 1.0
    arm_window_s: float = 30.0


@dataclass(frozen=True)
class ProcessSpec:
    """One child of the supervisor."""

    name: str
    entry: str
    rate_hz: float = 1.0
    housekeeping_period_s: float = 1.0
    lockstep: bool = True
    start_after: tuple[str, ...] = ()
    board: Mapping[str, Any] | None = None
    #: Publish the board's traffic as telemetry (``board_sample``, ...): what recordings
    #: replay. Off saves a message per board read on long simulated runs.
    board_tap: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    restart: RestartPolicy = field(default_factory=RestartPolicy)

    def frames_per_cycle(self, frame_period_s: float) -> int:
        """Frames between two runs of the control loop (at least 1)."""
        return max(1, round(1.0 / (self.rate_hz * frame_period_s)))

    def frames_per_housekeeping(self, frame_period_s: float) -> int:
        """Frames between two housekeeping packets (at least 1)."""
        return max(1, round(self.housekeeping_period_s / frame_period_s))


@dataclass(frozen=True)
class Deployment:
    """A whole base: where its sockets live and which processes it runs."""

    name: str
    source: str
    run_dir: Path
    state_dir: Path
    clock: ClockConfig
    bus: BusConfig
    restart: RestartPolicy
    processes: tuple[ProcessSpec, ...]

    def process(self, name: str) -> ProcessSpec:
        """Return the process named ``name``; raises :class:`ConfigError` if absent."""
        for spec in self.processes:
            if spec.name == name:
                return spec
        msg = f"{self.source}: no process named {name!r}"
        raise ConfigError(msg)

    @property
    def lockstep_participants(self) -> tuple[str, ...]:
        """Names of the processes that report every frame to the clock."""
        return tuple(p.name for p in self.processes if p.lockstep)


_BUS_ENDPOINTS: Final = {
    "publish": "ipc://{run_dir}/pub",
    "subscribe": "ipc://{run_dir}/sub",
    "command": "ipc://{run_dir}/cmd",
    "dispatch": "ipc://{run_dir}/dispatch",
    "frames": "ipc://{run_dir}/frames",
    "ticks": "ipc://{run_dir}/ticks",
    "status": "ipc://{run_dir}/status",
}


def default_run_dir(name: str) -> Path:
    """Per-user directory for sockets and board links: ``$XDG_RUNTIME_DIR`` or the temp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"lunar-fsw-{os.getuid()}" / name


def load(path: str | Path, *, run_dir: str | Path | None = None) -> Deployment:
    """Read and validate the deployment file at ``path``.

    ``run_dir`` overrides ``[base] run_dir``. Raises :class:`ConfigError`
    naming the file and key for anything invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read deployment file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    return parse(text, source=str(path), run_dir=run_dir)


def numeric_params(
    params: Mapping[str, Any],
    table: Mapping[str, tuple[float, float, float]],
    where: str,
    *,
    unknown_ok: bool = False,
) -> dict[str, float]:
    """A process's numeric ``params`` checked against ``table`` (name -> default, low, high).

    Returns every name of ``table`` with its value or default. Raises :class:`ConfigError`
    naming ``[where]`` and the key for a value that is not a number, one out of range, or
    (unless ``unknown_ok``) a key ``table`` does not have.
    """
    unknown = sorted(set(params) - set(table))
    if unknown and not unknown_ok:
        msg = f"[{where}] unknown parameter {unknown[0]!r} (known: {', '.join(table)})"
        raise ConfigError(msg)
    values: dict[str, float] = {}
    for name, (default, low, high) in table.items():
        value = params.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            msg = f"[{where}] {name} must be a number, got {value!r}"
            raise ConfigError(msg)
        if not low <= value <= high:
            msg = f"[{where}] {name}={value!r} must be within [{low:g}, {high:g}]"
            raise ConfigError(msg)
        values[name] = float(value)
    return values


def embedded_text(name: str) -> str:
    """TOML text of the embedded deployment ``name``; :class:`ConfigError` if none is installed."""
    from importlib import metadata  # noqa: PLC0415 - costs megabytes; children never need it

    entries = {ep.name: ep for ep in metadata.entry_points(group=DEPLOYMENT_ENTRY_POINT_GROUP)}
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        msg = f"no embedded deployment named {name!r} (installed: {known})"
        raise ConfigError(msg)
    text = entries[name].load()
    if not isinstance(text, str):
        msg = f"the embedded deployment {name!r} is not TOML text"
        raise ConfigError(msg)
    return text


def load_embedded(name: str, *, run_dir: str | Path | None = None) -> Deployment:
    """Load the embedded deployment ``name`` (entry point ``fsw.deployments:<name>``)."""
    return parse(embedded_text(name), source=f"<embedded {name}>", run_dir=run_dir)


def load_default(*, run_dir: str | Path | None = None) -> Deployment:
    """Load the embedded default deployment (entry point ``fsw.deployments:default``)."""
    return load_embedded("default", run_dir=run_dir)


def parse(text: str, *, source: str = "<string>", run_dir: str | Path | None = None) -> Deployment:
    """Parse deployment TOML ``text``; ``source`` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    _only(raw, {"base", "clock", "bus", "restart", "processes"}, source, "")
    base = _table(raw, "base", source)
    _only(base, {"name", "run_dir", "state_dir"}, source, "base")
    name = _get(base, "name", str, "lunar-base", source, "base")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        msg = f"{source}: [base] name {name!r} must be letters, digits, '-' and '_'"
        raise ConfigError(msg)
    resolved_run_dir = Path(
        run_dir or _get(base, "run_dir", str, "", source, "base") or default_run_dir(name)
    ).expanduser()
    state_dir_text = _get(base, "state_dir", str, "", source, "base")
    state_dir = Path(state_dir_text).expanduser() if state_dir_text else resolved_run_dir / "state"

    clock = _dataclass_from(ClockConfig, _table(raw, "clock", source), source, "clock")
    if clock.frame_period_s <= 0:
        msg = f"{source}: [clock] frame_period_s must be positive"
        raise ConfigError(msg)

    bus_raw = dict(_table(raw, "bus", source))
    for key, template in _BUS_ENDPOINTS.items():
        bus_raw.setdefault(key, template)
    bus = _dataclass_from(BusConfig, bus_raw, source, "bus")
    bus = replace(
        bus,
        **{key: getattr(bus, key).replace("{run_dir}", str(resolved_run_dir)) for key in _BUS_ENDPOINTS},
    )
    if bus.high_water_mark < 1:
        msg = f"{source}: [bus] high_water_mark must be at least 1"
        raise ConfigError(msg)

    restart = _dataclass_from(RestartPolicy, _table(raw, "restart", source), source, "restart")
    processes = _processes(_table(raw, "processes", source), restart, clock, source)
    return Deployment(
        name=name,
        source=source,
        run_dir=resolved_run_dir,
        state_dir=state_dir,
        clock=clock,
        bus=bus,
        restart=restart,
        processes=processes,
    )


_RESERVED_NAMES: Final = frozenset({"bus", "clock", "supervisor", "router", "ground"})


def _processes(
    raw: Mapping[str, Any], restart: RestartPolicy, clock: ClockConfig, source: str
) -> tuple[ProcessSpec, ...]:
    specs: list[ProcessSpec] = []
    for name, table in raw.items():
        where = f"processes.{name}"
        if not isinstance(table, dict):
            msg = f"{source}: [{where}] must be a table"
            raise ConfigError(msg)
        if name in _RESERVED_NAMES or not name.replace("_", "").isalnum():
            msg = f"{source}: process name {name!r} is reserved or not letters, digits and '_'"
            raise ConfigError(msg)
        _only(
            table,
            {f.name for f in fields(ProcessSpec)} - {"name"},
            source,
            where,
        )
        entry = _get(table, "entry", str, "", source, where)
        if ":" not in entry:
            msg = f"{source}: [{where}] entry must be 'module:Class', got {entry!r}"
            raise ConfigError(msg)
        policy_raw = table.get("restart", {})
        if not isinstance(policy_raw, dict):
            msg = f"{source}: [{where}] restart must be a table"
            raise ConfigError(msg)
        policy = replace(restart, **_checked_fields(RestartPolicy, policy_raw, source, where))
        board = table.get("board")
        if board is not None and (not isinstance(board, dict) or "backend" not in board):
            msg = f"{source}: [{where}] board must be a table with a 'backend' key"
            raise ConfigError(msg)
        params = table.get("params", {})
        if not isinstance(params, dict):
            msg = f"{source}: [{where}] params must be a table"
            raise ConfigError(msg)
        start_after = table.get("start_after", [])
        if not isinstance(start_after, list) or not all(isinstance(s, str) for s in start_after):
            msg = f"{source}: [{where}] start_after must be a list of process names"
            raise ConfigError(msg)
        spec = ProcessSpec(
            name=name,
            entry=entry,
            rate_hz=_get(table, "rate_hz", float, 1.0, source, where),
            housekeeping_period_s=_get(table, "housekeeping_period_s", float, 1.0, source, where),
            lockstep=_get(table, "lockstep", bool, True, source, where),
            start_after=tuple(start_after),
            board=board,
            board_tap=_get(table, "board_tap", bool, True, source, where),
            params=params,
            restart=policy,
        )
        if spec.rate_hz <= 0 or spec.rate_hz * clock.frame_period_s > 1.0 + 1e-9:
            msg = (
                f"{source}: [{where}] rate_hz={spec.rate_hz} must be positive and at most "
                f"the frame rate ({1.0 / clock.frame_period_s:g} Hz)"
            )
            raise ConfigError(msg)
        specs.append(spec)
    names = {s.name for s in specs}
    for spec in specs:
        unknown = [n for n in spec.start_after if n not in names]
        if unknown:
            msg = f"{source}: [processes.{spec.name}] start_after names unknown {unknown}"
            raise ConfigError(msg)
    return tuple(specs)


def _table(raw: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        msg = f"{source}: [{key}] must be a table"
        raise ConfigError(msg)
    return value


def _only(raw: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        place = f"[{where}]" if where else "top level"
        msg = f"{source}: unknown key(s) {', '.join(unknown)} in {place}"
        raise ConfigError(msg)


def _get(raw: Mapping[str, Any], key: str, kind: type, default: Any, source: str, where: str) -> Any:
    value = raw.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        msg = f"{source}: [{where}] {key} = {value!r} must be of type {kind.__name__}"
        raise ConfigError(msg)
    return value


def _checked_fields(cls: type, raw: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(cls)}
    _only(raw, set(types), source, where)
    kinds = {"float": float, "int": int, "str": str, "bool": bool}
    return {key: _get(raw, key, kinds[str(types[key])], None, source, where) for key in raw}


def _dataclass_from(cls: type, raw: Mapping[str, Any], source: str, where: str) -> Any:
    return cls(**_checked_fields(cls, raw, source, where))
