"""Monitors declared as data: limit, staleness, rate-of-change and expression monitors.

A monitors file (TOML) lists ``[[monitor]]`` tables; :func:`load_monitors` checks every
key at load and raises :class:`ConfigError` naming the file, the monitor and the key.
:class:`MonitorBank` evaluates them over telemetry samples and returns every state
change as a :class:`Transition` (the fault-protection process turns each into an event,
and the responses of the ones that went red into sequences and mode requests).

Kinds (``kind``)
    ``limit``: ``point`` against ``red_low``/``yellow_low``/``yellow_high``/``red_high``
    (any subset). ``rate``: the change of ``point`` per second between two samples, against
    the same levels. ``stale``: ``point`` not updated for ``max_age_s`` of mission time is
    red. ``expression``: a condition over several points (``power.battery_soc < 0.3 and
    reactor.electric_power_w < 1000``) that, while true, puts the monitor in ``level``
    (``red`` by default). Expressions are parsed into a tree of a few allowed operations
    (arithmetic, comparisons, ``and``/``or``/``not``, numbers, ``true``/``false``, quoted
    strings, ``source.point`` names): nothing is evaluated as Python. ``event``: an event
    on the bus (``event = "reactor.reactor_trip"``, ``<source>.<name>``), optionally only
    those whose data ``match`` given values, ``count`` times within ``window_s``, puts the
    monitor in ``level``; it comes back green on ``clear_event`` or after
    ``clear_after_s`` of mission time without another (600 s when neither is given).

States: ``green``, ``yellow``, ``red``, and ``disabled``. A level holds only after
``persistence`` consecutive samples (default 1) agree, going up and coming back alike. A
reading that is not a number (NaN, a missing float channel) is red for ``limit`` and
``rate`` monitors: a sensor that cannot be read is not a healthy one (``invalid =
"yellow"`` or ``"ignore"`` where a lost reading must not start the red response). Policy ``rearm``
(default) responds every time the monitor goes red; ``one_shot`` responds once, then
latches red until :meth:`MonitorBank.rearm`. ``response`` names what to do on red:
``sequence`` (a stored sequence's name), ``mode`` (a base mode to request), or both.

Point names are ``<source>.<point>``, as in housekeeping: ``power.battery_soc`` is
``battery_soc`` in ``tlm.power.hk``.
"""

from __future__ import annotations

import ast
import math
import operator
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsw.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KINDS: Final = ("limit", "rate", "stale", "expression", "event")
POLICIES: Final = ("rearm", "one_shot")
LEVEL_KEYS: Final = ("red_low", "yellow_low", "yellow_high", "red_high")
GREEN: Final = "green"
YELLOW: Final = "yellow"
RED: Final = "red"
#: ``invalid = "ignore"``: a reading that is not a number leaves the monitor as it was.
IGNORE: Final = "ignore"
DISABLED: Final = "disabled"
_RANK: Final = {GREEN: 0, YELLOW: 1, RED: 2}

#: Longest expression text accepted (characters).
MAX_EXPRESSION_CHARS: Final = 500
#: Deepest expression tree accepted.
MAX_EXPRESSION_DEPTH: Final = 32
#: Most monitors in one file.
MAX_MONITORS: Final = 1000

_KEYS: Final = frozenset(
    {
        "name",
        "kind",
        "point",
        "expression",
        "level",
        "max_age_s",
        "persistence",
        "policy",
        "enabled",
        "response",
        "description",
        "event",
        "match",
        "count",
        "window_s",
        "clear_event",
        "clear_after_s",
        "invalid",
        *LEVEL_KEYS,
    }
)


# --- expressions ----------------------------------------------------------------------

Evaluator = Callable[[Mapping[str, Any]], Any]

_BINARY: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: Final[dict[type[ast.cmpop], Callable[[Any, Any], bool]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_LITERALS: Final = {"true": True, "false": False}


class MissingPoint(Exception):
    """A point the expression names has no sample yet."""


@dataclass(frozen=True)
class Expression:
    """A parsed condition: its text, the points it reads, and its evaluator."""

    text: str
    points: frozenset[str]
    _evaluate: Evaluator = field(repr=False, compare=False)

    def value(self, samples: Mapping[str, Any]) -> bool | None:
        """True or False over ``samples`` (point -> value); None if a point has no sample yet
        or the arithmetic fails (a division by zero, a string in a sum)."""
        try:
            return bool(self._evaluate(samples))
        except MissingPoint:
            return None
        except (ArithmeticError, TypeError):
            return None


def parse_expression(text: str) -> Expression:
    """Parse ``text``; :class:`ConfigError` saying what is not allowed, and where."""
    if not isinstance(text, str) or not text.strip():
        msg = "expression must be a non-empty string"
        raise ConfigError(msg)
    if len(text) > MAX_EXPRESSION_CHARS:
        msg = f"expression is {len(text)} characters, more than {MAX_EXPRESSION_CHARS}"
        raise ConfigError(msg)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        msg = f"expression {text!r} does not parse: {getattr(exc, 'msg', exc)}"
        raise ConfigError(msg) from exc
    points: set[str] = set()
    evaluate = _compile(tree.body, text, points, 0)
    return Expression(text, frozenset(points), evaluate)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _compile(node: ast.expr, text: str, points: set[str], depth: int) -> Evaluator:
    if depth > MAX_EXPRESSION_DEPTH:
        msg = f"expression {text!r} nests deeper than {MAX_EXPRESSION_DEPTH}"
        raise ConfigError(msg)
    here = f"expression {text!r}, at column {getattr(node, 'col_offset', 0) + 1}"
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        constant = node.value
        return lambda _samples: constant
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name in _LITERALS:
            literal = _LITERALS[name]
            return lambda _samples: literal
        if name is None or name.count(".") != 1:
            msg = f"{here}: a name must be <source>.<point> (or true/false), got {ast.unparse(node)!r}"
            raise ConfigError(msg)
        points.add(name)
        point = name

        def read(samples: Mapping[str, Any]) -> Any:
            if point not in samples:
                raise MissingPoint(point)
            return samples[point]

        return read
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, text, points, depth + 1) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda s: all(bool(p(s)) for p in parts)
        return lambda s: any(bool(p(s)) for p in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        inner = _compile(node.operand, text, points, depth + 1)
        if isinstance(node.op, ast.Not):
            return lambda s: not inner(s)
        return lambda s: -inner(s)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        function = _BINARY[type(node.op)]
        left = _compile(node.left, text, points, depth + 1)
        right = _compile(node.right, text, points, depth + 1)
        return lambda s: function(left(s), right(s))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        operands = [_compile(n, text, points, depth + 1) for n in (node.left, *node.comparators)]
        tests = [_COMPARE[type(op)] for op in node.ops]

        def compare(samples: Mapping[str, Any]) -> bool:
            values = [o(samples) for o in operands]
            return all(t(a, b) for t, a, b in zip(tests, values, values[1:], strict=False))

        return compare
    msg = f"{here}: {type(node).__name__} is not allowed (arithmetic, comparisons, and/or/not only)"
    raise ConfigError(msg)


# --- specifications ---------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """What to do when a monitor goes red: a stored sequence, a base mode request, or both."""

    sequence: str = ""
    mode: str = ""


@dataclass(frozen=True)
class MonitorSpec:
    """One monitor, checked."""

    name: str
    kind: str
    point: str = ""
    expression: Expression | None = None
    level: str = RED
    levels: Mapping[str, float] = field(default_factory=dict)
    max_age_s: float = 0.0
    persistence: int = 1
    policy: str = "rearm"
    enabled: bool = True
    response: Response = field(default_factory=Response)
    description: str = ""
    event: str = ""
    match: Mapping[str, Any] = field(default_factory=dict)
    count: int = 1
    window_s: float = 0.0
    clear_event: str = ""
    clear_after_s: float = 0.0
    #: Level of a reading that is not a number (limit and rate monitors): red, yellow or ignore.
    invalid: str = RED

    @property
    def points(self) -> frozenset[str]:
        """The points this monitor reads."""
        if self.expression is not None:
            return self.expression.points
        if self.kind == "event":
            return frozenset()
        return frozenset({self.point})


def load_monitors(path: str | Path) -> tuple[MonitorSpec, ...]:
    """Read and check a monitors file. Raises :class:`ConfigError` naming file, monitor and key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read monitors file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    return parse_monitors(text, source=str(path))


def parse_monitors(text: str, *, source: str = "<string>") -> tuple[MonitorSpec, ...]:
    """Parse monitors TOML ``text``; ``source`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    unknown = sorted(set(raw) - {"monitor"})
    if unknown:
        msg = f"{source}: unknown top-level key(s) {', '.join(unknown)} (monitors are [[monitor]] tables)"
        raise ConfigError(msg)
    tables = raw.get("monitor", [])
    if not isinstance(tables, list) or len(tables) > MAX_MONITORS:
        msg = f"{source}: [[monitor]] must be an array of at most {MAX_MONITORS} tables"
        raise ConfigError(msg)
    specs = [_spec(source, number, table) for number, table in enumerate(tables, start=1)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            msg = f"{source}: two monitors are named {spec.name!r}"
            raise ConfigError(msg)
        seen.add(spec.name)
    return tuple(specs)


def _spec(source: str, number: int, table: object) -> MonitorSpec:
    where = f"{source}: [[monitor]] #{number}"
    if not isinstance(table, dict):
        msg = f"{where} must be a table"
        raise ConfigError(msg)
    name = table.get("name")
    if isinstance(name, str) and name:
        where = f"{source}: monitor {name!r}"
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        msg = f"{where}: unknown key(s) {', '.join(unknown)}"
        raise ConfigError(msg)
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        msg = f"{where}: name must be letters, digits and '_', got {name!r}"
        raise ConfigError(msg)
    kind = table.get("kind")
    if kind not in KINDS:
        msg = f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}"
        raise ConfigError(msg)
    try:
        return _checked(where, name, kind, table)
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        msg = f"{where}: {exc}"
        raise ConfigError(msg) from exc


def _checked(where: str, name: str, kind: str, table: Mapping[str, Any]) -> MonitorSpec:
    point = table.get("point", "")
    expression: Expression | None = None
    if kind == "expression":
        if "point" in table:
            msg = f"{where}: an expression monitor names its points in `expression`, not `point`"
            raise ConfigError(msg)
        expression = parse_expression(table.get("expression", ""))
    elif kind == "event":
        if "point" in table:
            msg = f"{where}: an event monitor names its event in `event`, not `point`"
            raise ConfigError(msg)
    elif not _source_dot_name(point):
        msg = f"{where}: point must be <source>.<point>, got {point!r}"
        raise ConfigError(msg)
    event_keys = _event_keys(where, kind, table)
    levels, max_age_s = _levels_and_age(where, kind, table)
    level = table.get("level", RED)
    if level not in (YELLOW, RED):
        msg = f"{where}: level must be yellow or red, got {level!r}"
        raise ConfigError(msg)
    persistence = _whole(where, "persistence", table.get("persistence", 1), 10_000)
    invalid = table.get("invalid", RED)
    if invalid not in (RED, YELLOW, IGNORE) or ("invalid" in table and kind not in ("limit", "rate")):
        msg = f"{where}: invalid (limit and rate monitors) must be red, yellow or ignore, got {invalid!r}"
        raise ConfigError(msg)
    policy = table.get("policy", "rearm")
    if policy not in POLICIES:
        msg = f"{where}: policy must be one of {', '.join(POLICIES)}, got {policy!r}"
        raise ConfigError(msg)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        msg = f"{where}: enabled must be true or false"
        raise ConfigError(msg)
    description = table.get("description", "")
    if not isinstance(description, str):
        msg = f"{where}: description must be a string"
        raise ConfigError(msg)
    return MonitorSpec(
        name=name,
        kind=kind,
        point=point if kind != "expression" else "",
        expression=expression,
        level=level,
        levels=levels,
        max_age_s=max_age_s,
        persistence=persistence,
        policy=policy,
        enabled=enabled,
        response=_response(where, table.get("response", {})),
        description=description,
        invalid=invalid,
        **event_keys,
    )


def _source_dot_name(name: object) -> bool:
    """Whether ``name`` is ``<source>.<name>``."""
    return isinstance(name, str) and name.count(".") == 1 and all(name.split("."))


_EVENT_ONLY: Final = ("event", "match", "count", "window_s", "clear_event", "clear_after_s")
#: Mission time an event monitor stays red after its last event when no clearing is given (s).
EVENT_CLEAR_AFTER_S: Final = 600.0


def _event_keys(where: str, kind: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of an ``event`` monitor, checked (and refused on the other kinds)."""
    if kind != "event":
        extra = [key for key in _EVENT_ONLY if key in table]
        if extra:
            msg = f"{where}: {', '.join(extra)} apply to event monitors only"
            raise ConfigError(msg)
        return {}
    event, clear_event = table.get("event"), table.get("clear_event", "")
    if not _source_dot_name(event):
        msg = f"{where}: event must be <source>.<event>, got {event!r}"
        raise ConfigError(msg)
    if clear_event and not _source_dot_name(clear_event):
        msg = f"{where}: clear_event must be <source>.<event>, got {clear_event!r}"
        raise ConfigError(msg)
    match = table.get("match", {})
    if not isinstance(match, dict) or not all(isinstance(v, (str, int, float, bool)) for v in match.values()):
        msg = f"{where}: match must be a table of event fields and plain values, got {match!r}"
        raise ConfigError(msg)
    count = _whole(where, "count", table.get("count", 1), 1000)
    window_s = _number(where, "window_s", table.get("window_s", 0.0))
    if count > 1 and window_s <= 0.0:
        msg = f"{where}: count > 1 needs window_s, the mission seconds the events must fall within"
        raise ConfigError(msg)
    default_clear_s = 0.0 if clear_event else EVENT_CLEAR_AFTER_S
    clear_after_s = _number(where, "clear_after_s", table.get("clear_after_s", default_clear_s))
    if clear_after_s < 0.0:
        msg = f"{where}: clear_after_s must not be negative"
        raise ConfigError(msg)
    return {
        "event": event,
        "match": dict(match),
        "count": count,
        "window_s": window_s,
        "clear_event": clear_event,
        "clear_after_s": clear_after_s,
    }


def _levels_and_age(where: str, kind: str, table: Mapping[str, Any]) -> tuple[dict[str, float], float]:
    levels = {key: _number(where, key, table[key]) for key in LEVEL_KEYS if key in table}
    if kind in ("limit", "rate"):
        if not levels:
            msg = f"{where}: a {kind} monitor needs at least one of {', '.join(LEVEL_KEYS)}"
            raise ConfigError(msg)
        _check_order(where, levels)
    elif levels:
        msg = f"{where}: {', '.join(levels)} apply to limit and rate monitors only"
        raise ConfigError(msg)
    max_age_s = 0.0
    if kind == "stale":
        max_age_s = _number(where, "max_age_s", table.get("max_age_s"))
        if max_age_s <= 0.0:
            msg = f"{where}: max_age_s must be a positive number of seconds"
            raise ConfigError(msg)
    return levels, max_age_s


def _whole(where: str, key: str, value: object, high: int) -> int:
    """``value`` as a whole number from 1 to ``high``; :class:`ConfigError` naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        msg = f"{where}: {key} must be a whole number from 1 to {high}, got {value!r}"
        raise ConfigError(msg)
    return value


def _number(where: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        msg = f"{where}: {key} must be a finite number, got {value!r}"
        raise ConfigError(msg)
    return float(value)


def _check_order(where: str, levels: Mapping[str, float]) -> None:
    ordered = [levels[k] for k in LEVEL_KEYS if k in levels]
    if ordered != sorted(ordered):
        shown = ", ".join(f"{k} = {levels[k]:g}" for k in LEVEL_KEYS if k in levels)
        msg = f"{where}: levels must rise red_low <= yellow_low <= yellow_high <= red_high ({shown})"
        raise ConfigError(msg)


def _response(where: str, raw: object) -> Response:
    if not isinstance(raw, dict) or set(raw) - {"sequence", "mode"}:
        msg = f"{where}: response must be a table of `sequence` and/or `mode`, got {raw!r}"
        raise ConfigError(msg)
    sequence, mode = raw.get("sequence", ""), raw.get("mode", "")
    if not isinstance(sequence, str) or not isinstance(mode, str):
        msg = f"{where}: response sequence and mode must be names (strings)"
        raise ConfigError(msg)
    return Response(sequence=sequence, mode=mode)


# --- evaluation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """A monitor's state change at mission time ``t_s``; ``respond`` when its response is due."""

    monitor: str
    previous: str
    state: str
    t_s: float
    cause: dict[str, Any]
    respond: bool = False
    response: Response = field(default_factory=Response)


@dataclass
class MonitorState:
    """What a monitor remembers between samples (and what persistence will keep)."""

    state: str = GREEN
    candidate: str = GREEN
    count: int = 0
    latched: bool = False
    last_value: float | None = None
    last_t_s: float | None = None
    updated_t_s: float | None = None
    transitions: int = 0
    #: Event monitors: mission times of the recent matching events (at most ``count``).
    occurrences: list[float] = field(default_factory=list)


def _level_of(value: float, levels: Mapping[str, float]) -> str:
    if math.isnan(value):
        return RED
    if ("red_low" in levels and value < levels["red_low"]) or (
        "red_high" in levels and value > levels["red_high"]
    ):
        return RED
    if ("yellow_low" in levels and value < levels["yellow_low"]) or (
        "yellow_high" in levels and value > levels["yellow_high"]
    ):
        return YELLOW
    return GREEN


class MonitorBank:
    """Evaluates monitors over samples of telemetry points, in mission time.

    :meth:`observe` feeds one point's sample; :meth:`check` runs the time-driven and
    expression monitors at a mission time. Both return the transitions they caused.
    Pure computation: no I/O, no wall clock.
    """

    def __init__(self, specs: Iterable[MonitorSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.states = {name: MonitorState() for name in self.specs}
        self.enabled = {name: spec.enabled for name, spec in self.specs.items()}
        self.samples: dict[str, Any] = {}
        self._by_point: dict[str, list[MonitorSpec]] = {}
        self._by_event: dict[str, list[MonitorSpec]] = {}
        for spec in self.specs.values():
            if spec.kind in ("limit", "rate", "stale"):
                self._by_point.setdefault(spec.point, []).append(spec)
            elif spec.kind == "event":
                self._by_event.setdefault(spec.event, []).append(spec)
                if spec.clear_event:
                    self._by_event.setdefault(spec.clear_event, []).append(spec)

    @property
    def events(self) -> frozenset[str]:
        """The events (``<source>.<name>``) the event monitors listen for, clearing ones included."""
        return frozenset(self._by_event)

    @property
    def points(self) -> frozenset[str]:
        """Every point a monitor reads."""
        return frozenset().union(*(spec.points for spec in self.specs.values()))

    def state(self, name: str) -> str:
        """``green``, ``yellow``, ``red`` or ``disabled``."""
        return self.states[name].state if self.enabled[name] else DISABLED

    def observe(self, point: str, value: Any, t_s: float) -> list[Transition]:
        """A new sample of ``point`` at mission time ``t_s``."""
        self.samples[point] = value
        out: list[Transition] = []
        for spec in self._by_point.get(point, ()):
            memory = self.states[spec.name]
            memory.updated_t_s = t_s
            if not self.enabled[spec.name]:
                continue
            number = as_number(value)
            if spec.kind in ("limit", "rate") and math.isnan(number):
                if spec.invalid != IGNORE:
                    self._step(spec, spec.invalid, t_s, {"point": point, "value": value}, out)
                continue
            if spec.kind == "limit":
                level = _level_of(number, spec.levels)
                cause = {"point": point, "value": value}
                self._step(spec, level, t_s, cause, out)
            elif spec.kind == "rate":
                if memory.last_value is not None and memory.last_t_s is not None and t_s > memory.last_t_s:
                    rate = (number - memory.last_value) / (t_s - memory.last_t_s)
                    level = _level_of(rate, spec.levels)
                    self._step(spec, level, t_s, {"point": point, "rate_per_s": rate}, out)
                memory.last_value, memory.last_t_s = number, t_s
            elif spec.kind == "stale" and memory.state != GREEN:
                self._step(spec, GREEN, t_s, {"point": point, "age_s": 0.0}, out)
        return out

    def observe_event(self, event: str, data: Mapping[str, Any], t_s: float) -> list[Transition]:
        """Event ``event`` (``<source>.<name>``) with ``data`` happened at mission time ``t_s``."""
        out: list[Transition] = []
        for spec in self._by_event.get(event, ()):
            if not self.enabled[spec.name] or any(data.get(k) != v for k, v in spec.match.items()):
                continue
            memory = self.states[spec.name]
            if event == spec.event:
                memory.occurrences.append(t_s)
                if spec.count > 1:
                    memory.occurrences = [t for t in memory.occurrences if t_s - t <= spec.window_s]
                del memory.occurrences[: -spec.count]
                memory.updated_t_s = t_s
                if len(memory.occurrences) >= spec.count:
                    cause = {"event": event, "count": len(memory.occurrences), **_short(data)}
                    self._step(spec, spec.level, t_s, cause, out)
            elif memory.state != GREEN:
                memory.occurrences.clear()
                self._step(spec, GREEN, t_s, {"event": event}, out)
        return out

    def check(self, t_s: float) -> list[Transition]:
        """Run staleness, expression and event-clearing monitors at mission time ``t_s``."""
        out: list[Transition] = []
        for spec in self.specs.values():
            if not self.enabled[spec.name]:
                continue
            memory = self.states[spec.name]
            if spec.kind == "stale":
                seen = memory.updated_t_s
                if seen is None:
                    memory.updated_t_s = seen = t_s  # the clock starts with the monitor
                age_s = t_s - seen
                if age_s > spec.max_age_s:
                    self._step(spec, RED, t_s, {"point": spec.point, "age_s": age_s}, out)
            elif spec.kind == "event":
                seen = memory.updated_t_s
                if (
                    memory.state != GREEN
                    and spec.clear_after_s > 0.0
                    and seen is not None
                    and t_s - seen >= spec.clear_after_s
                ):
                    memory.occurrences.clear()
                    self._step(spec, GREEN, t_s, {"event": spec.event, "quiet_s": t_s - seen}, out)
            elif spec.expression is not None:
                truth = spec.expression.value(self.samples)
                if truth is not None:
                    level = spec.level if truth else GREEN
                    self._step(spec, level, t_s, {"expression": spec.expression.text}, out)
        return out

    def set_enabled(self, name: str, enabled: bool, t_s: float) -> Transition | None:
        """Enable or disable monitor ``name``; returns the state change, if any."""
        previous = self.state(name)
        self.enabled[name] = enabled
        if not enabled:
            self.states[name] = MonitorState(updated_t_s=self.states[name].updated_t_s)
        now = self.state(name)
        if now == previous:
            return None
        return Transition(name, previous, now, t_s, {"command": "enable" if enabled else "disable"})

    def rearm(self, name: str, t_s: float) -> Transition | None:
        """Unlatch a one-shot monitor: it may respond again."""
        memory = self.states[name]
        if not memory.latched:
            return None
        memory.latched = False
        previous = memory.state
        memory.state = memory.candidate = GREEN
        memory.count = 0
        return Transition(name, previous, GREEN, t_s, {"command": "rearm"})

    def _step(
        self, spec: MonitorSpec, level: str, t_s: float, cause: dict[str, Any], out: list[Transition]
    ) -> None:
        memory = self.states[spec.name]
        if memory.latched:
            return
        if level == memory.state:
            memory.candidate, memory.count = level, 0
            return
        if level != memory.candidate:
            memory.candidate, memory.count = level, 0
        memory.count += 1
        if memory.count < spec.persistence:
            return
        previous, memory.state, memory.count = memory.state, level, 0
        memory.transitions += 1
        respond = level == RED and _RANK[previous] < _RANK[RED]
        if respond and spec.policy == "one_shot":
            memory.latched = True
        out.append(Transition(spec.name, previous, level, t_s, cause, respond, spec.response))


def _short(data: Mapping[str, Any]) -> dict[str, Any]:
    """An event's plain fields, for a transition's cause."""
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool)) and k != "severity"}


def as_number(value: Any) -> float:
    """A telemetry value as a number: booleans 1 and 0, numbers as floats, anything else NaN."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return math.nan


__all__ = [
    "Expression",
    "MonitorBank",
    "MonitorSpec",
    "Response",
    "Transition",
    "as_number",
    "load_monitors",
    "parse_expression",
    "parse_monitors",
]
