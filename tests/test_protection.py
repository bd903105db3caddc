"""The fault-protection process in a real base: boot, ground commands, sequences, persistence
across a kill -9 and a restart of the whole base, a damaged store, and configuration errors.

Bases run the default deployment in lockstep at ``--speed max`` with the recovery hold made
very long, so no autonomous recovery moves the mode while a test looks at it (the recovery
rules are the mode table's, tested in ``tests/test_modes.py``; real holds are exercised by
``tests/test_protection_scenarios.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from fsw.bus import CommandOutcome
from fsw.deployment import parse
from fsw.errors import ConfigError
from fsw.messages import Kind, Message
from fsw.monitors import load_monitors
from fsw.protection import FaultProtection
from fsw.run import RunOptions
from hil.faults import inject_args
from hil.testing import merge_toml
from subsystems.deployment import DEFAULT_DEPLOYMENT, LUNATION_DEPLOYMENT
from tests.conftest import RunningBase, deployment_text

#: No autonomous recovery while a test runs: the hold is longer than any test's mission time.
HOLD_OFF = """
[processes.protection.params]
recovery_hold_s = 1000000.0
"""
FAST = ("--speed", "max")

#: A sequence that runs until stopped: its second step waits ten days of mission time.
LONG_WAIT = """# Runs until stopped.
sequence long_wait
+0s    power  noop
+10d   power  noop
"""

#: Checked against the dictionaries at uplink, but its second step is refused by thermal.
BAD_SETPOINT = """sequence bad_setpoint
+0s   power    noop
+1s   thermal  set_setpoint node=battery low_c=20 high_c=10
+1s   power    noop
"""


def default_monitor_names() -> set[str]:
    path = resources.files("subsystems").joinpath("protection/monitors.toml")
    return {spec.name for spec in load_monitors(Path(str(path)))}


def protection_event(base: RunningBase, name: str, expected: Mapping[str, Any] | None = None) -> Message:
    """Event ``name`` from fault protection whose fields equal ``expected`` (heard or arriving)."""
    return base.await_event(name, "protection", expected)


def command(base: RunningBase, which: str, /, **args: Any) -> CommandOutcome:
    """A command to fault protection, and its outcome (whatever it is)."""
    return base.send_command("protection", which, args, timeout_s=10.0)


def ok(base: RunningBase, which: str, /, **args: Any) -> dict[str, Any]:
    """A command to fault protection that must complete; its result."""
    return dict(base.send_and_assert_command("protection", which, args, timeout_s=10.0).result)


def booted(base: RunningBase) -> Message:
    """Wait for BOOT -> NOMINAL (the loads are as the subsystems found them: no entry sequence)."""
    change = protection_event(base, "mode_changed", {"previous": "BOOT"})
    assert (change.data["mode"], change.data["by"]) == ("NOMINAL", "auto"), change.data
    return change


def soc_gauge_low(base: RunningBase) -> None:
    """A state-of-charge gauge reading 0.68 low: the battery_soc monitor goes red, SURVIVAL."""
    base.send_and_assert_command(
        "simulator", "inject_fault", inject_args("power", "offset", channel="battery_soc", value=-0.68)
    )
    protection_event(base, "monitor_changed", {"monitor": "battery_soc", "state": "red"})
    change = protection_event(base, "mode_changed", {"mode": "SURVIVAL"})
    assert (change.data["by"], change.data["cause"]) == ("auto", "monitor battery_soc")


def kill_twice(base: RunningBase, name: str) -> None:
    """kill -9 process ``name``, wait until it runs again, twice: the supervisor restarts it twice."""
    for _ in range(2):
        old = base.pids[name]
        base.kill(name)
        running = base.next_matching(
            lambda m, old=old: (
                m.kind is Kind.HEARTBEAT
                and m.source == name
                and m.data.get("pid") not in (None, old)
                and m.data.get("state") == "running"
            ),
            what=f"{name} running again",
        )
        base.pids[name] = int(running.data["pid"])


def protection_modes_after(base: RunningBase, t_s: float) -> list[str]:
    """Every mode fault protection entered after mission time ``t_s``."""
    return [m.data["mode"] for m in base.event_history("mode_changed", "protection") if m.t_s > t_s]


class TestBootAndModes:
    """Boot to NOMINAL, ground mode requests granted and refused with their reasons."""

    def test_boot_then_ground_safe_and_nominal_then_nominal_refused_over_a_red_monitor(
        self, start_base
    ) -> None:
        base: RunningBase = start_base(HOLD_OFF, *FAST)
        boot = booted(base)
        assert boot.data["cause"] == "boot"
        base.await_telemetry("protection", "mode", "NOMINAL", include_history=True)
        assert not base.event_history("sequence_started", "protection")  # booting commands nothing
        assert ok(base, "set_mode", mode="SAFE") == {"mode": "SAFE", "changed": True}
        change = protection_event(base, "mode_changed", {"mode": "SAFE"})
        assert change.data == {
            "severity": "warning",
            "previous": "NOMINAL",
            "mode": "SAFE",
            "cause": "ground command",
            "by": "ground",
        }
        protection_event(base, "sequence_started", {"sequence": "enter_safe", "by": "mode:SAFE"})
        assert ok(base, "set_mode", mode="SAFE") == {"mode": "SAFE", "changed": False}
        assert ok(base, "set_mode", mode="NOMINAL") == {"mode": "NOMINAL", "changed": True}
        protection_event(base, "mode_changed", {"previous": "SAFE", "mode": "NOMINAL", "by": "ground"})
        protection_event(base, "sequence_started", {"sequence": "enter_nominal", "by": "mode:NOMINAL"})
        protection_event(base, "sequence_completed", {"sequence": "enter_nominal"})  # loads back, one by one
        for tier in (2, 3, 4):
            base.await_event("load_switched", "power", {"tier": tier, "on": True})

        soc_gauge_low(base)
        refused = command(base, "set_mode", mode="NOMINAL")
        assert refused.status == "rejected"
        assert "red monitors stand: battery_soc" in refused.reason
        event = protection_event(base, "mode_request_refused", {"mode": "NOMINAL", "by": "ground"})
        assert "battery_soc" in event.data["reason"]
        hk = base.await_telemetry("protection", "red", lambda red: "battery_soc" in red)
        assert hk.data["mode"] == "SURVIVAL"
        assert hk.data["monitors_red"] >= 1
        assert command(base, "set_mode", mode="BOOT").status == "rejected"  # not a mode ground may ask for


class TestMonitorCommands:
    """Monitors listed, disabled only when armed, enabled again."""

    def test_disable_monitor_is_critical_and_a_disabled_monitor_does_not_respond(self, start_base) -> None:
        base: RunningBase = start_base(HOLD_OFF, *FAST)
        booted(base)
        monitors = ok(base, "list_monitors")["monitors"]
        assert set(monitors) == default_monitor_names()
        assert monitors["battery_soc"] == "green"

        unarmed = command(base, "disable_monitor", name="battery_soc")
        assert unarmed.status == "rejected"
        assert "send `arm command=disable_monitor` to protection" in unarmed.reason
        protection_event(base, "critical_command_refused")
        assert ok(base, "arm", command="disable_monitor")["armed"] == "disable_monitor"
        assert ok(base, "disable_monitor", name="battery_soc") == {
            "monitor": "battery_soc",
            "state": "disabled",
        }
        protection_event(base, "monitor_changed", {"monitor": "battery_soc", "state": "disabled"})
        assert ok(base, "list_monitors")["monitors"]["battery_soc"] == "disabled"
        base.await_telemetry("protection", "monitors_disabled", 1)

        # The gauge reads low, but the monitor is off: no response.
        base.send_and_assert_command(
            "simulator", "inject_fault", inject_args("power", "offset", channel="battery_soc", value=-0.68)
        )
        low = base.await_telemetry("power", "battery_soc", lambda soc: soc < 0.15)
        after = base.await_telemetry("protection", "mode", "NOMINAL")  # still NOMINAL after the low reading
        assert after.t_s >= low.t_s
        assert not [
            m for m in base.event_history("monitor_changed", "protection") if m.data["state"] == "red"
        ], "a disabled monitor went red"

        # Enabled again, it sees the low charge and responds.
        assert ok(base, "enable_monitor", name="battery_soc")["monitor"] == "battery_soc"
        protection_event(base, "monitor_changed", {"monitor": "battery_soc", "state": "red"})
        protection_event(base, "mode_changed", {"mode": "SURVIVAL"})
        unknown = command(base, "enable_monitor", name="battery_charge")
        assert unknown.status == "rejected"
        assert "no monitor 'battery_charge'" in unknown.reason
        assert ok(base, "rearm_monitor", name="battery_soc")["state"] == "red"  # rearm: not latched


class TestSequenceCommands:
    """Sequences listed, started, stopped and uplinked; a failing step aborts its sequence."""

    def test_start_stop_list_uplink_and_abort_on_a_failed_step(self, start_base) -> None:
        base: RunningBase = start_base(HOLD_OFF, *FAST)
        booted(base)
        listed = ok(base, "list_sequences")
        assert listed["loaded"]["enter_nominal"] == 3
        assert listed["loaded"]["comms_recovery"] == 2

        assert ok(base, "uplink_sequence", text=LONG_WAIT) == {"sequence": "long_wait", "steps": 2}
        protection_event(base, "sequence_uplinked", {"sequence": "long_wait", "steps": 2})
        assert ok(base, "start_sequence", name="long_wait") == {"sequence": "long_wait", "steps": 2}
        protection_event(base, "sequence_started", {"sequence": "long_wait", "by": "ground"})
        running = ok(base, "list_sequences")["running"]
        assert running["long_wait"]["by"] == "ground"
        again = command(base, "start_sequence", name="long_wait")
        assert (again.status, again.reason) == ("rejected", "long_wait is running")
        busy = command(base, "uplink_sequence", text=LONG_WAIT)
        assert "long_wait is running: stop it first" in busy.reason
        assert ok(base, "stop_sequence", name="long_wait") == {"sequence": "long_wait"}
        stopped = protection_event(base, "sequence_aborted", {"sequence": "long_wait"})
        assert stopped.data["reason"] == "stopped by command"
        assert "long_wait" not in ok(base, "list_sequences")["running"]
        not_running = command(base, "stop_sequence", name="long_wait")
        assert "'long_wait' is not running" in not_running.reason
        unknown = command(base, "start_sequence", name="shed_everything")
        assert unknown.status == "rejected"
        assert "no sequence 'shed_everything'" in unknown.reason

        bad = command(base, "uplink_sequence", text="sequence broken\n+0s power noop\n+5s power explode\n")
        assert bad.status == "rejected"
        assert "uplink:3: power explode: unknown command 'explode'" in bad.reason
        nameless = command(base, "uplink_sequence", text="+0s power noop\n")
        assert "no `sequence <name>` line" in nameless.reason
        assert "broken" not in ok(base, "list_sequences")["loaded"]

        ok(base, "uplink_sequence", text=BAD_SETPOINT)
        ok(base, "start_sequence", name="bad_setpoint")
        aborted = protection_event(base, "sequence_aborted", {"sequence": "bad_setpoint"})
        reason = aborted.data["reason"]
        assert reason.startswith("step 2 (line 3) thermal set_setpoint: "), reason
        assert "low_c 20.0 must be below high_c 10.0" in reason
        hk = base.await_telemetry("protection", "sequences_aborted", lambda n: n >= 2)
        assert hk.data["sequences_running"] == 0


class TestPersistence:
    """Mode, monitors, sequences and uplinks survive a kill -9 and a restart of the whole base."""

    def test_kill_9_resumes_the_mode_and_the_running_sequence_never_nominal_over_red(
        self, start_base
    ) -> None:
        base: RunningBase = start_base(HOLD_OFF, *FAST)
        booted(base)
        ok(base, "uplink_sequence", text=LONG_WAIT)
        ok(base, "start_sequence", name="long_wait")
        soc_gauge_low(base)
        base.await_telemetry("protection", "mode", "SURVIVAL")
        old_pid = base.pids["protection"]

        base.kill("protection")
        restarted = base.event("process_restarted", source="supervisor")
        assert restarted.data["process"] == "protection"
        resumed = protection_event(base, "protection_resumed")
        assert resumed.data["stored_mode"] == "SURVIVAL"
        assert resumed.data["mode"] == "SURVIVAL"
        assert "battery_soc" in resumed.data["red"].split(",")
        assert "long_wait" in resumed.data["sequences"].split(",")
        heartbeat = base.next_matching(
            lambda m: m.kind is Kind.HEARTBEAT and m.source == "protection" and m.data.get("pid") != old_pid
        )
        assert heartbeat.data["pid"] != old_pid
        # The gauge still reads low: red stands, the mode holds, nothing goes NOMINAL.
        hk = base.await_telemetry("protection", "mode")
        assert hk.data["mode"] == "SURVIVAL"
        assert "battery_soc" in hk.data["red"]
        base.next_matching(
            lambda m: m.kind is Kind.TELEMETRY and m.source == "protection" and m.t_s > resumed.t_s + 60.0,
            what="protection telemetry a minute after the resume",
        )
        assert base.await_telemetry("protection", "mode").data["mode"] == "SURVIVAL"
        assert protection_modes_after(base, resumed.t_s) == []
        sequences = ok(base, "list_sequences")
        assert "long_wait" in sequences["loaded"]  # the uplinked text came back from the store
        assert sequences["running"]["long_wait"]["by"] == "ground"

    def test_restart_of_the_whole_base_resumes_and_a_damaged_store_is_moved_aside(
        self, start_base, run_dir: Path
    ) -> None:
        # Real time: a simulated run starts its mission time at zero and sets an earlier
        # run's store aside; a real base resumes it. A short first look keeps the test quick.
        state_dir = run_dir / "keep"
        extra = HOLD_OFF + f'boot_s = 0.5\n\n[base]\nstate_dir = "{state_dir}"\n'
        first: RunningBase = start_base(extra)
        booted(first)
        ok(first, "uplink_sequence", text=LONG_WAIT)
        soc_gauge_low(first)
        kill_twice(first, "thermal")  # an event monitor red too: process_crashing
        protection_event(first, "monitor_changed", {"monitor": "process_crashing", "state": "red"})
        assert first.stop() == 0
        store = state_dir / "protection.db"
        assert store.exists()

        # Same state directory, the base started again: the simulator has no fault this time.
        second: RunningBase = start_base(extra)
        resumed = protection_event(second, "protection_resumed")
        assert (resumed.data["stored_mode"], resumed.data["mode"]) == ("SURVIVAL", "SURVIVAL")
        # The limit monitor resumes red until a sample says otherwise; the event monitor
        # starts green: the restarts it counted belong to the base that stopped.
        assert resumed.data["red"] == "battery_soc"
        green = protection_event(second, "monitor_changed", {"monitor": "battery_soc", "state": "green"})
        hk = second.await_telemetry("protection", "mode")
        assert hk.t_s >= green.t_s
        assert hk.data["mode"] == "SURVIVAL"  # the monitor is clear now; recovery waits for the hold
        assert "battery_soc" not in hk.data["red"]
        assert "long_wait" in ok(second, "list_sequences")["loaded"]
        assert not [
            m for m in second.event_history("mode_changed", "protection") if m.data["mode"] == "NOMINAL"
        ]
        assert second.stop() == 0

        # A damaged store: moved aside whole, a fresh one started, the base boots.
        garbage = b"this is not a SQLite database\x00" * 64
        store.write_bytes(garbage)
        for suffix in ("-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        others = {p.name for p in state_dir.iterdir() if not p.name.startswith("protection.db")}
        third: RunningBase = start_base(extra)
        damaged = protection_event(third, "protection_store_damaged")
        assert damaged.data["moved_to"] == "protection.db.damaged-1"
        assert (state_dir / "protection.db.damaged-1").read_bytes() == garbage
        booted(third)
        assert "long_wait" not in ok(third, "list_sequences")["loaded"]
        assert third.event_history("protection_resumed") == []
        assert others <= {p.name for p in state_dir.iterdir()}  # nothing else in the state directory went
        assert store.stat().st_size > 0  # the fresh store


# --- configuration ------------------------------------------------------------------------------

GOOD_MONITOR = """
[[monitor]]
name = "soc"
kind = "limit"
point = "power.battery_soc"
red_low = 0.1
"""


def load(tmp_path: Path, monitors: str = GOOD_MONITOR, params: str = "") -> FaultProtection:
    """Fault protection of the default base with ``monitors`` (file text) and extra ``params``."""
    (tmp_path / "monitors.toml").write_text(monitors, encoding="utf-8")
    layer = f'[processes.protection.params]\nmonitors = "monitors.toml"\n{params}'
    text = merge_toml(DEFAULT_DEPLOYMENT, layer)
    path = tmp_path / "base.toml"
    path.write_text(text, encoding="utf-8")
    deployment = parse(text, source=str(path), run_dir=tmp_path / "run")
    return FaultProtection(deployment, deployment.process("protection"), RunOptions(run_id="config-test"))


def test_the_default_deployment_loads_every_monitor_and_sequence(tmp_path: Path) -> None:
    deployment = parse(DEFAULT_DEPLOYMENT, source="default", run_dir=tmp_path)
    protection = FaultProtection(deployment, deployment.process("protection"), RunOptions(run_id="t"))
    assert {spec.name for spec in protection.specs} == default_monitor_names()
    assert set(protection.entry_sequences) == {"NOMINAL", "DEGRADED", "SAFE", "SURVIVAL", "EMERGENCY"}
    assert protection.store_path == tmp_path / "state" / "protection.db"


@pytest.mark.parametrize(
    ("monitors", "params", "message"),
    [
        (GOOD_MONITOR.replace("power.battery_soc", "rover.speed_mps"), "",
         "monitor 'soc': no process 'rover' in this deployment (rover.speed_mps)"),
        (GOOD_MONITOR.replace("power.battery_soc", "clock.ticks_per_day"), "",
         "monitor 'soc': clock has no telemetry point 'ticks_per_day'"),
        ("[[monitor]]\nname = 'lost'\nkind = 'event'\nevent = 'comms.board_link_lsot'\n", "",
         "monitor 'lost': comms has no event 'board_link_lsot'"),
        ("[[monitor]]\nname = 'lost'\nkind = 'event'\nevent = 'rover.stuck'\n", "",
         "monitor 'lost': no process 'rover' in this deployment"),
        (GOOD_MONITOR + 'response = { sequence = "shed_everything" }\n', "",
         "monitor 'soc': response sequence 'shed_everything' is not in"),
        (GOOD_MONITOR + 'response = { sequence = "shed_everything" }\n', 'sequences = ""\n',
         "response sequence 'shed_everything', but [processes.protection.params] names no sequences"),
        (GOOD_MONITOR + 'response = { mode = "PANIC" }\n', "",
         "monitor 'soc': response mode must be one of NOMINAL, DEGRADED, SAFE, SURVIVAL, EMERGENCY"),
        (GOOD_MONITOR, "entry_sequences = { BOGUS = \"enter_safe\" }\n",
         "[processes.protection.params.entry_sequences] 'BOGUS' is not a mode"),
        (GOOD_MONITOR, "entry_sequences = { SAFE = \"enter_bunker\" }\n",
         "[processes.protection.params.entry_sequences] SAFE = 'enter_bunker': no such sequence"),
        (GOOD_MONITOR, "recovery_hold_s = -5.0\n", "recovery_hold_s"),
        (GOOD_MONITOR.replace("red_low", "red_lo"), "",
         "monitors.toml: monitor 'soc': unknown key(s) red_lo"),
    ],
)  # fmt: skip
def test_bad_protection_configuration_is_a_config_error_naming_it(
    tmp_path: Path, monitors: str, params: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, monitors, params)
    assert message in str(info.value)


def test_a_missing_monitors_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    deployment_text = merge_toml(
        DEFAULT_DEPLOYMENT, '[processes.protection.params]\nmonitors = "nowhere.toml"\n'
    )
    path = tmp_path / "base.toml"
    deployment = parse(deployment_text, source=str(path), run_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"cannot read monitors file .*nowhere\.toml"):
        FaultProtection(deployment, deployment.process("protection"), RunOptions(run_id="t"))


class TestHealth:
    """Supervisor restarts are inputs: a process restarted twice within 10 minutes escalates to SAFE."""

    def test_a_subsystem_killed_twice_escalates_to_safe_and_the_monitor_holds_its_window(
        self, run_dir: Path
    ) -> None:
        # Lunation (1 s frames): past the first 600 s of mission time quickly, where an event
        # stamped with the wrong mission time would clear at once.
        base = RunningBase(deployment_text(HOLD_OFF, base=LUNATION_DEPLOYMENT), run_dir, FAST)
        try:
            base.start()
            base.await_telemetry("power", "frame", lambda frame: frame > 700)
            kill_twice(base, "thermal")
            red = protection_event(base, "monitor_changed", {"monitor": "process_crashing", "state": "red"})
            assert red.data["respond"] is True
            assert "process=thermal" in red.data["cause"]
            change = protection_event(base, "mode_changed", {"mode": "SAFE"})
            assert change.data["cause"] == "monitor process_crashing"
            assert change.t_s > 700.0
            green = protection_event(
                base, "monitor_changed", {"monitor": "process_crashing", "state": "green"}
            )
            assert green.t_s - red.t_s >= 600.0  # clear_after_s, counted from the last restart
        finally:
            base.stop()
