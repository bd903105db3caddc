"""The long-term autonomy campaign: the catalogue, the seeded draw, the judging, and one real campaign.

The pure parts (catalogue checks, the draw, fault attribution, mode timeline, invariants,
the Markdown) run on synthetic inputs. One real campaign runs the lunation base with fault
protection for a simulated day on 10 s frames (about 20 s of wall time), with faults from a
small catalogue, and checks the report: every fault injected and detected, the base's
response, every invariant held, the plots written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.deployment import embedded_text, parse
from fsw.errors import ConfigError
from fsw.modes import MODES
from hil.campaign import (
    Catalogue,
    CatalogueEntry,
    DrawnFault,
    Range,
    campaign_deployment_text,
    draw_faults,
    load_catalogue,
    parse_catalogue,
    scenario_text,
)
from hil.campaign_analysis import (
    HELD,
    NOT_JUDGED,
    POINTS,
    VIOLATED,
    CampaignReport,
    EventRecord,
    Injection,
    Observations,
    Table,
    attribute,
    check_invariants,
    fault_outcome,
    injections,
    mask_windows,
    mode_spans,
    time_in_modes,
)
from hil.campaign_report import markdown, mission_time
from hil.faults import KINDS, FaultSpec, parse_scenario

DAY_S = 86_400.0

#: A small catalogue whose faults the base notices within seconds.
TEST_CATALOGUE = """
detect_window = "3h"

[[fault]]
name = "converter_loss"
board = "reactor"
kind = "converter_loss"
rate_per_day = 1.0
duration = ["2h", "6h"]
watch = ["reactor", "power"]
[fault.params]
count = 1

[[fault]]
name = "habitat_sensor_dropped"
board = "thermal"
kind = "dropped"
channel = "habitat_temp_c"
rate_per_day = 1.0
duration = ["20min", "1h"]

[[fault]]
name = "radio_link_loss"
board = "comms"
kind = "link_loss"
rate_per_day = 1.0
duration = ["1h", "3h"]
"""


# --- the catalogue --------------------------------------------------------------------


def test_the_packaged_catalogue_loads_and_names_real_fault_kinds() -> None:
    catalogue = load_catalogue()
    assert len(catalogue.entries) >= 20
    assert {e.kind for e in catalogue.entries} <= set(KINDS)
    assert all(e.rate_per_day > 0 for e in catalogue.entries)
    assert 10 < 60 * catalogue.rate_per_day < 60  # tens of faults in a 60-day campaign
    assert catalogue.detect_window_s == 6 * 3600.0
    assert {e.board for e in catalogue.entries} == {"power", "thermal", "comms", "reactor"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "x"\nboard = "power"\nkind = "stuck"\nrate_per_day = 1\nchannel = "soc"', "key 'channel'"),
        ('name = "x"\nboard = "power"\nkind = "melt"\nrate_per_day = 1', "key 'kind'"),
        ('name = "x"\nboard = "power"\nkind = "dust"\nrate_per_day = 1', "key 'params.fraction': dust needs"),
        (
            'name = "x"\nboard = "power"\nkind = "dust"\nrate_per_day = 1\n'
            "[fault.params]\nfraction = [0.5, 2.0]",
            "key 'params.fraction': fraction=2.0",
        ),
        ('name = "x"\nboard = "power"\nkind = "dust"\nrate_per_day = -1', "key 'rate_per_day'"),
        (
            'name = "x"\nboard = "comms"\nkind = "link_loss"\nrate_per_day = 1\nduration = ["2h", "1h"]',
            "duration",
        ),
        ('name = "x"\nboard = "comms"\nkind = "link_loss"\nrate_per_day = 1\nwhen = 3', "key 'when'"),
        ('name = "x"\nboard = "thermal"\nkind = "converter_loss"\nrate_per_day = 1', "key 'board'"),
    ],
)
def test_a_bad_catalogue_entry_is_refused_naming_file_entry_and_key(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_catalogue(f"[[fault]]\n{entry}\n", "my.toml")
    text = str(caught.value)
    assert text.startswith("my.toml: [[fault]] #1 (x)")
    assert message in text


def test_two_entries_of_one_name_are_refused() -> None:
    entry = '[[fault]]\nname = "x"\nboard = "comms"\nkind = "link_loss"\nrate_per_day = 1\n'
    with pytest.raises(ConfigError, match=r"#2 \(x\), key 'name'"):
        parse_catalogue(entry + entry, "my.toml")


# --- the draw -------------------------------------------------------------------------


def test_the_draw_is_reproducible_and_becomes_a_scenario_the_simulator_accepts() -> None:
    catalogue = load_catalogue()
    first = draw_faults(catalogue, duration_s=60 * DAY_S, seed=1)
    assert first == draw_faults(catalogue, duration_s=60 * DAY_S, seed=1)
    assert first != draw_faults(catalogue, duration_s=60 * DAY_S, seed=2)
    scenario = parse_scenario(scenario_text(first), "<test>")
    assert len(scenario.faults) == len(first.faults) > 5
    for entry, fault in zip(scenario.faults, first.faults, strict=True):
        assert entry.origin == f"scenario #{fault.number}"  # how the simulator's events name it
        assert entry.spec == fault.spec
        assert entry.at_s == fault.at_s
        assert entry.until_s == fault.until_s
    assert draw_faults(catalogue, duration_s=60 * DAY_S, seed=1, rate_scale=0.0).faults == ()


def test_each_entry_draws_from_its_own_generator() -> None:
    """Adding an entry to a catalogue does not move the faults the others draw."""
    catalogue = parse_catalogue(TEST_CATALOGUE)
    smaller = Catalogue("<test>", catalogue.entries[:2])
    full = draw_faults(catalogue, duration_s=20 * DAY_S, seed=5)
    part = draw_faults(smaller, duration_s=20 * DAY_S, seed=5)
    kept = [(f.entry, f.spec, f.at_s, f.until_s) for f in full.faults if f.entry != "radio_link_loss"]
    assert kept == [(f.entry, f.spec, f.at_s, f.until_s) for f in part.faults]


def test_a_fault_still_active_is_not_drawn_again() -> None:
    permanent = CatalogueEntry(
        "cells", "power", "cell_loss", 5.0, params={"count": Range(1, 1, integer=True)}
    )
    draw = draw_faults(Catalogue("<test>", (permanent,)), duration_s=10 * DAY_S, seed=3)
    assert len(draw.faults) == 1
    assert draw.faults[0].until_s is None
    assert len(draw.skipped) > 10
    assert {s.blocking for s in draw.skipped} == {"#1 cells"}


@given(
    seed=st.integers(0, 2**31 - 1),
    days=st.floats(0.5, 30.0),
    scale=st.floats(0.0, 20.0),
)
def test_every_draw_is_ordered_inside_the_campaign_one_fault_per_target_at_a_time(
    seed: int, days: float, scale: float
) -> None:
    catalogue = parse_catalogue(TEST_CATALOGUE)
    duration_s = days * DAY_S
    draw = draw_faults(catalogue, duration_s=duration_s, seed=seed, rate_scale=scale, quiet_start_s=600.0)
    assert [f.number for f in draw.faults] == list(range(1, len(draw.faults) + 1))
    assert [f.at_s for f in draw.faults] == sorted(f.at_s for f in draw.faults)
    busy: dict[tuple[str, str, str], float] = {}
    for fault in draw.faults:
        assert 600.0 <= fault.at_s < duration_s
        assert fault.until_s is None or fault.at_s < fault.until_s < duration_s
        assert busy.get(fault.spec.key, -1.0) <= fault.at_s
        busy[fault.spec.key] = duration_s if fault.until_s is None else fault.until_s


def test_the_number_of_faults_follows_the_rates() -> None:
    entry = CatalogueEntry("link", "comms", "link_loss", 2.0, duration_s=(60.0, 60.0))
    counts = [
        len(draw_faults(Catalogue("<test>", (entry,)), duration_s=100 * DAY_S, seed=s).faults)
        for s in range(5)
    ]
    assert all(140 <= n <= 260 for n in counts), counts  # Poisson, mean 200: 4 standard deviations


def test_the_campaign_deployment_has_fresh_state_and_coarser_frames() -> None:
    text = campaign_deployment_text(
        embedded_text("lunation"), state_dir=Path("/x/state"), frame_period_s=10.0
    )
    deployment = parse(text, run_dir="/tmp/x")
    assert deployment.state_dir == Path("/x/state")
    assert deployment.clock.frame_period_s == 10.0
    assert all(spec.rate_hz <= 0.1 + 1e-12 for spec in deployment.processes)
    assert deployment.process("thermal").rate_hz == pytest.approx(0.1)
    assert deployment.process("power").housekeeping_period_s == 10.0  # kept
    with pytest.raises(ConfigError, match="frame period"):
        campaign_deployment_text(embedded_text("lunation"), state_dir=Path("/x"), frame_period_s=0.0)


# --- judging, on synthetic inputs -----------------------------------------------------


def _event(t_s: float, source: str, name: str, **data: object) -> EventRecord:
    return EventRecord(t_s, source, name, {"severity": "info", **data})


def _injected(t_s: float, number: int, name: str = "fault_injected") -> EventRecord:
    return _event(t_s, "simulator", name, origin=f"scenario #{number}")


def _drawn(*specs: tuple[str, str, str, float, float | None]) -> list[DrawnFault]:
    return [
        DrawnFault(
            n, name, FaultSpec(board, kind, channel="fuel_temp_c" if kind == "dropped" else ""), at, until
        )
        for n, (name, board, kind, at, until) in enumerate(specs, start=1)
    ]


def test_detection_and_responses_are_found_after_the_injection_with_their_latencies() -> None:
    faults = _drawn(("converter_loss", "reactor", "converter_loss", 100.0, None))
    events = [
        _event(50.0, "reactor", "reactor_alarm", severity="warning", quantity="power"),  # before: not it
        _injected(100.0, 1),
        _event(100.0, "reactor", "reactor_alarm", severity="warning", quantity="converter", active=True),
        _event(
            110.0, "protection", "monitor_changed", severity="error", monitor="converter_lost",
            state="red", cause="expression=reactor.converter_ok == false", respond=True,
        ),
        _event(110.0, "protection", "response_started", monitor="converter_lost", sequence="",
               mode="DEGRADED"),
        _event(110.0, "protection", "mode_changed", previous="NOMINAL", mode="DEGRADED",
               cause="monitor converter_lost", by="auto"),
        _event(130.0, "reactor", "reactor_setback", severity="error"),
    ]  # fmt: skip
    found = injections(events)
    assert found == {1: Injection(1, injected_s=100.0)}
    outcome = fault_outcome(faults[0], found[1], events, watch=("reactor",), window_s=3600.0)
    assert outcome.status == "detected"
    assert outcome.detection_s == 0.0
    assert outcome.detection is not None
    assert outcome.detection.name == "reactor_alarm"
    assert outcome.base_response is not None
    assert outcome.base_response.text == "converter_lost: mode DEGRADED"
    assert outcome.latency_s(outcome.base_response) == 10.0
    assert outcome.subsystem_response is not None
    assert outcome.subsystem_response.name == "reactor_setback"
    assert outcome.response_s == 10.0
    assert outcome.modes == ("DEGRADED",)
    late = fault_outcome(faults[0], found[1], events, watch=("reactor",), window_s=-1.0)
    assert late.status == "not detected"
    never = fault_outcome(faults[0], None, events, watch=("reactor",), window_s=3600.0)
    assert never.status == "not reached"


def test_a_warning_goes_to_the_newest_fault_that_explains_it_and_staleness_only_to_silence() -> None:
    faults = _drawn(
        ("radiator", "thermal", "radiator_damage", 0.0, None),
        ("converter", "reactor", "converter_loss", 500.0, None),
        ("silent", "power", "silent", 900.0, 960.0),
    )
    watch = {1: ("thermal", "reactor"), 2: ("reactor",), 3: ("power",)}
    stale = "point=power.battery_soc, age_s=70"
    events = [
        _injected(0.0, 1),
        _injected(500.0, 2),
        _event(500.0, "reactor", "reactor_alarm", severity="warning", quantity="converter"),
        _event(700.0, "protection", "monitor_changed", monitor="power_telemetry", state="red", cause=stale),
        _injected(900.0, 3),
        _event(970.0, "protection", "monitor_changed", monitor="power_telemetry", state="red", cause=stale),
        _event(4000.0, "thermal", "thermal_limit", severity="warning", node="reactor_radiator"),
    ]
    found = injections(events)
    claimed = attribute(faults, found, events, watch=watch, window_s=3 * 3600.0)
    assert set(claimed) == {1, 2, 3}
    assert [s.name for s in claimed[2].values()] == ["reactor_alarm"]  # not the radiator's
    assert [s.t_s for s in claimed[3].values()] == [970.0]  # the stale monitor at 700 s explains nothing
    assert [s.name for s in claimed[1].values()] == ["thermal_limit"]
    radiator = fault_outcome(
        faults[0], found[1], events, watch=watch[1], window_s=3 * 3600.0, claimed=claimed[1]
    )
    assert radiator.detection_s == 4000.0


def test_the_mode_timeline_starts_in_boot_and_sums_to_the_run() -> None:
    events = [
        _event(1.0, "protection", "mode_changed", previous="BOOT", mode="NOMINAL", cause="boot", by="auto"),
        _event(
            100.0, "protection", "mode_changed", previous="NOMINAL", mode="SAFE", cause="monitor x", by="auto"
        ),
        _event(700.0, "protection", "mode_changed", previous="SAFE", mode="NOMINAL", cause="hold", by="auto"),
    ]
    spans = mode_spans(events, 1000.0)
    assert [(s.mode, s.start_s, s.end_s) for s in spans] == [
        ("BOOT", 0.0, 1.0),
        ("NOMINAL", 1.0, 100.0),
        ("SAFE", 100.0, 700.0),
        ("NOMINAL", 700.0, 1000.0),
    ]
    assert time_in_modes(spans) == {"BOOT": 1.0, "NOMINAL": 399.0, "SAFE": 600.0}
    assert mode_spans([], 1000.0) == []


def _observations(
    power: list[tuple[float, dict[str, float]]], fuel: list[float], modes: list[str]
) -> Observations:
    observations = Observations()
    observations.tables["power"] = Table.of(POINTS["power"], power)
    observations.tables["reactor"] = Table.of(
        POINTS["reactor"], [(10.0 * i, {"fuel_temp_c": v}) for i, v in enumerate(fuel)]
    )
    for i, mode in enumerate(modes):
        observations.tables["protection"].add(10.0 * i, {"mode": mode})
        observations.add_text("protection.mode", 10.0 * i, mode)
    return observations


def _power(soc: float, bus_v: float, tiers: int) -> dict[str, float]:
    return {"battery_soc": soc, "bus_voltage_v": bus_v, "tiers_on": tiers}


def test_invariants_hold_on_a_healthy_run() -> None:
    observations = _observations(
        [(0.0, _power(0.8, 125.0, 15)), (10.0, _power(0.3, 112.0, 1)), (20.0, _power(0.1, 95.0, 0))],
        [800.0, 812.0, 805.0],
        ["BOOT", "NOMINAL", "SURVIVAL"],
    )
    results = check_invariants(observations, {}, floor_soc=0.1)
    assert [r.status for r in results] == [HELD] * 4
    fuel, floor, tier0, modes = results
    assert fuel.worst == 812.0
    assert fuel.worst_t_s == 10.0
    assert floor.worst == 0.1  # at the floor: the cut acted there, not below
    assert tier0.judged == 3  # collapsed once, but with every tier off and the battery at its floor
    assert "NOMINAL" in modes.detail


def test_each_invariant_fails_on_what_breaks_it() -> None:
    observations = _observations(
        [(0.0, _power(0.5, 95.0, 1)), (10.0, _power(0.05, 118.0, 0))],
        [800.0, 851.0],
        ["NOMINAL", "PANIC"],
    )
    results = check_invariants(observations, {}, floor_soc=0.1)
    assert [r.status for r in results] == [VIOLATED] * 4
    fuel, floor, tier0, modes = results
    assert fuel.first_violation_t_s == 10.0
    assert floor.first_violation_t_s == 10.0
    assert tier0.first_violation_t_s == 0.0  # collapsed with T1 on and half a battery
    assert "PANIC" in modes.detail
    # The run's statistics (every control cycle) count too.
    statistics = {"reactor": {"fuel_temp_peak_c": 870.0}, "power": {"battery_soc_min": 0.02}}
    healthy = _observations([(0.0, _power(0.8, 125.0, 15))], [800.0], ["NOMINAL"])
    fuel, floor, _, _ = check_invariants(healthy, {}, floor_soc=0.1, statistics=statistics)
    assert (fuel.status, fuel.worst, floor.status, floor.worst) == (VIOLATED, 870.0, VIOLATED, 0.02)


def test_samples_a_sensor_fault_lies_about_are_not_judged() -> None:
    faults = _drawn(("fuel_sensor", "reactor", "dropped", 5.0, 15.0))
    found = {1: Injection(1, injected_s=5.0, cleared_s=15.0)}
    windows = mask_windows(faults, found, end_s=100.0, margin_s=0.0)
    assert windows == {"reactor.fuel_temp_c": [(5.0, 15.0)]}
    observations = _observations([], [800.0, 900.0, 801.0], [])
    statistics = {"reactor": {"fuel_temp_peak_c": 900.0}}
    fuel, floor, tier0, modes = check_invariants(observations, windows, floor_soc=0.1, statistics=statistics)
    assert (fuel.status, fuel.judged, fuel.masked, fuel.worst) == (HELD, 2, 1, 801.0)
    assert floor.status == tier0.status == modes.status == NOT_JUDGED


def test_the_markdown_report_shows_verdicts_faults_and_figures() -> None:
    faults = _drawn(("converter_loss", "reactor", "converter_loss", 100.0, 7300.0))
    events = [
        _injected(100.0, 1),
        _event(100.0, "reactor", "reactor_alarm", severity="warning", quantity="converter"),
        _event(1.0, "protection", "mode_changed", previous="BOOT", mode="NOMINAL", cause="boot", by="auto"),
    ]
    observations = _observations([(0.0, _power(0.8, 125.0, 15))], [800.0], ["NOMINAL"])
    observations.events = sorted(events, key=lambda e: e.t_s)
    found = injections(observations.events)
    outcome = fault_outcome(faults[0], found[1], observations.events, watch=("reactor",), window_s=3600.0)
    report = CampaignReport(
        settings={"days": 1, "faults": "random", "seed": 4, "battery_floor_soc": 0.1},
        summary={"reason": "duration reached", "mission_time_s": DAY_S, "statistics": {}},
        catalogue=[],
        outcomes=[outcome],
        skipped=[],
        spans=mode_spans(observations.events, DAY_S),
        invariants=check_invariants(observations, {}, floor_soc=0.1),
        figures={"faults": {"detected": 1}},
        observations=observations,
        detect_window_s=3600.0,
    )
    assert report.passed
    text = markdown(report, plots=())
    assert "Verdict: every safety invariant held" in text
    assert "| fuel never above 850 C | held |" in text
    assert "converter_loss: reactor converter_loss" in text
    assert "+0 s reactor.reactor_alarm" in text
    assert "NOMINAL" in text
    assert json.loads(json.dumps(report.to_json()))["faults"][0]["detection_s"] == 0.0
    assert mission_time(DAY_S + 3661.0) == "1 d 01:01:01"


# --- a real campaign --------------------------------------------------------------------


def test_a_day_of_campaign_with_faults_ends_with_a_report_and_every_invariant_held(
    run_dir: Path, tmp_path: Path
) -> None:
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text(TEST_CATALOGUE, encoding="utf-8")
    report_dir = tmp_path / "report"
    out = subprocess.run(
        [sys.executable, "-m", "fsw.cli", "campaign", "--days", "1", "--seed", "3",
         "--catalogue", str(catalogue), "--frame-period", "10", "--report", str(report_dir),
         "--run-dir", str(run_dir / "run")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "every safety invariant held" in out.stdout
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["passed"]
    assert report["run"]["reason"] == "duration reached"
    assert report["run"]["frames"] == 8640
    assert [i["status"] for i in report["invariants"]] == [HELD] * 4
    faults = {f["number"]: f for f in report["faults"]}
    # The seed draws these four (hil.campaign.draw_faults is reproducible).
    assert [faults[n]["entry"] for n in sorted(faults)] == [
        "habitat_sensor_dropped", "converter_loss", "radio_link_loss", "converter_loss",
    ]  # fmt: skip
    for fault in faults.values():
        assert fault["status"] == "detected"
        assert fault["injected_s"] == pytest.approx(fault["at_s"], abs=10.0)  # the next 10 s frame
    converter = faults[2]
    assert converter["detection_s"] <= 20.0
    assert converter["detection"]["name"] in ("reactor_alarm", "monitor_changed")
    assert converter["base_response"]["text"] == "converter_lost: mode DEGRADED"
    assert converter["base_response_s"] <= 60.0
    dropped = faults[1]
    assert dropped["detection_s"] <= 60.0
    assert report["time_in_modes_s"]
    assert set(report["time_in_modes_s"]) <= set(MODES)
    figures = report["figures"]
    assert 0.1 < figures["battery_soc_min"] <= 1.0
    assert figures["reactor_trips"] == 0
    assert set(figures["energy_not_served_wh"]) == {"t1", "t2", "t3", "t4"}
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    for picture in ("modes.png", "power.png", "thermal.png", "reactor.png"):
        assert f"]({picture})" in text
        assert (report_dir / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report_dir / "scenario.toml").is_file()
    assert any((report_dir / "recording").glob("*.fswlog"))
    assert (report_dir / "logs" / "protection.log").is_file()
