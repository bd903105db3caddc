"""The radio board's physics: visibility over a year, relay schedule, rates, light time, link loss."""

from __future__ import annotations

import random

import pytest

from fsw.board import Value
from fsw.errors import ConfigError
from hil.physics import CommsModel, Coupling, Environment, World
from hil.physics.environment import SECONDS_PER_DAY

YEAR_S = 365.25 * SECONDS_PER_DAY
STEP_S = 600.0  # ten-minute steps: the geometry moves on days


def environment(t_s: float) -> Environment:
    return Environment(
        time_s=t_s, sun_azimuth_deg=0.0, sun_elevation_deg=0.0, lit_fraction=1.0, sink_temp_k=200.0
    )


def year(model: CommsModel, step_s: float = STEP_S) -> list[dict[str, Value]]:
    """Every reading of a year at ``step_s``."""
    coupling = Coupling()
    readings = []
    t_s = 0.0
    while t_s < YEAR_S:
        t_s += step_s
        model.step(step_s, environment(t_s), coupling)
        model.drain_events()
        readings.append(model.read())
    return readings


def spells(flags: list[bool], value: bool) -> list[int]:
    """Lengths (in samples) of the runs of ``value``, the unfinished ends left out."""
    runs, current, started = [], 0, False
    for flag in flags:
        if flag == value:
            current += 1
        else:
            if current and started:
                runs.append(current)
            current, started = 0, True
    return runs


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_earth_is_visible_about_half_the_time_in_spells_of_about_two_weeks(seed: int) -> None:
    readings = year(CommsModel(random.Random(seed)))
    dte = [bool(r["dte_visible"]) for r in readings]
    share = sum(dte) / len(dte)
    assert 0.40 <= share <= 0.60  # about half the time (51 % at the best proposed base site)
    days = STEP_S / SECONDS_PER_DAY
    outages = [n * days for n in spells(dte, False)]
    assert len(outages) == pytest.approx(
        YEAR_S / (27.21 * SECONDS_PER_DAY), abs=1.5
    )  # one per libration cycle
    assert 11.0 <= max(outages) <= 15.5  # "DTE lost for up to ~13 days"


@pytest.mark.parametrize(("period_h", "in_view_h"), [(24.0, 16.0), (12.0, 5.0)])
def test_the_relay_is_in_view_its_scheduled_share(period_h: float, in_view_h: float) -> None:
    model = CommsModel(random.Random(3), relay_period_s=period_h * 3600.0, relay_in_view_s=in_view_h * 3600.0)
    readings = year(model)
    share = sum(bool(r["relay_visible"]) for r in readings) / len(readings)
    assert share == pytest.approx(in_view_h / period_h, abs=0.005)
    passes = spells([bool(r["relay_visible"]) for r in readings], True)
    assert max(passes) * STEP_S == pytest.approx(in_view_h * 3600.0, abs=STEP_S)


def test_the_same_seed_gives_the_same_sky_and_another_seed_another() -> None:
    first = year(CommsModel(random.Random(11)), step_s=3600.0)
    again = year(CommsModel(random.Random(11)), step_s=3600.0)
    other = year(CommsModel(random.Random(12)), step_s=3600.0)
    assert first == again
    assert first != other


def test_the_light_time_follows_the_earth_moon_distance() -> None:
    times = [float(r["light_time_s"]) for r in year(CommsModel(random.Random(5)), step_s=3600.0)]
    assert sum(times) / len(times) == pytest.approx(1.28, abs=0.005)
    assert min(times) == pytest.approx(1.21, abs=0.01)  # perigee, 363,300 km
    assert max(times) == pytest.approx(1.35, abs=0.01)  # apogee, 405,500 km


def test_rate_by_link_direct_preferred_and_transmitter_power() -> None:
    model = CommsModel(
        random.Random(2), dte_rate_bps=8_000_000, relay_rate_bps=1_000_000, transmitter_power_w=150.0
    )
    coupling = Coupling()
    seen: dict[tuple[bool, bool], set[int]] = {}
    t_s = 0.0
    while t_s < 60 * SECONDS_PER_DAY:
        t_s += 1800.0
        model.step(1800.0, environment(t_s), coupling)
        r = model.read()
        seen.setdefault((bool(r["dte_visible"]), bool(r["relay_visible"])), set()).add(
            int(r["downlink_rate_bps"])
        )
    assert seen == {
        (True, True): {8_000_000},
        (True, False): {8_000_000},
        (False, True): {1_000_000},
        (False, False): {0},
    }
    assert coupling.comms_power_w == 150.0
    model.command("transmitter", False)
    model.step(1.0, environment(t_s + 1.0), coupling)
    assert model.read()["downlink_rate_bps"] == 0
    assert model.read()["transmitter_on"] is False
    assert coupling.comms_power_w == 0.0


def test_link_loss_zeroes_the_rate_whatever_the_visibility_and_clearing_restores_it() -> None:
    model = CommsModel(random.Random(4), relay_in_view_s=24 * 3600.0)  # relay always in view
    coupling = Coupling()
    model.step(1.0, environment(1.0), coupling)
    healthy = model.read()["downlink_rate_bps"]
    assert healthy in (model.dte_rate_bps, model.relay_rate_bps)
    model.lose_link()
    assert model.faults() == {"link_loss"}
    for t_s in range(2, 200):
        model.step(1.0, environment(float(t_s)), coupling)
        assert model.read()["downlink_rate_bps"] == 0
        assert model.read()["relay_visible"] is True
    assert coupling.comms_power_w == model.transmitter_power_w  # still keyed, still drawing
    model.lose_link(False)
    model.step(1.0, environment(200.0), coupling)
    assert model.read()["downlink_rate_bps"] == healthy
    assert model.faults() == frozenset()


def test_visibility_changes_are_board_events() -> None:
    model = CommsModel(random.Random(9))
    coupling = Coupling()
    events = []
    for day in range(1, 40):
        model.step(SECONDS_PER_DAY, environment(day * SECONDS_PER_DAY), coupling)
        events += model.drain_events()
    paths = {(e.name, e.data["path"]) for e in events}
    assert {("link_acquired", "dte"), ("link_lost", "dte")} <= paths


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dte_rate_bps", -1),
        ("relay_rate_bps", 2e8),
        ("relay_period_s", 0.0),
        ("relay_in_view_s", 90_000.0),
        ("transmitter_power_w", "lots"),
        ("light_time_s", 3.0),
    ],
)
def test_bad_parameters_are_config_errors_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"params\.comms\].*{key}"):
        World(seed=1, frame_period_s=1.0, params={"comms": {key: value}})


def test_parameters_reach_the_board_through_the_world() -> None:
    world = World(
        seed=1, frame_period_s=1.0, params={"comms": {"relay_rate_bps": 500_000, "light_time_s": 1.3}}
    )
    assert world.comms.relay_rate_bps == 500_000
    assert world.comms.light_time_mean_s == 1.3
