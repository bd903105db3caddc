"""The thermal board's physics against known answers.

Every expected value is computed here from the equations of the module docstring
(radiation ``eps sigma A (T^4 - T_sink^4)``, absorbed sunlight ``alpha f G A``, linear
conduction), not read back from the model.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from fsw.errors import ConfigError
from hil.physics import World
from hil.physics.environment import Environment
from hil.physics.model import KELVIN, STEFAN_BOLTZMANN, Coupling
from hil.physics.thermal import (
    SOLAR_CONSTANT_W_M2,
    VERTICAL_PANEL_VIEW_FACTOR,
    ThermalModel,
    radiator_area_m2,
)

EPS = 0.9
ALPHA = 0.15
SUN_SINK_K = 230.0
DARK_SINK_K = 150.0
RATED_WASTE_HEAT_W = 30_000.0


def sunlit(t_s: float, sink_k: float = SUN_SINK_K) -> Environment:
    """Full sun on the horizon, as the sizing assumes."""
    return Environment(t_s, 0.0, 0.0, 1.0, sink_k)


def dark(t_s: float, sink_k: float = DARK_SINK_K) -> Environment:
    return Environment(t_s, 0.0, 0.0, 0.0, sink_k)


def run(
    model: ThermalModel,
    duration_s: float,
    dt_s: float,
    coupling: Coupling | None = None,
    env: Any = sunlit,
    node: str = "reactor_radiator",
) -> list[float]:
    """Step ``model`` for ``duration_s``; return ``node``'s temperature after every step."""
    coupling = coupling or Coupling()
    out = []
    steps = round(duration_s / dt_s)
    for i in range(1, steps + 1):
        model.step(dt_s, env(i * dt_s), coupling)
        out.append(model.temperatures_c()[node])
    return out


def radiator_equilibrium_c(heat_w: float, area_m2: float, sink_k: float, sun_w_m2: float) -> float:
    """Temperature at which a radiator rejects ``heat_w`` plus what it absorbs (C)."""
    absorbed_w = ALPHA * VERTICAL_PANEL_VIEW_FACTOR * sun_w_m2 * area_m2
    fourth = sink_k**4 + (heat_w + absorbed_w) / (EPS * STEFAN_BOLTZMANN * area_m2)
    return math.sqrt(math.sqrt(fourth)) - KELVIN


def isolated(**overrides: Any) -> ThermalModel:
    """A board whose nodes exchange no heat with each other (each alone with the sink)."""
    params: dict[str, Any] = {
        "battery_radiator_w_per_k": 0.0,
        "battery_avionics_w_per_k": 0.0,
        "avionics_radiator_w_per_k": 0.0,
        "avionics_loop_bypass_w_per_k": 0.0,
        "habitat_radiator_w_per_k": 0.0,
        "habitat_loop_bypass_w_per_k": 0.0,
        "habitat_leak_w_per_k": 0.0,
        "avionics_dissipation_w": 0.0,
    }
    params.update(overrides)
    return ThermalModel(**params)


# --- radiation ------------------------------------------------------------------------


def test_a_radiator_with_no_heat_input_cools_monotonically_to_its_radiative_equilibrium() -> None:
    model = isolated(initial_reactor_radiator_temp_c=80.0)
    temps = run(model, 12 * 3600.0, 10.0)
    # Only absorbed sunlight heats it: eps sigma (T^4 - T_sink^4) = alpha G / pi.
    expected_c = radiator_equilibrium_c(0.0, 51.2, SUN_SINK_K, SOLAR_CONSTANT_W_M2)
    assert expected_c == pytest.approx(-20.5, abs=0.1)
    assert temps[-1] == pytest.approx(expected_c, abs=0.05)
    assert all(b <= a for a, b in itertools.pairwise(temps))  # monotonic: no overshoot
    assert temps[-1] >= expected_c - 1e-9


def test_cooling_to_deep_space_follows_the_analytic_curve() -> None:
    # C dT/dt = -k T^4 (a 3 K sink is deep space): T(t) = (T0^-3 + 3 k t / C)^(-1/3).
    capacity = 200_000.0
    k = EPS * STEFAN_BOLTZMANN * 51.2
    t0_k = 80.0 + KELVIN
    model = isolated(initial_reactor_radiator_temp_c=80.0, reactor_radiator_capacity_j_per_k=capacity)
    temps = run(model, 6 * 3600.0, 1.0, env=lambda t: dark(t, sink_k=3.0))
    for hours in (0.5, 1, 2, 6):
        t_s = hours * 3600.0
        expected_k = (t0_k**-3 + 3.0 * k * t_s / capacity) ** (-1.0 / 3.0)
        assert temps[round(t_s) - 1] + KELVIN == pytest.approx(expected_k, rel=2e-3)


def test_the_reactor_radiator_settles_at_the_sized_temperature_for_its_waste_heat() -> None:
    # The sizing: 30 kW at 80 C in sunlight needs 51.2 m2.
    area = radiator_area_m2(RATED_WASTE_HEAT_W, 80.0, SUN_SINK_K, EPS, ALPHA)
    assert area == pytest.approx(51.2, abs=0.05)
    for heat_w, env, sink_k, sun in (
        (RATED_WASTE_HEAT_W, sunlit, SUN_SINK_K, SOLAR_CONSTANT_W_M2),
        (15_000.0, sunlit, SUN_SINK_K, SOLAR_CONSTANT_W_M2),
        (RATED_WASTE_HEAT_W, dark, DARK_SINK_K, 0.0),
    ):
        model = ThermalModel()
        temps = run(model, 4 * 3600.0, 10.0, Coupling(reactor_waste_heat_w=heat_w), env)
        expected_c = radiator_equilibrium_c(heat_w, 51.2, sink_k, sun)
        assert temps[-1] == pytest.approx(expected_c, abs=0.05), (heat_w, sink_k)
        assert all(b >= a for a, b in itertools.pairwise(temps))  # warms without overshoot
    assert radiator_equilibrium_c(RATED_WASTE_HEAT_W, 51.2, SUN_SINK_K, SOLAR_CONSTANT_W_M2) == pytest.approx(
        80.0, abs=0.1
    )
    assert radiator_equilibrium_c(RATED_WASTE_HEAT_W, 51.2, DARK_SINK_K, 0.0) == pytest.approx(
        57.75, abs=0.05
    )


def test_the_coupling_carries_the_cold_end_and_battery_temperatures_and_the_heater_draw() -> None:
    model = ThermalModel()
    coupling = Coupling(reactor_waste_heat_w=RATED_WASTE_HEAT_W)
    model.command("heater_habitat", 0.5)
    run(model, 600.0, 1.0, coupling)
    temps = model.temperatures_c()
    assert coupling.reactor_radiator_temp_c == temps["reactor_radiator"]
    assert coupling.battery_temp_c == temps["battery"]
    assert coupling.heater_power_w == pytest.approx(1000.0)
    values = model.read()
    assert values["reactor_radiator_heat_w"] == RATED_WASTE_HEAT_W
    assert values["heater_power_w"] == pytest.approx(1000.0)
    assert set(values) == {c.name for c in model.description.channels}


# --- heaters, conduction, thermostats -----------------------------------------------------


def test_a_heater_raises_its_node_by_power_over_conductance_with_time_constant_c_over_g() -> None:
    # The habitat alone with the sink through its insulation: dT = P / G, tau = C / G.
    leak, capacity = 50.0, 2_000_000.0
    model = isolated(habitat_leak_w_per_k=leak, initial_habitat_temp_c=SUN_SINK_K - KELVIN)
    run(model, 600.0, 1.0, node="habitat")
    assert model.temperatures_c()["habitat"] == pytest.approx(SUN_SINK_K - KELVIN, abs=1e-9)
    model.command("heater_habitat", 1.0)
    tau_s = capacity / leak
    temps = run(model, 8 * tau_s, 60.0, node="habitat")
    delta = 2000.0 / leak
    assert temps[round(tau_s / 60.0) - 1] - (SUN_SINK_K - KELVIN) == pytest.approx(
        delta * (1.0 - math.exp(-1.0)), rel=0.01
    )
    assert temps[-1] - (SUN_SINK_K - KELVIN) == pytest.approx(delta, rel=1e-3)


def test_two_nodes_share_heat_through_their_conductance() -> None:
    # Battery (750 kJ/K) and avionics (50 kJ/K) tied by 2 W/K and to nothing else: the gap
    # closes with tau = 1 / (G (1/C1 + 1/C2)) and both end at the energy-weighted mean.
    model = isolated(battery_avionics_w_per_k=2.0, initial_battery_temp_c=30.0, initial_avionics_temp_c=10.0)
    tau_s = 1.0 / (2.0 * (1.0 / 750_000.0 + 1.0 / 50_000.0))
    gaps = []
    for _ in range(20):
        run(model, tau_s, tau_s / 100.0, node="battery")
        temps = model.temperatures_c()
        gaps.append(temps["battery"] - temps["avionics"])
    assert gaps[0] == pytest.approx(20.0 * math.exp(-1.0), rel=0.01)
    mean_c = (750_000.0 * 30.0 + 50_000.0 * 10.0) / 800_000.0
    assert temps["battery"] == pytest.approx(mean_c, abs=1e-3)
    assert temps["avionics"] == pytest.approx(mean_c, abs=1e-3)


def test_the_survival_thermostats_hold_the_battery_and_avionics_without_flight_software() -> None:
    model = ThermalModel(initial_battery_temp_c=-1.0, initial_avionics_temp_c=-36.0)
    coupling = Coupling()
    model.step(1.0, dark(1.0), coupling)
    values = model.read()
    assert values["survival_heater_battery"] is True
    assert values["survival_heater_avionics"] is True
    assert coupling.heater_power_w == pytest.approx(400.0 + 100.0)
    events = {(e.name, e.data["node"]) for e in model.drain_events()}
    assert events == {("survival_heater", "battery"), ("survival_heater", "avionics")}
    # A week of darkness with no habitat heat and no flight software: the battery stays
    # near its 0..5 C thermostat band and the avionics above its survival limit.
    low = {"battery": math.inf, "avionics": math.inf}
    for i in range(7 * 24 * 6):
        model.step(600.0, dark(1.0 + 600.0 * (i + 1)), coupling)
        temps = model.temperatures_c()
        low = {node: min(value, temps[node]) for node, value in low.items()}
    assert low["battery"] > -1.5
    assert low["avionics"] > -40.0


def test_the_loop_valves_keep_the_habitat_and_avionics_warm_in_the_dark() -> None:
    # Life support on (2.1 kW into the habitat), a long dark spell, no flight heaters.
    model = ThermalModel()
    temps = run(model, 10 * 86_400.0, 60.0, Coupling(habitat_gain_w=2100.0), dark, node="habitat")
    final = model.temperatures_c()
    assert 18.0 < temps[-1] < 23.0
    assert -20.0 < final["avionics"] < 50.0
    assert final["radiator"] < -40.0


# --- integration ---------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [2_000.0, 200_000.0])
def test_integration_is_stable_and_agrees_at_0_1_1_and_10_s(capacity: float) -> None:
    # 2 kJ/K with 30 kW is stiff (time constant about 4 s against a 10 s step).
    finals = []
    samples = []
    for dt_s in (0.1, 1.0, 10.0):
        model = ThermalModel(reactor_radiator_capacity_j_per_k=capacity)
        coupling = Coupling(
            reactor_waste_heat_w=RATED_WASTE_HEAT_W, habitat_gain_w=2100.0, battery_heat_w=80.0
        )
        temps = run(model, 3600.0, dt_s, coupling)
        stride = round(60.0 / dt_s)
        samples.append(temps[stride - 1 :: stride])
        assert all(b >= a for a, b in itertools.pairwise(temps)), dt_s  # warms, never overshoots
        finals.append(model.temperatures_c())
    for node in finals[0]:
        spread = max(f[node] for f in finals) - min(f[node] for f in finals)
        assert spread < 0.05, node
    if capacity > 10_000.0:
        # Along the way too: backward Euler lags by about h/2 dT/dt (0.16 K/s at first).
        for fine, mid, coarse in zip(*samples, strict=True):
            assert abs(coarse - fine) < 0.5
            assert abs(mid - fine) < 0.05
    expected_c = radiator_equilibrium_c(RATED_WASTE_HEAT_W, 51.2, SUN_SINK_K, SOLAR_CONSTANT_W_M2)
    if capacity < 10_000.0:
        assert finals[-1]["reactor_radiator"] == pytest.approx(expected_c, abs=0.01)


def test_a_long_step_is_substepped_and_matches_short_steps() -> None:
    coupling = Coupling(habitat_gain_w=2100.0)
    one = ThermalModel()
    one.step(3600.0, sunlit(3600.0), coupling)
    many = ThermalModel()
    run(many, 3600.0, 1.0, Coupling(habitat_gain_w=2100.0), node="battery")
    for node, temp_c in one.temperatures_c().items():
        # 60 s substeps against 1 s steps, through the loop valves' bends: within 0.1 K.
        assert temp_c == pytest.approx(many.temperatures_c()[node], abs=0.1), node


def test_energy_is_conserved_between_nodes() -> None:
    # No radiating area and no leak: every joule the loads and heaters put in is stored.
    model = ThermalModel(radiator_area_m2=0.0, reactor_radiator_area_m2=0.0, habitat_leak_w_per_k=0.0)
    for name in ("heater_battery", "heater_avionics", "heater_habitat"):
        model.command(name, 0.5)
    coupling = Coupling(battery_heat_w=90.0, habitat_gain_w=2100.0, reactor_waste_heat_w=5000.0)
    before = model.temperatures_c()
    dt_s = 1000.0
    model.step(dt_s, sunlit(dt_s), coupling)
    after = model.temperatures_c()
    stored_j = sum(model.capacity_j_per_k[n] * (after[n] - before[n]) for n in before)
    heat_in_w = 90.0 + 2100.0 + 5000.0 + 400.0 + 0.5 * (400.0 + 200.0 + 2000.0)
    assert stored_j == pytest.approx(heat_in_w * dt_s, rel=1e-9)


def test_heat_in_equals_stored_plus_radiated_over_a_step() -> None:
    model = ThermalModel()
    coupling = Coupling(battery_heat_w=90.0, habitat_gain_w=2100.0, reactor_waste_heat_w=RATED_WASTE_HEAT_W)
    run(model, 1800.0, 1.0, coupling)
    k = {n: EPS * STEFAN_BOLTZMANN * model.effective_area_m2(n) for n in ("radiator", "reactor_radiator")}
    solar_w = ALPHA * VERTICAL_PANEL_VIEW_FACTOR * SOLAR_CONSTANT_W_M2 * 51.2
    for dt_s in (1.0, 10.0):
        before = model.temperatures_c()
        model.step(dt_s, sunlit(1800.0 + dt_s), coupling)
        after = model.temperatures_c()
        stored_j = sum(model.capacity_j_per_k[n] * (after[n] - before[n]) for n in before)
        out_w = 5.0 * ((before["habitat"] + after["habitat"]) / 2.0 - (SUN_SINK_K - KELVIN))
        for node, kk in k.items():
            t0, t1 = before[node] + KELVIN, after[node] + KELVIN
            out_w += kk * ((t0**4 + t1**4) / 2.0 - SUN_SINK_K**4)  # trapezoid over the step
        in_w = 90.0 + 2100.0 + RATED_WASTE_HEAT_W + solar_w + 400.0
        assert stored_j == pytest.approx((in_w - out_w) * dt_s, abs=1e-3 * in_w * dt_s)


def test_step_cost_at_one_second_frames_is_small() -> None:
    import time  # noqa: PLC0415 - only this test times anything

    model = ThermalModel()
    coupling = Coupling(reactor_waste_heat_w=RATED_WASTE_HEAT_W, habitat_gain_w=2100.0)
    env = sunlit(1.0)
    started = time.perf_counter()
    for _ in range(20_000):
        model.step(1.0, env, coupling)
    per_step_us = (time.perf_counter() - started) / 20_000 * 1e6
    assert per_step_us < 100.0  # about 3 us on a desktop; the budget is 25 us


# --- fault hooks ---------------------------------------------------------------------------


def test_radiator_damage_and_failed_heat_pipes_raise_the_cold_end_as_the_lost_area_says() -> None:
    coupling = Coupling(reactor_waste_heat_w=RATED_WASTE_HEAT_W)
    model = ThermalModel()
    run(model, 4 * 3600.0, 10.0, coupling)
    model.damage_radiator(0.2)
    assert model.effective_area_m2("reactor_radiator") == pytest.approx(0.8 * 51.2)
    temps = run(model, 4 * 3600.0, 10.0, coupling)
    expected_c = radiator_equilibrium_c(RATED_WASTE_HEAT_W, 0.8 * 51.2, SUN_SINK_K, SOLAR_CONSTANT_W_M2)
    assert temps[-1] == pytest.approx(expected_c, abs=0.05)
    assert 94.0 < expected_c < 97.0
    assert "reactor_radiator_temp_out_of_limits" not in model.faults()
    model.fail_heat_pipes(4)  # of 16: a quarter more of what is left
    temps = run(model, 4 * 3600.0, 10.0, coupling)
    area = 0.8 * 0.75 * 51.2
    assert temps[-1] == pytest.approx(
        radiator_equilibrium_c(RATED_WASTE_HEAT_W, area, SUN_SINK_K, SOLAR_CONSTANT_W_M2), abs=0.05
    )
    assert "reactor_radiator_temp_out_of_limits" in model.faults()
    model.damage_radiator(0.0)
    model.fail_heat_pipes(0)
    temps = run(model, 4 * 3600.0, 10.0, coupling)
    assert temps[-1] == pytest.approx(80.0, abs=0.1)


def test_main_radiator_damage_warms_the_avionics() -> None:
    coupling = Coupling(habitat_gain_w=2100.0)
    healthy = ThermalModel()
    damaged = ThermalModel()
    damaged.damage_radiator(0.5, radiator="radiator")
    run(healthy, 5 * 86_400.0, 60.0, coupling)
    run(damaged, 5 * 86_400.0, 60.0, Coupling(habitat_gain_w=2100.0))
    assert damaged.temperatures_c()["radiator"] > healthy.temperatures_c()["radiator"] + 10.0
    assert damaged.temperatures_c()["avionics"] > healthy.temperatures_c()["avionics"] + 5.0


def test_fault_hooks_check_their_arguments() -> None:
    model = ThermalModel()
    with pytest.raises(ConfigError, match="fraction"):
        model.damage_radiator(1.5)
    with pytest.raises(ConfigError, match="radiator="):
        model.damage_radiator(0.1, radiator="roof")
    with pytest.raises(ConfigError, match="count"):
        model.fail_heat_pipes(17)
    with pytest.raises(ConfigError, match="count"):
        model.fail_heat_pipes(-1)


# --- parameters ----------------------------------------------------------------------------


def test_parameters_come_from_the_deployment_and_bad_ones_name_the_key() -> None:
    world = World(seed=1, frame_period_s=1.0, params={"thermal": {"reactor_radiator_area_m2": 60.0}})
    assert world.thermal.area_m2["reactor_radiator"] == 60.0
    for key, value, match in (
        ("emissivity", 0.0, "emissivity"),
        ("battery_capacity_j_per_k", -1.0, "battery_capacity_j_per_k"),
        ("reactor_radiator_heat_pipes", 2.5, "reactor_radiator_heat_pipes"),
        ("habitat_loop_open_c", 10.0, "habitat_loop_closed_c=19 must be below habitat_loop_open_c=10"),
        ("battery_survival_off_c", -5.0, "battery_survival_on_c"),
        ("initial_battery_temp_c", -300.0, "initial_battery_temp_c"),
        ("radiator_area_m2", "big", "radiator_area_m2"),
        ("no_such_key", 1.0, "no_such_key"),
    ):
        with pytest.raises(ConfigError, match=r"\[processes.simulator.params.thermal\]") as caught:
            World(seed=1, frame_period_s=1.0, params={"thermal": {key: value}})
        assert match in str(caught.value)
    with pytest.raises(ConfigError, match="rejects nothing"):
        radiator_area_m2(1000.0, -50.0, SUN_SINK_K)
