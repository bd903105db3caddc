"""Procedures: a scripting API in the manner of COSMOS (``cmd``, ``tlm``, ``wait_check``, ``wait``).

A procedure is a Python file run by ``fsw ground run procedure.py``, which connects to
the station and makes these functions available without an import; or any program
that imports them::

    from ground.procedure import cmd, tlm, wait, wait_check

    cmd("power switch_load tier=4 on=false")        # waits for its verification
    wait_check("power.battery_soc > 0.2", timeout_s=30)
    print(tlm("power.battery_soc"))
    cmd("reactor", "startup", arm=True)              # a critical command: arm, then execute

Functions (all block, each with a deadline):

``cmd(line)`` or ``cmd(target, command, **args)``
    Send a command and wait for its verification (``timeout_s``, 30 s by default: the
    light time counts twice). Raises :class:`CommandFailed` unless it completed
    (``check=False`` returns the :class:`~ground.client.Verification` whatever it is).
    ``arm=True`` sends ``arm command=...`` first. ``args``, ``timeout_s``, ``check`` and
    ``arm`` are this function's own keywords: a command argument with one of those
    names goes in the line or in ``args={...}``.
``tlm("source.point")``
    The newest value (waits up to ``timeout_s`` for a first sample).
``wait_check(expression, timeout_s)``
    Wait until the expression holds (re-evaluated on every housekeeping packet); raises
    :class:`CheckFailed`, naming the values it saw, if it does not within ``timeout_s``.
    Returns the seconds it waited.
``check(expression)``
    The expression must hold now; raises :class:`CheckFailed` otherwise.
``wait(seconds)`` or ``wait(expression, timeout_s)``
    Sleep; or wait for the expression without failing (returns whether it held).
``ping()``
    A TC[17,1] to the base; returns the round trip in seconds (:class:`CommandFailed` if none).

Expressions are those of fault-protection monitors (:func:`fsw.monitors.parse_expression`):
``<source>.<point>`` names, numbers, quoted strings, ``true``/``false``, arithmetic,
comparisons, ``and``/``or``/``not``; nothing is evaluated as Python.

The functions use one connection per process: :func:`connect` makes it (``fsw ground
run`` does; otherwise the first call connects to ``$FSW_GROUND_API`` or the default
endpoint, tcp://127.0.0.1:7100).
"""

from __future__ import annotations

import os
import shlex
import sys
import time as time_module
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

from fsw.dictionary import parse_assignments
from fsw.errors import ConfigError, FswError
from fsw.monitors import Expression, parse_expression
from fsw.resource import Resource
from fsw.timesource import Deadline, MonotonicTime
from ground.client import DEFAULT_COMMAND_TIMEOUT_S, Station, Verification
from ground.mission import MissionDatabase
from ground.station import DEFAULT_API, MAX_WAIT_S

#: Environment variable naming the station's request endpoint for procedures.
API_ENVIRONMENT: Final = "FSW_GROUND_API"
#: Seconds ``tlm`` waits for a first sample unless told otherwise.
TLM_TIMEOUT_S: Final = 10.0
#: Seconds ``wait_check`` waits unless told otherwise.
CHECK_TIMEOUT_S: Final = 30.0

__all__ = [
    "CheckFailed",
    "CommandFailed",
    "Procedure",
    "check",
    "cmd",
    "connect",
    "disconnect",
    "ping",
    "tlm",
    "wait",
    "wait_check",
]


class CheckFailed(FswError):
    """A check of a procedure did not hold (``wait_check``, ``check``, ``tlm`` with no sample)."""


class CommandFailed(CheckFailed):
    """A command of a procedure was not verified as completed; ``verification`` says how far it got."""

    def __init__(self, message: str, verification: Verification | None = None) -> None:
        super().__init__(message)
        self.verification = verification


def _format_args(args: Mapping[str, Any]) -> str:
    parts = []
    for name, value in args.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f"{name}={text}")
    return " ".join(parts)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value) if isinstance(value, str) else str(value)


class Procedure(Resource):
    """The scripting API over one station connection (the module functions use a shared one).

    ``echo`` receives one line per step (``fsw ground run`` prints them); ``None`` is quiet.
    """

    def __init__(
        self,
        api: str = DEFAULT_API,
        *,
        timeout_s: float = 5.0,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.station = Station(api, timeout_s=timeout_s)
        self.echo = echo
        self._mission: MissionDatabase | None = None
        self._time = MonotonicTime()

    def close(self) -> None:
        """Close the station connection (idempotent)."""
        self.station.close()

    @property
    def mission(self) -> MissionDatabase:
        """The station's dictionaries (fetched once)."""
        if self._mission is None:
            self._mission = self.station.mission()
        return self._mission

    def _say(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)

    # ----------------------------------------------------------------- commands

    def cmd(
        self,
        target: str,
        command: str | None = None,
        /,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        check: bool = True,
        arm: bool = False,
        **arguments: Any,
    ) -> Verification:
        """Send a command, wait for its verification (see the module docstring)."""
        if command is None:
            words = shlex.split(target)
            if len(words) < 2:
                msg = f"cmd {target!r}: expected 'TARGET COMMAND key=value ...'"
                raise ConfigError(msg)
            target, command = words[0], words[1]
            given = parse_assignments(words[2:])
        else:
            given = {}
        given.update(args or {})
        given.update(arguments)
        text = f"{target} {command}" + (f" {_format_args(given)}" if given else "")
        verification = self.station.command(target, command, given, timeout_s=timeout_s, arm=arm)
        if verification.ok:
            self._say(f"cmd {text}: completed in {verification.round_trip_s or 0.0:.2f} s")
            return verification
        what = (
            f"{verification.outcome}"
            + (f" ({verification.failure})" if verification.failure else "")
            + (f": {verification.reason}" if verification.reason else "")
        )
        if not verification.final:
            so_far = ", ".join(verification.stages) or "none"
            what = f"no verification within {timeout_s:g} s (stages so far: {so_far})"
        self._say(f"cmd {text}: {what}")
        if check:
            raise CommandFailed(f"cmd {text}: {what}", verification)
        return verification

    def ping(self, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> float:
        """Round trip of a TC[17,1] (seconds); :class:`CommandFailed` without an answer."""
        verification = self.station.ping(timeout_s)
        if not verification.ok:
            reason = verification.reason or f"no answer within {timeout_s:g} s"
            raise CommandFailed(f"ping: {reason}", verification)
        round_trip_s = float(verification.round_trip_s or 0.0)
        self._say(f"ping: answered in {round_trip_s:.2f} s")
        return round_trip_s

    # ----------------------------------------------------------------- telemetry

    def samples(self) -> dict[str, Any]:
        """Every point's newest value, as ``{"source.point": value}``."""
        return {
            f"{source}.{name}": value
            for source, entry in self.station.latest().items()
            for name, value in (entry.get("values") or {}).items()
        }

    def _expression(self, text: str) -> Expression:
        expression = parse_expression(text)
        for point in sorted(expression.points):
            self.mission.point(point)  # a name that is not a telemetry point is a mistake: say so now
        return expression

    def _until(self, expression: Expression, timeout_s: float) -> tuple[bool | None, dict[str, Any], float]:
        deadline = Deadline(timeout_s, self._time)
        start_s = self._time.now_s()
        counter = self.station.counter()
        while True:
            samples = self.samples()
            held = expression.value(samples)
            if held or deadline.expired:
                return held, samples, self._time.now_s() - start_s
            counter = self.station.wait_housekeeping(counter, min(deadline.remaining_s(), MAX_WAIT_S))

    def tlm(self, name: str, *, timeout_s: float = TLM_TIMEOUT_S) -> Any:
        """The newest value of ``source.point``; :class:`CheckFailed` if none within ``timeout_s``."""
        self.mission.point(name)
        deadline = Deadline(timeout_s, self._time)
        counter = self.station.counter()
        while True:
            samples = self.samples()
            if name in samples:
                return samples[name]
            if deadline.expired:
                msg = f"tlm {name}: no sample within {timeout_s:g} s (is telemetry arriving?)"
                raise CheckFailed(msg)
            counter = self.station.wait_housekeeping(counter, min(deadline.remaining_s(), MAX_WAIT_S))

    @staticmethod
    def _seen(expression: Expression, samples: Mapping[str, Any]) -> str:
        return ", ".join(
            f"{p}={_format_value(samples[p])}" if p in samples else f"{p}=no sample"
            for p in sorted(expression.points)
        )

    def wait_check(self, expression: str, timeout_s: float = CHECK_TIMEOUT_S) -> float:
        """Wait until ``expression`` holds; the seconds waited. :class:`CheckFailed` after ``timeout_s``."""
        parsed = self._expression(expression)
        held, samples, waited_s = self._until(parsed, timeout_s)
        seen = self._seen(parsed, samples)
        if not held:
            self._say(f"wait_check {expression}: FAILED after {timeout_s:g} s ({seen})")
            msg = f"wait_check {expression}: false after {timeout_s:g} s ({seen})"
            raise CheckFailed(msg)
        self._say(f"wait_check {expression}: passed in {waited_s:.2f} s ({seen})")
        return waited_s

    def check(self, expression: str) -> None:
        """``expression`` must hold now; :class:`CheckFailed` naming the values otherwise."""
        parsed = self._expression(expression)
        samples = self.samples()
        seen = self._seen(parsed, samples)
        if not parsed.value(samples):
            self._say(f"check {expression}: FAILED ({seen})")
            msg = f"check {expression}: false ({seen})"
            raise CheckFailed(msg)
        self._say(f"check {expression}: passed ({seen})")

    def wait(self, what: float | str, timeout_s: float | None = None) -> bool:
        """Sleep ``what`` seconds (returns True); or wait up to ``timeout_s`` for expression ``what``."""
        if isinstance(what, str):
            parsed = self._expression(what)
            limit_s = CHECK_TIMEOUT_S if timeout_s is None else timeout_s
            held, samples, waited_s = self._until(parsed, limit_s)
            self._say(
                f"wait {what}: {'true' if held else 'still false'} after {waited_s:.2f} s "
                f"({self._seen(parsed, samples)})"
            )
            return bool(held)
        seconds = float(what)
        if not seconds >= 0:
            msg = f"wait {what!r}: seconds must be >= 0"
            raise ConfigError(msg)
        self._say(f"wait {seconds:g} s")
        time_module.sleep(seconds)  # the procedure asked for this pause
        return True


# ----------------------------------------------------------------- the shared connection

_current: Procedure | None = None


def connect(
    api: str | None = None, *, timeout_s: float = 5.0, echo: Callable[[str], None] | None = None
) -> Procedure:
    """Connect the module functions to the station at ``api`` (``$FSW_GROUND_API`` or the default)."""
    global _current  # noqa: PLW0603 - one shared connection for the module-level functions
    disconnect()
    _current = Procedure(
        api or os.environ.get(API_ENVIRONMENT) or DEFAULT_API, timeout_s=timeout_s, echo=echo
    )
    return _current


def disconnect() -> None:
    """Close the shared connection, if any."""
    global _current  # noqa: PLW0603
    if _current is not None:
        _current.close()
        _current = None


def _procedure() -> Procedure:
    return _current if _current is not None else connect()


def cmd(
    target: str,
    command: str | None = None,
    /,
    args: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    check: bool = True,
    arm: bool = False,
    **arguments: Any,
) -> Verification:
    """Send a command and wait for its verification (see :meth:`Procedure.cmd`)."""
    return _procedure().cmd(target, command, args, timeout_s=timeout_s, check=check, arm=arm, **arguments)


def tlm(name: str, *, timeout_s: float = TLM_TIMEOUT_S) -> Any:
    """The newest value of ``source.point`` (see :meth:`Procedure.tlm`)."""
    return _procedure().tlm(name, timeout_s=timeout_s)


def wait_check(expression: str, timeout_s: float = CHECK_TIMEOUT_S) -> float:
    """Wait until ``expression`` holds (see :meth:`Procedure.wait_check`)."""
    return _procedure().wait_check(expression, timeout_s)


def check(expression: str) -> None:
    """``expression`` must hold now (see :meth:`Procedure.check`)."""
    _procedure().check(expression)


def wait(what: float | str, timeout_s: float | None = None) -> bool:
    """Sleep, or wait for an expression without failing (see :meth:`Procedure.wait`)."""
    return _procedure().wait(what, timeout_s)


def ping(timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> float:
    """Round trip of a TC[17,1] in seconds (see :meth:`Procedure.ping`)."""
    return _procedure().ping(timeout_s)


def namespace() -> dict[str, Any]:
    """What ``fsw ground run`` puts in a procedure's globals."""
    return {
        "cmd": cmd,
        "tlm": tlm,
        "wait_check": wait_check,
        "check": check,
        "wait": wait,
        "ping": ping,
        "CheckFailed": CheckFailed,
        "CommandFailed": CommandFailed,
    }


def echo_to(stream: TextIO = sys.stdout) -> Callable[[str], None]:
    """An ``echo`` that prints each step to ``stream`` (flushed: procedures are watched live)."""

    def echo(line: str) -> None:
        print(line, file=stream, flush=True)

    return echo
