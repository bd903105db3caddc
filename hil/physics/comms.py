"""The radio board: direct-to-Earth and relay visibility, downlink rate, transmitter.

Direct-to-Earth (DTE). Seen from a site 0.4 deg from the south pole, the Earth's centre
moves in a 13.4 x 15.8 deg box of the lunar sky (optical libration). Its elevation is

    e(t) = 6.68 deg * sin(2 pi t / 27.21 d + phi_lat)        latitude libration
           + 0.4 deg * cos(a(t) - a_site)                      the site is off the pole
    a(t) = 7.9 deg * sin(2 pi t / 27.55 d + phi_lon)           Earth azimuth (longitude libration)

and the Earth is visible while ``e(t)`` is above the local horizon toward it, a seeded
:class:`~hil.physics.environment.HorizonMask`: a base level in [-0.6, 0.2] deg plus two
ridges 0.1-0.4 deg high within the Earth's azimuth swing. Visible about half the time
(47-53 % over ten years depending on the seed, 50 % on average; 51 % at the best proposed
base site), in one spell per 27.2-day cycle: outages of 12.5 to 14.5 days.

Relay orbiter (Queqiao-2 class, 24 h frozen elliptical orbit): in view ``relay_in_view_s``
(16 h) of every ``relay_period_s`` (24 h), from ``relay_phase_s`` into its period at mission
time 0 (seeded when not given; 0: a pass begins at mission start).

Links and rates. The radio closes the direct link when the Earth is visible (preferred: it
needs no second spacecraft), else the relay link when the orbiter is in view:
``dte_rate_bps`` (10 Mbit/s, Ka band) or ``relay_rate_bps`` (2 Mbit/s, X-band proximity
link). ``downlink_rate_bps`` is 0 with the transmitter unkeyed, nothing in view, or the
radio failed (the ``link loss`` fault hook, :meth:`CommsModel.lose_link`).

One-way light time ``light_time_s`` (1.28 s mean) varies with the Earth-Moon distance over
the anomalistic month: ``light_time_s * (1 - 0.0549 cos M)``, M in phase with the longitude
libration (both come from the orbit's eccentricity): 1.21-1.35 s.

The keyed transmitter draws ``transmitter_power_w`` (200 W) from the main bus
(:attr:`Coupling.comms_power_w`); unkeyed, nothing (the safe-mode receiver is in T0).

Every figure above is a constructor keyword, so a deployment's
``[processes.simulator.params.comms]`` table can set it; a bad value raises
:class:`~fsw.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import math
import random
from typing import Final

from fsw.board import Channel, Value, ValueType
from hil.physics.environment import LIBRATION_PERIOD_S, SECONDS_PER_DAY, Environment, HorizonMask
from hil.physics.model import BoardModel, Coupling, checked_number, description, flag, number, switch

#: Anomalistic month (perigee to perigee): the period of the longitude libration and of
#: the Earth-Moon distance.
ANOMALISTIC_MONTH_S: Final = 27.55 * SECONDS_PER_DAY

#: Largest data rate a link may be given (bit/s): the channel's range.
MAX_RATE_BPS: Final = 100_000_000


class CommsModel(BoardModel):
    """Direct-to-Earth and relay visibility, downlink rate, transmitter load (module docstring)."""

    #: Optical libration in latitude (deg): the Earth's elevation swing at the pole.
    EARTH_LIBRATION_DEG: Final = 6.68
    #: Optical libration in longitude (deg): the Earth's azimuth swing.
    EARTH_AZIMUTH_SWING_DEG: Final = 7.9
    #: Site distance from the pole (deg), as for the sun (environment.Illumination).
    SITE_COLATITUDE_DEG: Final = 0.4
    #: Eccentricity of the Moon's orbit: the Earth-Moon distance is a (1 - e cos M).
    ORBIT_ECCENTRICITY: Final = 0.0549
    #: Seeded horizon toward the Earth: base level range and ridge heights/widths (deg).
    HORIZON_BASE_DEG: Final = (-0.6, 0.2)
    HORIZON_RIDGES: Final = 2
    HORIZON_RIDGE_HEIGHT_DEG: Final = (0.1, 0.4)
    HORIZON_RIDGE_WIDTH_DEG: Final = (3.0, 10.0)

    def __init__(
        self,
        rng: random.Random,
        *,
        dte_rate_bps: int = 10_000_000,
        relay_rate_bps: int = 2_000_000,
        relay_period_s: float = 24 * 3600.0,
        relay_in_view_s: float = 16 * 3600.0,
        transmitter_power_w: float = 200.0,
        light_time_s: float = 1.28,
        relay_phase_s: float | None = None,
    ) -> None:
        super().__init__(
            description(
                "comms",
                (
                    flag("dte_visible", "Earth above the local horizon"),
                    flag("relay_visible", "relay orbiter in view"),
                    Channel("downlink_rate_bps", ValueType.INT, "bit/s", 0.0, 1e8, "downlink"),
                    flag("transmitter_on", "main transmitter keyed (read back)"),
                    number("earth_elevation_deg", "deg", -10.0, 10.0, "Earth centre above the ideal horizon"),
                    number("light_time_s", "s", 1.0, 2.0, "one-way light time to the Earth"),
                ),
                (switch("transmitter", "main transmitter on"),),
            )
        )
        self.dte_rate_bps = int(checked_number("dte_rate_bps", dte_rate_bps, 0.0, MAX_RATE_BPS))
        self.relay_rate_bps = int(checked_number("relay_rate_bps", relay_rate_bps, 0.0, MAX_RATE_BPS))
        self.relay_period_s = checked_number("relay_period_s", relay_period_s, 0.0, 1e9, low_inclusive=False)
        self.relay_in_view_s = checked_number("relay_in_view_s", relay_in_view_s, 0.0, self.relay_period_s)
        self.transmitter_power_w = checked_number("transmitter_power_w", transmitter_power_w, 0.0, 1e5)
        self.light_time_mean_s = checked_number("light_time_s", light_time_s, 1.0, 1.9)
        self._libration_phase = rng.uniform(0.0, 2.0 * math.pi)
        self._anomaly_phase = rng.uniform(0.0, 2.0 * math.pi)
        self._site_azimuth_rad = rng.uniform(0.0, 2.0 * math.pi)
        drawn_phase_s = rng.uniform(0.0, self.relay_period_s)  # drawn always: the seed's sky stays the same
        self._relay_phase_s = (
            drawn_phase_s
            if relay_phase_s is None
            else checked_number("relay_phase_s", relay_phase_s, 0.0, self.relay_period_s)
        )
        swing = self.EARTH_AZIMUTH_SWING_DEG
        self.horizon = HorizonMask(
            base_deg=rng.uniform(*self.HORIZON_BASE_DEG),
            ridges=tuple(
                (
                    rng.uniform(-swing, swing) % 360.0,
                    rng.uniform(*self.HORIZON_RIDGE_HEIGHT_DEG),
                    rng.uniform(*self.HORIZON_RIDGE_WIDTH_DEG),
                )
                for _ in range(self.HORIZON_RIDGES)
            ),
        )
        self._lat_rate = 2.0 * math.pi / LIBRATION_PERIOD_S
        self._anomaly_rate = 2.0 * math.pi / ANOMALISTIC_MONTH_S
        self._transmitter = True
        self._link_lost = False
        self._elevation_deg = 0.0
        self._light_time_s = self.light_time_mean_s
        self._dte = self._relay = False
        self._update(0.0)

    # geometry ---------------------------------------------------------------------

    def earth_elevation_deg(self, t_s: float) -> float:
        """Earth centre elevation above the ideal horizon at ``t_s`` (deg)."""
        return self._geometry(t_s)[0]

    def earth_horizon_deg(self, t_s: float) -> float:
        """Local horizon elevation toward the Earth at ``t_s`` (deg)."""
        return self._geometry(t_s)[1]

    def _geometry(self, t_s: float) -> tuple[float, float, float]:
        """(Earth elevation, horizon toward it, light time) at ``t_s``."""
        anomaly = self._anomaly_rate * t_s + self._anomaly_phase
        azimuth_deg = self.EARTH_AZIMUTH_SWING_DEG * math.sin(anomaly)
        elevation = self.EARTH_LIBRATION_DEG * math.sin(
            self._lat_rate * t_s + self._libration_phase
        ) + self.SITE_COLATITUDE_DEG * math.cos(math.radians(azimuth_deg) - self._site_azimuth_rad)
        light_time = self.light_time_mean_s * (1.0 - self.ORBIT_ECCENTRICITY * math.cos(anomaly))
        return elevation, self.horizon.elevation_deg(azimuth_deg), light_time

    def relay_in_view(self, t_s: float) -> bool:
        """Whether the relay orbiter is in view at ``t_s``."""
        return (t_s + self._relay_phase_s) % self.relay_period_s < self.relay_in_view_s

    def _update(self, t_s: float) -> tuple[bool, bool]:
        """Move the geometry to ``t_s``; return the visibility before (dte, relay)."""
        before = self._dte, self._relay
        elevation, horizon, light_time = self._geometry(t_s)
        self._elevation_deg = elevation
        self._light_time_s = light_time
        self._dte = elevation > horizon
        self._relay = self.relay_in_view(t_s)
        return before

    # channels ---------------------------------------------------------------------

    @property
    def downlink_rate_bps(self) -> int:
        """Downlink rate now (bit/s): 0 with the transmitter off, nothing in view or the link lost."""
        if not self._transmitter or self._link_lost:
            return 0
        if self._dte:
            return self.dte_rate_bps
        return self.relay_rate_bps if self._relay else 0

    @property
    def light_time_s(self) -> float:
        """One-way light time to the Earth now (s)."""
        return self._light_time_s

    def read(self) -> dict[str, Value]:
        """Visibility, downlink rate, transmitter state, Earth elevation and light time."""
        return {
            "dte_visible": self._dte,
            "relay_visible": self._relay,
            "downlink_rate_bps": self.downlink_rate_bps,
            "transmitter_on": self._transmitter,
            "earth_elevation_deg": round(self._elevation_deg, 4),
            "light_time_s": round(self._light_time_s, 4),
        }

    def faults(self) -> frozenset[str]:
        """``link_loss`` while the radio cannot close any link."""
        return frozenset(("link_loss",)) if self._link_lost else frozenset()

    # inputs -----------------------------------------------------------------------

    def lose_link(self, lost: bool = True) -> None:
        """Fault injection: the radio closes no link whatever the visibility (or recovers).

        The transmitter still draws its power while keyed; ``downlink_rate_bps`` reads 0.
        """
        self._link_lost = lost

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Update visibility to ``env.time_s``; raise ``link_acquired``/``link_lost`` events."""
        del dt_s
        if self._pending:
            for _name, value in self._take_pending().items():
                self._transmitter = bool(value)
        t_s = env.time_s
        was_dte, was_relay = self._update(t_s)
        if was_dte != self._dte:
            self._emit("link_acquired" if self._dte else "link_lost", "info", t_s, path="dte")
        if was_relay != self._relay:
            self._emit("link_acquired" if self._relay else "link_lost", "info", t_s, path="relay")
        coupling.comms_power_w = self.transmitter_power_w if self._transmitter else 0.0
        self._time_s = t_s
