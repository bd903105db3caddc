"""The reactor board: point kinetics, feedback, decay heat, rod drive and board-level protection.

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

"""

from __future__ import annotations

import math
from typing import Final

from fsw.board import Actuator, Value, ValueType
from fsw.errors import ConfigError
from hil.physics.environment import Environment
from hil.physics.model import BoardModel, Coupling, description, flag, number, substeps, switch


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
            description(
                "reactor",
                (
                    number("thermal_power_w", "W", 0.0, 60_000.0, "fission plus decay heat"),
                    number("electric_power_w", "W", 0.0, 15_000.0, "Stirling output"),
                    number("fuel_temp_c", "C", -60.0, 1200.0, "fuel temperature"),
                    number("rod_position", "1", 0.0, 1.0, "0 fully in, 1 fully out"),
                    number("period_s", "s", -1e9, 1e9, "reactor period, 1e9 when steady"),
                    flag("tripped", "protection trip latched"),
                    flag("converter_ok", "Stirling converters running"),
                ),
                (
                    Actuator("rod_target", ValueType.FLOAT, "1", 0.0, 1.0, "rod drive target"),
                    switch("scram", "true: trip now (rod fully in)"),
                    switch("trip_reset", "true: clear a latched trip if its causes are gone"),
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
        count, h = substeps(dt_s, self.QUIET_SUBSTEP_S if self._quiet() else self.MAX_SUBSTEP_S)
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
