"""A deterministic, seeded simulated world behind four boards: power, thermal, comms, reactor.

First versions of each model: credible and coupled, each a class meant to be deepened
(six-group kinetics with generation time, Way-Wigner decay heat, a full lumped thermal
network and a measured horizon mask come later). Figures come from the project's
physics reference; the numbers chosen here are:

Illumination (:class:`Illumination`)
    Site 0.4 deg from the south pole on a ridge. Sun azimuth turns once per synodic month
    (29.53 d); sun elevation = -1.54 deg * sin(2 pi t / 346.62 d) (season; t = 0 is the
    equinox before the darker half) + 0.4 deg * cos(azimuth) (site off the pole). A
    seeded horizon mask (base -2.0 deg, the horizon of a ridge seen from above, plus four
    to six ridges 0.6-2.4 deg high and 6-24 deg wide) gives 86-96 % lit time over a
    year, dark spells from a few hours to about six days, none in the brighter half.
    The lit fraction is the part of the 0.53 deg solar disc above the mask.

Power board (:class:`PowerModel`)
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

Thermal board (:class:`ThermalModel`)
    Four lumped nodes (battery 750 kJ/K, avionics 50 kJ/K, habitat 2 MJ/K, radiator
    100 kJ/K, 20 m2, emissivity 0.9) joined by conductances (battery-radiator 3 W/K,
    battery-avionics 2, avionics-radiator 8, habitat-radiator 60, habitat leak to the
    sink 5), the radiator radiating to a sink at 230 K in sunlight and 150 K in the
    dark. Avionics dissipate 400 W; life support (T1) puts 70 % of its power and T4 all
    of its power into the habitat; the battery warms by its I2R loss. Heaters (battery
    400 W, avionics 200 W, habitat 2 kW) are bus loads at ``duty * rating``. A hardware
    survival thermostat independent of flight software switches 400 W onto the battery
    below 0 C and off above 5 C. With no heaters commanded the battery settles near
    0-5 C and the avionics near 35 C in sunlight (-25 C in a long dark spell): flight
    software is expected to run the heaters.

Comms board (:class:`CommsModel`)
    Direct-to-Earth visible while the Earth's elevation, 6.68 deg * sin(2 pi t / 27.21 d
    + seeded phase), is above a seeded horizon within +-0.3 deg: about half the time,
    outages of about 13 days. Relay orbiter on a 24 h orbit, in view 16 h per orbit,
    seeded phase. Transmitter on: 10 Mbit/s through the relay, else 2 Mbit/s direct,
    else 0; it draws 200 W from the bus.

Reactor board (:class:`ReactorModel`)
    Six-group point kinetics (Keepin fast U-235 groups) in the prompt-jump
    approximation, with a neutron source of 1e-9 of rated power. Rated fission power
    40 kWt; Stirling conversion 25 %: 10 kWe at the operating point. Single rod, S-curve
    worth $6.00; excess reactivity $1.80 cold with the rod out, so the cold core is
    $4.20 subcritical rod in and critical near rod 0.60. Fuel feedback -0.1844 cent/K,
    reflector +0.0585 cent/K (slow node, 2 h, following 5 % of the fuel rise). Fuel heat
    capacity 20 kJ/K, starting cold at -20 C. Heat pipes start carrying heat at 400 C,
    fully at 550 C, 133 W/K above 500 C: at 800 C they carry 40 kWt, which is the
    steady operating point near rod 0.80 (about 22 K of fuel temperature per 0.01 of
    rod). Decay heat: three pseudo-groups (3.0 % / 10 s, 1.8 % / 300 s, 1.4 % / 20000 s).
    Rod drive 0.005 per second; on a trip the rod goes fully in within 1.7 s. The
    converters run until :meth:`ReactorModel.fail_converter` (fault injection) stops
    them; then the heat pipes carry nothing and ``converter_ok`` reads false.

    Board-level protection, independent of flight software, checked every 0.2 s (every
    30 s while shut down: rod in, target 0, source-level power): trip on
    fission power above 110 % of rated, fuel above 840 C, period shorter than 10 s in the
    power range (above 0.1 % of rated), loss of the converter (heat sink), a manual
    ``scram``, and loss of the flight-software heartbeat: no SYNC from the reactor's own
    client for more than ``heartbeat_timeout_s`` of board time (default the larger of
    10 s and three frames), counted from the first SYNC. A trip latches: rod in, EVENT
    ``trip`` with the reason, rod withdrawal refused, until a ``trip_reset`` command
    finds every trip condition clear.

    A sensible start-up from cold (about 50 min): with heartbeats flowing, drive the rod
    to 0.55 (still subcritical); then every 30 s step it out by 0.005 while the fuel is
    below 790 C, the period longer than 60 s (or negative) and the thermal power below
    30 kW (41 kW once the fuel is above 600 C and the heat pipes carry the heat); step it
    in by 0.005 when the fuel is above 810 C or the power above 42 kW. Criticality comes
    near rod 0.62; the core settles near rod 0.795, 795 C, 40.5 kWt and 9.7 kWe.

Time and commands: :meth:`World.advance_to` steps each frame in turn; a command received
during frame ``t`` is held and applied at the start of the step ``t -> t + 1``, so reads in
frame ``t`` see the world at ``t`` whatever the order the boards were served in. Nothing
here reads a wall clock or an unseeded random generator.
"""

from __future__ import annotations

import abc
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from fsw.board import Actuator, BoardDescription, BoardEvent, Channel, Value, ValueType
from fsw.errors import BoardError, ConfigError
from hil.wire import PROTOCOL_VERSION, Refusal, check_command

FIRMWARE: Final = "lunar-fsw-sim 0.1"

SECONDS_PER_DAY: Final = 86_400.0
SYNODIC_MONTH_S: Final = 29.530589 * SECONDS_PER_DAY
ECLIPSE_YEAR_S: Final = 346.62 * SECONDS_PER_DAY
LIBRATION_PERIOD_S: Final = 27.21 * SECONDS_PER_DAY
STEFAN_BOLTZMANN: Final = 5.670e-8
KELVIN: Final = 273.15


# --- descriptions -------------------------------------------------------------------


def _number(name: str, unit: str, low: float, high: float, text: str) -> Channel:
    return Channel(name, ValueType.FLOAT, unit, low, high, text)


def _flag(name: str, text: str) -> Channel:
    return Channel(name, ValueType.BOOL, "", None, None, text)


def _switch(name: str, text: str) -> Actuator:
    return Actuator(name, ValueType.BOOL, "", None, None, text)


def _duty(name: str, text: str) -> Actuator:
    return Actuator(name, ValueType.FLOAT, "1", 0.0, 1.0, text)


def _description(
    kind: str, channels: tuple[Channel, ...], actuators: tuple[Actuator, ...]
) -> BoardDescription:
    return BoardDescription(kind, PROTOCOL_VERSION, FIRMWARE, channels, actuators)


# --- environment --------------------------------------------------------------------


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


@dataclass
class Coupling:
    """What one board's physics hands to another within a frame (models step in order:
    reactor, comms, thermal, power; thermal sees the power board's outputs of the frame
    before, which its time constants make harmless)."""

    reactor_electric_w: float = 0.0
    comms_power_w: float = 0.0
    heater_power_w: float = 0.0
    battery_current_a: float = 0.0
    battery_heat_w: float = 0.0
    habitat_gain_w: float = 0.0


# --- board models -------------------------------------------------------------------


class BoardModel(abc.ABC):
    """One simulated board: what a :class:`~hil.board_server.BoardServer` serves.

    ``command`` checks the actuator and range against the description and the board's
    state (raising :class:`BoardError` with a message naming the actuator) and holds
    the value; it takes effect at the start of the next :meth:`step`. Events are kept
    in a bounded queue; when it is full the newest are dropped and counted.
    """

    MAX_EVENTS: Final = 64

    def __init__(self, description: BoardDescription) -> None:
        self.description = description
        self._time_s = 0.0
        self._pending: dict[str, Value] = {}
        self._events: deque[BoardEvent] = deque()
        self.events_dropped = 0

    @property
    def kind(self) -> str:
        """The board kind, as in the description."""
        return self.description.kind

    @property
    def board_time_s(self) -> float:
        """The board's clock (s): the world time of the last step."""
        return self._time_s

    @abc.abstractmethod
    def read(self) -> dict[str, Value]:
        """Every channel's value now. Pure: reading never changes the world."""

    @abc.abstractmethod
    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Advance by ``dt_s`` seconds to ``env.time_s`` (pending commands first)."""

    def command(self, actuator: str, value: Value) -> None:
        """Hold ``actuator = value`` for the next step; raises :class:`BoardError` if refused."""
        checked = check_command(self.description, actuator, value)
        if isinstance(checked, Refusal):
            raise BoardError(checked.reason)
        refusal = self._refusal(actuator, checked)
        if refusal is not None:
            raise BoardError(refusal)
        self._pending[actuator] = checked

    def faults(self) -> frozenset[str]:
        """Fault flags raised now."""
        return frozenset()

    def drain_events(self) -> list[BoardEvent]:
        """Return and forget the events raised since the last call."""
        out = list(self._events)
        self._events.clear()
        return out

    def heartbeat(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Note a SYNC from this board's own client (the flight-software heartbeat)."""

    def _refusal(self, actuator: str, value: Value) -> str | None:
        """Why the board's state forbids this command now, or None."""
        del actuator, value
        return None

    def _take_pending(self) -> dict[str, Value]:
        pending, self._pending = self._pending, {}
        return pending

    def _emit(self, name: str, severity: str, time_s: float, **data: Any) -> None:
        if len(self._events) >= self.MAX_EVENTS:
            self.events_dropped += 1
            return
        self._events.append(BoardEvent(name, time_s, severity, data))


def _substeps(dt_s: float, max_substep_s: float) -> tuple[int, float]:
    count = max(1, math.ceil(dt_s / max_substep_s - 1e-9))
    return count, dt_s / count


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
            _description(
                "power",
                (
                    _number("solar_power_w", "W", 0.0, 12_000.0, "array output"),
                    _number("reactor_power_w", "W", 0.0, 15_000.0, "reactor electric input"),
                    _number("load_power_w", "W", 0.0, 30_000.0, "power drawn by loads"),
                    _number("battery_soc", "1", 0.0, 1.0, "battery state of charge"),
                    _number("battery_voltage_v", "V", 0.0, 140.0, "battery terminal voltage"),
                    _number("battery_current_a", "A", -400.0, 400.0, "positive = charging"),
                    _number("bus_voltage_v", "V", 0.0, 140.0, "main bus voltage"),
                    _number("sun_elevation_deg", "deg", -5.0, 5.0, "sun above ideal horizon"),
                ),
                tuple(_switch(name, f"shed tier {name[-1]} on") for name in self.TIER_LOAD_W),
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


class ThermalModel(BoardModel):
    """Four lumped thermal nodes with heaters (see the module docstring)."""

    CAPACITY_J_PER_K: Final = {
        "battery": 750_000.0,
        "avionics": 50_000.0,
        "habitat": 2_000_000.0,
        "radiator": 100_000.0,
    }
    #: Conductances between nodes (W/K).
    CONDUCTANCE_W_PER_K: Final = (
        ("battery", "radiator", 3.0),
        ("battery", "avionics", 2.0),
        ("avionics", "radiator", 8.0),
        ("habitat", "radiator", 60.0),
    )
    HABITAT_LEAK_W_PER_K: Final = 5.0
    RADIATOR_AREA_M2: Final = 20.0
    RADIATOR_EMISSIVITY: Final = 0.9
    AVIONICS_DISSIPATION_W: Final = 400.0
    HEATER_RATING_W: Final = {
        "heater_battery": 400.0,
        "heater_avionics": 200.0,
        "heater_habitat": 2000.0,
    }
    SURVIVAL_HEATER_W: Final = 400.0
    SURVIVAL_ON_C: Final = 0.0
    SURVIVAL_OFF_C: Final = 5.0
    MAX_SUBSTEP_S: Final = 60.0  # the fastest node (radiator) has a time constant of ~750 s
    LIMITS_C: Final = {"battery": (0.0, 40.0), "avionics": (-20.0, 50.0)}

    def __init__(self) -> None:
        super().__init__(
            _description(
                "thermal",
                (
                    _number("battery_temp_c", "C", -150.0, 150.0, "battery pack"),
                    _number("avionics_temp_c", "C", -150.0, 150.0, "avionics box"),
                    _number("radiator_temp_c", "C", -200.0, 150.0, "main radiator"),
                    _number("habitat_temp_c", "C", -150.0, 150.0, "habitat air"),
                ),
                (
                    _duty("heater_battery", "battery heater, 400 W at duty 1"),
                    _duty("heater_avionics", "avionics heater, 200 W at duty 1"),
                    _duty("heater_habitat", "habitat heater, 2 kW at duty 1"),
                ),
            )
        )
        self._temp_c = {"battery": 20.0, "avionics": 15.0, "habitat": 21.0, "radiator": -20.0}
        self._duty = dict.fromkeys(self.HEATER_RATING_W, 0.0)
        self._survival_on = False

    def read(self) -> dict[str, Value]:
        """Every node temperature (C)."""
        return {f"{node}_temp_c": temp for node, temp in self._temp_c.items()}

    def faults(self) -> frozenset[str]:
        """``<node>_temp_out_of_limits`` for the battery and avionics outside operating limits."""
        return frozenset(
            f"{node}_temp_out_of_limits"
            for node, (low, high) in self.LIMITS_C.items()
            if not low <= self._temp_c[node] <= high
        )

    @property
    def heater_power_w(self) -> float:
        """Electric power the heaters draw now (W), survival heater included."""
        commanded = sum(self.HEATER_RATING_W[n] * d for n, d in self._duty.items())
        return commanded + (self.SURVIVAL_HEATER_W if self._survival_on else 0.0)

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Integrate the node temperatures over ``dt_s`` (explicit Euler, <= 60 s substeps)."""
        for name, value in self._take_pending().items():
            self._duty[name] = float(value)
        self._thermostat(env.time_s)
        count, h = _substeps(dt_s, self.MAX_SUBSTEP_S)
        gains = {
            "battery": coupling.battery_heat_w
            + self.HEATER_RATING_W["heater_battery"] * self._duty["heater_battery"]
            + (self.SURVIVAL_HEATER_W if self._survival_on else 0.0),
            "avionics": self.AVIONICS_DISSIPATION_W
            + self.HEATER_RATING_W["heater_avionics"] * self._duty["heater_avionics"],
            "habitat": coupling.habitat_gain_w
            + self.HEATER_RATING_W["heater_habitat"] * self._duty["heater_habitat"],
            "radiator": 0.0,
        }
        sink_k = env.sink_temp_k
        for _ in range(count):
            temps = self._temp_c
            flow = dict(gains)
            for a, b, g in self.CONDUCTANCE_W_PER_K:
                q = g * (temps[a] - temps[b])
                flow[a] -= q
                flow[b] += q
            flow["habitat"] -= self.HABITAT_LEAK_W_PER_K * (temps["habitat"] + KELVIN - sink_k)
            rad_k = temps["radiator"] + KELVIN
            flow["radiator"] -= (
                self.RADIATOR_EMISSIVITY * STEFAN_BOLTZMANN * self.RADIATOR_AREA_M2 * (rad_k**4 - sink_k**4)
            )
            for node, q in flow.items():
                temps[node] = max(-KELVIN + 3.0, temps[node] + h * q / self.CAPACITY_J_PER_K[node])
        coupling.heater_power_w = self.heater_power_w
        self._time_s = env.time_s

    def _thermostat(self, time_s: float) -> None:
        battery_c = self._temp_c["battery"]
        if not self._survival_on and battery_c < self.SURVIVAL_ON_C:
            self._survival_on = True
            self._emit("survival_heater", "warning", time_s, on=True, battery_temp_c=battery_c)
        elif self._survival_on and battery_c > self.SURVIVAL_OFF_C:
            self._survival_on = False
            self._emit("survival_heater", "info", time_s, on=False, battery_temp_c=battery_c)


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
            _description(
                "comms",
                (
                    _flag("dte_visible", "Earth above the local horizon"),
                    _flag("relay_visible", "relay orbiter in view"),
                    Channel("downlink_rate_bps", ValueType.INT, "bit/s", 0.0, 1e8, "downlink"),
                ),
                (_switch("transmitter", "main transmitter on"),),
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


class ReactorModel(BoardModel):
    """Kilopower-class reactor with board-level protection (see the module docstring)."""

    RATED_FISSION_POWER_W: Final = 40_000.0
    CONVERSION_EFFICIENCY: Final = 0.25
    GROUP_DECAY_PER_S: Final = (0.0127, 0.0317, 0.115, 0.311, 1.40, 3.87)
    GROUP_FRACTION: Final = (0.038, 0.213, 0.188, 0.407, 0.128, 0.026)
    SOURCE_FRACTION: Final = 1e-9
    MAX_REACTIVITY_DOLLARS: Final = 0.95  # prompt-jump approximation holds below prompt critical
    ROD_WORTH_DOLLARS: Final = 6.0
    EXCESS_REACTIVITY_DOLLARS: Final = 1.8
    FUEL_COEFFICIENT_DOLLARS_PER_K: Final = -0.001844
    REFLECTOR_COEFFICIENT_DOLLARS_PER_K: Final = 0.000585
    COLD_TEMP_C: Final = -20.0
    FUEL_CAPACITY_J_PER_K: Final = 20_000.0
    HEAT_PIPE_CONDUCTANCE_W_PER_K: Final = 133.3
    HEAT_PIPE_SINK_C: Final = 500.0
    HEAT_PIPE_START_C: Final = 400.0
    HEAT_PIPE_FULL_C: Final = 550.0
    CORE_LOSS_W_PER_K: Final = 2.0
    REFLECTOR_TIME_CONSTANT_S: Final = 7200.0
    REFLECTOR_FOLLOWS: Final = 0.05
    DECAY_HEAT_GROUPS: Final = ((0.030, 10.0), (0.018, 300.0), (0.014, 20_000.0))
    ROD_DRIVE_PER_S: Final = 0.005
    ROD_TRIP_PER_S: Final = 0.6
    PERIOD_METER_TIME_CONSTANT_S: Final = 10.0
    STEADY_PERIOD_S: Final = 1e9
    TRIP_POWER_FRACTION: Final = 1.10
    TRIP_FUEL_TEMP_C: Final = 840.0
    TRIP_PERIOD_S: Final = 10.0
    POWER_RANGE_FRACTION: Final = 1e-3
    MAX_SUBSTEP_S: Final = 0.2
    #: Substep while shut down (rod in, target 0, power at source level): nothing fast moves.
    QUIET_SUBSTEP_S: Final = 30.0
    QUIET_POWER_FRACTION: Final = 1e-6

    def __init__(self, heartbeat_timeout_s: float = 10.0) -> None:
        super().__init__(
            _description(
                "reactor",
                (
                    _number("thermal_power_w", "W", 0.0, 60_000.0, "fission plus decay heat"),
                    _number("electric_power_w", "W", 0.0, 15_000.0, "Stirling output"),
                    _number("fuel_temp_c", "C", -60.0, 1200.0, "fuel temperature"),
                    _number("rod_position", "1", 0.0, 1.0, "0 fully in, 1 fully out"),
                    _number("period_s", "s", -1e9, 1e9, "reactor period, 1e9 when steady"),
                    _flag("tripped", "protection trip latched"),
                    _flag("converter_ok", "Stirling converters running"),
                ),
                (
                    Actuator("rod_target", ValueType.FLOAT, "1", 0.0, 1.0, "rod drive target"),
                    _switch("scram", "true: trip now (rod fully in)"),
                    _switch("trip_reset", "true: clear a latched trip if its causes are gone"),
                ),
            )
        )
        if heartbeat_timeout_s <= 0.0:
            msg = f"heartbeat_timeout_s must be positive, got {heartbeat_timeout_s}"
            raise ConfigError(msg)
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._rod = 0.0
        self._rod_target = 0.0
        self._fuel_c = self.COLD_TEMP_C
        self._reflector_c = self.COLD_TEMP_C
        rho = self._reactivity_dollars()
        self._n = self.SOURCE_FRACTION / -rho
        self._precursors = [a * self._n for a in self.GROUP_FRACTION]
        self._decay_w = [0.0 for _ in self.DECAY_HEAT_GROUPS]
        self._heat_removed_w = 0.0
        self._log_rate_per_s = 0.0
        self._converter_ok = True
        self._tripped = False
        self._trip_reason = ""
        self._scram = False
        self._reset_requested = False
        self._last_heartbeat_s: float | None = None
        self._factor_cache: tuple[float, list[float], list[float]] = (0.0, [], [])

    # channels ---------------------------------------------------------------------

    @property
    def fission_power_w(self) -> float:
        """Fission power (W)."""
        return self._n * self.RATED_FISSION_POWER_W

    @property
    def thermal_power_w(self) -> float:
        """Fission power plus decay heat (W)."""
        return self.fission_power_w + sum(self._decay_w)

    @property
    def electric_power_w(self) -> float:
        """Converter electric output (W)."""
        return self.CONVERSION_EFFICIENCY * self._heat_removed_w

    @property
    def period_s(self) -> float:
        """Reactor period from the period meter (s), +-1e9 when steady."""
        rate = self._log_rate_per_s
        if abs(rate) < 1.0 / self.STEADY_PERIOD_S:
            return self.STEADY_PERIOD_S
        return max(-self.STEADY_PERIOD_S, min(self.STEADY_PERIOD_S, 1.0 / rate))

    @property
    def tripped(self) -> bool:
        """True while a trip is latched."""
        return self._tripped

    @property
    def trip_reason(self) -> str:
        """The reason of the latched trip, or empty."""
        return self._trip_reason

    def read(self) -> dict[str, Value]:
        """Every reactor channel."""
        return {
            "thermal_power_w": self.thermal_power_w,
            "electric_power_w": self.electric_power_w,
            "fuel_temp_c": self._fuel_c,
            "rod_position": self._rod,
            "period_s": self.period_s,
            "tripped": self._tripped,
            "converter_ok": self._converter_ok,
        }

    def faults(self) -> frozenset[str]:
        """``tripped`` and ``trip:<reason>`` while latched, ``converter_failed``, ``heartbeat_lost``."""
        flags: set[str] = set()
        if self._tripped:
            flags.update(("tripped", f"trip:{self._trip_reason}"))
        if not self._converter_ok:
            flags.add("converter_failed")
        if self._heartbeat_lost(self._time_s):
            flags.add("heartbeat_lost")
        return frozenset(flags)

    # inputs -----------------------------------------------------------------------

    def heartbeat(self) -> None:
        """A SYNC from the reactor's own client; the first one arms the heartbeat watchdog."""
        self._last_heartbeat_s = self._time_s

    def fail_converter(self, failed: bool = True) -> None:
        """Fault injection: the Stirling converters stop (or restart); the heat sink is lost."""
        self._converter_ok = not failed

    def _refusal(self, actuator: str, value: Value) -> str | None:
        if actuator != "rod_target" or float(value) <= self._rod_target:
            return None
        if self._tripped:
            return (
                f"rod_target={value} refused: reactor tripped ({self._trip_reason}); "
                "rod withdrawal is refused until trip_reset"
            )
        if self._last_heartbeat_s is None:
            return (
                f"rod_target={value} refused: no flight-software heartbeat yet "
                "(send SYNC before withdrawing the rod)"
            )
        return None

    # physics ----------------------------------------------------------------------

    def _reactivity_dollars(self) -> float:
        x = self._rod
        rod_in = 1.0 - (x - math.sin(2.0 * math.pi * x) / (2.0 * math.pi))
        return (
            self.EXCESS_REACTIVITY_DOLLARS
            - self.ROD_WORTH_DOLLARS * rod_in
            + self.FUEL_COEFFICIENT_DOLLARS_PER_K * (self._fuel_c - self.COLD_TEMP_C)
            + self.REFLECTOR_COEFFICIENT_DOLLARS_PER_K * (self._reflector_c - self.COLD_TEMP_C)
        )

    def _factors(self, h: float) -> tuple[list[float], list[float]]:
        cached_h, groups, decay = self._factor_cache
        if cached_h != h:
            groups = [math.exp(-lam * h) for lam in self.GROUP_DECAY_PER_S]
            decay = [math.exp(-h / tau) for _, tau in self.DECAY_HEAT_GROUPS]
            self._factor_cache = (h, groups, decay)
        return groups, decay

    def _heat_pipe_w(self) -> float:
        if not self._converter_ok:
            return 0.0
        span = self.HEAT_PIPE_FULL_C - self.HEAT_PIPE_START_C
        active = min(1.0, max(0.0, (self._fuel_c - self.HEAT_PIPE_START_C) / span))
        drive = max(0.0, self._fuel_c - self.HEAT_PIPE_SINK_C)
        return self.HEAT_PIPE_CONDUCTANCE_W_PER_K * active * drive

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Advance kinetics, temperatures and protection over ``dt_s``.

        Substeps of 0.2 s (protection is checked after each), 30 s while shut down.
        """
        pending = self._take_pending()
        if "rod_target" in pending:
            self._rod_target = float(pending["rod_target"])
        self._scram = self._scram or bool(pending.get("scram", False))
        start_s = self._time_s
        if pending.get("trip_reset", False):
            self._try_reset(start_s)
        count, h = _substeps(dt_s, self.QUIET_SUBSTEP_S if self._quiet() else self.MAX_SUBSTEP_S)
        for i in range(1, count + 1):
            self._substep(h, start_s + i * h)
        coupling.reactor_electric_w = self.electric_power_w
        self._time_s = env.time_s

    def _quiet(self) -> bool:
        return (
            self._rod == 0.0
            and self._rod_target == 0.0
            and not self._scram
            and self._n < self.QUIET_POWER_FRACTION
        )

    def _substep(self, h: float, t_s: float) -> None:
        target = 0.0 if self._tripped else self._rod_target
        speed = self.ROD_TRIP_PER_S if self._tripped else self.ROD_DRIVE_PER_S
        self._rod += max(-speed * h, min(speed * h, target - self._rod))
        rho = min(self._reactivity_dollars(), self.MAX_REACTIVITY_DOLLARS)
        n_before = self._n
        n = (sum(self._precursors) + self.SOURCE_FRACTION) / (1.0 - rho)
        group_factors, decay_factors = self._factors(h)
        self._precursors = [
            a * n + (c - a * n) * f
            for a, c, f in zip(self.GROUP_FRACTION, self._precursors, group_factors, strict=True)
        ]
        fission_w = n * self.RATED_FISSION_POWER_W
        self._decay_w = [
            share * fission_w + (d - share * fission_w) * f
            for (share, _), d, f in zip(self.DECAY_HEAT_GROUPS, self._decay_w, decay_factors, strict=True)
        ]
        self._heat_removed_w = self._heat_pipe_w()
        loss_w = self.CORE_LOSS_W_PER_K * (self._fuel_c - self.COLD_TEMP_C)
        heat_w = fission_w + sum(self._decay_w) - self._heat_removed_w - loss_w
        self._fuel_c += h * heat_w / self.FUEL_CAPACITY_J_PER_K
        reflector_goal = self.COLD_TEMP_C + self.REFLECTOR_FOLLOWS * (self._fuel_c - self.COLD_TEMP_C)
        self._reflector_c += (reflector_goal - self._reflector_c) * h / (self.REFLECTOR_TIME_CONSTANT_S)
        rate = math.log(n / n_before) / h
        self._log_rate_per_s += (rate - self._log_rate_per_s) * min(
            1.0, h / self.PERIOD_METER_TIME_CONSTANT_S
        )
        self._n = n
        self._protect(t_s)

    # protection -------------------------------------------------------------------

    def _heartbeat_lost(self, t_s: float) -> bool:
        last = self._last_heartbeat_s
        return last is not None and t_s - last > self.heartbeat_timeout_s

    def _trip_conditions(self, t_s: float) -> list[str]:
        reasons = []
        if self._n > self.TRIP_POWER_FRACTION:
            reasons.append("overpower")
        if self._fuel_c > self.TRIP_FUEL_TEMP_C:
            reasons.append("fuel_overtemperature")
        period = self.period_s
        if self._n > self.POWER_RANGE_FRACTION and 0.0 < period < self.TRIP_PERIOD_S:
            reasons.append("short_period")
        if not self._converter_ok and self._n > self.POWER_RANGE_FRACTION:
            reasons.append("loss_of_heat_sink")
        if self._heartbeat_lost(t_s):
            reasons.append("heartbeat_loss")
        return reasons

    def _protect(self, t_s: float) -> None:
        if self._tripped:
            return
        reasons = self._trip_conditions(t_s)
        if self._scram:
            reasons.insert(0, "manual_scram")
        if not reasons:
            return
        self._tripped = True
        self._trip_reason = reasons[0]
        self._rod_target = 0.0
        self._scram = False
        self._emit(
            "trip",
            "critical",
            t_s,
            reason=reasons[0],
            reasons=reasons,
            fission_power_w=self.fission_power_w,
            fuel_temp_c=self._fuel_c,
        )

    def _try_reset(self, t_s: float) -> None:
        if not self._tripped:
            return
        still = self._trip_conditions(t_s)
        if still:
            self._emit("trip_reset_refused", "warning", t_s, reasons=still)
            return
        self._emit("trip_reset", "info", t_s, cleared=self._trip_reason)
        self._tripped = False
        self._trip_reason = ""
        self._rod_target = 0.0


# --- the world ----------------------------------------------------------------------


class World:
    """Every simulated board over one seeded environment, stepped one frame at a time.

    ``boards`` maps a kind (``power``, ``thermal``, ``comms``, ``reactor``) to its
    :class:`BoardModel`. Frame ``f`` is at ``f * frame_period_s`` seconds; the world
    starts at frame 0. Two worlds with the same seed and the same commands at the same
    frames are identical, reading for reading.
    """

    def __init__(
        self,
        seed: int,
        frame_period_s: float,
        heartbeat_timeout_s: float | None = None,
    ) -> None:
        if not frame_period_s > 0.0:
            msg = f"frame_period_s must be positive, got {frame_period_s}"
            raise ConfigError(msg)
        if heartbeat_timeout_s is None:
            heartbeat_timeout_s = max(10.0, 3.0 * frame_period_s)
        if heartbeat_timeout_s <= frame_period_s:
            msg = (
                f"heartbeat_timeout_s ({heartbeat_timeout_s}) must exceed frame_period_s "
                f"({frame_period_s}) or the reactor trips between two heartbeats"
            )
            raise ConfigError(msg)
        rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not cryptography
        self.seed = seed
        self.frame_period_s = frame_period_s
        self.frame = 0
        self.illumination = Illumination(rng)
        self.power = PowerModel()
        self.thermal = ThermalModel()
        self.comms = CommsModel(rng)
        self.reactor = ReactorModel(heartbeat_timeout_s)
        #: Step order matters: see :class:`Coupling`.
        self.boards: dict[str, BoardModel] = {
            "reactor": self.reactor,
            "comms": self.comms,
            "thermal": self.thermal,
            "power": self.power,
        }
        self._coupling = Coupling()
        first = self.illumination.environment(0.0)
        self.comms.step(0.0, first, self._coupling)
        self.power.step(0.0, first, self._coupling)

    @property
    def time_s(self) -> float:
        """World time (s) at the current frame."""
        return self.frame * self.frame_period_s

    def advance_to(self, frame: int) -> None:
        """Step every frame up to ``frame``; a frame at or before the current one is a no-op.

        Compute-bound: about a millisecond per frame at a 1 s frame period.
        """
        while self.frame < frame:
            self._step()

    def _step(self) -> None:
        end_s = (self.frame + 1) * self.frame_period_s
        env = self.illumination.environment(end_s)
        for model in self.boards.values():
            model.step(self.frame_period_s, env, self._coupling)
        self.frame += 1
