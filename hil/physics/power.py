"""The power board: solar arrays, Li-ion battery, main bus and switched load tiers.

Vertical sun-tracking arrays, 35 m2 of 29.8 % cells, 30 % system losses: 9.94 kW
peak. Li-ion battery, 100 kWh, 31 cells in series (2.7-4.1 V per cell: 84-127 V,
120 V at 80 % charge), 0.05 ohm, 96 % charge and discharge efficiency, starting at
80 % charge. The bus is the battery (no bus regulator in this version): 114 V at
about 40 % charge, 110 V at about 14 %. Loads: T0 1.5 kW always on, T1 life support
3 kW (on at start), T2 ISRU and rovers 4 kW, T3 science 2 kW, T4 comfort heaters and
lighting 1.5 kW (T2-T4 off at start), plus the thermal board's heaters and the comms
transmitter. Surplus beyond a full battery is shunted. Board-level battery
protection: below 10 % charge (90 % depth of discharge) the board cuts T1-T4
itself, raises ``battery_protection`` and refuses to switch them on until the charge
is back above 15 %.

"""

from __future__ import annotations

import itertools
import math
from typing import Final

from fsw.board import Value
from hil.physics.environment import Environment
from hil.physics.model import BoardModel, Coupling, description, number, switch


class PowerModel(BoardModel):
    """Solar arrays, battery, bus and switched load tiers (see the module docstring)."""

    ARRAY_AREA_M2: Final = 35.0
    CELL_EFFICIENCY: Final = 0.298
    SYSTEM_LOSS: Final = 0.30
    SOLAR_CONSTANT_W_M2: Final = 1361.0
    CAPACITY_WH: Final = 100_000.0
    CELLS_IN_SERIES: Final = 31
    INTERNAL_RESISTANCE_OHM: Final = 0.05
    CHARGE_EFFICIENCY: Final = 0.96
    DISCHARGE_EFFICIENCY: Final = 0.96
    #: Open-circuit cell voltage by state of charge (piecewise linear).
    OCV_TABLE: Final = (
        (0.0, 2.70),
        (0.05, 3.30),
        (0.10, 3.45),
        (0.20, 3.60),
        (0.50, 3.72),
        (0.80, 3.92),
        (1.00, 4.10),
    )
    T0_LOAD_W: Final = 1500.0
    TIER_LOAD_W: Final = {"load_t1": 3000.0, "load_t2": 4000.0, "load_t3": 2000.0, "load_t4": 1500.0}
    PROTECTION_CUT_SOC: Final = 0.10
    PROTECTION_CLEAR_SOC: Final = 0.15
    COLLAPSE_VOLTAGE_V: Final = 95.0

    def __init__(self, initial_soc: float = 0.8) -> None:
        super().__init__(
            description(
                "power",
                (
                    number("solar_power_w", "W", 0.0, 12_000.0, "array output"),
                    number("reactor_power_w", "W", 0.0, 15_000.0, "reactor electric input"),
                    number("load_power_w", "W", 0.0, 30_000.0, "power drawn by loads"),
                    number("battery_soc", "1", 0.0, 1.0, "battery state of charge"),
                    number("battery_voltage_v", "V", 0.0, 140.0, "battery terminal voltage"),
                    number("battery_current_a", "A", -400.0, 400.0, "positive = charging"),
                    number("bus_voltage_v", "V", 0.0, 140.0, "main bus voltage"),
                    number("sun_elevation_deg", "deg", -5.0, 5.0, "sun above ideal horizon"),
                ),
                tuple(switch(name, f"shed tier {name[-1]} on") for name in self.TIER_LOAD_W),
            )
        )
        self._tiers = {"load_t1": True, "load_t2": False, "load_t3": False, "load_t4": False}
        self._soc = initial_soc
        self._solar_w = 0.0
        self._reactor_w = 0.0
        self._load_w = 0.0
        self._current_a = 0.0
        self._bus_v = self._battery_voltage(0.0)
        self._sun_elevation_deg = 0.0
        self._protection = False
        self._collapsed = False

    @property
    def peak_solar_w(self) -> float:
        """Array output in full sun (W)."""
        area_w = self.ARRAY_AREA_M2 * self.SOLAR_CONSTANT_W_M2 * self.CELL_EFFICIENCY
        return area_w * (1.0 - self.SYSTEM_LOSS)

    def open_circuit_v(self) -> float:
        """Battery open-circuit voltage (V) at the present state of charge."""
        table = self.OCV_TABLE
        soc = min(1.0, max(0.0, self._soc))
        for (s0, v0), (s1, v1) in itertools.pairwise(table):
            if soc <= s1:
                return self.CELLS_IN_SERIES * (v0 + (v1 - v0) * (soc - s0) / (s1 - s0))
        return self.CELLS_IN_SERIES * table[-1][1]

    def _battery_voltage(self, current_a: float) -> float:
        return self.open_circuit_v() + current_a * self.INTERNAL_RESISTANCE_OHM

    def read(self) -> dict[str, Value]:
        """Every power channel."""
        return {
            "solar_power_w": self._solar_w,
            "reactor_power_w": self._reactor_w,
            "load_power_w": self._load_w,
            "battery_soc": self._soc,
            "battery_voltage_v": self._battery_voltage(self._current_a),
            "battery_current_a": self._current_a,
            "bus_voltage_v": self._bus_v,
            "sun_elevation_deg": self._sun_elevation_deg,
        }

    def faults(self) -> frozenset[str]:
        """``battery_protection`` while loads are cut; ``bus_collapse`` when the bus fell."""
        flags: set[str] = set()
        if self._protection:
            flags.add("battery_protection")
        if self._collapsed:
            flags.add("bus_collapse")
        return frozenset(flags)

    def _refusal(self, actuator: str, value: Value) -> str | None:
        if self._protection and value:
            return (
                f"{actuator} refused: battery protection holds tiers 1-4 off until the "
                f"charge is above {self.PROTECTION_CLEAR_SOC:.0%}"
            )
        return None

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Balance generation against loads over ``dt_s`` and move the battery charge."""
        for name, value in self._take_pending().items():
            self._tiers[name] = bool(value)
        self._sun_elevation_deg = env.sun_elevation_deg
        self._solar_w = self.peak_solar_w * env.lit_fraction * math.cos(math.radians(env.sun_elevation_deg))
        self._reactor_w = coupling.reactor_electric_w
        tiers_w = sum(self.TIER_LOAD_W[n] for n, on in self._tiers.items() if on)
        self._load_w = self.T0_LOAD_W + tiers_w + coupling.heater_power_w + coupling.comms_power_w
        net_w = self._solar_w + self._reactor_w - self._load_w
        open_v = self.open_circuit_v()
        energy_wh = self.CAPACITY_WH * self._soc
        if dt_s <= 0.0:  # refresh the readings only (used once, at frame 0)
            battery_w, stored_wh = 0.0, 0.0
            self._collapsed = False
        elif net_w >= 0.0:
            stored_wh = min(net_w * self.CHARGE_EFFICIENCY * dt_s / 3600.0, self.CAPACITY_WH - energy_wh)
            battery_w = stored_wh * 3600.0 / dt_s / self.CHARGE_EFFICIENCY
            self._collapsed = False
        else:
            drawn_wh = min(-net_w / self.DISCHARGE_EFFICIENCY * dt_s / 3600.0, energy_wh)
            battery_w = -drawn_wh * 3600.0 / dt_s * self.DISCHARGE_EFFICIENCY
            stored_wh = -drawn_wh
            self._collapsed = battery_w > net_w + 1e-6
        self._soc = min(1.0, max(0.0, (energy_wh + stored_wh) / self.CAPACITY_WH))
        self._current_a = battery_w / open_v
        self._bus_v = self.COLLAPSE_VOLTAGE_V if self._collapsed else self._battery_voltage(self._current_a)
        self._protect(env.time_s)
        coupling.battery_current_a = self._current_a
        coupling.battery_heat_w = self._current_a**2 * self.INTERNAL_RESISTANCE_OHM
        life_support_w = self.TIER_LOAD_W["load_t1"] if self._tiers["load_t1"] else 0.0
        comfort_w = self.TIER_LOAD_W["load_t4"] if self._tiers["load_t4"] else 0.0
        coupling.habitat_gain_w = 0.7 * life_support_w + comfort_w
        self._time_s = env.time_s

    def _protect(self, time_s: float) -> None:
        if not self._protection and self._soc < self.PROTECTION_CUT_SOC:
            self._protection = True
            cut = sorted(n for n, on in self._tiers.items() if on)
            for name in self._tiers:
                self._tiers[name] = False
            self._emit("battery_protection", "critical", time_s, soc=self._soc, cut=cut)
        elif self._protection and self._soc > self.PROTECTION_CLEAR_SOC:
            self._protection = False
            self._emit("battery_protection_cleared", "info", time_s, soc=self._soc)
