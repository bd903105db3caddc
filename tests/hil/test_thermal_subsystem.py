"""The thermal subsystem: thermostats and the survival mode machine, alone, in a closed loop
with the simulated board, over a real board link, and in a running base.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from fsw.deployment import parse
from fsw.errors import CommandRejected, ConfigError
from fsw.messages import Kind, Message
from fsw.process import Frame
from fsw.run import RunOptions
from hil.board_server import ServingThread, TcpBoardServer
from hil.physics import World
from hil.testing import HilBase, merge_toml
from subsystems.deployment import DEFAULT_DEPLOYMENT
from subsystems.thermal import (
    NODES,
    NOMINAL,
    OPERATING_BANDS_C,
    SURVIVAL,
    SURVIVAL_BANDS_C,
    ThermalControl,
    ThermalProcess,
    read_params,
)

EXIT_S = 600.0


def power_hk(mode: str, t_s: float) -> Message:
    return Message(Kind.TELEMETRY, "power", "hk", t_s, 0, {"mode": mode})


# --- the control law alone ---------------------------------------------------------------


def test_thermostat_switches_full_below_the_band_off_above_and_holds_inside() -> None:
    control = ThermalControl()
    low, high = OPERATING_BANDS_C["battery"]
    assert control.thermostat({"battery": low - 0.1, "avionics": 0.0, "habitat": 20.0}) == {"battery": 1.0}
    control.commanded("battery", 1.0)
    assert control.thermostat({"battery": (low + high) / 2, "avionics": 0.0, "habitat": 20.0}) == {}
    assert control.thermostat({"battery": high + 0.1, "avionics": 0.0, "habitat": 20.0}) == {"battery": 0.0}
    # A reading that is not a number changes nothing.
    assert control.thermostat({"battery": float("nan"), "avionics": 0.0, "habitat": 20.0}) == {}
    with pytest.raises(CommandRejected, match="below"):
        control.set_band("habitat", 20.0, 20.0)
    control.set_band("habitat", 21.0, 22.0)
    assert control.thermostat({"battery": 7.0, "avionics": 0.0, "habitat": 20.5}) == {"habitat": 1.0}


def test_survival_follows_power_shedding_and_returns_after_the_hold_time() -> None:
    control = ThermalControl(survival_exit_s=EXIT_S)
    assert control.on_power_mode("NOMINAL", 0.0) is None
    assert control.on_power_mode("ALARM", 10.0) is None
    assert control.on_power_mode("SHEDDING", 20.0) == (NOMINAL, SURVIVAL)
    assert control.cause == "power"
    assert control.band("battery") == SURVIVAL_BANDS_C["battery"]
    assert control.on_power_mode("HARD_CUT", 30.0) is None
    # Back to ALARM, but shedding again before the hold time: the hold starts over.
    assert control.on_power_mode("ALARM", 100.0) is None
    assert control.on_power_mode("ALARM", 100.0 + EXIT_S - 1.0) is None
    assert control.on_power_mode("SHEDDING", 100.0 + EXIT_S - 0.5) is None
    assert control.on_power_mode("NOMINAL", 1000.0) is None
    assert control.on_power_mode("ALARM", 1000.0 + EXIT_S - 1.0) is None
    assert control.on_power_mode("NOMINAL", 1000.0 + EXIT_S) == (SURVIVAL, NOMINAL)
    assert control.cause == ""
    assert control.band("battery") == OPERATING_BANDS_C["battery"]
    assert control.on_power_mode("BOGUS", 5000.0) is None


def test_a_commanded_survival_stays_and_nominal_is_refused_while_power_sheds() -> None:
    control = ThermalControl(survival_exit_s=EXIT_S)
    assert control.command_mode(SURVIVAL) == (NOMINAL, SURVIVAL)
    assert control.cause == "command"
    control.on_power_mode("NOMINAL", 0.0)
    assert control.on_power_mode("NOMINAL", 10 * EXIT_S) is None  # commanded: no autonomous exit
    assert control.command_mode(NOMINAL) == (SURVIVAL, NOMINAL)
    control.on_power_mode("SHEDDING", 20 * EXIT_S)
    with pytest.raises(CommandRejected, match="power is SHEDDING"):
        control.command_mode(NOMINAL)
    control.autonomous = False
    assert control.command_mode(NOMINAL) == (SURVIVAL, NOMINAL)
    assert control.on_power_mode("SHEDDING", 21 * EXIT_S) is None  # not autonomous: ignored
    assert control.mode == NOMINAL


def test_parameters_are_checked() -> None:
    assert read_params({}) == {"survival_exit_s": 600.0}
    assert read_params({"survival_exit_s": 60}) == {"survival_exit_s": 60.0}
    for params, match in (
        ({"survival_exit_s": -1.0}, "survival_exit_s"),
        ({"survival_exit_s": "10"}, "survival_exit_s"),
        ({"exit_s": 10.0}, "exit_s"),
    ):
        with pytest.raises(ConfigError, match=rf"\[processes.thermal.params\].*{match}"):
            read_params(params)


# --- closed loop with the simulated board --------------------------------------------------


def closed_loop(days: float, *, survival: bool, frame_s: float = 300.0) -> dict[str, tuple[float, float]]:
    """(min, max) per node after the first day of a run of the control law on a world."""
    world = World(seed=3, frame_period_s=frame_s)
    control = ThermalControl()
    if survival:
        control.command_mode(SURVIVAL)
        world.power.command("load_t1", False)  # life support shed: no habitat heat
    seen = {n: (float("inf"), float("-inf")) for n in NODES}
    for frame in range(1, round(days * 86_400.0 / frame_s) + 1):
        world.advance_to(frame)
        temps = world.thermal.temperatures_c()
        for node, duty in control.thermostat(temps).items():
            world.thermal.command(f"heater_{node}", duty)
            control.commanded(node, duty)
        if frame * frame_s > 86_400.0:
            seen = {n: (min(lo, temps[n]), max(hi, temps[n])) for n, (lo, hi) in seen.items()}
    return seen


def test_the_thermostats_keep_every_node_in_its_operating_range_through_a_dark_spell() -> None:
    # Seed 3: a month with a dark spell of days (sink 150 K, no sun) and the habitat on.
    seen = closed_loop(30.0, survival=False)
    for node, (low_c, high_c) in (
        ("battery", (0.0, 40.0)),
        ("avionics", (-20.0, 50.0)),
        ("habitat", (18.0, 24.0)),
    ):
        assert seen[node][0] >= low_c, node
        assert seen[node][1] <= high_c, node
    assert seen["radiator"][0] < -60.0  # it did get dark


def test_survival_bands_keep_the_hardware_alive_with_life_support_shed() -> None:
    seen = closed_loop(30.0, survival=True)
    assert seen["battery"][0] >= 1.5  # still chargeable
    assert seen["avionics"][0] >= -40.0
    assert seen["habitat"][0] >= 1.5  # above freezing


# --- the process over a real board link ------------------------------------------------------


@contextlib.contextmanager
def served_thermal_board(world: World) -> Iterator[tuple[str, int]]:
    """Serve ``world.thermal`` over TCP in a thread (SYNC advances the world); yield the address."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TcpBoardServer(world.thermal, on_sync=lambda frame, _t_s: world.advance_to(frame))
        )
        stack.enter_context(ServingThread([server]).start())
        yield server.address


def thermal_process(host: str, port: int) -> ThermalProcess:
    text = merge_toml(
        DEFAULT_DEPLOYMENT,
        f'[processes.thermal]\nboard = {{ backend = "tcp", host = "{host}", port = {port} }}\n'
        "[processes.thermal.params]\nsurvival_exit_s = 600.0\n",
    )
    deployment = parse(text)
    return ThermalProcess(deployment, deployment.process("thermal"), RunOptions(run_id="thermal-test"))


def test_the_process_drives_heaters_counts_limit_transitions_and_keeps_statistics() -> None:
    frame_s = 60.0
    world = World(seed=3, frame_period_s=frame_s, params={"thermal": {"initial_battery_temp_c": -3.0}})
    with served_thermal_board(world) as (host, port):
        process = thermal_process(host, port)
        process.setup()
        try:
            assert process.board is not None
            board = process.board
            energy_j = 0.0
            for number in range(1, 241):  # four hours
                t_s = number * frame_s
                board.sync(number, t_s)
                if number == 120:  # power sheds: the next frame runs the survival bands
                    process.on_message(power_hk("SHEDDING", t_s))
                process.on_frame(Frame(number, t_s, frame_s))
                energy_j += float(world.thermal.read()["heater_power_w"]) * frame_s
                if number == 1:
                    assert process.control.duty["battery"] == 1.0  # cold battery: heater on
                    assert process.limit_state["battery"] == "yellow"
            stats = process.statistics()
            hk = process.housekeeping()
        finally:
            process.teardown()
    assert process.mode == SURVIVAL
    assert (hk["mode"], hk["survival_cause"], hk["power_mode"]) == (SURVIVAL, "power", "SHEDDING")
    assert set(hk) >= {f"{n}_temp_c" for n in NODES}
    # The battery left green once (cold at start) and came back: one violation, not one per frame.
    assert stats["limit_violations"] >= 1
    assert stats["limit_violations"] < 5
    assert process.limit_state["battery"] == "green"
    assert stats["battery_temp_min_c"] == pytest.approx(-3.0, abs=0.1)
    assert stats["battery_temp_peak_c"] > 2.0
    assert stats["survival_entries"] == 1
    assert stats["survival_time_h"] == pytest.approx(2.0, abs=0.05)
    # Heater energy: the board's draw over the run (the last frame's draw is not yet spent).
    last_w = float(world.thermal.read()["heater_power_w"])
    assert stats["heater_energy_kwh"] == pytest.approx((energy_j - last_w * frame_s) / 3.6e6, abs=2e-3)
    assert stats["heater_energy_kwh"] > 0.4  # at least an hour of the battery's 400 W


# --- a running base ---------------------------------------------------------------------------


def test_a_base_whose_power_sheds_puts_thermal_in_survival(hil_base: Callable[..., HilBase]) -> None:
    # A battery at 12 % (depth of discharge 0.88): power sheds from its first cycle.
    deployment = merge_toml(DEFAULT_DEPLOYMENT, "[processes.simulator.params.power]\ninitial_soc = 0.12\n")
    # A long duration: the base must still run when the command below goes out (stopped at the end).
    base = hil_base(deployment, "--speed", "max", "--duration", "1h", "--seed", "1")
    changed = base.await_event("thermal_mode_changed", "thermal", include_history=True, timeout_s=30.0)
    assert changed.data["mode"] == SURVIVAL
    assert changed.data["cause"] == "power"
    base.await_telemetry("thermal", "survival_cause", "power", timeout_s=30.0, include_history=True)
    outcome = base.send_command("thermal", "set_mode", {"mode": NOMINAL})
    assert outcome.status == "rejected"
    assert "power is" in outcome.reason
