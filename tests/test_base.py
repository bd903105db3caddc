"""The spine end to end: real processes, real sockets, the embedded default base."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import zmq

from fsw.messages import Kind, Message
from tests.conftest import WAIT_S, RunningBase, alive, deployment_text

SUBSYSTEMS = ("power", "thermal", "comms", "reactor")


def is_hk(source: str):
    return lambda m: m.kind is Kind.TELEMETRY and m.source == source and m.name == "hk"


class TestTelemetry:
    """Telemetry from every subsystem reaches a subscriber outside the base."""

    def test_outside_program_with_only_pyzmq_and_msgpack_hears_every_subsystem(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        # What docs/bus.md tells an outside program to do, and nothing more.
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(base.deployment.bus.subscribe)
        sub.setsockopt(zmq.SUBSCRIBE, b"tlm.")
        heard: dict[str, dict] = {}
        try:
            while set(SUBSYSTEMS) - set(heard):
                assert sub.poll(int(WAIT_S * 1000)), f"heard only {sorted(heard)}"
                topic, body = sub.recv_multipart()
                envelope = msgpack.unpackb(body, raw=False)
                assert topic == f"tlm.{envelope['src']}.{envelope['name']}".encode()
                if envelope["name"] == "hk":
                    heard[envelope["src"]] = envelope["data"]
        finally:
            sub.close()
            context.term()
        assert heard["power"]["bus_voltage_v"] > 100.0
        assert 0.0 <= heard["power"]["battery_soc"] <= 1.0
        assert "battery_temp_c" in heard["thermal"]
        assert "dte_visible" in heard["comms"]
        assert heard["reactor"]["mode"] == "OFF"

    def test_topic_prefix_selects_one_source(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        base.bus.subscriber.setsockopt(zmq.UNSUBSCRIBE, b"tlm.")
        base.bus.subscribe(b"tlm.reactor.")
        sources = set()
        for _ in range(5):
            message = base.next_matching(lambda m: m.kind is Kind.TELEMETRY)
            sources.add(message.source)
        assert sources == {"reactor"}


class TestCommands:
    """Every command gets exactly one outcome: completed, rejected with a reason, or timed out."""

    def test_ping_is_accepted_then_completed(self, start_base) -> None:
        base: RunningBase = start_base()
        pids = base.wait_ready()
        for name in SUBSYSTEMS:
            outcome = base.client.call(name, "ping", timeout_s=5.0)
            assert outcome.stages == ["accepted", "completed"], outcome
            assert outcome.result["pid"] == pids[name]
        assert base.client.call("power", "noop").ok

    @pytest.mark.parametrize(
        ("target", "command", "args", "reason"),
        [
            (
                "power",
                "switch_load",
                {"tier": 9, "on": True},
                "power.switch_load: argument tier=9 is above its maximum 4",
            ),
            ("power", "switch_load", {"tier": 2}, "missing argument"),
            ("power", "explode", {}, "unknown command 'explode'"),
            ("rover", "ping", {}, "unknown target 'rover'"),
        ],
    )
    def test_bad_command_is_rejected_with_a_reason_naming_it(
        self, start_base, target, command, args, reason
    ) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        outcome = base.client.call(target, command, args, timeout_s=5.0)
        assert outcome.stages == ["rejected"]
        assert reason in outcome.reason
        base.event("command_rejected", source="bus")

    def test_target_that_refuses_rejects_it_itself(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        outcome = base.client.call("thermal", "set_setpoint", {"node": "battery", "low_c": 20, "high_c": 10})
        assert outcome.status == "rejected"
        assert "low_c 20.0 must be below high_c 10.0" in outcome.reason

    def test_command_to_a_frozen_process_times_out(self, start_base) -> None:
        base: RunningBase = start_base()
        pids = base.wait_ready()
        os.kill(pids["comms"], signal.SIGSTOP)
        try:
            outcome = base.client.call("comms", "ping", timeout_s=5.0)
        finally:
            os.kill(pids["comms"], signal.SIGCONT)
        assert outcome.stages == ["timed_out"]
        assert "did not answer within 0.5 s" in outcome.reason

    def test_command_changes_the_subsystem(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        assert base.client.call("power", "switch_load", {"tier": 4, "on": False}).ok
        hk = base.next_matching(lambda m: is_hk("power")(m) and m.data.get("tiers_on") is not None)
        hk = base.next_matching(is_hk("power"))
        assert hk.data["tiers_on"] & 0b1000 == 0


class TestCriticalCommands:
    """Critical commands execute only armed, once, within the arm window."""

    def test_unarmed_critical_command_is_rejected_and_armed_one_runs_once(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        unarmed = base.client.call("reactor", "trip_reset", timeout_s=5.0)
        assert unarmed.status == "rejected"
        assert "send `arm command=trip_reset` to reactor" in unarmed.reason
        base.event("critical_command_refused", source="reactor")
        armed = base.client.call("reactor", "arm", {"command": "trip_reset"}, timeout_s=5.0)
        assert armed.ok
        assert armed.result == {"armed": "trip_reset", "window_s": 30.0}
        assert base.client.call("reactor", "trip_reset", timeout_s=5.0).ok
        again = base.client.call("reactor", "trip_reset", timeout_s=5.0)
        assert again.status == "rejected"  # an arm is good for one execution

    def test_fsw_cmd_arm_sends_the_arm_then_the_command(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        cmd = [
            sys.executable,
            "-m",
            "fsw.cli",
            "cmd",
            "reactor",
            "trip_reset",
            "--run-dir",
            str(base.run_dir),
        ]
        plain = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S, check=False)
        assert plain.returncode == 1
        assert json.loads(plain.stdout)["status"] == "rejected"
        armed = subprocess.run([*cmd, "--arm"], capture_output=True, text=True, timeout=WAIT_S, check=False)
        assert armed.returncode == 0, armed.stdout
        assert json.loads(armed.stdout)["status"] == "completed"

    def test_arm_window_closes_and_non_critical_commands_cannot_be_armed(self, start_base) -> None:
        base: RunningBase = start_base("[bus]\narm_window_s = 1e-9\n")
        base.wait_ready()
        assert base.client.call("reactor", "arm", {"command": "trip_reset"}, timeout_s=5.0).ok
        late = base.client.call("reactor", "trip_reset", timeout_s=5.0)
        assert late.status == "rejected"
        not_critical = base.client.call("power", "arm", {"command": "switch_load"}, timeout_s=5.0)
        assert not_critical.status == "rejected"
        assert "'switch_load' is not a critical command of power" in not_critical.reason


class TestBoardTap:
    """A process's board traffic is telemetry unless its deployment turns the tap off."""

    def test_board_tap_off_publishes_no_board_samples(self, start_base) -> None:
        base: RunningBase = start_base("[processes.power]\nboard_tap = false\n")
        base.wait_ready()
        base.next_matching(lambda m: is_hk("power")(m) and m.data["frame"] >= 20, what="power hk")
        thermal = base.wait_for(
            lambda m: m.source == "thermal" and m.name == "board_sample", what="thermal board sample"
        )
        assert thermal.kind is Kind.TELEMETRY
        assert not any(m.source == "power" and m.name == "board_sample" for m in base.history)


class TestSupervision:
    """Crashed children restart; a stopped supervisor leaves nothing behind."""

    def test_kill_9_restarts_the_subsystem_and_its_telemetry_resumes(self, start_base) -> None:
        base: RunningBase = start_base()
        pids = base.wait_ready()
        os.kill(pids["thermal"], signal.SIGKILL)
        base.event("process_exited", source="supervisor")
        restarted = base.event("process_restarted", source="supervisor")
        assert restarted.data["process"] == "thermal"
        base.next_matching(
            lambda m: (
                m.kind is Kind.HEARTBEAT
                and m.source == "thermal"
                and m.data.get("pid") != pids["thermal"]
                and m.data.get("state") == "running"
            )
        )
        base.next_matching(is_hk("thermal"))
        status = base.status()
        thermal = next(p for p in status["processes"] if p["name"] == "thermal")
        assert thermal["restarts"] == 1
        assert thermal["state"] == "ready"

    def test_hung_process_is_killed_and_restarted(self, start_base) -> None:
        base: RunningBase = start_base("[processes.comms]\nrestart = { heartbeat_timeout_s = 1.0 }\n")
        pids = base.wait_ready()
        os.kill(pids["comms"], signal.SIGSTOP)
        hung = base.event("process_hung", source="supervisor")
        assert hung.data["process"] == "comms"
        assert hung.data["silent_s"] >= 1.0
        base.event("process_restarted", source="supervisor")
        assert not alive(pids["comms"])
        again = base.next_matching(
            lambda m: m.kind is Kind.HEARTBEAT and m.source == "comms" and m.data.get("state") == "running"
        )
        assert base.client.call("comms", "ping").result["pid"] == again.data["pid"] != pids["comms"]

    def test_restart_budget_is_enforced(self, start_base) -> None:
        base: RunningBase = start_base("[processes.comms]\nrestart = { max_restarts = 1 }\n")
        pids = base.wait_ready()
        os.kill(pids["comms"], signal.SIGKILL)
        base.event("process_restarted", source="supervisor")
        second = base.next_matching(
            lambda m: m.kind is Kind.HEARTBEAT and m.source == "comms" and m.data.get("state") == "running"
        )
        os.kill(int(second.data["pid"]), signal.SIGKILL)
        exhausted = base.event("restart_budget_exhausted", source="supervisor")
        assert exhausted.data["process"] == "comms"
        status = {p["name"]: p for p in base.status()["processes"]}
        assert status["comms"]["state"] == "failed"
        assert status["power"]["state"] == "ready"

    def test_sigterm_to_the_supervisor_leaves_no_process_behind(self, start_base) -> None:
        base: RunningBase = start_base()
        pids = base.wait_ready()
        assert base.stop() == 0
        assert [name for name, pid in pids.items() if alive(pid)] == []
        assert "process_killed" not in base.log(), "a child needed SIGKILL to stop"

    def test_status_shows_every_process(self, start_base, run_dir: Path) -> None:
        base: RunningBase = start_base()
        pids = base.wait_ready()
        out = subprocess.run(
            [sys.executable, "-m", "fsw.cli", "status", str(base.path), "--run-dir", str(run_dir), "--json"],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=True,
        )
        status = json.loads(out.stdout)
        assert {p["name"]: p["pid"] for p in status["processes"]} == pids


class TestMalformed:
    """Malformed frames are counted and reported; nothing stops."""

    def test_garbage_on_the_bus_and_the_command_port_is_survived(self, start_base) -> None:
        base: RunningBase = start_base()
        base.wait_ready()
        context = zmq.Context()
        pub = context.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        try:
            pub.connect(base.deployment.bus.publish)
            dealer.connect(base.deployment.bus.command)
            # Publish until a flight process reports it (the PUB may join late: keep sending).
            # Topics the subsystems listen to: their own heartbeat echo, power's housekeeping.
            junk = [
                [b"hb.power.hb", b"\xc1not msgpack"],
                [b"hb.power.hb"],
                [b"tlm.power.hk", msgpack.packb({"v": 1, "kind": "tlm"}), b"extra"],
                [b"hb.comms.hb", msgpack.packb([1, 2, 3])],
            ]

            def send_junk() -> None:
                for frames in junk:
                    pub.send_multipart(frames)

            send_junk()
            report = base.next_matching(
                lambda m: (send_junk() or True) and m.kind is Kind.EVENT and m.name == "malformed_frame",
                what="malformed_frame event",
            )
            assert report.data["count"] >= 1
            dealer.send(b"\x00garbage")
            assert dealer.poll(5000)
            reply = msgpack.unpackb(dealer.recv(), raw=False)
            assert reply["data"]["status"] == "rejected"
            assert "malformed command" in reply["data"]["reason"]
        finally:
            pub.close()
            dealer.close()
            context.term()
        for name in SUBSYSTEMS:
            assert base.client.call(name, "ping").ok
        hb = base.next_matching(lambda m: m.kind is Kind.HEARTBEAT and m.data.get("malformed", 0) > 0)
        assert hb.source in SUBSYSTEMS


def run_seeded(run_dir: Path, tag: str, seed: int) -> tuple[dict, list[str]]:
    path = run_dir / f"{tag}.toml"
    path.write_text(deployment_text(), encoding="utf-8")
    events = run_dir / f"{tag}-events.jsonl"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsw.cli",
            "up",
            str(path),
            "--run-dir",
            str(run_dir / "run"),
            "--speed",
            "max",
            "--duration",
            "2min",
            "--seed",
            str(seed),
            "--json",
            "--events-out",
            str(events),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(out.stdout)
    lines = []
    for line in events.read_text().splitlines():
        record = json.loads(line)
        record.pop("seq")
        record["data"].pop("pid", None)
        lines.append(json.dumps(record, sort_keys=True))
    return summary, sorted(lines)


class TestDeterminism:
    """Two simulated runs with the same seed give the same event history."""

    def test_same_seed_same_events(self, run_dir: Path) -> None:
        first, first_events = run_seeded(run_dir, "a", seed=11)
        second, second_events = run_seeded(run_dir, "b", seed=11)
        assert first["reason"] == "duration reached"
        assert first["frames"] == second["frames"] == 1200
        assert first_events == second_events
        assert first["event_digest"] == second["event_digest"]
        assert first["missed_frames"] == 0
        assert any('"name": "process_started"' in e for e in first_events)


class TestLockstep:
    """A participant that stops answering is reported and the clock goes on."""

    def test_frozen_participant_is_reported_late_and_frames_continue(self, start_base) -> None:
        base: RunningBase = start_base("[clock]\nframe_timeout_s = 0.5\n", "--speed", "max")
        pids = base.wait_ready()
        os.kill(pids["thermal"], signal.SIGSTOP)
        try:
            missed = base.event("participant_missed_frame", source="clock")
            assert missed.data["participant"] == "thermal"
            frame = missed.data["frame"]
            base.next_matching(
                lambda m: (
                    m.kind is Kind.TELEMETRY and m.source == "power" and m.data.get("frame", 0) > frame + 10
                )
            )
        finally:
            os.kill(pids["thermal"], signal.SIGCONT)
        base.next_matching(
            lambda m: (
                m.kind is Kind.EVENT
                and m.name == "participant_joined"
                and m.data.get("participant") == "thermal"
            )
        )


class TestLateness:
    """In real time, a process that misses its frames is reported late in telemetry."""

    def test_frozen_process_is_late_in_the_clock_telemetry(self, start_base) -> None:
        base: RunningBase = start_base()
        pids = base.wait_ready()
        os.kill(pids["power"], signal.SIGSTOP)
        try:
            hk = base.next_matching(
                lambda m: is_hk("clock")(m) and m.data["participants"]["power"]["late"] > 0,
                what="clock housekeeping with power late",
            )
        finally:
            os.kill(pids["power"], signal.SIGCONT)
        assert hk.data["participants"]["thermal"]["late"] == 0
        assert hk.data["late"] >= 1


class TestCli:
    """The command line says what it does."""

    def test_dict_json_lists_every_process(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "fsw.cli", "dict", "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=WAIT_S,
        )
        whole = json.loads(out.stdout)
        assert set(whole) == {"bus", "clock", "simulator", "spacelink", "protection", *SUBSYSTEMS}
        reactor = {c["name"]: c for c in whole["reactor"]["commands"]}
        assert reactor["set_rod_target"]["critical"] is True
        assert {"ping", "noop"} <= set(reactor)

    def test_up_help_names_every_option(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "fsw.cli", "up", "--help"],
            capture_output=True,
            text=True,
            check=True,
            timeout=WAIT_S,
        )
        for word in ("--speed", "--seed", "--duration", "30d", "max", "SIGTERM", "fsw status", "restart"):
            assert word in out.stdout

    def test_record_topics_needs_record(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "fsw.cli", "up", "--record-topics", "evt."],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
        assert out.returncode == 2
        assert "--record-topics needs --record DIR" in out.stderr

    def test_bad_deployment_file_is_a_clear_error(self, run_dir: Path) -> None:
        bad = run_dir / "bad.toml"
        bad.write_text("[clock]\nframe_period_s = -1\n")
        out = subprocess.run(
            [sys.executable, "-m", "fsw.cli", "up", str(bad)],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
        assert out.returncode == 2
        assert f"{bad}: [clock] frame_period_s must be positive" in out.stderr


_ = Message
