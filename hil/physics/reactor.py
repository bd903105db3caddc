"""The reactor board: point kinetics, feedback, decay heat, heat removal, rod drive, protection.

A Kilopower/Fission-Surface-Power class core of 40 kWt behind Stirling converters of
25 % (about 10 kWe), as lumped nodes. Every figure below is a constructor keyword
(``[processes.simulator.params.reactor]``) with the figure as its default.

Kinetics. Six-group point kinetics with Keepin's U-235 fast-fission groups (lambda_i =
0.0127, 0.0317, 0.115, 0.311, 1.40, 3.87 /s; a_i = 0.038, 0.213, 0.188, 0.407, 0.128,
0.026), beta_eff 0.0069 and a prompt generation time Lambda = 1e-6 s. In dollar units,
with n the fission power over rated, scaled precursors D_i (D_i = a_i n at equilibrium)
and L = Lambda / beta_eff::

    L dn/dt  = (rho - 1) n + sum_i D_i + L q
    dD_i/dt  = lambda_i (a_i n - D_i)

Each step h (rho constant over the step, e_i = exp(-lambda_i h)) is implicit Euler on n
with the precursors integrated exactly with n held at its new value::

    n'   = (L n / h + sum_i D_i e_i + L q) / (L / h - rho + sum_i a_i e_i)
    D_i' = D_i e_i + a_i n' (1 - e_i)

L-stable for the stiff prompt mode, exact at steady state, the prompt jump as Lambda
-> 0. The source is L q = 1e-9 (a subcritical core settles at n = 1e-9 / -rho).
Reactivity is capped at $0.90, below prompt critical (the board trips on period or
power long before), and a step is halved while its denominator is within 5 % of its
stability edge, so n stays positive and finite.

Reactivity (dollars) = excess - rod + fuel feedback + reflector feedback + external.
Excess $1.80 cold (-20 C) with the rod out; one B4C rod worth $7.00 on an S-curve,
rod_in(x) = 1 - (x - sin(2 pi x) / 2 pi) for withdrawal x in [0, 1]; fuel -0.184
cent/K (fast: the fuel node); reflector +0.0585 cent/K (slow: the reflector relaxes
with a 2 h time constant towards 60 K above cold at rated thermal power, from gamma and
neutron heating). The cold core is $5.20 subcritical with the rod in and critical near
rod 0.63; at 800 C and rated power it is critical near rod 0.80. At a fixed rod the
fuel settles where the feedback cancels the rod, whatever the power, but for the
reflector: from full power to 10 % it settles about 17 K cooler, over hours.

Decay heat. Way-Wigner, P_d/P_0 = 0.0622 [t^-0.2 - (t + T)^-0.2] (t after shutdown, T
operating time), as eight exponential groups fitted to 0.0622 t^-0.2 and fed by the
fission power, dH_j/dt = (A_j P_fission - H_j) / tau_j, so superposition gives the
finite-T curve. The groups hold 7.2 % of the fission power at equilibrium; the rest is
released promptly, so at steady state the thermal power equals the fission power.
After long operation: 6.2 % at 1 s, 2.7 % at 1 min, 1.2 % at 1 h.

Heat. One fuel node (20 kJ/K, losing 1 W/K to its -20 C surroundings) heated by prompt
plus decay heat and cooled through eight sodium heat pipes, whose capacity rises from
nothing at 400 C to 50 kW (all eight) at 800 C and 1.2 times that above; a failed pipe
carries nothing. Four Stirling converters, rated together 9.8 kWe (25 % of the 39.2 kW
left of 40 kWt after the losses at 800 C), draw::

    heat = min(setpoint / efficiency, heat-pipe capacity, converter intake)

The efficiency is a fixed fraction of Carnot between the fuel (hot end) and
``Coupling.reactor_radiator_temp_c`` (cold end): 25 % at 800 C / 80 C, at most 30 %.
The converter intake is their rated heat in proportion to the hot-to-cold temperature
difference (rated at 800 C / 80 C), so a warming core is not loaded to full heat before
it is hot. The setpoint follows the demand ``Coupling.reactor_demand_w`` (clamped to
10 %..100 % of the rating: the converters keep running at a tenth of their rating and
their controller dumps what the bus does not take into a parasitic load) at 1/900 of
itself per second, easing in near its goal, and rises only while the hot end holds within
5 K of where it was when the load began to rise; so the fuel moves by less than about 15 K
on a load change. Until the power board first sets a demand above zero, the demand is the
rating. The converters deliver ``min(output, demand)`` to ``Coupling.reactor_electric_w``;
the heat they draw less what they deliver goes to ``Coupling.reactor_waste_heat_w``.
With a fixed demand the core settles where feedback cancels the rod: the power follows
the load with no rod motion (rated: 40 kWt, 9.8 kWe, 800 C).

Rod. Drive 0.005 of travel per second; on a trip the rod goes in at a full stroke per
1.5 s. A stuck rod (:meth:`ReactorModel.stick_rod`) ignores its targets and a trip
cannot insert it: the negative fuel coefficient alone then limits the core (a loss of
every converter at rated power with the rod stuck out peaks the fuel near 960 C, above
the 850 C design basis, before it settles near 780 C on decay heat and losses).

Protection, on the board and independent of flight software: trip on fission power above
110 % of rated, fuel above 840 C, period shorter than 10 s in the power range (above
0.1 % of rated), loss of the heat sink (no converter running or no heat pipe) in the
power range, a manual ``scram``, and loss of the flight-software heartbeat (no SYNC from
the reactor's own client for more than ``heartbeat_timeout_s`` of board time, by
default the larger of 10 s and three frames, counted from the first SYNC). Conditions
are checked after every integration step: at most 0.2 s while anything moves (the
rod, a period shorter than 300 s, a fault changing, a heartbeat deadline in the frame);
one step of up to 1 s per frame when quiet at power (rod still, period negative or over
300 s, power under 105 %, fuel 10 K under its trip: nothing can reach a trip level
within the step); up to 30 s when shut down (under 1e-6 of rated and $0.50
subcritical). A trip latches: rod in, EVENT ``trip`` with the reason, rod withdrawal
refused, until a ``trip_reset`` command finds every trip condition clear. The period
meter filters the logarithmic rate of the fission power with a 5 s time constant.

Start state (keyword ``start``): ``cold`` (default: rod in, -20 C, source level),
``critical`` (cold, the rod where the core holds 1e-6 of rated power, precursors in
equilibrium: a zero-power physics state) or ``power`` (rated power at 800 C, the rod at
its critical position, precursors, decay heat and reflector in equilibrium after long
operation, converters at their rating).

A sensible start-up from cold (about 75 min): with heartbeats flowing, drive the rod to
0.55 (still subcritical); then every 30 s step it out, by 0.005 below 600 C and 0.002
above, while the fuel is below 790 C, the period longer than 100 s (or negative) and the
fission power below 40 kW; step it in by 0.005 when the fuel is above 810 C or the power
above 42 kW. Criticality comes near rod 0.63; the core settles near rod 0.80, 795 C,
40 kWt and 9.7 kWe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from fsw.board import Actuator, BoardDescription, Channel, Value, ValueType
from fsw.errors import ConfigError
from hil.physics.environment import Environment
from hil.physics.model import (
    KELVIN,
    BoardModel,
    Coupling,
    description,
    flag,
    number,
    require,
    substeps,
    switch,
)

#: Keepin's six delayed-neutron groups for U-235 fast fission: decay constants (1/s).
KEEPIN_DECAY_PER_S: Final = (0.0127, 0.0317, 0.115, 0.311, 1.40, 3.87)
#: ... and their relative abundances (sum 1).
KEEPIN_ABUNDANCE: Final = (0.038, 0.213, 0.188, 0.407, 0.128, 0.026)

#: Way-Wigner coefficient of the decay-heat curve P_d/P_0 = 0.0622 t^-0.2 (t in s).
WAY_WIGNER_COEFFICIENT: Final = 0.0622
#: That curve (infinite operation) as exponential groups: (share of the operating power,
#: time constant s). Fitted offline: eight groups, amplitudes by non-negative least squares
#: on the relative error at 800 log-spaced times from 1 s to 1e7 s, time constants by
#: Levenberg-Marquardt over their logarithms, then iteratively reweighted towards the
#: worst errors. Largest relative error 1.2 % over 1 s..1e7 s (1.0 % over 10 s..1e7 s);
#: values rounded to four figures.
DECAY_HEAT_GROUPS: Final = (
    (2.5600e-02, 2.0377e00),
    (1.6978e-02, 1.9010e01),
    (1.0756e-02, 1.8034e02),
    (6.8813e-03, 1.7042e03),
    (4.3856e-03, 1.6179e04),
    (2.7774e-03, 1.5220e05),
    (1.8014e-03, 1.3942e06),
    (3.1449e-03, 4.1361e07),
)

START_STATES: Final = ("cold", "critical", "power")


def way_wigner_fraction(after_s: float, operated_s: float = math.inf) -> float:
    """Way-Wigner decay heat over operating power, ``after_s`` after a shutdown that ended
    ``operated_s`` of operation at constant power: 0.0622 [t^-0.2 - (t + T)^-0.2].

    Raises :class:`ValueError` for ``after_s <= 0`` (the formula is singular there).
    """
    if after_s <= 0.0:
        msg = f"after_s must be positive, got {after_s}"
        raise ValueError(msg)
    tail = 0.0 if math.isinf(operated_s) else math.pow(after_s + operated_s, -0.2)
    return WAY_WIGNER_COEFFICIENT * (math.pow(after_s, -0.2) - tail)


class PointKinetics:
    """Six-group point kinetics in dollar units with an L-stable step (see the module docstring).

    ``n`` is the fission power over rated; ``precursors`` the scaled concentrations D_i
    (equal to a_i n at equilibrium). ``source`` is L q, the source as a power level per
    dollar of subcriticality.
    """

    #: Reactivity cap (dollars): below prompt critical.
    MAX_REACTIVITY_DOLLARS: Final = 0.90
    #: A step is halved when its denominator is within this share of its stability edge.
    EDGE_MARGIN: Final = 0.05

    def __init__(
        self,
        beta_eff: float,
        generation_time_s: float,
        decay_per_s: Sequence[float] = KEEPIN_DECAY_PER_S,
        abundance: Sequence[float] = KEEPIN_ABUNDANCE,
        source: float = 1e-9,
    ) -> None:
        self.prompt_time_s = generation_time_s / beta_eff
        self.decay_per_s = tuple(decay_per_s)
        self.abundance = tuple(abundance)
        self.source = source
        self.n = 0.0
        self.precursors = [0.0 for _ in self.abundance]
        self._cache: dict[float, tuple[tuple[float, ...], tuple[float, ...], float]] = {}

    def reset(self, n: float) -> None:
        """Put the kinetics in equilibrium at power level ``n``."""
        self.n = n
        self.precursors = [a * n for a in self.abundance]

    def _factors(self, h: float) -> tuple[tuple[float, ...], tuple[float, ...], float]:
        cached = self._cache.get(h)
        if cached is None:
            decay = tuple(math.exp(-lam * h) for lam in self.decay_per_s)
            gain = tuple(a * (1.0 - e) for a, e in zip(self.abundance, decay, strict=True))
            weight = sum(a * e for a, e in zip(self.abundance, decay, strict=True))
            if len(self._cache) > 16:
                self._cache.clear()
            cached = self._cache[h] = (decay, gain, weight)
        return cached

    def step(self, h: float, rho: float) -> float:
        """Advance ``h`` seconds (> 0) at reactivity ``rho`` (dollars, capped); return the new n."""
        rho = min(rho, self.MAX_REACTIVITY_DOLLARS)
        decay, gain, weight = self._factors(h)
        lead = self.prompt_time_s / h
        denominator = lead - rho + weight
        if denominator < self.EDGE_MARGIN * (lead + weight):
            self.step(0.5 * h, rho)
            return self.step(0.5 * h, rho)
        d = self.precursors
        carried = lead * self.n + self.source
        for di, ei in zip(d, decay):  # noqa: B905 - same length by construction, hot path
            carried += di * ei
        n = carried / denominator
        self.precursors = [di * ei + n * gi for di, ei, gi in zip(d, decay, gain)]  # noqa: B905
        self.n = n
        return n


class DecayHeat:
    """Fission-product decay heat as exponential groups fed by the fission power.

    ``groups`` are (share of the operating power, time constant s); at equilibrium group j
    holds ``share_j * P``. ``total_w`` is their sum (W).
    """

    def __init__(self, groups: Sequence[tuple[float, float]] = DECAY_HEAT_GROUPS) -> None:
        self.shares = tuple(share for share, _ in groups)
        self.time_constants_s = tuple(tau for _, tau in groups)
        #: Share of the fission power released promptly (the rest goes through the groups).
        self.prompt_fraction = 1.0 - sum(self.shares)
        self.group_w = [0.0 for _ in self.shares]
        self.total_w = 0.0
        self._cache: dict[float, tuple[tuple[float, ...], tuple[float, ...]]] = {}

    def equilibrate(self, fission_w: float) -> None:
        """Set every group to its equilibrium at ``fission_w`` (after infinite operation)."""
        self.group_w = [share * fission_w for share in self.shares]
        self.total_w = sum(self.group_w)

    def step(self, h: float, fission_w: float) -> float:
        """Advance ``h`` seconds with ``fission_w`` held; return the total decay heat (W)."""
        cached = self._cache.get(h)
        if cached is None:
            keep = tuple(math.exp(-h / tau) for tau in self.time_constants_s)
            feed = tuple(share * (1.0 - k) for share, k in zip(self.shares, keep, strict=True))
            if len(self._cache) > 16:
                self._cache.clear()
            cached = self._cache[h] = (keep, feed)
        keep, feed = cached
        self.group_w = [g * k + fission_w * f for g, k, f in zip(self.group_w, keep, feed)]  # noqa: B905
        self.total_w = total = sum(self.group_w)
        return total


class ReactorModel(BoardModel):
    """Kilopower-class reactor with board-level protection (see the module docstring).

    Raises :class:`ConfigError` naming the keyword for a bad figure or start state.
    """

    TRIP_POWER_FRACTION: Final = 1.10
    TRIP_FUEL_TEMP_C: Final = 840.0
    TRIP_PERIOD_S: Final = 10.0
    POWER_RANGE_FRACTION: Final = 1e-3
    SOURCE_LEVEL: Final = 1e-9
    #: Power level of the ``critical`` start state (fraction of rated).
    ZERO_POWER_FRACTION: Final = 1e-6
    #: Heat-pipe capacity above the nominal fuel temperature saturates at this factor.
    HEAT_PIPE_MAX_FACTOR: Final = 1.2
    #: Converter efficiency ceiling, as a factor of the nominal efficiency.
    EFFICIENCY_MAX_FACTOR: Final = 1.2
    #: The converter ramp is relative to the load, but never slower than from this load (W).
    MIN_RAMP_BASE_W: Final = 100.0
    #: Near its goal the ramp eases in: at most this many times the remaining gap per ramp time.
    RAMP_EASING: Final = 2.0
    #: The converters raise their load only while the hot end stays within this of where it
    #: was when the load began to rise (K).
    CONVERTER_DIP_K: Final = 5.0
    PERIOD_METER_TIME_CONSTANT_S: Final = 5.0
    STEADY_PERIOD_S: Final = 1e9
    #: Integration steps: while anything moves, when quiet at power, when shut down.
    MAX_SUBSTEP_S: Final = 0.2
    QUIET_STEP_S: Final = 1.0
    SHUTDOWN_STEP_S: Final = 30.0
    #: Quiet at power: rod still, converters at their demand, no fault changed, period
    #: negative or longer than QUIET_PERIOD_S, margins to the power and fuel trips.
    QUIET_PERIOD_S: Final = 300.0
    QUIET_MAX_POWER_FRACTION: Final = 1.05
    QUIET_FUEL_MARGIN_K: Final = 10.0
    QUIET_MAX_REACTIVITY_DOLLARS: Final = 0.1
    #: Shut down: below this power and this far subcritical.
    SHUTDOWN_POWER_FRACTION: Final = 1e-6
    SHUTDOWN_REACTIVITY_DOLLARS: Final = -0.5

    def __init__(
        self,
        heartbeat_timeout_s: float = 10.0,
        start: str = "cold",
        rated_thermal_power_w: float = 40_000.0,
        beta_eff: float = 0.0069,
        generation_time_s: float = 1e-6,
        rod_worth_dollars: float = 7.0,
        excess_reactivity_dollars: float = 1.8,
        fuel_coefficient_cents_per_k: float = -0.184,
        reflector_coefficient_cents_per_k: float = 0.0585,
        reflector_rise_k: float = 60.0,
        reflector_time_constant_s: float = 7200.0,
        fuel_heat_capacity_j_per_k: float = 20_000.0,
        core_loss_w_per_k: float = 1.0,
        cold_temp_c: float = -20.0,
        nominal_fuel_temp_c: float = 800.0,
        heat_pipes: int = 8,
        heat_pipe_capacity_w: float = 50_000.0,
        heat_pipe_start_c: float = 400.0,
        converters: int = 4,
        converter_efficiency: float = 0.25,
        converter_cold_end_c: float = 80.0,
        rod_speed_per_s: float = 0.005,
        rod_insertion_time_s: float = 1.5,
        converter_ramp_time_s: float = 900.0,
        converter_min_share: float = 0.1,
    ) -> None:
        figures = {
            name: value for name, value in locals().items() if name not in ("self", "start", "__class__")
        }
        for name, value in figures.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = f"{name} must be a number, got {value!r}"
                raise ConfigError(msg)
        super().__init__(_description())
        checks = (
            ("heartbeat_timeout_s", heartbeat_timeout_s, heartbeat_timeout_s > 0.0, "positive"),
            ("rated_thermal_power_w", rated_thermal_power_w, rated_thermal_power_w > 0.0, "positive"),
            ("beta_eff", beta_eff, 0.0 < beta_eff < 0.1, "in (0, 0.1)"),
            ("generation_time_s", generation_time_s, 0.0 < generation_time_s < 1e-2, "in (0, 0.01)"),
            ("rod_worth_dollars", rod_worth_dollars, rod_worth_dollars > excess_reactivity_dollars,
             "above excess_reactivity_dollars (the rod must hold the core subcritical)"),
            ("excess_reactivity_dollars", excess_reactivity_dollars, excess_reactivity_dollars > 0.0,
             "positive"),
            ("fuel_coefficient_cents_per_k", fuel_coefficient_cents_per_k,
             fuel_coefficient_cents_per_k < 0.0, "negative (a self-regulating core)"),
            ("reflector_coefficient_cents_per_k", reflector_coefficient_cents_per_k,
             abs(reflector_coefficient_cents_per_k) < abs(fuel_coefficient_cents_per_k),
             "smaller in magnitude than the fuel coefficient"),
            ("reflector_rise_k", reflector_rise_k, reflector_rise_k >= 0.0, "zero or more"),
            ("reflector_time_constant_s", reflector_time_constant_s, reflector_time_constant_s > 0.0,
             "positive"),
            ("fuel_heat_capacity_j_per_k", fuel_heat_capacity_j_per_k, fuel_heat_capacity_j_per_k > 0.0,
             "positive"),
            ("core_loss_w_per_k", core_loss_w_per_k, core_loss_w_per_k >= 0.0, "zero or more"),
            ("cold_temp_c", cold_temp_c, -KELVIN < cold_temp_c < heat_pipe_start_c,
             "above absolute zero and below heat_pipe_start_c"),
            ("nominal_fuel_temp_c", nominal_fuel_temp_c, heat_pipe_start_c < nominal_fuel_temp_c < 1100.0,
             "between heat_pipe_start_c and 1100"),
            ("heat_pipes", heat_pipes, isinstance(heat_pipes, int) and heat_pipes >= 1, "an integer >= 1"),
            ("heat_pipe_capacity_w", heat_pipe_capacity_w, heat_pipe_capacity_w > 0.0, "positive"),
            ("heat_pipe_start_c", heat_pipe_start_c, heat_pipe_start_c < nominal_fuel_temp_c,
             "below nominal_fuel_temp_c"),
            ("converters", converters, isinstance(converters, int) and converters >= 1, "an integer >= 1"),
            ("converter_efficiency", converter_efficiency, 0.0 < converter_efficiency < 0.6, "in (0, 0.6)"),
            ("converter_cold_end_c", converter_cold_end_c,
             -KELVIN < converter_cold_end_c < nominal_fuel_temp_c,
             "above absolute zero and below nominal_fuel_temp_c"),
            ("rod_speed_per_s", rod_speed_per_s, 0.0 < rod_speed_per_s <= 1.0, "in (0, 1]"),
            ("rod_insertion_time_s", rod_insertion_time_s, rod_insertion_time_s > 0.0, "positive"),
            ("converter_ramp_time_s", converter_ramp_time_s, converter_ramp_time_s > 0.0, "positive"),
            ("converter_min_share", converter_min_share, 0.0 <= converter_min_share <= 1.0, "in [0, 1]"),
        )  # fmt: skip
        for name, value, ok, what in checks:
            require(name, float(value), ok, what)
        if start not in START_STATES:
            msg = f"start must be one of {', '.join(START_STATES)}, got {start!r}"
            raise ConfigError(msg)
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.rated_thermal_power_w = rated_thermal_power_w
        self.rod_worth_dollars = rod_worth_dollars
        self.excess_reactivity_dollars = excess_reactivity_dollars
        self.fuel_coefficient_dollars_per_k = fuel_coefficient_cents_per_k / 100.0
        self.reflector_coefficient_dollars_per_k = reflector_coefficient_cents_per_k / 100.0
        self.reflector_rise_k = reflector_rise_k
        self.reflector_time_constant_s = reflector_time_constant_s
        self.fuel_heat_capacity_j_per_k = fuel_heat_capacity_j_per_k
        self.core_loss_w_per_k = core_loss_w_per_k
        self.cold_temp_c = cold_temp_c
        self.nominal_fuel_temp_c = nominal_fuel_temp_c
        self.heat_pipes = heat_pipes
        self.heat_pipe_capacity_w = heat_pipe_capacity_w
        self.heat_pipe_start_c = heat_pipe_start_c
        self.converters = converters
        self.converter_efficiency = converter_efficiency
        self.rod_speed_per_s = rod_speed_per_s
        self.rod_trip_speed_per_s = 1.0 / rod_insertion_time_s
        self.converter_ramp_time_s = converter_ramp_time_s
        self.converter_min_share = converter_min_share
        #: Converter electric rating (all converters, W): nominal efficiency times what the
        #: core gives at rated power less its losses at the nominal fuel temperature.
        self.converter_rating_w = converter_efficiency * (
            rated_thermal_power_w - core_loss_w_per_k * (nominal_fuel_temp_c - cold_temp_c)
        )
        self._converter_heat_each_w = self.converter_rating_w / converter_efficiency / converters
        self._carnot_fraction = converter_efficiency / (
            1.0 - (converter_cold_end_c + KELVIN) / (nominal_fuel_temp_c + KELVIN)
        )
        self._max_efficiency = self.EFFICIENCY_MAX_FACTOR * converter_efficiency
        self._pipe_span_k = nominal_fuel_temp_c - heat_pipe_start_c
        self._nominal_span_k = nominal_fuel_temp_c - converter_cold_end_c

        self.kinetics = PointKinetics(beta_eff, generation_time_s, source=self.SOURCE_LEVEL)
        self.decay_heat = DecayHeat()
        self._cold_end_c = converter_cold_end_c
        self._reset_state()
        self._start(start)

    # start states -----------------------------------------------------------------

    def _reset_state(self) -> None:
        """The cold state: rod in, everything at the cold temperature, no decay heat."""
        self._rod = 0.0
        self._rod_target = 0.0
        self._rod_stuck = False
        self._external_dollars = 0.0
        self._fuel_c = self.cold_temp_c
        self._reflector_c = self.cold_temp_c
        self._thermal_w = 0.0
        self._heat_removed_w = 0.0
        self._electric_w = 0.0
        self._demand_w = self.converter_rating_w
        self._demand_set = False
        self._setpoint_w = self.converter_rating_w
        self._ramp_reference_c = self.cold_temp_c
        self._log_rate_per_s = 0.0
        self._converters_failed = 0
        self._all_converters_failed = False
        self._heat_pipes_failed = 0
        self._disturbed = True
        self._tripped = False
        self._trip_reason = ""
        self._last_heartbeat_s: float | None = None
        self._relax_cache: dict[float, tuple[float, float]] = {}

    def _start(self, start: str) -> None:
        if start == "cold":
            self.kinetics.reset(self.SOURCE_LEVEL / -self.reactivity_dollars)
        elif start == "critical":
            n = self.ZERO_POWER_FRACTION
            self._rod = self._rod_target = self.critical_rod_position(-self.SOURCE_LEVEL / n)
            self.kinetics.reset(n)
        else:
            self._fuel_c = self.nominal_fuel_temp_c
            self._reflector_c = self.cold_temp_c + self.reflector_rise_k
            self._rod = self._rod_target = self.critical_rod_position()
            self.kinetics.reset(1.0)
            self.decay_heat.equilibrate(self.rated_thermal_power_w)
            self._remove_heat()
        self._thermal_w = self._thermal_from(self.kinetics.n)

    def critical_rod_position(self, reactivity_dollars: float = 0.0) -> float:
        """Rod withdrawal (0..1) at which the core has ``reactivity_dollars`` at its present
        temperatures (0 or 1 if out of reach)."""
        low, high = 0.0, 1.0
        saved = self._rod
        try:
            for _ in range(60):
                self._rod = mid = 0.5 * (low + high)
                if self.reactivity_dollars < reactivity_dollars:
                    low = mid
                else:
                    high = mid
        finally:
            self._rod = saved
        return 0.5 * (low + high)

    # channels ---------------------------------------------------------------------

    @property
    def fission_power_w(self) -> float:
        """Fission power (W): the neutron power the instruments see, rated at steady state."""
        return self.kinetics.n * self.rated_thermal_power_w

    @property
    def decay_heat_w(self) -> float:
        """Fission-product decay heat (W)."""
        return self.decay_heat.total_w

    @property
    def thermal_power_w(self) -> float:
        """Heat released in the fuel (W): prompt fission heat plus decay heat."""
        return self._thermal_w

    @property
    def electric_power_w(self) -> float:
        """Converter electric output (W)."""
        return self._electric_w

    @property
    def heat_removed_w(self) -> float:
        """Heat the converters draw through the heat pipes (W)."""
        return self._heat_removed_w

    @property
    def core_loss_w(self) -> float:
        """Heat the fuel loses to its surroundings (W)."""
        return self.core_loss_w_per_k * (self._fuel_c - self.cold_temp_c)

    @property
    def fuel_temp_c(self) -> float:
        """Fuel temperature (C)."""
        return self._fuel_c

    @property
    def reflector_temp_c(self) -> float:
        """Reflector temperature (C)."""
        return self._reflector_c

    @property
    def rod_position(self) -> float:
        """Rod withdrawal, 0 (in) .. 1 (out)."""
        return self._rod

    @property
    def reactivity_dollars(self) -> float:
        """Total reactivity now (dollars), before the kinetics cap."""
        x = self._rod
        rod_in = 1.0 - (x - math.sin(2.0 * math.pi * x) / (2.0 * math.pi))
        return (
            self.excess_reactivity_dollars
            - self.rod_worth_dollars * rod_in
            + self.fuel_coefficient_dollars_per_k * (self._fuel_c - self.cold_temp_c)
            + self.reflector_coefficient_dollars_per_k * (self._reflector_c - self.cold_temp_c)
            + self._external_dollars
        )

    @property
    def period_s(self) -> float:
        """Reactor period from the period meter (s), +-1e9 when steady."""
        rate = self._log_rate_per_s
        if abs(rate) < 1.0 / self.STEADY_PERIOD_S:
            return self.STEADY_PERIOD_S
        return max(-self.STEADY_PERIOD_S, min(self.STEADY_PERIOD_S, 1.0 / rate))

    @property
    def converters_running(self) -> int:
        """Converters running."""
        return 0 if self._all_converters_failed else self.converters - self._converters_failed

    @property
    def heat_pipes_ok(self) -> int:
        """Heat pipes carrying heat."""
        return self.heat_pipes - self._heat_pipes_failed

    @property
    def demand_w(self) -> float:
        """The electric demand the converters follow (W): the rating until the power board sets one."""
        return self._demand_w

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
            "thermal_power_w": self._thermal_w,
            "electric_power_w": self._electric_w,
            "fuel_temp_c": self._fuel_c,
            "rod_position": self._rod,
            "period_s": self.period_s,
            "tripped": self._tripped,
            "converter_ok": self.converters_running == self.converters,
            "fission_power_w": self.fission_power_w,
            "decay_heat_w": self.decay_heat.total_w,
            "heat_removed_w": self._heat_removed_w,
            "reflector_temp_c": self._reflector_c,
            "converters_running": self.converters_running,
            "heat_pipes_ok": self.heat_pipes_ok,
        }

    def faults(self) -> frozenset[str]:
        """``tripped`` and ``trip:<reason>`` while latched, ``converter_failed`` (none running),
        ``converters_degraded``, ``heat_pipes_failed``, ``rod_stuck``, ``reactivity_inserted``,
        ``heartbeat_lost``."""
        flags: set[str] = set()
        if self._tripped:
            flags.update(("tripped", f"trip:{self._trip_reason}"))
        running = self.converters_running
        if running == 0:
            flags.add("converter_failed")
        elif running < self.converters:
            flags.add("converters_degraded")
        if self._heat_pipes_failed:
            flags.add("heat_pipes_failed")
        if self._rod_stuck:
            flags.add("rod_stuck")
        if self._external_dollars:
            flags.add("reactivity_inserted")
        if self._heartbeat_lost(self._time_s):
            flags.add("heartbeat_lost")
        return frozenset(flags)

    # inputs and fault hooks -------------------------------------------------------

    def heartbeat(self) -> None:
        """A SYNC from the reactor's own client; the first one arms the heartbeat watchdog."""
        self._last_heartbeat_s = self._time_s

    def fail_converter(self, failed: bool = True) -> None:
        """Fault injection: every Stirling converter stops (or they restart); the heat sink is lost."""
        self._all_converters_failed = failed
        self._disturbed = True

    def fail_converters(self, count: int) -> None:
        """Fault injection: ``count`` of the converters stop (0 restarts them).

        Raises :class:`ValueError` for a count outside 0..converters.
        """
        if not 0 <= count <= self.converters:
            msg = f"count must be in 0..{self.converters}, got {count}"
            raise ValueError(msg)
        self._converters_failed = count
        self._disturbed = True

    def fail_heat_pipes(self, count: int) -> None:
        """Fault injection: ``count`` of the heat pipes fail (0 restores them): capacity falls.

        Raises :class:`ValueError` for a count outside 0..heat_pipes.
        """
        if not 0 <= count <= self.heat_pipes:
            msg = f"count must be in 0..{self.heat_pipes}, got {count}"
            raise ValueError(msg)
        self._heat_pipes_failed = count
        self._disturbed = True

    def stick_rod(self, stuck: bool = True) -> None:
        """Fault injection: the rod drive jams where the rod is (or frees): targets are ignored
        and a trip cannot insert the rod."""
        self._rod_stuck = stuck
        self._disturbed = True

    def insert_reactivity(self, dollars: float) -> None:
        """Fault injection and tests: an external reactivity step of ``dollars`` (0 clears it),
        e.g. a reflector shift. Raises :class:`ValueError` outside -10..+1."""
        if not -10.0 <= dollars <= 1.0:
            msg = f"dollars must be in -10..1, got {dollars}"
            raise ValueError(msg)
        self._external_dollars = float(dollars)
        self._disturbed = True

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

    def _thermal_from(self, n: float) -> float:
        return self.decay_heat.prompt_fraction * n * self.rated_thermal_power_w + self.decay_heat.total_w

    def heat_pipe_capacity_now_w(self) -> float:
        """What the working heat pipes can carry at the present fuel temperature (W)."""
        share = (self._fuel_c - self.heat_pipe_start_c) / self._pipe_span_k
        share = min(self.HEAT_PIPE_MAX_FACTOR, max(0.0, share))
        return self.heat_pipe_capacity_w * share * self.heat_pipes_ok / self.heat_pipes

    def converter_efficiency_now(self) -> float:
        """Converter efficiency at the present hot (fuel) and cold (radiator) ends."""
        hot_k = self._fuel_c + KELVIN
        cold_k = self._cold_end_c + KELVIN
        if hot_k <= cold_k:
            return 0.0
        return min(self._max_efficiency, self._carnot_fraction * (1.0 - cold_k / hot_k))

    def converter_intake_w(self) -> float:
        """Most heat the running converters take at the present hot and cold ends (W): their
        rating at nominal, in proportion to the temperature difference."""
        span = (self._fuel_c - self._cold_end_c) / self._nominal_span_k
        return self._converter_heat_each_w * self.converters_running * max(0.0, span)

    def _heat_removal(self) -> tuple[float, float]:
        """(heat drawn, electric output) in W at the present state."""
        running = self.converters_running
        efficiency = self.converter_efficiency_now()
        if running == 0 or efficiency <= 0.0:
            return 0.0, 0.0
        drawn = min(self._setpoint_w / efficiency, self.heat_pipe_capacity_now_w(), self.converter_intake_w())
        return drawn, efficiency * drawn

    def _remove_heat(self) -> None:
        """Set the heat drawn and the electric power delivered (the surplus over the demand
        goes to the parasitic load and leaves with the waste heat)."""
        drawn_w, gross_w = self._heat_removal()
        self._heat_removed_w = drawn_w
        self._electric_w = min(gross_w, self._demand_w)

    def _converter_goal_w(self) -> float:
        return max(
            self.converter_min_share * self.converter_rating_w, min(self._demand_w, self.converter_rating_w)
        )

    def _take_demand(self, coupling: Coupling) -> None:
        demand = coupling.reactor_demand_w
        if not math.isfinite(demand) or demand < 0.0:
            demand = 0.0
        if demand > 0.0:
            self._demand_set = True
        if self._demand_set:
            self._demand_w = demand
        cold_end = coupling.reactor_radiator_temp_c
        if math.isfinite(cold_end):
            self._cold_end_c = cold_end

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Apply held commands, then advance kinetics, heat and protection over ``dt_s``.

        Steps of at most 0.2 s while anything moves (protection checked after each), one
        step of up to 1 s when quiet at power, up to 30 s when shut down.
        """
        pending = self._take_pending()
        start_s = self._time_s
        if "rod_target" in pending:
            self._rod_target = float(pending["rod_target"])
        if pending.get("trip_reset", False):
            self._try_reset(start_s)
        if pending.get("scram", False):
            self._protect(start_s, scram=True)
        self._take_demand(coupling)
        if dt_s > 0.0:
            count, h = substeps(dt_s, self._max_step_s(start_s + dt_s))
            for i in range(1, count + 1):
                self._substep(h, start_s + i * h)
        coupling.reactor_electric_w = self._electric_w
        coupling.reactor_waste_heat_w = self._heat_removed_w - self._electric_w
        self._time_s = env.time_s

    def _ramp_converters(self, h: float) -> None:
        """Move the converter setpoint towards its goal: down freely at the ramp rate, up at
        the ramp rate only while the hot end holds within CONVERTER_DIP_K of where it was
        when the load began to rise (the controller protects its hot-end temperature)."""
        goal_w = self._converter_goal_w()
        if goal_w <= self._setpoint_w:
            self._ramp_reference_c = self._fuel_c
            if goal_w == self._setpoint_w:
                return
        elif self._fuel_c < self._ramp_reference_c - self.CONVERTER_DIP_K:
            return
        gap_w = goal_w - self._setpoint_w
        base_w = max(self.MIN_RAMP_BASE_W, min(self._setpoint_w, self.RAMP_EASING * abs(gap_w)))
        ramp_w = h * base_w / self.converter_ramp_time_s
        self._setpoint_w += max(-ramp_w, min(ramp_w, gap_w))

    def _rod_goal(self) -> float:
        return 0.0 if self._tripped else self._rod_target

    def _max_step_s(self, end_s: float) -> float:
        """The longest integration step allowed now, for a step ending at ``end_s``."""
        disturbed, self._disturbed = self._disturbed, False
        if not self._tripped and self._heartbeat_lost(end_s):  # find the deadline to 0.2 s
            return self.MAX_SUBSTEP_S
        if disturbed or not (self._rod_stuck or self._rod == self._rod_goal()):
            return self.MAX_SUBSTEP_S
        n = self.kinetics.n
        rho = self.reactivity_dollars
        if n < self.SHUTDOWN_POWER_FRACTION and rho < self.SHUTDOWN_REACTIVITY_DOLLARS:
            return self.SHUTDOWN_STEP_S
        if (
            self._log_rate_per_s < 1.0 / self.QUIET_PERIOD_S
            and n < self.QUIET_MAX_POWER_FRACTION
            and self._fuel_c < self.TRIP_FUEL_TEMP_C - self.QUIET_FUEL_MARGIN_K
            and rho < self.QUIET_MAX_REACTIVITY_DOLLARS
        ):
            return self.QUIET_STEP_S
        return self.MAX_SUBSTEP_S

    def _relax(self, h: float) -> tuple[float, float]:
        """(reflector, period meter) relaxation shares over a step of ``h`` seconds."""
        cached = self._relax_cache.get(h)
        if cached is None:
            if len(self._relax_cache) > 16:
                self._relax_cache.clear()
            cached = self._relax_cache[h] = (
                1.0 - math.exp(-h / self.reflector_time_constant_s),
                1.0 - math.exp(-h / self.PERIOD_METER_TIME_CONSTANT_S),
            )
        return cached

    def _substep(self, h: float, t_s: float) -> None:
        self._ramp_converters(h)
        if not self._rod_stuck:
            goal = self._rod_goal()
            travel = (self.rod_trip_speed_per_s if self._tripped else self.rod_speed_per_s) * h
            self._rod += max(-travel, min(travel, goal - self._rod))
        n_before = self.kinetics.n
        n = self.kinetics.step(h, self.reactivity_dollars)
        fission_w = n * self.rated_thermal_power_w
        decay_w = self.decay_heat.step(h, fission_w)
        self._thermal_w = thermal_w = self.decay_heat.prompt_fraction * fission_w + decay_w
        self._remove_heat()
        net_w = thermal_w - self._heat_removed_w - self.core_loss_w
        self._fuel_c += h * net_w / self.fuel_heat_capacity_j_per_k
        reflector_share, meter_share = self._relax(h)
        goal_c = self.cold_temp_c + self.reflector_rise_k * thermal_w / self.rated_thermal_power_w
        self._reflector_c += (goal_c - self._reflector_c) * reflector_share
        rate = math.log(n / n_before) / h
        self._log_rate_per_s += (rate - self._log_rate_per_s) * meter_share
        self._protect(t_s)

    # protection -------------------------------------------------------------------

    def _heartbeat_lost(self, t_s: float) -> bool:
        last = self._last_heartbeat_s
        return last is not None and t_s - last > self.heartbeat_timeout_s

    def heat_sink_lost(self) -> bool:
        """True when no converter runs or no heat pipe carries heat."""
        return self.converters_running == 0 or self.heat_pipes_ok == 0

    def _trip_conditions(self, t_s: float) -> list[str]:
        reasons = []
        n = self.kinetics.n
        if n > self.TRIP_POWER_FRACTION:
            reasons.append("overpower")
        if self._fuel_c > self.TRIP_FUEL_TEMP_C:
            reasons.append("fuel_overtemperature")
        in_power_range = n > self.POWER_RANGE_FRACTION
        if in_power_range and self._log_rate_per_s > 1.0 / self.TRIP_PERIOD_S:
            reasons.append("short_period")
        if in_power_range and self.heat_sink_lost():
            reasons.append("loss_of_heat_sink")
        if self._heartbeat_lost(t_s):
            reasons.append("heartbeat_loss")
        return reasons

    def _protect(self, t_s: float, scram: bool = False) -> None:
        if self._tripped:
            return
        reasons = self._trip_conditions(t_s)
        if scram:
            reasons.insert(0, "manual_scram")
        if not reasons:
            return
        self._tripped = True
        self._trip_reason = reasons[0]
        self._rod_target = 0.0
        self._disturbed = True
        self._emit(
            "trip",
            "critical",
            t_s,
            reason=reasons[0],
            reasons=reasons,
            fission_power_w=self.fission_power_w,
            fuel_temp_c=self._fuel_c,
            rod_position=self._rod,
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
        self._disturbed = True


def _description() -> BoardDescription:
    return description(
        "reactor",
        (
            number("thermal_power_w", "W", 0.0, 60_000.0, "heat released in the fuel: prompt plus decay"),
            number("electric_power_w", "W", 0.0, 15_000.0, "Stirling output"),
            number("fuel_temp_c", "C", -60.0, 1200.0, "fuel temperature"),
            number("rod_position", "1", 0.0, 1.0, "0 fully in, 1 fully out"),
            number("period_s", "s", -1e9, 1e9, "reactor period, 1e9 when steady"),
            flag("tripped", "protection trip latched"),
            flag("converter_ok", "every Stirling converter running"),
            number("fission_power_w", "W", 0.0, 60_000.0, "fission (neutron) power"),
            number("decay_heat_w", "W", 0.0, 5_000.0, "fission-product decay heat"),
            number("heat_removed_w", "W", 0.0, 60_000.0, "heat the converters draw"),
            number("reflector_temp_c", "C", -60.0, 400.0, "radial reflector temperature"),
            Channel("converters_running", ValueType.INT, "", 0, 16, "Stirling converters running"),
            Channel("heat_pipes_ok", ValueType.INT, "", 0, 64, "heat pipes carrying heat"),
        ),
        (
            Actuator("rod_target", ValueType.FLOAT, "1", 0.0, 1.0, "rod drive target"),
            switch("scram", "true: trip now (rod fully in)"),
            switch("trip_reset", "true: clear a latched trip if its causes are gone"),
        ),
    )
