"""The power subsystem on a real base: shedding in tier order, restoring with hysteresis, accounting.

The simulated power board is given a small battery (2 kWh at 23 % charge, taking up to
5 C so that it recharges in minutes) and all tiers on (T2 made 8 kW, on the board and in
the subsystem's ratings); a scenario darkens the arrays for the first two minutes. The
flight software must shed T4, T3 and T2 on the bus voltage, one per control cycle, and T1
when the depth of discharge reaches 0.80. Once the sun is back it must wait for the depth
of discharge to fall below 0.70 (and the bus to reach 114 V) before restoring T1, and must
not restore T2, whose 8 kW the ~10 kW arrays cannot cover beside T0 and T1. The energy
not served per tier is each shed tier's rating times the time it was off; the run's
statistics report it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hil.testing import HilBase, final_heartbeat, less_than, merge_toml
from subsystems.deployment import DEFAULT_DEPLOYMENT

RATINGS_W = (3000.0, 8000.0, 2500.0, 1500.0)

LAYER = f"""
[processes.simulator.params.power]
battery_capacity_kwh = 2.0
max_charge_rate_c = 5.0
initial_soc = 0.23
tier_loads_w = {list(RATINGS_W)}
tiers_on = [1, 2, 3, 4]

[processes.power.params]
tier_loads_w = {list(RATINGS_W)}
"""

SCENARIO = """
[[fault]]
at = "0s"
until = "2min"
board = "power"
kind = "array_degradation"
fraction = 1.0
"""


@pytest.fixture
def base(hil_base: Callable[..., HilBase], tmp_path: Path) -> HilBase:
    scenario = tmp_path / "dark.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    run = ("--speed", "max", "--duration", "5min", "--seed", "1", "--scenario", str(scenario))
    return hil_base(merge_toml(DEFAULT_DEPLOYMENT, LAYER), *run)


def test_sheds_highest_tier_first_restores_with_hysteresis_and_counts_energy_not_served(
    base: HilBase,
) -> None:
    shed = [base.await_event("load_shed", "power", {"tier": tier}) for tier in (4, 3, 2, 1)]
    first_s = shed[0].t_s
    assert first_s <= 5.0
    # 17.5 kW on a 2 kWh battery at 23 %: the bus sags under 110 V at once, and T4, T3, T2 go,
    # one per 1 Hz control cycle, until it is back above 110 V...
    assert [e.t_s for e in shed[:3]] == [first_s, first_s + 1.0, first_s + 2.0]
    bus = dict(base.telemetry_history("power", "bus_voltage_v"))
    assert all(bus[e.t_s] < 110.0 for e in shed[:3])
    assert bus[shed[2].t_s + 1.0] >= 110.0

    restored = base.await_event("load_restored", "power", {"tier": 1, "dod": less_than(0.70)})
    # ...then T1 goes when the depth of discharge reaches 0.80
    dod = dict(base.telemetry_history("power", "battery_dod"))
    assert dod[shed[3].t_s] >= 0.80 > dod[shed[3].t_s - 1.0]
    assert restored.t_s > 120.0  # only once the sun is back and the battery has recovered
    assert restored.data["bus_voltage_v"] >= 114.0
    dods = [(t, v) for t, v in base.telemetry_history("power", "battery_dod") if first_s <= t < restored.t_s]
    assert max(v for _, v in dods) > 0.75  # it went deep...
    assert all(t > 120.0 for t, v in dods if v < 0.70)  # ...and came back under 0.70 only in sunlight

    stopping = base.await_message(final_heartbeat("power"), timeout_s=60.0)
    stats = stopping.data["statistics"]
    base.assert_event_count(4, "load_shed", "power")
    base.assert_event_count(1, "load_restored", "power")  # T2 (8 kW) waits: the surplus cannot cover it
    end_s = stopping.t_s
    assert stats["shed_events"] == 4
    assert stats["restore_events"] == 1
    assert stats["battery_soc_min"] == pytest.approx(1.0 - max(v for _, v in dods), abs=0.01)
    # energy not served: each tier's rating for the time it was shed (to the last control cycle)
    expected_t1_wh = RATINGS_W[0] * (restored.t_s - shed[3].t_s) / 3600.0
    assert stats["energy_not_served_t1_wh"] == pytest.approx(expected_t1_wh, abs=0.1)
    for tier, event in ((4, shed[0]), (3, shed[1]), (2, shed[2])):
        expected_wh = RATINGS_W[tier - 1] * (end_s - event.t_s) / 3600.0
        assert stats[f"energy_not_served_t{tier}_wh"] == pytest.approx(expected_wh, rel=0.02)
    total = sum(stats[f"energy_not_served_t{t}_wh"] for t in (1, 2, 3, 4))
    assert stats["energy_not_served_wh"] == pytest.approx(total, abs=0.2)
    assert stats["solar_energy_kwh"] == pytest.approx(9.937 * (end_s - 120.0) / 3600.0, rel=0.05)
    assert stats["reactor_energy_kwh"] == 0.0
    assert stats["load_energy_kwh"] > 0.0
    assert base.telemetry_history("power", "tiers_shed")[-1][1] == 0b1110
