"""A scenario per fault kind: inject, detect, respond, within mission-time deadlines.

Every kind of the fault catalogue (``hil.faults.KINDS``, docs/faults.md) is injected from a
scenario file into the ``lunation`` base (1 s frames, the reactor at power from the start)
with its default monitors, sequences and mode timers, in lockstep at ``--speed max``.

Faults share a run where they do not interfere, so that each detection moves the base with
its own cause. Within a run the modes escalate: an impairment (``DEGRADED``), then a danger
(``SAFE``), then ``SURVIVAL`` or ``EMERGENCY``, each detected while the base is still in the
mode the one before set; then every fault is cleared and the base returns to ``NOMINAL`` (after the 600 s
recovery hold) before the next step begins. The danger clears after the impairment: a base
whose impairment cleared less than the hold ago recovers to ``DEGRADED``, not ``NOMINAL``. An
impairment that outlasts its run (the reactor radiator hot, ``core_heat_pipes`` red for an
hour, a heater stuck on: clearing the fault leaves the heater at the stuck duty, since the
thermostat commands only changes) is the last ``DEGRADED`` of its run, so four runs:

* A: the comms and thermal boards silent, a false low charge, then the reactor radiator's
  heat pipes (injected while the radiator still warms up: red 7 minutes later, after the
  staged recovery);
* B: a converter lost and a noisy battery sensor, then the core heat pipes;
* C: the radio, a dropped habitat reading and the battery and arrays while the reactor
  radiator, its area lost from the start, warms up (red after 17 minutes);
* D: a heater stuck on, then the rod (its reading, its drive) and the trip; the run ends
  long before the ``EMERGENCY`` mode timer's hour (the autonomous ``reactor_restart``).

Who detects it: ``base`` is a fault-protection monitor (its ``monitor_changed`` event),
``subsystem`` the subsystem's own event (the base leaves these to it), ``board`` the board's
own protection (a trip), ``none`` nothing: the fault shows only in telemetry. Deadlines are
mission seconds from the injection to the detection; the response follows within
``RESPONSE_SLACK_S``. Fault protection's events may be stamped a frame off the frame of the
sample they judge (``FRAME_SLACK_S``).

============================ === ========= ====================================== ================== ====
kind (arguments)             run level     detected by                            response           s
============================ === ========= ====================================== ================== ====
silent (comms board)         A   base      board_link_lost; comms_board_link      DEGRADED           40
silent (thermal board)       A   base      board_link_lost; thermal_board_link    SAFE               40
offset (battery_soc, -0.68)  A   base      battery_soc red (reads 0.12: under     SURVIVAL; SAFE,    15
                                           0.15, over the hard cut's 0.10)        NOMINAL, each
                                                                                  after the hold
radiator_heat_pipe_failure   A   base      reactor_radiator_temp red              DEGRADED           600
converter_loss (1)           B   base      converter_lost red                     DEGRADED           10
noisy (battery_temp_c, 300)  B   base      battery_temp red                       SAFE; NOMINAL      50
                                                                                  after the hold
heat_pipe_failure (4)        B   base      reactor_alarm heat_pipes;              DEGRADED for the   5
                                           core_heat_pipes (fuel_temp yellow)     hour
link_loss                    C   base      comms radio_fault; monitor radio_fault comms_recovery,    40
                                                                                  DEGRADED
dropped (habitat_temp_c)     C   base      habitat_temp red on NaN                SAFE; NOMINAL      20
                                                                                  after the hold
cell_loss (3)                C   base      battery_cells yellow (advisory); power none               5
                                           power_mode_changed ALARM (bus low)
array_degradation (0.9)      C   none      solar_power_w falls                    none               --
dust (0.9)                   C   none      solar_power_w falls                    none               --
radiator_damage (1.0)        C   base      reactor_radiator_temp red              DEGRADED           1200
heater_stuck (battery, 1)    D   base      heater_draw red (draw over duties)     DEGRADED           40
stuck (rod_position)         D   base      reactor_alarm rod_drive; rod_drive     SAFE               30
reactivity_insertion ($0.1)  D   subsystem reactor_setback                        none: the setback  20
                                                                                  holds it
rod_stuck                    D   subsystem reactor_alarm rod_drive (expected 0;   none (EMERGENCY)   20
                                           rod_drive red already)
converter_failure            D   board     reactor_trip loss_of_heat_sink;        EMERGENCY          5
                                           monitor reactor_tripped
============================ === ========= ====================================== ================== ====

Budget: the four runs take about 25 s of wall time together on two loaded cores (a silent
board costs its subsystem 1.5 s of wall time per control cycle: the silences are kept to
three cycles, and the two overlap).
"""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fsw.messages import Kind, Message
from hil.faults import KINDS, load_scenario
from hil.testing import HilBase
from subsystems.deployment import LUNATION_DEPLOYMENT
from tests.conftest import deployment_text

#: Wall seconds a whole run may take, at most.
RUN_TIMEOUT_S = 120.0
#: Mission seconds a response may come after its detection. A monitor's response comes in the
#: handler that saw it change, with the same mission time; a board's own detection (a trip
#: event) reaches the base through an expression monitor, evaluated on the next frame, and the
#: two processes may stamp one sample a frame apart (see :meth:`FinishedRun.first`). Measured
#: at --speed max on two loaded cores: 0 s for every monitor, 1 s for the trip.
RESPONSE_SLACK_S = 2.0
#: Mission seconds fault protection may stamp what it makes of a sample away from the sample's
#: own frame: it takes its frames through the broker, and a sample can reach it a frame before
#: that frame's tick (the subsystem has the tick straight from the clock) or, rarely, after the
#: next one. Measured: a red at 39, 40 or 41 s for a reading of the 40 s frame.
FRAME_SLACK_S = 1.0
#: Mission seconds an autonomous recovery may come after it is due (the hold after the last
#: red monitor cleared and after the mode was entered): fault protection looks every frame.
RECOVERY_SLACK_S = 10.0
#: The recovery hold of the lunation deployment (``recovery_hold_s``), mission seconds.
HOLD_S = 600.0

RUN_A = """description = "comms and thermal boards silent, a false low charge, the radiator's heat pipes"

[[fault]]
at = 30
until = 55
board = "comms"
kind = "silent"

[[fault]]
at = 40
until = 65
board = "thermal"
kind = "silent"

[[fault]]
at = 80
until = 130
board = "power"
kind = "offset"
channel = "battery_soc"
value = -0.68

[[fault]]
at = 1000
board = "thermal"
kind = "radiator_heat_pipe_failure"
count = 16
"""

RUN_B = """description = "a converter lost and a noisy battery sensor, then the core heat pipes"

[[fault]]
at = 30
until = 60
board = "reactor"
kind = "converter_loss"
count = 1

[[fault]]
at = 40
until = 100
board = "thermal"
kind = "noisy"
channel = "battery_temp_c"
sigma = 300.0
seed = 1

[[fault]]
at = 800
board = "reactor"
kind = "heat_pipe_failure"
count = 4
"""

RUN_C = """description = "the radio, a dropped reading, the battery and arrays, the radiator's area"

[[fault]]
at = 30
until = 100
board = "comms"
kind = "link_loss"

[[fault]]
at = 70
until = 120
board = "thermal"
kind = "dropped"
channel = "habitat_temp_c"

[[fault]]
at = 200
until = 300
board = "power"
kind = "cell_loss"
count = 3

[[fault]]
at = 200
until = 300
board = "power"
kind = "array_degradation"
fraction = 0.9

[[fault]]
at = 400
until = 500
board = "power"
kind = "dust"
fraction = 0.9

[[fault]]
at = 10
board = "thermal"
kind = "radiator_damage"
fraction = 1.0
"""

RUN_D = """description = "a heater stuck on, then the rod's reading, its drive and the trip"

[[fault]]
at = 10
board = "thermal"
kind = "heater_stuck"
actuator = "heater_battery"
value = 1.0

[[fault]]
at = 60
until = 160
board = "reactor"
kind = "stuck"
channel = "rod_position"

[[fault]]
at = 70
until = 160
board = "reactor"
kind = "reactivity_insertion"
value = 0.1

[[fault]]
at = 200
board = "reactor"
kind = "rod_stuck"

[[fault]]
at = 210
board = "reactor"
kind = "converter_failure"
"""

#: The relay orbiter always in view: a link from the start, so a lost link shows at once.
RELAY_IN_VIEW = """
[processes.simulator.params.comms]
relay_in_view_s = 86400.0
"""


@dataclass(frozen=True)
class RunSpec:
    """One base run: its scenario, deployment additions and mission duration."""

    scenario: str
    extra: str = ""
    duration: str = "10min"


RUNS: Mapping[str, RunSpec] = {
    "A": RunSpec(RUN_A, RELAY_IN_VIEW, "1470s"),
    "B": RunSpec(RUN_B, "", "930s"),
    "C": RunSpec(RUN_C, RELAY_IN_VIEW, "1100s"),
    "D": RunSpec(RUN_D, "", "260s"),
}

#: Every mode change of each run, in order: (mode, cause).
MODES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "A": (
        ("NOMINAL", "boot"),
        ("DEGRADED", "monitor comms_board_link"),
        ("SAFE", "monitor thermal_board_link"),
        ("SURVIVAL", "monitor battery_soc"),
        ("SAFE", "monitors clear for the hold"),
        ("NOMINAL", "monitors clear for the hold"),
        ("DEGRADED", "monitor reactor_radiator_temp"),
    ),
    "B": (
        ("NOMINAL", "boot"),
        ("DEGRADED", "monitor converter_lost"),
        ("SAFE", "monitor battery_temp"),
        ("NOMINAL", "monitors clear for the hold"),
        ("DEGRADED", "monitor core_heat_pipes"),
    ),
    "C": (
        ("NOMINAL", "boot"),
        ("DEGRADED", "monitor radio_fault"),
        ("SAFE", "monitor habitat_temp"),
        ("NOMINAL", "monitors clear for the hold"),
        ("DEGRADED", "monitor reactor_radiator_temp"),
    ),
    "D": (
        ("NOMINAL", "boot"),
        ("DEGRADED", "monitor heater_draw"),
        ("SAFE", "monitor rod_drive"),
        ("EMERGENCY", "monitor reactor_tripped"),
    ),
}


@dataclass(frozen=True)
class Expected:
    """What a fault kind's scenario must show: the detection and the response, in time."""

    kind: str
    run: str
    at_s: float
    level: str  # base, subsystem, board or none
    detect: tuple[str, str, Mapping[str, Any]] | None  # source, event, fields
    deadline_s: float = 0.0
    response: tuple[str, str, Mapping[str, Any]] | None = None
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def monitor(name: str, state: str = "red") -> tuple[str, str, Mapping[str, Any]]:
    return ("protection", "monitor_changed", {"monitor": name, "state": state})


def mode(to: str, cause: str) -> tuple[str, str, Mapping[str, Any]]:
    return ("protection", "mode_changed", {"mode": to, "cause": f"monitor {cause}"})


EXPECTED: tuple[Expected, ...] = (
    Expected("silent", "A", 30, "base", monitor("comms_board_link"), 40,
             mode("DEGRADED", "comms_board_link"), label="comms"),
    Expected("silent", "A", 40, "base", monitor("thermal_board_link"), 40,
             mode("SAFE", "thermal_board_link"), label="thermal"),
    Expected("offset", "A", 80, "base", monitor("battery_soc"), 15, mode("SURVIVAL", "battery_soc")),
    Expected("radiator_heat_pipe_failure", "A", 1000, "base", monitor("reactor_radiator_temp"), 600,
             mode("DEGRADED", "reactor_radiator_temp")),
    Expected("converter_loss", "B", 30, "base", monitor("converter_lost"), 10,
             mode("DEGRADED", "converter_lost")),
    Expected("noisy", "B", 40, "base", monitor("battery_temp"), 50, mode("SAFE", "battery_temp")),
    Expected("heat_pipe_failure", "B", 800, "base", monitor("core_heat_pipes"), 5,
             mode("DEGRADED", "core_heat_pipes")),
    Expected("link_loss", "C", 30, "base", monitor("radio_fault"), 40, mode("DEGRADED", "radio_fault")),
    Expected("dropped", "C", 70, "base", monitor("habitat_temp"), 20, mode("SAFE", "habitat_temp")),
    Expected("cell_loss", "C", 200, "base", monitor("battery_cells", "yellow"), 5),
    Expected("array_degradation", "C", 200, "none", None),
    Expected("dust", "C", 400, "none", None),
    Expected("radiator_damage", "C", 10, "base", monitor("reactor_radiator_temp"), 1200,
             mode("DEGRADED", "reactor_radiator_temp")),
    Expected("heater_stuck", "D", 10, "base", monitor("heater_draw"), 40, mode("DEGRADED", "heater_draw")),
    Expected("stuck", "D", 60, "base", monitor("rod_drive"), 30, mode("SAFE", "rod_drive")),
    Expected("reactivity_insertion", "D", 70, "subsystem", ("reactor", "reactor_setback", {}), 20),
    Expected("rod_stuck", "D", 200, "subsystem",
             ("reactor", "reactor_alarm", {"quantity": "rod_drive", "active": True, "expected": 0.0}), 20),
    Expected("converter_failure", "D", 210, "board",
             ("reactor", "reactor_trip", {"reason": "loss_of_heat_sink"}), 5,
             mode("EMERGENCY", "reactor_tripped")),
)  # fmt: skip


# --- the runs ------------------------------------------------------------------------------


class FinishedRun:
    """What one run published, read after it ended (a stopped :class:`HilBase`)."""

    def __init__(self, base: HilBase) -> None:
        self.base = base

    def events(self, source: str, name: str, fields: Mapping[str, Any] | None = None) -> list[Message]:
        """Events ``name`` from ``source`` whose fields equal ``fields``, in mission-time order."""
        wanted = dict(fields or {})
        return [
            m
            for m in self.base.event_history(name, source)
            if all(k in m.data and m.data[k] == v for k, v in wanted.items())
        ]

    def first(self, what: tuple[str, str, Mapping[str, Any]], after_s: float) -> Message | None:
        """The first such event at or after ``after_s``, less ``FRAME_SLACK_S``: fault
        protection may stamp its judgement of a sample a frame before the sample's frame."""
        source, name, fields = what
        return next((m for m in self.events(source, name, fields) if m.t_s >= after_s - FRAME_SLACK_S), None)

    def telemetry(self, source: str, point: str) -> list[tuple[float, Any]]:
        return self.base.telemetry_history(source, point)

    def hk(self, source: str) -> list[Message]:
        return [
            m for m in self.base.history if m.kind is Kind.TELEMETRY and m.source == source and m.name == "hk"
        ]

    def modes(self) -> list[tuple[float, str, str]]:
        """Every base mode change: (mission time, mode, cause)."""
        return [(m.t_s, m.data["mode"], m.data["cause"]) for m in self.events("protection", "mode_changed")]

    def mode_at(self, t_s: float) -> str:
        """The base mode at mission time ``t_s`` (after the changes of that time)."""
        return [m for t, m, _c in self.modes() if t <= t_s][-1]


def run_scenario(name: str, spec: RunSpec) -> FinishedRun:
    """Run the lunation base on ``spec``'s scenario to its end; what it published."""
    directory = Path(tempfile.mkdtemp(prefix=f"fsw-{name}-", dir="/tmp"))
    try:
        scenario = directory / "scenario.toml"
        scenario.write_text(spec.scenario, encoding="utf-8")
        load_scenario(scenario)  # a bad scenario fails here, with its reason
        args = ("--speed", "max", "--seed", "1", "--duration", spec.duration, "--scenario", str(scenario))
        base = HilBase(deployment_text(spec.extra, base=LUNATION_DEPLOYMENT), directory, args)
        try:
            base.start()
            base.await_statistics("protection", timeout_s=RUN_TIMEOUT_S)
            base.drain()
        finally:
            base.stop()
        return FinishedRun(base)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Runs:
    """The runs of this module, each started once, when a test first needs it."""

    def __init__(self) -> None:
        self._done: dict[str, FinishedRun] = {}

    def __getitem__(self, name: str) -> FinishedRun:
        if name not in self._done:
            self._done[name] = run_scenario(name, RUNS[name])
        return self._done[name]


@pytest.fixture(scope="module")
def runs() -> Runs:
    return Runs()


def expected_id(expected: Expected) -> str:
    return f"{expected.kind}-{expected.label}" if expected.label else expected.kind


# --- every kind: detection and response in time ------------------------------------------------


def test_every_fault_kind_of_the_catalogue_has_a_scenario() -> None:
    assert {e.kind for e in EXPECTED} == set(KINDS)


@pytest.mark.parametrize("expected", EXPECTED, ids=expected_id)
def test_fault_is_injected_detected_and_answered_in_time(runs: Runs, expected: Expected) -> None:
    run = runs[expected.run]
    injected = [
        m
        for m in run.events("simulator", "fault_injected", {"kind": expected.kind})
        if m.t_s == pytest.approx(expected.at_s)
    ]
    assert injected, f"{expected.kind} was not injected at {expected.at_s} s"
    if expected.detect is None:
        return  # no detection: see the kind's own test below
    detected = run.first(expected.detect, expected.at_s)
    assert detected is not None, f"{expected.kind}: no {expected.detect} after {expected.at_s} s"
    latency_s = detected.t_s - expected.at_s
    assert latency_s <= expected.deadline_s, f"{expected.kind}: detected after {latency_s} s"
    if expected.response is not None:
        responded = run.first(expected.response, detected.t_s)
        assert responded is not None, f"{expected.kind}: no {expected.response} after {detected.t_s} s"
        late_s = responded.t_s - detected.t_s
        assert late_s <= RESPONSE_SLACK_S, f"{expected.kind}: response {late_s} s after the detection"
        assert responded.data["by"] == "auto"
        entry = f"enter_{responded.data['mode'].lower()}"
        started = run.first(("protection", "sequence_started", {"sequence": entry}), responded.t_s)
        assert started is not None
        assert started.t_s - responded.t_s <= 1.0


# --- every run: its modes, and recoveries after the hold ----------------------------------------


@pytest.mark.parametrize("name", sorted(RUNS))
def test_each_detection_moves_the_base_with_its_own_cause(runs: Runs, name: str) -> None:
    """The runs' faults do not mask each other: every mode change the run is built for, no other."""
    assert [(m, c) for _t, m, c in runs[name].modes()] == list(MODES[name])


@pytest.mark.parametrize("name", sorted(RUNS))
def test_each_autonomous_recovery_waits_the_hold(runs: Runs, name: str) -> None:
    """A recovery comes once the last red monitor has been clear for the hold and the mode it
    leaves has held that long (SURVIVAL -> SAFE -> NOMINAL: a hold each), and not much later."""
    run = runs[name]
    cleared = [m.t_s for m in run.events("protection", "monitor_changed", {"previous": "red"})]
    changes = run.modes()
    recoveries = 0
    for (entered_s, _m, _c), (t_s, mode_to, cause) in itertools.pairwise(changes):
        if cause != "monitors clear for the hold":
            continue
        recoveries += 1
        last_clear_s = max(t for t in cleared if t <= t_s)
        due_s = max(last_clear_s, entered_s) + HOLD_S
        assert due_s - FRAME_SLACK_S <= t_s <= due_s + RECOVERY_SLACK_S, (
            mode_to,
            last_clear_s,
            entered_s,
            t_s,
        )
    assert recoveries == sum(1 for _m, c in MODES[name] if c == "monitors clear for the hold")


def test_a_false_low_charge_recovers_in_stages(runs: Runs) -> None:
    """offset: SURVIVAL, then SAFE after the hold, then NOMINAL after another."""
    run = runs["A"]
    modes = [(t, m) for t, m, _c in run.modes()]
    survival = next(t for t, m in modes if m == "SURVIVAL")
    after = [(t, m) for t, m in modes if t > survival]
    assert [m for _t, m in after[:2]] == ["SAFE", "NOMINAL"]
    assert after[0][0] >= 130.0 + HOLD_S - FRAME_SLACK_S
    assert after[1][0] - after[0][0] >= HOLD_S - FRAME_SLACK_S
    # The reading was low, not the battery: no hard cut, and the power subsystem back to NOMINAL.
    assert not run.events("power", "power_mode_changed", {"mode": "HARD_CUT"})
    assert run.telemetry("power", "mode")[-1][1] == "NOMINAL"


# --- run C: the radio, the battery and the arrays --------------------------------------------------


def test_link_loss_cycles_the_transmitter(runs: Runs) -> None:
    run = runs["C"]
    started = run.first(("protection", "sequence_started", {"sequence": "comms_recovery"}), 30)
    assert started is not None
    assert started.data["by"] == "monitor:radio_fault"
    done = run.first(("protection", "sequence_completed", {"sequence": "comms_recovery"}), started.t_s)
    assert done is not None
    # Two steps 10 s apart, each acknowledged on a comms control cycle (every 10 s in lunation).
    assert 10.0 <= done.t_s - started.t_s <= 50.0
    assert run.first(monitor("radio_fault", "green"), 100) is not None  # radio_recovered once cleared


def test_cell_loss_is_an_advisory_and_left_to_the_power_subsystem(runs: Runs) -> None:
    """cell_loss: battery_cells yellow (no response) while the cells are out; the power
    subsystem raises its ALARM on the low bus."""
    run = runs["C"]
    cells = [v for t, v in run.telemetry("power", "battery_cells") if 200 < t < 300]
    assert cells
    assert set(cells) == {28}
    changes = [
        (m.t_s, m.data["state"], m.data["respond"])
        for m in run.events("protection", "monitor_changed", {"monitor": "battery_cells"})
    ]
    assert [(state, respond) for _t, state, respond in changes] == [("yellow", False), ("green", False)]
    assert [t for t, _s, _r in changes] == [
        pytest.approx(200.0, abs=FRAME_SLACK_S),
        pytest.approx(300.0, abs=FRAME_SLACK_S),
    ]
    assert run.first(("power", "power_mode_changed", {"mode": "ALARM"}), 200) is not None
    assert not [m for m in run.events("protection", "response_started") if 200 <= m.t_s < 510]


def test_solar_array_losses_show_only_in_solar_power(runs: Runs) -> None:
    """array_degradation and dust: nothing detects them (a real board cannot see dust)."""
    run = runs["C"]
    solar = run.telemetry("power", "solar_power_w")
    before = [v for t, v in solar if 100 <= t < 200]
    degraded = [v for t, v in solar if 210 <= t < 300]
    dusty = [v for t, v in solar if 410 <= t < 500]
    assert min(before, default=0.0) > 0.0
    assert degraded
    assert dusty
    assert max(degraded) <= 0.15 * min(before)
    assert max(dusty) <= 0.15 * min(before)
    soc = [v for t, v in run.telemetry("power", "battery_soc") if 200 <= t < 500]
    assert min(soc) > 0.5  # the reactor carries the loads: nothing to protect yet
    assert [t for t, _m, _c in run.modes() if 200 <= t < 510] == []


# --- the reactor radiator: an impairment the base works on with ----------------------------------


@pytest.mark.parametrize("name", ["A", "C"])
def test_a_hot_reactor_radiator_is_an_impairment_the_base_works_on_with(runs: Runs, name: str) -> None:
    """radiator_heat_pipe_failure (A) and radiator_damage (C): yellow, then red, then DEGRADED
    to the end, the converters still converting."""
    run = runs[name]
    at_s = next(e.at_s for e in EXPECTED if e.run == name and e.kind.startswith("radiator"))
    yellow = run.first(monitor("reactor_radiator_temp", "yellow"), at_s)
    red = run.first(monitor("reactor_radiator_temp", "red"), at_s)
    assert yellow is not None
    assert red is not None
    assert yellow.t_s < red.t_s
    hk = [m.data for m in run.hk("protection") if m.t_s > red.t_s + 10]
    assert hk
    assert {d["mode"] for d in hk} == {"DEGRADED"}
    assert all(d["red"] == "reactor_radiator_temp" for d in hk)
    electric = [v for t, v in run.telemetry("reactor", "electric_power_w") if t > red.t_s]
    assert electric
    assert all(v > 0.0 and math.isfinite(v) for v in electric)


# --- run B: the reactor's impairments ------------------------------------------------------------


def test_core_heat_pipes_lost_keep_the_base_degraded_with_the_fuel_warm(runs: Runs) -> None:
    """heat_pipe_failure: core_heat_pipes red (for an hour: it outlasts the run), the fuel to the
    monitor's yellow level, no further; converter_loss before it: back to NOMINAL after the hold."""
    run = runs["B"]
    red = run.first(monitor("core_heat_pipes"), 800)
    assert red is not None
    assert not run.events("protection", "monitor_changed", {"monitor": "core_heat_pipes", "state": "green"})
    assert run.first(monitor("fuel_temp", "yellow"), 800) is not None
    assert not run.events("protection", "monitor_changed", {"monitor": "fuel_temp", "state": "red"})
    assert not run.events("reactor", "reactor_trip")
    hk = [m.data for m in run.hk("protection") if m.t_s > red.t_s]
    assert hk
    assert {d["mode"] for d in hk} == {"DEGRADED"}
    assert run.mode_at(799.0) == "NOMINAL"  # converter_loss and the noisy sensor: cleared, held


# --- run D: a heater stuck on, the rod and the trip -----------------------------------------------


def test_a_heater_stuck_on_is_an_impairment_while_it_draws(runs: Runs) -> None:
    """heater_stuck: the thermostat says off, the board draws the heater's 400 W; heater_draw
    red after its 30 frames, and it stands while the heater draws."""
    run = runs["D"]
    stuck = [m.data for m in run.hk("thermal") if m.t_s >= 10]
    assert stuck
    assert all(d["heater_battery"] == 0.0 and d["heater_power_w"] >= 400.0 for d in stuck), stuck[:3]
    before = [m.data for m in run.hk("thermal") if m.t_s < 10]
    assert before
    assert all(d["heater_power_w"] < 400.0 for d in before)
    red = run.first(monitor("heater_draw"), 10)
    assert red is not None
    assert red.t_s - 10.0 >= 30.0 - FRAME_SLACK_S  # persistence: 30 frames, three thermal cycles
    assert not run.events("protection", "monitor_changed", {"monitor": "heater_draw", "state": "green"})


def test_stuck_rod_reading_and_stuck_rod_are_told_apart_by_the_expected_position(
    runs: Runs,
) -> None:
    run = runs["D"]
    alarms = run.events("reactor", "reactor_alarm", {"quantity": "rod_drive"})
    raised = [m for m in alarms if m.data["active"]]
    assert len(raised) == 2, [(m.t_s, m.data) for m in alarms]
    reading, drive = raised
    setback = run.first(("reactor", "reactor_setback", {}), 70)
    assert setback is not None
    assert reading.t_s > setback.t_s  # the rod moved; its reading did not
    assert reading.data["expected"] == pytest.approx(setback.data["rod_target"], abs=1e-3)
    assert drive.data["expected"] == 0.0  # tripped: the rod should be in, and stays out
    cleared = [m for m in alarms if not m.data["active"]]
    assert cleared
    assert cleared[0].t_s == pytest.approx(160.0, abs=1.0)  # the reading came back
    # rod_drive went red on the reading (SAFE) and stays red for its hour: the drive's alarm
    # adds no change of its own.
    changes = run.events("protection", "monitor_changed", {"monitor": "rod_drive"})
    assert [m.data["state"] for m in changes] == ["red"]
    assert changes[0].t_s == pytest.approx(reading.t_s, abs=FRAME_SLACK_S)


def test_the_trip_leaves_the_base_in_emergency_with_the_loads_shed(runs: Runs) -> None:
    """converter_failure: the board's trip, then EMERGENCY's sequence: scram, shed tiers 2-4.
    The run ends long before the mode timer's hour: no reactor_restart yet."""
    run = runs["D"]
    # reactivity_insertion: the setback held it under the board's 110 % trip; no trip before 210.
    assert [m.t_s for m in run.events("reactor", "reactor_trip")] == [pytest.approx(210.0, abs=1.0)]
    done = run.first(("protection", "sequence_completed", {"sequence": "enter_emergency"}), 210)
    assert done is not None
    assert done.t_s - 210.0 <= 10.0
    tiers = run.telemetry("power", "tiers_on")
    assert [v for t, v in tiers if t > done.t_s + 10.0][-1] & 0b1110 == 0
    assert {m.data["mode"] for m in run.hk("protection") if m.t_s > done.t_s} == {"EMERGENCY"}
    assert not run.events("protection", "sequence_started", {"sequence": "reactor_restart"})
