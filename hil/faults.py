"""Fault injection into the simulated boards, as data.

A fault is a :class:`FaultSpec`: the board, the *kind* (a row of :data:`KINDS`), the
channel or actuator it hits, and the kind's own numeric parameters. Every kind is one
:class:`FaultKind` entry in :data:`KINDS`: its name, what it applies to (a channel, an
actuator or the whole board; which boards; which channel types), its parameters with
types and ranges, what a user should see, and how it is applied and cleared (an
:class:`Effect` builder). Adding a kind is adding one entry.

Generic kinds (any board)
    ``stuck`` (a channel holds the value it had when the fault was applied; or an
    actuator acknowledges commands and ignores them), ``offset`` (a channel reads
    ``value`` more), ``noisy`` (a channel gets seeded Gaussian noise of ``sigma``, one draw
    per frame), ``dropped`` (a float channel reads NaN: a board's "no valid
    measurement"; bool and int channels have no NaN, use ``stuck`` there), ``silent``
    (the board's link is cut: requests get no answer, so the flight side sees timeouts,
    then ``board_link_lost``).
Physics kinds
    ``converter_failure`` (reactor: :meth:`~hil.physics.ReactorModel.fail_converter`),
    ``array_degradation`` (power: the arrays lose ``fraction`` of their output),
    ``heater_stuck`` (thermal: a heater runs at duty ``value`` whatever is commanded).

How a fault reaches the boards: :class:`FaultyBoard` wraps a
:class:`~hil.physics.BoardModel` and presents the same
:class:`~hil.board_server.ServedModel` protocol (and the same ``step`` the world calls),
transforming reads, swallowing commands and adjusting the environment as the active
faults say. :class:`FaultyBoardServer` is a :class:`~hil.board_server.BoardServer` that
stays quiet while its board is ``silent``. :class:`FaultInjector` wraps every board of a
:class:`~hil.physics.World`, steps the world frame by frame and applies the faults.

Determinism: nothing is applied when it is asked for. Every injection and clearing,
from a scenario or a command, is applied at the start of a world step, like an actuator
command: a fault requested during frame ``t`` acts on the physics of the step
``t -> t + 1`` and is seen by every read of frame ``t + 1``; a scenario fault at
mission time ``T`` is applied at the start of the step into frame ``ceil(T / period)``.
Noise is drawn once per frame from a generator seeded with the run's seed, the fault's
``seed``, the board and the channel. A seeded run with a scenario is reproducible.

Scenario files (TOML) schedule faults at mission times; see :func:`load_scenario` and
``docs/faults.md``.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from fsw.board import BoardDescription, BoardEvent, Value, ValueType
from fsw.errors import BoardError, ConfigError
from fsw.run import parse_duration
from hil.board_server import DEFAULT_MAX_OUTPUT_BYTES, BoardServer, SyncCallback
from hil.physics import (
    BoardModel,
    CommsModel,
    Coupling,
    Environment,
    PowerModel,
    ReactorModel,
    ThermalModel,
    World,
)
from hil.wire import PROTOCOL_VERSION, Frame, Refusal, Rejection, Sync, check_command

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The boards of the simulated world, by kind (what ``board`` may name).
BOARDS: Final = ("comms", "power", "reactor", "thermal")

#: Most fault requests (injections and clearings by command) waiting for the next step.
MAX_PENDING_REQUESTS: Final = 64

#: Most entries in one scenario file.
MAX_SCENARIO_ENTRIES: Final = 10_000

#: Most faults active at once on one board.
MAX_ACTIVE_PER_BOARD: Final = 64

#: Largest magnitude of an ``offset`` value.
MAX_OFFSET: Final = 1e9

SEED_MAX: Final = 2**31 - 1

#: Most scenario steps a listing shows (the rest are counted).
MAX_LISTED_SCHEDULED: Final = 100


class FaultError(ConfigError):
    """A fault that cannot be injected or cleared; ``key`` names the argument at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


# --- the table ----------------------------------------------------------------------


class Target(str, enum.Enum):
    """What a fault kind hits."""

    CHANNEL = "channel"
    ACTUATOR = "actuator"


@dataclass(frozen=True)
class Param:
    """A numeric parameter of a fault kind.

    ``default`` None means required. ``low``/``high`` bound it (``low`` excluded when
    ``low_inclusive`` is False). ``integer`` parameters take whole numbers only.
    """

    name: str
    description: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    default: float | None = None
    low_inclusive: bool = True
    integer: bool = False

    def check(self, value: object) -> float | int:
        """Return ``value`` as this parameter's type; raises :class:`FaultError` naming it."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            expected = "an integer" if self.integer else "a number"
            raise FaultError(self.name, f"{self.name}={value!r} must be {expected}")
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            raise FaultError(self.name, f"{self.name}={value!r} must be a whole number")
        number: float | int = int(value) if self.integer else float(value)
        if not math.isfinite(number):
            raise FaultError(self.name, f"{self.name}={value!r} must be finite")
        if self.low is not None and (number < self.low or (number == self.low and not self.low_inclusive)):
            relation = "at least" if self.low_inclusive else "above"
            raise FaultError(self.name, f"{self.name}={value!r} must be {relation} {self.low:g}")
        if self.high is not None and number > self.high:
            raise FaultError(self.name, f"{self.name}={value!r} must be at most {self.high:g}")
        return number


@dataclass(frozen=True)
class FaultSpec:
    """One fault: board, kind, target (channel or actuator, or neither) and parameters."""

    board: str
    kind: str
    channel: str = ""
    actuator: str = ""
    params: Mapping[str, float | int] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The channel or actuator name, or ``""`` for a board-level fault."""
        return self.channel or self.actuator

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity: at most one fault per (board, kind, target) is active at a time."""
        return (self.board, self.kind, self.target)

    def param(self, name: str) -> float:
        """The value of parameter ``name`` (a number; the kind's default was filled in)."""
        return float(self.params[name])

    def describe(self) -> str:
        """``power stuck channel=battery_soc``: for messages and logs."""
        words = [self.board, self.kind]
        if self.channel:
            words.append(f"channel={self.channel}")
        if self.actuator:
            words.append(f"actuator={self.actuator}")
        words.extend(f"{k}={v:g}" for k, v in self.params.items())
        return " ".join(words)

    def to_json(self) -> dict[str, Any]:
        """Plain data for events, command results and listings."""
        return {
            "board": self.board,
            "kind": self.kind,
            "channel": self.channel,
            "actuator": self.actuator,
            "params": dict(self.params),
        }


class Effect:
    """How an active fault changes its board. Every hook is a no-op by default.

    ``apply`` and ``clear`` run at the start of a world step (see the module docstring);
    ``on_frame`` after every step while active; ``transform`` on every read; ``swallows``
    on every command; ``environment`` on every step.
    """

    #: True when the board answers nothing while this fault is active.
    silences: bool = False

    def apply(self, board: FaultyBoard) -> dict[str, Any]:
        """Start acting on ``board``; return details worth reporting (e.g. a held value)."""
        del board
        return {}

    def clear(self, board: FaultyBoard) -> None:
        """Stop acting on ``board``."""

    def on_frame(self) -> None:
        """The world completed a step while this fault was active."""

    def transform(self, values: dict[str, Value]) -> None:
        """Change a reading in place."""

    def swallows(self, actuator: str) -> bool:
        """True if a command to ``actuator`` is acknowledged but has no effect."""
        del actuator
        return False

    def environment(self, env: Environment) -> Environment:
        """The environment this board's physics sees in the next step."""
        return env


EffectBuilder = Callable[[FaultSpec, int], Effect]


@dataclass(frozen=True)
class FaultKind:
    """One row of the fault table.

    ``targets``: what the fault hits (empty: the whole board; both: a channel *or* an
    actuator). ``boards``: the boards it applies to (None: any). ``channel_types``: the
    channel value types it accepts. ``params``: its numeric parameters. ``summary``
    says what it does, ``observable`` what a user sees on the bus. ``build(spec,
    run_seed)`` makes the :class:`Effect` that applies and clears it.
    """

    name: str
    summary: str
    observable: str
    build: EffectBuilder
    targets: tuple[Target, ...] = ()
    boards: tuple[str, ...] | None = None
    channel_types: frozenset[ValueType] = frozenset(ValueType)
    params: tuple[Param, ...] = ()

    def param(self, name: str) -> Param | None:
        """The parameter ``name``, or None."""
        return next((p for p in self.params if p.name == name), None)


# --- effects ------------------------------------------------------------------------


class StuckChannel(Effect):
    """The channel holds the value it had when the fault was applied."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.held: Value | None = None

    def apply(self, board: FaultyBoard) -> dict[str, Any]:
        """Capture the value the channel reads now (before this fault)."""
        self.held = board.read_before(self).get(self.channel)
        return {"held": self.held}

    def transform(self, values: dict[str, Value]) -> None:
        """Replace the channel by the held value."""
        if self.held is not None and self.channel in values:
            values[self.channel] = self.held


def _same_type(original: Value, number: float) -> Value:
    if isinstance(original, int) and not isinstance(original, bool):
        return round(number) if math.isfinite(number) else original
    return number


class OffsetChannel(Effect):
    """The channel reads ``value`` more than it should (rounded for int channels)."""

    def __init__(self, channel: str, value: float) -> None:
        self.channel = channel
        self.value = value

    def transform(self, values: dict[str, Value]) -> None:
        """Add the offset."""
        original = values.get(self.channel)
        if original is not None and not isinstance(original, bool):
            values[self.channel] = _same_type(original, float(original) + self.value)


class NoisyChannel(Effect):
    """Seeded Gaussian noise of ``sigma`` on the channel: one draw per frame."""

    def __init__(self, channel: str, sigma: float, rng: random.Random) -> None:
        self.channel = channel
        self.sigma = sigma
        self._rng = rng
        self._noise = 0.0

    def apply(self, board: FaultyBoard) -> dict[str, Any]:
        """Draw the first sample."""
        del board
        self.on_frame()
        return {}

    def on_frame(self) -> None:
        """Draw the noise every read of this frame gets."""
        self._noise = self._rng.gauss(0.0, self.sigma)

    def transform(self, values: dict[str, Value]) -> None:
        """Add this frame's noise."""
        original = values.get(self.channel)
        if original is not None and not isinstance(original, bool):
            values[self.channel] = _same_type(original, float(original) + self._noise)


class DroppedChannel(Effect):
    """The float channel reads NaN: the board has no valid measurement."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def transform(self, values: dict[str, Value]) -> None:
        """Replace the value by NaN."""
        if self.channel in values:
            values[self.channel] = math.nan


class StuckActuator(Effect):
    """Commands to the actuator are acknowledged and have no effect while the fault lasts.

    Cleared, the actuator follows its command again: the last one it swallowed, if any.
    """

    def __init__(self, actuator: str) -> None:
        self.actuator = actuator
        #: The last command swallowed, re-applied when the fault clears.
        self.swallowed: Value | None = None

    def swallows(self, actuator: str) -> bool:
        """True for this fault's actuator."""
        return actuator == self.actuator

    def swallow(self, value: Value) -> None:
        """A command to the actuator was swallowed."""
        self.swallowed = value

    def clear(self, board: FaultyBoard) -> None:
        """The actuator follows its last command again."""
        if self.swallowed is not None:
            board.inner.command(self.actuator, self.swallowed)


class ForcedActuator(StuckActuator):
    """The actuator is driven to ``value`` when applied, then ignores commands.

    Cleared, it goes back to its last command: the last one swallowed, or the value it had
    when the fault was applied (the actuator's reading of the same name, when the board has one).
    """

    def __init__(self, actuator: str, value: float) -> None:
        super().__init__(actuator)
        self.value = value

    def apply(self, board: FaultyBoard) -> dict[str, Any]:
        """Drive the actuator (it takes effect in this step)."""
        before = board.inner.read().get(self.actuator)
        if before is not None and not isinstance(before, str):
            self.swallowed = before
        board.inner.command(self.actuator, self.value)
        return {}


class Silent(Effect):
    """The board answers nothing."""

    silences = True


class DegradedArrays(Effect):
    """The solar arrays lose ``fraction`` of their output (less light reaches the cells)."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def environment(self, env: Environment) -> Environment:
        """Scale the lit fraction the power board sees."""
        return dataclasses.replace(env, lit_fraction=env.lit_fraction * (1.0 - self.fraction))


ModelAction = Callable[[BoardModel, FaultSpec], None]


class PhysicsFault(Effect):
    """A fault the board model implements itself: ``apply_to`` and ``clear_from`` call it."""

    def __init__(self, spec: FaultSpec, apply_to: ModelAction, clear_from: ModelAction) -> None:
        self.spec = spec
        self._apply_to = apply_to
        self._clear_from = clear_from

    def apply(self, board: FaultyBoard) -> dict[str, Any]:
        """Call the model's own fault hook."""
        self._apply_to(board.inner, self.spec)
        return {}

    def clear(self, board: FaultyBoard) -> None:
        """Undo it through the model's hook."""
        self._clear_from(board.inner, self.spec)


def physics(apply_to: ModelAction, clear_from: ModelAction) -> EffectBuilder:
    """An :class:`EffectBuilder` for a fault the board model implements (one table entry)."""
    return lambda spec, _seed: PhysicsFault(spec, apply_to, clear_from)


_M = TypeVar("_M", bound=BoardModel)


def _model(model: BoardModel, cls: type[_M]) -> _M:
    """``model`` as a ``cls``, or :class:`FaultError` (a fault kind applied to the wrong board)."""
    if not isinstance(model, cls):
        raise FaultError("board", f"board {model.kind!r} is not a {cls.__name__}")
    return model


def _reactor(model: BoardModel) -> ReactorModel:
    return _model(model, ReactorModel)


def _count(spec: FaultSpec) -> int:
    return int(spec.param("count"))


def _counted(cls: type[_M], hook: Callable[[_M, int], None]) -> EffectBuilder:
    """A fault that calls ``hook(model, count)`` and clears with ``hook(model, 0)``."""
    return physics(
        lambda model, spec: hook(_model(model, cls), _count(spec)),
        lambda model, _spec: hook(_model(model, cls), 0),
    )


def _noise_rng(spec: FaultSpec, run_seed: int) -> random.Random:
    seed = int(spec.params.get("seed", 0))
    # String seeds are hashed deterministically (SHA-512), unlike hash().
    return random.Random(f"{run_seed}/{seed}/{spec.board}/{spec.channel}")  # noqa: S311 - simulation


def _build_stuck(spec: FaultSpec, _seed: int) -> Effect:
    return StuckChannel(spec.channel) if spec.channel else StuckActuator(spec.actuator)


_NUMERIC: Final = frozenset({ValueType.FLOAT, ValueType.INT})

#: Every fault kind, by name. Adding a kind is adding an entry here.
KINDS: Final[Mapping[str, FaultKind]] = {
    kind.name: kind
    for kind in (
        FaultKind(
            "stuck",
            summary="A sensor channel holds the value it had when the fault was applied, or an "
            "actuator acknowledges every command and does nothing.",
            observable="Channel: the subsystem's housekeeping shows the channel constant while the "
            "physics moves on. Actuator: commands complete, the board's state does not follow.",
            build=_build_stuck,
            targets=(Target.CHANNEL, Target.ACTUATOR),
        ),
        FaultKind(
            "offset",
            summary="A numeric channel reads `value` more than the truth (rounded on int channels).",
            observable="The channel in the subsystem's housekeeping jumps by `value` and follows the "
            "physics from there.",
            build=lambda spec, _seed: OffsetChannel(spec.channel, spec.param("value")),
            targets=(Target.CHANNEL,),
            channel_types=_NUMERIC,
            params=(Param("value", "added to every reading", "channel unit", -MAX_OFFSET, MAX_OFFSET),),
        ),
        FaultKind(
            "noisy",
            summary="A numeric channel gets Gaussian noise of standard deviation `sigma`, drawn once "
            "per frame from a generator seeded with the run seed, `seed`, the board and the channel.",
            observable="The channel jitters around the truth; two runs with the same seeds show the "
            "same values.",
            build=lambda spec, seed: NoisyChannel(spec.channel, spec.param("sigma"), _noise_rng(spec, seed)),
            targets=(Target.CHANNEL,),
            channel_types=_NUMERIC,
            params=(
                Param("sigma", "standard deviation", "channel unit", 0.0, MAX_OFFSET, low_inclusive=False),
                Param("seed", "noise seed (mixed with the run seed)", "", 0, SEED_MAX, 0, integer=True),
            ),
        ),
        FaultKind(
            "dropped",
            summary="A float channel reads NaN, the value a board reports for a sensor it cannot "
            "read (bool and int channels have no NaN: use stuck there).",
            observable="The channel is NaN in the subsystem's housekeeping. NaN fails every "
            "comparison, so limit checks on it stay silent: fault protection must notice.",
            build=lambda spec, _seed: DroppedChannel(spec.channel),
            targets=(Target.CHANNEL,),
            channel_types=frozenset({ValueType.FLOAT}),
        ),
        FaultKind(
            "silent",
            summary="The board's link is cut: every request goes unanswered. The board itself runs "
            "on (a reactor board trips on the lost heartbeat after its timeout).",
            observable="The subsystem publishes frame_error (board timeouts) for two control "
            "cycles, then board_link_lost; board_link_restored once cleared.",
            build=lambda _spec, _seed: Silent(),
        ),
        FaultKind(
            "converter_failure",
            summary="The reactor's Stirling converters stop: the heat sink is lost "
            "(ReactorModel.fail_converter). Above 0.1 % power the board trips on loss_of_heat_sink.",
            observable="converter_ok false and electric_power_w falling to 0 in tlm.reactor.hk; at "
            "power, reactor_trip (reason loss_of_heat_sink) and mode TRIPPED. Clearing restarts the "
            "converters; a trip stays latched until trip_reset.",
            build=physics(
                lambda model, _spec: _reactor(model).fail_converter(True),
                lambda model, _spec: _reactor(model).fail_converter(False),
            ),
            boards=("reactor",),
        ),
        FaultKind(
            "array_degradation",
            summary="The solar arrays lose `fraction` of their output (dust, damage, a failed string).",
            observable="solar_power_w in tlm.power.hk drops by the fraction; the battery charges "
            "less or discharges sooner.",
            build=lambda spec, _seed: DegradedArrays(spec.param("fraction")),
            boards=("power",),
            params=(Param("fraction", "share of array output lost", "1", 0.0, 1.0, low_inclusive=False),),
        ),
        FaultKind(
            "heater_stuck",
            summary="A heater's switch is stuck: it runs at duty `value` (default 1, stuck on) "
            "whatever is commanded; commands to it are acknowledged.",
            observable="The heated node's temperature drifts (up when stuck on) while the thermal "
            "subsystem's heater_<node> telemetry shows what it commanded; load_power_w in "
            "tlm.power.hk includes the heater's draw.",
            build=lambda spec, _seed: ForcedActuator(spec.actuator, spec.param("value")),
            targets=(Target.ACTUATOR,),
            boards=("thermal",),
            params=(Param("value", "duty the heater is stuck at", "1", 0.0, 1.0, 1.0),),
        ),
        FaultKind(
            "link_loss",
            summary="The radio closes no link whatever the visibility (CommsModel.lose_link); the keyed "
            "transmitter still draws its power.",
            observable="downlink_rate_bps 0 and link_up false in tlm.comms.hk while dte_visible or "
            "relay_visible says a path is in view; after 3 cycles a radio_fault event and radio_fault "
            "true; queue_bytes grows while downlinked_bytes stays flat. Cleared: radio_recovered, then "
            "the backlog leaves, events first.",
            build=physics(
                lambda model, _spec: _model(model, CommsModel).lose_link(True),
                lambda model, _spec: _model(model, CommsModel).lose_link(False),
            ),
            boards=("comms",),
        ),
        FaultKind(
            "cell_loss",
            summary="`count` cells of the battery string fail and are bypassed: the string's voltage, "
            "resistance and capacity fall by count/31, the state of charge is unchanged "
            "(PowerModel.fail_cells). Clearing puts them back.",
            observable="battery_cells and battery_capacity_wh drop in tlm.power.hk; battery and bus "
            "voltage fall about 3.9 V per cell, so the 114/110 V thresholds come at a higher charge; "
            "board event cells_bypassed.",
            build=physics(
                lambda model, spec: _model(model, PowerModel).fail_cells(_count(spec)),
                lambda model, _spec: _model(model, PowerModel).restore_cells(),
            ),
            boards=("power",),
            params=(Param("count", "cells lost from the string", "cells", 1, 30, 1, integer=True),),
        ),
        FaultKind(
            "dust",
            summary="Dust blocks `fraction` of the light still reaching the solar cells; repeated "
            "injections compound (PowerModel.deposit_dust). Clearing is a cleaning: all dust goes.",
            observable="solar_power_w in tlm.power.hk drops by the fraction and stays down until "
            "cleared; the battery charges less. No flag: a real board cannot see dust.",
            build=physics(
                lambda model, spec: _model(model, PowerModel).deposit_dust(spec.param("fraction")),
                lambda model, _spec: _model(model, PowerModel).clean_arrays(),
            ),
            boards=("power",),
            params=(Param("fraction", "share of the light blocked", "1", 0.0, 1.0, low_inclusive=False),),
        ),
        FaultKind(
            "radiator_damage",
            summary="`fraction` of the reactor radiator's area is lost (micrometeoroids, a torn panel) "
            "(ThermalModel.damage_radiator). Clearing repairs it.",
            observable="reactor_radiator_temp_c in tlm.thermal.hk rises (about 95 C at 0.2 lost at "
            "rated heat), thermal_limit events above 100 C; the converters' cold end warms, so "
            "electric_power_w in tlm.reactor.hk falls a little.",
            build=physics(
                lambda model, spec: _model(model, ThermalModel).damage_radiator(spec.param("fraction")),
                lambda model, _spec: _model(model, ThermalModel).damage_radiator(0.0),
            ),
            boards=("thermal",),
            params=(
                Param("fraction", "share of the radiator's area lost", "1", 0.0, 1.0, low_inclusive=False),
            ),
        ),
        FaultKind(
            "radiator_heat_pipe_failure",
            summary="`count` of the reactor radiator's 16 heat pipes fail: their fins stop radiating "
            "(ThermalModel.fail_heat_pipes). Clearing repairs them.",
            observable="as radiator_damage with count/16 of the area: 4 failed give about 100 C and the "
            "board flag reactor_radiator_temp_out_of_limits.",
            build=_counted(ThermalModel, ThermalModel.fail_heat_pipes),
            boards=("thermal",),
            params=(Param("count", "heat pipes failed", "pipes", 1, 16, 1, integer=True),),
        ),
        FaultKind(
            "converter_loss",
            summary="`count` of the reactor's 4 Stirling converters stop; the core follows the lower "
            "heat draw by its temperature feedback (ReactorModel.fail_converters). Clearing restarts them.",
            observable="converter_ok false, converters_running down and electric_power_w down in "
            "tlm.reactor.hk (1 lost: about 7.3 kWe); 2 lost at rated power: fuel near 835 C and a "
            "reactor_setback (without supervision the board trips at 840 C).",
            build=_counted(ReactorModel, ReactorModel.fail_converters),
            boards=("reactor",),
            params=(Param("count", "converters stopped", "converters", 1, 4, 1, integer=True),),
        ),
        FaultKind(
            "heat_pipe_failure",
            summary="`count` of the core's 8 sodium heat pipes fail: the heat they can carry to the "
            "converters falls in proportion (ReactorModel.fail_heat_pipes). Clearing restores them.",
            observable="heat_pipes_ok down and a reactor_alarm (quantity heat_pipes) in tlm.reactor.hk; "
            "4 lost at rated power: about 25 kW removed and 6.2 kWe, fuel peaking near 830 C and "
            "settling back near 800 C, no trip.",
            build=_counted(ReactorModel, ReactorModel.fail_heat_pipes),
            boards=("reactor",),
            params=(Param("count", "heat pipes failed", "pipes", 1, 8, 1, integer=True),),
        ),
        FaultKind(
            "rod_stuck",
            summary="The control rod drive jams where the rod is: targets are ignored and a trip "
            "cannot insert the rod (ReactorModel.stick_rod); only temperature feedback protects "
            "the core. Clearing frees the drive.",
            observable="a reactor_alarm (quantity rod_drive) 5 s after a commanded move or a trip "
            "that the rod does not follow; rod_position constant in tlm.reactor.hk; a trip latches "
            "with the rod still out.",
            build=physics(
                lambda model, _spec: _reactor(model).stick_rod(True),
                lambda model, _spec: _reactor(model).stick_rod(False),
            ),
            boards=("reactor",),
        ),
        FaultKind(
            "reactivity_insertion",
            summary="An external reactivity step of `value` dollars (a reflector shift, a core "
            "compaction) (ReactorModel.insert_reactivity). Clearing removes it.",
            observable="positive: power and period jump in tlm.reactor.hk; $0.08 at rated power trips "
            "the board on overpower within a second. Negative: power falls and the fuel cools.",
            build=physics(
                lambda model, spec: _reactor(model).insert_reactivity(spec.param("value")),
                lambda model, _spec: _reactor(model).insert_reactivity(0.0),
            ),
            boards=("reactor",),
            params=(Param("value", "reactivity step", "$", -10.0, 1.0),),
        ),
    )
}

#: Every parameter name any kind takes, in a stable order (the command's numeric arguments).
PARAM_NAMES: Final = tuple(dict.fromkeys(p.name for k in KINDS.values() for p in k.params))


# --- validation ---------------------------------------------------------------------


def default_board_descriptions() -> dict[str, BoardDescription]:
    """The descriptions of the simulated world's boards (what a scenario is checked against)."""
    world = World(seed=0, frame_period_s=1.0)
    return {kind: model.description for kind, model in world.boards.items()}


def _kind(name: str) -> FaultKind:
    try:
        return KINDS[name]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise FaultError("kind", f"unknown fault kind {name!r} (kinds: {known})") from None


def _check_target(kind: FaultKind, description: BoardDescription, channel: str, actuator: str) -> None:
    board = description.kind
    if not kind.targets:
        for key, given in (("channel", channel), ("actuator", actuator)):
            if given:
                raise FaultError(key, f"{kind.name} applies to the whole board, not to a {key}")
        return
    if channel and actuator:
        raise FaultError("actuator", f"{kind.name} takes a channel or an actuator, not both")
    if not channel and not actuator:
        wanted = " or ".join(t.value for t in kind.targets)
        raise FaultError(kind.targets[0].value, f"{kind.name} needs a {wanted}")
    if channel:
        if Target.CHANNEL not in kind.targets:
            raise FaultError("channel", f"{kind.name} applies to an actuator, not a channel")
        found = next((c for c in description.channels if c.name == channel), None)
        if found is None:
            names = ", ".join(c.name for c in description.channels)
            raise FaultError("channel", f"board {board!r} has no channel {channel!r} (channels: {names})")
        if found.type not in kind.channel_types:
            allowed = ", ".join(sorted(t.value for t in kind.channel_types))
            raise FaultError(
                "channel", f"{kind.name} needs a {allowed} channel; {channel!r} is {found.type.value}"
            )
        return
    if Target.ACTUATOR not in kind.targets:
        raise FaultError("actuator", f"{kind.name} applies to a channel, not an actuator")
    if actuator not in {a.name for a in description.actuators}:
        names = ", ".join(a.name for a in description.actuators)
        raise FaultError("actuator", f"board {board!r} has no actuator {actuator!r} (actuators: {names})")


def make_fault(
    boards: Mapping[str, BoardDescription],
    board: str,
    kind: str,
    *,
    channel: str = "",
    actuator: str = "",
    params: Mapping[str, object] | None = None,
) -> FaultSpec:
    """Check a fault against the table and the boards; return it with defaults filled in.

    ``params`` holds only the parameters given. Raises :class:`FaultError` whose ``key``
    names the argument at fault: an unknown board or kind, a kind not for that board, a
    missing, unknown or wrong channel or actuator, a missing, unknown or out-of-range
    parameter.
    """
    description = boards.get(board)
    if description is None:
        raise FaultError("board", f"unknown board {board!r} (boards: {', '.join(sorted(boards))})")
    fault_kind = _kind(kind)
    if fault_kind.boards is not None and board not in fault_kind.boards:
        raise FaultError(
            "board", f"{kind} applies to the {' or '.join(fault_kind.boards)} board, not {board!r}"
        )
    _check_target(fault_kind, description, channel, actuator)
    given = dict(params or {})
    for name in given:
        if fault_kind.param(name) is None:
            takes = ", ".join(p.name for p in fault_kind.params) or "no parameters"
            raise FaultError(name, f"{kind} takes no parameter {name!r} (it takes {takes})")
    checked: dict[str, float | int] = {}
    for param in fault_kind.params:
        if param.name in given:
            checked[param.name] = param.check(given[param.name])
        elif param.default is not None:
            checked[param.name] = param.check(param.default)
        else:
            raise FaultError(param.name, f"{kind} needs {param.name} ({param.description})")
    return FaultSpec(board, kind, channel, actuator, checked)


def fault_from_command(
    boards: Mapping[str, BoardDescription],
    board: str,
    kind: str,
    channel: str,
    actuator: str,
    numbers: Mapping[str, float | int],
) -> FaultSpec:
    """:func:`make_fault` for the bus command, whose every argument is always present.

    A parameter the kind does not take must be 0 (its placeholder); one it takes is used
    as given. Raises :class:`FaultError` naming the argument.
    """
    fault_kind = _kind(kind)
    used = {p.name for p in fault_kind.params}
    params = {name: value for name, value in numbers.items() if name in used or value != 0}
    return make_fault(boards, board, kind, channel=channel, actuator=actuator, params=params)


def inject_command_args(spec: FaultSpec) -> dict[str, Any]:
    """The complete arguments of the simulator's ``inject_fault`` command for ``spec``.

    The bus command declares every argument and the router wants them all: a parameter
    the kind does not take is sent as 0, a missing channel or actuator as ``""``.
    """
    args: dict[str, Any] = {
        "board": spec.board,
        "kind": spec.kind,
        "channel": spec.channel,
        "actuator": spec.actuator,
    }
    for param in command_params():
        args[param.name] = spec.params.get(param.name, 0 if param.integer else 0.0)
    return args


def clear_command_args(board: str, kind: str, channel: str = "", actuator: str = "") -> dict[str, Any]:
    """The complete arguments of the simulator's ``clear_fault`` command."""
    return {"board": board, "kind": kind, "channel": channel, "actuator": actuator}


def inject_args(board: str, kind: str, **given: Any) -> dict[str, Any]:
    """Check a fault against the simulated boards and return its ``inject_fault`` arguments.

    ``given`` holds ``channel``, ``actuator`` and the kind's parameters. Raises
    :class:`FaultError` naming the argument at fault (see :func:`make_fault`).
    """
    channel = str(given.pop("channel", ""))
    actuator = str(given.pop("actuator", ""))
    spec = make_fault(
        default_board_descriptions(), board, kind, channel=channel, actuator=actuator, params=given
    )
    return inject_command_args(spec)


def command_params() -> tuple[Param, ...]:
    """One :class:`Param` per parameter name of the table, spanning every kind's range and 0.

    What the ``inject_fault`` command declares for its numeric arguments: 0 stands for
    "not used by this kind", so every range includes it.
    """
    merged = []
    for name in PARAM_NAMES:
        same = [(k.name, p) for k in KINDS.values() for p in k.params if p.name == name]
        lows = [p.low for _, p in same]
        highs = [p.high for _, p in same]
        low = None if any(x is None for x in lows) else min(0.0, *(x for x in lows if x is not None))
        high = None if any(x is None for x in highs) else max(0.0, *(x for x in highs if x is not None))
        text = "; ".join(f"{kind}: {p.description}" for kind, p in same)
        merged.append(
            Param(
                name,
                f"{text}; 0 for other kinds",
                same[0][1].unit,
                low,
                high,
                integer=all(p.integer for _, p in same),
            )
        )
    return tuple(merged)


# --- scenarios ----------------------------------------------------------------------

_SCENARIO_KEYS: Final = frozenset({"at", "until", "board", "kind", "channel", "actuator", *PARAM_NAMES})


@dataclass(frozen=True)
class ScheduledFault:
    """A scenario entry: ``spec`` from mission time ``at_s`` until ``until_s`` (None: the end)."""

    number: int
    at_s: float
    until_s: float | None
    spec: FaultSpec

    @property
    def origin(self) -> str:
        """How events name this entry: ``scenario #3``."""
        return f"scenario #{self.number}"


@dataclass(frozen=True)
class Scenario:
    """The faults of one scenario file, in file order."""

    source: str
    faults: tuple[ScheduledFault, ...] = ()


def _mission_time(source: str, number: int, key: str, raw: object) -> float:
    where = f"{source}: [[fault]] #{number}, key {key!r}"
    if isinstance(raw, str):
        try:
            return parse_duration(raw)
        except ConfigError as exc:
            msg = f"{where}: {exc}"
            raise ConfigError(msg) from exc
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw >= 0:
        return float(raw)
    msg = f'{where}: {raw!r} is not a mission time (a duration like "2min" or seconds >= 0)'
    raise ConfigError(msg)


def _entry(source: str, number: int, raw: object, boards: Mapping[str, BoardDescription]) -> ScheduledFault:
    where = f"{source}: [[fault]] #{number}"
    if not isinstance(raw, dict):
        msg = f"{where}: an entry must be a table"
        raise ConfigError(msg)
    for key in raw:
        if key not in _SCENARIO_KEYS:
            msg = f"{where}, key {key!r}: unknown key (keys: {', '.join(sorted(_SCENARIO_KEYS))})"
            raise ConfigError(msg)
    for key in ("at", "board", "kind"):
        if key not in raw:
            msg = f"{where}, key {key!r}: missing"
            raise ConfigError(msg)
    for key in ("board", "kind", "channel", "actuator"):
        if key in raw and not isinstance(raw[key], str):
            msg = f"{where}, key {key!r}: must be a string, got {raw[key]!r}"
            raise ConfigError(msg)
    at_s = _mission_time(source, number, "at", raw["at"])
    until_s = None if "until" not in raw else _mission_time(source, number, "until", raw["until"])
    if until_s is not None and until_s <= at_s:
        msg = f"{where}, key 'until': {raw['until']!r} is not after at = {raw['at']!r}"
        raise ConfigError(msg)
    try:
        spec = make_fault(
            boards,
            raw["board"],
            raw["kind"],
            channel=raw.get("channel", ""),
            actuator=raw.get("actuator", ""),
            params={k: v for k, v in raw.items() if k in PARAM_NAMES},
        )
    except FaultError as exc:
        msg = f"{where}, key {exc.key!r}: {exc.message}"
        raise ConfigError(msg) from exc
    return ScheduledFault(number, at_s, until_s, spec)


def _check_overlaps(source: str, faults: Sequence[ScheduledFault]) -> None:
    by_key: dict[tuple[str, str, str], list[ScheduledFault]] = {}
    for fault in faults:
        by_key.setdefault(fault.spec.key, []).append(fault)
    for same in by_key.values():
        ordered = sorted(same, key=lambda f: f.at_s)
        for before, after in itertools.pairwise(ordered):
            if before.until_s is None or before.until_s > after.at_s:
                msg = (
                    f"{source}: [[fault]] #{after.number}, key 'at': {after.spec.describe()} is "
                    f"still active then (from [[fault]] #{before.number}); one fault per board, "
                    "kind and target at a time"
                )
                raise ConfigError(msg)


def parse_scenario(
    text: str, source: str = "<scenario>", boards: Mapping[str, BoardDescription] | None = None
) -> Scenario:
    """Parse scenario TOML: ``[[fault]]`` tables with ``at``, ``board``, ``kind`` and the rest.

    ``boards`` defaults to the simulated world's boards. Raises :class:`ConfigError`
    naming ``source``, the entry (``[[fault]] #N``, counting from 1) and the key.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    for key in raw:
        if key not in ("fault", "description"):
            msg = f"{source}: unknown top-level key {key!r} (a scenario has [[fault]] tables)"
            raise ConfigError(msg)
    entries = raw.get("fault", [])
    if not isinstance(entries, list):
        msg = f"{source}: 'fault' must be an array of tables ([[fault]])"
        raise ConfigError(msg)
    if len(entries) > MAX_SCENARIO_ENTRIES:
        msg = f"{source}: {len(entries)} faults; at most {MAX_SCENARIO_ENTRIES}"
        raise ConfigError(msg)
    descriptions = boards if boards is not None else default_board_descriptions()
    faults = tuple(_entry(source, i, entry, descriptions) for i, entry in enumerate(entries, start=1))
    _check_overlaps(source, faults)
    return Scenario(source, faults)


def load_scenario(path: str | Path, boards: Mapping[str, BoardDescription] | None = None) -> Scenario:
    """Read and parse the scenario file ``path`` (see :func:`parse_scenario`).

    Raises :class:`ConfigError` naming the file when it cannot be read or is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read scenario file {path}: {exc}"
        raise ConfigError(msg) from exc
    return parse_scenario(text, str(path), boards)


# --- the wrapped board --------------------------------------------------------------


class FaultyBoard(BoardModel):
    """A :class:`BoardModel` seen through its active faults.

    Serves the same :class:`~hil.board_server.ServedModel` protocol as ``inner`` and
    steps it when the world steps it. Without active faults it is transparent. Faults are
    activated and deactivated by a :class:`FaultInjector` at the start of a world step.
    """

    def __init__(self, inner: BoardModel) -> None:
        super().__init__(inner.description)
        self.inner = inner
        self._active: dict[tuple[str, str, str], Effect] = {}

    @property
    def board_time_s(self) -> float:
        """The inner board's clock (s)."""
        return self.inner.board_time_s

    @property
    def silent(self) -> bool:
        """True while a fault makes the board answer nothing."""
        return any(effect.silences for effect in self._active.values())

    @property
    def active_keys(self) -> tuple[tuple[str, str, str], ...]:
        """Keys of the active faults, in the order they were applied."""
        return tuple(self._active)

    def read(self) -> dict[str, Value]:
        """Every channel, through the active faults in the order they were applied."""
        values = dict(self.inner.read())
        for effect in self._active.values():
            effect.transform(values)
        return values

    def read_before(self, effect: Effect) -> dict[str, Value]:
        """The reading through the faults applied before ``effect`` only."""
        values = dict(self.inner.read())
        for other in self._active.values():
            if other is effect:
                break
            other.transform(values)
        return values

    def command(self, actuator: str, value: Value) -> None:
        """Pass the command on, unless a fault swallows it (it is acknowledged all the same).

        Raises :class:`BoardError` naming the actuator for what the board refuses.
        """
        checked = check_command(self.description, actuator, value)
        if isinstance(checked, Refusal):
            raise BoardError(checked.reason)
        for effect in self._active.values():
            if effect.swallows(actuator):
                if isinstance(effect, StuckActuator):
                    effect.swallow(checked)
                return
        self.inner.command(actuator, checked)

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Step the inner board in the environment the active faults leave it."""
        for effect in self._active.values():
            env = effect.environment(env)
        self.inner.step(dt_s, env, coupling)

    def faults(self) -> frozenset[str]:
        """The inner board's own fault flags (a board does not know its sensors lie)."""
        return self.inner.faults()

    def drain_events(self) -> list[BoardEvent]:
        """The inner board's events."""
        return self.inner.drain_events()

    def heartbeat(self) -> None:
        """Note the flight-software heartbeat on the inner board."""
        self.inner.heartbeat()

    def activate(self, key: tuple[str, str, str], effect: Effect) -> dict[str, Any]:
        """Apply ``effect`` under ``key``; return its details. Raises :class:`FaultError` if full."""
        if len(self._active) >= MAX_ACTIVE_PER_BOARD:
            raise FaultError("board", f"board {self.kind!r} has {MAX_ACTIVE_PER_BOARD} faults active")
        self._active[key] = effect
        try:
            return effect.apply(self)
        except BaseException:
            del self._active[key]
            raise

    def deactivate(self, key: tuple[str, str, str]) -> None:
        """Clear the fault under ``key`` (no-op if none)."""
        effect = self._active.pop(key, None)
        if effect is not None:
            effect.clear(self)

    def end_of_step(self) -> None:
        """The world completed a step: let the active faults draw their next frame."""
        for effect in self._active.values():
            effect.on_frame()


class FaultyBoardServer(BoardServer):
    """A :class:`BoardServer` that answers nothing while its board is ``silent``.

    A SYNC still runs ``on_sync`` first (the simulator's world is stepped by any board's
    SYNC, and a fault that starts or ends at that step must decide this very request),
    so ``on_sync`` must be idempotent per frame, as stepping a world to a frame is.
    Requests dropped while silent are counted in :attr:`ignored`.
    """

    def __init__(
        self,
        model: FaultyBoard,
        fd: int,
        on_sync: SyncCallback | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        super().__init__(model, fd, on_sync=on_sync, max_output_bytes=max_output_bytes)
        self.faulty = model
        self.step_world = on_sync
        self.ignored = 0

    def _serve(self, frame: Frame) -> None:
        message = frame.message
        if isinstance(message, Sync) and frame.version == PROTOCOL_VERSION and self.step_world is not None:
            # Step first: a fault that starts or ends at this step decides this very SYNC.
            try:
                self.step_world(message.frame, message.t_s)
            except Exception:  # the base server calls on_sync again below and NAKs the failure
                if self.faulty.silent:
                    self.counters.handler_errors += 1
        if self.faulty.silent:
            self.ignored += 1
            return
        super()._serve(frame)

    def _answer_rejection(self, rejection: Rejection) -> None:
        if self.faulty.silent:
            self.ignored += 1
            return
        super()._answer_rejection(rejection)


# --- the injector -------------------------------------------------------------------


@dataclass(frozen=True)
class FaultChange:
    """What happened to a fault at a step: ``injected``, ``cleared`` or ``rejected``.

    ``frame`` is the first frame whose reads see the change.
    """

    action: str
    frame: int
    spec: FaultSpec
    origin: str
    details: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass
class ActiveFault:
    """A fault in force: since which frame, from where, until when (scenario only)."""

    spec: FaultSpec
    origin: str
    since_frame: int
    details: Mapping[str, Any]
    until_frame: int | None = None


@dataclass(frozen=True)
class _Request:
    action: str  # "inject" or "clear"
    spec: FaultSpec
    origin: str
    until_frame: int | None = None


def frame_at(t_s: float, frame_period_s: float) -> int:
    """The first frame at or after mission time ``t_s`` (s)."""
    return max(0, math.ceil(t_s / frame_period_s - 1e-9))


class FaultInjector:
    """Wraps every board of ``world`` in a :class:`FaultyBoard` and applies faults at steps.

    From now on step the world only through :meth:`advance_to`. Scenario entries and
    requests (:meth:`request_inject`, :meth:`request_clear`) are applied at the start of
    the step into the frame they are due (requests: the next step), in this order:
    clearings, then injections, each in scenario or request order. Not thread-safe; never
    blocks.
    """

    def __init__(self, world: World, scenario: Scenario | None = None, run_seed: int = 0) -> None:
        self.world = world
        self.run_seed = run_seed
        self.scenario = scenario
        self.boards: dict[str, FaultyBoard] = {}
        for kind, model in list(world.boards.items()):
            faulty = model if isinstance(model, FaultyBoard) else FaultyBoard(model)
            world.boards[kind] = faulty
            self.boards[kind] = faulty
        self.descriptions = {kind: board.description for kind, board in self.boards.items()}
        self.active: dict[tuple[str, str, str], ActiveFault] = {}
        self._requests: deque[_Request] = deque()
        period = world.frame_period_s
        schedule: list[tuple[int, int, int, _Request]] = []
        ends: dict[tuple[str, str, str], int] = {}  # a window shorter than a frame must not overlap the next
        entries = scenario.faults if scenario is not None else ()
        for entry in sorted(entries, key=lambda e: e.at_s):
            start = max(frame_at(entry.at_s, period), ends.get(entry.spec.key, 0))
            end = None if entry.until_s is None else max(start + 1, frame_at(entry.until_s, period))
            ends[entry.spec.key] = start + 1 if end is None else end
            schedule.append((start, 1, entry.number, _Request("inject", entry.spec, entry.origin, end)))
            if end is not None:
                schedule.append((end, 0, entry.number, _Request("clear", entry.spec, entry.origin)))
        schedule.sort(key=lambda item: item[:3])
        self._schedule = deque((frame, request) for frame, _, _, request in schedule)
        self._started = False

    # --- stepping ---------------------------------------------------------------------

    def start(self) -> list[FaultChange]:
        """Apply what is due at the world's current frame (a scenario's ``at = 0``). Once."""
        if self._started:
            return []
        self._started = True
        return self._apply_due(self.world.frame)

    def advance_to(self, frame: int) -> list[FaultChange]:
        """Step the world frame by frame up to ``frame``, applying faults at each step.

        A frame at or before the world's is a no-op. Returns what changed, in order.
        """
        changes = self.start()
        while self.world.frame < frame:
            next_frame = self.world.frame + 1
            changes.extend(self._apply_due(next_frame))
            self.world.advance_to(next_frame)
            for board in self.boards.values():
                board.end_of_step()
        return changes

    def _apply_due(self, frame: int) -> list[FaultChange]:
        due: list[_Request] = []
        while self._schedule and self._schedule[0][0] <= frame:
            due.append(self._schedule.popleft()[1])
        due.extend(self._requests)
        self._requests.clear()
        changes = []
        for request in sorted(due, key=lambda r: r.action != "clear"):
            change = self._apply(request, frame)
            if change is not None:
                changes.append(change)
        return changes

    def _apply(self, request: _Request, frame: int) -> FaultChange | None:
        spec = request.spec
        key = spec.key
        board = self.boards[spec.board]
        if request.action == "clear":
            active = self.active.get(key)
            if active is None or request.origin not in ("command", active.origin):
                return None  # already cleared (by command, say): nothing left to do
            board.deactivate(key)
            del self.active[key]
            return FaultChange("cleared", frame, active.spec, request.origin, active.details)
        if key in self.active:
            reason = f"{spec.describe()} is already active (from {self.active[key].origin})"
            return FaultChange("rejected", frame, spec, request.origin, reason=reason)
        try:
            effect = KINDS[spec.kind].build(spec, self.run_seed)
            details = board.activate(key, effect)
        except (FaultError, BoardError) as exc:
            return FaultChange("rejected", frame, spec, request.origin, reason=str(exc))
        self.active[key] = ActiveFault(spec, request.origin, frame, details, request.until_frame)
        return FaultChange("injected", frame, spec, request.origin, details)

    # --- requests ---------------------------------------------------------------------

    def _check_room(self) -> None:
        if len(self._requests) >= MAX_PENDING_REQUESTS:
            raise FaultError("kind", f"{MAX_PENDING_REQUESTS} fault requests already wait for the next step")

    def request_inject(self, spec: FaultSpec, origin: str = "command") -> int:
        """Queue ``spec`` for the next step; return the first frame that will see it.

        Raises :class:`FaultError` if the same fault (board, kind, target) is active and
        not being cleared, already queued, or the queue is full.
        """
        self._check_room()
        key = spec.key
        clearing = any(r.action == "clear" and r.spec.key == key for r in self._requests)
        if key in self.active and not clearing:
            active = self.active[key]
            msg = f"{spec.describe()} is already active since frame {active.since_frame} (clear it first)"
            raise FaultError("kind", msg)
        if any(r.action == "inject" and r.spec.key == key for r in self._requests):
            raise FaultError("kind", f"{spec.describe()} is already queued for the next step")
        self._requests.append(_Request("inject", spec, origin))
        return self.world.frame + 1

    def request_clear(
        self, board: str, kind: str, channel: str = "", actuator: str = ""
    ) -> dict[str, list[dict[str, Any]]]:
        """Clear the matching faults at the next step; cancel matching queued injections now.

        Empty ``channel`` and ``actuator`` match every fault of ``kind`` on ``board``.
        Returns ``{"clearing": [...], "cancelled": [...]}``. Raises :class:`FaultError`
        naming the argument when the board or kind is unknown or nothing matches.
        """
        if board not in self.boards:
            raise FaultError("board", f"unknown board {board!r} (boards: {', '.join(sorted(self.boards))})")
        _kind(kind)
        target = channel or actuator

        def matches(spec: FaultSpec) -> bool:
            return spec.board == board and spec.kind == kind and (not target or spec.target == target)

        cancelled = [r for r in self._requests if r.action == "inject" and matches(r.spec)]
        for request in cancelled:
            self._requests.remove(request)
        queued = {r.spec.key for r in self._requests if r.action == "clear"}
        clearing = [a for k, a in self.active.items() if matches(a.spec) and k not in queued]
        if not clearing and not cancelled:
            what = " ".join(w for w in (board, kind, target) if w)
            active = ", ".join(a.spec.describe() for a in self.active.values()) or "none"
            key = "channel" if channel else ("actuator" if actuator else "kind")
            raise FaultError(key, f"no active fault {what} (active: {active})")
        for active_fault in clearing:
            self._check_room()
            self._requests.append(_Request("clear", active_fault.spec, "command"))
        return {
            "clearing": [a.spec.to_json() for a in clearing],
            "cancelled": [r.spec.to_json() for r in cancelled],
        }

    # --- views ------------------------------------------------------------------------

    @property
    def scheduled(self) -> int:
        """Scenario steps (injections and clearings) not yet applied."""
        return len(self._schedule)

    @property
    def pending(self) -> int:
        """Requests waiting for the next step."""
        return len(self._requests)

    def snapshot(self, max_scheduled: int = MAX_LISTED_SCHEDULED) -> dict[str, Any]:
        """Active faults, queued requests and the next ``max_scheduled`` scenario steps, as plain data.

        ``scheduled_total`` counts every scenario step to come (the list is bounded so the
        answer fits in one bus message).
        """
        period = self.world.frame_period_s

        def active_json(a: ActiveFault) -> dict[str, Any]:
            return {
                **a.spec.to_json(),
                "origin": a.origin,
                "since_frame": a.since_frame,
                "since_s": round(a.since_frame * period, 6),
                "until_s": None if a.until_frame is None else round(a.until_frame * period, 6),
                "details": dict(a.details),
            }

        return {
            "frame": self.world.frame,
            "active": [active_json(a) for a in self.active.values()],
            "pending": [{**r.spec.to_json(), "action": r.action} for r in self._requests],
            "scheduled": [
                {**r.spec.to_json(), "action": r.action, "at_s": round(f * period, 6), "origin": r.origin}
                for f, r in itertools.islice(self._schedule, max_scheduled)
            ],
            "scheduled_total": len(self._schedule),
        }


def kinds_for(board: str) -> Iterable[FaultKind]:
    """The fault kinds that apply to ``board``."""
    return (k for k in KINDS.values() if k.boards is None or board in k.boards)
