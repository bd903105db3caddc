"""The power board: solar arrays, Li-ion battery, main bus, reactor input and switched load tiers.

Arrays. Vertical, sun-tracking in azimuth, so the sun's incidence angle on the cells is
its elevation: ``P = S * A * eta * (1 - losses) * (1 - degradation * age) * (1 - dust) *
lit * cos(elevation)`` with S = 1361 W/m2, A = 35 m2, eta = 0.298 (XTJ-class cells),
30 % system losses (cover glass, cells running hot, wiring, tracking): 9.94 kW in full
sun at beginning of life. Degradation 1 %/year of age (``array_age_years`` at start plus
mission time); dust obscures a fraction that grows by ``dust_per_day`` of what is still
clear (2e-5/day: a quiet site) and by whatever :meth:`PowerModel.deposit_dust` adds,
until :meth:`PowerModel.clean_arrays`.

Battery. Li-ion, 100 kWh in one string of 31 cells (2.7-4.1 V per cell over the open-
circuit curve ``OCV_TABLE``: 84-127 V). State of charge is the stored energy over the
string's capacity. Internal resistance 0.03 ohm at 20 C, doubling every 20 K colder.
With ``I`` the current (positive charging) and ``V_oc`` the open-circuit voltage, the
terminal power is ``V_oc I + R I^2``; charging stores ``eta_c V_oc I`` (eta_c = 0.97),
discharging takes ``V_oc |I| / eta_d`` (eta_d = 0.97) from storage; the difference is
the conversion loss and the I2R heat (which goes to the thermal board's battery node).
Charge acceptance: 0.5 C, tapering linearly to 0 between 95 % and 100 % charge (the
constant-voltage phase); no charging outside 0..40 C (``charge_inhibited``). A cold
battery cannot deliver all its charge: the usable share is 100 % from 20 C, 92 % at 0 C,
80 % at -20 C, 67 % at -40 C (linear between), so discharge stops at a floor of
``1 - usable`` of charge. Temperature comes from the thermal board
(``Coupling.battery_temp_c``). Cells can be lost (:meth:`PowerModel.fail_cells`): they
are bypassed, and the string's voltage, resistance and capacity fall in proportion
(state of charge unchanged).

Bus. The 120 V main bus is battery-dominated (no bus regulator): it sits at the
battery's terminal voltage ``V_oc + R I``, so it sags with state of charge (114 V near
40 % charge at rest, 110 V near 14 %, lower under discharge current) and the bus
voltage thresholds of load shedding mean something. A full battery holds it near
127 V; surplus the battery does not accept is shunted (``shunt_power_w``). When the
battery cannot carry the deficit (empty, below its cold floor, or past its maximum
power ``V_oc^2 / 4R``) the bus collapses: it reads 95 V, the loads get only what
generation and the battery can give, shared in proportion (``bus_collapse``).

Reactor. The Stirling converters' output arrives as ``Coupling.reactor_electric_w``.
The bus asks of them ``load + charge acceptance - solar`` (at least 0), written to
``Coupling.reactor_demand_w``: when the battery is full and the sun covers the loads the
reactor is asked for less (load following).

Loads. T0 1.5 kW (reactor protection, computer, safe-mode comms) is never switched; the
thermal board's heaters and the comms transmitter add to it. Switched tiers: T1 life
support 3 kW, T2 ISRU and rover charging 5 kW, T3 science 2.5 kW, T4 comfort heaters
and lighting 1.5 kW, all on at start (``tiers_on``). With everything on the base draws
about 14-15 kW: more than the arrays, and more than a 10 kWe reactor alone, so a long
dark spell forces shedding. T1 puts 70 % of its power into the habitat as heat, T4 all
of it.

Board-level battery protection: at 10 % charge (90 % depth of discharge) the board
cuts T1-T4 itself, raises ``battery_protection`` and refuses to switch them on until
the charge is back above 15 %; and the battery management opens the discharge path
there (a low-voltage disconnect, ``DISCONNECT_SOC``): below it the battery gives
nothing more (it still charges), so it is never discharged past the hard-cut floor
and is there to restart the base when generation returns. What the loads still ask
for then is unserved (the bus collapses).

Energy ledger (:attr:`PowerModel.energy`, Wh since start): solar in + reactor in =
load served + shunted + battery conversion loss + battery I2R + change of stored energy
+ energy of cells bypassed, to rounding.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from fsw.board import BoardDescription, Channel, Value, ValueType
from fsw.errors import BoardError, ConfigError
from hil.physics.environment import Environment
from hil.physics.model import BoardModel, Coupling, description, flag, number, require, switch

SECONDS_PER_HOUR: Final = 3600.0
SECONDS_PER_YEAR: Final = 365.25 * 86_400.0

#: The switched tiers, in shedding priority order (T1 most important).
TIERS: Final = ("load_t1", "load_t2", "load_t3", "load_t4")
TIER_TEXT: Final = (
    "T1 life support",
    "T2 ISRU and rover charging",
    "T3 science",
    "T4 comfort heaters and lighting",
)


class _Flow(NamedTuple):
    """What the battery does in one step."""

    current_a: float
    shunt_w: float
    #: Load the bus could not carry (a collapse), W.
    unserved_w: float
    #: Change of stored energy (Wh) and the conversion loss (Wh).
    chemical_wh: float
    conversion_wh: float


@dataclass
class EnergyLedger:
    """Energy through the board since start (Wh). See the module docstring for the balance."""

    solar_wh: float = 0.0
    reactor_wh: float = 0.0
    load_wh: float = 0.0
    shunted_wh: float = 0.0
    #: Charge and discharge (electrochemical) inefficiency.
    battery_conversion_loss_wh: float = 0.0
    battery_i2r_wh: float = 0.0
    #: Energy stored in cells when they were bypassed (less that of cells restored).
    cells_bypassed_wh: float = 0.0

    @property
    def battery_loss_wh(self) -> float:
        """Every battery loss (Wh): conversion plus I2R."""
        return self.battery_conversion_loss_wh + self.battery_i2r_wh


def _interpolate(table: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear ``table`` at ``x``, held constant beyond its ends."""
    if x <= table[0][0]:
        return table[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(table):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return table[-1][1]


#: Tolerance of the state-of-charge comparisons at the protection thresholds.
_SOC_EPSILON: Final = 1e-9


class PowerModel(BoardModel):
    """Solar arrays, battery, bus, reactor input and switched load tiers (see the module docstring).

    Every figure is a keyword (a deployment parameter, ``[processes.simulator.params.power]``);
    raises :class:`ConfigError` naming the keyword for a bad value.
    """

    SOLAR_CONSTANT_W_M2: Final = 1361.0
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
    #: Usable share of the charge by battery temperature (C).
    USABLE_BY_TEMP: Final = ((-40.0, 0.67), (-20.0, 0.80), (0.0, 0.92), (20.0, 1.0))
    #: Charging window (C).
    CHARGE_MIN_C: Final = 0.0
    CHARGE_MAX_C: Final = 40.0
    #: Internal resistance doubles for every this many kelvin below the reference.
    RESISTANCE_REFERENCE_C: Final = 20.0
    RESISTANCE_DOUBLING_K: Final = 20.0
    #: Coldest temperature the resistance law is taken to (C).
    RESISTANCE_FLOOR_C: Final = -40.0
    #: Charge acceptance tapers to 0 between this state of charge and full.
    TAPER_SOC: Final = 0.95
    PROTECTION_CUT_SOC: Final = 0.10
    #: State of charge at which the battery management stops discharging (low-voltage disconnect).
    DISCONNECT_SOC: Final = 0.10
    PROTECTION_CLEAR_SOC: Final = 0.15
    COLLAPSE_VOLTAGE_V: Final = 95.0
    #: Share of a tier's power that ends up as heat in the habitat.
    HABITAT_SHARE: Final = (0.7, 0.0, 0.0, 1.0)

    def __init__(
        self,
        *,
        initial_soc: float = 0.8,
        battery_capacity_kwh: float = 100.0,
        cells_in_series: int = 31,
        internal_resistance_ohm: float = 0.03,
        charge_efficiency: float = 0.97,
        discharge_efficiency: float = 0.97,
        max_charge_rate_c: float = 0.5,
        array_area_m2: float = 35.0,
        cell_efficiency: float = 0.298,
        array_loss: float = 0.30,
        array_degradation_per_year: float = 0.01,
        array_age_years: float = 0.0,
        dust_per_day: float = 2e-5,
        base_load_w: float = 1500.0,
        tier_loads_w: Sequence[float] = (3000.0, 5000.0, 2500.0, 1500.0),
        tiers_on: Sequence[int] = (1, 2, 3, 4),
    ) -> None:
        checks = (
            ("initial_soc", initial_soc, 0.0 <= initial_soc <= 1.0, "in [0, 1]"),
            ("battery_capacity_kwh", battery_capacity_kwh, battery_capacity_kwh > 0.0, "positive"),
            ("cells_in_series", cells_in_series, isinstance(cells_in_series, int) and cells_in_series >= 1,
             "an integer >= 1"),
            ("internal_resistance_ohm", internal_resistance_ohm, internal_resistance_ohm > 0.0, "positive"),
            ("charge_efficiency", charge_efficiency, 0.5 < charge_efficiency <= 1.0, "in (0.5, 1]"),
            ("discharge_efficiency", discharge_efficiency, 0.5 < discharge_efficiency <= 1.0, "in (0.5, 1]"),
            ("max_charge_rate_c", max_charge_rate_c, max_charge_rate_c > 0.0, "positive (1/h)"),
            ("array_area_m2", array_area_m2, array_area_m2 >= 0.0, "zero or more"),
            ("cell_efficiency", cell_efficiency, 0.0 < cell_efficiency < 1.0, "in (0, 1)"),
            ("array_loss", array_loss, 0.0 <= array_loss < 1.0, "in [0, 1)"),
            ("array_degradation_per_year", array_degradation_per_year,
             0.0 <= array_degradation_per_year < 1.0, "in [0, 1)"),
            ("array_age_years", array_age_years, array_age_years >= 0.0, "zero or more"),
            ("dust_per_day", dust_per_day, 0.0 <= dust_per_day < 1.0, "in [0, 1)"),
            ("base_load_w", base_load_w, base_load_w >= 0.0, "zero or more"),
        )  # fmt: skip
        for name, value, ok, what in checks:
            require(name, value, ok, what)
        loads = tuple(tier_loads_w) if isinstance(tier_loads_w, (list, tuple)) else ()
        if len(loads) != len(TIERS):
            msg = f"tier_loads_w must list {len(TIERS)} powers (W) for T1-T4, got {tier_loads_w!r}"
            raise ConfigError(msg)
        for load in loads:
            require(
                "tier_loads_w", load, isinstance(load, (int, float)) and load > 0.0, "positive powers (W)"
            )
        on = tuple(tiers_on) if isinstance(tiers_on, (list, tuple)) else None
        if on is None or any(isinstance(t, bool) or t not in (1, 2, 3, 4) for t in on):
            msg = f"tiers_on must list tier numbers 1-4, got {tiers_on!r}"
            raise ConfigError(msg)
        super().__init__(_description(loads))
        self.capacity_wh = float(battery_capacity_kwh) * 1000.0
        self.cells_in_series = cells_in_series
        self.internal_resistance_ohm = float(internal_resistance_ohm)
        self.charge_efficiency = float(charge_efficiency)
        self.discharge_efficiency = float(discharge_efficiency)
        self.max_charge_rate_c = float(max_charge_rate_c)
        self.array_degradation_per_year = float(array_degradation_per_year)
        self.array_age_years = float(array_age_years)
        self.dust_per_day = float(dust_per_day)
        self.base_load_w = float(base_load_w)
        self.tier_loads_w = {name: float(w) for name, w in zip(TIERS, loads, strict=True)}
        #: Array output in full sun at normal incidence, beginning of life, clean (W).
        self.bol_solar_w = self.SOLAR_CONSTANT_W_M2 * array_area_m2 * cell_efficiency * (1.0 - array_loss)
        #: Energy through the board since start (Wh).
        self.energy = EnergyLedger()
        self._tiers = {name: (i + 1) in on for i, name in enumerate(TIERS)}
        self._soc = float(initial_soc)
        self._cells = cells_in_series
        self._dust = 0.0
        self._time_s = 0.0
        self._solar_w = 0.0
        self._reactor_w = 0.0
        self._load_w = 0.0
        self._shunt_w = 0.0
        self._demand_w = 0.0
        self._current_a = 0.0
        self._terminal_v = self.open_circuit_v()
        self._sun_elevation_deg = 0.0
        self._usable = 1.0
        self._inhibited = False
        self._protection = False
        self._collapsed = False
        self._temp_c = math.nan
        self._resistance_ohm = self.internal_resistance_ohm

    # ------------------------------------------------------------------ state

    @property
    def soc(self) -> float:
        """State of charge (0..1): stored energy over the string's capacity."""
        return self._soc

    @property
    def string_capacity_wh(self) -> float:
        """Capacity of the cells still in the string (Wh), before cold derating."""
        return self.capacity_wh * self._cells / self.cells_in_series

    @property
    def stored_wh(self) -> float:
        """Energy stored now (Wh)."""
        return self._soc * self.string_capacity_wh

    @property
    def cells(self) -> int:
        """Cells in the string (not bypassed)."""
        return self._cells

    @property
    def dust_fraction(self) -> float:
        """Share of the arrays' light the dust blocks (0..1)."""
        return self._dust

    @property
    def peak_solar_w(self) -> float:
        """Array output now in full sun at normal incidence (W): degradation and dust included."""
        return self.bol_solar_w * self._ageing(self._time_s) * (1.0 - self._dust)

    def _ageing(self, time_s: float) -> float:
        age_years = self.array_age_years + time_s / SECONDS_PER_YEAR
        return max(0.0, 1.0 - self.array_degradation_per_year * age_years)

    def open_circuit_v(self) -> float:
        """Battery open-circuit voltage (V) at the present state of charge."""
        return self._cells * _interpolate(self.OCV_TABLE, self._soc)

    def tier_on(self, tier: int) -> bool:
        """Whether tier ``tier`` (1-4) is switched on now."""
        return self._tiers[TIERS[tier - 1]]

    # ------------------------------------------------------------------ fault hooks

    def fail_cells(self, count: int) -> None:
        """Bypass ``count`` more cells (a string keeps at least one): voltage and capacity fall.

        Takes effect in the next step. Raises :class:`BoardError` for a count below 1.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            msg = f"fail_cells needs a whole count of at least 1, got {count!r}"
            raise BoardError(msg)
        before = self._cells
        self._cells = max(1, before - count)
        lost_wh = self._soc * self.capacity_wh * (before - self._cells) / self.cells_in_series
        self.energy.cells_bypassed_wh += lost_wh
        self._emit("cells_bypassed", "warning", self._time_s, cells=self._cells, lost=before - self._cells)

    def restore_cells(self) -> None:
        """Put every bypassed cell back in the string (at the string's state of charge)."""
        restored = self.cells_in_series - self._cells
        if restored:
            self.energy.cells_bypassed_wh -= self._soc * self.capacity_wh * restored / self.cells_in_series
            self._cells = self.cells_in_series
            self._emit("cells_restored", "info", self._time_s, cells=self._cells)

    def deposit_dust(self, fraction: float) -> None:
        """Dust settles on the arrays: they lose ``fraction`` (0..1) of what still reaches the cells."""
        if not 0.0 <= fraction <= 1.0:
            msg = f"deposit_dust needs a fraction in [0, 1], got {fraction!r}"
            raise BoardError(msg)
        self._dust = 1.0 - (1.0 - self._dust) * (1.0 - fraction)

    def clean_arrays(self) -> None:
        """The arrays are cleaned: no dust."""
        self._dust = 0.0

    # ------------------------------------------------------------------ board contract

    def read(self) -> dict[str, Value]:
        """Every power channel."""
        return {
            "solar_power_w": self._solar_w,
            "reactor_power_w": self._reactor_w,
            "load_power_w": self._load_w,
            "battery_soc": self._soc,
            "battery_voltage_v": self._terminal_v,
            "battery_current_a": self._current_a,
            "bus_voltage_v": self.COLLAPSE_VOLTAGE_V if self._collapsed else self._terminal_v,
            "sun_elevation_deg": self._sun_elevation_deg,
            "shunt_power_w": self._shunt_w,
            "reactor_demand_w": self._demand_w,
            "battery_capacity_wh": self.string_capacity_wh * self._usable,
            "battery_cells": self._cells,
            "tiers_powered": sum(1 << i for i, name in enumerate(TIERS) if self._tiers[name]),
            "charge_inhibited": self._inhibited,
            "battery_protection": self._protection,
        }

    def faults(self) -> frozenset[str]:
        """``battery_protection``, ``bus_collapse``, ``charge_inhibited``, ``cells_bypassed`` while so."""
        flags: set[str] = set()
        if self._protection:
            flags.add("battery_protection")
        if self._collapsed:
            flags.add("bus_collapse")
        if self._inhibited:
            flags.add("charge_inhibited")
        if self._cells < self.cells_in_series:
            flags.add("cells_bypassed")
        return frozenset(flags)

    def _refusal(self, actuator: str, value: Value) -> str | None:
        if self._protection and value:
            return (
                f"{actuator} refused: battery protection holds tiers 1-4 off until the "
                f"charge is above {self.PROTECTION_CLEAR_SOC:.0%}"
            )
        return None

    # ------------------------------------------------------------------ physics

    def _battery_temperature(self, temp_c: float, time_s: float) -> None:
        """Update what depends on the battery temperature (only when it changed)."""
        if temp_c == self._temp_c:
            return
        self._temp_c = temp_c
        self._usable = _interpolate(self.USABLE_BY_TEMP, temp_c)
        cold_k = self.RESISTANCE_REFERENCE_C - max(
            self.RESISTANCE_FLOOR_C, min(self.RESISTANCE_REFERENCE_C, temp_c)
        )
        self._resistance_ohm = self.internal_resistance_ohm * 2.0 ** (cold_k / self.RESISTANCE_DOUBLING_K)
        inhibited = not self.CHARGE_MIN_C <= temp_c <= self.CHARGE_MAX_C
        if inhibited != self._inhibited:
            self._inhibited = inhibited
            if inhibited:
                self._emit("charge_inhibited", "warning", time_s, battery_temp_c=temp_c)
            else:
                self._emit("charge_enabled", "info", time_s, battery_temp_c=temp_c)

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Balance generation against loads over ``dt_s`` and move the battery charge.

        ``dt_s <= 0`` refreshes the readings without moving energy (used once, at frame 0).
        """
        for name, value in self._take_pending().items():
            self._tiers[name] = bool(value)
        time_s = env.time_s
        self._time_s = time_s
        dt_h = max(0.0, dt_s) / SECONDS_PER_HOUR
        if dt_h > 0.0 and self.dust_per_day > 0.0:
            self._dust = 1.0 - (1.0 - self._dust) * (1.0 - min(1.0, self.dust_per_day * dt_h / 24.0))
        self._sun_elevation_deg = elevation = env.sun_elevation_deg
        solar_w = self.peak_solar_w * env.lit_fraction * math.cos(math.radians(elevation))
        reactor_w = max(0.0, coupling.reactor_electric_w)
        tiers = self._tiers
        loads = self.tier_loads_w
        demand_w = self.base_load_w + coupling.heater_power_w + coupling.comms_power_w
        for name in TIERS:
            if tiers[name]:
                demand_w += loads[name]
        self._battery_temperature(coupling.battery_temp_c, time_s)
        resistance = self._resistance_ohm * self._cells / self.cells_in_series
        open_v = self.open_circuit_v()
        accept_a = self._acceptance_a(open_v, dt_h)
        net_w = solar_w + reactor_w - demand_w
        if net_w >= 0.0:
            flow = self._charge(net_w, open_v, resistance, accept_a, dt_h)
        else:
            flow = self._discharge(-net_w, open_v, resistance, dt_h)
        served_w = demand_w - flow.unserved_w
        current = flow.current_a
        i2r_w = resistance * current * current
        if dt_h > 0.0:
            self._book(dt_h, solar_w, reactor_w, served_w, i2r_w, flow)
        self._solar_w = solar_w
        self._reactor_w = reactor_w
        self._load_w = served_w
        self._shunt_w = flow.shunt_w
        self._current_a = current
        self._terminal_v = open_v + resistance * current
        accept_w = open_v * accept_a + resistance * accept_a * accept_a
        self._demand_w = max(0.0, demand_w + accept_w - solar_w)
        self._bus_state(flow.unserved_w > 0.0, flow.unserved_w, time_s)
        self._protect(time_s)
        served = served_w / demand_w if demand_w > 0.0 else 1.0
        coupling.reactor_demand_w = self._demand_w
        coupling.battery_current_a = current
        coupling.battery_heat_w = i2r_w
        coupling.habitat_gain_w = served * sum(
            share * loads[name] for share, name in zip(self.HABITAT_SHARE, TIERS, strict=True) if tiers[name]
        )

    def _book(
        self, dt_h: float, solar_w: float, reactor_w: float, served_w: float, i2r_w: float, flow: _Flow
    ) -> None:
        """Enter the step's energies in the ledger and move the state of charge."""
        ledger = self.energy
        ledger.solar_wh += solar_w * dt_h
        ledger.reactor_wh += reactor_w * dt_h
        ledger.load_wh += served_w * dt_h
        ledger.shunted_wh += flow.shunt_w * dt_h
        ledger.battery_conversion_loss_wh += flow.conversion_wh
        ledger.battery_i2r_wh += i2r_w * dt_h
        capacity_wh = self.string_capacity_wh
        self._soc = min(1.0, max(0.0, (self._soc * capacity_wh + flow.chemical_wh) / capacity_wh))

    def _acceptance_a(self, open_v: float, dt_h: float) -> float:
        """Charge current the battery takes now (A): the C-rate, tapered near full, within the headroom."""
        if self._inhibited or self._soc >= 1.0:
            return 0.0
        capacity_wh = self.string_capacity_wh
        taper = min(1.0, (1.0 - self._soc) / (1.0 - self.TAPER_SOC))
        accept_a = self.max_charge_rate_c * capacity_wh * taper / open_v
        if dt_h > 0.0:
            headroom_wh = (1.0 - self._soc) * capacity_wh
            accept_a = min(accept_a, headroom_wh / (self.charge_efficiency * open_v * dt_h))
        return accept_a

    def _charge(
        self, surplus_w: float, open_v: float, resistance: float, accept_a: float, dt_h: float
    ) -> _Flow:
        """The battery takes ``surplus_w`` (``V_oc I + R I^2``) up to ``accept_a``; the rest is shunted."""
        current = (-open_v + math.sqrt(open_v * open_v + 4.0 * resistance * surplus_w)) / (2.0 * resistance)
        shunt_w = 0.0
        if current > accept_a:
            current = accept_a
            shunt_w = max(0.0, surplus_w - (open_v * current + resistance * current * current))
        chemical_w = open_v * current
        return _Flow(
            current_a=current,
            shunt_w=shunt_w,
            unserved_w=0.0,
            chemical_wh=self.charge_efficiency * chemical_w * dt_h,
            conversion_wh=(1.0 - self.charge_efficiency) * chemical_w * dt_h,
        )

    def _discharge(self, deficit_w: float, open_v: float, resistance: float, dt_h: float) -> _Flow:
        """The battery gives ``deficit_w`` (``V_oc I - R I^2``) down to its floor; the rest is unserved."""
        floor_wh = max(1.0 - self._usable, self.DISCONNECT_SOC) * self.string_capacity_wh
        usable_wh = max(0.0, self.stored_wh - floor_wh)
        limit_a = open_v / (2.0 * resistance)  # maximum power transfer
        if dt_h > 0.0:
            limit_a = min(limit_a, usable_wh * self.discharge_efficiency / (open_v * dt_h))
        elif usable_wh <= 0.0:
            limit_a = 0.0
        available_w = open_v * limit_a - resistance * limit_a * limit_a
        unserved_w = 0.0
        if deficit_w <= available_w:
            root = max(0.0, open_v * open_v - 4.0 * resistance * deficit_w)
            drawn_a = (open_v - math.sqrt(root)) / (2.0 * resistance)
        else:
            drawn_a = limit_a
            unserved_w = deficit_w - available_w
        chemical_w = open_v * drawn_a
        return _Flow(
            current_a=-drawn_a if drawn_a else 0.0,
            shunt_w=0.0,
            unserved_w=unserved_w,
            chemical_wh=-chemical_w / self.discharge_efficiency * dt_h,
            conversion_wh=chemical_w * (1.0 / self.discharge_efficiency - 1.0) * dt_h,
        )

    def _bus_state(self, collapsed: bool, unserved_w: float, time_s: float) -> None:
        if collapsed != self._collapsed:
            self._collapsed = collapsed
            if collapsed:
                self._emit("bus_collapse", "critical", time_s, soc=self._soc, unserved_w=unserved_w)
            else:
                self._emit("bus_restored", "info", time_s, soc=self._soc)

    def _protect(self, time_s: float) -> None:
        if not self._protection and self._soc <= self.PROTECTION_CUT_SOC + _SOC_EPSILON:
            self._protection = True
            cut = sorted(n for n, on in self._tiers.items() if on)
            for name in self._tiers:
                self._tiers[name] = False
            self._emit("battery_protection", "critical", time_s, soc=self._soc, cut=cut)
        elif self._protection and self._soc > self.PROTECTION_CLEAR_SOC:
            self._protection = False
            self._emit("battery_protection_cleared", "info", time_s, soc=self._soc)


def _description(tier_loads_w: Sequence[float]) -> BoardDescription:
    """The power board's contract: channels and tier switches."""
    channels: tuple[Channel, ...] = (
        number("solar_power_w", "W", 0.0, 12_000.0, "array output"),
        number("reactor_power_w", "W", 0.0, 15_000.0, "reactor electric input"),
        number("load_power_w", "W", 0.0, 30_000.0, "power drawn by loads"),
        number("battery_soc", "1", 0.0, 1.0, "battery state of charge"),
        number("battery_voltage_v", "V", 0.0, 140.0, "battery terminal voltage"),
        number("battery_current_a", "A", -400.0, 400.0, "positive = charging"),
        number("bus_voltage_v", "V", 0.0, 140.0, "main bus voltage"),
        number("sun_elevation_deg", "deg", -5.0, 5.0, "sun above ideal horizon"),
        number("shunt_power_w", "W", 0.0, 30_000.0, "surplus shunted"),
        number("reactor_demand_w", "W", 0.0, 100_000.0, "asked of the reactor"),
        number("battery_capacity_wh", "Wh", 0.0, 200_000.0, "usable capacity now"),
        Channel("battery_cells", ValueType.INT, "", 0, 64, "cells in the string"),
        Channel("tiers_powered", ValueType.INT, "", 0, 15, "tiers on, bit 0 = T1"),
        flag("charge_inhibited", "no charging: cold/hot"),
        flag("battery_protection", "board cut T1-T4"),
    )
    actuators = tuple(
        switch(name, f"{text}, {load / 1000.0:g} kW")
        for name, text, load in zip(TIERS, TIER_TEXT, tier_loads_w, strict=True)
    )
    return description("power", channels, actuators)
