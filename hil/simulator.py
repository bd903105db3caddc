"""The simulator process: the simulated boards, served on pseudo-terminals.

It hosts one seeded :class:`~hil.physics.World` and serves each of its boards
(``power``, ``thermal``, ``comms``, ``reactor``) with the board wire protocol on
a pseudo-terminal of its own. The slave side's path is linked as
``<run_dir>/boards/<kind>``, so flight code opens a real tty path exactly as it
would open ``/dev/ttyUSB0`` (the ``sim`` board backend does just that).

Lockstep: the world is stepped to frame ``t`` on the first ``SYNC(t)`` any
board client sends, before any reply; commands received during frame ``t``
therefore take effect in the step to ``t + 1``, and a seeded run is
reproducible. The simulator is not itself a frame participant.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, ClassVar

from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import ArgType, Dictionary, EventDef, Point, Severity
from fsw.process import Process
from fsw.run import RunOptions
from fsw.timesource import TimeSource
from hil.board_server import BoardServer, open_pty
from hil.physics import World


class Simulator(Process):
    """Hosts the simulated world and its boards."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("world_frame", ArgType.INT, description="Frame the world has been stepped to."),
            Point("sun_elevation_deg", ArgType.FLOAT, "deg", "Sun elevation at the site."),
            Point("boards", ArgType.INT, description="Boards served."),
        ),
        events=(
            EventDef("board_served", Severity.INFO, "A simulated board is listening on its tty."),
            EventDef("board_event", Severity.INFO, "A simulated board raised an event of its own."),
        ),
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
        )
        self.servers: dict[str, BoardServer] = {}
        self.links: dict[str, Path] = {}
        self._hk_frames = spec.frames_per_housekeeping(deployment.clock.frame_period_s)
        self._last_hk_frame = -1

    def setup(self) -> None:
        """Open a pseudo-terminal per board and link it under ``<run_dir>/boards``."""
        boards_dir = self.deployment.run_dir / "boards"
        boards_dir.mkdir(parents=True, exist_ok=True)
        for kind, model in self.world.boards.items():
            master_fd, slave_path = open_pty()
            server = BoardServer(model, master_fd, on_sync=self._on_sync)
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
        """Report each board's tty once the bus is up."""
        for kind, link in self.links.items():
            self.event("board_served", board=kind, path=str(link))

    def _on_sync(self, frame: int, t_s: float) -> None:
        if frame <= self.world.frame:
            return
        self.world.advance_to(frame)
        self.frame = frame
        self.mission_time_s = t_s
        if self.bus is not None:
            self.bus.mission_time_s = t_s
        if frame - self._last_hk_frame >= self._hk_frames:
            self._last_hk_frame = frame
            self.publish_housekeeping()

    def housekeeping(self) -> dict[str, Any]:
        """World frame and sun elevation."""
        return {
            "world_frame": self.world.frame,
            "sun_elevation_deg": round(self.world.illumination.sun_elevation_deg(self.world.time_s), 4),
            "boards": len(self.servers),
        }

    def teardown(self) -> None:
        """Close every board server and remove the links."""
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        for link in self.links.values():
            with contextlib.suppress(OSError):
                link.unlink()
        self.links.clear()
