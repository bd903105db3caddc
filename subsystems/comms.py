"""Comms subsystem: link visibility, transmitter control and the command-loss timer.

Reads the radio board's visibility of Earth (direct-to-Earth) and of the relay
orbiter, keys the transmitter while a link is visible and unkeys it when none
is, and runs the command-loss timer: no valid command for
``command_loss_timeout_s`` of mission time (default 24 h) is a fault,
published as ``command_loss``.

Modes: ``NO_LINK``, ``RELAY``, ``DIRECT`` (direct-to-Earth preferred when both are up).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Point, Severity
from fsw.process import FlightProcess, Frame

#: One-way light time Earth-Moon, mean (seconds).
ONE_WAY_LIGHT_TIME_S: Final = 1.28


class CommsProcess(FlightProcess):
    """Flight process of the comms subsystem."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("dte_visible", ArgType.BOOL, "", "Earth visible for a direct link."),
            Point("relay_visible", ArgType.BOOL, "", "Relay orbiter visible."),
            Point("downlink_rate_bps", ArgType.FLOAT, "bit/s", "Current downlink rate."),
            Point("transmitter_on", ArgType.BOOL, "", "Transmitter keyed."),
            Point("link_time_s", ArgType.FLOAT, "s", "Mission time with a link up, total."),
            Point("since_command_s", ArgType.FLOAT, "s", "Mission time since the last valid command."),
            Point("mode", ArgType.STR, "", "NO_LINK, RELAY or DIRECT."),
        ),
        events=(
            EventDef("link_acquired", Severity.INFO, "A link came up."),
            EventDef("link_lost", Severity.INFO, "No link is up any more."),
            EventDef("command_loss", Severity.ERROR, "No valid command for the command-loss timeout."),
        ),
        commands=(
            CommandDef(
                "set_transmitter",
                (Arg("on", ArgType.BOOL),),
                "Key or unkey the transmitter (auto keying resumes at the next link change).",
            ),
            CommandDef(
                "set_command_loss_timeout",
                (Arg("timeout_s", ArgType.FLOAT, "s", low=60.0, high=60.0 * 86400.0),),
                "Set the command-loss timer.",
            ),
        ),
    )

    def setup(self) -> None:
        """Open the board and check its channels."""
        super().setup()
        self.command_loss_timeout_s = float(self.params.get("command_loss_timeout_s", 86400.0))
        self.mode = "NO_LINK"
        self.values: dict[str, Any] = {}
        self.transmitter_on = False
        self.link_time_s = 0.0
        self.last_command_t_s = 0.0
        self.command_loss_raised = False
        self._last_t_s: float | None = None
        if self.board is not None:
            self.board.description.require(
                ("dte_visible", "relay_visible", "downlink_rate_bps"), ("transmitter",)
            )

    def on_frame(self, frame: Frame) -> None:
        """Follow visibility, key the transmitter, run the command-loss timer."""
        if self.board is None:
            return
        self.values = dict(self.board.read().values)
        dte, relay = bool(self.values["dte_visible"]), bool(self.values["relay_visible"])
        mode = "DIRECT" if dte else ("RELAY" if relay else "NO_LINK")
        if self._last_t_s is not None and self.mode != "NO_LINK":
            self.link_time_s += frame.t_s - self._last_t_s
        self._last_t_s = frame.t_s
        if mode != self.mode:
            self.event("link_acquired" if mode != "NO_LINK" else "link_lost", mode=mode, previous=self.mode)
            self.mode = mode
            want = mode != "NO_LINK"
            if want != self.transmitter_on:
                self.board.command("transmitter", want)
                self.transmitter_on = want
        if frame.t_s - self.last_command_t_s >= self.command_loss_timeout_s and not self.command_loss_raised:
            self.command_loss_raised = True
            self.event("command_loss", since_command_s=round(frame.t_s - self.last_command_t_s, 1))

    def _execute(self, message: Any) -> None:
        # Any valid command resets the command-loss timer.
        self.last_command_t_s = self.mission_time_s
        self.command_loss_raised = False
        super()._execute(message)

    def housekeeping(self) -> dict[str, Any]:
        """Visibility, rate, transmitter, timers."""
        points: dict[str, Any] = {
            k: self.values[k]
            for k in ("dte_visible", "relay_visible", "downlink_rate_bps")
            if k in self.values
        }
        points.update(
            transmitter_on=self.transmitter_on,
            link_time_s=round(self.link_time_s, 3),
            since_command_s=round(self.mission_time_s - self.last_command_t_s, 3),
            mode=self.mode,
        )
        return points

    def command_set_transmitter(self, on: bool) -> dict[str, Any]:
        """Key or unkey the transmitter."""
        if self.board is not None:
            self.board.command("transmitter", on)
        self.transmitter_on = on
        return {"on": on}

    def command_set_command_loss_timeout(self, timeout_s: float) -> dict[str, Any]:
        """Set the command-loss timeout."""
        self.command_loss_timeout_s = timeout_s
        return {"timeout_s": timeout_s}
