"""Known answers of the reactor board model: kinetics, decay heat, load following, protection.

Every figure is checked against its published value (physics reference, section 1): the
inhour periods of Keepin's fast U-235 groups, the Way-Wigner decay-heat curve, the trip
and rod-insertion times. The model is stepped directly, the way the world steps it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsw.errors import ConfigError
from hil.physics.environment import Environment, Illumination
from hil.physics.model import Coupling
from hil.physics.reactor import (
    DECAY_HEAT_GROUPS,
    DecayHeat,
    PointKinetics,
    ReactorModel,
    way_wigner_fraction,
)
from hil.physics.world import World

ENVIRONMENT = Illumination(random.Random(0)).environment(0.0)


class Rig:
    """A reactor model stepped frame by frame with its own coupling."""

    def __init__(self, **params: Any) -> None:
        self.model = ReactorModel(**params)
        self.coupling = Coupling()
        self.t_s = 0.0

    def env(self) -> Environment:
        return dataclasses.replace(ENVIRONMENT, time_s=self.t_s)

    def run(self, seconds: float, frame_s: float = 1.0) -> None:
        for _ in range(round(seconds / frame_s)):
            self.t_s += frame_s
            self.model.step(frame_s, self.env(), self.coupling)


# --- kinetics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step_dollars", "period_s", "window_s"),
    [(0.10, 95.0, (200.0, 400.0)), (0.30, 17.0, (60.0, 120.0))],
)
def test_a_reactivity_step_gives_the_inhour_period(
    step_dollars: float, period_s: float, window_s: tuple[float, float]
) -> None:
    """From a cold critical state at 1e-6 of rated power (40 mW), so that the fuel warms by
    well under 0.1 K over the window: feedback stays below 0.02 cent, negligible."""
    rig = Rig(start="critical")
    rig.run(60.0)
    assert rig.model.kinetics.n == pytest.approx(1e-6, rel=1e-3)  # steady before the step
    rig.model.insert_reactivity(step_dollars)
    levels = {}
    for second in range(1, round(window_s[1]) + 1):
        rig.run(1.0)
        levels[second] = rig.model.kinetics.n
    start, end = window_s
    measured_s = (end - start) / math.log(levels[round(end)] / levels[round(start)])
    assert measured_s == pytest.approx(period_s, rel=0.10)
    assert rig.model.period_s == pytest.approx(period_s, rel=0.10)  # the board's period meter
    assert rig.model.fuel_temp_c - rig.model.cold_temp_c < 0.1
    assert not rig.model.tripped


def test_kinetics_are_exact_at_steady_state_and_reduce_to_the_prompt_jump() -> None:
    kinetics = PointKinetics(beta_eff=0.0069, generation_time_s=1e-6, source=0.0)
    kinetics.reset(0.7)
    for h in (1e-3, 0.2, 1.0, 30.0, 3600.0):
        assert kinetics.step(h, 0.0) == pytest.approx(0.7, rel=1e-12)
    # Prompt jump: a -$1 step drops n to 1 / (1 - rho) = 1/2 at once as Lambda -> 0.
    jump = PointKinetics(beta_eff=0.0069, generation_time_s=1e-12, source=0.0)
    jump.reset(1.0)
    assert jump.step(1e-6, -1.0) == pytest.approx(0.5, rel=1e-4)
    # Far beyond prompt critical the cap holds n positive and finite.
    wild = PointKinetics(beta_eff=0.0069, generation_time_s=1e-6)
    wild.reset(1.0)
    for _ in range(20):
        n = wild.step(1.0, 5.0)
        assert 0.0 < n < math.inf


# --- protection ----------------------------------------------------------------------


def test_a_scram_at_rated_power_cuts_fission_power_by_ninety_percent_within_two_seconds() -> None:
    rig = Rig(start="power")
    assert rig.model.fission_power_w == pytest.approx(40_000.0)
    rig.model.command("scram", True)
    rig.run(2.0)
    assert rig.model.rod_position == 0.0
    assert rig.model.fission_power_w <= 0.10 * 40_000.0
    (trip,) = rig.model.drain_events()
    assert (trip.name, trip.data["reason"], trip.board_time_s) == ("trip", "manual_scram", 0.0)


def test_an_overpower_trip_is_found_and_the_rod_is_in_within_two_seconds() -> None:
    rig = Rig(start="power")
    rig.model.insert_reactivity(0.08)  # prompt jump to about 109 %, then rising
    rig.run(5.0, frame_s=0.1)
    (trip,) = [e for e in rig.model.drain_events() if e.name == "trip"]
    assert trip.data["reason"] == "overpower"
    assert trip.board_time_s <= 1.0
    at_trip = float(trip.data["fission_power_w"])
    rig = Rig(start="power")
    rig.model.insert_reactivity(0.08)
    rig.run(trip.board_time_s + 2.0, frame_s=0.1)
    assert rig.model.rod_position == 0.0
    assert rig.model.fission_power_w <= 0.10 * at_trip


def test_loss_of_every_converter_at_power_trips_and_a_partial_loss_is_followed() -> None:
    lost = Rig(start="power")
    lost.model.fail_converter(True)
    lost.run(1.0)
    assert lost.model.trip_reason == "loss_of_heat_sink"
    assert {"tripped", "converter_failed"} <= lost.model.faults()
    assert lost.model.read()["converter_ok"] is False

    partial = Rig(start="power")
    partial.model.fail_converters(1)
    partial.run(4 * 3600.0)
    values = partial.model.read()
    assert not partial.model.tripped
    assert values["converters_running"] == 3
    assert values["converter_ok"] is False
    assert float(values["electric_power_w"]) == pytest.approx(0.75 * 9795.0, rel=0.03)
    partial.model.fail_converters(0)
    assert "converters_degraded" not in partial.model.faults()


def test_failed_heat_pipes_cut_the_power_by_feedback_without_a_trip() -> None:
    rig = Rig(start="power")
    rig.model.fail_heat_pipes(4)
    peak_c = 0.0
    for _ in range(3 * 3600):
        rig.run(1.0)
        peak_c = max(peak_c, rig.model.fuel_temp_c)
    values = rig.model.read()
    assert not rig.model.tripped
    assert values["heat_pipes_ok"] == 4
    assert float(values["heat_removed_w"]) == pytest.approx(25_000.0, rel=0.03)  # half of 50 kW
    assert 800.0 < peak_c < 840.0
    assert abs(rig.model.fuel_temp_c - 800.0) < 10.0
    assert "heat_pipes_failed" in rig.model.faults()
    with pytest.raises(ValueError, match="count"):
        rig.model.fail_heat_pipes(9)


def test_a_stuck_rod_is_not_inserted_by_a_trip_and_feedback_holds_the_core() -> None:
    rig = Rig(start="power")
    rod = rig.model.rod_position
    rig.model.stick_rod(True)
    rig.model.command("rod_target", 0.2)  # ignored by the jammed drive
    rig.run(60.0)
    assert rig.model.rod_position == rod
    rig.model.fail_converter(True)
    peak_c = 0.0
    for _ in range(24 * 60):
        rig.run(60.0)
        peak_c = max(peak_c, rig.model.fuel_temp_c)
    assert rig.model.trip_reason == "loss_of_heat_sink"
    assert rig.model.rod_position == rod  # the trip could not insert it
    assert {"rod_stuck", "tripped"} <= rig.model.faults()
    assert peak_c < 1000.0  # beyond the design basis (850 C), bounded by the fuel coefficient
    assert 750.0 < rig.model.fuel_temp_c < 800.0  # settled: fission plus decay heat = losses
    assert rig.model.thermal_power_w == pytest.approx(rig.model.core_loss_w, rel=0.05)


# --- decay heat ----------------------------------------------------------------------


@pytest.mark.parametrize("after_s", [1.0, 60.0, 3600.0])
def test_decay_heat_after_long_operation_follows_way_wigner(after_s: float) -> None:
    rig = Rig(start="power")
    rig.model.command("scram", True)
    rig.run(after_s)
    fraction = rig.model.decay_heat_w / rig.model.rated_thermal_power_w
    assert fraction == pytest.approx(way_wigner_fraction(after_s), rel=0.10)


def test_decay_heat_figures_of_the_design_brief() -> None:
    expected = {1.0: 0.064, 60.0: 0.027, 3600.0: 0.011}  # after long operation
    for after_s, share in expected.items():
        assert way_wigner_fraction(after_s, 10 * 365.25 * 86400.0) == pytest.approx(share, rel=0.10)
        fitted = sum(a * math.exp(-after_s / tau) for a, tau in DECAY_HEAT_GROUPS)
        assert fitted == pytest.approx(share, rel=0.12)


@pytest.mark.parametrize("operated_s", [3600.0, 86400.0, 30 * 86400.0])
def test_decay_heat_after_finite_operation_superposes(operated_s: float) -> None:
    decay = DecayHeat()
    power_w = 40_000.0
    for _ in range(round(operated_s / 60.0)):
        decay.step(60.0, power_w)
    elapsed_s = 0.0
    for after_s in (60.0, 3600.0):
        decay.step(after_s - elapsed_s, 0.0)
        elapsed_s = after_s
        expected = way_wigner_fraction(after_s, operated_s)
        assert decay.total_w / power_w == pytest.approx(expected, rel=0.10)


# --- heat removal and load following ------------------------------------------------


def test_rated_start_is_a_steady_state() -> None:
    rig = Rig(start="power")
    rig.run(3600.0)
    model = rig.model
    assert model.kinetics.n == pytest.approx(1.0, abs=1e-9)
    assert model.fuel_temp_c == pytest.approx(800.0, abs=1e-6)
    assert model.thermal_power_w == pytest.approx(40_000.0, rel=1e-9)
    assert model.electric_power_w == pytest.approx(model.converter_rating_w, rel=1e-9)
    assert 0.75 < model.rod_position < 0.85
    assert rig.coupling.reactor_electric_w == model.electric_power_w
    assert rig.coupling.reactor_waste_heat_w == pytest.approx(model.heat_removed_w - model.electric_power_w)


def _settle(demand_w: float) -> ReactorModel:
    rig = Rig(start="power", reflector_time_constant_s=1800.0)
    rig.coupling.reactor_demand_w = demand_w
    rig.run(6 * 3600.0)
    return rig.model


def test_a_fixed_demand_settles_where_feedback_cancels_the_rod() -> None:
    full, half = _settle(9795.0), _settle(5000.0)
    for model, demand_w in ((full, 9795.0), (half, 5000.0)):
        assert abs(model.reactivity_dollars) < 1e-4
        heat_in_w = model.thermal_power_w
        heat_out_w = model.heat_removed_w + model.core_loss_w
        assert heat_in_w == pytest.approx(heat_out_w, rel=1e-3)
        assert model.electric_power_w == pytest.approx(demand_w, rel=0.01)
        assert model.rod_position == full.rod_position  # no rod motion: load following by feedback
    assert half.thermal_power_w == pytest.approx(0.52 * full.thermal_power_w, rel=0.05)
    assert abs(full.fuel_temp_c - half.fuel_temp_c) < 15.0  # the fuel barely moves with power


def test_a_load_drop_moves_the_fuel_by_less_than_the_alarm_margin() -> None:
    rig = Rig(start="power")
    rig.coupling.reactor_demand_w = 9795.0  # set, then dropped: the converters go to their floor
    rig.run(1.0)
    rig.coupling.reactor_demand_w = 0.0
    peak_c = 0.0
    for _ in range(2 * 3600):
        rig.run(1.0)
        peak_c = max(peak_c, rig.model.fuel_temp_c)
    assert peak_c < 820.0
    assert not rig.model.tripped
    assert rig.model.electric_power_w == 0.0
    assert rig.model.heat_removed_w == pytest.approx(0.1 * 9795.0 / 0.25, rel=0.05)


def test_no_demand_before_the_power_board_sets_one_means_the_rating() -> None:
    rig = Rig(start="power")
    rig.run(10.0)
    assert rig.model.demand_w == rig.model.converter_rating_w
    assert rig.model.electric_power_w == pytest.approx(rig.model.converter_rating_w)


def test_a_colder_converter_cold_end_raises_the_efficiency() -> None:
    warm, cold = Rig(start="power"), Rig(start="power")
    warm.coupling.reactor_radiator_temp_c = 150.0
    cold.coupling.reactor_radiator_temp_c = 0.0
    warm.run(10.0)
    cold.run(10.0)
    assert warm.model.converter_efficiency_now() < 0.25 < cold.model.converter_efficiency_now() <= 0.30


# --- properties and configuration ----------------------------------------------------

OPERATIONS = st.one_of(
    st.tuples(st.just("rod"), st.floats(0.0, 1.0)),
    st.tuples(st.just("demand"), st.floats(0.0, 20_000.0)),
    st.tuples(st.just("cold_end"), st.floats(-150.0, 200.0)),
    st.tuples(st.just("wait"), st.sampled_from((0.1, 1.0, 5.0, 60.0, 600.0))),
    st.tuples(st.just("scram"), st.just(0.0)),
    st.tuples(st.just("reset"), st.just(0.0)),
    st.tuples(st.just("pipes"), st.integers(0, 8)),
    st.tuples(st.just("converters"), st.integers(0, 4)),
    st.tuples(st.just("stuck"), st.booleans()),
    st.tuples(st.just("reactivity"), st.floats(-1.0, 1.0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.sampled_from(("cold", "critical", "power")), operations=st.lists(OPERATIONS, max_size=25))
def test_any_sequence_keeps_the_state_physical(start: str, operations: list[tuple[str, Any]]) -> None:
    rig = Rig(start=start)
    model = rig.model
    model.heartbeat()
    for kind, value in operations:
        if kind == "rod" and not model.tripped:
            model.command("rod_target", value)
        elif kind == "demand":
            rig.coupling.reactor_demand_w = value
        elif kind == "cold_end":
            rig.coupling.reactor_radiator_temp_c = value
        elif kind == "wait":
            rig.run(value, frame_s=min(1.0, value))
        elif kind == "scram":
            model.command("scram", True)
        elif kind == "reset":
            model.command("trip_reset", True)
        elif kind == "pipes":
            model.fail_heat_pipes(value)
        elif kind == "converters":
            model.fail_converters(value)
        elif kind == "stuck":
            model.stick_rod(value)
        else:
            model.insert_reactivity(value)
        model.heartbeat()
        rig.run(1.0)
        values = model.read()
        assert 0.0 < model.kinetics.n < math.inf
        assert 0.0 <= float(values["rod_position"]) <= 1.0
        assert math.isfinite(float(values["fuel_temp_c"]))
        assert float(values["thermal_power_w"]) >= 0.0
        assert 0.0 <= float(values["electric_power_w"]) <= model.heat_removed_w
        assert float(values["decay_heat_w"]) >= 0.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "warm"}, "start must be one of cold, critical, power"),
        ({"beta_eff": "x"}, "beta_eff must be a number"),
        ({"heat_pipes": 0}, "heat_pipes must be an integer >= 1"),
        ({"fuel_coefficient_cents_per_k": 0.1}, "fuel_coefficient_cents_per_k must be negative"),
        ({"rod_worth_dollars": 1.0}, "rod_worth_dollars must be above excess_reactivity_dollars"),
    ],
)
def test_bad_figures_are_config_errors_naming_the_key(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReactorModel(**params)
    with pytest.raises(ConfigError, match=r"\[processes\.simulator\.params\.reactor\]"):
        World(seed=1, frame_period_s=1.0, params={"reactor": params})


def test_a_world_can_start_at_power() -> None:
    world = World(seed=1, frame_period_s=1.0, params={"reactor": {"start": "power"}})
    values = world.reactor.read()
    assert float(values["fission_power_w"]) == pytest.approx(40_000.0)
    assert float(values["fuel_temp_c"]) == pytest.approx(800.0)
    world.advance_to(60)
    assert not world.reactor.tripped
    assert float(world.reactor.read()["electric_power_w"]) > 1_000.0
