"""Deployment files: defaults, validation with errors that name file and key, durations."""

from __future__ import annotations

import math

import pytest

from fsw import deployment
from fsw.errors import ConfigError
from fsw.launch import framework_spec
from fsw.run import parse_duration, parse_speed


class TestDefault:
    """The embedded default base loads with no file."""

    def test_default_has_the_subsystems_the_simulator_the_space_link_and_fault_protection(self) -> None:
        base = deployment.load_default(run_dir="/tmp/fsw-default")
        names = [p.name for p in base.processes]
        assert names == ["simulator", "power", "thermal", "comms", "reactor", "spacelink", "protection"]
        assert base.bus.publish == "ipc:///tmp/fsw-default/pub"
        assert "simulator" not in base.lockstep_participants

    def test_lunation_is_the_same_base_on_one_second_frames(self) -> None:
        base = deployment.load_default(run_dir="/tmp/fsw-default")
        lunation = deployment.load_embedded("lunation", run_dir="/tmp/fsw-default")
        # ... without the simulated space link: a month runs in minutes, no ground is there.
        assert [p.name for p in lunation.processes] == [
            p.name for p in base.processes if p.name != "spacelink"
        ]
        assert lunation.clock.frame_period_s == 1.0
        assert lunation.name == base.name  # `fsw status` finds either without a file

    def test_lunation_clock_housekeeping_follows_its_clock_table(self) -> None:
        lunation = deployment.load_embedded("lunation", run_dir="/tmp/fsw-default")
        assert framework_spec(lunation, "clock").housekeeping_period_s == 10.0
        default = deployment.load_default(run_dir="/tmp/fsw-default")
        assert framework_spec(default, "clock").housekeeping_period_s == 1.0

    def test_unknown_embedded_deployment_names_the_installed_ones(self) -> None:
        with pytest.raises(
            ConfigError, match=r"no embedded deployment named 'nosuch' \(installed: .*lunation"
        ):
            deployment.load_embedded("nosuch")

    def test_policy_overrides_merge_with_the_default(self) -> None:
        base = deployment.parse(
            """
            [restart]
            max_restarts = 3
            [processes.power]
            entry = "subsystems.power:PowerProcess"
            restart = { backoff_initial_s = 2 }
            """
        )
        policy = base.process("power").restart
        assert (policy.max_restarts, policy.backoff_initial_s) == (3, 2.0)
        assert policy.backoff_s(1) == 2.0
        assert policy.backoff_s(3) == 8.0


class TestErrors:
    """Every bad file is refused with the file and the key in the message."""

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("[base\n", "not valid TOML"),
            (
                "[clock]\nframe_period_s = 'fast'\n",
                r"\[clock\] frame_period_s = 'fast' must be of type float",
            ),
            ("[clock]\nframe_period_s = 0\n", "frame_period_s must be positive"),
            ("[bus]\nhigh_water_mark = 0\n", "high_water_mark must be at least 1"),
            ("[bogus]\n", "unknown key.* bogus"),
            ("[processes.power]\nentry = 'nocolon'\n", "entry must be 'module:Class'"),
            ("[processes.power]\nentry = 'a:B'\nrate = 3\n", r"unknown key.* rate in \[processes.power\]"),
            (
                "[processes.power]\nentry = 'a:B'\nrate_hz = 50\n",
                "must be positive and at most the frame rate",
            ),
            ("[processes.power]\nentry = 'a:B'\nstart_after = ['x']\n", "start_after names unknown"),
            ("[processes.bus]\nentry = 'a:B'\n", "reserved"),
            (
                "[processes.power]\nentry = 'a:B'\nboard = { kind = 'x' }\n",
                "board must be a table with a 'backend'",
            ),
        ],
    )
    def test_bad_config_names_what_and_where(self, text: str, reason: str) -> None:
        with pytest.raises(ConfigError, match=reason) as info:
            deployment.parse(text, source="base.toml")
        assert str(info.value).startswith("base.toml")

    def test_missing_file_is_a_config_error(self, tmp_path: object) -> None:
        with pytest.raises(ConfigError, match="cannot read deployment file"):
            deployment.load("/nonexistent/base.toml")


class TestDurations:
    """--duration and --speed accept what the help says."""

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("90s", 90.0), ("10min", 600.0), ("1h", 3600.0), ("30d", 2592000.0), ("250ms", 0.25), ("12", 12.0)],
    )
    def test_durations(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "ten", "5 weeks", "-1s"])
    def test_bad_durations(self, text: str) -> None:
        with pytest.raises(ConfigError, match="duration"):
            parse_duration(text)

    def test_speed(self) -> None:
        assert parse_speed("max") == math.inf
        assert parse_speed("50") == 50.0
        with pytest.raises(ConfigError, match="speed"):
            parse_speed("0")
