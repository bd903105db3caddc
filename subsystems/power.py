"""Power subsystem: energy balance, battery protection and load shedding by tier.

Reads the power board (solar, reactor and load power, battery state of charge,
voltage and current, main bus voltage, and where the board has them the shunted
power, the demand on the reactor, the usable capacity, the cells in the string,
the tiers powered, charge inhibition and the board's own battery protection) and
switches the load tiers T1-T4 (T0 is never switched: reactor protection,
survival heaters, computer, safe-mode comms).

Autonomous shedding, one tier per control cycle, highest tier first, when the
depth of discharge reaches ``shed_dod`` (0.80) or the bus falls below
``shed_bus_v`` (110 V); everything but T0 goes at ``hard_cut_dod`` (0.90), even
with autonomous shedding disabled. With ``shed_only_while_discharging`` (off by
default) the depth-of-discharge rule sheds only while the battery still
discharges, so shedding stops at the first tier that balances the bus.

Tiers come back one per cycle, lowest first, only once the depth of discharge is
below ``restore_dod`` (0.70) and the bus at or above ``restore_bus_v`` (114 V):
the gap between the thresholds is the hysteresis. With ``restore_needs_surplus``
(on by default) a tier also waits until the net power (generation minus load)
covers its rating (``tier_loads_w``), so restoring it does not put the battery
straight back into discharge. A tier switched off by command stays off until
commanded on; a tier shed for energy and commanded on comes back when shedding
restores it (with autonomous shedding off, at once), so a command to restore loads
(fault protection's ``enter_nominal``) never fights the shedding.

Modes: ``NOMINAL``, ``ALARM`` (depth of discharge at ``alarm_dod`` 0.70 or more,
or bus below ``alarm_bus_v`` 114 V), ``SHEDDING`` (at least one tier shed),
``HARD_CUT``.

Accounting, each control cycle over the mission time since the last: energy
from the arrays and the reactor, to the loads, shunted (from the power readings);
the lowest state of charge and bus voltage; and the energy not served per tier:
its rating while it was wanted (not commanded off) but unpowered (shed, hard cut,
or cut by the board's own battery protection). :meth:`PowerProcess.statistics`
reports them at the end of a run.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Final

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import CommandRejected, ConfigError
from fsw.process import FlightProcess, Frame

TIERS: Final = (1, 2, 3, 4)

#: Channels every power board has.
CHANNELS: Final = (
    "solar_power_w",
    "reactor_power_w",
    "load_power_w",
    "battery_soc",
    "battery_voltage_v",
    "battery_current_a",
    "bus_voltage_v",
)

#: Channels used when the board has them (the simulated board does).
OPTIONAL_CHANNELS: Final = (
    "shunt_power_w",
    "reactor_demand_w",
    "battery_capacity_wh",
    "battery_cells",
    "charge_inhibited",
    "battery_protection",
)

#: Default tier ratings (W), T1-T4: the simulated board's.
TIER_LOADS_W: Final = (3000.0, 5000.0, 2500.0, 1500.0)

SECONDS_PER_HOUR: Final = 3600.0


def _tier_points() -> tuple[Point, ...]:
    return tuple(
        Point(
            f"energy_not_served_t{t}_wh",
            ArgType.FLOAT,
            "Wh",
            f"Energy T{t} could not have while shed or cut.",
        )
        for t in TIERS
    )


class PowerProcess(FlightProcess):
    """Flight process of the power subsystem."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("solar_power_w", ArgType.FLOAT, "W", "Solar array output."),
            Point("reactor_power_w", ArgType.FLOAT, "W", "Reactor electric output (Stirling)."),
            Point("load_power_w", ArgType.FLOAT, "W", "Power drawn by all loads."),
            Point("net_power_w", ArgType.FLOAT, "W", "Generation minus load; positive charges the battery."),
            Point("shunt_power_w", ArgType.FLOAT, "W", "Surplus the battery could not take, shunted."),
            Point("reactor_demand_w", ArgType.FLOAT, "W", "Electric power the bus asks of the reactor."),
            Point(
                "battery_soc",
                ArgType.FLOAT,
                "",
                "Battery state of charge (0..1).",
                Limits(red_low=0.10, yellow_low=0.30),
            ),
            Point(
                "battery_dod",
                ArgType.FLOAT,
                "",
                "Depth of discharge, 1 - state of charge.",
                Limits(yellow_high=0.70, red_high=0.90),
            ),
            Point("battery_soc_min", ArgType.FLOAT, "", "Lowest state of charge seen since start."),
            Point("battery_voltage_v", ArgType.FLOAT, "V", "Battery voltage."),
            Point("battery_current_a", ArgType.FLOAT, "A", "Battery current, positive when charging."),
            Point(
                "battery_capacity_wh", ArgType.FLOAT, "Wh", "Usable capacity now (cells in the string, cold)."
            ),
            Point("battery_cells", ArgType.INT, "", "Cells in the battery string (bypassed cells excluded)."),
            Point(
                "charge_inhibited", ArgType.BOOL, "", "The board refuses to charge (battery outside 0..40 C)."
            ),
            Point("battery_protection", ArgType.BOOL, "", "The board's own protection holds T1-T4 off."),
            Point(
                "bus_voltage_v",
                ArgType.FLOAT,
                "V",
                "120 V main bus.",
                Limits(red_low=100.0, yellow_low=114.0, yellow_high=128.0, red_high=132.0),
            ),
            Point("tiers_on", ArgType.INT, "", "Bit mask of tiers T1-T4 powered (bit 0 = T1)."),
            Point("tiers_shed", ArgType.INT, "", "Bit mask of tiers shed autonomously."),
            Point("tiers_commanded_off", ArgType.INT, "", "Bit mask of tiers switched off by command."),
            Point("energy_not_served_wh", ArgType.FLOAT, "Wh", "Energy the tiers could not have, all tiers."),
            *_tier_points(),
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
                "Switch a load tier. A tier switched off stays off until switched on; a tier shed for "
                "energy comes back when autonomous shedding restores it (result shed: true).",
            ),
            CommandDef(
                "set_autonomous_shedding",
                (Arg("enabled", ArgType.BOOL),),
                "Enable or disable autonomous load shedding (hard cut stays armed).",
            ),
        ),
    )

    def setup(self) -> None:
        """Read the parameters, open the board and check it has the power channels and tier switches.

        Raises :class:`ConfigError` naming the parameter for a bad threshold.
        """
        self._read_params()
        super().setup()
        self.autonomous = True
        self.commanded_off: set[int] = set()
        self.shed: set[int] = set()
        self.values: dict[str, Any] = {}
        self.mode = "NOMINAL"
        self._last_t_s: float | None = None
        self.soc_min = math.inf
        self.bus_voltage_min_v = math.inf
        self.energy_wh = {"solar": 0.0, "reactor": 0.0, "load": 0.0, "shunted": 0.0}
        self.not_served_wh = dict.fromkeys(TIERS, 0.0)
        self.shed_events = 0
        self.restore_events = 0
        self.hard_cuts = 0
        if self.board is not None:
            self.board.description.require(CHANNELS, tuple(f"load_t{t}" for t in TIERS))

    def _read_params(self) -> None:
        params = self.params

        def number(key: str, default: float) -> float:
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                msg = f"[processes.{self.name}.params] {key} must be a number, got {value!r}"
                raise ConfigError(msg)
            return float(value)

        def boolean(key: str, default: bool) -> bool:
            value = params.get(key, default)
            if not isinstance(value, bool):
                msg = f"[processes.{self.name}.params] {key} must be true or false, got {value!r}"
                raise ConfigError(msg)
            return value

        self.alarm_dod = number("alarm_dod", 0.70)
        self.shed_dod = number("shed_dod", 0.80)
        self.restore_dod = number("restore_dod", 0.70)
        self.hard_cut_dod = number("hard_cut_dod", 0.90)
        self.alarm_bus_v = number("alarm_bus_v", 114.0)
        self.shed_bus_v = number("shed_bus_v", 110.0)
        self.restore_bus_v = number("restore_bus_v", 114.0)
        self.shed_only_while_discharging = boolean("shed_only_while_discharging", False)
        self.restore_needs_surplus = boolean("restore_needs_surplus", True)
        checks = (
            ("alarm_dod", 0.0 < self.alarm_dod <= self.shed_dod, "in (0, shed_dod]"),
            ("shed_dod", self.shed_dod < self.hard_cut_dod, "below hard_cut_dod"),
            ("hard_cut_dod", self.hard_cut_dod <= 1.0, "at most 1"),
            ("restore_dod", 0.0 < self.restore_dod < self.shed_dod, "in (0, shed_dod): the hysteresis"),
            ("restore_bus_v", self.restore_bus_v > self.shed_bus_v, "above shed_bus_v: the hysteresis"),
            ("alarm_bus_v", self.alarm_bus_v >= self.shed_bus_v, "at least shed_bus_v"),
        )
        for key, ok, what in checks:
            if not ok:
                msg = f"[processes.{self.name}.params] {key} must be {what}"
                raise ConfigError(msg)
        loads = params.get("tier_loads_w", TIER_LOADS_W)
        if (
            not isinstance(loads, (list, tuple))
            or len(loads) != len(TIERS)
            or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0.0 for w in loads)
        ):
            msg = (
                f"[processes.{self.name}.params] tier_loads_w must list 4 positive powers (W), got {loads!r}"
            )
            raise ConfigError(msg)
        self.tier_loads_w = {t: float(w) for t, w in zip(TIERS, loads, strict=True)}

    # ------------------------------------------------------------------ control cycle

    def on_frame(self, frame: Frame) -> None:
        """Read the board, account the interval, update the mode, shed or restore one tier."""
        if self.board is None:
            return
        self.values = dict(self.board.read().values)
        soc = float(self.values["battery_soc"])
        dod = 1.0 - soc
        bus_v = float(self.values["bus_voltage_v"])
        dt_s = 0.0 if self._last_t_s is None else max(0.0, frame.t_s - self._last_t_s)
        self._last_t_s = frame.t_s
        self._account(dt_s, soc, bus_v)
        if dod >= self.hard_cut_dod:
            cut = [t for t in TIERS if t not in self.shed and t not in self.commanded_off]
            if cut:
                self.hard_cuts += 1
            for tier in cut:
                self._shed(tier, f"hard cut: depth of discharge {dod:.2f}")
        elif self.autonomous and self._shed_wanted(dod, bus_v):
            candidates = [t for t in reversed(TIERS) if t not in self.shed and t not in self.commanded_off]
            if candidates:
                self._shed(candidates[0], f"depth of discharge {dod:.2f}, bus {bus_v:.1f} V")
        elif self.shed and dod < self.restore_dod and bus_v >= self.restore_bus_v:
            tier = min(self.shed)
            if not self.restore_needs_surplus or self._net_power_w() >= self.tier_loads_w[tier]:
                self.shed.discard(tier)
                self._switch(tier, on=True)
                self.restore_events += 1
                self.event("load_restored", tier=tier, dod=round(dod, 4), bus_voltage_v=round(bus_v, 2))
        self._set_mode(dod, bus_v)

    def _shed_wanted(self, dod: float, bus_v: float) -> bool:
        if bus_v < self.shed_bus_v:
            return True
        if dod < self.shed_dod:
            return False
        return not self.shed_only_while_discharging or float(self.values["battery_current_a"]) < 0.0

    def _net_power_w(self) -> float:
        values = self.values
        return (
            float(values["solar_power_w"]) + float(values["reactor_power_w"]) - float(values["load_power_w"])
        )

    def _powered(self) -> set[int]:
        """Tiers powered now: the board's ``tiers_powered`` if it has it, else what was not shed."""
        mask = self.values.get("tiers_powered")
        if isinstance(mask, int) and not isinstance(mask, bool):
            return {t for t in TIERS if mask & (1 << (t - 1))}
        return {t for t in TIERS if t not in self.shed and t not in self.commanded_off}

    def _account(self, dt_s: float, soc: float, bus_v: float) -> None:
        """Integrate the interval ending now (the readings describe it)."""
        if math.isfinite(soc):
            self.soc_min = min(self.soc_min, soc)
        if math.isfinite(bus_v):
            self.bus_voltage_min_v = min(self.bus_voltage_min_v, bus_v)
        if dt_s <= 0.0:
            return
        dt_h = dt_s / SECONDS_PER_HOUR
        values = self.values
        for key, channel in (
            ("solar", "solar_power_w"),
            ("reactor", "reactor_power_w"),
            ("load", "load_power_w"),
            ("shunted", "shunt_power_w"),
        ):
            power_w = float(values.get(channel, 0.0))
            if math.isfinite(power_w):
                self.energy_wh[key] += power_w * dt_h
        powered = self._powered()
        for tier in TIERS:
            if tier not in self.commanded_off and tier not in powered:
                self.not_served_wh[tier] += self.tier_loads_w[tier] * dt_h

    def _shed(self, tier: int, reason: str) -> None:
        self.shed.add(tier)
        self._switch(tier, on=False)
        self.shed_events += 1
        self.event("load_shed", tier=tier, reason=reason)

    def _switch(self, tier: int, *, on: bool) -> None:
        if self.board is not None:
            self.board.command(f"load_t{tier}", on)

    def _set_mode(self, dod: float, bus_v: float) -> None:
        if dod >= self.hard_cut_dod:
            mode = "HARD_CUT"
        elif self.shed:
            mode = "SHEDDING"
        elif dod >= self.alarm_dod or bus_v < self.alarm_bus_v:
            mode = "ALARM"
        else:
            mode = "NOMINAL"
        if mode != self.mode:
            self.event("power_mode_changed", previous=self.mode, mode=mode, dod=round(dod, 4))
            self.mode = mode

    # ------------------------------------------------------------------ reports

    def housekeeping(self) -> dict[str, Any]:
        """Every board quantity plus the derived ones."""
        values = self.values
        if not values:
            return {"mode": self.mode}
        not_served = {f"energy_not_served_t{t}_wh": round(wh, 3) for t, wh in self.not_served_wh.items()}
        return {
            **{name: values[name] for name in CHANNELS},
            **{name: values[name] for name in OPTIONAL_CHANNELS if name in values},
            "net_power_w": round(self._net_power_w(), 3),
            "battery_dod": round(1.0 - float(values["battery_soc"]), 6),
            "battery_soc_min": round(self.soc_min, 6) if math.isfinite(self.soc_min) else math.nan,
            "tiers_on": sum(1 << (t - 1) for t in self._powered()),
            "tiers_shed": sum(1 << (t - 1) for t in self.shed),
            "tiers_commanded_off": sum(1 << (t - 1) for t in self.commanded_off),
            "energy_not_served_wh": round(sum(self.not_served_wh.values()), 3),
            **not_served,
            "mode": self.mode,
        }

    def statistics(self) -> dict[str, Any]:
        """What the run did: extremes, energies, energy not served per tier, shedding counts."""
        stats: dict[str, Any] = {}
        if math.isfinite(self.soc_min):
            stats["battery_soc_min"] = round(self.soc_min, 4)
        if math.isfinite(self.bus_voltage_min_v):
            stats["bus_voltage_min_v"] = round(self.bus_voltage_min_v, 2)
        stats.update(
            {
                "solar_energy_kwh": round(self.energy_wh["solar"] / 1000.0, 3),
                "reactor_energy_kwh": round(self.energy_wh["reactor"] / 1000.0, 3),
                "load_energy_kwh": round(self.energy_wh["load"] / 1000.0, 3),
                "shunted_energy_kwh": round(self.energy_wh["shunted"] / 1000.0, 3),
                "energy_not_served_wh": round(sum(self.not_served_wh.values()), 1),
                **{f"energy_not_served_t{t}_wh": round(wh, 1) for t, wh in self.not_served_wh.items()},
                "shed_events": self.shed_events,
                "restore_events": self.restore_events,
                "hard_cuts": self.hard_cuts,
            }
        )
        return stats

    # ------------------------------------------------------------------ commands

    def command_switch_load(self, tier: int, on: bool) -> dict[str, Any]:
        """Switch ``tier``; refused while a hard cut holds it off."""
        if on and self.mode == "HARD_CUT":
            msg = "hard cut in force: tiers stay off until the battery recovers"
            raise CommandRejected(msg)
        if on:
            self.commanded_off.discard(tier)
            if tier in self.shed and self.autonomous:
                # Shed for energy: it comes back when shedding restores it, not before.
                return {"tier": tier, "on": False, "shed": True}
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
