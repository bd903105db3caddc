"""Thermal subsystem: heater thermostats, survival mode on scarce power, node limits.

Nodes. Reads five lumped nodes from the thermal board: battery, avionics, main radiator,
habitat and reactor radiator (the Stirling converters' cold end), and the heaters' draw
(``heater_power_w``, survival heaters included) when the board has that channel.

Thermostats. Drives the battery, avionics and habitat heaters: full duty below a node's
low set point, off above its high set point, no change in between (the band is the
hysteresis). A reading that is not a number changes nothing. Operating bands (C): battery
5..10, avionics -15..-10, habitat 18.5..19.5 (``set_setpoint`` changes them); survival
bands: battery 2..5 (above 0 C the battery can still be charged), avionics -30..-25 (10 K
above the -40 C survival limit), habitat 2..5 (above freezing). The board's own hardware
thermostats (battery below 0 C, avionics below -35 C) sit under these, for when flight
software is silent.

Modes: ``NOMINAL`` (operating bands) and ``SURVIVAL`` (survival bands: heaters only keep
hardware alive). The process goes to ``SURVIVAL`` on its own when the power subsystem's
housekeeping (``tlm.power.hk``) reports mode ``SHEDDING`` or ``HARD_CUT``, and back to
``NOMINAL`` once power has reported ``NOMINAL`` or ``ALARM`` continuously for
``survival_exit_s`` of mission time (600 s: the hysteresis, so the heaters coming back do
not throw power straight back into shedding). ``set_mode`` switches by command; a
commanded ``SURVIVAL`` stays until commanded off, and ``NOMINAL`` is refused while power
is shedding (unless ``set_autonomous_survival`` has turned the automatic switching off).

Limits. Every change of a node's limit state (green, yellow, red, invalid) is one
``thermal_limit`` event: one per transition, not one per frame.

Parameters (``[processes.thermal.params]``): ``survival_exit_s`` (600, within [0, 1e6]);
a bad one raises :class:`~fsw.errors.ConfigError` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from fsw.deployment import numeric_params
from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import CommandRejected
from fsw.messages import Kind, Message
from fsw.process import FlightProcess, Frame

NOMINAL: Final = "NOMINAL"
SURVIVAL: Final = "SURVIVAL"
MODES: Final = (NOMINAL, SURVIVAL)

#: Every node of the thermal board, as its channel ``<node>_temp_c`` names it.
NODES: Final = ("battery", "avionics", "radiator", "habitat", "reactor_radiator")

#: Heated nodes: thermostat bands (low, high) in C, operating then survival.
OPERATING_BANDS_C: Final = {"battery": (5.0, 10.0), "avionics": (-15.0, -10.0), "habitat": (18.5, 19.5)}
SURVIVAL_BANDS_C: Final = {"battery": (2.0, 5.0), "avionics": (-30.0, -25.0), "habitat": (2.0, 5.0)}
HEATED: Final = tuple(OPERATING_BANDS_C)

#: Limits per node (C): yellow at the operating range, red at the survival range.
NODE_LIMITS: Final = {
    # Li-ion: 0..40 C operating, -10..50 C survival.
    "battery": Limits(red_low=-10.0, yellow_low=0.0, yellow_high=40.0, red_high=50.0),
    # Electronics: -20..50 C operating, -40..85 C survival.
    "avionics": Limits(red_low=-40.0, yellow_low=-20.0, yellow_high=50.0, red_high=85.0),
    "radiator": Limits(red_low=-150.0, yellow_high=150.0, red_high=200.0),
    # Pressurised module: 18..24 C operating; water freezes at 0 C.
    "habitat": Limits(red_low=0.0, yellow_low=18.0, yellow_high=24.0, red_high=35.0),
    # Converter cold end: 80 C at rated power in sunlight; hotter costs conversion efficiency.
    "reactor_radiator": Limits(yellow_high=100.0, red_high=120.0),
}

#: Heater ratings (W) of the default board, for the energy estimate of a board that does not
#: report ``heater_power_w``.
HEATER_RATING_W: Final = {"battery": 400.0, "avionics": 200.0, "habitat": 2000.0}

#: The process whose housekeeping says whether power is scarce, and its modes.
POWER_PROCESS: Final = "power"
POWER_SCARCE: Final = frozenset({"SHEDDING", "HARD_CUT"})
POWER_AVAILABLE: Final = frozenset({"NOMINAL", "ALARM"})

#: ``[processes.thermal.params]``: name -> (default, low, high).
PARAMS: Final[dict[str, tuple[float, float, float]]] = {
    "survival_exit_s": (600.0, 0.0, 1e6),
}

JOULES_PER_KWH: Final = 3.6e6


def read_params(params: Mapping[str, Any]) -> dict[str, float]:
    """The thermal parameters with their defaults; raises :class:`ConfigError` naming a bad one."""
    return numeric_params(params, PARAMS, "processes.thermal.params")


class ThermalControl:
    """The thermostats and the mode machine, apart from the bus and the board.

    Mode transitions (the table): NOMINAL -> SURVIVAL on ``power_scarce`` (autonomous) or
    by command; SURVIVAL (cause ``power``) -> NOMINAL once ``power_back_for_exit_s`` holds
    (autonomous) or by command unless ``power_scarce``; SURVIVAL (cause ``command``) ->
    NOMINAL by command only. Time is mission time, given with each power report.
    """

    def __init__(self, survival_exit_s: float = PARAMS["survival_exit_s"][0]) -> None:
        self.survival_exit_s = survival_exit_s
        self.mode = NOMINAL
        #: Why the mode is SURVIVAL: ``power`` (autonomous) or ``command``; empty in NOMINAL.
        self.cause = ""
        self.autonomous = True
        self.set_points = dict(OPERATING_BANDS_C)
        self.duty = dict.fromkeys(HEATED, 0.0)
        #: The power subsystem's last reported mode, and since when (mission s) power has been back.
        self.power_mode = ""
        self.power_back_since_s: float | None = None

    # ----------------------------------------------------------------- thermostats

    def band(self, node: str) -> tuple[float, float]:
        """The thermostat band (low, high) of ``node`` in the present mode (C)."""
        return SURVIVAL_BANDS_C[node] if self.mode == SURVIVAL else self.set_points[node]

    def thermostat(self, temps_c: Mapping[str, float]) -> dict[str, float]:
        """Heater duties that must change for ``temps_c``: full below the band, off above it.

        Returns ``{node: new duty}``; :meth:`commanded` records a duty once the board took it.
        """
        changes: dict[str, float] = {}
        for node in HEATED:
            low_c, high_c = self.band(node)
            temp_c = temps_c.get(node, math.nan)
            duty = self.duty[node]
            if temp_c < low_c:
                duty = 1.0
            elif temp_c > high_c:
                duty = 0.0
            if duty != self.duty[node]:
                changes[node] = duty
        return changes

    def commanded(self, node: str, duty: float) -> None:
        """The board accepted ``duty`` for ``node``'s heater."""
        self.duty[node] = duty

    def set_band(self, node: str, low_c: float, high_c: float) -> None:
        """Set ``node``'s operating band; raises :class:`CommandRejected` unless low < high."""
        if not low_c < high_c:
            msg = f"low_c {low_c} must be below high_c {high_c}"
            raise CommandRejected(msg)
        self.set_points[node] = (low_c, high_c)

    # ----------------------------------------------------------------- mode machine

    def power_scarce(self) -> bool:
        """Guard: the power subsystem reports it is shedding loads."""
        return self.power_mode in POWER_SCARCE

    def power_back_for_exit(self, t_s: float) -> bool:
        """Guard: power has reported NOMINAL or ALARM for ``survival_exit_s`` up to ``t_s``."""
        since = self.power_back_since_s
        return since is not None and t_s - since >= self.survival_exit_s

    def on_power_mode(self, power_mode: str, t_s: float) -> tuple[str, str] | None:
        """Note the power subsystem's mode at mission time ``t_s``.

        Returns ``(previous mode, new mode)`` when this switches the thermal mode, else None.
        An unknown power mode is ignored.
        """
        if power_mode not in POWER_SCARCE and power_mode not in POWER_AVAILABLE:
            return None
        if power_mode in POWER_AVAILABLE:
            if self.power_back_since_s is None:
                self.power_back_since_s = t_s
        else:
            self.power_back_since_s = None
        self.power_mode = power_mode
        if not self.autonomous:
            return None
        if self.mode == NOMINAL and self.power_scarce():
            return self._switch(SURVIVAL, "power")
        if self.mode == SURVIVAL and self.cause == "power" and self.power_back_for_exit(t_s):
            return self._switch(NOMINAL, "")
        return None

    def command_mode(self, mode: str) -> tuple[str, str] | None:
        """Switch to ``mode`` by command; returns the transition or None if already there.

        Raises :class:`CommandRejected` for NOMINAL while power is shedding and the switching
        is autonomous.
        """
        if mode not in MODES:
            msg = f"mode {mode!r} must be one of {', '.join(MODES)}"
            raise CommandRejected(msg)
        if mode == NOMINAL and self.autonomous and self.power_scarce():
            msg = (
                f"power is {self.power_mode}: thermal stays in SURVIVAL until power recovers "
                "(or turn autonomous survival off first)"
            )
            raise CommandRejected(msg)
        if mode == SURVIVAL:
            previous, _ = self._switch(SURVIVAL, "command")
            return (previous, SURVIVAL) if previous != SURVIVAL else None
        if self.mode == NOMINAL:
            return None
        return self._switch(NOMINAL, "")

    def _switch(self, mode: str, cause: str) -> tuple[str, str]:
        previous, self.mode, self.cause = self.mode, mode, cause
        return (previous, mode)


def _reading(value: object) -> float:
    """A channel reading as a float; NaN for anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


class ThermalProcess(FlightProcess):
    """Flight process of the thermal subsystem (see the module docstring)."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            *(
                Point(
                    f"{n}_temp_c",
                    ArgType.FLOAT,
                    "C",
                    f"{n.replace('_', ' ').capitalize()} node temperature.",
                    NODE_LIMITS[n],
                )
                for n in NODES
            ),
            *(Point(f"heater_{n}", ArgType.FLOAT, "", f"{n.title()} heater duty (0..1).") for n in HEATED),
            Point("heater_power_w", ArgType.FLOAT, "W", "Heater draw, hardware survival heaters included."),
            Point("heater_energy_kwh", ArgType.FLOAT, "kWh", "Heater energy since the process started."),
            Point("mode", ArgType.STR, "", "NOMINAL or SURVIVAL."),
            Point("survival_cause", ArgType.STR, "", "Why SURVIVAL: power (autonomous) or command; empty."),
            Point("power_mode", ArgType.STR, "", "The power subsystem's mode, as last reported."),
            Point("autonomous_survival", ArgType.BOOL, "", "SURVIVAL follows the power subsystem."),
            Point("nodes_out_of_limits", ArgType.INT, "", "Nodes outside their yellow limits."),
        ),
        events=(
            EventDef("thermal_limit", Severity.WARNING, "A node left or re-entered its limits."),
            EventDef("thermal_mode_changed", Severity.INFO, "Thermal mode changed (with the cause)."),
        ),
        commands=(
            CommandDef(
                "set_setpoint",
                (
                    Arg("node", ArgType.STR, choices=HEATED),
                    Arg("low_c", ArgType.FLOAT, "C", low=-60.0, high=60.0),
                    Arg("high_c", ArgType.FLOAT, "C", low=-60.0, high=60.0),
                ),
                "Set a heater's thermostat band (operating mode).",
            ),
            CommandDef(
                "set_mode",
                (Arg("mode", ArgType.STR, choices=MODES),),
                "Switch between operating and survival set points (NOMINAL is refused while "
                "power is shedding and survival is autonomous).",
            ),
            CommandDef(
                "set_autonomous_survival",
                (Arg("enabled", ArgType.BOOL),),
                "Let the power subsystem's shedding switch SURVIVAL on and off (default on).",
            ),
        ),
    )

    def setup(self) -> None:
        """Check the parameters, open the board and check its nodes and heaters."""
        params = read_params(self.params)
        super().setup()
        self.control = ThermalControl(params["survival_exit_s"])
        self.mode = self.control.mode
        self.temps: dict[str, float] = {}
        self.heater_power_w = 0.0
        self.limit_state = dict.fromkeys(NODES, "green")
        # Run statistics.
        self.peak_c: dict[str, float] = {}
        self.min_c: dict[str, float] = {}
        self.heater_energy_j = 0.0
        self.survival_time_s = 0.0
        self.survival_entries = 0
        self.limit_violations = 0
        self.red_limit_violations = 0
        self._last_frame_s: float | None = None
        self._measured_heater_power = False
        if self.board is not None:
            self.board.description.require(
                tuple(f"{n}_temp_c" for n in NODES), tuple(f"heater_{n}" for n in HEATED)
            )
            self._measured_heater_power = any(
                c.name == "heater_power_w" for c in self.board.description.channels
            )

    def extra_subscriptions(self) -> tuple[bytes, ...]:
        """The power subsystem's housekeeping (its mode says whether power is scarce)."""
        return (f"tlm.{POWER_PROCESS}.hk".encode(),)

    def on_message(self, message: Message) -> None:
        """Follow the power subsystem's mode: SURVIVAL while it sheds (see the module docstring)."""
        if message.kind is not Kind.TELEMETRY or message.source != POWER_PROCESS or message.name != "hk":
            return
        power_mode = message.data.get("mode")
        if not isinstance(power_mode, str):
            return
        self._apply(self.control.on_power_mode(power_mode, message.t_s), f"power {power_mode}")

    def _apply(self, transition: tuple[str, str] | None, reason: str) -> None:
        if transition is None:
            return
        previous, mode = transition
        self.mode = mode
        if mode == SURVIVAL and previous != SURVIVAL:
            self.survival_entries += 1
        self.event(
            "thermal_mode_changed", previous=previous, mode=mode, cause=self.control.cause, reason=reason
        )

    def on_frame(self, frame: Frame) -> None:
        """Read temperatures, run the thermostats, report limit changes, keep the statistics."""
        if self.board is None:
            return
        self._account(frame.t_s)
        values = self.board.read().values
        self.temps = {n: _reading(values.get(f"{n}_temp_c")) for n in NODES}
        for node, duty in self.control.thermostat(self.temps).items():
            self.board.command(f"heater_{node}", duty)
            self.control.commanded(node, duty)
        if self._measured_heater_power:
            self.heater_power_w = _reading(values.get("heater_power_w"))
        else:
            self.heater_power_w = sum(HEATER_RATING_W[n] * d for n, d in self.control.duty.items())
        for node in NODES:
            temp_c = self.temps[node]
            if math.isfinite(temp_c):
                self.peak_c[node] = max(self.peak_c.get(node, temp_c), temp_c)
                self.min_c[node] = min(self.min_c.get(node, temp_c), temp_c)
            state = NODE_LIMITS[node].state(temp_c)
            if state != self.limit_state[node]:
                if self.limit_state[node] == "green" and state in ("yellow", "red"):
                    self.limit_violations += 1
                if state == "red":
                    self.red_limit_violations += 1
                self.event(
                    "thermal_limit",
                    node=node,
                    state=state,
                    previous=self.limit_state[node],
                    temp_c=round(temp_c, 2) if math.isfinite(temp_c) else None,
                )
                self.limit_state[node] = state

    def _account(self, t_s: float) -> None:
        """Heater energy and time in SURVIVAL up to ``t_s``, at the previous frame's values."""
        last_s, self._last_frame_s = self._last_frame_s, t_s
        if last_s is None or t_s <= last_s:
            return
        dt_s = t_s - last_s
        if math.isfinite(self.heater_power_w):
            self.heater_energy_j += self.heater_power_w * dt_s
        if self.mode == SURVIVAL:
            self.survival_time_s += dt_s

    def housekeeping(self) -> dict[str, Any]:
        """Temperatures, heater duties and draw, mode and its cause, limits."""
        control = self.control
        points: dict[str, Any] = {f"{n}_temp_c": round(t, 3) for n, t in self.temps.items()}
        points.update({f"heater_{n}": d for n, d in control.duty.items()})
        points["heater_power_w"] = round(self.heater_power_w, 3)
        points["heater_energy_kwh"] = round(self.heater_energy_j / JOULES_PER_KWH, 4)
        points["mode"] = self.mode
        points["survival_cause"] = control.cause
        points["power_mode"] = control.power_mode
        points["autonomous_survival"] = control.autonomous
        points["nodes_out_of_limits"] = sum(1 for s in self.limit_state.values() if s != "green")
        return points

    def statistics(self) -> dict[str, Any]:
        """Peak and minimum temperature per node, heater energy, time in SURVIVAL, limit violations.

        ``limit_violations`` counts a node leaving green (yellow or red), ``red_limit_violations``
        a node entering red.
        """
        stats: dict[str, Any] = {}
        for node in NODES:
            if node in self.peak_c:
                stats[f"{node}_temp_peak_c"] = round(self.peak_c[node], 2)
                stats[f"{node}_temp_min_c"] = round(self.min_c[node], 2)
        stats["heater_energy_kwh"] = round(self.heater_energy_j / JOULES_PER_KWH, 3)
        stats["survival_time_h"] = round(self.survival_time_s / 3600.0, 3)
        stats["survival_entries"] = self.survival_entries
        stats["limit_violations"] = self.limit_violations
        stats["red_limit_violations"] = self.red_limit_violations
        return stats

    def command_set_setpoint(self, node: str, low_c: float, high_c: float) -> dict[str, Any]:
        """Set the operating band of ``node``'s heater."""
        self.control.set_band(node, low_c, high_c)
        return {"node": node, "low_c": low_c, "high_c": high_c}

    def command_set_mode(self, mode: str) -> dict[str, Any]:
        """Switch to ``mode`` (NOMINAL refused while power sheds and survival is autonomous)."""
        self._apply(self.control.command_mode(mode), "command")
        return {"mode": self.control.mode, "cause": self.control.cause}

    def command_set_autonomous_survival(self, enabled: bool) -> dict[str, Any]:
        """Let (or stop) the power subsystem's shedding switch SURVIVAL."""
        self.control.autonomous = enabled
        return {"enabled": enabled}
