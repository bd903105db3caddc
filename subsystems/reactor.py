"""Reactor supervision: start-up, load following, trims, setbacks and alarms above the board.

The reactor board protects the reactor on its own (trip at 110 % power, 840 C fuel, a
period under 10 s, loss of the heat sink, loss of this process's heartbeat: the board
counts frame syncs). This process adds the graded levels below the trip and runs the
reactor between them:

=================  ========  ==========================  ============
quantity           alarm     setback                     board trip
=================  ========  ==========================  ============
power (% rated)    105       108 (rod inserted a step)   110
fuel temperature   820 C     830 C (rod inserted a step) 840 C
period             < 60 s    < 30 s (withdrawal inhibit) < 10 s
=================  ========  ==========================  ============

Power here is the fission (neutron) power, as the board's own trip sees it. A setback
inserts the rod by ``setback_step`` (0.02, about $0.09) below where it is, at most once
every ``setback_interval_s`` (60 s: the fuel needs a minute or two to answer).
Withdrawal (by command or automatic) is refused while the period is under the inhibit
level and while the board is tripped; automatic withdrawal also while a power, fuel or
sensor alarm stands.

Modes (``Mode``); transitions are the table :data:`TRANSITIONS` (checked every cycle)
plus the commands::

    OFF --startup--> STARTUP --fuel in band--> POWER --shutdown--> SHUTDOWN --power < 1 %--> OFF
    any --board trip latched--> TRIPPED --trip_reset, board clear--> SHUTDOWN

* ``STARTUP`` (approach to critical, automatic): drive the rod straight to
  ``startup_fast_position`` (0.50, $1.7 subcritical when cold), then step it out by
  ``startup_step`` (0.005; ``startup_fine_step`` 0.002 near critical, that is while the
  period is positive and under 1000 s, or once the fission power is over
  ``startup_fine_above_pct``, 50 %) at most every ``startup_interval_s`` (30 s), only
  when the rod has reached its last target, the period is negative or longer than
  ``startup_hold_period_s`` (100 s) and the fission power is under
  ``startup_power_limit_pct`` (100 %). When the fuel reaches the band
  (``fuel_setpoint_c - startup_band_c``, 785 C) the mode is ``POWER`` and the trims
  finish the heat-up. From cold: POWER after about 75 min, 795 C after about 2 h.
* ``POWER``: load following by temperature feedback (the converters follow the bus
  demand; the core follows them with no rod motion). Automatic trim: at most every
  ``trim_interval_s`` (900 s), the rod moves ``trim_step`` (0.001: about 2.3 K of
  equilibrium fuel temperature) per two deadbands of error, at most five, towards the
  fuel set point (``fuel_setpoint_c``, 800 C) when the fuel temperature averaged over
  ``trim_filter_s`` (1200 s) is outside the deadband (``trim_deadband_c``, 5 K) and the
  core is steady (period magnitude over ``trim_min_period_s``, 1800 s, and the fuel
  within the deadband of its average: not in a load change nor heating up). The
  average, the steadiness and the long interval keep the trims from feeding the slow,
  lightly damped power oscillation of a self-regulating core at low power (a period of
  about 20 min at 10 % power). Withdrawal trims are single steps above 95 % power. A
  fuel-low alarm stands below ``alarm_fuel_low_c`` (750 C).
* ``SHUTDOWN``: rod in at drive speed; ``OFF`` once it is in and the fission power is
  under ``shutdown_power_pct`` (1 %).
* ``TRIPPED``: the board's latched trip; the rod goes in at trip speed.

``set_rod_target`` is manual control: it suspends the automatic steps and trims (setbacks
stay armed) until ``startup``, ``shutdown`` or ``set_fuel_setpoint``. From ``OFF`` or
``SHUTDOWN`` a withdrawal goes to ``STARTUP`` under manual control.

At boot the process recognises the reactor it finds: tripped (``TRIPPED``), at power in
the fuel band (``POWER``, automatic, rod target = rod position), rod in and power under
1 % (``OFF``), rod out otherwise (``STARTUP``, manual, holding the rod where it is) or
rod in with power still above 1 % (``SHUTDOWN``).

A rod that does not follow its target (expected position: 0 while tripped) for
``rod_fault_s`` (5 s) raises the ``rod_drive`` alarm; other alarms: ``power``,
``fuel_temp``, ``fuel_low``, ``period``, ``converter`` (a converter stopped),
``heat_pipes`` (fewer heat pipes than the most seen) and ``sensor`` (a fuel, power,
period or rod reading not a number: automatic withdrawal stops).

``startup``, ``set_rod_target`` and ``trip_reset`` are critical commands.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Final

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import BoardError, CommandRejected, ConfigError
from fsw.process import FlightProcess, Frame

#: Channels every reactor board has.
CHANNELS: Final = (
    "thermal_power_w",
    "electric_power_w",
    "fuel_temp_c",
    "rod_position",
    "period_s",
    "tripped",
    "converter_ok",
)

#: Channels used when the board has them (the simulated board does).
OPTIONAL_CHANNELS: Final = (
    "fission_power_w",
    "decay_heat_w",
    "heat_removed_w",
    "reflector_temp_c",
    "converters_running",
    "heat_pipes_ok",
)

ACTUATORS: Final = ("rod_target", "scram", "trip_reset")

SECONDS_PER_HOUR: Final = 3600.0

#: A rod within this distance of its target has arrived (fraction of travel).
ROD_ARRIVED: Final = 1e-4
#: A rod further than this from its target should be moving.
ROD_FOLLOW_TOLERANCE: Final = 2e-3
#: Alarm hysteresis: power and fuel alarms clear this far below their level, the period
#: alarm once the period is negative or this many times its level.
ALARM_CLEAR_PCT: Final = 1.0
ALARM_CLEAR_K: Final = 2.0
ALARM_CLEAR_PERIOD_FACTOR: Final = 1.25
#: A trim moves the rod one ``trim_step`` per two deadbands of error, at most this many.
TRIM_MAX_STEPS: Final = 5
#: Above this power (% of rated) a withdrawal trim is a single step.
TRIM_SINGLE_STEP_ABOVE_PCT: Final = 95.0
#: Start-up steps are fine while the period is positive and under this (s): near critical.
FINE_STEP_PERIOD_S: Final = 1000.0
#: A rod that moved more than this since the last cycle is moving.
ROD_MOVED: Final = 1e-5


class Mode(str, enum.Enum):
    """Reactor supervision modes."""

    OFF = "OFF"
    STARTUP = "STARTUP"
    POWER = "POWER"
    SHUTDOWN = "SHUTDOWN"
    TRIPPED = "TRIPPED"


@dataclass(frozen=True)
class Settings:
    """Levels and rates of reactor supervision (``[processes.reactor.params]``), with defaults."""

    rated_thermal_power_w: float = 40_000.0
    alarm_power_pct: float = 105.0
    setback_power_pct: float = 108.0
    alarm_fuel_c: float = 820.0
    setback_fuel_c: float = 830.0
    alarm_fuel_low_c: float = 750.0
    alarm_period_s: float = 60.0
    inhibit_period_s: float = 30.0
    setback_step: float = 0.02
    setback_interval_s: float = 60.0
    fuel_setpoint_c: float = 800.0
    trim_deadband_c: float = 5.0
    trim_step: float = 0.001
    trim_interval_s: float = 900.0
    trim_filter_s: float = 1200.0
    trim_min_period_s: float = 1800.0
    startup_fast_position: float = 0.50
    startup_step: float = 0.005
    startup_fine_step: float = 0.002
    startup_fine_above_pct: float = 50.0
    startup_interval_s: float = 30.0
    startup_hold_period_s: float = 100.0
    startup_power_limit_pct: float = 100.0
    startup_band_c: float = 15.0
    shutdown_power_pct: float = 1.0
    rod_fault_s: float = 5.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any], table: str) -> Settings:
        """Settings from a parameter table; raises :class:`ConfigError` naming ``table`` and the
        key for an unknown key, a value that is not a number or levels out of order."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            msg = f"{table} has no parameter {unknown[0]!r} (parameters: {', '.join(sorted(known))})"
            raise ConfigError(msg)
        given: dict[str, float] = {}
        for item in fields(cls):
            value = params.get(item.name, item.default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                msg = f"{table} {item.name} must be a number, got {value!r}"
                raise ConfigError(msg)
            given[item.name] = float(value)
        settings = cls(**given)
        for key, ok, what in settings._checks():
            if not ok:
                msg = f"{table} {key} must be {what}"
                raise ConfigError(msg)
        return settings

    def _checks(self) -> tuple[tuple[str, bool, str], ...]:
        fractions = ("setback_step", "trim_step", "startup_step", "startup_fine_step")
        positive = (
            "rated_thermal_power_w",
            "setback_interval_s",
            "trim_interval_s",
            "trim_filter_s",
            "trim_min_period_s",
            "startup_interval_s",
            "rod_fault_s",
            "trim_deadband_c",
            "startup_band_c",
            "shutdown_power_pct",
        )
        return (
            ("alarm_power_pct", 0.0 < self.alarm_power_pct < self.setback_power_pct,
             "in (0, setback_power_pct)"),
            ("alarm_fuel_c", self.alarm_fuel_c < self.setback_fuel_c, "below setback_fuel_c"),
            ("alarm_fuel_low_c", self.alarm_fuel_low_c < self.fuel_setpoint_c, "below fuel_setpoint_c"),
            ("inhibit_period_s", 0.0 < self.inhibit_period_s < self.alarm_period_s, "in (0, alarm_period_s)"),
            ("fuel_setpoint_c", self.fuel_setpoint_c + self.trim_deadband_c < self.alarm_fuel_c,
             "below alarm_fuel_c by more than trim_deadband_c"),
            ("startup_fast_position", 0.0 < self.startup_fast_position < 1.0, "in (0, 1)"),
            ("startup_hold_period_s", self.startup_hold_period_s >= self.alarm_period_s,
             "at least alarm_period_s"),
            ("startup_power_limit_pct", 0.0 < self.startup_power_limit_pct < self.alarm_power_pct,
             "in (0, alarm_power_pct)"),
            *((key, 0.0 < getattr(self, key) <= 0.1, "in (0, 0.1]") for key in fractions),
            *((key, getattr(self, key) > 0.0, "positive") for key in positive),
        )  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """One board sample, with the optional channels defaulted."""

    fission_power_w: float
    thermal_power_w: float
    electric_power_w: float
    fuel_temp_c: float
    rod_position: float
    period_s: float
    tripped: bool
    converter_ok: bool
    heat_pipes_ok: int | None = None
    converters_running: int | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Reading:
        """A reading from a board sample (``fission_power_w`` falls back on ``thermal_power_w``)."""
        thermal = float(values["thermal_power_w"])
        pipes = values.get("heat_pipes_ok")
        running = values.get("converters_running")
        return cls(
            fission_power_w=float(values.get("fission_power_w", thermal)),
            thermal_power_w=thermal,
            electric_power_w=float(values["electric_power_w"]),
            fuel_temp_c=float(values["fuel_temp_c"]),
            rod_position=float(values["rod_position"]),
            period_s=float(values["period_s"]),
            tripped=bool(values["tripped"]),
            converter_ok=bool(values["converter_ok"]),
            heat_pipes_ok=pipes if isinstance(pipes, int) and not isinstance(pipes, bool) else None,
            converters_running=running
            if isinstance(running, int) and not isinstance(running, bool)
            else None,
        )


def _count(value: object) -> int | None:
    """A whole-number channel, or None when the board does not report it."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class Actions:
    """What one supervision step asks for: board commands and events, in order."""

    commands: list[tuple[str, float | bool]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Totals:
    """What a run did (the process's statistics)."""

    trips: int = 0
    setbacks: int = 0
    startups: int = 0
    fuel_temp_peak_c: float = -math.inf
    power_peak_pct: float = 0.0
    electric_energy_wh: float = 0.0
    thermal_energy_wh: float = 0.0
    power_hours: float = 0.0


Guard = Callable[["Supervisor", Reading], bool]


def _tripped(s: Supervisor, r: Reading) -> bool:
    return r.tripped


def _trip_cleared(s: Supervisor, r: Reading) -> bool:
    return not r.tripped


def _fuel_in_band(s: Supervisor, r: Reading) -> bool:
    return r.fuel_temp_c >= s.settings.fuel_setpoint_c - s.settings.startup_band_c


def _rod_in(s: Supervisor, r: Reading) -> bool:
    return s.rod_target <= 0.0 and r.rod_position <= 0.0


def _shut_down(s: Supervisor, r: Reading) -> bool:
    return r.rod_position <= 0.0 and s.power_pct(r) < s.settings.shutdown_power_pct


_ACTIVE = (Mode.OFF, Mode.STARTUP, Mode.POWER, Mode.SHUTDOWN)

#: Automatic transitions, checked in order every cycle: (from modes, guard, to).
TRANSITIONS: Final[tuple[tuple[tuple[Mode, ...], Guard, Mode], ...]] = (
    (_ACTIVE, _tripped, Mode.TRIPPED),
    ((Mode.TRIPPED,), _trip_cleared, Mode.SHUTDOWN),
    ((Mode.STARTUP,), _fuel_in_band, Mode.POWER),
    ((Mode.STARTUP, Mode.POWER), _rod_in, Mode.SHUTDOWN),
    ((Mode.SHUTDOWN,), _shut_down, Mode.OFF),
)


class Supervisor:
    """The supervision logic, apart from the bus and the board: readings in, actions out.

    :meth:`boot` takes the first reading, :meth:`cycle` every later one (``t_s`` mission
    time); the ``command_*`` methods raise :class:`CommandRejected` with the reason.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode = Mode.OFF
        self.manual = False
        self.rod_target = 0.0
        self.fuel_setpoint_c = settings.fuel_setpoint_c
        #: Fuel temperature averaged over ``trim_filter_s`` (NaN until the first reading).
        self.fuel_filtered_c = math.nan
        self.alarms: set[str] = set()
        self.withdrawal_inhibit = False
        self.totals = Totals()
        self.reading: Reading | None = None
        self._actions = Actions()
        self._last_t_s: float | None = None
        self._last_step_s = -math.inf
        self._last_trim_s = -math.inf
        self._last_setback_s = -math.inf
        self._rod_seen = (0.0, -math.inf)  # position, mission time it was last seen moving
        self._heat_pipes_max = 0

    # ------------------------------------------------------------------ readings in

    def power_pct(self, reading: Reading) -> float:
        """Fission power in % of rated."""
        return 100.0 * reading.fission_power_w / self.settings.rated_thermal_power_w

    def boot(self, reading: Reading, t_s: float) -> Actions:
        """Recognise the reactor found at start (see the module docstring)."""
        self.reading = reading
        self._last_t_s = t_s
        self._rod_seen = (reading.rod_position, t_s)
        self._filter_fuel(reading, 0.0)
        self._heat_pipes_max = reading.heat_pipes_ok or 0
        power_pct = self.power_pct(reading)
        self.rod_target = reading.rod_position
        if reading.tripped:
            mode = Mode.TRIPPED
        elif (
            reading.rod_position > 0.0
            and power_pct >= self.settings.shutdown_power_pct
            and _fuel_in_band(self, reading)
        ):
            mode = Mode.POWER
        elif reading.rod_position <= 0.0:
            mode = Mode.OFF if power_pct < self.settings.shutdown_power_pct else Mode.SHUTDOWN
        else:
            mode = Mode.STARTUP
            self.manual = True
        self._actions = Actions()
        self._set_mode(mode, "boot")
        return self._take()

    def cycle(self, reading: Reading, t_s: float) -> Actions:
        """One control cycle on ``reading``: accounting, alarms, setback, mode, rod control."""
        if self.reading is None:
            return self.boot(reading, t_s)
        dt_s = max(0.0, t_s - (self._last_t_s if self._last_t_s is not None else t_s))
        self._last_t_s = t_s
        self.reading = reading
        self._account(reading, dt_s)
        self._filter_fuel(reading, dt_s)
        self.withdrawal_inhibit = 0.0 < reading.period_s < self.settings.inhibit_period_s
        self._check_alarms(reading, t_s)
        self._setback(reading, t_s)
        for sources, guard, target in TRANSITIONS:
            if self.mode in sources and guard(self, reading):
                self._set_mode(target, guard.__name__.lstrip("_"))
        if not self.manual and self.mode is Mode.STARTUP:
            self._startup_step(reading, t_s)
        elif not self.manual and self.mode is Mode.POWER:
            self._trim(reading, t_s)
        return self._take()

    # ------------------------------------------------------------------ commands

    def command_startup(self) -> dict[str, Any]:
        """Begin the automatic approach to critical and heat-up."""
        self._refuse_if_tripped("startup")
        self._refuse_without_heat_sink("startup")
        if self.mode not in (Mode.OFF, Mode.SHUTDOWN, Mode.STARTUP):
            msg = f"startup is for OFF, SHUTDOWN or STARTUP, not {self.mode.value}"
            raise CommandRejected(msg)
        if self.withdrawal_inhibit:
            msg = "withdrawal inhibited: the period is short; wait for it to lengthen"
            raise CommandRejected(msg)
        self.manual = False
        self.totals.startups += 1
        self._last_step_s = -math.inf
        self._move_rod(max(self._position(), self.settings.startup_fast_position))
        self._set_mode(Mode.STARTUP, "startup")
        return {"mode": self.mode.value, "rod_target": round(self.rod_target, 4)}

    def command_shutdown(self) -> dict[str, Any]:
        """Drive the rod in; OFF once it is in and the power is low."""
        if self.mode is Mode.TRIPPED:
            msg = "the reactor is tripped: the rod is already going in"
            raise CommandRejected(msg)
        self.manual = False
        self._move_rod(0.0)
        self._set_mode(Mode.SHUTDOWN, "shutdown")
        return {"mode": self.mode.value, "rod_target": 0.0}

    def command_set_rod_target(self, position: float) -> dict[str, Any]:
        """Manual rod control; withdrawal refused while tripped or under a short period."""
        if position > self._position():
            self._refuse_if_tripped("rod withdrawal")
            if self.withdrawal_inhibit and self.reading is not None:
                msg = (
                    f"withdrawal inhibited: period {self.reading.period_s:.1f} s is under "
                    f"{self.settings.inhibit_period_s:g} s"
                )
                raise CommandRejected(msg)
        self.manual = True
        self._move_rod(position)
        if position > 0.0 and self.mode in (Mode.OFF, Mode.SHUTDOWN):
            self._set_mode(Mode.STARTUP, "set_rod_target")
        return {"rod_target": position, "mode": self.mode.value}

    def command_set_fuel_setpoint(self, temp_c: float) -> dict[str, Any]:
        """Set the fuel set point and resume automatic trims."""
        limit_c = self.settings.alarm_fuel_c - self.settings.trim_deadband_c
        if not temp_c < limit_c:
            msg = f"temp_c={temp_c:g} C must be below {limit_c:g} C (the fuel alarm less the deadband)"
            raise CommandRejected(msg)
        self.fuel_setpoint_c = temp_c
        self.manual = False
        return {"fuel_setpoint_c": temp_c}

    def command_scram(self) -> dict[str, Any]:
        """Trip the board now (rod fully in)."""
        self._actions.commands.append(("scram", True))
        self.rod_target = 0.0
        self.manual = False
        return {"rod_target": 0.0}

    def _refuse_without_heat_sink(self, command: str) -> None:
        """Interlock: no reset or start-up while no converter runs or no heat pipe carries heat."""
        reading = self.reading
        if reading is None:
            return
        if reading.converters_running == 0 or reading.heat_pipes_ok == 0:
            msg = (
                f"{command} refused: the heat sink is lost (converters running "
                f"{reading.converters_running}, heat pipes carrying heat {reading.heat_pipes_ok})"
            )
            raise CommandRejected(msg)

    def command_trip_reset(self) -> dict[str, Any]:
        """Ask the board to clear its latched trip (it refuses while a cause stands).

        Refused here while the heat sink is lost, a cause the board checks only at power.
        """
        self._refuse_without_heat_sink("trip_reset")
        self._actions.commands.append(("trip_reset", True))
        self.rod_target = 0.0
        return {"reset": self.mode is Mode.TRIPPED}

    def take_actions(self) -> Actions:
        """Return and forget the actions the commands queued."""
        return self._take()

    # ------------------------------------------------------------------ internals

    def _take(self) -> Actions:
        actions, self._actions = self._actions, Actions()
        return actions

    def _position(self) -> float:
        return self.reading.rod_position if self.reading is not None else 0.0

    def _refuse_if_tripped(self, what: str) -> None:
        if self.mode is Mode.TRIPPED or (self.reading is not None and self.reading.tripped):
            msg = f"reactor tripped: reset the trip before {what}"
            raise CommandRejected(msg)

    def _event(self, name: str, **data: Any) -> None:
        self._actions.events.append((name, data))

    def _move_rod(self, position: float) -> None:
        self.rod_target = min(1.0, max(0.0, position))
        self._actions.commands.append(("rod_target", self.rod_target))

    def _set_mode(self, mode: Mode, reason: str) -> None:
        if mode is self.mode and reason != "boot":
            return
        previous = self.mode
        self.mode = mode
        if mode is Mode.TRIPPED:
            if reason != "boot":
                self.totals.trips += 1
            self.rod_target = 0.0
            self.manual = False
        elif mode is Mode.SHUTDOWN and self.rod_target > 0.0:
            self._move_rod(0.0)
        elif mode is Mode.POWER:
            self._last_trim_s = self._last_t_s if self._last_t_s is not None else -math.inf
            if self.reading is not None and math.isfinite(self.reading.fuel_temp_c):
                self.fuel_filtered_c = self.reading.fuel_temp_c
        self._event("reactor_mode_changed", previous=previous.value, mode=mode.value, reason=reason)

    def _account(self, reading: Reading, dt_s: float) -> None:
        totals = self.totals
        if math.isfinite(reading.fuel_temp_c):
            totals.fuel_temp_peak_c = max(totals.fuel_temp_peak_c, reading.fuel_temp_c)
        power_pct = self.power_pct(reading)
        if math.isfinite(power_pct):
            totals.power_peak_pct = max(totals.power_peak_pct, power_pct)
        dt_h = dt_s / SECONDS_PER_HOUR
        if math.isfinite(reading.electric_power_w):
            totals.electric_energy_wh += reading.electric_power_w * dt_h
        if math.isfinite(reading.thermal_power_w):
            totals.thermal_energy_wh += reading.thermal_power_w * dt_h
        if self.mode is Mode.POWER:
            totals.power_hours += dt_h

    def _check_alarms(self, reading: Reading, t_s: float) -> None:
        settings = self.settings
        power_pct = self.power_pct(reading)
        pipes = reading.heat_pipes_ok
        if pipes is not None:
            self._heat_pipes_max = max(self._heat_pipes_max, pipes)
        fuel_c = reading.fuel_temp_c
        self._alarm(
            "power",
            power_pct >= settings.alarm_power_pct,
            power_pct < settings.alarm_power_pct - ALARM_CLEAR_PCT,
            power_pct=round(power_pct, 2),
        )
        self._alarm(
            "fuel_temp",
            fuel_c >= settings.alarm_fuel_c,
            fuel_c < settings.alarm_fuel_c - ALARM_CLEAR_K,
            fuel_temp_c=round(fuel_c, 1),
        )
        in_power = self.mode is Mode.POWER
        self._alarm(
            "fuel_low",
            in_power and fuel_c < settings.alarm_fuel_low_c,
            not in_power or fuel_c >= settings.alarm_fuel_low_c + ALARM_CLEAR_K,
            fuel_temp_c=round(fuel_c, 1),
        )
        period_s = reading.period_s
        self._alarm(
            "period",
            0.0 < period_s < settings.alarm_period_s,
            not 0.0 < period_s < ALARM_CLEAR_PERIOD_FACTOR * settings.alarm_period_s,
            period_s=round(period_s, 1),
        )
        self._alarm("converter", not reading.converter_ok, reading.converter_ok)
        degraded = pipes is not None and pipes < self._heat_pipes_max
        self._alarm("heat_pipes", degraded, not degraded, heat_pipes_ok=pipes or 0)
        invalid = [
            name
            for name, value in (
                ("fuel_temp_c", reading.fuel_temp_c),
                ("fission_power_w", reading.fission_power_w),
                ("period_s", reading.period_s),
                ("rod_position", reading.rod_position),
            )
            if not math.isfinite(value)
        ]
        self._alarm("sensor", bool(invalid), not invalid, channels=",".join(invalid))
        self._watch_rod(reading, t_s)

    def _watch_rod(self, reading: Reading, t_s: float) -> None:
        """The ``rod_drive`` alarm: the rod neither on its target nor moving for ``rod_fault_s``."""
        expected = 0.0 if reading.tripped else self.rod_target
        position = reading.rod_position
        last_position, _ = self._rod_seen
        if abs(expected - position) <= ROD_FOLLOW_TOLERANCE or abs(position - last_position) > ROD_MOVED:
            self._rod_seen = (position, t_s)
        stalled = t_s - self._rod_seen[1] >= self.settings.rod_fault_s
        self._alarm(
            "rod_drive", stalled, not stalled, rod_position=round(position, 4), expected=round(expected, 4)
        )

    def _alarm(self, name: str, active: bool, clear: bool, **data: Any) -> None:
        """Raise alarm ``name`` when ``active``, clear it when ``clear`` (the hysteresis)."""
        if active and name not in self.alarms:
            self.alarms.add(name)
            self._event("reactor_alarm", quantity=name, active=True, **data)
        elif clear and name in self.alarms:
            self.alarms.discard(name)
            self._event("reactor_alarm", quantity=name, active=False, **data)

    def _setback(self, reading: Reading, t_s: float) -> None:
        settings = self.settings
        power_pct = self.power_pct(reading)
        over = power_pct >= settings.setback_power_pct or reading.fuel_temp_c >= settings.setback_fuel_c
        if not over or self.rod_target <= 0.0 or reading.tripped:
            return
        if t_s - self._last_setback_s < settings.setback_interval_s:
            return
        self._last_setback_s = t_s
        self.totals.setbacks += 1
        self._move_rod(min(self.rod_target, reading.rod_position) - settings.setback_step)
        self._event(
            "reactor_setback",
            power_pct=round(power_pct, 2),
            fuel_temp_c=round(reading.fuel_temp_c, 1),
            rod_target=round(self.rod_target, 4),
        )

    def _may_withdraw(self, reading: Reading) -> bool:
        """Automatic withdrawal: not tripped, no short period, no power, fuel or sensor alarm."""
        return not (
            reading.tripped or self.withdrawal_inhibit or {"power", "fuel_temp", "sensor"} & self.alarms
        )

    def _startup_step(self, reading: Reading, t_s: float) -> None:
        settings = self.settings
        if abs(reading.rod_position - self.rod_target) > ROD_ARRIVED or not self._may_withdraw(reading):
            return
        power_pct = self.power_pct(reading)
        hold = (
            t_s - self._last_step_s < settings.startup_interval_s
            or 0.0 < reading.period_s < settings.startup_hold_period_s
            or power_pct >= settings.startup_power_limit_pct
            or reading.fuel_temp_c >= self.fuel_setpoint_c - settings.startup_band_c
        )
        if hold:
            return
        fine = power_pct >= settings.startup_fine_above_pct or 0.0 < reading.period_s < FINE_STEP_PERIOD_S
        self._move_rod(self.rod_target + (settings.startup_fine_step if fine else settings.startup_step))
        self._last_step_s = t_s

    def _filter_fuel(self, reading: Reading, dt_s: float) -> None:
        """The fuel temperature averaged over ``trim_filter_s`` (what the trims look at)."""
        fuel_c = reading.fuel_temp_c
        if not math.isfinite(fuel_c):
            return
        if not math.isfinite(self.fuel_filtered_c):
            self.fuel_filtered_c = fuel_c
        else:
            share = 1.0 - math.exp(-dt_s / self.settings.trim_filter_s)
            self.fuel_filtered_c += (fuel_c - self.fuel_filtered_c) * share

    def _trim(self, reading: Reading, t_s: float) -> None:
        settings = self.settings
        steady = (
            abs(reading.period_s) >= settings.trim_min_period_s
            and abs(reading.fuel_temp_c - self.fuel_filtered_c) < settings.trim_deadband_c
        )
        if not steady or t_s - self._last_trim_s < settings.trim_interval_s:
            return
        error_c = self.fuel_filtered_c - self.fuel_setpoint_c
        steps = min(TRIM_MAX_STEPS, max(1, round(abs(error_c) / (2.0 * settings.trim_deadband_c))))
        if error_c > settings.trim_deadband_c:
            self._move_rod(self.rod_target - steps * settings.trim_step)
        elif error_c < -settings.trim_deadband_c and self._may_withdraw(reading):
            if self.power_pct(reading) >= TRIM_SINGLE_STEP_ABOVE_PCT:
                steps = 1
            self._move_rod(self.rod_target + steps * settings.trim_step)
        else:
            return
        self._last_trim_s = t_s


def _limits_points(settings: Settings) -> tuple[Point, ...]:
    return (
        Point(
            "power_pct",
            ArgType.FLOAT,
            "%",
            "Fission power in % of rated.",
            Limits(yellow_high=settings.alarm_power_pct, red_high=settings.setback_power_pct),
        ),
        Point(
            "fuel_temp_c",
            ArgType.FLOAT,
            "C",
            "Fuel temperature.",
            Limits(yellow_high=settings.alarm_fuel_c, red_high=settings.setback_fuel_c),
        ),
        Point(
            "period_s",
            ArgType.FLOAT,
            "s",
            "Reactor period (1e9 when steady, negative when the power falls).",
            Limits(yellow_low=settings.alarm_period_s, red_low=settings.inhibit_period_s),
        ),
    )


DEFAULTS: Final = Settings()


class ReactorProcess(FlightProcess):
    """Flight process of reactor supervision (see the module docstring)."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point(
                "thermal_power_w", ArgType.FLOAT, "W", "Heat released in the fuel: fission plus decay heat."
            ),
            Point("fission_power_w", ArgType.FLOAT, "W", "Fission (neutron) power."),
            Point("decay_heat_w", ArgType.FLOAT, "W", "Fission-product decay heat."),
            Point("electric_power_w", ArgType.FLOAT, "W", "Electric power from the Stirling converters."),
            Point("heat_removed_w", ArgType.FLOAT, "W", "Heat the converters draw from the core."),
            *_limits_points(DEFAULTS),
            Point("fuel_setpoint_c", ArgType.FLOAT, "C", "Fuel temperature the POWER trims hold."),
            Point("reflector_temp_c", ArgType.FLOAT, "C", "Radial reflector temperature."),
            Point("rod_position", ArgType.FLOAT, "", "Control rod withdrawal (0 in, 1 out)."),
            Point("rod_target", ArgType.FLOAT, "", "Commanded rod withdrawal."),
            Point("rod_control", ArgType.STR, "", "auto (start-up steps and trims) or manual."),
            Point("tripped", ArgType.BOOL, "", "The board has tripped the reactor (latched)."),
            Point("converter_ok", ArgType.BOOL, "", "Every Stirling converter running."),
            Point(
                "converters_running",
                ArgType.INT,
                "",
                "Stirling converters running.",
                Limits(red_low=1),
            ),
            Point("heat_pipes_ok", ArgType.INT, "", "Heat pipes carrying heat.", Limits(red_low=1)),
            Point("withdrawal_inhibit", ArgType.BOOL, "", "Rod withdrawal refused (short period)."),
            Point("alarms", ArgType.STR, "", "Alarms standing, comma-separated."),
            Point("trips", ArgType.INT, "", "Board trips seen since start."),
            Point("mode", ArgType.STR, "", "OFF, STARTUP, POWER, SHUTDOWN or TRIPPED."),
        ),
        events=(
            EventDef("reactor_alarm", Severity.WARNING, "A quantity passed its alarm level (or came back)."),
            EventDef("reactor_setback", Severity.ERROR, "A setback level was passed: rod inserted one step."),
            EventDef("reactor_trip", Severity.CRITICAL, "The board tripped the reactor."),
            EventDef("reactor_mode_changed", Severity.INFO, "Reactor supervision mode changed."),
            EventDef("reactor_command_refused", Severity.WARNING, "The board refused a supervision command."),
        ),
        commands=(
            CommandDef(
                "startup",
                (),
                "Approach to critical and heat up to the fuel set point (from OFF or SHUTDOWN), then POWER. "
                "Refused while the heat sink is lost (no converter running or no heat pipe carrying heat).",
                critical=True,
            ),
            CommandDef("shutdown", (), "Drive the rod in at drive speed; OFF below 1 % power."),
            CommandDef(
                "set_rod_target",
                (
                    Arg(
                        "position",
                        ArgType.FLOAT,
                        "",
                        low=0.0,
                        high=1.0,
                        description="Rod withdrawal 0 (in) .. 1 (out).",
                    ),
                ),
                "Manual rod control (withdrawal refused under a short period or a trip).",
                critical=True,
            ),
            CommandDef(
                "set_fuel_setpoint",
                (Arg("temp_c", ArgType.FLOAT, "C", low=700.0, high=810.0, description="Fuel set point."),),
                "Set the fuel temperature the POWER trims hold; resumes automatic trims.",
            ),
            CommandDef("scram", (), "Trip the board now: rod fully in, mode TRIPPED."),
            CommandDef(
                "trip_reset",
                (),
                "Reset a latched board trip (rod stays in). Refused while the heat sink is lost, "
                "a trip cause the board checks only at power.",
                critical=True,
            ),
        ),
    )

    def setup(self) -> None:
        """Read the parameters, open the board and check its channels.

        Raises :class:`ConfigError` naming the parameter for a bad level.
        """
        self.settings = Settings.from_params(self.params, f"[processes.{self.name}.params]")
        super().setup()
        self.supervisor = Supervisor(self.settings)
        self.mode = self.supervisor.mode.value
        self.values: dict[str, Any] = {}
        if self.board is not None:
            self.board.description.require(CHANNELS, ACTUATORS)

    def on_frame(self, frame: Frame) -> None:
        """Read the board, report its trips, run one supervision cycle and apply its actions."""
        if self.board is None:
            return
        self.values = dict(self.board.read().values)
        for event in self.board.poll_events():
            if event.name == "trip":
                data = {k: v for k, v in event.data.items() if isinstance(v, (int, float, str, bool))}
                self.event("reactor_trip", **data)
        self._apply(self.supervisor.cycle(Reading.from_values(self.values), frame.t_s))

    def _apply(self, actions: Actions) -> None:
        for actuator, value in actions.commands:
            if self.board is None:
                break
            try:
                self.board.command(actuator, value)
            except BoardError as exc:
                self.event("reactor_command_refused", actuator=actuator, value=value, reason=str(exc)[:200])
        for name, data in actions.events:
            self.event(name, **data)
        self.mode = self.supervisor.mode.value

    def housekeeping(self) -> dict[str, Any]:
        """Board quantities plus supervision state."""
        values = self.values
        supervisor = self.supervisor
        points: dict[str, Any] = {k: values[k] for k in (*CHANNELS, *OPTIONAL_CHANNELS) if k in values}
        if supervisor.reading is not None:
            points["power_pct"] = round(supervisor.power_pct(supervisor.reading), 3)
            if "fission_power_w" not in points:
                points["fission_power_w"] = supervisor.reading.fission_power_w
        points.update(
            rod_target=round(supervisor.rod_target, 6),
            rod_control="manual" if supervisor.manual else "auto",
            fuel_setpoint_c=supervisor.fuel_setpoint_c,
            withdrawal_inhibit=supervisor.withdrawal_inhibit,
            alarms=",".join(sorted(supervisor.alarms)),
            trips=supervisor.totals.trips,
            mode=supervisor.mode.value,
        )
        return points

    def statistics(self) -> dict[str, Any]:
        """What the run did: trips, setbacks, start-ups, peaks, energies, hours at power."""
        totals = self.supervisor.totals
        stats: dict[str, Any] = {
            "trips": totals.trips,
            "setbacks": totals.setbacks,
            "startups": totals.startups,
            "power_peak_pct": round(totals.power_peak_pct, 2),
            "electric_energy_kwh": round(totals.electric_energy_wh / 1000.0, 3),
            "thermal_energy_kwh": round(totals.thermal_energy_wh / 1000.0, 3),
            "hours_at_power": round(totals.power_hours, 3),
        }
        if math.isfinite(totals.fuel_temp_peak_c):
            stats["fuel_temp_peak_c"] = round(totals.fuel_temp_peak_c, 1)
        return stats

    # ------------------------------------------------------------------ commands

    def _command(self, result: dict[str, Any]) -> dict[str, Any]:
        self._apply(self.supervisor.take_actions())
        return result

    def command_startup(self) -> dict[str, Any]:
        """Begin the automatic start-up."""
        return self._command(self.supervisor.command_startup())

    def command_shutdown(self) -> dict[str, Any]:
        """Drive the rod in."""
        return self._command(self.supervisor.command_shutdown())

    def command_set_rod_target(self, position: float) -> dict[str, Any]:
        """Manual rod control."""
        return self._command(self.supervisor.command_set_rod_target(position))

    def command_set_fuel_setpoint(self, temp_c: float) -> dict[str, Any]:
        """Set the fuel set point."""
        return self._command(self.supervisor.command_set_fuel_setpoint(temp_c))

    def command_scram(self) -> dict[str, Any]:
        """Trip the board now."""
        return self._command(self.supervisor.command_scram())

    def command_trip_reset(self) -> dict[str, Any]:
        """Ask the board to clear its latched trip."""
        return self._command(self.supervisor.command_trip_reset())
