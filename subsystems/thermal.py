"""Thermal subsystem: thermostat control of heaters and node limit monitoring.

Reads four lumped nodes from the thermal board (battery, avionics, radiator,
habitat) and drives the battery, avionics and habitat heaters as thermostats:
full duty below a node's low set point, off above its high set point, no
change in between (the band is the hysteresis). In ``SURVIVAL`` the set points
drop to survival values, so heaters only keep hardware alive.

Modes: ``NOMINAL`` and ``SURVIVAL`` (by command; fault protection will drive it).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import CommandRejected
from fsw.process import FlightProcess, Frame

#: Heated nodes and their (low, high) set points in deg C: operating, then survival.
SET_POINTS_C: Final = {
    "battery": ((5.0, 15.0), (0.0, 5.0)),
    "avionics": ((0.0, 10.0), (-35.0, -25.0)),
    "habitat": ((18.0, 24.0), (-10.0, 0.0)),
}

NODES: Final = ("battery", "avionics", "radiator", "habitat")

#: Operating limits per node (deg C), from the design brief's thermal figures.
NODE_LIMITS: Final = {
    "battery": Limits(red_low=-5.0, yellow_low=0.0, yellow_high=40.0, red_high=45.0),
    "avionics": Limits(red_low=-40.0, yellow_low=-20.0, yellow_high=50.0, red_high=85.0),
    "radiator": Limits(red_low=-150.0, yellow_high=150.0, red_high=200.0),
    "habitat": Limits(red_low=0.0, yellow_low=10.0, yellow_high=30.0, red_high=40.0),
}


class ThermalProcess(FlightProcess):
    """Flight process of the thermal subsystem."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            *(
                Point(f"{n}_temp_c", ArgType.FLOAT, "C", f"{n.title()} node temperature.", NODE_LIMITS[n])
                for n in NODES
            ),
            *(
                Point(f"heater_{n}", ArgType.FLOAT, "", f"{n.title()} heater duty (0..1).")
                for n in SET_POINTS_C
            ),
            Point("mode", ArgType.STR, "", "NOMINAL or SURVIVAL."),
            Point("nodes_out_of_limits", ArgType.INT, "", "Nodes outside their yellow limits."),
        ),
        events=(
            EventDef("thermal_limit", Severity.WARNING, "A node left or re-entered its limits."),
            EventDef("thermal_mode_changed", Severity.INFO, "Thermal mode changed."),
        ),
        commands=(
            CommandDef(
                "set_setpoint",
                (
                    Arg("node", ArgType.STR, choices=tuple(SET_POINTS_C)),
                    Arg("low_c", ArgType.FLOAT, "C", low=-60.0, high=60.0),
                    Arg("high_c", ArgType.FLOAT, "C", low=-60.0, high=60.0),
                ),
                "Set a heater's thermostat band (operating mode).",
            ),
            CommandDef(
                "set_mode",
                (Arg("mode", ArgType.STR, choices=("NOMINAL", "SURVIVAL")),),
                "Switch between operating and survival set points.",
            ),
        ),
    )

    def setup(self) -> None:
        """Open the board and check its nodes and heaters."""
        super().setup()
        self.mode = "NOMINAL"
        self.set_points = {node: bands[0] for node, bands in SET_POINTS_C.items()}
        self.duty = dict.fromkeys(SET_POINTS_C, 0.0)
        self.temps: dict[str, float] = {}
        self.limit_state = dict.fromkeys(NODES, "green")
        if self.board is not None:
            self.board.description.require(
                tuple(f"{n}_temp_c" for n in NODES), tuple(f"heater_{n}" for n in SET_POINTS_C)
            )

    def _band(self, node: str) -> tuple[float, float]:
        return SET_POINTS_C[node][1] if self.mode == "SURVIVAL" else self.set_points[node]

    def on_frame(self, frame: Frame) -> None:
        """Read temperatures, run the thermostats, report limit changes."""
        if self.board is None:
            return
        values = self.board.read().values
        self.temps = {n: float(values[f"{n}_temp_c"]) for n in NODES}
        for node in SET_POINTS_C:
            low_c, high_c = self._band(node)
            temp_c = self.temps[node]
            duty = self.duty[node]
            if temp_c < low_c:
                duty = 1.0
            elif temp_c > high_c:
                duty = 0.0
            if duty != self.duty[node]:
                self.duty[node] = duty
                self.board.command(f"heater_{node}", duty)
        for node in NODES:
            state = NODE_LIMITS[node].state(self.temps[node])
            if state != self.limit_state[node]:
                self.event(
                    "thermal_limit",
                    node=node,
                    state=state,
                    previous=self.limit_state[node],
                    temp_c=round(self.temps[node], 2),
                )
                self.limit_state[node] = state

    def housekeeping(self) -> dict[str, Any]:
        """Temperatures, heater duties, mode."""
        points: dict[str, Any] = {f"{n}_temp_c": round(t, 3) for n, t in self.temps.items()}
        points.update({f"heater_{n}": d for n, d in self.duty.items()})
        points["mode"] = self.mode
        points["nodes_out_of_limits"] = sum(1 for s in self.limit_state.values() if s != "green")
        return points

    def command_set_setpoint(self, node: str, low_c: float, high_c: float) -> dict[str, Any]:
        """Set the operating band of ``node``'s heater."""
        if low_c >= high_c:
            msg = f"low_c {low_c} must be below high_c {high_c}"
            raise CommandRejected(msg)
        self.set_points[node] = (low_c, high_c)
        return {"node": node, "low_c": low_c, "high_c": high_c}

    def command_set_mode(self, mode: str) -> dict[str, Any]:
        """Switch to ``mode``."""
        if mode != self.mode:
            self.event("thermal_mode_changed", previous=self.mode, mode=mode)
            self.mode = mode
        return {"mode": mode}
