"""What every simulated board model is: a description, held commands, events, a step.

Models step in a fixed order within a frame and hand each other what one board's
physics gives another through a :class:`Coupling`.
"""

from __future__ import annotations

import abc
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from fsw.board import Actuator, BoardDescription, BoardEvent, Channel, Value, ValueType
from fsw.errors import BoardError, ConfigError
from hil.physics.environment import Environment
from hil.wire import PROTOCOL_VERSION, Refusal, check_command

FIRMWARE: Final = "lunar-fsw-sim 0.1"
STEFAN_BOLTZMANN: Final = 5.670e-8
KELVIN: Final = 273.15


def number(name: str, unit: str, low: float, high: float, text: str) -> Channel:
    return Channel(name, ValueType.FLOAT, unit, low, high, text)


def flag(name: str, text: str) -> Channel:
    return Channel(name, ValueType.BOOL, "", None, None, text)


def switch(name: str, text: str) -> Actuator:
    return Actuator(name, ValueType.BOOL, "", None, None, text)


def duty(name: str, text: str) -> Actuator:
    return Actuator(name, ValueType.FLOAT, "1", 0.0, 1.0, text)


def description(
    kind: str, channels: tuple[Channel, ...], actuators: tuple[Actuator, ...]
) -> BoardDescription:
    return BoardDescription(kind, PROTOCOL_VERSION, FIRMWARE, channels, actuators)


@dataclass
class Coupling:
    """What one board's physics hands to another within a frame (models step in order:
    reactor, comms, thermal, power; thermal sees the power board's outputs of the frame
    before, which its time constants make harmless)."""

    #: Reactor -> power: electric output of the Stirling converters (W).
    reactor_electric_w: float = 0.0
    #: Power -> reactor: electric power the bus asks of the converters (W); the converters
    #: draw ``demand / efficiency`` of heat, up to what the heat pipes carry (load following).
    reactor_demand_w: float = 0.0
    #: Reactor -> thermal: heat the converters reject into the reactor radiator (W).
    reactor_waste_heat_w: float = 0.0
    #: Thermal -> reactor: reactor radiator (converter cold end) temperature (C).
    reactor_radiator_temp_c: float = 80.0
    #: Comms -> power: transmitter draw (W).
    comms_power_w: float = 0.0
    #: Thermal -> power: heater draw, survival heaters included (W).
    heater_power_w: float = 0.0
    #: Thermal -> power: battery pack temperature (C).
    battery_temp_c: float = 20.0
    #: Power -> thermal: battery current (A, positive charging) and its I2R heat (W).
    battery_current_a: float = 0.0
    battery_heat_w: float = 0.0
    #: Power -> thermal: heat the switched loads put into the habitat (W).
    habitat_gain_w: float = 0.0


class BoardModel(abc.ABC):
    """One simulated board: what a :class:`~hil.board_server.BoardServer` serves.

    ``command`` checks the actuator and range against the description and the board's
    state (raising :class:`BoardError` with a message naming the actuator) and holds
    the value; it takes effect at the start of the next :meth:`step`. Events are kept
    in a bounded queue; when it is full the newest are dropped and counted.
    """

    MAX_EVENTS: Final = 64

    def __init__(self, description: BoardDescription) -> None:
        self.description = description
        self._time_s = 0.0
        self._pending: dict[str, Value] = {}
        self._events: deque[BoardEvent] = deque()
        self.events_dropped = 0

    @property
    def kind(self) -> str:
        """The board kind, as in the description."""
        return self.description.kind

    @property
    def board_time_s(self) -> float:
        """The board's clock (s): the world time of the last step."""
        return self._time_s

    @abc.abstractmethod
    def read(self) -> dict[str, Value]:
        """Every channel's value now. Pure: reading never changes the world."""

    @abc.abstractmethod
    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Advance by ``dt_s`` seconds to ``env.time_s`` (pending commands first)."""

    def command(self, actuator: str, value: Value) -> None:
        """Hold ``actuator = value`` for the next step; raises :class:`BoardError` if refused."""
        checked = check_command(self.description, actuator, value)
        if isinstance(checked, Refusal):
            raise BoardError(checked.reason)
        refusal = self._refusal(actuator, checked)
        if refusal is not None:
            raise BoardError(refusal)
        self._pending[actuator] = checked

    def faults(self) -> frozenset[str]:
        """Fault flags raised now."""
        return frozenset()

    def drain_events(self) -> list[BoardEvent]:
        """Return and forget the events raised since the last call."""
        out = list(self._events)
        self._events.clear()
        return out

    def heartbeat(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Note a SYNC from this board's own client (the flight-software heartbeat)."""

    def _refusal(self, actuator: str, value: Value) -> str | None:
        """Why the board's state forbids this command now, or None."""
        del actuator, value
        return None

    def _take_pending(self) -> dict[str, Value]:
        pending, self._pending = self._pending, {}
        return pending

    def _emit(self, name: str, severity: str, time_s: float, **data: Any) -> None:
        if len(self._events) >= self.MAX_EVENTS:
            self.events_dropped += 1
            return
        self._events.append(BoardEvent(name, time_s, severity, data))


def checked_number(name: str, value: object, low: float, high: float, *, low_inclusive: bool = True) -> float:
    """``value`` as a float within [low, high]; raises :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        msg = f"{name} must be a finite number, got {value!r}"
        raise ConfigError(msg)
    result = float(value)
    if result > high or result < low or (result == low and not low_inclusive):
        relation = "[" if low_inclusive else "("
        msg = f"{name}={value!r} must be within {relation}{low:g}, {high:g}]"
        raise ConfigError(msg)
    return result


def require(name: str, value: float, ok: bool, what: str) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``ok`` and ``value`` is a finite number."""
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        msg = f"{name} must be {what}, got {value!r}"
        raise ConfigError(msg)


def substeps(dt_s: float, max_substep_s: float) -> tuple[int, float]:
    count = max(1, math.ceil(dt_s / max_substep_s - 1e-9))
    return count, dt_s / count
