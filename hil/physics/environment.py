"""The outside world at a south-pole ridge site: the sun, the horizon, the surface, the sink.

Sun. The azimuth turns once per synodic month (29.53 d). The elevation above the ideal
horizon is ``-1.40 deg * sin(2 pi t / 346.62 d) + 0.10 deg * cos(azimuth)``: a season
of one eclipse year (the sun's declination relative to the lunar equator cycles with
the eclipse year; t = 0 is the equinox before the darker half) and a monthly term from
the site's 0.1 deg (about 3 km) offset from the pole. The lunar equator's 1.54 deg tilt
to the ecliptic would give +-1.54 deg at the pole itself; the season's amplitude is
trimmed to 1.40 deg so that, with the site term, the sun stays within the +-1.5 deg
the design figures give.

Horizon. A seeded mask: a flat distant horizon at -1.70 deg (below the lowest sun, so
darkness only ever comes from terrain) and raised-cosine ridges
``h = base + (peak - base) * cos^2(pi x / 2 w)`` for ``|x| < w`` degrees of azimuth
from the ridge's centre: one or two broad massifs (peak -0.3..+1.2 deg) and two to
four narrow peaks (peak -0.5..+1.4 deg), none within 12 deg of azimuth 0 (every run
starts in sunlight, at least a day and a half before the first shadow), none
overlapping. The ridges' half-widths are then scaled so that the expected dark time
over a season is 10 % (90 % lit, the Connecting-Ridge figure), and a ridge's
half-width is capped so that no dark spell exceeds 4.8 days. Over a Julian year, for
300 seeds checked: lit fraction 89.1-90.3 %; longest dark spell 2.1-4.7 days (the
massifs in the darker half); shortest a few hours (the narrow peaks); the brighter
half mostly free of shadow.

Lit fraction: the part of the 0.53 deg solar disc above the local horizon (linear in
the disc's height, a good approximation of the segment area).

Surface: the regolith in view of the base, in radiative balance with grazing sunlight
on the ridge's sun-facing slopes when lit, 200 K with the sun at its lowest and 250 K
at its highest; towards 45 K in shadow. It follows with a first-order lag, 1 h when
warming and 3 h when cooling (the top millimetres of regolith have little thermal
inertia: a few hours of shadow bring it near 100 K, a multi-day spell near 45 K).

Sink: the effective radiative sink of a vertical radiator, 230 K in full sunlight and
150 K in darkness, linear in the lit fraction (what the thermal board radiates to).

Cost: one call of :meth:`Illumination.environment` is about 2 microseconds.
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
#: A Julian year (s): the span the illumination statistics are stated over.
YEAR_S: Final = 365.25 * SECONDS_PER_DAY
#: Amplitude of the seasonal swing of the sun's elevation (deg).
SEASON_AMPLITUDE_DEG: Final = 1.40
#: Amplitude of the monthly term from the site's offset from the pole (deg).
SITE_OFFSET_DEG: Final = 0.10


@dataclass(frozen=True)
class Environment:
    """The outside world at one instant, shared by every board model.

    ``surface_temp_k`` defaults to a sunlit ridge so that hand-made environments (tests)
    need not give it.
    """

    time_s: float
    sun_azimuth_deg: float
    sun_elevation_deg: float
    lit_fraction: float
    sink_temp_k: float
    surface_temp_k: float = 230.0


#: One ridge: azimuth of the centre (deg), peak elevation (deg), half-width (deg of azimuth).
Ridge = tuple[float, float, float]


#: The flat distant horizon (deg): below the lowest sun, so only ridges bring darkness.
HORIZON_BASE_DEG: Final = -1.70
#: Expected dark share of a season the ridges' half-widths are scaled to (90 % lit).
TARGET_DARK: Final = 0.10
#: Longest dark spell allowed (days): it caps a ridge's half-width.
MAX_SPELL_DAYS: Final = 4.8
#: No ridge within this many degrees of azimuth 0: a run starts in sunlight.
CLEAR_START_DEG: Final = 12.0
#: Gap kept between two ridges' feet (deg of azimuth).
RIDGE_GAP_DEG: Final = 4.0
#: Broad massifs: (count range, peak range deg, half-width range deg before scaling).
MASSIFS: Final = ((1, 2), (-0.3, 1.2), (16.0, 26.0))
#: Narrow peaks: (count range, peak range deg, half-width range deg before scaling).
PEAKS: Final = ((2, 4), (-0.5, 1.4), (1.5, 5.0))


@dataclass(frozen=True)
class HorizonMask:
    """Local horizon elevation by azimuth: a flat base plus raised-cosine ridges.

    ``ridges`` are ``(azimuth_deg, peak_deg, half_width_deg)``; each rises from
    ``base_deg`` to ``peak_deg`` as ``cos^2(pi x / 2 w)`` within ``w`` degrees of its centre.
    Ridges do not overlap (the generator sees to it), so the horizon is the base or one ridge.
    """

    base_deg: float
    ridges: tuple[Ridge, ...]

    @classmethod
    def generate(cls, rng: random.Random) -> HorizonMask:
        """A ridge-site mask from ``rng`` (see the module docstring); the same draws give the same mask."""
        drawn: list[Ridge] = []
        for (low_n, high_n), (low_p, high_p), (low_w, high_w) in (MASSIFS, PEAKS):
            for _ in range(rng.randint(low_n, high_n)):
                drawn.append((0.0, rng.uniform(low_p, high_p), rng.uniform(low_w, high_w)))
        ridges = _scaled(HORIZON_BASE_DEG, drawn, TARGET_DARK, MAX_SPELL_DAYS)
        return cls(base_deg=HORIZON_BASE_DEG, ridges=_placed(ridges, rng, CLEAR_START_DEG, RIDGE_GAP_DEG))

    def elevation_deg(self, azimuth_deg: float) -> float:
        """Horizon elevation (deg) seen towards ``azimuth_deg``."""
        for centre, peak, half_width in self.ridges:
            offset = abs((azimuth_deg - centre + 180.0) % 360.0 - 180.0)
            if offset < half_width:
                rise = math.cos(math.pi * offset / (2.0 * half_width))
                return self.base_deg + (peak - self.base_deg) * rise * rise
        return self.base_deg


def season_elevation_deg(t_s: float) -> float:
    """The seasonal part of the sun's elevation (deg): the sun's declination at the pole."""
    return -SEASON_AMPLITUDE_DEG * math.sin(2.0 * math.pi * t_s / ECLIPSE_YEAR_S)


def _dark_width_deg(base_deg: float, peak_deg: float, half_width_deg: float, sun_deg: float) -> float:
    """Azimuth span (deg) over which a raised-cosine ridge hides the sun's centre at ``sun_deg``."""
    if sun_deg >= peak_deg:
        return 0.0
    share = max(0.0, (sun_deg - base_deg) / (peak_deg - base_deg))
    return 4.0 * half_width_deg / math.pi * math.acos(math.sqrt(share))


#: Sun elevations sampling one season evenly in time (the arcsine distribution).
_SEASON_SAMPLES: Final = tuple(
    -SEASON_AMPLITUDE_DEG * math.sin(2.0 * math.pi * (k + 0.5) / 64) for k in range(64)
)


def _scaled(base_deg: float, ridges: list[Ridge], target_dark: float, max_spell_days: float) -> list[Ridge]:
    """Scale the half-widths so the expected dark share of a season is ``target_dark``.

    Dark width is proportional to the half-width, so one scale factor does it; a ridge
    whose widest shadow would exceed ``max_spell_days`` is capped and the others share
    what it lost (two passes suffice for the ranges drawn).
    """
    lowest_sun = -SEASON_AMPLITUDE_DEG - SITE_OFFSET_DEG
    max_width_deg = max_spell_days / (SYNODIC_MONTH_S / SECONDS_PER_DAY) * 360.0
    caps = [
        max_width_deg / max(1e-9, _dark_width_deg(base_deg, peak, 1.0, lowest_sun)) for _, peak, _ in ridges
    ]
    widths = [w for _, _, w in ridges]
    capped = [False] * len(ridges)
    for _ in range(3):
        dark_per_unit = [
            sum(_dark_width_deg(base_deg, peak, 1.0, e) for e in _SEASON_SAMPLES)
            / len(_SEASON_SAMPLES)
            / 360.0
            for _, peak, _ in ridges
        ]
        fixed = sum(d * w for d, w, c in zip(dark_per_unit, widths, capped, strict=True) if c)
        free = sum(d * w for d, w, c in zip(dark_per_unit, widths, capped, strict=True) if not c)
        if free <= 0.0:
            break
        scale = max(0.0, target_dark - fixed) / free
        for i in range(len(ridges)):
            if not capped[i]:
                widths[i] *= scale
                if widths[i] > caps[i]:
                    widths[i] = caps[i]
                    capped[i] = True
    return [(centre, peak, w) for (centre, peak, _), w in zip(ridges, widths, strict=True)]


def _placed(ridges: list[Ridge], rng: random.Random, clear_deg: float, gap_deg: float) -> tuple[Ridge, ...]:
    """Give the ridges centres: shuffled, spread over the free azimuths, never overlapping."""
    order = list(ridges)
    rng.shuffle(order)
    feet = sum(2.0 * w for _, _, w in order) + gap_deg * (len(order) + 1)
    free = max(0.0, 360.0 - 2.0 * clear_deg - feet)
    cuts = sorted(rng.uniform(0.0, free) for _ in order)
    placed: list[Ridge] = []
    position = clear_deg + gap_deg
    previous_cut = 0.0
    for (_, peak, w), cut in zip(order, cuts, strict=True):
        position += cut - previous_cut
        previous_cut = cut
        placed.append(((position + w) % 360.0, peak, w))
        position += 2.0 * w + gap_deg
    return tuple(placed)


class Illumination:
    """Sun position, lit fraction and surface temperature at a south-pole ridge site.

    Seeded through the mask it draws from ``rng``; everything else is a function of
    time, except the surface temperature, which lags: :meth:`environment` is meant to be
    called at increasing times (a call at an earlier time restarts the lag at that time's
    equilibrium).
    """

    SEASON_AMPLITUDE_DEG: Final = SEASON_AMPLITUDE_DEG
    SITE_OFFSET_DEG: Final = SITE_OFFSET_DEG
    SUN_DIAMETER_DEG: Final = 0.53
    SINK_LIT_K: Final = 230.0
    SINK_DARK_K: Final = 150.0
    #: Sunlit surface with the sun at its lowest and at its highest (K).
    SURFACE_LIT_LOW_K: Final = 200.0
    SURFACE_LIT_HIGH_K: Final = 250.0
    #: What a long shadow brings the surface to (K).
    SURFACE_SHADOW_K: Final = 45.0
    SURFACE_WARMING_S: Final = 3600.0
    SURFACE_COOLING_S: Final = 3.0 * 3600.0

    def __init__(self, rng: random.Random) -> None:
        self.mask = HorizonMask.generate(rng)
        self._surface_k: float | None = None
        self._surface_t_s = 0.0
        self._lag_dt_s = -1.0
        self._lag_factors = (0.0, 0.0)

    def sun_azimuth_deg(self, t_s: float) -> float:
        """Sun azimuth (deg): one turn per synodic month."""
        return (360.0 * t_s / SYNODIC_MONTH_S) % 360.0

    def sun_elevation_deg(self, t_s: float) -> float:
        """Sun elevation above the ideal horizon (deg), within +-1.5 deg."""
        site = self.SITE_OFFSET_DEG * math.cos(math.radians(self.sun_azimuth_deg(t_s)))
        return season_elevation_deg(t_s) + site

    def lit_fraction(self, t_s: float) -> float:
        """Fraction of the solar disc above the local horizon, in [0, 1]."""
        azimuth = self.sun_azimuth_deg(t_s)
        return self._lit(self.sun_elevation_deg(t_s), azimuth)

    def _lit(self, elevation_deg: float, azimuth_deg: float) -> float:
        above = elevation_deg - self.mask.elevation_deg(azimuth_deg)
        return min(1.0, max(0.0, above / self.SUN_DIAMETER_DEG + 0.5))

    def surface_target_k(self, elevation_deg: float, lit: float) -> float:
        """The surface temperature the regolith tends to (K) under this sun."""
        height = min(1.0, max(0.0, (elevation_deg + 1.5) / 3.0))
        sunlit_k = self.SURFACE_LIT_LOW_K + (self.SURFACE_LIT_HIGH_K - self.SURFACE_LIT_LOW_K) * height
        return self.SURFACE_SHADOW_K + (sunlit_k - self.SURFACE_SHADOW_K) * lit

    def environment(self, t_s: float) -> Environment:
        """The environment at ``t_s`` (advances the surface temperature's lag to ``t_s``)."""
        azimuth = (360.0 * t_s / SYNODIC_MONTH_S) % 360.0
        elevation = season_elevation_deg(t_s) + self.SITE_OFFSET_DEG * math.cos(math.radians(azimuth))
        lit = self._lit(elevation, azimuth)
        target_k = self.surface_target_k(elevation, lit)
        dt_s = t_s - self._surface_t_s
        surface_k = self._surface_k
        if surface_k is None or dt_s < 0.0:
            surface_k = target_k
        elif dt_s > 0.0:
            if dt_s != self._lag_dt_s:
                self._lag_dt_s = dt_s
                self._lag_factors = (
                    math.exp(-dt_s / self.SURFACE_WARMING_S),
                    math.exp(-dt_s / self.SURFACE_COOLING_S),
                )
            keep = self._lag_factors[0] if target_k > surface_k else self._lag_factors[1]
            surface_k = target_k + (surface_k - target_k) * keep
        self._surface_k = surface_k
        self._surface_t_s = t_s
        return Environment(
            time_s=t_s,
            sun_azimuth_deg=azimuth,
            sun_elevation_deg=elevation,
            lit_fraction=lit,
            sink_temp_k=self.SINK_DARK_K + (self.SINK_LIT_K - self.SINK_DARK_K) * lit,
            surface_temp_k=surface_k,
        )
