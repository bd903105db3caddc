"""Every simulated board over one seeded environment, stepped one frame at a time.

Time and commands: :meth:`World.advance_to` steps each frame in turn; a command received
during frame ``t`` is held and applied at the start of the step ``t -> t + 1``, so reads in
frame ``t`` see the world at ``t`` whatever the order the boards were served in. Nothing
here reads a wall clock or an unseeded random generator.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, TypeVar

from fsw.errors import ConfigError
from hil.physics.comms import CommsModel
from hil.physics.environment import Illumination
from hil.physics.model import BoardModel, Coupling
from hil.physics.power import PowerModel
from hil.physics.reactor import ReactorModel
from hil.physics.thermal import ThermalModel

#: The board parameter tables a deployment may give (``[processes.simulator.params.<board>]``).
BOARD_PARAMS = ("power", "thermal", "comms", "reactor")

_M = TypeVar("_M", bound=BoardModel)


def _build(cls: type[_M], board: str, params: Mapping[str, Any], **fixed: Any) -> _M:
    """``cls(**fixed, **params)``; a bad parameter raises :class:`ConfigError` naming the table."""
    try:
        return cls(**fixed, **params)
    except TypeError as exc:
        msg = f"[processes.simulator.params.{board}]: {exc}"
        raise ConfigError(msg) from exc
    except ConfigError as exc:
        msg = f"[processes.simulator.params.{board}]: {exc}"
        raise ConfigError(msg) from exc


class World:
    """Every simulated board over one seeded environment, stepped one frame at a time.

    ``boards`` maps a kind (``power``, ``thermal``, ``comms``, ``reactor``) to its
    :class:`BoardModel`. Frame ``f`` is at ``f * frame_period_s`` seconds; the world
    starts at frame 0. Two worlds with the same seed and the same commands at the same
    frames are identical, reading for reading.

    ``params`` maps a board kind to keyword arguments of its model's constructor (the
    deployment's ``[processes.simulator.params.<board>]`` tables: design figures such as
    battery capacity or array area, and the starting state). Raises :class:`ConfigError`
    naming the table for an unknown board, an unknown key or a bad value.
    """

    def __init__(
        self,
        seed: int,
        frame_period_s: float,
        heartbeat_timeout_s: float | None = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not frame_period_s > 0.0:
            msg = f"frame_period_s must be positive, got {frame_period_s}"
            raise ConfigError(msg)
        if heartbeat_timeout_s is None:
            heartbeat_timeout_s = max(10.0, 3.0 * frame_period_s)
        if heartbeat_timeout_s <= frame_period_s:
            msg = (
                f"heartbeat_timeout_s ({heartbeat_timeout_s}) must exceed frame_period_s "
                f"({frame_period_s}) or the reactor trips between two heartbeats"
            )
            raise ConfigError(msg)
        rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not cryptography
        self.seed = seed
        self.frame_period_s = frame_period_s
        self.frame = 0
        self.illumination = Illumination(rng)
        params = dict(params or {})
        for board, table in params.items():
            if board not in BOARD_PARAMS or not isinstance(table, Mapping):
                msg = (
                    f"[processes.simulator.params.{board}]: not a board parameter table "
                    f"(boards: {', '.join(BOARD_PARAMS)})"
                )
                raise ConfigError(msg)
        self.power = _build(PowerModel, "power", params.get("power", {}))
        self.thermal = _build(ThermalModel, "thermal", params.get("thermal", {}))
        self.comms = _build(CommsModel, "comms", params.get("comms", {}), rng=rng)
        self.reactor = _build(
            ReactorModel, "reactor", params.get("reactor", {}), heartbeat_timeout_s=heartbeat_timeout_s
        )
        #: Step order matters: see :class:`Coupling`.
        self.boards: dict[str, BoardModel] = {
            "reactor": self.reactor,
            "comms": self.comms,
            "thermal": self.thermal,
            "power": self.power,
        }
        self._coupling = Coupling()
        first = self.illumination.environment(0.0)
        self.comms.step(0.0, first, self._coupling)
        self.thermal.step(0.0, first, self._coupling)
        self.power.step(0.0, first, self._coupling)

    @property
    def time_s(self) -> float:
        """World time (s) at the current frame."""
        return self.frame * self.frame_period_s

    def advance_to(self, frame: int) -> None:
        """Step every frame up to ``frame``; a frame at or before the current one is a no-op.

        Compute-bound: about a millisecond per frame at a 1 s frame period.
        """
        while self.frame < frame:
            self._step()

    def _step(self) -> None:
        end_s = (self.frame + 1) * self.frame_period_s
        env = self.illumination.environment(end_s)
        for model in self.boards.values():
            model.step(self.frame_period_s, env, self._coupling)
        self.frame += 1
