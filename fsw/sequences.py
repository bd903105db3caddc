"""Stored command sequences: a text format people write and review, and its executor.

A sequence file::

    # Shed science and go to survival set points.
    sequence shed_science
    +0s     power    switch_load tier=3 on=false
    +5s     thermal  set_mode mode=SURVIVAL
    @2d     comms    set_transmitter on=true

One step per line: when, target process, command, ``key=value`` arguments (JSON values;
a bare word is a string; a quoted string may hold spaces). ``+D`` runs the step ``D``
after the previous step completed (after the start, for the first); ``@D`` runs it at
mission time ``D``. Durations: ``250ms``, ``5s``, ``10min``, ``2h``, ``3d``. ``#`` starts a
comment. :func:`parse_sequence` checks every step against the processes' dictionaries
(command, argument names, types and ranges) and raises :class:`ConfigError` naming the
file and line. :meth:`Sequence.to_text` writes the same format back: parse and write are a
symmetric pair.

:class:`SequenceRun` executes one sequence in mission time: :meth:`~SequenceRun.due`
returns the step to send once its time has come, the caller sends it and reports the
command's final status with :meth:`~SequenceRun.completed`; a failed, rejected or
timed-out step aborts the run with the reason. Pure: no I/O, no wall clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsw.dictionary import Dictionary, parse_assignments
from fsw.errors import CommandRejected, ConfigError
from fsw.run import parse_duration

#: Most steps in one sequence.
MAX_STEPS: Final = 10_000
#: Default mission time a step may wait for its command's final status.
STEP_TIMEOUT_S: Final = 30.0

RUNNING: Final = "running"
WAITING: Final = "waiting"
DONE: Final = "done"
ABORTED: Final = "aborted"


@dataclass(frozen=True)
class Step:
    """One command of a sequence: ``at_s`` (absolute mission time) or ``after_s`` (relative)."""

    target: str
    command: str
    args: Mapping[str, Any] = field(default_factory=dict)
    after_s: float = 0.0
    at_s: float | None = None
    line: int = 0

    def when_text(self) -> str:
        """``@<s>s`` or ``+<s>s``."""
        return f"@{self.at_s!r}s" if self.at_s is not None else f"+{self.after_s!r}s"


@dataclass(frozen=True)
class Sequence:
    """A named list of steps."""

    name: str
    steps: tuple[Step, ...]

    def to_text(self) -> str:
        """The sequence in the file format (``parse_sequence(seq.to_text())`` gives it back)."""
        lines = [f"sequence {self.name}"]
        for step in self.steps:
            args = " ".join(f"{k}={json.dumps(v)}" for k, v in step.args.items())
            lines.append(f"{step.when_text()} {step.target} {step.command} {args}".rstrip())
        return "\n".join(lines) + "\n"


def load_sequence(path: str | Path, dictionaries: Mapping[str, Dictionary] | None = None) -> Sequence:
    """Read and check a sequence file; :class:`ConfigError` naming the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read sequence file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    return parse_sequence(text, source=str(path), dictionaries=dictionaries)


def parse_sequence(
    text: str, *, source: str = "<string>", dictionaries: Mapping[str, Dictionary] | None = None
) -> Sequence:
    """Parse sequence ``text``; with ``dictionaries`` (process name -> dictionary) check each step.

    Raises :class:`ConfigError` naming ``source`` and the line.
    """
    name = ""
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        words = _words(raw, where)
        if not words:
            continue
        if words[0] == "sequence":
            if name or len(words) != 2 or not words[1].replace("_", "").isalnum():
                msg = f"{where}: one `sequence <name>` line (letters, digits, _) is allowed"
                raise ConfigError(msg)
            name = words[1]
            continue
        if len(steps) >= MAX_STEPS:
            msg = f"{where}: more than {MAX_STEPS} steps"
            raise ConfigError(msg)
        steps.append(_step(where, number, words, dictionaries))
    if not name:
        msg = f"{source}: no `sequence <name>` line"
        raise ConfigError(msg)
    return Sequence(name, tuple(steps))


_TOKEN: Final = re.compile(r'(?:[^\s"#]+|"(?:[^"\\]|\\.)*")+')


def _words(line: str, where: str) -> list[str]:
    """Split on blanks outside JSON strings; ``#`` outside a string starts a comment."""
    words: list[str] = []
    at = 0
    while at < len(line):
        if line[at].isspace():
            at += 1
            continue
        if line[at] == "#":
            break
        match = _TOKEN.match(line, at)
        if match is None:
            msg = f"{where}: unclosed string at column {at + 1}"
            raise ConfigError(msg)
        words.append(match.group(0))
        at = match.end()
    return words


def _step(where: str, number: int, words: list[str], dictionaries: Mapping[str, Dictionary] | None) -> Step:
    if len(words) < 3 or words[0][:1] not in "+@":
        msg = f"{where}: a step is `+<duration>|@<mission time> <target> <command> [key=value ...]`"
        raise ConfigError(msg)
    try:
        seconds = parse_duration(words[0][1:])
        args = parse_assignments(words[3:])
    except ConfigError as exc:
        msg = f"{where}: {exc}"
        raise ConfigError(msg) from exc
    target, command = words[1], words[2]
    if dictionaries is not None:
        dictionary = dictionaries.get(target)
        if dictionary is None:
            msg = f"{where}: no process {target!r} (processes: {', '.join(sorted(dictionaries))})"
            raise ConfigError(msg)
        try:
            args = dict(dictionary.command(command).check(args))
        except CommandRejected as exc:
            msg = f"{where}: {target} {command}: {exc.reason}"
            raise ConfigError(msg) from exc
    absolute = words[0][0] == "@"
    return Step(
        target=target,
        command=command,
        args=args,
        after_s=0.0 if absolute else seconds,
        at_s=seconds if absolute else None,
        line=number,
    )


@dataclass
class SequenceRun:
    """One execution of a sequence, in mission time.

    ``due(t_s)`` gives the next step once its time has come (and marks it sent);
    ``completed(ok, reason, t_s)`` reports its command's final status; ``check(t_s)``
    aborts a step waiting longer than ``step_timeout_s``. ``state``: running, waiting,
    done or aborted; ``reason`` says why it aborted.
    """

    sequence: Sequence
    started_s: float
    step_timeout_s: float = STEP_TIMEOUT_S
    index: int = 0
    state: str = RUNNING
    reason: str = ""
    _ready_s: float = field(init=False, default=0.0)
    _sent_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._ready_s = self.started_s
        if not self.sequence.steps:
            self.state = DONE

    @property
    def step(self) -> Step | None:
        """The current step, or None once done or aborted."""
        if self.state in (DONE, ABORTED):
            return None
        return self.sequence.steps[self.index]

    def due_s(self) -> float | None:
        """Mission time the current step is due at (None while waiting, done or aborted)."""
        step = self.step
        if step is None or self.state == WAITING:
            return None
        return step.at_s if step.at_s is not None else self._ready_s + step.after_s

    def due(self, t_s: float) -> Step | None:
        """The step to send now, if its time has come; the run then waits for its status."""
        due_s = self.due_s()
        if due_s is None or t_s < due_s:
            return None
        self.state, self._sent_s = WAITING, t_s
        return self.step

    def completed(self, ok: bool, reason: str, t_s: float) -> None:
        """The final status of the step's command: next step, or abort with ``reason``."""
        if self.state != WAITING:
            return
        step = self.sequence.steps[self.index]
        if not ok:
            self.state = ABORTED
            self.reason = f"step {self.index + 1} (line {step.line}) {step.target} {step.command}: {reason}"
            return
        self.index += 1
        self._ready_s = t_s
        self.state = DONE if self.index >= len(self.sequence.steps) else RUNNING

    def check(self, t_s: float) -> None:
        """Abort if the step has waited longer than ``step_timeout_s`` for its status."""
        if self.state == WAITING and t_s - self._sent_s > self.step_timeout_s:
            self.completed(False, f"no final status within {self.step_timeout_s:g} s", t_s)

    def stop(self, reason: str) -> None:
        """Stop the run (by command)."""
        if self.state not in (DONE, ABORTED):
            self.state, self.reason = ABORTED, reason


__all__ = ["Sequence", "SequenceRun", "Step", "load_sequence", "parse_sequence"]
