"""The outside world at a south-pole ridge site: the sun, the horizon, the thermal sink.

Site 0.4 deg from the south pole on a ridge. Sun azimuth turns once per synodic month
(29.53 d); sun elevation = -1.54 deg * sin(2 pi t / 346.62 d) (season; t = 0 is the
equinox before the darker half) + 0.4 deg * cos(azimuth) (site off the pole). A
seeded horizon mask (base -2.0 deg, the horizon of a ridge seen from above, plus four
to six ridges 0.6-2.4 deg high and 6-24 deg wide) gives 86-96 % lit time over a
year, dark spells from a few hours to about six days, none in the brighter half.
The lit fraction is the part of the 0.53 deg solar disc above the mask.

"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

SECONDS_PER_DAY: Final = 86_400.0
SYNODIC_MONTH_S: Final = 29.530589 * SECONDS_PER_DAY
ECLIPSE_YEAR_S: Final = 346.62 * SECONDS_PER_DAY
LIBRATION_PERIOD_S: Final = 27.21 * SECONDS_PER_DAY


@dataclass(frozen=True)
class Environment:
    """The outside world at one instant, shared by every board model."""

    time_s: float
    sun_azimuth_deg: float
    sun_elevation_deg: float
    lit_fraction: float
    sink_temp_k: float


@dataclass(frozen=True)
class HorizonMask:
    """Local horizon elevation by azimuth: a base level plus Gaussian ridges."""

    base_deg: float
    ridges: tuple[tuple[float, float, float], ...]  # (azimuth_deg, height_deg, width_deg)

    @classmethod
    def generate(cls, rng: random.Random) -> HorizonMask:
        """A ridge-site mask from ``rng``: four to six ridges on a -2.0 deg base."""
        count = rng.randint(4, 6)
        ridges = tuple(
            (rng.uniform(0.0, 360.0), rng.uniform(0.6, 2.4), rng.uniform(6.0, 24.0)) for _ in range(count)
        )
        return cls(base_deg=-2.0, ridges=ridges)

    def elevation_deg(self, azimuth_deg: float) -> float:
        """Horizon elevation (deg) seen towards ``azimuth_deg``."""
        level = self.base_deg
        for centre, height, width in self.ridges:
            offset = (azimuth_deg - centre + 180.0) % 360.0 - 180.0
            level += height * math.exp(-0.5 * (offset / (width / 2.0)) ** 2)
        return level


class Illumination:
    """Sun position and the lit fraction of the solar disc at a south-pole ridge site."""

    SEASON_AMPLITUDE_DEG: Final = 1.54
    SITE_COLATITUDE_DEG: Final = 0.4
    SUN_DIAMETER_DEG: Final = 0.53
    SINK_LIT_K: Final = 230.0
    SINK_DARK_K: Final = 150.0

    def __init__(self, rng: random.Random) -> None:
        self.mask = HorizonMask.generate(rng)

    def sun_azimuth_deg(self, t_s: float) -> float:
        """Sun azimuth (deg): one turn per synodic month."""
        return (360.0 * t_s / SYNODIC_MONTH_S) % 360.0

    def sun_elevation_deg(self, t_s: float) -> float:
        """Sun elevation above the ideal horizon (deg), within +-1.94 deg."""
        season = -self.SEASON_AMPLITUDE_DEG * math.sin(2.0 * math.pi * t_s / ECLIPSE_YEAR_S)
        site = self.SITE_COLATITUDE_DEG * math.cos(math.radians(self.sun_azimuth_deg(t_s)))
        return season + site

    def lit_fraction(self, t_s: float) -> float:
        """Fraction of the solar disc above the local horizon, in [0, 1]."""
        above = self.sun_elevation_deg(t_s) - self.mask.elevation_deg(self.sun_azimuth_deg(t_s))
        return min(1.0, max(0.0, above / self.SUN_DIAMETER_DEG + 0.5))

    def environment(self, t_s: float) -> Environment:
        """The environment at ``t_s``."""
        lit = self.lit_fraction(t_s)
        return Environment(
            time_s=t_s,
            sun_azimuth_deg=self.sun_azimuth_deg(t_s),
            sun_elevation_deg=self.sun_elevation_deg(t_s),
            lit_fraction=lit,
            sink_temp_k=self.SINK_DARK_K + (self.SINK_LIT_K - self.SINK_DARK_K) * lit,
        )
