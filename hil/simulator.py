"""The simulator process: the simulated boards, served on pseudo-terminals, and their faults.

It hosts one seeded :class:`~hil.physics.World` and serves each of its boards
(``power``, ``thermal``, ``comms``, ``reactor``) with the board wire protocol on
a pseudo-terminal of its own. The slave side's path is linked as
``<run_dir>/boards/<kind>``, so flight code opens a real tty path exactly as it
would open ``/dev/ttyUSB0`` (the ``sim`` board backend does just that).

Lockstep: the world is stepped to frame ``t`` on the first ``SYNC(t)`` any
board client sends, before any reply; commands received during frame ``t``
therefore take effect in the step to ``t + 1``, and a seeded run is
reproducible. The simulator is not itself a frame participant.

Faults (:mod:`hil.faults`): every board is served through a
:class:`~hil.faults.FaultyBoard`. A scenario file (param ``scenario``, a path
relative to the directory ``fsw up`` runs in) schedules faults at mission
times; the commands ``inject_fault``, ``clear_fault`` and ``list_faults`` add,
remove and show them while the base runs. Every injection and clearing is
applied at the start of a world step and reported as ``fault_injected`` /
``fault_cleared`` (or ``fault_rejected``) with the mission time of the first
frame that sees it. Params (``[processes.simulator.params]``):

``scenario``
    path of a scenario TOML file (see ``docs/faults.md``; ``fsw up --scenario FILE``
    sets it for a run when the deployment does not); an invalid file stops
    the simulator at start with the file, entry and key in the error.
``reactor_heartbeat_timeout_s``
    the reactor board's flight-software heartbeat timeout (s).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, ClassVar

from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Point, Severity
from fsw.errors import CommandRejected, ConfigError
from fsw.process import Process
from fsw.run import RunOptions
from fsw.timesource import TimeSource
from hil.board_server import BoardServer, open_pty
from hil.faults import (
    BOARDS,
    KINDS,
    FaultChange,
    FaultError,
    FaultInjector,
    FaultyBoardServer,
    Param,
    Scenario,
    command_params,
    fault_from_command,
    load_scenario,
)
from hil.physics import World
from hil.physics.world import BOARD_PARAMS

_BOARD_ARG = Arg("board", ArgType.STR, choices=BOARDS, description="The board to hit.")
_KIND_ARG = Arg("kind", ArgType.STR, choices=tuple(KINDS), description="The fault kind (docs/faults.md).")
_CHANNEL_ARG = Arg("channel", ArgType.STR, description="Sensor channel, if the kind takes one.", default="")
_ACTUATOR_ARG = Arg("actuator", ArgType.STR, description="Actuator, if the kind takes one.", default="")


def _numeric_arg(param: Param) -> Arg:
    return Arg(
        param.name,
        ArgType.INT if param.integer else ArgType.FLOAT,
        param.unit if param.unit != "channel unit" else "",
        low=param.low,
        high=param.high,
        description=param.description,
        default=0,
    )


#: The bus commands of the simulator (arguments a kind does not take default to 0 or "").
FAULT_COMMANDS = (
    CommandDef(
        "inject_fault",
        (
            _BOARD_ARG,
            _KIND_ARG,
            _CHANNEL_ARG,
            _ACTUATOR_ARG,
            *(_numeric_arg(param) for param in command_params()),
        ),
        "Inject a fault into a simulated board; it takes effect at the next world step "
        "(result: takes_effect_at_frame). Rejected with a reason naming a bad argument.",
    ),
    CommandDef(
        "clear_fault",
        (_BOARD_ARG, _KIND_ARG, _CHANNEL_ARG, _ACTUATOR_ARG),
        'Clear faults of a kind on a board at the next world step (channel and actuator "": '
        "all of that kind); a fault still queued is cancelled at once.",
    ),
    CommandDef("list_faults", (), "Active faults, queued requests and the scenario's steps to come."),
)


class Simulator(Process):
    """Hosts the simulated world, its boards and their faults."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("world_frame", ArgType.INT, description="Frame the world has been stepped to."),
            Point("sun_elevation_deg", ArgType.FLOAT, "deg", "Sun elevation at the site."),
            Point("boards", ArgType.INT, description="Boards served."),
            Point("faults_active", ArgType.INT, description="Faults in force on the boards."),
            Point("faults_pending", ArgType.INT, description="Fault requests waiting for the next step."),
            Point("faults_scheduled", ArgType.INT, description="Scenario injections and clearings to come."),
            Point("requests_ignored", ArgType.INT, description="Board requests left unanswered (silent)."),
        ),
        events=(
            EventDef("board_served", Severity.INFO, "A simulated board is listening on its tty."),
            EventDef("board_event", Severity.INFO, "A simulated board raised an event of its own."),
            EventDef("scenario_loaded", Severity.INFO, "A fault scenario was loaded."),
            EventDef("fault_injected", Severity.WARNING, "A fault took effect on a simulated board."),
            EventDef("fault_cleared", Severity.INFO, "A fault was cleared from a simulated board."),
            EventDef("fault_rejected", Severity.WARNING, "A scheduled fault could not be applied."),
        ),
        commands=FAULT_COMMANDS,
    )

    def __init__(
        self,
        deployment: Deployment,
        spec: ProcessSpec,
        options: RunOptions,
        *,
        time: TimeSource | None = None,
    ) -> None:
        super().__init__(deployment, spec, options, time=time)
        heartbeat_timeout_s = self.params.get("reactor_heartbeat_timeout_s")
        self.world = World(
            seed=options.seed,
            frame_period_s=deployment.clock.frame_period_s,
            heartbeat_timeout_s=None if heartbeat_timeout_s is None else float(heartbeat_timeout_s),
            params={board: self.params[board] for board in BOARD_PARAMS if board in self.params},
        )
        self.scenario = self._load_scenario()
        self.faults = FaultInjector(self.world, self.scenario, run_seed=options.seed)
        self.servers: dict[str, BoardServer] = {}
        self.links: dict[str, Path] = {}
        self._hk_frames = spec.frames_per_housekeeping(deployment.clock.frame_period_s)
        self._last_hk_frame = -1

    def _load_scenario(self) -> Scenario | None:
        """Load the ``scenario`` param; raises :class:`ConfigError` naming file, entry and key."""
        path = self.params.get("scenario") or self.options.scenario
        if path is None or path == "":
            return None
        if not isinstance(path, str):
            msg = f"[processes.{self.name}.params] scenario must be a path string, got {path!r}"
            raise ConfigError(msg)
        descriptions = {kind: model.description for kind, model in self.world.boards.items()}
        return load_scenario(path, descriptions)

    def setup(self) -> None:
        """Open a pseudo-terminal per board and link it under ``<run_dir>/boards``."""
        boards_dir = self.deployment.run_dir / "boards"
        boards_dir.mkdir(parents=True, exist_ok=True)
        for kind, model in self.faults.boards.items():
            master_fd, slave_path = open_pty()
            server = FaultyBoardServer(model, master_fd, on_sync=self._on_sync)
            self.servers[kind] = server
            link = boards_dir / kind
            tmp = boards_dir / f".{kind}.tmp"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(slave_path, tmp)
            os.replace(tmp, link)
            self.links[kind] = link
            self.add_reader(server.fileno(), server.handle_readable)

    def on_joined(self) -> None:
        """Report each board's tty and the scenario once the bus is up; apply faults due at 0."""
        for kind, link in self.links.items():
            self.event("board_served", board=kind, path=str(link))
        if self.scenario is not None:
            self.event("scenario_loaded", path=self.scenario.source, faults=len(self.scenario.faults))
        self._report(self.faults.start())

    def _on_sync(self, frame: int, t_s: float) -> None:
        if frame <= self.world.frame:
            return
        changes = self.faults.advance_to(frame)
        self.frame = frame
        self._report(changes)
        self.mission_time_s = t_s
        if self.bus is not None:
            self.bus.mission_time_s = t_s
        if frame - self._last_hk_frame >= self._hk_frames:
            self._last_hk_frame = frame
            self.publish_housekeeping()

    def _report(self, changes: list[FaultChange]) -> None:
        """Publish each change stamped with the mission time of the first frame that sees it."""
        period_s = self.world.frame_period_s
        for change in changes:
            t_s = change.frame * period_s
            self.mission_time_s = t_s
            if self.bus is not None:
                self.bus.mission_time_s = t_s
            fields: dict[str, Any] = {
                **change.spec.to_json(),
                "origin": change.origin,
                "frame": change.frame,
                "mission_time_s": round(t_s, 6),
                "details": dict(change.details),
            }
            if change.action == "rejected":
                self.event("fault_rejected", reason=change.reason[:200], **fields)
            else:
                self.event(f"fault_{change.action}", **fields)

    def housekeeping(self) -> dict[str, Any]:
        """World frame, sun elevation and the fault counts."""
        return {
            "world_frame": self.world.frame,
            "sun_elevation_deg": round(self.world.illumination.sun_elevation_deg(self.world.time_s), 4),
            "boards": len(self.servers),
            "faults_active": len(self.faults.active),
            "faults_pending": self.faults.pending,
            "faults_scheduled": self.faults.scheduled,
            "requests_ignored": sum(
                s.ignored for s in self.servers.values() if isinstance(s, FaultyBoardServer)
            ),
        }

    # --- commands -----------------------------------------------------------------------

    def command_inject_fault(
        self, board: str, kind: str, channel: str, actuator: str, **numbers: float
    ) -> dict[str, Any]:
        """Queue a fault for the next world step; raises :class:`CommandRejected` naming a bad argument.

        ``numbers`` are the kinds' parameters (``value``, ``sigma``, ``fraction``, ``seed``):
        0 where the kind takes none.
        """
        try:
            spec = fault_from_command(self.faults.descriptions, board, kind, channel, actuator, numbers)
            frame = self.faults.request_inject(spec)
        except FaultError as exc:
            raise CommandRejected(f"{exc.key}: {exc.message}") from exc
        return {
            **spec.to_json(),
            "takes_effect_at_frame": frame,
            "takes_effect_at_s": round(frame * self.world.frame_period_s, 6),
        }

    def command_clear_fault(self, board: str, kind: str, channel: str, actuator: str) -> dict[str, Any]:
        """Clear matching faults at the next world step; raises :class:`CommandRejected` if none match."""
        try:
            outcome = self.faults.request_clear(board, kind, channel, actuator)
        except FaultError as exc:
            raise CommandRejected(f"{exc.key}: {exc.message}") from exc
        frame = self.world.frame + 1
        return {
            **outcome,
            "takes_effect_at_frame": frame,
            "takes_effect_at_s": round(frame * self.world.frame_period_s, 6),
        }

    def command_list_faults(self) -> dict[str, Any]:
        """Active faults, queued requests and scenario steps to come."""
        return self.faults.snapshot()

    def teardown(self) -> None:
        """Close every board server and remove the links."""
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        for link in self.links.values():
            with contextlib.suppress(OSError):
                link.unlink()
        self.links.clear()
