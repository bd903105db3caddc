"""The lunation deployment: a short run of the whole base on 1 s frames ends with every
subsystem's statistics (the month itself is a benchmark: bench/lunation.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SUBSYSTEMS = ("power", "thermal", "comms", "reactor")


def test_six_hours_of_lunation_end_with_each_subsystems_statistics(run_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fsw.cli", "up", "lunation", "--run-dir", str(run_dir / "run"),
         "--speed", "max", "--duration", "6h", "--seed", "1", "--json"],
        capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    summary = json.loads(out.stdout)
    assert summary["reason"] == "duration reached"
    assert summary["frames"] == 6 * 3600  # 1 s frames
    assert summary["missed_frames"] == 0
    assert summary["lost"] == 0
    stats = summary["statistics"]
    assert set(SUBSYSTEMS) <= set(stats)
    power, thermal, reactor, comms = (stats[n] for n in ("power", "thermal", "reactor", "comms"))
    # The energy ledger of six hours: what the loads took came from the sources and the battery.
    assert 0.0 < power["battery_soc_min"] <= 1.0
    assert power["load_energy_kwh"] > 0.0
    supplied_kwh = power["solar_energy_kwh"] + power["reactor_energy_kwh"] - power["shunted_energy_kwh"]
    assert supplied_kwh > 0.5 * power["load_energy_kwh"]
    # Mid-mission start: the reactor ran at power all along, under its alarm levels, with no trip.
    assert reactor["trips"] == 0
    assert reactor["hours_at_power"] > 5.9
    assert 780.0 < reactor["fuel_temp_peak_c"] < 820.0
    assert reactor["electric_energy_kwh"] == pytest.approx(power["reactor_energy_kwh"], rel=0.02)
    # Every node stayed inside its red limits.
    assert thermal["red_limit_violations"] == 0
    assert 0.0 <= comms["link_time_h"] <= 6.0
    # fsw up prints the same statistics for people, per process.
    human = subprocess.run(
        [sys.executable, "-m", "fsw.cli", "up", "lunation", "--run-dir", str(run_dir / "run2"),
         "--speed", "max", "--duration", "10min", "--seed", "1"],
        capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    assert "battery_soc_min" in human.stdout
    assert "fuel_temp_peak_c" in human.stdout
