"""Fault injection: every kind on the models, scenarios, the simulator's commands, a real base.

Unit tests step a seeded :class:`World` through a :class:`FaultInjector`; the silent
board is served on a real pseudo-terminal in a thread and read through a real
:class:`LinkBoard`. End-to-end tests run ``fsw up --speed max`` with a scenario file and
wait on bus messages with deadlines, never on sleeps.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsw.board import Board
from fsw.deployment import parse
from fsw.errors import BoardError, BoardLinkLost, BoardTimeout, ConfigError
from fsw.messages import Kind, Message
from fsw.run import RunOptions
from hil.board_server import ServingThread, open_pty
from hil.faults import (
    BOARDS,
    KINDS,
    FaultError,
    FaultInjector,
    FaultSpec,
    FaultyBoardServer,
    Scenario,
    clear_command_args,
    command_params,
    default_board_descriptions,
    fault_from_command,
    inject_args,
    make_fault,
    parse_scenario,
)
from hil.physics import World
from hil.sim import SimBoard
from hil.simulator import Simulator
from tests.conftest import WAIT_S, RunningBase, deployment_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
BOARD_DESCRIPTIONS = default_board_descriptions()
SHORT_TIMEOUT_S = 0.05


def fault(board: str, kind: str, **given: object) -> FaultSpec:
    channel = str(given.pop("channel", ""))
    actuator = str(given.pop("actuator", ""))
    return make_fault(BOARD_DESCRIPTIONS, board, kind, channel=channel, actuator=actuator, params=given)


def rig(seed: int = 3, frame_period_s: float = 1.0, scenario: Scenario | None = None) -> FaultInjector:
    return FaultInjector(World(seed=seed, frame_period_s=frame_period_s), scenario, run_seed=seed)


def step(injector: FaultInjector, frames: int = 1) -> None:
    injector.advance_to(injector.world.frame + frames)


def inner(injector: FaultInjector, board: str) -> dict[str, object]:
    return dict(injector.boards[board].inner.read())


# --- the table ------------------------------------------------------------------------


class TestTable:
    def test_boards_are_the_worlds(self) -> None:
        assert tuple(sorted(World(seed=0, frame_period_s=1.0).boards)) == BOARDS

    def test_every_kind_says_what_a_user_sees_and_is_documented(self) -> None:
        text = DOCS.read_text(encoding="utf-8")
        for kind in KINDS.values():
            assert kind.summary, kind.name
            assert kind.observable, kind.name
            assert f"### `{kind.name}`" in text, f"docs/faults.md lacks {kind.name}"
            for param in kind.params:
                assert f"`{param.name}`" in text

    def test_command_ranges_span_every_kind_and_zero(self) -> None:
        params = {p.name: p for p in command_params()}
        assert set(params) == {"value", "sigma", "seed", "fraction", "count"}
        assert params["seed"].integer
        assert params["fraction"].low == 0.0
        assert params["fraction"].high == 1.0
        assert params["sigma"].low == 0.0


# --- each kind on the models ------------------------------------------------------------


class TestSensorFaults:
    def test_stuck_channel_holds_its_value_at_injection_while_the_physics_moves(self) -> None:
        injector = rig()
        step(injector, 5)
        before = injector.boards["power"].read()["battery_soc"]
        frame = injector.request_inject(fault("power", "stuck", channel="battery_soc"))
        assert injector.boards["power"].read()["battery_soc"] == before, "applied before the step"
        changes = injector.advance_to(frame)
        assert [(c.action, c.frame) for c in changes] == [("injected", frame)]
        assert changes[0].details == {"held": before}
        for _ in range(5):
            step(injector)
            assert injector.boards["power"].read()["battery_soc"] == before
        assert inner(injector, "power")["battery_soc"] != before
        injector.request_clear("power", "stuck", channel="battery_soc")
        step(injector)
        assert injector.boards["power"].read()["battery_soc"] == inner(injector, "power")["battery_soc"]

    def test_offset_adds_a_constant_rounded_on_int_channels(self) -> None:
        injector = rig()
        injector.request_inject(fault("power", "offset", channel="bus_voltage_v", value=-6.5))
        injector.request_inject(fault("comms", "offset", channel="downlink_rate_bps", value=1.4))
        step(injector, 3)
        truth = inner(injector, "power")["bus_voltage_v"]
        assert injector.boards["power"].read()["bus_voltage_v"] == pytest.approx(float(truth) - 6.5)
        rate = injector.boards["comms"].read()["downlink_rate_bps"]
        assert rate == int(inner(injector, "comms")["downlink_rate_bps"]) + 1
        assert isinstance(rate, int)

    def test_noisy_is_seeded_and_deterministic_one_draw_per_frame(self) -> None:
        def series(fault_seed: int, run_seed: int = 3) -> list[float]:
            injector = rig(seed=run_seed)
            spec = fault("thermal", "noisy", channel="battery_temp_c", sigma=0.5, seed=fault_seed)
            injector.request_inject(spec)
            out = []
            for _ in range(200):
                step(injector)
                board = injector.boards["thermal"]
                first, again = board.read()["battery_temp_c"], board.read()["battery_temp_c"]
                assert first == again, "every read of one frame sees the same noise"
                out.append(float(first) - float(inner(injector, "thermal")["battery_temp_c"]))
            return out

        one = series(fault_seed=1)
        assert series(fault_seed=1) == one
        assert series(fault_seed=2) != one
        assert series(fault_seed=1, run_seed=4) != one
        assert 0.4 < statistics.pstdev(one) < 0.6
        assert abs(statistics.mean(one)) < 0.15

    def test_dropped_float_reads_nan_and_other_types_are_refused_naming_the_channel(self) -> None:
        injector = rig()
        injector.request_inject(fault("reactor", "dropped", channel="fuel_temp_c"))
        step(injector)
        values = injector.boards["reactor"].read()
        assert math.isnan(float(values["fuel_temp_c"]))
        assert values["rod_position"] == 0.0
        with pytest.raises(FaultError, match=r"'tripped' is bool") as info:
            fault("reactor", "dropped", channel="tripped")
        assert info.value.key == "channel"


class TestActuatorFaults:
    def test_stuck_actuator_acknowledges_commands_without_effect(self) -> None:
        injector = rig()
        power = injector.boards["power"]
        step(injector)
        load_w = power.read()["load_power_w"]
        injector.request_inject(fault("power", "stuck", actuator="load_t4"))
        step(injector)
        power.command("load_t4", False)  # acknowledged: no BoardError (T4 is on at start)
        step(injector, 3)
        assert power.read()["load_power_w"] == pytest.approx(load_w)
        with pytest.raises(BoardError, match="load_t4"):
            power.command("load_t4", 3)  # the board's own range check still answers
        injector.request_clear("power", "stuck", actuator="load_t4")
        step(injector)
        power.command("load_t4", False)
        step(injector)
        assert power.read()["load_power_w"] == pytest.approx(float(load_w) - 1500.0)

    def test_heater_stuck_runs_at_its_duty_whatever_is_commanded(self) -> None:
        injector = rig()
        thermal = injector.boards["thermal"]
        injector.request_inject(fault("thermal", "heater_stuck", actuator="heater_battery"))
        step(injector)
        thermal.command("heater_battery", 0.0)
        step(injector)
        assert injector.world.thermal.heater_power_w == pytest.approx(400.0)


class TestPhysicsFaults:
    def test_converter_failure_at_power_trips_the_reactor_on_loss_of_heat_sink(self) -> None:
        injector = rig()
        reactor = injector.boards["reactor"]
        reactor.heartbeat()
        reactor.command("rod_target", 0.65)  # supercritical cold ($0.25): critical near 0.63
        model = injector.world.reactor
        while model.fission_power_w < 0.002 * model.rated_thermal_power_w:
            reactor.heartbeat()
            step(injector)
            assert injector.world.frame < 2000
            assert not model.tripped
        reactor.drain_events()
        injector.request_inject(fault("reactor", "converter_failure"))
        reactor.heartbeat()
        step(injector)
        values = reactor.read()
        assert values["tripped"] is True
        assert values["converter_ok"] is False
        assert model.trip_reason == "loss_of_heat_sink"
        assert {"converter_failed", "tripped"} <= reactor.faults()
        trips = [e for e in reactor.drain_events() if e.name == "trip"]
        assert trips
        assert trips[0].data["reason"] == "loss_of_heat_sink"

    def test_converter_failure_when_cold_only_flags_it_and_clears(self) -> None:
        injector = rig()
        injector.request_inject(fault("reactor", "converter_failure"))
        step(injector, 3)
        reactor = injector.boards["reactor"]
        assert reactor.read()["converter_ok"] is False
        assert reactor.read()["tripped"] is False
        injector.request_clear("reactor", "converter_failure")
        step(injector)
        assert reactor.read()["converter_ok"] is True

    def test_array_degradation_scales_the_solar_output(self) -> None:
        healthy, degraded = rig(seed=5), rig(seed=5)
        degraded.request_inject(fault("power", "array_degradation", fraction=0.25))
        step(healthy, 10)
        step(degraded, 10)
        solar_w = float(healthy.boards["power"].read()["solar_power_w"])
        assert solar_w > 1000.0
        assert degraded.boards["power"].read()["solar_power_w"] == pytest.approx(0.75 * solar_w)
        with pytest.raises(FaultError, match="power board") as info:
            fault("thermal", "array_degradation", fraction=0.5)
        assert info.value.key == "board"


# --- silent: a real link ----------------------------------------------------------------


@contextlib.contextmanager
def served(injector: FaultInjector, kind: str) -> Iterator[Board]:
    """Serve ``kind`` on a pty in a thread; yield a real sim board (LinkBoard) on it."""
    master_fd, slave_path = open_pty()
    server = FaultyBoardServer(
        injector.boards[kind], master_fd, on_sync=lambda frame, _t: injector.advance_to(frame)
    )
    try:
        with (
            ServingThread([server]).start(),
            SimBoard(path=slave_path, hello_timeout_s=2.0, lost_after_timeouts=3) as board,
        ):
            yield board
    finally:
        server.close()


class TestSilent:
    def test_silent_board_times_out_then_the_link_is_lost_and_comes_back(self) -> None:
        injector = rig()
        with served(injector, "power") as board:
            board.sync(1, 1.0)
            injector.request_inject(fault("power", "silent"))
            errors = []
            for frame in (2, 3, 4):
                with pytest.raises(BoardError) as info:
                    board.sync(frame, float(frame), timeout_s=SHORT_TIMEOUT_S)
                errors.append(type(info.value))
            assert errors == [BoardTimeout, BoardTimeout, BoardLinkLost]
            assert injector.world.frame == 4, "a silent board's SYNC still steps the world"
            injector.request_clear("power", "silent")
            board.sync(5, 5.0)
            assert board.link_up
            assert math.isfinite(float(board.read().values["battery_soc"]))

    def test_nan_of_a_dropped_channel_crosses_the_wire(self) -> None:
        injector = rig()
        with served(injector, "power") as board:
            injector.request_inject(fault("power", "dropped", channel="battery_soc"))
            board.sync(1, 1.0)
            assert math.isnan(float(board.read().values["battery_soc"]))


# --- requests, timing, scenarios ----------------------------------------------------------


class TestRequests:
    def test_injection_is_applied_at_the_next_step_only(self) -> None:
        injector = rig()
        step(injector, 2)
        frame = injector.request_inject(fault("power", "offset", channel="battery_soc", value=1.0))
        assert frame == 3
        assert injector.boards["power"].read() == inner(injector, "power")
        assert injector.snapshot()["pending"][0]["action"] == "inject"
        step(injector)
        assert injector.snapshot()["active"][0]["since_frame"] == 3

    def test_duplicate_injection_and_clearing_nothing_are_refused(self) -> None:
        injector = rig()
        spec = fault("comms", "silent")
        injector.request_inject(spec)
        with pytest.raises(FaultError, match="already queued"):
            injector.request_inject(spec)
        step(injector)
        with pytest.raises(FaultError, match="already active"):
            injector.request_inject(spec)
        with pytest.raises(FaultError, match="no active fault") as info:
            injector.request_clear("power", "stuck", channel="battery_soc")
        assert info.value.key == "channel"

    def test_clearing_a_queued_injection_cancels_it(self) -> None:
        injector = rig()
        injector.request_inject(fault("power", "stuck", channel="battery_soc"))
        outcome = injector.request_clear("power", "stuck")
        assert [f["channel"] for f in outcome["cancelled"]] == ["battery_soc"]
        assert injector.advance_to(1) == []

    def test_command_arguments_must_leave_unused_parameters_at_zero(self) -> None:
        numbers = {"value": 0.0, "sigma": 2.0, "fraction": 0.0, "seed": 0}
        with pytest.raises(FaultError, match="stuck takes no parameter 'sigma'") as info:
            fault_from_command(BOARD_DESCRIPTIONS, "power", "stuck", "battery_soc", "", numbers)
        assert info.value.key == "sigma"
        numbers["sigma"] = 0.0
        spec = fault_from_command(BOARD_DESCRIPTIONS, "power", "stuck", "battery_soc", "", numbers)
        assert spec.params == {}

    @pytest.mark.parametrize(
        ("board", "kind", "given", "key", "text"),
        [
            ("moon", "stuck", {"channel": "x"}, "board", "unknown board 'moon'"),
            ("power", "melt", {}, "kind", "unknown fault kind 'melt'"),
            ("power", "stuck", {}, "channel", "needs a channel or actuator"),
            ("power", "stuck", {"channel": "soc"}, "channel", "no channel 'soc'"),
            ("power", "stuck", {"actuator": "load_t9"}, "actuator", "no actuator 'load_t9'"),
            ("power", "offset", {"actuator": "load_t1", "value": 1}, "actuator", "not an actuator"),
            ("power", "offset", {"channel": "battery_soc"}, "value", "needs value"),
            ("power", "noisy", {"channel": "battery_soc", "sigma": 0}, "sigma", "above 0"),
            ("power", "noisy", {"channel": "battery_soc", "sigma": 1, "seed": 1.5}, "seed", "whole"),
            ("comms", "silent", {"channel": "dte_visible"}, "channel", "whole board"),
            ("thermal", "heater_stuck", {"actuator": "heater_battery", "value": 2}, "value", "at most 1"),
        ],
    )
    def test_bad_faults_are_refused_naming_the_argument(self, board, kind, given, key, text) -> None:
        with pytest.raises(FaultError, match=text) as info:
            fault(board, kind, **given)
        assert info.value.key == key

    def test_inject_args_fill_every_command_argument(self) -> None:
        args = inject_args("thermal", "heater_stuck", actuator="heater_battery")
        assert args == {
            "board": "thermal",
            "kind": "heater_stuck",
            "channel": "",
            "actuator": "heater_battery",
            "value": 1.0,
            "sigma": 0.0,
            "seed": 0,
            "fraction": 0.0,
            "count": 0,
        }


SCENARIO = """
description = "power sensor, then the comms link"
[[fault]]
at = "2s"
until = "4s"
board = "power"
kind = "stuck"
channel = "battery_soc"
[[fault]]
at = 2.5
board = "comms"
kind = "silent"
[[fault]]
at = "4s"
board = "power"
kind = "stuck"
channel = "battery_soc"
"""


class TestScenario:
    def test_faults_apply_and_clear_at_their_mission_times(self) -> None:
        injector = rig(frame_period_s=0.5, scenario=parse_scenario(SCENARIO, "s.toml"))
        assert injector.start() == []
        seen = [(c.action, c.spec.board, c.frame) for c in injector.advance_to(20)]
        assert seen == [
            ("injected", "power", 4),
            ("injected", "comms", 5),
            ("cleared", "power", 8),
            ("injected", "power", 8),
        ]
        assert injector.snapshot()["scheduled_total"] == 0

    def test_windows_shorter_than_a_frame_do_not_overlap(self) -> None:
        text = (
            "[[fault]]\nat = 0.95\nuntil = 1.0\nboard = 'comms'\nkind = 'silent'\n"
            "[[fault]]\nat = 1.0\nuntil = 1.05\nboard = 'comms'\nkind = 'silent'\n"
        )
        injector = rig(frame_period_s=0.1, scenario=parse_scenario(text, "s.toml"))
        seen = [(c.action, c.frame, c.origin) for c in injector.advance_to(20)]
        assert seen == [
            ("injected", 10, "scenario #1"),
            ("cleared", 11, "scenario #1"),
            ("injected", 11, "scenario #2"),
            ("cleared", 12, "scenario #2"),
        ]

    def test_a_seeded_run_with_a_scenario_is_reproducible(self) -> None:
        text = SCENARIO + (
            '[[fault]]\nat = "1s"\nboard = "thermal"\nkind = "noisy"\n'
            'channel = "habitat_temp_c"\nsigma = 1.0\n'
        )

        def readings() -> list[dict[str, object]]:
            injector = rig(frame_period_s=0.5, scenario=parse_scenario(text, "s.toml"))
            out = []
            for frame in range(1, 30):
                injector.advance_to(frame)
                out.append({k: b.read() for k, b in injector.boards.items()})
            return out

        assert readings() == readings()

    @pytest.mark.parametrize(
        ("text", "where"),
        [
            ("[[fault]]\nat = '1s'\nboard = 'power'\nkind = 'silent'\ncolour = 'red'\n", "#1, key 'colour'"),
            ("[[fault]]\nboard = 'power'\nkind = 'silent'\n", "#1, key 'at': missing"),
            ("[[fault]]\nat = 'soon'\nboard = 'power'\nkind = 'silent'\n", "#1, key 'at'"),
            ("[[fault]]\nat = -1\nboard = 'power'\nkind = 'silent'\n", "#1, key 'at'"),
            ("[[fault]]\nat = '2s'\nuntil = '1s'\nboard = 'power'\nkind = 'silent'\n", "#1, key 'until'"),
            ("[[fault]]\nat = 1\nboard = 'mars'\nkind = 'silent'\n", "#1, key 'board'"),
            ("[[fault]]\nat = 1\nboard = 'power'\nkind = 'melt'\n", "#1, key 'kind'"),
            (
                "[[fault]]\nat = 1\nboard = 'power'\nkind = 'silent'\n"
                "[[fault]]\nat = 1\nboard = 'power'\nkind = 'stuck'\nchannel = 'soc'\n",
                "#2, key 'channel'",
            ),
            (
                "[[fault]]\nat = 1\nboard = 'power'\nkind = 'noisy'\nchannel = 'battery_soc'\n",
                "#1, key 'sigma'",
            ),
            ("[[fault]]\nat = 1\nboard = 'power'\nkind = 'silent'\n" * 2, "#2, key 'at'"),
            ("[[fault]]\nat = 1\nboard = 3\nkind = 'silent'\n", "#1, key 'board'"),
            ("faults = []\n", "unknown top-level key 'faults'"),
            ("fault = 3\n", "array of tables"),
            ("[[fault]\n", "not valid TOML"),
        ],
    )
    def test_invalid_scenarios_name_the_file_the_entry_and_the_key(self, text: str, where: str) -> None:
        with pytest.raises(ConfigError) as info:
            parse_scenario(text, "drill.toml")
        message = str(info.value)
        assert message.startswith("drill.toml: "), message
        assert where in message, message

    def test_the_simulator_refuses_to_start_with_a_bad_scenario(self, run_dir: Path) -> None:
        scenario = run_dir / "bad.toml"
        scenario.write_text("[[fault]]\nat = 1\nboard = 'power'\nkind = 'stuck'\n", encoding="utf-8")
        extra = f'[processes.simulator.params]\nscenario = "{scenario}"\n'
        deployment = parse(deployment_text(extra), source="t.toml", run_dir=run_dir)
        with pytest.raises(ConfigError, match=r"bad.toml: \[\[fault\]\] #1, key 'channel'"):
            Simulator(deployment, deployment.process("simulator"), RunOptions(run_id="t"))


# --- a real base --------------------------------------------------------------------------


def _is(kind: Kind, source: str, name: str):
    return lambda m: m.kind is kind and m.source == source and m.name == name


def _hk_after(base: RunningBase, source: str, t_s: float) -> Message:
    return base.wait_for(
        lambda m: _is(Kind.TELEMETRY, source, "hk")(m) and m.t_s >= t_s - 1e-9,
        what=f"tlm.{source}.hk at or after t = {t_s} s",
    )


def _start_with_scenario(start_base, run_dir: Path, text: str) -> RunningBase:
    scenario = run_dir / "scenario.toml"
    scenario.write_text(text, encoding="utf-8")
    extra = f'[processes.simulator.params]\nscenario = "{scenario}"\n'
    base: RunningBase = start_base(extra, "--speed", "max")
    base.wait_ready()
    return base


END_TO_END_SCENARIO = """
[[fault]]
at = "3s"
until = "6s"
board = "comms"
kind = "silent"
[[fault]]
at = "8s"
until = "12s"
board = "power"
kind = "stuck"
channel = "battery_soc"
"""


class TestInABase:
    def test_scenario_faults_happen_at_their_mission_times_and_the_flight_side_sees_them(
        self, start_base, run_dir: Path
    ) -> None:
        base = _start_with_scenario(start_base, run_dir, END_TO_END_SCENARIO)
        loaded = base.event("scenario_loaded", "simulator")
        assert loaded.data["faults"] == 2

        silent = base.event("fault_injected", "simulator")
        assert (silent.data["board"], silent.data["kind"], silent.t_s) == ("comms", "silent", 3.0)
        lost = base.event("board_link_lost", "comms")
        assert 3.0 <= lost.t_s <= 6.0
        timeouts = [
            m
            for m in base.history
            if _is(Kind.EVENT, "comms", "frame_error")(m) and silent.t_s <= m.t_s < lost.t_s
        ]
        # Two timeouts before the link is declared lost (the third): frame_error events are
        # rate-limited, so count them in the housekeeping counter rather than one event each.
        assert timeouts, "no frame_error reported for the timeouts"
        after = base.wait_for(
            lambda m: (
                _is(Kind.TELEMETRY, "comms", "hk")(m) and m.t_s >= lost.t_s and m.data["frame_errors"] > 0
            )
        )
        assert after.data["frame_errors"] >= 3
        restored = base.event("board_link_restored", "comms")
        assert restored.t_s >= 6.0

        stuck = base.wait_for(
            lambda m: _is(Kind.EVENT, "simulator", "fault_injected")(m) and m.data["board"] == "power",
            what="fault_injected on power",
        )
        assert stuck.t_s == 8.0
        assert stuck.data["mission_time_s"] == 8.0
        held = stuck.data["details"]["held"]
        before = [_hk_after(base, "power", t).data["battery_soc"] for t in (6.0, 7.0)]
        assert before[0] != before[1] != held
        during = [_hk_after(base, "power", t) for t in (8.0, 9.0, 10.0, 11.0)]
        assert [m.data["battery_soc"] for m in during] == [held] * 4, [m.t_s for m in during]
        cleared = base.wait_for(
            lambda m: _is(Kind.EVENT, "simulator", "fault_cleared")(m) and m.data["board"] == "power",
            what="fault_cleared on power",
        )
        assert cleared.t_s == 12.0
        after = [_hk_after(base, "power", t).data["battery_soc"] for t in (12.0, 13.0)]
        assert held not in after
        assert after[0] != after[1]

    def test_faults_by_command_take_effect_and_bad_ones_are_rejected(self, start_base, run_dir: Path) -> None:
        base = _start_with_scenario(start_base, run_dir, "")
        _hk_after(base, "reactor", 1.0)

        where = ("--deployment", str(base.path), "--run-dir", str(run_dir))

        def fsw(*words: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "fsw.cli", *words, *where],
                capture_output=True,
                text=True,
                timeout=WAIT_S,
                check=False,
            )

        done = fsw("inject", "reactor", "converter_failure")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "takes effect at frame" in done.stdout
        injected = base.event("fault_injected", "simulator")
        assert (injected.data["kind"], injected.data["origin"]) == ("converter_failure", "command")
        hk = base.wait_for(
            lambda m: _is(Kind.TELEMETRY, "reactor", "hk")(m) and m.t_s >= injected.t_s,
            what="reactor housekeeping after the fault",
        )
        assert hk.data["converter_ok"] is False

        listing = fsw("faults", "--json")
        assert listing.returncode == 0, listing.stderr
        active = json.loads(listing.stdout)["result"]["active"]
        assert [(f["board"], f["kind"]) for f in active] == [("reactor", "converter_failure")]

        refused = fsw("inject", "reactor", "converter_failure")
        assert refused.returncode == 1
        assert "already active" in refused.stdout

        unused = {"actuator": "", "value": 0.0, "sigma": 0.0, "fraction": 0.0, "seed": 0}
        outcome = base.client.call(
            "simulator", "inject_fault", {"board": "power", "kind": "stuck", "channel": "soc", **unused}
        )
        assert outcome.status == "rejected", outcome
        assert "no channel 'soc'" in outcome.reason
        outcome = base.client.call(
            "simulator", "inject_fault", {"board": "power", "kind": "melt", "channel": "", **unused}
        )
        assert outcome.status == "rejected", outcome
        assert "kind='melt'" in outcome.reason
        bad_cli = fsw("inject", "power", "stuck", "channel=soc")
        assert bad_cli.returncode == 2
        assert "no channel 'soc'" in bad_cli.stderr

        clear = clear_command_args("reactor", "converter_failure")
        outcome = base.client.call("simulator", "clear_fault", clear)
        assert outcome.ok, outcome
        cleared = base.event("fault_cleared", "simulator")
        hk = base.wait_for(
            lambda m: _is(Kind.TELEMETRY, "reactor", "hk")(m) and m.t_s >= cleared.t_s,
            what="reactor housekeeping after the clearing",
        )
        assert hk.data["converter_ok"] is True


DRILL = """
[[fault]]
at = "5s"
board = "power"
kind = "noisy"
channel = "bus_voltage_v"
sigma = 0.5
[[fault]]
at = "10s"
until = "40s"
board = "power"
kind = "stuck"
channel = "battery_soc"
[[fault]]
at = "20s"
until = "22s"
board = "thermal"
kind = "silent"
[[fault]]
at = "30s"
board = "reactor"
kind = "converter_failure"
[[fault]]
at = "45s"
board = "power"
kind = "offset"
channel = "bus_voltage_v"
value = -20.0
"""


def _seeded_run(run_dir: Path, tag: str) -> tuple[dict, list[dict]]:
    scenario = run_dir / "drill.toml"
    scenario.write_text(DRILL, encoding="utf-8")
    path = run_dir / f"{tag}.toml"
    path.write_text(
        deployment_text(f'[processes.simulator.params]\nscenario = "{scenario}"\n'), encoding="utf-8"
    )
    events = run_dir / f"{tag}-events.jsonl"
    command = [sys.executable, "-m", "fsw.cli", "up", str(path), "--run-dir", str(run_dir / "run")]
    command += ["--speed", "max", "--duration", "1min", "--seed", "7", "--json", "--events-out", str(events)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    records = []
    for line in events.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("seq")
        record["data"].pop("pid", None)
        records.append(record)
    return json.loads(out.stdout), records


class TestReproducible:
    def test_a_seeded_run_with_a_scenario_has_the_same_event_history(self, run_dir: Path) -> None:
        first, first_events = _seeded_run(run_dir, "a")
        second, second_events = _seeded_run(run_dir, "b")
        assert first["event_digest"] == second["event_digest"]

        def lines(records: list[dict]) -> list[str]:
            return sorted(json.dumps(r, sort_keys=True) for r in records)

        assert lines(first_events) == lines(second_events)
        faults = [
            (r["t"], r["data"]["board"], r["data"]["kind"])
            for r in first_events
            if r["name"] in ("fault_injected", "fault_cleared")
        ]
        assert faults == [
            (5.0, "power", "noisy"),
            (10.0, "power", "stuck"),
            (20.0, "thermal", "silent"),
            (22.0, "thermal", "silent"),
            (30.0, "reactor", "converter_failure"),
            (40.0, "power", "stuck"),
            (45.0, "power", "offset"),
        ]
        thermal_errors = [
            r["t"] for r in first_events if r["src"] == "thermal" and r["name"] == "frame_error"
        ]
        assert thermal_errors == [20.0, 21.0]
        assert any(r["name"] == "load_shed" and r["t"] >= 45.0 for r in first_events), "bus 20 V low: shed"
