"""The board contract: the only way flight code touches hardware.

A :class:`Board` reads a sample of named sensor channels, commands named
actuators, reports its status and hands over the events it raised on its own
(a trip, a fault flag). Backends are chosen by name (``sim``, ``serial``,
``tcp``, ``replay``, or a third party's) with :func:`open_board`; the name
comes from the deployment file, never from code.

A board describes itself during the version handshake (:class:`BoardDescription`):
flight code checks that the channels and actuators it needs are there rather
than carrying a copy of the board's layout.

Frame discipline: at the start of each frame the flight process calls
:meth:`Board.sync` with the frame number and mission time. A real board takes it
as a time sync and a heartbeat (a reactor board trips when the heartbeats
stop); the simulated board steps its physics up to that frame first, so every
read in frame ``t`` sees the world at ``t`` and every command of frame ``t``
takes effect in the step to ``t + 1``.
"""

from __future__ import annotations

import abc
import enum
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fsw.errors import BoardError, BoardUnavailable
from fsw.resource import Resource

#: Entry-point group through which backends register by name.
BOARD_ENTRY_POINT_GROUP: Final = "fsw.boards"

#: Default deadline of one board request, retries included.
DEFAULT_TIMEOUT_S: Final = 0.5

Value = float | int | bool


class ValueType(str, enum.Enum):
    """Type of a channel or actuator value on the wire."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True)
class Channel:
    """A sensor channel: name, type, unit and the physical range it can report."""

    name: str
    type: ValueType = ValueType.FLOAT
    unit: str = ""
    low: float | None = None
    high: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Actuator:
    """An actuator: commands outside ``[low, high]`` are refused by the board."""

    name: str
    type: ValueType = ValueType.FLOAT
    unit: str = ""
    low: float | None = None
    high: float | None = None
    description: str = ""


@dataclass(frozen=True)
class BoardDescription:
    """What a board says about itself in the version handshake."""

    kind: str
    protocol_version: int
    firmware: str
    channels: tuple[Channel, ...]
    actuators: tuple[Actuator, ...]

    def channel(self, name: str) -> Channel:
        """Return the channel ``name``; raises :class:`BoardError` if absent."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        msg = f"board {self.kind!r} has no channel {name!r}"
        raise BoardError(msg)

    def actuator(self, name: str) -> Actuator:
        """Return the actuator ``name``; raises :class:`BoardError` if absent."""
        for actuator in self.actuators:
            if actuator.name == name:
                return actuator
        msg = f"board {self.kind!r} has no actuator {name!r}"
        raise BoardError(msg)

    def to_map(self) -> dict[str, Any]:
        """Plain data (msgpack and JSON) for recordings; :meth:`from_map` reverses it."""
        return {
            "kind": self.kind,
            "protocol_version": self.protocol_version,
            "firmware": self.firmware,
            "channels": [_item_map(c) for c in self.channels],
            "actuators": [_item_map(a) for a in self.actuators],
        }

    @classmethod
    def from_map(cls, raw: Mapping[str, Any]) -> BoardDescription:
        """Rebuild a description from :meth:`to_map` output; raises :class:`BoardError`."""
        try:
            return cls(
                kind=str(raw["kind"]),
                protocol_version=int(raw["protocol_version"]),
                firmware=str(raw["firmware"]),
                channels=tuple(Channel(**_item_args(c)) for c in raw["channels"]),
                actuators=tuple(Actuator(**_item_args(a)) for a in raw["actuators"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"malformed board description: {exc}"
            raise BoardError(msg) from exc

    def require(self, channels: tuple[str, ...] = (), actuators: tuple[str, ...] = ()) -> None:
        """Raise :class:`BoardError` naming every missing channel or actuator."""
        have_c = {c.name for c in self.channels}
        have_a = {a.name for a in self.actuators}
        missing = [f"channel {n}" for n in channels if n not in have_c]
        missing += [f"actuator {n}" for n in actuators if n not in have_a]
        if missing:
            msg = f"board {self.kind!r} lacks {', '.join(missing)}"
            raise BoardError(msg)


def _item_map(item: Channel | Actuator) -> dict[str, Any]:
    return {
        "name": item.name,
        "type": item.type.value,
        "unit": item.unit,
        "low": item.low,
        "high": item.high,
        "description": item.description,
    }


def _item_args(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": str(raw["name"]),
        "type": ValueType(raw["type"]),
        "unit": str(raw.get("unit", "")),
        "low": None if raw.get("low") is None else float(raw["low"]),
        "high": None if raw.get("high") is None else float(raw["high"]),
        "description": str(raw.get("description", "")),
    }


@dataclass(frozen=True)
class Sample:
    """One reading of every channel, stamped with the board's own time."""

    board_time_s: float
    values: Mapping[str, Value]


@dataclass(frozen=True)
class BoardEvent:
    """Something the board raised on its own (a trip, a fault flag)."""

    name: str
    board_time_s: float
    severity: str = "info"
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BoardStatus:
    """Board health as the board reports it, plus the link's view of it."""

    link_up: bool
    board_time_s: float
    faults: frozenset[str] = frozenset()


@dataclass
class LinkCounters:
    """What the link to a board has seen; published in housekeeping telemetry."""

    frames_ok: int = 0
    frames_bad: int = 0
    bytes_skipped: int = 0
    timeouts: int = 0
    retries: int = 0
    out_of_order: int = 0
    events_dropped: int = 0  # board events lost because the event queue was full


class Board(Resource):
    """One board behind one link. Owned by the process that opened it.

    Every method blocks for at most its ``timeout_s`` (retries included) and
    raises :class:`~fsw.errors.BoardTimeout` when it expires, or
    :class:`~fsw.errors.BoardLinkLost` once the link is declared lost.
    ``close()`` is idempotent; a board is also a context manager.
    """

    description: BoardDescription
    counters: LinkCounters

    @abc.abstractmethod
    def sync(self, frame: int, t_s: float, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Mark the start of ``frame`` at mission time ``t_s`` (seconds)."""

    @abc.abstractmethod
    def read(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Sample:
        """Read every channel once."""

    @abc.abstractmethod
    def command(self, actuator: str, value: Value, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Drive ``actuator`` to ``value``; a refused value raises :class:`BoardError`."""

    @abc.abstractmethod
    def status(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> BoardStatus:
        """Return the board's health."""

    @abc.abstractmethod
    def poll_events(self) -> list[BoardEvent]:
        """Return and forget the events the board raised since the last call; never blocks."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the link. Safe to call more than once."""


def board_backends() -> dict[str, str]:
    """Every registered backend: name -> ``module:Class`` (entry-point group ``fsw.boards``)."""
    from importlib import metadata  # noqa: PLC0415 - costs megabytes; only the supervisor needs it

    return {ep.name: ep.value for ep in metadata.entry_points(group=BOARD_ENTRY_POINT_GROUP)}


def open_board(backend: str, registry: Mapping[str, str] | None = None, **options: Any) -> Board:
    """Open a board through the backend registered as ``backend``.

    ``registry`` maps backend names to ``module:Class`` (the supervisor resolves
    the entry points once and hands the map to its children); without it, or
    for a name it lacks, the entry points are read. ``options`` are the
    backend's own (device path, baud rate, host, log file), straight from the
    deployment file. Raises :class:`BoardUnavailable` for an unknown name or a
    backend that fails to import, and whatever the backend raises when the
    board does not answer its handshake.
    """
    backends = dict(registry or {})
    if backend not in backends:
        backends = board_backends()
    try:
        entry = backends[backend]
    except KeyError:
        known = ", ".join(sorted(backends)) or "none"
        msg = f"no board backend named {backend!r} (registered: {known})"
        raise BoardUnavailable(msg) from None
    module_name, _, class_name = entry.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:
        msg = f"board backend {backend!r} failed to load from {entry}: {exc}"
        raise BoardUnavailable(msg) from exc
    board: Board = cls(**options)
    return board


class TappedBoard(Board):
    """A board that reports every sample read, command sent and event taken.

    Wraps the board a flight process opened; ``report(name, data)`` publishes
    ``board_sample`` (``frame``, ``board_time_s``, ``values``),
    ``board_command`` (``frame``, ``actuator``, ``value``) and ``board_event``
    (``frame``, ``name``, ``severity``, ``board_time_s``, ``data``). A recording
    of those is exactly what the flight code saw, which is what the ``replay``
    backend serves back. ``frame()`` returns the current frame number.
    """

    def __init__(
        self, board: Board, report: Callable[[str, dict[str, Any]], None], frame: Callable[[], int]
    ) -> None:
        self.inner = board
        self.description = board.description
        self.counters = board.counters
        self._report = report
        self._frame = frame

    def sync(self, frame: int, t_s: float, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Pass the frame sync on."""
        self.inner.sync(frame, t_s, timeout_s)

    def read(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Sample:
        """Read, and report the sample."""
        sample = self.inner.read(timeout_s)
        self._report(
            "board_sample",
            {"frame": self._frame(), "board_time_s": sample.board_time_s, "values": dict(sample.values)},
        )
        return sample

    def command(self, actuator: str, value: Value, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Command, and report it once the board accepted it."""
        self.inner.command(actuator, value, timeout_s)
        self._report("board_command", {"frame": self._frame(), "actuator": actuator, "value": value})

    def status(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> BoardStatus:
        """Pass the status request on."""
        return self.inner.status(timeout_s)

    def poll_events(self) -> list[BoardEvent]:
        """Take the board's events, and report each."""
        events = self.inner.poll_events()
        for event in events:
            self._report(
                "board_event",
                {
                    "frame": self._frame(),
                    "name": event.name,
                    "severity": event.severity,
                    "board_time_s": event.board_time_s,
                    "data": dict(event.data),
                },
            )
        return events

    def close(self) -> None:
        """Close the wrapped board (idempotent as it is)."""
        self.inner.close()
