"""The HIL test harness: run a real base and assert on what it does.

Modelled on F Prime's integration-test API (``send_and_assert_command``,
``await_telemetry``, ``assert_event_count``...), for a base of real processes:
:class:`HilBase` starts ``fsw up`` with the deployment and board backends you
choose (simulated boards, boards replaying a recording, or real hardware),
connects to its bus, and keeps the history of everything it heard, ordered
by mission time.

Nothing here sleeps to wait: every ``await_*`` reads messages until its
predicate holds or its ``timeout_s`` (wall seconds) runs out, then raises
:class:`HilAssertionError` (an ``AssertionError``) with what it saw.

The pytest plugin (``hil.pytest_plugin``) gives tests the ``hil_base`` fixture,
which starts a :class:`HilBase` and stops it after the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

if sys.version_info >= (3, 11):
    import tomllib as toml_reader
else:  # pragma: no cover - Python 3.10 only
    import tomli as toml_reader
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from fsw.bus import Bus, CommandClient, CommandOutcome
from fsw.deployment import Deployment, parse
from fsw.messages import Kind, Message
from fsw.supervisor import query_status

#: Default wall-time limit of one wait.
DEFAULT_TIMEOUT_S: Final = 30.0

#: Messages kept in the history (the oldest go first).
MAX_HISTORY: Final = 200_000

Predicate = Callable[[Any], bool]


class HilAssertionError(AssertionError):
    """A HIL expectation did not hold; the message says what was seen instead."""


# ----------------------------------------------------------------------- predicates


@dataclass(frozen=True)
class _Named:
    text: str
    test: Predicate

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def __repr__(self) -> str:
        return self.text


def within_range(low: float, high: float) -> Predicate:
    """``low <= value <= high``."""
    return _Named(f"within [{low}, {high}]", lambda v: low <= v <= high)


def equal_to(expected: Any) -> Predicate:
    """``value == expected``."""
    return _Named(f"== {expected!r}", lambda v: v == expected)


def greater_than(limit: float) -> Predicate:
    """``value > limit``."""
    return _Named(f"> {limit}", lambda v: v > limit)


def less_than(limit: float) -> Predicate:
    """``value < limit``."""
    return _Named(f"< {limit}", lambda v: v < limit)


def member_of(values: Iterable[Any]) -> Predicate:
    """``value in values``."""
    allowed = tuple(values)
    return _Named(f"in {list(allowed)!r}", lambda v: v in allowed)


def all_of(*predicates: Predicate) -> Predicate:
    """Every predicate holds."""
    return _Named(" and ".join(map(repr, predicates)), lambda v: all(p(v) for p in predicates))


def any_of(*predicates: Predicate) -> Predicate:
    """At least one predicate holds."""
    return _Named(" or ".join(map(repr, predicates)), lambda v: any(p(v) for p in predicates))


def is_not(predicate: Predicate) -> Predicate:
    """The predicate does not hold."""
    return _Named(f"not ({predicate!r})", lambda v: not predicate(v))


def _anything(value: Any) -> bool:
    del value
    return True


def _as_predicate(expected: Any) -> Predicate:
    return expected if callable(expected) else equal_to(expected)


# ----------------------------------------------------------------------- deployment text


def final_heartbeat(source: str) -> Callable[[Message], bool]:
    """Matches the final heartbeat of ``source`` (state ``stopping``, with its run statistics)."""

    def matches(message: Message) -> bool:
        return (
            message.kind is Kind.HEARTBEAT
            and message.source == source
            and message.data.get("state") == "stopping"
            and isinstance(message.data.get("statistics"), dict)
        )

    return matches


def merge_toml(base: str, *layers: str) -> str:
    """Return ``base`` with each TOML ``layer`` merged in, key by key (later layers win)."""
    merged: dict[str, Any] = toml_reader.loads(base)
    for layer in layers:
        _merge(merged, toml_reader.loads(layer))
    return _to_toml(merged)


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "board":
            _merge(into[key], value)
        else:
            into[key] = value


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    msg = f"cannot write {value!r} as TOML"
    raise TypeError(msg)


def _to_toml(data: Mapping[str, Any]) -> str:
    """Write a deployment (tables of keys; ``processes`` a table of tables) back as TOML."""
    lines: list[str] = []
    for top, table in data.items():
        if top == "processes":
            for name, process in table.items():
                lines.append(f"[processes.{name}]")
                lines.extend(f"{k} = {_value(v)}" for k, v in process.items())
        else:
            lines.append(f"[{top}]")
            lines.extend(f"{k} = {_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def boards_layer(backends: Mapping[str, Mapping[str, Any]]) -> str:
    """A TOML layer setting the board of each named process: ``{"power": {"backend": "replay", ...}}``."""
    return "".join(f"[processes.{name}]\nboard = {_value(dict(board))}\n" for name, board in backends.items())


# ----------------------------------------------------------------------- the harness


class HilBase:
    """A real base under test: ``fsw up`` in its own process, and a bus connection to it.

    ``deployment_text`` is the whole deployment (see :func:`merge_toml` and
    :func:`boards_layer` to derive one from the default). ``args`` are extra
    ``fsw up`` arguments (``--speed max``, ``--seed 3``, ``--record DIR``).
    Start with :meth:`start` or a ``with`` block; :meth:`stop` (idempotent)
    stops the base with SIGTERM and closes every socket.
    """

    def __init__(self, deployment_text: str, run_dir: Path, args: Sequence[str] = ()) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "hil-base.toml"
        self.path.write_text(deployment_text, encoding="utf-8")
        self.deployment: Deployment = parse(deployment_text, source=str(self.path), run_dir=self.run_dir)
        self.args = tuple(args)
        self.history: list[Message] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.bus: Bus | None = None
        self.client: CommandClient | None = None
        self.pids: dict[str, int] = {}
        self._output = self.run_dir / "fsw-up.out"

    # ------------------------------------------------------------------- lifecycle

    @property
    def names(self) -> list[str]:
        """Every process the supervisor runs (a recorder added by ``--record`` included)."""
        names = ["bus", "clock", *(p.name for p in self.deployment.processes)]
        if "--record" in self.args:
            names.append("recorder")
        return names

    def start(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> HilBase:
        """Start ``fsw up`` and wait until every process heartbeats ``running``."""
        bus = self.deployment.bus
        self.bus = Bus("hil", bus.publish, bus.subscribe, subscribe=(b"hb.", b"evt.", b"tlm.", b"ack."))
        self.client = CommandClient(bus.command, source="hil")
        with self._output.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fsw.cli",
                    "up",
                    str(self.path),
                    "--run-dir",
                    str(self.run_dir),
                    *self.args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        pending = set(self.names)

        def all_running(message: Message) -> bool:
            if message.kind is Kind.HEARTBEAT and message.data.get("state") == "running":
                self.pids[message.source] = int(message.data["pid"])
                pending.discard(message.source)
            return not pending

        self._next(all_running, timeout_s, lambda: f"heartbeats from {sorted(pending)}")
        return self

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """Stop the base (SIGTERM, then SIGKILL) and close the sockets; return its exit status."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            self.process = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.bus is not None:
            self.bus.close()
            self.bus = None
        return code

    def __enter__(self) -> HilBase:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log(self) -> str:
        """What ``fsw up`` printed and the tail of every process's log, for failure messages."""
        text = self._output.read_text(errors="replace") if self._output.exists() else ""
        for path in sorted((self.run_dir / "logs").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-15:]
            text += f"\n--- {path.name}\n" + "\n".join(tail)
        return text

    def status(self) -> dict[str, Any]:
        """The supervisor's status (as ``fsw status --json``)."""
        return query_status(self.deployment.bus.status, timeout_s=5.0)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process ``name`` of the base."""
        os.kill(self.pids[name], sig)

    # ------------------------------------------------------------------- reading

    def _next(
        self,
        predicate: Callable[[Message], bool],
        timeout_s: float,
        what: Callable[[], str],
        *,
        include_history: bool = False,
    ) -> Message:
        """The next message matching ``predicate`` (or one heard already, with ``include_history``)."""
        if include_history:
            for heard in self.history:
                if predicate(heard):
                    return heard
        if self.bus is None:
            msg = "the base is not started"
            raise HilAssertionError(msg)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            exited = self.process is not None and self.process.poll() is not None
            # What the base sent before it exited still counts: read it first.
            if exited or self.bus.subscriber.poll(100):
                while (message := self.bus.receive()) is not None:
                    self.history.append(message)
                    if len(self.history) > MAX_HISTORY:
                        del self.history[: MAX_HISTORY // 10]
                    if predicate(message):
                        return message
            if exited and self.process is not None:
                msg = f"fsw up exited ({self.process.returncode}) while waiting for {what()}:\n{self.log()}"
                raise HilAssertionError(msg)
        msg = f"no {what()} within {timeout_s} s"
        raise HilAssertionError(msg)

    def await_message(
        self,
        predicate: Callable[[Message], bool],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        include_history: bool = False,
        what: str = "matching message",
    ) -> Message:
        """Return the next message satisfying ``predicate`` (or an earlier one, with ``include_history``)."""
        return self._next(predicate, timeout_s, lambda: what, include_history=include_history)

    def drain(self) -> None:
        """Take every message already waiting into the history."""
        if self.bus is None:
            return
        while (message := self.bus.receive()) is not None:
            self.history.append(message)

    # ------------------------------------------------------------------- commands

    def send_command(
        self, target: str, command: str, args: Mapping[str, Any] | None = None, *, timeout_s: float = 10.0
    ) -> CommandOutcome:
        """Send a command and return its outcome (whatever it is)."""
        if self.client is None:
            msg = "the base is not started"
            raise HilAssertionError(msg)
        return self.client.call(target, command, args, timeout_s=timeout_s)

    def send_and_assert_command(
        self, target: str, command: str, args: Mapping[str, Any] | None = None, *, timeout_s: float = 10.0
    ) -> CommandOutcome:
        """Send a command; raise unless it was accepted and completed."""
        outcome = self.send_command(target, command, args, timeout_s=timeout_s)
        if not outcome.ok:
            detail = outcome.reason or outcome.stages
            msg = f"{target}.{command}({dict(args or {})}) ended {outcome.status}: {detail}"
            raise HilAssertionError(msg)
        return outcome

    def inject_fault(self, board: str, kind: str, **details: Any) -> CommandOutcome:
        """Inject a fault into a simulated board (a command to the simulator)."""
        return self.send_and_assert_command(
            "simulator", "inject_fault", {"board": board, "kind": kind, **details}
        )

    def clear_fault(self, board: str, kind: str, **details: Any) -> CommandOutcome:
        """Clear a fault injected earlier."""
        return self.send_and_assert_command(
            "simulator", "clear_fault", {"board": board, "kind": kind, **details}
        )

    # ------------------------------------------------------------------- telemetry

    def await_telemetry(
        self,
        source: str,
        point: str,
        expected: Any = None,
        *,
        packet: str = "hk",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        include_history: bool = False,
    ) -> Message:
        """Wait for a ``packet`` from ``source`` whose ``point`` satisfies ``expected``.

        ``expected`` is a predicate (:func:`within_range`...) or a value to
        equal; ``None`` takes the next packet that has the point at all. With
        ``include_history``, a packet heard already counts too.
        """
        check: Predicate = _anything if expected is None else _as_predicate(expected)

        def matches(m: Message) -> bool:
            return (
                m.kind is Kind.TELEMETRY
                and m.source == source
                and m.name == packet
                and point in m.data
                and check(m.data[point])
            )

        return self._next(
            matches,
            timeout_s,
            lambda: f"{source}.{point} {expected!r}" + self._last_seen(source, packet, point),
            include_history=include_history,
        )

    def assert_telemetry(
        self,
        source: str,
        point: str,
        expected: Any,
        *,
        packet: str = "hk",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Any:
        """Take the next value of ``source.point`` and raise unless it satisfies ``expected``; return it."""
        message = self.await_telemetry(source, point, packet=packet, timeout_s=timeout_s)
        value = message.data[point]
        if not _as_predicate(expected)(value):
            msg = f"{source}.{point} = {value!r} at t={message.t_s} s, expected {expected!r}"
            raise HilAssertionError(msg)
        return value

    def _last_seen(self, source: str, packet: str, point: str) -> str:
        for message in reversed(self.history):
            if message.kind is Kind.TELEMETRY and message.source == source and message.name == packet:
                return f" (last seen: {message.data.get(point)!r} at t={message.t_s} s)"
        return " (none seen)"

    def telemetry_history(self, source: str, point: str, *, packet: str = "hk") -> list[tuple[float, Any]]:
        """Every ``(mission time, value)`` of ``source.point`` heard so far, in mission-time order."""
        self.drain()
        values = [
            (m.t_s, m.data[point])
            for m in self.history
            if m.kind is Kind.TELEMETRY and m.source == source and m.name == packet and point in m.data
        ]
        return sorted(values, key=lambda pair: pair[0])

    # ------------------------------------------------------------------- events

    def await_statistics(self, source: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The run statistics ``source`` sends in its final heartbeat, when the run ends.

        Blocks until then (a run with ``--duration`` ends on its own); raises
        :class:`HilAssertionError` if they do not come within ``timeout_s``.
        """
        message = self.await_message(
            final_heartbeat(source), timeout_s, include_history=True, what=f"statistics of {source}"
        )
        return dict(message.data["statistics"])

    def await_event(
        self,
        name: str,
        source: str | None = None,
        expected: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        include_history: bool = True,
    ) -> Message:
        """Wait for event ``name`` (from ``source``) whose fields satisfy ``expected``.

        ``expected`` maps field names to values or predicates.
        """
        checks = {k: _as_predicate(v) for k, v in (expected or {}).items()}

        def matches(m: Message) -> bool:
            return (
                m.kind is Kind.EVENT
                and m.name == name
                and (source is None or m.source == source)
                and all(k in m.data and check(m.data[k]) for k, check in checks.items())
            )

        return self.await_message(
            matches, timeout_s, include_history=include_history, what=f"event {name} {dict(expected or {})}"
        )

    def event_history(self, name: str | None = None, source: str | None = None) -> list[Message]:
        """Every event heard so far (optionally only ``name`` from ``source``), in mission-time order."""
        self.drain()
        events = [
            m
            for m in self.history
            if m.kind is Kind.EVENT
            and (name is None or m.name == name)
            and (source is None or m.source == source)
        ]
        return sorted(events, key=lambda m: (m.t_s, m.source, m.seq))

    def assert_event_count(self, expected: Any, name: str, source: str | None = None) -> list[Message]:
        """Raise unless the number of ``name`` events heard so far satisfies ``expected``; return them."""
        events = self.event_history(name, source)
        if not _as_predicate(expected)(len(events)):
            msg = f"{len(events)} {name} events, expected {expected!r}: {[(e.t_s, e.data) for e in events]}"
            raise HilAssertionError(msg)
        return events


__all__ = [
    "HilAssertionError",
    "HilBase",
    "all_of",
    "any_of",
    "boards_layer",
    "equal_to",
    "final_heartbeat",
    "greater_than",
    "is_not",
    "less_than",
    "member_of",
    "merge_toml",
    "within_range",
]
