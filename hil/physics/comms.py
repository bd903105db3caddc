"""The radio board: direct-to-Earth and relay visibility, downlink rate, transmitter.

Direct-to-Earth visible while the Earth's elevation, 6.68 deg * sin(2 pi t / 27.21 d
+ seeded phase), is above a seeded horizon within +-0.3 deg: about half the time,
outages of about 13 days. Relay orbiter on a 24 h orbit, in view 16 h per orbit,
seeded phase. Transmitter on: 10 Mbit/s through the relay, else 2 Mbit/s direct,
else 0; it draws 200 W from the bus.

"""

from __future__ import annotations

import math
import random
from typing import Final

from fsw.board import Channel, Value, ValueType
from hil.physics.environment import LIBRATION_PERIOD_S, Environment
from hil.physics.model import BoardModel, Coupling, description, flag, switch


class CommsModel(BoardModel):
    """Direct-to-Earth and relay visibility, downlink rate, transmitter load."""

    EARTH_LIBRATION_DEG: Final = 6.68
    RELAY_PERIOD_S: Final = 24 * 3600.0
    RELAY_VISIBLE_S: Final = 16 * 3600.0
    DTE_RATE_BPS: Final = 2_000_000
    RELAY_RATE_BPS: Final = 10_000_000
    TRANSMITTER_W: Final = 200.0

    def __init__(self, rng: random.Random) -> None:
        super().__init__(
            description(
                "comms",
                (
                    flag("dte_visible", "Earth above the local horizon"),
                    flag("relay_visible", "relay orbiter in view"),
                    Channel("downlink_rate_bps", ValueType.INT, "bit/s", 0.0, 1e8, "downlink"),
                ),
                (switch("transmitter", "main transmitter on"),),
            )
        )
        self._libration_phase = rng.uniform(0.0, 2.0 * math.pi)
        self._dte_horizon_deg = rng.uniform(-0.3, 0.3)
        self._relay_phase_s = rng.uniform(0.0, self.RELAY_PERIOD_S)
        self._transmitter = True
        self._dte, self._relay = self._visibility(0.0)

    def earth_elevation_deg(self, t_s: float) -> float:
        """Earth elevation above the ideal horizon (deg)."""
        angle = 2.0 * math.pi * t_s / LIBRATION_PERIOD_S + self._libration_phase
        return self.EARTH_LIBRATION_DEG * math.sin(angle)

    def _visibility(self, t_s: float) -> tuple[bool, bool]:
        dte = self.earth_elevation_deg(t_s) > self._dte_horizon_deg
        relay = (t_s + self._relay_phase_s) % self.RELAY_PERIOD_S < self.RELAY_VISIBLE_S
        return dte, relay

    @property
    def downlink_rate_bps(self) -> int:
        """Downlink rate now (bit/s): 0 with the transmitter off or nothing in view."""
        if not self._transmitter:
            return 0
        if self._relay:
            return self.RELAY_RATE_BPS
        return self.DTE_RATE_BPS if self._dte else 0

    def read(self) -> dict[str, Value]:
        """Visibility and downlink rate."""
        return {
            "dte_visible": self._dte,
            "relay_visible": self._relay,
            "downlink_rate_bps": self.downlink_rate_bps,
        }

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Update visibility to ``env.time_s``; raise ``link_acquired``/``link_lost`` events."""
        del dt_s
        for _name, value in self._take_pending().items():
            self._transmitter = bool(value)
        dte, relay = self._visibility(env.time_s)
        for path, was, now in (("dte", self._dte, dte), ("relay", self._relay, relay)):
            if now != was:
                self._emit("link_acquired" if now else "link_lost", "info", env.time_s, path=path)
        self._dte, self._relay = dte, relay
        coupling.comms_power_w = self.TRANSMITTER_W if self._transmitter else 0.0
        self._time_s = env.time_s
