"""Judging a campaign: what happened to each fault, the base's modes, and the safety invariants.

:func:`read_observations` reads a campaign's recording once (housekeeping of power,
thermal, reactor and fault protection, and every event) into :class:`Observations`.
The rest are pure functions over those, testable on synthetic inputs:

* :func:`injections` pairs the simulator's ``fault_injected`` / ``fault_cleared`` /
  ``fault_rejected`` events with the drawn faults (``origin = "scenario #N"``);
* :func:`fault_outcome` finds, within the catalogue's detection window after an injection,
  the first **detection** (a fault-protection ``monitor_changed`` to yellow or red whose
  cause names a watched subsystem's point or event, or a warning-or-worse event of a watched
  subsystem) and the first **responses**: fault protection's (``response_started`` of a
  monitor that detected it, and the modes it entered) and the subsystems' own
  (``load_shed``, ``reactor_setback``, ``reactor_trip``, mode changes of reactor or
  thermal). Latencies are mission time from the injection;
* :func:`mode_spans` turns ``mode_changed`` events into a timeline;
* :func:`check_invariants` judges the four safety invariants (:data:`INVARIANTS`).

Invariants are judged on the flight software's own telemetry. Samples of a point while an
injected sensor fault (``stuck``, ``offset``, ``noisy``, ``dropped``) lies about it, or while
its board is ``silent``, are not judged (they are counted as *masked*): the report says how
many. The subsystem process of a board is taken to have the board's name (``power``,
``thermal``, ``comms``, ``reactor``), as in the embedded deployments.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsw.errors import CodecError, ConfigError
from fsw.messages import Kind, decode
from fsw.modes import MODES
from fsw.monitors import as_number
from fsw.supervisor import history_digest
from hil.campaign import (
    CAMPAIGN_FILE,
    RECORDING_DIR,
    SUMMARY_FILE,
    DrawnFault,
)
from hil.recording import LogReader, Selection, SelectionCounts, select

#: Design-basis maximum fuel temperature (C): never to be exceeded.
FUEL_LIMIT_C: Final = 850.0
#: Below this the main bus has collapsed (the simulated board reads 95 V): tier 0 is short.
COLLAPSE_BUS_V: Final = 100.0
#: Default ``hard_cut_dod`` of the power subsystem: the battery floor is 1 - this.
HARD_CUT_DOD: Final = 0.90
#: State of charge below the floor that still counts as at the floor (the cut acts at the
#: first reading past it, and tier 0 drains on).
SOC_TOLERANCE: Final = 0.005
#: Samples this long after a sensor fault cleared are still not judged (mission s).
MASK_MARGIN_S: Final = 30.0
#: Events kept from a recording (the rest are counted).
MAX_EVENTS: Final = 500_000

SEVERE: Final = frozenset({"warning", "error", "critical"})
SENSOR_KINDS: Final = frozenset({"stuck", "offset", "noisy", "dropped"})
#: Events by which a subsystem answers a fault on its own.
SUBSYSTEM_ACTIONS: Final = frozenset(
    {"load_shed", "reactor_setback", "reactor_trip", "reactor_mode_changed", "thermal_mode_changed"}
)
PROTECTION: Final = "protection"

#: Housekeeping points kept, by source (numbers; booleans as 0/1).
POINTS: Final[Mapping[str, tuple[str, ...]]] = {
    "power": (
        "battery_soc",
        "bus_voltage_v",
        "solar_power_w",
        "reactor_power_w",
        "load_power_w",
        "tiers_on",
    ),
    "thermal": (
        "battery_temp_c",
        "avionics_temp_c",
        "habitat_temp_c",
        "radiator_temp_c",
        "reactor_radiator_temp_c",
    ),
    "reactor": ("fuel_temp_c", "electric_power_w", "power_pct"),
    PROTECTION: ("monitors_red", "monitors_yellow"),
}
#: Text points kept as changes (mission time, value).
TEXT_POINTS: Final[Mapping[str, tuple[str, ...]]] = {
    PROTECTION: ("mode",),
    "power": ("mode",),
    "reactor": ("mode",),
}

HELD: Final = "held"
VIOLATED: Final = "violated"
NOT_JUDGED: Final = "not judged"

#: The safety invariants: key and what it says.
INVARIANTS: Final = (
    ("fuel_temp", f"fuel never above {FUEL_LIMIT_C:g} C"),
    ("battery_floor", "battery never below its hard-cut floor"),
    ("tier0_powered", "tier-0 loads never unpowered while energy was available"),
    ("modes_defined", "no mode the machine does not define"),
)


# --- observations ---------------------------------------------------------------------


@dataclass
class Table:
    """Samples of one source's housekeeping: times and one column per point (NaN if absent)."""

    points: tuple[str, ...]
    t_s: array[float] = field(default_factory=lambda: array("d"))
    columns: dict[str, array[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for point in self.points:
            self.columns.setdefault(point, array("d"))

    def add(self, t_s: float, data: Mapping[str, Any]) -> None:
        """Append one sample."""
        self.t_s.append(t_s)
        for point in self.points:
            self.columns[point].append(as_number(data.get(point)))

    def __len__(self) -> int:
        return len(self.t_s)

    @classmethod
    def of(cls, points: Sequence[str], rows: Iterable[tuple[float, Mapping[str, Any]]]) -> Table:
        """A table from ``(t_s, data)`` rows (for tests and tools)."""
        table = cls(tuple(points))
        for t_s, data in rows:
            table.add(t_s, data)
        return table


@dataclass(frozen=True)
class EventRecord:
    """One event: mission time, source, name and data (``severity`` among them)."""

    t_s: float
    source: str
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """The event's severity (``info`` if it has none)."""
        return str(self.data.get("severity", "info"))


@dataclass
class Observations:
    """What a campaign's recording holds, as the analysis needs it.

    ``tables``: housekeeping by source; ``texts``: text points as changes, by
    ``source.point``; ``texts_seen``: every value each text point took; ``events`` in
    mission-time order; ``end_s``: the last mission time recorded.
    """

    tables: dict[str, Table] = field(default_factory=lambda: {s: Table(p) for s, p in POINTS.items()})
    texts: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    texts_seen: dict[str, set[str]] = field(default_factory=dict)
    events: list[EventRecord] = field(default_factory=list)
    events_dropped: int = 0
    undecodable: int = 0
    end_s: float = 0.0
    last_hk: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_text(self, name: str, t_s: float, value: str) -> None:
        """Note a text point's value (kept when it changes)."""
        changes = self.texts.setdefault(name, [])
        if not changes or changes[-1][1] != value:
            changes.append((t_s, value))
        self.texts_seen.setdefault(name, set()).add(value)

    def add_event(self, event: EventRecord) -> None:
        """Keep an event (up to :data:`MAX_EVENTS`)."""
        if len(self.events) < MAX_EVENTS:
            self.events.append(event)
        else:
            self.events_dropped += 1


def read_observations(log: str | Path) -> Observations:
    """Read a campaign's recording (file or directory) in one pass. Blocking.

    Raises :class:`ConfigError` if ``log`` holds no recording.
    """
    observations = Observations()
    topics = (*(f"tlm.{source}.hk".encode() for source in POINTS), b"evt.")
    counts = SelectionCounts()
    with LogReader(log) as reader:
        for item in select(reader, Selection(topics=topics), counts):
            try:
                message = decode(item.record.topic, item.record.body)
            except CodecError:
                observations.undecodable += 1
                continue
            t_s = message.t_s
            if math.isfinite(t_s):
                observations.end_s = max(observations.end_s, t_s)
            if message.kind is Kind.EVENT:
                observations.add_event(EventRecord(t_s, message.source, message.name, message.data))
                continue
            table = observations.tables.get(message.source)
            if table is None or message.name != "hk":
                continue
            table.add(t_s, message.data)
            observations.last_hk[message.source] = message.data
            for point in TEXT_POINTS.get(message.source, ()):
                value = message.data.get(point)
                if isinstance(value, str):
                    observations.add_text(f"{message.source}.{point}", t_s, value)
    observations.events.sort(key=lambda e: e.t_s)
    return observations


# --- faults ---------------------------------------------------------------------------


@dataclass
class Injection:
    """What the simulator did with scenario fault ``number``: when injected, cleared, or why refused."""

    number: int
    injected_s: float | None = None
    cleared_s: float | None = None
    rejected: str = ""


_ORIGIN: Final = re.compile(r"^scenario #(\d+)$")


def injections(events: Iterable[EventRecord]) -> dict[int, Injection]:
    """The simulator's fault events, by scenario entry number. Pure."""
    found: dict[int, Injection] = {}
    for event in events:
        if event.source != "simulator" or event.name not in (
            "fault_injected",
            "fault_cleared",
            "fault_rejected",
        ):
            continue
        match = _ORIGIN.match(str(event.data.get("origin", "")))
        if match is None:
            continue
        number = int(match.group(1))
        record = found.setdefault(number, Injection(number))
        if event.name == "fault_injected" and record.injected_s is None:
            record.injected_s = event.t_s
        elif event.name == "fault_cleared":
            record.cleared_s = event.t_s
        elif event.name == "fault_rejected":
            record.rejected = str(event.data.get("reason", "rejected"))
    return found


@dataclass(frozen=True)
class Sign:
    """Something the base did or said: when, who, what (one line of text)."""

    t_s: float
    source: str
    name: str
    text: str

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"t_s": self.t_s, "source": self.source, "name": self.name, "text": self.text}


@dataclass(frozen=True)
class FaultOutcome:
    """What became of one drawn fault.

    ``status``: ``not reached`` (the run ended first), ``rejected`` (by the simulator),
    ``detected`` or ``not detected`` (within the detection window). Latencies are mission
    seconds from the injection.
    """

    fault: DrawnFault
    status: str
    injected_s: float | None = None
    cleared_s: float | None = None
    rejected: str = ""
    detection: Sign | None = None
    base_response: Sign | None = None
    subsystem_response: Sign | None = None
    modes: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()

    def latency_s(self, sign: Sign | None) -> float | None:
        """Mission seconds from the injection to ``sign``."""
        if sign is None or self.injected_s is None:
            return None
        return sign.t_s - self.injected_s

    @property
    def detection_s(self) -> float | None:
        """Injection to detection (mission s)."""
        return self.latency_s(self.detection)

    @property
    def response_s(self) -> float | None:
        """Injection to the first response, base or subsystem (mission s)."""
        times = [
            s
            for s in (self.latency_s(self.base_response), self.latency_s(self.subsystem_response))
            if s is not None
        ]
        return min(times) if times else None

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            **self.fault.to_json(),
            "status": self.status,
            "injected_s": self.injected_s,
            "cleared_s": self.cleared_s,
            "rejected": self.rejected,
            "detection": None if self.detection is None else self.detection.to_json(),
            "detection_s": self.detection_s,
            "base_response": None if self.base_response is None else self.base_response.to_json(),
            "base_response_s": self.latency_s(self.base_response),
            "subsystem_response": None
            if self.subsystem_response is None
            else self.subsystem_response.to_json(),
            "subsystem_response_s": self.latency_s(self.subsystem_response),
            "response_s": self.response_s,
            "modes": list(self.modes),
            "watch": list(self.watch),
        }


def _mentions(text: str, watch: Sequence[str]) -> bool:
    """Whether a monitor's cause names a point or event of a watched source (or its process)."""
    return any(re.search(rf"(?<![\w.]){re.escape(w)}\.\w", text) or f"process={w}" in text for w in watch)


def _brief(data: Mapping[str, Any], limit: int = 90) -> str:
    text = ", ".join(
        f"{k}={v}" for k, v in data.items() if k != "severity" and not isinstance(v, (dict, list))
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detection_sign(event: EventRecord, watch: Sequence[str], *, silent: bool = False) -> Sign | None:
    """``event`` as a sign that a fault on the ``watch`` subsystems was noticed, or None. Pure.

    A staleness monitor (its cause has ``age_s``) counts only for a ``silent`` fault: only
    missing data makes a point stale.
    """
    if event.source == PROTECTION:
        if event.name != "monitor_changed" or event.data.get("state") not in ("yellow", "red"):
            return None
        cause = str(event.data.get("cause", ""))
        if not _mentions(cause, watch) or ("age_s=" in cause and not silent):
            return None
        text = f"monitor {event.data.get('monitor')} {event.data.get('state')} ({cause})"
        return Sign(event.t_s, event.source, event.name, text)
    if event.severity not in SEVERE:
        return None
    if event.source in watch or (event.source == "supervisor" and event.data.get("process") in watch):
        return Sign(
            event.t_s, event.source, event.name, f"{event.source}.{event.name} {_brief(event.data)}".strip()
        )
    return None


def attribute(
    faults: Sequence[DrawnFault],
    found: Mapping[int, Injection],
    events: Sequence[EventRecord],
    *,
    watch: Mapping[int, Sequence[str]],
    window_s: float,
) -> dict[int, dict[int, Sign]]:
    """Which detection signs belong to which fault: fault number -> {event index: sign}. Pure.

    Each event that is a sign (:func:`detection_sign`) for some fault injected at most
    ``window_s`` before it goes to the most recently injected of those: when faults
    overlap, the newest one that can explain a warning is taken to have caused it.
    ``watch`` maps a fault number to its watched subsystems; ``events`` are in time order.
    """
    injected = sorted(
        (found[f.number].injected_s or 0.0, f.number, f)
        for f in faults
        if f.number in found and found[f.number].injected_s is not None
    )
    starts = [item[0] for item in injected]
    claimed: dict[int, dict[int, Sign]] = {}
    for index, event in enumerate(events):
        last = bisect.bisect_right(starts, event.t_s)
        for start_s, number, fault in reversed(injected[:last]):
            if event.t_s - start_s > window_s:
                continue
            sign = detection_sign(
                event, watch.get(number, (fault.spec.board,)), silent=fault.spec.kind == "silent"
            )
            if sign is not None:
                claimed.setdefault(number, {})[index] = sign
                break
    return claimed


def _base_response(event: EventRecord, related: set[str]) -> Sign | None:
    """A ``response_started`` of one of the ``related`` monitors, as a sign."""
    monitor = str(event.data.get("monitor", ""))
    if event.name != "response_started" or monitor not in related:
        return None
    what = " and ".join(f"{k} {event.data[k]}" for k in ("sequence", "mode") if event.data.get(k))
    return Sign(event.t_s, event.source, event.name, f"{monitor}: {what or 'no action'}")


def _mode_entered(event: EventRecord, related: set[str]) -> str:
    """The mode an automatic ``mode_changed`` caused by a ``related`` monitor entered, or ``""``."""
    if event.name != "mode_changed" or event.data.get("by") != "auto":
        return ""
    cause = str(event.data.get("cause", ""))
    return str(event.data.get("mode")) if any(cause == f"monitor {m}" for m in related) else ""


def fault_outcome(
    fault: DrawnFault,
    injection: Injection | None,
    events: Sequence[EventRecord],
    *,
    watch: Sequence[str],
    window_s: float,
    claimed: Mapping[int, Sign] | None = None,
) -> FaultOutcome:
    """Detection and responses of ``fault`` within ``window_s`` after its injection. Pure.

    ``events`` must be in mission-time order. ``claimed``: the signs :func:`attribute`
    gave this fault, by event index; without it every sign in the window counts.
    """
    if injection is None or (injection.injected_s is None and not injection.rejected):
        return FaultOutcome(fault, "not reached", watch=tuple(watch))
    if injection.injected_s is None:
        return FaultOutcome(fault, "rejected", rejected=injection.rejected, watch=tuple(watch))
    start_s = injection.injected_s
    end_s = start_s + window_s
    detection: Sign | None = None
    base: Sign | None = None
    subsystem: Sign | None = None
    related: set[str] = set()
    modes: list[str] = []
    times = [e.t_s for e in events]
    first = bisect.bisect_left(times, start_s)
    for index in range(first, len(events)):
        event = events[index]
        if event.t_s > end_s:
            break
        if claimed is None:
            sign = detection_sign(event, watch, silent=fault.spec.kind == "silent")
        else:
            sign = claimed.get(index)
        if sign is not None and detection is None:
            detection = sign
        if sign is not None and event.source == PROTECTION:
            related.add(str(event.data.get("monitor")))
            continue
        if event.source == PROTECTION:
            base = base or _base_response(event, related)
            mode = _mode_entered(event, related)
            if mode and (not modes or modes[-1] != mode):
                modes.append(mode)
        elif subsystem is None and event.source in watch and event.name in SUBSYSTEM_ACTIONS:
            subsystem = Sign(
                event.t_s,
                event.source,
                event.name,
                f"{event.source}.{event.name} {_brief(event.data)}".strip(),
            )
    return FaultOutcome(
        fault,
        "detected" if detection is not None else "not detected",
        injection.injected_s,
        injection.cleared_s,
        injection.rejected,
        detection,
        base,
        subsystem,
        tuple(modes),
        tuple(watch),
    )


# --- modes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeSpan:
    """The base in ``mode`` from ``start_s`` to ``end_s``, entered for ``cause`` by ``by``."""

    mode: str
    start_s: float
    end_s: float
    cause: str = ""
    by: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "mode": self.mode,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "cause": self.cause,
            "by": self.by,
        }


def mode_spans(events: Iterable[EventRecord], end_s: float, first: str = "BOOT") -> list[ModeSpan]:
    """The base-mode timeline from fault protection's ``mode_changed`` events. Pure.

    Starts in ``first`` at 0; empty when there is no ``mode_changed`` event (no fault
    protection in the deployment, or a run too short to leave BOOT).
    """
    changes = [e for e in events if e.source == PROTECTION and e.name == "mode_changed"]
    if not changes:
        return []
    spans: list[ModeSpan] = []
    mode, since_s, cause, by = first, 0.0, "start", ""
    for change in changes:
        spans.append(ModeSpan(mode, since_s, change.t_s, cause, by))
        mode = str(change.data.get("mode", "?"))
        since_s = change.t_s
        cause = str(change.data.get("cause", ""))
        by = str(change.data.get("by", ""))
    last = ModeSpan(mode, since_s, max(end_s, since_s), cause, by)
    return [s for s in spans if s.end_s > s.start_s] + [last]


def time_in_modes(spans: Iterable[ModeSpan]) -> dict[str, float]:
    """Mission seconds in each mode, in :data:`fsw.modes.MODES` order (others after)."""
    totals: dict[str, float] = {}
    for span in spans:
        totals[span.mode] = totals.get(span.mode, 0.0) + span.end_s - span.start_s
    ordered: dict[str, float] = {m: totals[m] for m in MODES if m in totals}
    ordered.update({m: t for m, t in totals.items() if m not in ordered})
    return ordered


# --- invariants -----------------------------------------------------------------------


@dataclass(frozen=True)
class InvariantResult:
    """One safety invariant judged over a run.

    ``worst`` is the worst value seen (and ``worst_t_s`` when, if known); ``judged`` and
    ``masked`` count the samples judged and those not judged (a sensor fault lying about
    the point, or its board silent); ``violations`` counts samples that broke it.
    """

    key: str
    title: str
    status: str
    detail: str
    worst: float | None = None
    worst_t_s: float | None = None
    judged: int = 0
    masked: int = 0
    violations: int = 0
    first_violation_t_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return dict(vars(self))


Windows = Mapping[str, Sequence[tuple[float, float]]]


def mask_windows(
    faults: Iterable[DrawnFault],
    found: Mapping[int, Injection],
    end_s: float,
    margin_s: float = MASK_MARGIN_S,
) -> dict[str, list[tuple[float, float]]]:
    """Mission-time windows in which a point's readings are not to be trusted. Pure.

    Keys are ``board.channel`` for sensor faults and ``board.*`` for a silent board.
    """
    windows: dict[str, list[tuple[float, float]]] = {}
    for fault in faults:
        injection = found.get(fault.number)
        if injection is None or injection.injected_s is None:
            continue
        spec = fault.spec
        if spec.kind in SENSOR_KINDS and spec.channel:
            key = f"{spec.board}.{spec.channel}"
        elif spec.kind == "silent":
            key = f"{spec.board}.*"
        else:
            continue
        until = end_s if injection.cleared_s is None else injection.cleared_s
        windows.setdefault(key, []).append((injection.injected_s, until + margin_s))
    return windows


def _masked(windows: Windows, point: str, t_s: float) -> bool:
    board = point.partition(".")[0]
    for key in (point, f"{board}.*"):
        if any(start <= t_s <= end for start, end in windows.get(key, ())):
            return True
    return False


def _fuel_invariant(table: Table, windows: Windows, peak_c: float | None) -> InvariantResult:
    key, title = INVARIANTS[0]
    judged = masked = violations = 0
    worst: float | None = None
    worst_t: float | None = None
    first: float | None = None
    column = table.columns.get("fuel_temp_c", array("d"))
    for t_s, value in zip(table.t_s, column, strict=True):
        if math.isnan(value) or _masked(windows, "reactor.fuel_temp_c", t_s):
            masked += 1
            continue
        judged += 1
        if worst is None or value > worst:
            worst, worst_t = value, t_s
        if value > FUEL_LIMIT_C:
            violations += 1
            first = t_s if first is None else first
    note = ""
    if peak_c is not None and not any(k.startswith("reactor.") for k in windows):
        note = f"; reactor supervision's peak over every control cycle {peak_c:.1f} C"
        if worst is None or peak_c > worst:
            worst, worst_t = peak_c, None
        if peak_c > FUEL_LIMIT_C and violations == 0:
            violations = 1
    if judged == 0 and worst is None:
        return InvariantResult(key, title, NOT_JUDGED, "no reactor telemetry", masked=masked)
    status = VIOLATED if violations else HELD
    detail = f"highest fuel temperature {worst:.1f} C (limit {FUEL_LIMIT_C:g} C){note}"
    return InvariantResult(key, title, status, detail, worst, worst_t, judged, masked, violations, first)


def _floor_invariant(table: Table, windows: Windows, floor: float, soc_min: float | None) -> InvariantResult:
    key, title = INVARIANTS[1]
    judged = masked = violations = 0
    worst: float | None = None
    worst_t: float | None = None
    first: float | None = None
    for t_s, value in zip(table.t_s, table.columns.get("battery_soc", array("d")), strict=True):
        if math.isnan(value) or _masked(windows, "power.battery_soc", t_s):
            masked += 1
            continue
        judged += 1
        if worst is None or value < worst:
            worst, worst_t = value, t_s
        if value < floor - SOC_TOLERANCE:
            violations += 1
            first = t_s if first is None else first
    note = ""
    if soc_min is not None and not any(k.startswith("power.") for k in windows):
        note = f"; power subsystem's minimum over every control cycle {soc_min:.4f}"
        if worst is None or soc_min < worst:
            worst, worst_t = soc_min, None
        if soc_min < floor - SOC_TOLERANCE and violations == 0:
            violations = 1
    if judged == 0 and worst is None:
        return InvariantResult(key, title, NOT_JUDGED, "no power telemetry", masked=masked)
    status = VIOLATED if violations else HELD
    detail = (
        f"lowest state of charge {worst:.4f} (floor {floor:.2f} = 1 - hard_cut_dod, "
        f"tolerance {SOC_TOLERANCE:g}){note}"
    )
    return InvariantResult(key, title, status, detail, worst, worst_t, judged, masked, violations, first)


def _tier0_invariant(table: Table, windows: Windows, floor: float) -> InvariantResult:
    key, title = INVARIANTS[2]
    judged = masked = violations = collapsed = 0
    first: float | None = None
    worst: float | None = None
    worst_t: float | None = None
    columns = table.columns
    rows = zip(
        table.t_s,
        columns.get("bus_voltage_v", array("d")),
        columns.get("battery_soc", array("d")),
        columns.get("tiers_on", array("d")),
        strict=True,
    )
    for t_s, bus_v, soc, tiers in rows:
        if (
            math.isnan(bus_v)
            or _masked(windows, "power.bus_voltage_v", t_s)
            or _masked(windows, "power.battery_soc", t_s)
        ):
            masked += 1
            continue
        judged += 1
        if worst is None or bus_v < worst:
            worst, worst_t = bus_v, t_s
        if bus_v >= COLLAPSE_BUS_V:
            continue
        collapsed += 1
        available = (not math.isnan(tiers) and tiers > 0) or (
            not math.isnan(soc) and soc > floor + SOC_TOLERANCE
        )
        if available:
            violations += 1
            first = t_s if first is None else first
    if judged == 0:
        return InvariantResult(key, title, NOT_JUDGED, "no power telemetry", masked=masked)
    detail = (
        f"bus collapsed (< {COLLAPSE_BUS_V:g} V) in {collapsed} of {judged} samples; "
        f"{violations} of them with a switchable tier still on or charge above the floor; "
        f"lowest bus {worst:.1f} V"
    )
    status = VIOLATED if violations else HELD
    return InvariantResult(key, title, status, detail, worst, worst_t, judged, masked, violations, first)


def _modes_invariant(observations: Observations) -> InvariantResult:
    key, title = INVARIANTS[3]
    seen: Counter[str] = Counter()
    for value in observations.texts_seen.get(f"{PROTECTION}.mode", set()):
        seen[value] += 1
    first: float | None = None
    for event in observations.events:
        if event.source == PROTECTION and event.name == "mode_changed":
            for field_name in ("mode", "previous"):
                value = str(event.data.get(field_name, ""))
                seen[value] += 1
                if value not in MODES and first is None:
                    first = event.t_s
    if not seen:
        return InvariantResult(key, title, NOT_JUDGED, "no fault-protection mode in the recording")
    bad = sorted(m for m in seen if m not in MODES)
    judged = len(observations.tables[PROTECTION]) + sum(
        1 for e in observations.events if e.source == PROTECTION and e.name == "mode_changed"
    )
    if bad:
        return InvariantResult(
            key, title, VIOLATED, f"modes outside {', '.join(MODES)}: {', '.join(bad)}",
            judged=judged, violations=len(bad), first_violation_t_s=first,
        )  # fmt: skip
    used = ", ".join(m for m in MODES if m in seen)
    return InvariantResult(key, title, HELD, f"modes seen: {used}", judged=judged)


def check_invariants(
    observations: Observations,
    windows: Windows,
    *,
    floor_soc: float,
    statistics: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[InvariantResult]:
    """Judge the four safety invariants over a run (:data:`INVARIANTS`, in order). Pure.

    ``statistics``: the run summary's per-process statistics; the reactor's
    ``fuel_temp_peak_c`` and the power subsystem's ``battery_soc_min`` (every control
    cycle, finer than housekeeping) count too, when no sensor fault touched that board.
    """
    stats = statistics or {}
    peak = stats.get("reactor", {}).get("fuel_temp_peak_c")
    soc_min = stats.get("power", {}).get("battery_soc_min")
    tables = observations.tables
    return [
        _fuel_invariant(tables["reactor"], windows, float(peak) if isinstance(peak, (int, float)) else None),
        _floor_invariant(
            tables["power"], windows, floor_soc, float(soc_min) if isinstance(soc_min, (int, float)) else None
        ),
        _tier0_invariant(tables["power"], windows, floor_soc),
        _modes_invariant(observations),
    ]


# --- the whole analysis ---------------------------------------------------------------


@dataclass
class CampaignReport:
    """Everything the report shows, as data (``report.json`` is :meth:`to_json`)."""

    settings: dict[str, Any]
    summary: dict[str, Any]
    catalogue: list[dict[str, Any]]
    outcomes: list[FaultOutcome]
    skipped: list[dict[str, Any]]
    spans: list[ModeSpan]
    invariants: list[InvariantResult]
    figures: dict[str, Any]
    observations: Observations
    detect_window_s: float

    @property
    def passed(self) -> bool:
        """No invariant violated and the run reached its duration."""
        complete = self.summary.get("reason") == "duration reached"
        return complete and all(i.status != VIOLATED for i in self.invariants)

    def to_json(self) -> dict[str, Any]:
        """Plain data: the report's figures, without the time series."""
        return {
            "passed": self.passed,
            "settings": self.settings,
            "run": {k: v for k, v in self.summary.items() if k != "statistics"},
            "statistics": self.summary.get("statistics", {}),
            "invariants": [i.to_json() for i in self.invariants],
            "figures": self.figures,
            "time_in_modes_s": time_in_modes(self.spans),
            "mode_changes": [s.to_json() for s in self.spans],
            "faults": [o.to_json() for o in self.outcomes],
            "faults_skipped": self.skipped,
            "detect_window_s": self.detect_window_s,
            "catalogue": self.catalogue,
            "events_dropped": self.observations.events_dropped,
        }


def figures(
    observations: Observations,
    summary: Mapping[str, Any],
    outcomes: Sequence[FaultOutcome],
    windows: Windows | None = None,
) -> dict[str, Any]:
    """The run's headline figures: minimum charge, peaks, trips, energy not served, fault counts. Pure."""
    stats = summary.get("statistics", {}) or {}
    power = stats.get("power", {}) or {}
    thermal = stats.get("thermal", {}) or {}
    reactor = stats.get("reactor", {}) or {}
    table = observations.tables["power"]
    soc_t: float | None = None
    soc_hk: float | None = None
    for t_s, value in zip(table.t_s, table.columns["battery_soc"], strict=True):
        if math.isnan(value) or _masked(windows or {}, "power.battery_soc", t_s):
            continue
        if soc_hk is None or value < soc_hk:
            soc_hk, soc_t = value, t_s
    read_min = power.get("battery_soc_min")
    untouched = not any(k.startswith("power.") for k in windows or {})
    if isinstance(read_min, (int, float)) and untouched and (soc_hk is None or read_min < soc_hk):
        soc_hk = float(read_min)  # every control cycle: finer than housekeeping
    trips = [
        {"t_s": e.t_s, "reason": str(e.data.get("reason", ""))}
        for e in observations.events
        if e.source == "reactor" and e.name == "reactor_trip"
    ]
    peaks: dict[str, float] = {k: v for k, v in thermal.items() if k.endswith(("_peak_c", "_min_c"))}
    if "fuel_temp_peak_c" in reactor:
        peaks["fuel_temp_peak_c"] = reactor["fuel_temp_peak_c"]
    last_power = observations.last_hk.get("power", {})
    not_served = {
        f"t{t}": power.get(f"energy_not_served_t{t}_wh", last_power.get(f"energy_not_served_t{t}_wh"))
        for t in (1, 2, 3, 4)
    }
    collapsed = sum(1 for v in table.columns["bus_voltage_v"] if v < COLLAPSE_BUS_V)
    period = _typical_interval(table.t_s)
    statuses = Counter(o.status for o in outcomes)
    return {
        "battery_soc_min": soc_hk,
        "battery_soc_min_t_s": soc_t,
        "battery_soc_min_read": power.get("battery_soc_min"),
        "bus_voltage_min_v": power.get("bus_voltage_min_v"),
        "peak_temperatures_c": peaks,
        "reactor_trips": reactor.get("trips", len(trips)),
        "reactor_trip_events": trips,
        "energy_not_served_wh": not_served,
        "energy_not_served_total_wh": power.get(
            "energy_not_served_wh", last_power.get("energy_not_served_wh")
        ),
        "tier0_short_h": round(collapsed * period / 3600.0, 3),
        "shed_events": power.get("shed_events"),
        "hard_cuts": power.get("hard_cuts"),
        "faults": dict(statuses),
        "events_digest": events_digest(observations.events),
    }


#: Event fields that differ between two runs of one campaign (run directory, pids, exit codes).
VOLATILE_FIELDS: Final = frozenset({"pid", "exit_code", "signal", "path", "severity"})
#: Sources whose events depend on wall-clock timing, not on the simulation.
VOLATILE_SOURCES: Final = frozenset({"bus", "clock", "supervisor", "recorder"})
#: Events whose recording depends on when the run was stopped.
VOLATILE_EVENTS: Final = frozenset({"process_stopping"})


def events_digest(events: Iterable[EventRecord]) -> str:
    """SHA-256 of the flight processes' event history, without run-specific fields. Pure.

    Two runs of one campaign (same deployment, seed, faults) have the same digest when
    they are event for event the same, whatever their run and report directories.
    """
    records = [
        {
            "t": e.t_s,
            "src": e.source,
            "name": e.name,
            "data": {k: v for k, v in e.data.items() if k not in VOLATILE_FIELDS},
        }
        for e in events
        if e.source not in VOLATILE_SOURCES and e.name not in VOLATILE_EVENTS
    ]
    return history_digest(records)


def _typical_interval(times: Sequence[float]) -> float:
    if len(times) < 2:
        return 0.0
    steps = sorted(b - a for a, b in itertools.pairwise(times))
    return steps[len(steps) // 2]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise ConfigError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"{path}: not a JSON object"
        raise ConfigError(msg)
    return raw


def analyse(report_dir: str | Path) -> CampaignReport:
    """Judge the campaign whose files are in ``report_dir`` (what :func:`hil.campaign.run_campaign` left).

    Blocking (reads the whole recording). Raises :class:`ConfigError` if a file is
    missing or unreadable.
    """
    directory = Path(report_dir)
    campaign = _read_json(directory / CAMPAIGN_FILE)
    summary = _read_json(directory / SUMMARY_FILE)
    observations = read_observations(directory / RECORDING_DIR)
    faults = [DrawnFault.from_json(raw) for raw in campaign.get("faults", [])]
    catalogue = {str(e["name"]): e for e in campaign.get("catalogue", [])}
    window_s = float(campaign.get("detect_window_s", 6 * 3600.0))
    found = injections(observations.events)
    watch = {f.number: tuple(catalogue.get(f.entry, {}).get("watch", [f.spec.board])) for f in faults}
    claimed = attribute(faults, found, observations.events, watch=watch, window_s=window_s)
    outcomes = [
        fault_outcome(
            fault,
            found.get(fault.number),
            observations.events,
            watch=watch[fault.number],
            window_s=window_s,
            claimed=claimed.get(fault.number, {}),
        )
        for fault in faults
    ]
    end_s = max(observations.end_s, float(summary.get("mission_time_s", 0.0)))
    windows = mask_windows(faults, found, end_s)
    hard_cut = campaign.get("power_params", {}).get("hard_cut_dod", HARD_CUT_DOD)
    floor = 1.0 - float(hard_cut)
    invariants = check_invariants(
        observations, windows, floor_soc=floor, statistics=summary.get("statistics", {})
    )
    settings = dict(campaign.get("settings", {}))
    settings["battery_floor_soc"] = round(floor, 6)
    return CampaignReport(
        settings=settings,
        summary=summary,
        catalogue=list(catalogue.values()),
        outcomes=outcomes,
        skipped=list(campaign.get("skipped", [])),
        spans=mode_spans(observations.events, end_s),
        invariants=invariants,
        figures=figures(observations, summary, outcomes, windows),
        observations=observations,
        detect_window_s=window_s,
    )


__all__ = [
    "INVARIANTS",
    "CampaignReport",
    "EventRecord",
    "FaultOutcome",
    "Injection",
    "InvariantResult",
    "ModeSpan",
    "Observations",
    "Sign",
    "Table",
    "analyse",
    "attribute",
    "check_invariants",
    "detection_sign",
    "events_digest",
    "fault_outcome",
    "injections",
    "mask_windows",
    "mode_spans",
    "read_observations",
    "time_in_modes",
]
