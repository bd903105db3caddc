"""Reactor supervision against the simulated reactor: start-up, load following, setbacks, trips.

Most tests close the loop between the supervision logic (:class:`Supervisor`) and the real
board model, frame by frame, with no bus in between; the last one runs a whole base.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest

from fsw.errors import CommandRejected, ConfigError
from hil.physics.environment import Illumination
from hil.physics.model import Coupling
from hil.physics.reactor import ReactorModel
from hil.testing import HilBase, merge_toml, within_range
from subsystems.deployment import DEFAULT_DEPLOYMENT
from subsystems.reactor import Mode, Reading, Settings, Supervisor

ENVIRONMENT = Illumination(random.Random(0)).environment(0.0)
RATED_ELECTRIC_W = 9795.0


class Loop:
    """The supervision logic on the reactor model, one control cycle per frame."""

    def __init__(self, settings: Settings | None = None, frame_s: float = 1.0, **board: Any) -> None:
        self.model = ReactorModel(**board)
        self.coupling = Coupling()
        self.supervisor = Supervisor(settings or Settings())
        self.frame_s = frame_s
        self.t_s = 0.0
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.model.heartbeat()
        self._apply(self.supervisor.boot(Reading.from_values(self.model.read()), 0.0))

    def _apply(self, actions: Any) -> None:
        for actuator, value in actions.commands:
            self.model.command(actuator, value)
        self.events += [(self.t_s, name, data) for name, data in actions.events]

    def command(self, name: str, *args: Any) -> dict[str, Any]:
        result: dict[str, Any] = getattr(self.supervisor, f"command_{name}")(*args)
        self._apply(self.supervisor.take_actions())
        return result

    def run(self, seconds: float, each: Callable[[Loop], None] | None = None) -> None:
        for _ in range(round(seconds / self.frame_s)):
            self.t_s += self.frame_s
            self.model.heartbeat()
            self.model.step(self.frame_s, dataclasses.replace(ENVIRONMENT, time_s=self.t_s), self.coupling)
            self.model.drain_events()
            self._apply(self.supervisor.cycle(Reading.from_values(self.model.read()), self.t_s))
            if each is not None:
                each(self)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for _, event, data in self.events if event == name]


def test_startup_from_cold_reaches_power_within_the_alarm_levels() -> None:
    loop = Loop()
    assert loop.supervisor.mode is Mode.OFF
    loop.command("startup")
    peaks = {"power_w": 0.0, "fuel_c": -100.0}

    def track(lp: Loop) -> None:
        peaks["power_w"] = max(peaks["power_w"], lp.model.fission_power_w)
        peaks["fuel_c"] = max(peaks["fuel_c"], lp.model.fuel_temp_c)

    loop.run(3 * 3600.0, track)
    modes = [data["mode"] for data in loop.named("reactor_mode_changed")]
    assert modes == ["OFF", "STARTUP", "POWER"]
    assert 790.0 < loop.model.fuel_temp_c < 810.0
    assert peaks["power_w"] < 1.05 * 40_000.0  # under the power alarm
    assert peaks["fuel_c"] < 820.0  # under the fuel alarm
    assert not loop.model.tripped
    assert not loop.named("reactor_setback")
    assert {data["quantity"] for data in loop.named("reactor_alarm")} <= {"period"}  # the fast drive
    assert loop.supervisor.totals.startups == 1
    assert loop.supervisor.totals.power_hours > 0.5


def test_a_reactor_found_at_power_is_recognised_and_follows_load_by_feedback() -> None:
    loop = Loop(start="power")
    assert loop.supervisor.mode is Mode.POWER
    assert loop.supervisor.rod_target == loop.model.rod_position
    assert not loop.supervisor.manual
    extremes = {"fuel_lo": 1e9, "fuel_hi": -1e9, "power": 0.0}

    def track(lp: Loop) -> None:
        extremes["fuel_lo"] = min(extremes["fuel_lo"], lp.model.fuel_temp_c)
        extremes["fuel_hi"] = max(extremes["fuel_hi"], lp.model.fuel_temp_c)
        extremes["power"] = max(extremes["power"], lp.model.fission_power_w)

    for demand_w in (RATED_ELECTRIC_W, 2000.0, RATED_ELECTRIC_W, 0.0, 6000.0):
        loop.coupling.reactor_demand_w = demand_w
        loop.run(3 * 3600.0, track)
        assert loop.model.electric_power_w == pytest.approx(demand_w, rel=0.01, abs=1.0)
        assert abs(loop.supervisor.fuel_filtered_c - 800.0) < 10.0
    assert extremes["fuel_lo"] > 780.0
    assert extremes["fuel_hi"] < 820.0
    assert extremes["power"] < 1.05 * 40_000.0
    assert not loop.named("reactor_alarm")
    assert not loop.model.tripped
    assert loop.supervisor.mode is Mode.POWER


def test_shutdown_drives_the_rod_in_and_ends_off() -> None:
    loop = Loop(start="power")
    loop.command("shutdown")
    assert loop.supervisor.mode is Mode.SHUTDOWN
    loop.run(600.0)
    assert loop.supervisor.mode is Mode.OFF
    assert loop.model.rod_position == 0.0
    assert loop.model.fission_power_w < 0.01 * 40_000.0
    assert not loop.model.tripped


def test_scram_trips_and_trip_reset_brings_the_reactor_off() -> None:
    loop = Loop(start="power")
    loop.command("scram")
    loop.run(2.0)
    assert loop.supervisor.mode is Mode.TRIPPED
    assert loop.model.rod_position == 0.0
    with pytest.raises(CommandRejected, match="reset the trip"):
        loop.command("set_rod_target", 0.3)
    with pytest.raises(CommandRejected, match="reset the trip"):
        loop.command("startup")
    assert loop.command("trip_reset") == {"reset": True}
    loop.run(600.0)
    modes = [data["mode"] for data in loop.named("reactor_mode_changed")]
    assert modes[-3:] == ["TRIPPED", "SHUTDOWN", "OFF"]
    assert loop.supervisor.totals.trips == 1


def test_losing_half_the_converters_sets_back_instead_of_tripping() -> None:
    loop = Loop(start="power")
    loop.coupling.reactor_demand_w = RATED_ELECTRIC_W
    loop.run(60.0)
    loop.model.fail_converters(2)
    loop.run(2 * 3600.0)
    assert not loop.model.tripped
    assert len(loop.named("reactor_setback")) >= 1
    assert "converter" in loop.supervisor.alarms
    assert loop.model.electric_power_w == pytest.approx(0.5 * RATED_ELECTRIC_W, rel=0.03)


def test_failed_heat_pipes_raise_their_alarm_and_the_core_follows() -> None:
    loop = Loop(start="power")
    loop.run(10.0)
    loop.model.fail_heat_pipes(3)
    loop.run(3600.0)
    assert "heat_pipes" in loop.supervisor.alarms
    assert not loop.model.tripped
    assert loop.supervisor.mode is Mode.POWER


def test_a_stuck_rod_raises_the_rod_drive_alarm() -> None:
    loop = Loop(start="power")
    loop.model.stick_rod(True)
    loop.command("set_rod_target", loop.model.rod_position - 0.01)
    assert loop.supervisor.manual
    loop.run(10.0)
    (alarm,) = [d for d in loop.named("reactor_alarm") if d["quantity"] == "rod_drive"]
    assert alarm["active"] is True
    loop.model.stick_rod(False)
    loop.run(10.0)
    assert "rod_drive" not in loop.supervisor.alarms


def test_withdrawal_is_refused_under_a_short_period() -> None:
    loop = Loop(start="critical")
    loop.model.insert_reactivity(0.30)  # a 17 s period
    loop.run(30.0)
    assert loop.supervisor.withdrawal_inhibit
    with pytest.raises(CommandRejected, match="withdrawal inhibited"):
        loop.command("set_rod_target", 0.9)
    loop.command("set_rod_target", 0.0)  # insertion is always allowed


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alarm_power_pct": 109.0}, "alarm_power_pct must be in"),
        ({"trim_step": 0.5}, r"trim_step must be in \(0, 0.1\]"),
        ({"fuel_setpoint_c": "hot"}, "fuel_setpoint_c must be a number"),
        ({"startup_power_limit_pct": 106.0}, "startup_power_limit_pct must be in"),
        ({"alarm_power": 100.0}, "has no parameter 'alarm_power'"),
    ],
)
def test_bad_parameters_are_config_errors_naming_the_key(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[processes\.reactor\.params\] {message}"):
        Settings.from_params(params, "[processes.reactor.params]")


def test_a_base_started_at_power_runs_shuts_down_and_reports(hil_base: Callable[..., HilBase]) -> None:
    deployment = merge_toml(DEFAULT_DEPLOYMENT, '[processes.simulator.params.reactor]\nstart = "power"\n')
    # Long enough that the base still runs when the shutdown goes out, under any load.
    base = hil_base(deployment, "--speed", "max", "--duration", "15min", "--seed", "2")
    base.await_telemetry("reactor", "mode", "POWER")
    # Load following moves the fuel a few kelvin (810 C at the first load step), under the 820 C alarm.
    base.assert_telemetry("reactor", "fuel_temp_c", within_range(780.0, 820.0))
    base.assert_telemetry("reactor", "electric_power_w", within_range(1000.0, 10_000.0))
    base.send_and_assert_command("reactor", "shutdown")
    base.await_telemetry("reactor", "mode", "SHUTDOWN")
    off = base.await_telemetry("reactor", "mode", "OFF", timeout_s=60.0)
    assert off.data["rod_position"] == 0.0
    assert off.data["fission_power_w"] < 400.0
    stats = base.await_statistics("reactor", timeout_s=60.0)
    assert stats["trips"] == 0
    assert 799.0 < stats["fuel_temp_peak_c"] < 820.0  # load following moves the fuel, under the alarm
    assert 0.0 < stats["hours_at_power"] < off.t_s / 3600.0
    assert stats["electric_energy_kwh"] > 0.0
