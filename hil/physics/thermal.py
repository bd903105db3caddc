"""The thermal board: lumped nodes, conductances, two radiators, heaters and thermostats.

Five lumped nodes, each ``C dT/dt = sum of heat flows`` (W):

=================  ===========  =============================================================
node               capacity     heat in / heat out
=================  ===========  =============================================================
battery            750 kJ/K     I2R loss of the pack (power board), battery heater (400 W),
                                hardware survival heater (400 W); to the radiator (3 W/K) and
                                the avionics (2 W/K)
avionics           50 kJ/K      dissipation (400 W), avionics heater (200 W), hardware
                                survival heater (100 W); cold-plate loop to the radiator
habitat            2 MJ/K       the habitat's share of the switched loads (power board: 70 %
                                of life support, all of the comfort heaters and lighting),
                                habitat heater (2 kW); heat-rejection loop to the radiator,
                                leak through the insulation to the sink (5 W/K)
radiator           100 kJ/K     the main radiator: 20 m2, zenith-facing (the sun grazes it:
                                no solar load by default), radiates to the sink
reactor_radiator   200 kJ/K     the reactor radiator: heat the Stirling converters reject
                                (reactor board, ~30 kW at rated power), absorbed sunlight;
                                51.2 m2, vertical panels, radiates to the sink
=================  ===========  =============================================================

Radiation: ``q = eps sigma A_eff (T^4 - T_sink^4)`` with emissivity 0.9 and the sink
temperature of the environment (230 K in sunlight, 150 K in the dark); absorbed sunlight
``alpha A_eff f G lit cos(elevation)`` with absorptance 0.15 (white ceramic coating),
G = 1361 W/m2 and ``f`` the share of the radiating area projected toward the sun: 1/pi
for vertical two-sided panels averaged over the sun's azimuth (the sun turns around the
horizon once a month), 0 for the zenith-facing main radiator. The area that radiates is
``A_eff = A (1 - damage) (1 - failed heat pipes / heat pipes)``: a damaged part of a
panel, or the fins of a failed heat pipe, no longer get heat.

Reactor radiator sizing (:func:`radiator_area_m2`): at rated power the converters reject
30 kW; in sunlight (sink 230 K, full sun on the horizon) the radiator holds the converter
cold end at 80 C (353.15 K) when ``A = 30 kW / (eps sigma (353.15^4 - 230^4) - alpha G / pi)
= 30000 / (650.9 - 65.0) = 51.2 m2``. In the dark (sink 150 K, no sun) the same heat gives
57.8 C; with no heat the radiator settles at -20.5 C in sunlight. A fifth of the area lost
gives 95.3 C, a quarter (4 of its 16 heat pipes failed) 100.0 C.

Loops with thermostatic bypass valves (passive hardware, as on the MSL rover's pumped loop): the
avionics cold-plate loop carries 8 W/K to the radiator with the avionics above 25 C, 1 W/K
(bypassed) below 5 C; the habitat loop 60 W/K above 23 C, 3 W/K below 19 C; linear in
between. They keep the avionics and the habitat from freezing in a long dark spell without
flight software, and from overheating in sunlight.

Heaters are bus loads of ``duty * rating`` (:attr:`Coupling.heater_power_w`). Hardware
survival thermostats, independent of flight software, switch the battery survival heater
on below 0 C and off above 5 C, and the avionics survival heater on below -35 C and off
above -30 C (board events ``survival_heater``).

Integration: conduction is explicit, one exchange per link (energy is conserved to
rounding); radiation is implicit (backward Euler, solved by Newton's method, at most four
iterations), so a small-capacity radiator taking 30 kW is stable at any step; substeps
are at most 60 s and at most half the shortest conduction time constant ``C / sum G``.
The thermostats and valves act at each substep.

Every figure above is a constructor keyword (``[processes.simulator.params.thermal]``); a
bad value raises :class:`~fsw.errors.ConfigError` naming the key. Fault hooks:
:meth:`ThermalModel.damage_radiator`, :meth:`ThermalModel.fail_heat_pipes`.
"""

from __future__ import annotations

import math
from typing import Final

from fsw.board import Value
from fsw.errors import ConfigError
from hil.physics.environment import Environment
from hil.physics.model import (
    KELVIN,
    STEFAN_BOLTZMANN,
    BoardModel,
    Coupling,
    checked_number,
    description,
    duty,
    flag,
    number,
    substeps,
)

#: Solar constant at the Moon (W/m2).
SOLAR_CONSTANT_W_M2: Final = 1361.0
#: Share of a vertical two-sided panel's radiating area seen by a sun on the horizon,
#: averaged over the sun's azimuth: (A/2) * mean(|cos|) = A / pi.
VERTICAL_PANEL_VIEW_FACTOR: Final = 1.0 / math.pi
#: The two radiators, as the fault hooks name them.
RADIATORS: Final = ("radiator", "reactor_radiator")
#: Newton iterations of the implicit radiation update: at most, and the step below which
#: the next correction is negligible (K; it is about 6 / T times the square of the step).
MAX_NEWTON_ITERATIONS: Final = 4
NEWTON_TOLERANCE_K: Final = 0.01
#: Temperatures accepted as parameters (C): above absolute zero, below melting.
MIN_TEMP_C: Final = 3.0 - KELVIN
MAX_TEMP_C: Final = 1000.0
#: Upper bounds of the parameters: far beyond any design, they catch a unit mistake.
MAX_W_PER_K: Final = 1e7
MAX_AREA_M2: Final = 1e5
MAX_POWER_W: Final = 1e6
MAX_HEAT_PIPES: Final = 10_000
#: Largest temperature difference across a valved loop (K), for the substep bound.
VALVE_DELTA_K: Final = 100.0


def radiator_area_m2(
    heat_w: float,
    temp_c: float,
    sink_k: float,
    emissivity: float = 0.9,
    absorptance: float = 0.15,
    solar_view_factor: float = VERTICAL_PANEL_VIEW_FACTOR,
    solar_w_m2: float = SOLAR_CONSTANT_W_M2,
) -> float:
    """Area (m2) that rejects ``heat_w`` at ``temp_c`` to ``sink_k`` under ``solar_w_m2``.

    ``A = Q / (eps sigma (T^4 - T_sink^4) - alpha f G)``. Raises :class:`ConfigError` when
    the radiator cannot reject heat at that temperature (it absorbs more than it emits).
    """
    temp_k = temp_c + KELVIN
    net_w_m2 = emissivity * STEFAN_BOLTZMANN * (temp_k**4 - sink_k**4)
    net_w_m2 -= absorptance * solar_view_factor * solar_w_m2
    if net_w_m2 <= 0.0:
        msg = f"a radiator at {temp_c} C rejects nothing to a {sink_k} K sink under {solar_w_m2} W/m2"
        raise ConfigError(msg)
    return heat_w / net_w_m2


def _count(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int within [low, high]; raises :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        msg = f"{name}={value!r} must be an integer within [{low}, {high}]"
        raise ConfigError(msg)
    return value


def _positive(name: str, value: object) -> float:
    return checked_number(name, value, 0.0, math.inf, low_inclusive=False)


def _temperature(name: str, value: object) -> float:
    return checked_number(name, value, MIN_TEMP_C, MAX_TEMP_C)


def _band(low_name: str, low_c: float, high_name: str, high_c: float) -> None:
    if not low_c < high_c:
        msg = f"{low_name}={low_c:g} must be below {high_name}={high_c:g}"
        raise ConfigError(msg)


Loop = tuple[float, float, float, float]


def _loop(
    node: str, open_key: str, open_w_per_k: float, bypass_w_per_k: float, closed_c: float, open_c: float
) -> Loop:
    """A loop with a thermostatic bypass valve: (closed C, 1 / span K, bypass W/K, open W/K)."""
    full = checked_number(open_key, open_w_per_k, 0.0, MAX_W_PER_K)
    bypass = checked_number(f"{node}_loop_bypass_w_per_k", bypass_w_per_k, 0.0, full)
    closed = _temperature(f"{node}_loop_closed_c", closed_c)
    opened = _temperature(f"{node}_loop_open_c", open_c)
    _band(f"{node}_loop_closed_c", closed, f"{node}_loop_open_c", opened)
    return (closed, 1.0 / (opened - closed), bypass, full)


def _thermostat(node: str, heater_w: float, on_c: float, off_c: float) -> tuple[float, float, float]:
    """A hardware survival thermostat: (heater W, on below C, off above C)."""
    on = _temperature(f"{node}_survival_on_c", on_c)
    off = _temperature(f"{node}_survival_off_c", off_c)
    _band(f"{node}_survival_on_c", on, f"{node}_survival_off_c", off)
    return (checked_number(f"{node}_survival_heater_w", heater_w, 0.0, MAX_POWER_W), on, off)


def _loop_stiffness_w_per_k(loop: Loop) -> float:
    """Largest d(heat)/dT a loop gives its valve's node: open conductance plus valve slope."""
    _, per_k, bypass_w_per_k, open_w_per_k = loop
    return open_w_per_k + (open_w_per_k - bypass_w_per_k) * per_k * VALVE_DELTA_K


def _valve(temp_c: float, loop: Loop) -> float:
    """Conductance (W/K) of ``loop`` with its valve at ``temp_c``."""
    closed_c, per_k, bypass_w_per_k, open_w_per_k = loop
    x = (temp_c - closed_c) * per_k
    if x <= 0.0:
        return bypass_w_per_k
    if x >= 1.0:
        return open_w_per_k
    return bypass_w_per_k + (open_w_per_k - bypass_w_per_k) * x


def _radiate(temp_k: float, capacity_over_h: float, heat_in_w: float, k: float, sink4: float) -> float:
    """Backward-Euler temperature (K) of a radiating node after one step.

    Solves ``C/h (T' - T) = heat_in - k (T'^4 - T_sink^4)`` by Newton's method from ``T``:
    one iteration in a steady state, at most :data:`MAX_NEWTON_ITERATIONS` after a jump.
    """
    target = heat_in_w + k * sink4
    new_k = temp_k
    for _ in range(MAX_NEWTON_ITERATIONS):
        cube = new_k * new_k * new_k
        residual = capacity_over_h * (new_k - temp_k) + k * cube * new_k - target
        step = residual / (capacity_over_h + 4.0 * k * cube)
        new_k -= step
        if -NEWTON_TOLERANCE_K < step < NEWTON_TOLERANCE_K:
            break
    return new_k


class ThermalModel(BoardModel):
    """Five lumped thermal nodes, two radiators, heaters and thermostats (module docstring)."""

    #: Operating limits (C) behind the board's ``<node>_temp_out_of_limits`` fault flags.
    LIMITS_C: Final = {
        "battery": (0.0, 40.0),
        "avionics": (-20.0, 50.0),
        "reactor_radiator": (-math.inf, 100.0),
    }
    #: Longest substep (s).
    MAX_SUBSTEP_S: Final = 60.0
    NODES: Final = ("battery", "avionics", "habitat", "radiator", "reactor_radiator")

    def __init__(
        self,
        *,
        battery_capacity_j_per_k: float = 750_000.0,
        avionics_capacity_j_per_k: float = 50_000.0,
        habitat_capacity_j_per_k: float = 2_000_000.0,
        radiator_capacity_j_per_k: float = 100_000.0,
        reactor_radiator_capacity_j_per_k: float = 200_000.0,
        battery_radiator_w_per_k: float = 3.0,
        battery_avionics_w_per_k: float = 2.0,
        avionics_radiator_w_per_k: float = 8.0,
        avionics_loop_bypass_w_per_k: float = 1.0,
        avionics_loop_closed_c: float = 5.0,
        avionics_loop_open_c: float = 25.0,
        habitat_radiator_w_per_k: float = 400.0,
        habitat_loop_bypass_w_per_k: float = 3.0,
        habitat_loop_closed_c: float = 19.0,
        habitat_loop_open_c: float = 23.0,
        habitat_leak_w_per_k: float = 5.0,
        radiator_area_m2: float = 40.0,
        reactor_radiator_area_m2: float = 51.2,
        emissivity: float = 0.9,
        absorptance: float = 0.15,
        radiator_solar_view_factor: float = 0.0,
        reactor_radiator_solar_view_factor: float = VERTICAL_PANEL_VIEW_FACTOR,
        radiator_heat_pipes: int = 8,
        reactor_radiator_heat_pipes: int = 16,
        avionics_dissipation_w: float = 400.0,
        heater_battery_w: float = 400.0,
        heater_avionics_w: float = 200.0,
        heater_habitat_w: float = 2000.0,
        battery_survival_heater_w: float = 400.0,
        battery_survival_on_c: float = 0.0,
        battery_survival_off_c: float = 5.0,
        avionics_survival_heater_w: float = 100.0,
        avionics_survival_on_c: float = -35.0,
        avionics_survival_off_c: float = -30.0,
        initial_battery_temp_c: float = 20.0,
        initial_avionics_temp_c: float = 15.0,
        initial_habitat_temp_c: float = 21.0,
        initial_radiator_temp_c: float = -20.0,
        initial_reactor_radiator_temp_c: float = -20.0,
    ) -> None:
        self.heater_rating_w = {
            "heater_battery": checked_number("heater_battery_w", heater_battery_w, 0.0, MAX_POWER_W),
            "heater_avionics": checked_number("heater_avionics_w", heater_avionics_w, 0.0, MAX_POWER_W),
            "heater_habitat": checked_number("heater_habitat_w", heater_habitat_w, 0.0, MAX_POWER_W),
        }
        super().__init__(
            description(
                "thermal",
                (
                    number("battery_temp_c", "C", -150.0, 150.0, "battery pack"),
                    number("avionics_temp_c", "C", -150.0, 150.0, "avionics box"),
                    number("radiator_temp_c", "C", -200.0, 150.0, "main radiator"),
                    number("habitat_temp_c", "C", -150.0, 150.0, "habitat air"),
                    number(
                        "reactor_radiator_temp_c", "C", -200.0, 400.0, "reactor radiator (converter cold end)"
                    ),
                    number("reactor_radiator_heat_w", "W", 0.0, 200_000.0, "heat into the reactor radiator"),
                    number("heater_power_w", "W", 0.0, 1e6, "heater draw, survival heaters included"),
                    flag("survival_heater_battery", "hardware survival thermostat: battery heater on"),
                    flag("survival_heater_avionics", "hardware survival thermostat: avionics heater on"),
                ),
                tuple(
                    duty(name, f"{name[7:]} heater, {rating:g} W at duty 1")
                    for name, rating in self.heater_rating_w.items()
                ),
            )
        )
        self.capacity_j_per_k = {
            node: _positive(f"{node}_capacity_j_per_k", value)
            for node, value in (
                ("battery", battery_capacity_j_per_k),
                ("avionics", avionics_capacity_j_per_k),
                ("habitat", habitat_capacity_j_per_k),
                ("radiator", radiator_capacity_j_per_k),
                ("reactor_radiator", reactor_radiator_capacity_j_per_k),
            )
        }
        self._g_br = checked_number("battery_radiator_w_per_k", battery_radiator_w_per_k, 0.0, MAX_W_PER_K)
        self._g_ba = checked_number("battery_avionics_w_per_k", battery_avionics_w_per_k, 0.0, MAX_W_PER_K)
        self._g_leak = checked_number("habitat_leak_w_per_k", habitat_leak_w_per_k, 0.0, MAX_W_PER_K)
        #: Loop valves: (closed_c, 1 / (open_c - closed_c), bypass W/K, open W/K).
        self._avionics_loop = _loop(
            "avionics",
            "avionics_radiator_w_per_k",
            avionics_radiator_w_per_k,
            avionics_loop_bypass_w_per_k,
            avionics_loop_closed_c,
            avionics_loop_open_c,
        )
        self._habitat_loop = _loop(
            "habitat",
            "habitat_radiator_w_per_k",
            habitat_radiator_w_per_k,
            habitat_loop_bypass_w_per_k,
            habitat_loop_closed_c,
            habitat_loop_open_c,
        )
        self.area_m2 = {
            "radiator": checked_number("radiator_area_m2", radiator_area_m2, 0.0, MAX_AREA_M2),
            "reactor_radiator": checked_number(
                "reactor_radiator_area_m2", reactor_radiator_area_m2, 0.0, MAX_AREA_M2
            ),
        }
        self.emissivity = checked_number("emissivity", emissivity, 0.0, 1.0, low_inclusive=False)
        self.absorptance = checked_number("absorptance", absorptance, 0.0, 1.0)
        self._view_factor = {
            "radiator": checked_number("radiator_solar_view_factor", radiator_solar_view_factor, 0.0, 1.0),
            "reactor_radiator": checked_number(
                "reactor_radiator_solar_view_factor", reactor_radiator_solar_view_factor, 0.0, 1.0
            ),
        }
        self.heat_pipes = {
            "radiator": _count("radiator_heat_pipes", radiator_heat_pipes, 1, MAX_HEAT_PIPES),
            "reactor_radiator": _count(
                "reactor_radiator_heat_pipes", reactor_radiator_heat_pipes, 1, MAX_HEAT_PIPES
            ),
        }
        self.avionics_dissipation_w = checked_number(
            "avionics_dissipation_w", avionics_dissipation_w, 0.0, MAX_POWER_W
        )
        #: Hardware survival thermostats: node -> (heater W, on below C, off above C).
        self._survival = {
            "battery": _thermostat(
                "battery", battery_survival_heater_w, battery_survival_on_c, battery_survival_off_c
            ),
            "avionics": _thermostat(
                "avionics", avionics_survival_heater_w, avionics_survival_on_c, avionics_survival_off_c
            ),
        }
        self._battery_c = _temperature("initial_battery_temp_c", initial_battery_temp_c)
        self._avionics_c = _temperature("initial_avionics_temp_c", initial_avionics_temp_c)
        self._habitat_c = _temperature("initial_habitat_temp_c", initial_habitat_temp_c)
        self._radiator_c = _temperature("initial_radiator_temp_c", initial_radiator_temp_c)
        self._reactor_radiator_c = _temperature(
            "initial_reactor_radiator_temp_c", initial_reactor_radiator_temp_c
        )
        # The conduction is explicit: a substep of at most half the shortest C / sum(G) keeps
        # every exchange monotonic (radiation is implicit and sets no limit). A valve's node
        # also sees its valve's slope times the temperature difference across the loop.
        capacity = self.capacity_j_per_k
        conduction_w_per_k = {
            "battery": self._g_br + self._g_ba,
            "avionics": self._g_ba + _loop_stiffness_w_per_k(self._avionics_loop),
            "habitat": _loop_stiffness_w_per_k(self._habitat_loop) + self._g_leak,
            "radiator": self._g_br + self._avionics_loop[3] + self._habitat_loop[3],
        }
        self.max_substep_s = min(
            [self.MAX_SUBSTEP_S, *(0.5 * capacity[n] / g for n, g in conduction_w_per_k.items() if g > 0.0)]
        )
        self._duty = dict.fromkeys(self.heater_rating_w, 0.0)
        self._survival_on = {"battery": False, "avionics": False}
        self._damage = dict.fromkeys(RADIATORS, 0.0)
        self._failed_pipes = dict.fromkeys(RADIATORS, 0)
        self._radiation_w_per_k4 = dict.fromkeys(RADIATORS, 0.0)
        self._absorbing_m2 = dict.fromkeys(RADIATORS, 0.0)
        self._update_radiators()
        self._waste_heat_w = 0.0

    # channels ---------------------------------------------------------------------

    def read(self) -> dict[str, Value]:
        """Every node temperature (C), the reactor radiator's heat input, heater draw, thermostats."""
        return {
            "battery_temp_c": self._battery_c,
            "avionics_temp_c": self._avionics_c,
            "radiator_temp_c": self._radiator_c,
            "habitat_temp_c": self._habitat_c,
            "reactor_radiator_temp_c": self._reactor_radiator_c,
            "reactor_radiator_heat_w": self._waste_heat_w,
            "heater_power_w": self.heater_power_w,
            "survival_heater_battery": self._survival_on["battery"],
            "survival_heater_avionics": self._survival_on["avionics"],
        }

    def temperatures_c(self) -> dict[str, float]:
        """Every node temperature (C), by node name."""
        return {
            "battery": self._battery_c,
            "avionics": self._avionics_c,
            "habitat": self._habitat_c,
            "radiator": self._radiator_c,
            "reactor_radiator": self._reactor_radiator_c,
        }

    def faults(self) -> frozenset[str]:
        """``<node>_temp_out_of_limits`` for a node outside :attr:`LIMITS_C`."""
        temps = self.temperatures_c()
        return frozenset(
            f"{node}_temp_out_of_limits"
            for node, (low, high) in self.LIMITS_C.items()
            if not low <= temps[node] <= high
        )

    @property
    def heater_power_w(self) -> float:
        """Electric power the heaters draw now (W), survival heaters included."""
        rating = self.heater_rating_w
        total = sum(rating[n] * d for n, d in self._duty.items())
        for node, on in self._survival_on.items():
            if on:
                total += self._survival[node][0]
        return total

    def effective_area_m2(self, radiator: str) -> float:
        """Area of ``radiator`` that still radiates (m2), after damage and failed heat pipes."""
        return self._effective_fraction(radiator) * self.area_m2[radiator]

    # fault hooks ------------------------------------------------------------------

    def damage_radiator(self, fraction: float, radiator: str = "reactor_radiator") -> None:
        """Fault injection: ``fraction`` of ``radiator``'s area is lost (0 repairs it).

        ``radiator`` is ``reactor_radiator`` or ``radiator`` (the main one). Raises
        :class:`ConfigError` for an unknown radiator or a fraction outside [0, 1].
        """
        self._check_radiator(radiator)
        self._damage[radiator] = checked_number("fraction", fraction, 0.0, 1.0)
        self._update_radiators()

    def fail_heat_pipes(self, count: int, radiator: str = "reactor_radiator") -> None:
        """Fault injection: ``count`` of ``radiator``'s heat pipes have failed (0 repairs them).

        A failed heat pipe's fins no longer get heat: the radiator loses ``count / pipes`` of
        its area. Raises :class:`ConfigError` for an unknown radiator or a count outside
        [0, pipes].
        """
        self._check_radiator(radiator)
        self._failed_pipes[radiator] = _count("count", count, 0, self.heat_pipes[radiator])
        self._update_radiators()

    def _check_radiator(self, radiator: str) -> None:
        if radiator not in RADIATORS:
            msg = f"radiator={radiator!r} must be one of {', '.join(RADIATORS)}"
            raise ConfigError(msg)

    def _effective_fraction(self, radiator: str) -> float:
        working = 1.0 - self._failed_pipes[radiator] / self.heat_pipes[radiator]
        return (1.0 - self._damage[radiator]) * working

    def _update_radiators(self) -> None:
        for radiator in RADIATORS:
            area = self.effective_area_m2(radiator)
            self._radiation_w_per_k4[radiator] = self.emissivity * STEFAN_BOLTZMANN * area
            self._absorbing_m2[radiator] = self.absorptance * self._view_factor[radiator] * area

    # physics ----------------------------------------------------------------------

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Integrate the node temperatures over ``dt_s`` (see the module docstring)."""
        if self._pending:
            for name, value in self._take_pending().items():
                self._duty[name] = float(value)
        self._waste_heat_w = waste_w = max(0.0, coupling.reactor_waste_heat_w)
        if dt_s > 0.0:
            self._integrate(dt_s, env, coupling.battery_heat_w, coupling.habitat_gain_w, waste_w)
        coupling.heater_power_w = self.heater_power_w
        coupling.battery_temp_c = self._battery_c
        coupling.reactor_radiator_temp_c = self._reactor_radiator_c
        self._time_s = env.time_s

    def _integrate(
        self, dt_s: float, env: Environment, battery_heat_w: float, habitat_gain_w: float, waste_w: float
    ) -> None:
        count, h = substeps(dt_s, self.max_substep_s)
        sink_k = env.sink_temp_k
        sink_c = sink_k - KELVIN
        sink2 = sink_k * sink_k
        sink4 = sink2 * sink2
        sun_w_m2 = SOLAR_CONSTANT_W_M2 * env.lit_fraction * math.cos(math.radians(env.sun_elevation_deg))
        k_r = self._radiation_w_per_k4["radiator"]
        k_x = self._radiation_w_per_k4["reactor_radiator"]
        solar_r = self._absorbing_m2["radiator"] * sun_w_m2
        heat_x = waste_w + self._absorbing_m2["reactor_radiator"] * sun_w_m2
        capacity = self.capacity_j_per_k
        h_cb = h / capacity["battery"]
        h_ca = h / capacity["avionics"]
        h_ch = h / capacity["habitat"]
        cr_h = capacity["radiator"] / h
        cx_h = capacity["reactor_radiator"] / h
        rating = self.heater_rating_w
        duty_ = self._duty
        heater_b = rating["heater_battery"] * duty_["heater_battery"] + battery_heat_w
        heater_a = rating["heater_avionics"] * duty_["heater_avionics"] + self.avionics_dissipation_w
        gain_h = rating["heater_habitat"] * duty_["heater_habitat"] + habitat_gain_w
        g_br, g_ba, g_leak = self._g_br, self._g_ba, self._g_leak
        avionics_loop, habitat_loop = self._avionics_loop, self._habitat_loop
        start_s = env.time_s - dt_s
        tb, ta, th, tr = self._battery_c, self._avionics_c, self._habitat_c, self._radiator_c
        for i in range(count):
            survival_b, survival_a = self._thermostats(tb, ta, start_s + i * h)
            q_br = g_br * (tb - tr)
            q_ba = g_ba * (tb - ta)
            q_ar = _valve(ta, avionics_loop) * (ta - tr)
            q_hr = _valve(th, habitat_loop) * (th - tr)
            tb += h_cb * (heater_b + survival_b - q_br - q_ba)
            ta += h_ca * (heater_a + survival_a + q_ba - q_ar)
            th += h_ch * (gain_h - q_hr - g_leak * (th - sink_c))
            tr = _radiate(tr + KELVIN, cr_h, q_br + q_ar + q_hr + solar_r, k_r, sink4) - KELVIN
        self._battery_c, self._avionics_c, self._habitat_c, self._radiator_c = tb, ta, th, tr
        # The reactor radiator exchanges heat with nothing else: one implicit step per substep.
        tx = self._reactor_radiator_c + KELVIN
        for _ in range(count):
            tx = _radiate(tx, cx_h, heat_x, k_x, sink4)
        self._reactor_radiator_c = tx - KELVIN

    def _thermostats(self, battery_c: float, avionics_c: float, time_s: float) -> tuple[float, float]:
        """Run the hardware survival thermostats; return their heater powers (W)."""
        on = self._survival_on
        battery_w, battery_on_c, battery_off_c = self._survival["battery"]
        avionics_w, avionics_on_c, avionics_off_c = self._survival["avionics"]
        if on["battery"]:
            if battery_c > battery_off_c:
                self._switch_survival("battery", False, battery_c, time_s)
        elif battery_c < battery_on_c:
            self._switch_survival("battery", True, battery_c, time_s)
        if on["avionics"]:
            if avionics_c > avionics_off_c:
                self._switch_survival("avionics", False, avionics_c, time_s)
        elif avionics_c < avionics_on_c:
            self._switch_survival("avionics", True, avionics_c, time_s)
        return (battery_w if on["battery"] else 0.0, avionics_w if on["avionics"] else 0.0)

    def _switch_survival(self, node: str, on: bool, temp_c: float, time_s: float) -> None:
        self._survival_on[node] = on
        severity = "warning" if on else "info"
        self._emit("survival_heater", severity, time_s, node=node, on=on, **{f"{node}_temp_c": temp_c})
