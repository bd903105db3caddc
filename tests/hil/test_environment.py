"""The south-pole ridge site: sun, horizon mask, lit time, dark spells, surface and sink.

What is asserted, per seed, over a Julian year sampled hourly (a spell is a run of
hours with the sun's centre below the local horizon, lit fraction < 0.5):

- the mean lit fraction is within 85-95 % (the Connecting-Ridge figure is ~90 %);
- the longest dark spell is between 1 and 5 days (3-5 days typical at the best ridge
  sites), and some spells last only hours (12 h or less);
- the sun's elevation stays within +-1.5 deg and its azimuth turns once per synodic month;
- the run starts in sunlight;
- the same seed gives the same environment, frame for frame.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from hil.physics.environment import (
    SYNODIC_MONTH_S,
    YEAR_S,
    Environment,
    HorizonMask,
    Illumination,
)

SEEDS = (0, 1, 2, 3, 5, 8, 13, 21)
HOUR_S = 3600.0
DAY_H = 24


def year_hourly(seed: int) -> list[float]:
    light = Illumination(random.Random(seed))
    return [light.lit_fraction(i * HOUR_S) for i in range(int(YEAR_S / HOUR_S))]


def dark_spells_h(lit: list[float]) -> list[int]:
    spells, run = [], 0
    for fraction in lit:
        if fraction < 0.5:
            run += 1
        elif run:
            spells.append(run)
            run = 0
    if run:
        spells.append(run)
    return spells


@pytest.mark.parametrize("seed", SEEDS)
def test_a_year_is_about_ninety_percent_lit_with_dark_spells_of_hours_to_days(seed: int) -> None:
    lit = year_hourly(seed)
    spells = dark_spells_h(lit)
    assert 0.85 <= sum(lit) / len(lit) <= 0.95
    assert 1 * DAY_H <= max(spells) <= 5 * DAY_H
    assert min(spells) <= 12
    assert lit[0] == 1.0, "a run starts in sunlight"


def test_sun_stays_within_a_degree_and_a_half_and_turns_once_a_synodic_month() -> None:
    light = Illumination(random.Random(4))
    elevations = [light.sun_elevation_deg(i * 6 * HOUR_S) for i in range(int(YEAR_S / (6 * HOUR_S)))]
    assert max(abs(e) for e in elevations) <= 1.5
    assert max(elevations) > 1.3
    assert min(elevations) < -1.3
    for t_s in (0.0, 1e6, 5e6):
        az = light.sun_azimuth_deg(t_s)
        assert light.sun_azimuth_deg(t_s + SYNODIC_MONTH_S / 4) == pytest.approx(
            (az + 90.0) % 360.0, abs=1e-6
        )


def test_the_mask_has_no_overlapping_ridges_and_is_lower_than_the_sun_between_them() -> None:
    for seed in SEEDS:
        mask = HorizonMask.generate(random.Random(seed))
        spans = sorted((c - w, c + w) for c, _, w in mask.ridges)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start > end
        assert mask.elevation_deg(0.0) == mask.base_deg < -1.5
        for centre, peak, _ in mask.ridges:
            assert mask.elevation_deg(centre) == pytest.approx(peak)


def test_same_seed_same_world_different_seed_different_horizon() -> None:
    one, two, other = (Illumination(random.Random(s)) for s in (9, 9, 10))
    times = [i * 1800.0 for i in range(2000)]
    assert [one.environment(t) for t in times] == [two.environment(t) for t in times]
    assert one.mask != other.mask


def test_surface_is_warm_in_sunlight_and_cold_in_a_long_shadow() -> None:
    light = Illumination(random.Random(1))
    seen: list[Environment] = [light.environment(i * 600.0) for i in range(int(60 * DAY_H * 6))]
    # six hours into sunlight the surface is at its sunlit value (200 K to 250 K with the sun's height)
    lit_k = [
        seen[i].surface_temp_k
        for i in range(36, len(seen))
        if all(e.lit_fraction == 1.0 for e in seen[i - 36 : i + 1])
    ]
    assert lit_k
    assert min(lit_k) >= 199.0
    assert max(lit_k) <= 250.0
    # the coldest moment of the longest spell: a long shadow takes the regolith towards 45 K
    run, longest, coldest = 0, 0, math.inf
    for env in seen:
        run = run + 1 if env.lit_fraction == 0.0 else 0
        if run > longest:
            longest, coldest = run, env.surface_temp_k
    assert longest * 600.0 > DAY_H * HOUR_S
    assert 40.0 <= coldest <= 100.0
    # four hours into a shadow the surface is already near 100 K
    for i in range(24, len(seen)):
        if all(e.lit_fraction == 0.0 for e in seen[i - 24 : i + 1]):
            assert seen[i].surface_temp_k < 110.0
    sinks = [e.sink_temp_k for e in seen]
    assert min(sinks) == pytest.approx(150.0)
    assert max(sinks) == pytest.approx(230.0)
