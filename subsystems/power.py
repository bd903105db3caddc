"""Power subsystem: energy balance, battery protection and load shedding by tier.

Reads the power board (solar, reactor and load power, battery state of charge,
voltage and current, main bus voltage) and switches the load tiers T1-T4
(T0 is never switched: reactor protection, survival heaters, computer,
safe-mode comms).

Autonomous shedding, one tier per control cycle, highest tier first, when the
depth of discharge reaches ``shed_dod`` (0.80) or the bus falls below
``shed_bus_v`` (110 V); everything but T0 goes at ``hard_cut_dod`` (0.90).
Tiers come back one per cycle, lowest first, only once the depth of discharge
is below ``restore_dod`` (0.70) and the bus above ``restore_bus_v`` (114 V): the
gap between the two thresholds is the hysteresis. A tier switched off by
command stays off until commanded on.

Modes: ``NOMINAL``, ``ALARM`` (depth of discharge past 0.70 or bus below 114 V),
``SHEDDING`` (at least one tier shed), ``HARD_CUT``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import CommandRejected
from fsw.process import FlightProcess, Frame

TIERS: Final = (1, 2, 3, 4)

CHANNELS: Final = (
    "solar_power_w",
    "reactor_power_w",
    "load_power_w",
    "battery_soc",
    "battery_voltage_v",
    "battery_current_a",
    "bus_voltage_v",
)


class PowerProcess(FlightProcess):
    """Flight process of the power subsystem."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("solar_power_w", ArgType.FLOAT, "W", "Solar array output."),
            Point("reactor_power_w", ArgType.FLOAT, "W", "Reactor electric output (Stirling)."),
            Point("load_power_w", ArgType.FLOAT, "W", "Power drawn by all loads."),
            Point("net_power_w", ArgType.FLOAT, "W", "Generation minus load; positive charges the battery."),
            Point(
                "battery_soc",
                ArgType.FLOAT,
                "",
                "Battery state of charge (0..1).",
                Limits(red_low=0.10, yellow_low=0.30),
            ),
            Point("battery_dod", ArgType.FLOAT, "", "Depth of discharge, 1 - state of charge."),
            Point("battery_voltage_v", ArgType.FLOAT, "V", "Battery voltage."),
            Point("battery_current_a", ArgType.FLOAT, "A", "Battery current, positive when charging."),
            Point(
                "bus_voltage_v",
                ArgType.FLOAT,
                "V",
                "120 V main bus.",
                Limits(red_low=100.0, yellow_low=114.0, yellow_high=128.0, red_high=132.0),
            ),
            Point("tiers_on", ArgType.INT, "", "Bit mask of tiers T1-T4 switched on (bit 0 = T1)."),
            Point("tiers_shed", ArgType.INT, "", "Bit mask of tiers shed autonomously."),
            Point("mode", ArgType.STR, "", "NOMINAL, ALARM, SHEDDING or HARD_CUT."),
        ),
        events=(
            EventDef("power_mode_changed", Severity.INFO, "The power mode changed."),
            EventDef("load_shed", Severity.WARNING, "A load tier was shed autonomously."),
            EventDef("load_restored", Severity.INFO, "A shed load tier was restored."),
            EventDef("load_switched", Severity.INFO, "A load tier was switched by command."),
        ),
        commands=(
            CommandDef(
                "switch_load",
                (
                    Arg("tier", ArgType.INT, low=1, high=4, description="Load tier T1..T4."),
                    Arg("on", ArgType.BOOL, description="Switch on (true) or off (false)."),
                ),
                "Switch a load tier. A tier switched off stays off until switched on.",
            ),
            CommandDef(
                "set_autonomous_shedding",
                (Arg("enabled", ArgType.BOOL),),
                "Enable or disable autonomous load shedding (hard cut stays armed).",
            ),
        ),
    )

    def setup(self) -> None:
        """Open the board and check it has the power channels and tier switches."""
        super().setup()
        self.shed_dod = float(self.params.get("shed_dod", 0.80))
        self.alarm_dod = float(self.params.get("alarm_dod", 0.70))
        self.restore_dod = float(self.params.get("restore_dod", 0.70))
        self.hard_cut_dod = float(self.params.get("hard_cut_dod", 0.90))
        self.shed_bus_v = float(self.params.get("shed_bus_v", 110.0))
        self.restore_bus_v = float(self.params.get("restore_bus_v", 114.0))
        self.autonomous = True
        self.commanded_off: set[int] = set()
        self.shed: set[int] = set()
        self.values: dict[str, Any] = {}
        self.mode = "NOMINAL"
        if self.board is not None:
            self.board.description.require(CHANNELS, tuple(f"load_t{t}" for t in TIERS))

    def on_frame(self, frame: Frame) -> None:
        """Read the board, update the mode, shed or restore one tier."""
        if self.board is None:
            return
        self.values = dict(self.board.read().values)
        dod = 1.0 - float(self.values["battery_soc"])
        bus_v = float(self.values["bus_voltage_v"])
        if dod >= self.hard_cut_dod:
            for tier in TIERS:
                if tier not in self.shed and tier not in self.commanded_off:
                    self._shed(tier, f"hard cut: depth of discharge {dod:.2f}")
        elif self.autonomous and (dod >= self.shed_dod or bus_v < self.shed_bus_v):
            candidates = [t for t in reversed(TIERS) if t not in self.shed and t not in self.commanded_off]
            if candidates:
                self._shed(candidates[0], f"depth of discharge {dod:.2f}, bus {bus_v:.1f} V")
        elif self.shed and dod < self.restore_dod and bus_v >= self.restore_bus_v:
            tier = min(self.shed)
            self.shed.discard(tier)
            self._switch(tier, on=True)
            self.event("load_restored", tier=tier, dod=round(dod, 4), bus_voltage_v=round(bus_v, 2))
        self._set_mode(dod, bus_v)

    def _shed(self, tier: int, reason: str) -> None:
        self.shed.add(tier)
        self._switch(tier, on=False)
        self.event("load_shed", tier=tier, reason=reason)

    def _switch(self, tier: int, *, on: bool) -> None:
        if self.board is not None:
            self.board.command(f"load_t{tier}", on)

    def _set_mode(self, dod: float, bus_v: float) -> None:
        if dod >= self.hard_cut_dod:
            mode = "HARD_CUT"
        elif self.shed:
            mode = "SHEDDING"
        elif dod >= self.alarm_dod or bus_v < self.restore_bus_v:
            mode = "ALARM"
        else:
            mode = "NOMINAL"
        if mode != self.mode:
            self.event("power_mode_changed", previous=self.mode, mode=mode, dod=round(dod, 4))
            self.mode = mode

    def housekeeping(self) -> dict[str, Any]:
        """Every board quantity plus the derived ones."""
        values = self.values
        if not values:
            return {"mode": self.mode}
        generation_w = float(values["solar_power_w"]) + float(values["reactor_power_w"])
        on_mask = sum(1 << (t - 1) for t in TIERS if t not in self.shed and t not in self.commanded_off)
        return {
            **{name: values[name] for name in CHANNELS},
            "net_power_w": round(generation_w - float(values["load_power_w"]), 3),
            "battery_dod": round(1.0 - float(values["battery_soc"]), 6),
            "tiers_on": on_mask,
            "tiers_shed": sum(1 << (t - 1) for t in self.shed),
            "mode": self.mode,
        }

    def command_switch_load(self, tier: int, on: bool) -> dict[str, Any]:
        """Switch ``tier``; refused while a hard cut holds it off."""
        if on and self.mode == "HARD_CUT":
            msg = "hard cut in force: tiers stay off until the battery recovers"
            raise CommandRejected(msg)
        if on:
            self.commanded_off.discard(tier)
            self.shed.discard(tier)
        else:
            self.commanded_off.add(tier)
        self._switch(tier, on=on)
        self.event("load_switched", tier=tier, on=on)
        return {"tier": tier, "on": on}

    def command_set_autonomous_shedding(self, enabled: bool) -> dict[str, Any]:
        """Enable or disable autonomous shedding."""
        self.autonomous = enabled
        return {"enabled": enabled}
