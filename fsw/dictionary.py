"""Command, telemetry and event dictionaries.

Each process declares what it publishes and what it obeys: telemetry points
(name, type, unit, description, limits), events (severity) and commands
(typed, ranged arguments; a critical flag for arm-then-execute commands).
The command router validates every command against the target's dictionary
before the target sees it, so a bad argument is rejected with a reason that
names it.

The whole base's dictionary is exported as JSON (``fsw dict --json``) so other
ground systems can use it.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fsw.errors import CommandRejected, ConfigError, DictionaryError


class Severity(str, enum.Enum):
    """Event severity, lowest first (matches PUS service 5's four levels plus debug)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class ArgType(str, enum.Enum):
    """Type of a telemetry point or command argument."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STR = "str"


@dataclass(frozen=True)
class Limits:
    """Yellow and red limits of a telemetry point. ``None`` means no limit on that side."""

    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None

    def state(self, value: float) -> str:
        """Return ``"red"``, ``"yellow"`` or ``"green"`` for ``value``; ``"invalid"`` if not finite."""
        if not math.isfinite(value):
            return "invalid"
        if (self.red_low is not None and value < self.red_low) or (
            self.red_high is not None and value > self.red_high
        ):
            return "red"
        if (self.yellow_low is not None and value < self.yellow_low) or (
            self.yellow_high is not None and value > self.yellow_high
        ):
            return "yellow"
        return "green"


@dataclass(frozen=True)
class Point:
    """A telemetry point published inside a process's housekeeping packet."""

    name: str
    type: ArgType = ArgType.FLOAT
    unit: str = ""
    description: str = ""
    limits: Limits | None = None


@dataclass(frozen=True)
class EventDef:
    """An event a process may publish."""

    name: str
    severity: Severity
    description: str = ""


class _Required:
    """Marks an argument without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an argument that must be given.
REQUIRED: Final = _Required()


@dataclass(frozen=True)
class Arg:
    """A command argument: type, unit, allowed range or choices, and an optional default.

    An argument with a ``default`` may be left out; the router fills it in
    before the target sees the command.
    """

    name: str
    type: ArgType
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str | int, ...] | None = None
    description: str = ""
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        """Whether the argument must be given."""
        return self.default is REQUIRED

    def check(self, value: object) -> object:
        """Return ``value`` normalised to this argument's type.

        Raises :class:`CommandRejected` naming the argument when the value has
        the wrong type, lies outside ``[low, high]`` or is not one of ``choices``.
        """
        checked = _coerce(self, value)
        if isinstance(checked, (int, float)) and not isinstance(checked, bool):
            if self.low is not None and checked < self.low:
                msg = f"argument {self.name}={checked!r} is below its minimum {self.low}"
                raise CommandRejected(msg)
            if self.high is not None and checked > self.high:
                msg = f"argument {self.name}={checked!r} is above its maximum {self.high}"
                raise CommandRejected(msg)
        if self.choices is not None and checked not in self.choices:
            msg = f"argument {self.name}={checked!r} is not one of {list(self.choices)}"
            raise CommandRejected(msg)
        return checked


def _coerce(arg: Arg, value: object) -> object:
    expected = arg.type
    if expected is ArgType.BOOL:
        if isinstance(value, bool):
            return value
    elif expected is ArgType.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is ArgType.FLOAT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
            msg = f"argument {arg.name}={value!r} is not a finite number"
            raise CommandRejected(msg)
    elif isinstance(value, str):
        return value
    msg = f"argument {arg.name}={value!r} is not of type {expected.value}"
    raise CommandRejected(msg)


@dataclass(frozen=True)
class CommandDef:
    """A command a process obeys.

    ``timeout_s`` bounds how long the command may take to complete after it was
    accepted. A ``critical`` command must be armed before it executes.
    """

    name: str
    args: tuple[Arg, ...] = ()
    description: str = ""
    critical: bool = False
    timeout_s: float = 1.0

    def check(self, args: Mapping[str, object]) -> dict[str, object]:
        """Validate ``args``; return them normalised, or raise :class:`CommandRejected`."""
        declared = {a.name: a for a in self.args}
        unknown = sorted(set(args) - set(declared))
        if unknown:
            msg = f"unknown argument(s) {', '.join(map(str, unknown))}"
            raise CommandRejected(msg)
        missing = [a.name for a in self.args if a.name not in args and a.required]
        if missing:
            msg = f"missing argument(s) {', '.join(missing)}"
            raise CommandRejected(msg)
        checked = {a.name: a.default for a in self.args if a.name not in args}
        checked.update({name: declared[name].check(value) for name, value in args.items()})
        return checked


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """Turn ``key=value`` words into command arguments; values are JSON where they parse,
    else strings (``tier=4 on=false mode=SURVIVAL``). Raises :class:`ConfigError` for a
    word that is not ``key=value``."""
    args: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            msg = f"argument {item!r} is not key=value"
            raise ConfigError(msg)
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


#: Commands every process answers.
PING: Final = CommandDef("ping", description="Answer with the process's pid and frame.")
NOOP: Final = CommandDef("noop", description="Do nothing; counts in the command counter.")
ARM: Final = CommandDef(
    "arm",
    (Arg("command", ArgType.STR, description="The critical command to arm."),),
    "Arm one critical command of this process: it executes only if it arrives within the "
    "deployment's arm_window_s after its arm (wall seconds), and only once.",
)
DISARM: Final = CommandDef("disarm", description="Cancel every armed critical command of this process.")


@dataclass(frozen=True)
class Dictionary:
    """Everything one process publishes and obeys."""

    telemetry: tuple[Point, ...] = ()
    events: tuple[EventDef, ...] = ()
    commands: tuple[CommandDef, ...] = ()
    _commands: Mapping[str, CommandDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for kind, names in (
            ("telemetry point", [p.name for p in self.telemetry]),
            ("event", [e.name for e in self.events]),
            ("command", [c.name for c in self.commands]),
        ):
            seen: set[str] = set()
            for name in names:
                if not name or not name.replace("_", "").isalnum():
                    msg = f"{kind} name {name!r} must be letters, digits and underscores"
                    raise DictionaryError(msg)
                if name in seen:
                    msg = f"{kind} {name!r} declared twice"
                    raise DictionaryError(msg)
                seen.add(name)
        object.__setattr__(self, "_commands", {c.name: c for c in self.commands})

    def merged(self, other: Dictionary) -> Dictionary:
        """Return this dictionary with ``other``'s entries added after its own."""
        return Dictionary(
            telemetry=self.telemetry + other.telemetry,
            events=self.events + other.events,
            commands=self.commands + other.commands,
        )

    def command(self, name: str) -> CommandDef:
        """Return the command ``name``; raises :class:`CommandRejected` if unknown."""
        try:
            return self._commands[name]
        except KeyError:
            msg = f"unknown command {name!r}"
            raise CommandRejected(msg) from None

    def to_json(self) -> dict[str, Any]:
        """Return the dictionary as plain JSON-able data."""
        return {
            "telemetry": [_point_json(p) for p in self.telemetry],
            "events": [
                {"name": e.name, "severity": e.severity.value, "description": e.description}
                for e in self.events
            ],
            "commands": [_command_json(c) for c in self.commands],
        }


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _point_json(point: Point) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": point.name,
        "type": point.type.value,
        "unit": point.unit,
        "description": point.description,
    }
    if point.limits is not None:
        out["limits"] = _drop_none(vars(point.limits))
    return out


def _command_json(command: CommandDef) -> dict[str, Any]:
    return {
        "name": command.name,
        "description": command.description,
        "critical": command.critical,
        "timeout_s": command.timeout_s,
        "args": [
            _drop_none(
                {
                    "name": a.name,
                    "type": a.type.value,
                    "unit": a.unit,
                    "low": a.low,
                    "high": a.high,
                    "choices": list(a.choices) if a.choices is not None else None,
                    "description": a.description,
                }
            )
            | ({} if a.required else {"default": a.default})
            for a in command.args
        ],
    }


def command_from_json(raw: Mapping[str, Any]) -> CommandDef:
    """Rebuild a :class:`CommandDef` from :func:`Dictionary.to_json` output.

    Raises :class:`DictionaryError` for a malformed entry.
    """
    try:
        args = tuple(
            Arg(
                name=a["name"],
                type=ArgType(a["type"]),
                unit=a.get("unit", ""),
                low=a.get("low"),
                high=a.get("high"),
                choices=tuple(a["choices"]) if a.get("choices") is not None else None,
                description=a.get("description", ""),
                default=a.get("default", REQUIRED),
            )
            for a in raw.get("args", ())
        )
        return CommandDef(
            name=raw["name"],
            args=args,
            description=raw.get("description", ""),
            critical=bool(raw.get("critical", False)),
            timeout_s=float(raw.get("timeout_s", 1.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"malformed command entry {raw!r}: {exc}"
        raise DictionaryError(msg) from exc


def dictionary_from_json(raw: Mapping[str, Any]) -> Dictionary:
    """Rebuild the command part of a dictionary from JSON (what the router needs)."""
    commands: Iterable[Mapping[str, Any]] = raw.get("commands", ())
    return Dictionary(commands=tuple(command_from_json(c) for c in commands))
