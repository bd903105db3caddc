"""Stored command sequences: the text format, checks against the real dictionaries, the
write/parse round trip, and the executor's timing, waiting and aborting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.errors import ConfigError
from fsw.sequences import ABORTED, DONE, WAITING, Sequence, SequenceRun, Step, parse_sequence
from subsystems.comms import CommsProcess
from subsystems.power import PowerProcess
from subsystems.thermal import ThermalProcess

DICTIONARIES = {
    "power": PowerProcess.full_dictionary(),
    "thermal": ThermalProcess.full_dictionary(),
    "comms": CommsProcess.full_dictionary(),
}

TEXT = """
# Shed science and go to survival set points.
sequence shed_science
+0s     power    switch_load tier=3 on=false   # science off
+5s     thermal  set_mode mode=SURVIVAL
@2d     comms    set_transmitter on=true
"""


def test_a_sequence_parses_and_is_checked_against_the_dictionaries() -> None:
    seq = parse_sequence(TEXT, source="shed.seq", dictionaries=DICTIONARIES)
    assert seq.name == "shed_science"
    assert [(s.target, s.command, dict(s.args)) for s in seq.steps] == [
        ("power", "switch_load", {"tier": 3, "on": False}),
        ("thermal", "set_mode", {"mode": "SURVIVAL"}),
        ("comms", "set_transmitter", {"on": True}),
    ]
    assert (seq.steps[1].after_s, seq.steps[2].at_s, seq.steps[2].line) == (5.0, 172_800.0, 6)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("+1s power switch_load tier=9 on=false", "shed.seq:3: power switch_load"),
        ("+1s power switch_load tier=2", "missing argument(s) on"),
        ("+1s power fly", "unknown command 'fly'"),
        ("+1s rover drive", "no process 'rover'"),
        ("+1parsec power noop", "is not a number with a unit"),
        ("1s power noop", "a step is"),
        ("+1s power switch_load tier", "is not key=value"),
    ],
)
def test_bad_steps_are_config_errors_naming_file_and_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sequence(f"# x\nsequence s\n{line}\n", source="shed.seq", dictionaries=DICTIONARIES)
    assert "shed.seq:3" in str(info.value)
    assert message in str(info.value)


def test_a_file_without_its_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="no `sequence <name>` line"):
        parse_sequence("+1s power noop\n", source="x.seq")


def test_the_run_waits_for_each_status_and_times_relative_steps_from_completion() -> None:
    run = SequenceRun(parse_sequence(TEXT, dictionaries=DICTIONARIES), started_s=100.0)
    first = run.due(100.0)
    assert first is not None
    assert first.command == "switch_load"
    assert run.state == WAITING
    assert run.due(200.0) is None  # waiting for the first command's status
    run.completed(True, "", 101.0)
    assert run.due(105.9) is None  # +5 s after the completion at 101 s
    assert run.due(106.0) is not None
    run.completed(True, "", 106.5)
    assert run.due_s() == 172_800.0  # absolute
    assert run.due(172_800.0) is not None
    run.completed(True, "", 172_800.2)
    assert run.state == DONE


def test_a_failed_or_silent_step_aborts_the_run_with_its_reason() -> None:
    run = SequenceRun(parse_sequence(TEXT, dictionaries=DICTIONARIES), started_s=0.0)
    run.due(0.0)
    run.completed(False, "hard cut in force", 0.1)
    assert run.state == ABORTED
    assert "step 1 (line 4) power switch_load: hard cut in force" in run.reason
    silent = SequenceRun(parse_sequence(TEXT, dictionaries=DICTIONARIES), started_s=0.0, step_timeout_s=10.0)
    silent.due(0.0)
    silent.check(10.0)
    assert silent.state == WAITING
    silent.check(10.1)
    assert silent.state == ABORTED
    assert "no final status within 10 s" in silent.reason


_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
_values = st.one_of(
    st.integers(-(10**9), 10**9),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(float),
    st.text(alphabet='abcxyz ABC_-09#"\\\\=é', max_size=12),
)
_times = st.integers(0, 10**9).map(lambda n: n / 1000)
_steps = st.builds(
    lambda target, command, args, t, absolute: Step(
        target, command, args, after_s=0.0 if absolute else t, at_s=t if absolute else None
    ),
    _names,
    _names,
    st.dictionaries(_names, _values, max_size=4),
    _times,
    st.booleans(),
)


@given(_names, st.lists(_steps, max_size=8))
def test_write_then_parse_gives_the_same_sequence(name: str, steps: list[Step]) -> None:
    seq = Sequence(name, tuple(steps))
    back = parse_sequence(seq.to_text())
    assert back.name == seq.name
    assert [(s.target, s.command, dict(s.args), s.after_s, s.at_s) for s in back.steps] == [
        (s.target, s.command, dict(s.args), s.after_s, s.at_s) for s in seq.steps
    ]
