"""Long-term autonomy campaigns: weeks of mission time, random faults, no ground contact.

A campaign runs the whole base in lockstep at full speed for ``days`` of mission time
with faults drawn from a **catalogue** (:class:`Catalogue`: each kind of failure with a
rate per day, its parameters and how long it lasts), and nobody commanding it. Then it
reads the recording and judges the run (:mod:`hil.campaign_analysis`) and writes a report
for operations engineers (:mod:`hil.campaign_report`). ``fsw campaign`` is the command
(:mod:`hil.campaign_cli`); :func:`run_campaign` does the whole thing.

Steps, each a function here:

1. :func:`load_catalogue` reads the catalogue (the packaged
   ``hil/campaign_catalogue.toml`` by default) and checks every entry against the fault
   table and the simulated boards; a bad one is a :class:`ConfigError` naming the file,
   the entry and the key.
2. :func:`draw_faults` draws the faults: per entry, a Poisson process of its rate (times
   ``rate_scale``) over mission time, from a generator seeded with the campaign seed and
   the entry's name (adding an entry does not move the others' draws), then the target,
   parameters and duration of each. A fault whose (board, kind, target) is still active
   from an earlier draw is left out and listed (the simulator takes one at a time).
   The same seed gives the same faults.
3. :func:`scenario_text` writes them as a scenario file (``docs/faults.md``): entry N of
   the file is fault N of the draw, which the simulator's events name ``scenario #N``.
4. :func:`campaign_deployment_text` prepares the deployment: fault-protection state in a
   fresh directory of the run (a campaign never resumes an old state), and, with
   ``frame_period_s``, coarser frames (every process's rate capped at the frame rate).
5. :func:`run_base` runs it under a :class:`~fsw.supervisor.Supervisor` in this process
   (the children are OS processes, as with ``fsw up``) with the scenario and a recording
   of the housekeeping and events, calling back with the progress.

Everything a report needs is written into the report directory first (``campaign.json``,
``scenario.toml``, ``run-summary.json``, ``recording/``, ``logs/``), so
:func:`hil.campaign_analysis.analyse` can judge it again later without running anything.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from fsw import deployment as deployment_module
from fsw.board import BoardDescription, board_backends
from fsw.errors import ConfigError
from fsw.run import RunOptions, parse_duration
from fsw.supervisor import Summary, Supervisor, clean_run_dir, new_run_id
from hil.faults import (
    BOARDS,
    KINDS,
    MAX_SCENARIO_ENTRIES,
    FaultError,
    FaultSpec,
    default_board_descriptions,
    make_fault,
    parse_scenario,
)
from hil.testing import merge_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECONDS_PER_DAY: Final = 86_400.0

#: The packaged catalogue: ``hil/campaign_catalogue.toml``.
DEFAULT_CATALOGUE: Final = "campaign_catalogue.toml"

#: Mission time at the start of a campaign without faults: fault protection boots and settles.
QUIET_START_S: Final = 1800.0

#: How long after its injection a fault's detection and response are looked for (default).
DEFAULT_DETECT_WINDOW_S: Final = 6 * 3600.0

#: What the campaign records: the subsystems' and fault protection's housekeeping, every event.
RECORD_TOPICS: Final = (
    "tlm.power.hk",
    "tlm.thermal.hk",
    "tlm.reactor.hk",
    "tlm.protection.hk",
    "evt.",
)

#: Files of a report directory.
CAMPAIGN_FILE: Final = "campaign.json"
SCENARIO_FILE: Final = "scenario.toml"
SUMMARY_FILE: Final = "run-summary.json"
RECORDING_DIR: Final = "recording"
LOGS_DIR: Final = "logs"
#: Fault-protection state of a campaign, in its run directory (removed before the run).
STATE_DIR: Final = "campaign-state"

#: Longest campaign accepted (mission days).
MAX_DAYS: Final = 3650.0

_ENTRY_KEYS: Final = frozenset(
    {"name", "board", "kind", "channel", "actuator", "params", "rate_per_day", "duration", "watch", "expect"}
)


# --- the catalogue --------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A parameter drawn uniformly in ``[low, high]`` (whole numbers when ``integer``)."""

    low: float
    high: float
    integer: bool = False

    def draw(self, rng: random.Random) -> float | int:
        """One value."""
        if self.integer:
            return rng.randint(int(self.low), int(self.high))
        if self.low == self.high:
            return self.low
        return rng.uniform(self.low, self.high)

    def describe(self) -> str:
        """``0.05..0.3`` or ``1``."""
        if self.low == self.high:
            return f"{self.low:g}"
        return f"{self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class CatalogueEntry:
    """One kind of failure the base can meet (one ``[[fault]]`` of a catalogue).

    ``channels`` / ``actuators``: the targets one is drawn from (empty: a board-level
    fault). ``duration_s``: the range its duration is drawn from, None for a fault that
    stays to the end. ``watch``: the subsystems whose warnings count as detecting it.
    """

    name: str
    board: str
    kind: str
    rate_per_day: float
    channels: tuple[str, ...] = ()
    actuators: tuple[str, ...] = ()
    params: Mapping[str, Range] = field(default_factory=dict)
    duration_s: tuple[float, float] | None = None
    watch: tuple[str, ...] = ()
    expect: str = ""

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """Every (channel, actuator) pair one occurrence may hit."""
        if self.channels:
            return tuple((c, "") for c in self.channels)
        if self.actuators:
            return tuple(("", a) for a in self.actuators)
        return (("", ""),)

    def draw(self, rng: random.Random, boards: Mapping[str, BoardDescription]) -> FaultSpec:
        """A fault of this entry: a target and parameters drawn with ``rng``.

        Raises :class:`FaultError` if the result is not a valid fault (a catalogue that
        passed :func:`parse_catalogue` never does).
        """
        channel, actuator = self.targets[rng.randrange(len(self.targets))]
        params = {name: r.draw(rng) for name, r in self.params.items()}
        rounded = {k: (v if isinstance(v, int) else round(v, 4)) for k, v in params.items()}
        return make_fault(boards, self.board, self.kind, channel=channel, actuator=actuator, params=rounded)

    def describe_duration(self) -> str:
        """``2h..12h`` or ``to the end``."""
        if self.duration_s is None:
            return "to the end"
        return f"{format_duration(self.duration_s[0])}..{format_duration(self.duration_s[1])}"


@dataclass(frozen=True)
class Catalogue:
    """The faults a campaign draws from; ``source`` names the file."""

    source: str
    entries: tuple[CatalogueEntry, ...]
    detect_window_s: float = DEFAULT_DETECT_WINDOW_S

    def entry(self, name: str) -> CatalogueEntry | None:
        """The entry called ``name``, or None."""
        return next((e for e in self.entries if e.name == name), None)

    @property
    def rate_per_day(self) -> float:
        """Faults per day of the whole catalogue (before ``rate_scale``)."""
        return sum(e.rate_per_day for e in self.entries)

    def to_json(self) -> list[dict[str, Any]]:
        """Plain data: one map per entry."""
        return [
            {
                "name": e.name,
                "board": e.board,
                "kind": e.kind,
                "targets": list(e.channels or e.actuators),
                "params": {k: r.describe() for k, r in e.params.items()},
                "rate_per_day": e.rate_per_day,
                "duration": e.describe_duration(),
                "watch": list(e.watch),
                "expect": e.expect,
            }
            for e in self.entries
        ]


def format_duration(seconds: float) -> str:
    """``90 s``, ``12 min``, ``3.5 h``, ``2 d``: the largest unit that keeps it at least 1."""
    for unit, size in (("d", SECONDS_PER_DAY), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _fail(where: str, key: str, what: str) -> ConfigError:
    return ConfigError(f"{where}, key {key!r}: {what}")


def _seconds(where: str, key: str, raw: object) -> float:
    if isinstance(raw, str):
        try:
            return parse_duration(raw)
        except ConfigError as exc:
            raise _fail(where, key, str(exc)) from exc
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw >= 0:
        return float(raw)
    raise _fail(where, key, f"{raw!r} is not a duration (like '2h', or seconds >= 0)")


def _names(where: str, key: str, raw: object) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise _fail(where, key, f"must be a name or a non-empty list of names, got {raw!r}")
    return tuple(items)


def _range(where: str, name: str, raw: object, integer: bool) -> Range:
    key = f"params.{name}"
    values = raw if isinstance(raw, list) else [raw, raw]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(values) != 2 or len(numbers) != 2 or not all(math.isfinite(v) for v in numbers):
        raise _fail(where, key, f"must be a number or [low, high], got {raw!r}")
    low, high = numbers
    if low > high:
        raise _fail(where, key, f"low {low:g} is above high {high:g}")
    if integer and not (low.is_integer() and high.is_integer()):
        raise _fail(where, key, "takes whole numbers")
    return Range(low, high, integer)


def _identity(where: str, raw: Mapping[str, Any]) -> tuple[str, str, str, float]:
    """Name, board, kind and rate of an entry, checked."""
    for key in raw:
        if key not in _ENTRY_KEYS:
            raise _fail(where, key, f"unknown key (keys: {', '.join(sorted(_ENTRY_KEYS))})")
    for key in ("name", "board", "kind", "rate_per_day"):
        if key not in raw:
            raise _fail(where, key, "missing")
    name, board, kind = raw["name"], raw["board"], raw["kind"]
    for key, value in (("name", name), ("board", board), ("kind", kind)):
        if not isinstance(value, str) or not value:
            raise _fail(where, key, f"must be a non-empty string, got {value!r}")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise _fail(where, "name", f"{name!r}: letters, digits, - and _ only")
    if board not in BOARDS:
        raise _fail(where, "board", f"{board!r} is not one of {', '.join(BOARDS)}")
    if kind not in KINDS:
        raise _fail(where, "kind", f"{kind!r} is not a fault kind (kinds: {', '.join(sorted(KINDS))})")
    rate = raw["rate_per_day"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0.0 <= rate <= 1000.0):
        raise _fail(where, "rate_per_day", f"must be a number in [0, 1000], got {rate!r}")
    return name, board, kind, float(rate)


def _params(where: str, kind: str, raw: object) -> dict[str, Range]:
    if not isinstance(raw, dict):
        raise _fail(where, "params", "must be a table of parameters")
    fault_kind = KINDS[kind]
    params: dict[str, Range] = {}
    for name, value in raw.items():
        param = fault_kind.param(name)
        if param is None:
            takes = ", ".join(p.name for p in fault_kind.params) or "no parameters"
            raise _fail(where, f"params.{name}", f"{kind} takes no such parameter (it takes {takes})")
        params[name] = _range(where, name, value, param.integer)
    return params


def _duration(where: str, raw: object) -> tuple[float, float]:
    values = raw if isinstance(raw, list) else [raw, raw]
    if len(values) != 2:
        raise _fail(where, "duration", f"must be a duration or [shortest, longest], got {raw!r}")
    shortest, longest = (_seconds(where, "duration", v) for v in values)
    if not 0.0 < shortest <= longest:
        raise _fail(where, "duration", "must be positive, shortest first")
    return shortest, longest


def _check_faults(where: str, entry: CatalogueEntry, boards: Mapping[str, BoardDescription]) -> None:
    """Every target, at both ends of every range, must be a fault the simulator accepts."""
    for channel, actuator in entry.targets:
        for end in ("low", "high"):
            values = {
                k: (int(getattr(r, end)) if r.integer else getattr(r, end)) for k, r in entry.params.items()
            }
            try:
                make_fault(boards, entry.board, entry.kind, channel=channel, actuator=actuator, params=values)
            except FaultError as exc:
                key = exc.key if exc.key in ("channel", "actuator", "board", "kind") else f"params.{exc.key}"
                raise _fail(where, key, exc.message) from exc


def _entry(where: str, raw: object, boards: Mapping[str, BoardDescription]) -> CatalogueEntry:
    if not isinstance(raw, dict):
        msg = f"{where}: an entry must be a table"
        raise ConfigError(msg)
    name, board, kind, rate = _identity(where, raw)
    if "channel" in raw and "actuator" in raw:
        raise _fail(where, "actuator", "give a channel or an actuator, not both")
    expect = raw.get("expect", "")
    if not isinstance(expect, str):
        raise _fail(where, "expect", "must be a string")
    entry = CatalogueEntry(
        name,
        board,
        kind,
        rate,
        channels=_names(where, "channel", raw["channel"]) if "channel" in raw else (),
        actuators=_names(where, "actuator", raw["actuator"]) if "actuator" in raw else (),
        params=_params(where, kind, raw.get("params", {})),
        duration_s=_duration(where, raw["duration"]) if "duration" in raw else None,
        watch=_names(where, "watch", raw["watch"]) if "watch" in raw else (board,),
        expect=expect,
    )
    _check_faults(where, entry, boards)
    return entry


def parse_catalogue(
    text: str, source: str = "<catalogue>", boards: Mapping[str, BoardDescription] | None = None
) -> Catalogue:
    """Parse catalogue TOML (``[[fault]]`` tables, optional ``detect_window``).

    ``boards`` defaults to the simulated world's. Raises :class:`ConfigError` naming
    ``source``, the entry (``[[fault]] #N``, counting from 1, and its name) and the key.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    for key in raw:
        if key not in ("fault", "detect_window", "description"):
            msg = f"{source}: unknown top-level key {key!r} (a catalogue has [[fault]] tables)"
            raise ConfigError(msg)
    entries_raw = raw.get("fault", [])
    if not isinstance(entries_raw, list) or not entries_raw:
        msg = f"{source}: no [[fault]] tables"
        raise ConfigError(msg)
    descriptions = boards if boards is not None else default_board_descriptions()
    entries: list[CatalogueEntry] = []
    for number, entry_raw in enumerate(entries_raw, start=1):
        label = entry_raw.get("name") if isinstance(entry_raw, dict) else None
        where = f"{source}: [[fault]] #{number}" + (f" ({label})" if isinstance(label, str) else "")
        entry = _entry(where, entry_raw, descriptions)
        if any(e.name == entry.name for e in entries):
            raise _fail(where, "name", f"{entry.name!r} is used twice")
        entries.append(entry)
    window_s = DEFAULT_DETECT_WINDOW_S
    if "detect_window" in raw:
        window_s = _seconds(source, "detect_window", raw["detect_window"])
        if window_s <= 0.0:
            raise _fail(source, "detect_window", "must be positive")
    return Catalogue(source, tuple(entries), window_s)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read a catalogue file, or the packaged one when ``path`` is None.

    Raises :class:`ConfigError` naming the file when it cannot be read or is invalid.
    """
    if path is None:
        text = resources.files("hil").joinpath(DEFAULT_CATALOGUE).read_text(encoding="utf-8")
        return parse_catalogue(text, f"<packaged {DEFAULT_CATALOGUE}>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read catalogue file {path}: {exc}"
        raise ConfigError(msg) from exc
    return parse_catalogue(text, str(path))


# --- the draw -------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnFault:
    """One fault of a campaign: entry ``number`` of its scenario (counting from 1).

    ``until_s`` None: it stays to the end of the campaign.
    """

    number: int
    entry: str
    spec: FaultSpec
    at_s: float
    until_s: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "number": self.number,
            "entry": self.entry,
            **self.spec.to_json(),
            "fault": self.spec.describe(),
            "at_s": self.at_s,
            "until_s": self.until_s,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DrawnFault:
        """The inverse of :meth:`to_json`."""
        spec = FaultSpec(
            str(raw["board"]),
            str(raw["kind"]),
            str(raw.get("channel", "")),
            str(raw.get("actuator", "")),
            dict(raw.get("params", {})),
        )
        until = raw.get("until_s")
        return cls(
            int(raw["number"]),
            str(raw["entry"]),
            spec,
            float(raw["at_s"]),
            None if until is None else float(until),
        )


@dataclass(frozen=True)
class SkippedFault:
    """A draw left out: its (board, kind, target) was still active from ``blocking``."""

    entry: str
    fault: str
    at_s: float
    blocking: str

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"entry": self.entry, "fault": self.fault, "at_s": self.at_s, "blocking": self.blocking}


@dataclass(frozen=True)
class Draw:
    """The faults of one campaign, in scenario order (by time), and the draws left out."""

    faults: tuple[DrawnFault, ...]
    skipped: tuple[SkippedFault, ...] = ()


def draw_faults(
    catalogue: Catalogue,
    *,
    duration_s: float,
    seed: int,
    rate_scale: float = 1.0,
    quiet_start_s: float = QUIET_START_S,
    boards: Mapping[str, BoardDescription] | None = None,
) -> Draw:
    """Draw a campaign's faults over ``[quiet_start_s, duration_s)`` of mission time. Pure.

    Per entry: arrivals of a Poisson process of ``rate_per_day * rate_scale``, then for
    each the target, the parameters and the duration, all from ``random.Random`` seeded
    with ``seed`` and the entry's name. Times are whole seconds. A fault whose duration
    runs past ``duration_s`` stays to the end (``until_s`` None). Raises
    :class:`ConfigError` for a negative ``rate_scale`` or more faults than a scenario holds.
    """
    if not (rate_scale >= 0.0 and math.isfinite(rate_scale)):
        msg = f"rate scale {rate_scale!r} must be a number >= 0"
        raise ConfigError(msg)
    descriptions = boards if boards is not None else default_board_descriptions()
    candidates: list[tuple[float, int, str, FaultSpec, float | None]] = []
    for order, entry in enumerate(catalogue.entries):
        rate_per_s = entry.rate_per_day * rate_scale / SECONDS_PER_DAY
        if rate_per_s <= 0.0:
            continue
        rng = random.Random(f"campaign/{seed}/{entry.name}")  # noqa: S311 - a simulation, not secrets
        t_s = quiet_start_s
        while True:
            t_s += rng.expovariate(rate_per_s)
            if not t_s < duration_s:  # inf too, for a vanishing rate
                break
            at_s = float(math.floor(t_s))
            spec = entry.draw(rng, descriptions)
            until_s: float | None = None
            if entry.duration_s is not None:
                until_s = float(math.ceil(t_s + rng.uniform(*entry.duration_s)))
                until_s = max(until_s, at_s + 1.0)
                if until_s >= duration_s:
                    until_s = None
            candidates.append((at_s, order, entry.name, spec, until_s))
            if len(candidates) > MAX_SCENARIO_ENTRIES:
                msg = f"more than {MAX_SCENARIO_ENTRIES} faults drawn: lower the rate scale or the days"
                raise ConfigError(msg)
    candidates.sort(key=lambda c: (c[0], c[1]))
    active: dict[tuple[str, str, str], tuple[float | None, str]] = {}
    faults: list[DrawnFault] = []
    skipped: list[SkippedFault] = []
    for at_s, _, name, spec, until_s in candidates:
        before = active.get(spec.key)
        if before is not None and (before[0] is None or before[0] > at_s):
            skipped.append(SkippedFault(name, spec.describe(), at_s, before[1]))
            continue
        number = len(faults) + 1
        faults.append(DrawnFault(number, name, spec, at_s, until_s))
        active[spec.key] = (until_s, f"#{number} {name}")
    return Draw(tuple(faults), tuple(skipped))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def scenario_text(draw: Draw, description: str = "") -> str:
    """The scenario file of ``draw``: ``[[fault]]`` N is fault N. Pure."""
    lines = [f"description = {_toml_value(description or 'fsw campaign')}", ""]
    for fault in draw.faults:
        spec = fault.spec
        lines.append(f"# {fault.number}: {fault.entry}")
        lines.append("[[fault]]")
        lines.append(f"at = {fault.at_s!r}")
        if fault.until_s is not None:
            lines.append(f"until = {fault.until_s!r}")
        lines.append(f"board = {_toml_value(spec.board)}")
        lines.append(f"kind = {_toml_value(spec.kind)}")
        if spec.channel:
            lines.append(f"channel = {_toml_value(spec.channel)}")
        if spec.actuator:
            lines.append(f"actuator = {_toml_value(spec.actuator)}")
        lines.extend(f"{name} = {_toml_value(value)}" for name, value in spec.params.items())
        lines.append("")
    text = "\n".join(lines)
    parse_scenario(text, "<campaign scenario>")  # the simulator must accept it
    return text


# --- the deployment and the run --------------------------------------------------------


def campaign_deployment_text(text: str, *, state_dir: Path, frame_period_s: float | None = None) -> str:
    """The deployment ``text`` as a campaign runs it. Pure.

    Fault-protection state goes to ``state_dir`` (a fresh directory: a campaign starts
    from nothing). With ``frame_period_s`` the clock runs frames of that length and every
    process's ``rate_hz`` is capped at the frame rate (housekeeping periods are kept).
    Raises :class:`ConfigError` for a bad deployment or frame period.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"deployment is not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    layer = [f"[base]\nstate_dir = {json.dumps(str(state_dir))}\n"]
    if frame_period_s is not None:
        if not (frame_period_s > 0.0 and math.isfinite(frame_period_s)):
            msg = f"frame period {frame_period_s!r} must be a positive number of seconds"
            raise ConfigError(msg)
        layer.append(f"[clock]\nframe_period_s = {frame_period_s!r}\n")
        frame_rate_hz = 1.0 / frame_period_s
        processes = raw.get("processes", {})
        for name, table in processes.items() if isinstance(processes, dict) else ():
            rate = table.get("rate_hz", 1.0) if isinstance(table, dict) else 1.0
            if isinstance(rate, (int, float)) and rate > frame_rate_hz:
                layer.append(f"[processes.{name}]\nrate_hz = {frame_rate_hz!r}\n")
    return merge_toml(text, *layer)


def deployment_source(reference: str) -> tuple[str, str]:
    """The TOML text and source name of a deployment file or an embedded deployment's name.

    Raises :class:`ConfigError` naming what is wrong.
    """
    path = Path(reference)
    if path.exists() or "/" in reference or reference.endswith(".toml"):
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            msg = f"cannot read deployment file {reference}: {exc.strerror}"
            raise ConfigError(msg) from exc
    return deployment_module.embedded_text(reference), f"<embedded {reference}>"


ProgressCallback = Callable[[int, int | None, float], None]


def run_base(
    text: str,
    source: str,
    run_dir: Path,
    *,
    seed: int,
    duration_s: float,
    scenario: Path | None,
    record_dir: Path,
    on_progress: ProgressCallback | None = None,
) -> Summary:
    """Run the deployment ``text`` in lockstep at full speed for ``duration_s``; blocking.

    The base's processes are children of this one, supervised as by ``fsw up``; the run
    ends at the duration, on SIGINT/SIGTERM, or when the broker fails to start (then
    :class:`~fsw.errors.ProcessError`). Returns the supervisor's summary.
    """
    deployment = deployment_module.parse(text, source=source, run_dir=run_dir)
    options = RunOptions(
        run_id=new_run_id(),
        speed=math.inf,
        seed=seed,
        duration_s=duration_s,
        record_dir=str(record_dir.resolve()),
        record_topics=RECORD_TOPICS,
        scenario=None if scenario is None else str(scenario.resolve()),
        board_backends=board_backends(),
    )
    clean_run_dir(deployment.run_dir)
    supervisor = Supervisor(deployment, text, options, on_progress=on_progress)
    return supervisor.run()


# --- the whole campaign -----------------------------------------------------------------


@dataclass(frozen=True)
class CampaignSettings:
    """What ``fsw campaign`` was asked for.

    ``faults``: ``random`` (drawn from the catalogue) or ``none``. ``catalogue``: a file,
    None for the packaged one. ``frame_period_s``: None keeps the deployment's.
    ``run_dir``: None for a fresh temporary directory, removed afterwards.
    """

    report_dir: Path
    days: float = 60.0
    faults: str = "random"
    seed: int = 0
    rate_scale: float = 1.0
    deployment: str = "lunation"
    catalogue: str | None = None
    frame_period_s: float | None = None
    run_dir: Path | None = None

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the setting that is out of range."""
        if not (0.0 < self.days <= MAX_DAYS):
            msg = f"--days {self.days!r} must be in (0, {MAX_DAYS:g}]"
            raise ConfigError(msg)
        if self.faults not in ("random", "none"):
            msg = f"--faults {self.faults!r} must be random or none"
            raise ConfigError(msg)
        if not (self.rate_scale >= 0.0 and math.isfinite(self.rate_scale)):
            msg = f"--rate-scale {self.rate_scale!r} must be a number >= 0"
            raise ConfigError(msg)

    @property
    def duration_s(self) -> float:
        """The campaign's mission time (s)."""
        return self.days * SECONDS_PER_DAY


def prepare(settings: CampaignSettings) -> tuple[Catalogue, Draw]:
    """Check the settings, load the catalogue and draw the faults (none for ``faults=none``)."""
    settings.check()
    catalogue = load_catalogue(settings.catalogue)
    if settings.faults == "none":
        return catalogue, Draw(())
    draw = draw_faults(
        catalogue, duration_s=settings.duration_s, seed=settings.seed, rate_scale=settings.rate_scale
    )
    return catalogue, draw


def _clear_outputs(report_dir: Path) -> None:
    """Remove what an earlier campaign wrote into ``report_dir`` (only our own files)."""
    recording = report_dir / RECORDING_DIR
    if recording.is_dir():
        for path in recording.glob("*.fswlog"):
            path.unlink()
    logs = report_dir / LOGS_DIR
    if logs.is_dir():
        for path in logs.glob("*.log"):
            path.unlink()


def run_campaign(
    settings: CampaignSettings,
    *,
    on_start: Callable[[Draw, Path, float], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Summary:
    """Draw the faults, run the base and leave everything the report needs in the report directory.

    Writes ``campaign.json`` (settings, catalogue, the draw), ``scenario.toml``,
    ``run-summary.json``, ``recording/`` and ``logs/`` (each process's log) into
    ``settings.report_dir`` (created; earlier campaign files in it are replaced). Blocking
    for the whole run; ``on_start(draw, run_dir, frame_period_s)`` is called before the base starts.
    Raises :class:`ConfigError` for bad settings, catalogue or deployment.
    """
    catalogue, draw = prepare(settings)
    text, source = deployment_source(settings.deployment)
    report_dir = settings.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    _clear_outputs(report_dir)
    scenario: Path | None = None
    if draw.faults:
        scenario = report_dir / SCENARIO_FILE
        description = f"fsw campaign: {settings.days:g} days, seed {settings.seed}, {catalogue.source}"
        scenario.write_text(scenario_text(draw, description), encoding="utf-8")
    temporary = settings.run_dir is None
    run_dir = Path(tempfile.mkdtemp(prefix="fsw-campaign-")) if temporary else Path(settings.run_dir or "")
    state_dir = run_dir / STATE_DIR
    try:
        shutil.rmtree(state_dir, ignore_errors=True)  # a campaign never resumes an old state
        run_text = campaign_deployment_text(text, state_dir=state_dir, frame_period_s=settings.frame_period_s)
        deployment = deployment_module.parse(run_text, source=source, run_dir=run_dir)
        simulator = [p for p in deployment.processes if p.entry == "hil.simulator:Simulator"]
        if not simulator:
            msg = f"{source}: a campaign needs the simulator (hil.simulator:Simulator) in the deployment"
            raise ConfigError(msg)
        if any(p.params.get("scenario") for p in simulator):
            msg = f"{source}: the simulator has a scenario of its own; a campaign brings its own faults"
            raise ConfigError(msg)
        _write_json(
            report_dir / CAMPAIGN_FILE,
            {
                "settings": {
                    "days": settings.days,
                    "faults": settings.faults,
                    "seed": settings.seed,
                    "rate_scale": settings.rate_scale,
                    "deployment": source,
                    "catalogue": catalogue.source,
                    "frame_period_s": deployment.clock.frame_period_s,
                    "frame_period_overridden": settings.frame_period_s is not None,
                },
                "power_params": dict(_params_of(deployment, "subsystems.power:PowerProcess")),
                "detect_window_s": catalogue.detect_window_s,
                "catalogue": catalogue.to_json(),
                "faults": [f.to_json() for f in draw.faults],
                "skipped": [s.to_json() for s in draw.skipped],
            },
        )
        if on_start is not None:
            on_start(draw, run_dir, deployment.clock.frame_period_s)
        summary = run_base(
            run_text,
            source,
            run_dir,
            seed=settings.seed,
            duration_s=settings.duration_s,
            scenario=scenario,
            record_dir=report_dir / RECORDING_DIR,
            on_progress=on_progress,
        )
        _write_json(report_dir / SUMMARY_FILE, summary.to_json())
        _copy_logs(run_dir / LOGS_DIR, report_dir / LOGS_DIR)
        return summary
    finally:
        if temporary:
            shutil.rmtree(run_dir, ignore_errors=True)


def _params_of(deployment: deployment_module.Deployment, entry: str) -> Mapping[str, Any]:
    for spec in deployment.processes:
        if spec.entry == entry:
            return spec.params
    return {}


def _copy_logs(source: Path, target: Path) -> None:
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.log"):
        shutil.copy2(path, target / path.name)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def faults_due(faults: Sequence[DrawnFault]) -> Callable[[float], int]:
    """A function of mission time: how many of ``faults`` are due by then (for a progress bar)."""
    times = sorted(f.at_s for f in faults)
    return lambda t_s: bisect.bisect_right(times, t_s)


__all__ = [
    "CampaignSettings",
    "Catalogue",
    "CatalogueEntry",
    "Draw",
    "DrawnFault",
    "Range",
    "SkippedFault",
    "campaign_deployment_text",
    "draw_faults",
    "load_catalogue",
    "parse_catalogue",
    "prepare",
    "run_base",
    "run_campaign",
    "scenario_text",
]
