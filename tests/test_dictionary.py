"""Dictionaries: commands are validated with reasons that name the argument."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, dictionary_from_json
from fsw.errors import CommandRejected, DictionaryError

SWITCH = CommandDef(
    "switch_load",
    (Arg("tier", ArgType.INT, low=1, high=4), Arg("on", ArgType.BOOL)),
)
SET = CommandDef(
    "set_setpoint",
    (
        Arg("node", ArgType.STR, choices=("battery", "habitat")),
        Arg("low_c", ArgType.FLOAT, "C", low=-60, high=60),
    ),
)


class TestCommandValidation:
    """A command is checked against its definition before the target sees it."""

    def test_valid_arguments_are_normalised(self) -> None:
        assert SET.check({"node": "battery", "low_c": 5}) == {"node": "battery", "low_c": 5.0}

    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            ({"tier": 5, "on": True}, "argument tier=5 is above its maximum 4"),
            ({"tier": 0, "on": True}, "argument tier=0 is below its minimum 1"),
            ({"tier": "2", "on": True}, "argument tier='2' is not of type int"),
            ({"tier": 2, "on": 1}, "argument on=1 is not of type bool"),
            ({"tier": 2}, "missing argument.* on"),
            ({"tier": 2, "on": True, "x": 1}, "unknown argument.* x"),
        ],
    )
    def test_bad_argument_is_rejected_naming_it(self, args: dict[str, object], reason: str) -> None:
        with pytest.raises(CommandRejected, match=reason):
            SWITCH.check(args)

    def test_choice_outside_the_list_is_rejected(self) -> None:
        with pytest.raises(CommandRejected, match="node='reactor' is not one of"):
            SET.check({"node": "reactor", "low_c": 0.0})

    def test_optional_argument_takes_its_default(self) -> None:
        command = CommandDef(
            "inject", (Arg("board", ArgType.STR), Arg("sigma", ArgType.FLOAT, low=0.1, default=0.0))
        )
        assert command.check({"board": "power"}) == {"board": "power", "sigma": 0.0}
        assert command.check({"board": "power", "sigma": 2}) == {"board": "power", "sigma": 2.0}
        with pytest.raises(CommandRejected, match=r"missing argument.* board"):
            command.check({"sigma": 1.0})
        assert dictionary_from_json(Dictionary(commands=(command,)).to_json()).commands == (command,)

    def test_non_finite_float_is_rejected(self) -> None:
        with pytest.raises(CommandRejected, match="not a finite number"):
            SET.check({"node": "battery", "low_c": float("nan")})

    @given(st.integers(min_value=-100, max_value=100), st.booleans())
    def test_range_check_matches_the_declared_range(self, tier: int, on: bool) -> None:
        try:
            SWITCH.check({"tier": tier, "on": on})
        except CommandRejected:
            assert not 1 <= tier <= 4
        else:
            assert 1 <= tier <= 4


class TestDictionary:
    """Declarations are checked, and the command part survives a JSON round trip."""

    def test_duplicate_names_are_refused(self) -> None:
        with pytest.raises(DictionaryError, match="declared twice"):
            Dictionary(commands=(SWITCH, SWITCH))

    def test_unknown_command_is_rejected(self) -> None:
        with pytest.raises(CommandRejected, match="unknown command 'fly'"):
            Dictionary(commands=(SWITCH,)).command("fly")

    def test_commands_round_trip_through_json(self) -> None:
        dictionary = Dictionary(commands=(SWITCH, SET))
        assert dictionary_from_json(dictionary.to_json()).commands == dictionary.commands
