"""Reactor supervision: the flight side of reactor protection.

The reactor board protects the reactor on its own (trip at 110 % power,
840 C fuel, period under 10 s, loss of heat sink, loss of this process's
heartbeat: the board counts frame syncs). This process adds the levels below
the trip:

=================  ========  ==========================  ============
quantity           alarm     setback                     board trip
=================  ========  ==========================  ============
power (% rated)    105       108 (rod inserted a step)   110
fuel temperature   820 C     830 C (rod inserted a step) 840 C
period             < 60 s    < 30 s (withdrawal inhibit) < 10 s
=================  ========  ==========================  ============

It moves the rod only by command (start-up and power changes are the
operators' or fault protection's), inserts it on a setback, refuses rod
withdrawal while the period is short, and reports trips the board raises.
Start-up, rod withdrawal and trip reset are critical commands.

Modes: ``OFF``, ``STARTUP``, ``POWER``, ``SHUTDOWN``, ``TRIPPED``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import CommandRejected
from fsw.process import FlightProcess, Frame

ALARM_POWER_PCT: Final = 105.0
SETBACK_POWER_PCT: Final = 108.0
ALARM_FUEL_C: Final = 820.0
SETBACK_FUEL_C: Final = 830.0
ALARM_PERIOD_S: Final = 60.0
INHIBIT_PERIOD_S: Final = 30.0

#: Rod insertion of one setback step (fraction of travel).
SETBACK_STEP: Final = 0.02

CHANNELS: Final = (
    "thermal_power_w",
    "electric_power_w",
    "fuel_temp_c",
    "rod_position",
    "period_s",
    "tripped",
    "converter_ok",
)


class ReactorProcess(FlightProcess):
    """Flight process of reactor supervision."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("thermal_power_w", ArgType.FLOAT, "W", "Fission thermal power."),
            Point("electric_power_w", ArgType.FLOAT, "W", "Electric power from the Stirling converters."),
            Point(
                "power_pct",
                ArgType.FLOAT,
                "%",
                "Thermal power in % of rated.",
                Limits(yellow_high=ALARM_POWER_PCT, red_high=SETBACK_POWER_PCT),
            ),
            Point(
                "fuel_temp_c",
                ArgType.FLOAT,
                "C",
                "Fuel temperature.",
                Limits(yellow_high=ALARM_FUEL_C, red_high=SETBACK_FUEL_C),
            ),
            Point("rod_position", ArgType.FLOAT, "", "Control rod withdrawal (0 in, 1 out)."),
            Point("rod_target", ArgType.FLOAT, "", "Commanded rod withdrawal."),
            Point(
                "period_s",
                ArgType.FLOAT,
                "s",
                "Reactor period.",
                Limits(yellow_low=ALARM_PERIOD_S, red_low=INHIBIT_PERIOD_S),
            ),
            Point("tripped", ArgType.BOOL, "", "The board has tripped the reactor (latched)."),
            Point("converter_ok", ArgType.BOOL, "", "Stirling converters removing heat."),
            Point("withdrawal_inhibit", ArgType.BOOL, "", "Rod withdrawal refused (short period)."),
            Point("mode", ArgType.STR, "", "OFF, STARTUP, POWER, SHUTDOWN or TRIPPED."),
        ),
        events=(
            EventDef("reactor_alarm", Severity.WARNING, "A quantity passed its alarm level."),
            EventDef("reactor_setback", Severity.ERROR, "A setback level was passed: rod inserted one step."),
            EventDef("reactor_trip", Severity.CRITICAL, "The board tripped the reactor."),
            EventDef("reactor_mode_changed", Severity.INFO, "Reactor supervision mode changed."),
        ),
        commands=(
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
                "Move the control rod (withdrawal refused under a short period or a trip).",
                critical=True,
            ),
            CommandDef("scram", (), "Insert the rod fully now and go to SHUTDOWN."),
            CommandDef("trip_reset", (), "Reset a latched board trip (rod stays in).", critical=True),
        ),
    )

    def setup(self) -> None:
        """Open the board and check its channels."""
        super().setup()
        self.rated_thermal_power_w = float(self.params.get("rated_thermal_power_w", 40_000.0))
        self.mode = "OFF"
        self.values: dict[str, Any] = {}
        self.rod_target = 0.0
        self.alarms: set[str] = set()
        self.withdrawal_inhibit = False
        if self.board is not None:
            self.board.description.require(CHANNELS, ("rod_target", "scram", "trip_reset"))

    def on_frame(self, frame: Frame) -> None:
        """Read the board, take its trip events, check alarm and setback levels."""
        if self.board is None:
            return
        self.values = dict(self.board.read().values)
        for event in self.board.poll_events():
            if event.name == "trip":
                self.event(
                    "reactor_trip",
                    **{k: v for k, v in event.data.items() if isinstance(v, (int, float, str, bool))},
                )
        power_pct = 100.0 * float(self.values["thermal_power_w"]) / self.rated_thermal_power_w
        fuel_c = float(self.values["fuel_temp_c"])
        period_s = float(self.values["period_s"])
        self.withdrawal_inhibit = 0.0 < period_s < INHIBIT_PERIOD_S
        self._alarm("power", power_pct >= ALARM_POWER_PCT, power_pct=round(power_pct, 2))
        self._alarm("fuel_temp", fuel_c >= ALARM_FUEL_C, fuel_temp_c=round(fuel_c, 1))
        self._alarm("period", 0.0 < period_s < ALARM_PERIOD_S, period_s=round(period_s, 1))
        if (power_pct >= SETBACK_POWER_PCT or fuel_c >= SETBACK_FUEL_C) and self.rod_target > 0.0:
            self.rod_target = max(0.0, float(self.values["rod_position"]) - SETBACK_STEP)
            self.board.command("rod_target", self.rod_target)
            self.event(
                "reactor_setback",
                power_pct=round(power_pct, 2),
                fuel_temp_c=round(fuel_c, 1),
                rod_target=round(self.rod_target, 4),
            )
        self._update_mode(power_pct)

    def _alarm(self, name: str, active: bool, **data: Any) -> None:
        if active and name not in self.alarms:
            self.alarms.add(name)
            self.event("reactor_alarm", quantity=name, active=True, **data)
        elif not active and name in self.alarms:
            self.alarms.discard(name)
            self.event("reactor_alarm", quantity=name, active=False, **data)

    def _update_mode(self, power_pct: float) -> None:
        if bool(self.values["tripped"]):
            mode = "TRIPPED"
        elif self.mode == "SHUTDOWN" and power_pct > 1.0:
            mode = "SHUTDOWN"
        elif self.rod_target <= 0.0 and power_pct <= 1.0:
            mode = "OFF"
        elif self.rod_target <= 0.0:
            mode = "SHUTDOWN"
        elif power_pct >= 50.0:
            mode = "POWER"
        else:
            mode = "STARTUP"
        if mode != self.mode:
            self.event("reactor_mode_changed", previous=self.mode, mode=mode)
            self.mode = mode

    def housekeeping(self) -> dict[str, Any]:
        """Board quantities plus supervision state."""
        points: dict[str, Any] = {k: self.values[k] for k in CHANNELS if k in self.values}
        if "thermal_power_w" in self.values:
            points["power_pct"] = round(
                100.0 * float(self.values["thermal_power_w"]) / self.rated_thermal_power_w, 3
            )
        points.update(rod_target=self.rod_target, withdrawal_inhibit=self.withdrawal_inhibit, mode=self.mode)
        return points

    def command_set_rod_target(self, position: float) -> dict[str, Any]:
        """Move the rod to ``position``; withdrawal is refused under a trip or a short period."""
        withdrawing = position > float(self.values.get("rod_position", 0.0))
        if withdrawing and bool(self.values.get("tripped", False)):
            msg = "reactor tripped: reset the trip before withdrawing the rod"
            raise CommandRejected(msg)
        if withdrawing and self.withdrawal_inhibit:
            period_s = float(self.values["period_s"])
            msg = f"withdrawal inhibited: period {period_s:.1f} s is under {INHIBIT_PERIOD_S:g} s"
            raise CommandRejected(msg)
        if self.board is not None:
            self.board.command("rod_target", position)
        self.rod_target = position
        return {"rod_target": position}

    def command_scram(self) -> dict[str, Any]:
        """Insert the rod fully."""
        if self.board is not None:
            self.board.command("scram", True)
        self.rod_target = 0.0
        self.mode = "SHUTDOWN"
        self.event("reactor_mode_changed", previous=self.mode, mode="SHUTDOWN")
        return {"rod_target": 0.0}

    def command_trip_reset(self) -> dict[str, Any]:
        """Reset the board's latched trip."""
        if self.board is not None:
            self.board.command("trip_reset", True)
        self.rod_target = 0.0
        return {"reset": True}
