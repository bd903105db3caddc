"""The ground segment end to end: a real base, its simulated space link, a real station.

One base and one station serve the whole module (starting them is most of its time):
the base runs the default deployment in real time with its radio always in view of the
relay orbiter (so the link is up), comms on 10 Hz cycles, and a light time of 50 ms
each way on the simulated space link; the station (``fsw ground station``, its own
process) reaches the base through that link with the keys the base made at start. Every
wait is a handshake (a reply, a verification, a message), never a sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from fsw.cli import main
from ground.archive import Archive
from ground.client import Station, Subscription
from ground.procedure import Procedure
from hil.testing import HilBase
from tests.conftest import WAIT_S, deployment_text

LIGHT_TIME_S = 0.05
REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PROCEDURE = REPO / "examples" / "procedures" / "check_power.py"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Ground:
    base: HilBase
    station: subprocess.Popen[bytes]
    run_dir: Path
    archive: Path
    api: str
    pub: str
    link_tcp: str
    log: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "FSW_GROUND_API": self.api, "FSW_GROUND_PUB": self.pub}

    def fsw(self, *args: str, timeout_s: float = WAIT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fsw.cli", "ground", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=self.env(),
            cwd=self.run_dir,
        )

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
        """``fsw ground ARGS`` in this process (quicker than a child; the same code)."""
        capsys.readouterr()
        saved = {name: os.environ.get(name) for name in ("FSW_GROUND_API", "FSW_GROUND_PUB")}
        os.environ.update(FSW_GROUND_API=self.api, FSW_GROUND_PUB=self.pub)
        try:
            code = main(["ground", *args])
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    def client(self) -> Station:
        return Station(self.api, timeout_s=WAIT_S)


def latest_of(client: Station, sources: set[str]) -> dict[str, Any]:
    """The station's newest housekeeping once every one of ``sources`` has some."""
    deadline_s = time.monotonic() + WAIT_S
    counter = client.counter()
    while not sources <= set(latest := client.latest()):
        assert time.monotonic() < deadline_s, f"no housekeeping of {sorted(sources - set(latest))}"
        counter = client.wait_housekeeping(counter, WAIT_S)
    return latest


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def ground() -> Iterator[Ground]:
    run_dir = Path(tempfile.mkdtemp(prefix="fsw-g-", dir="/tmp"))
    udp, tcp, relay = free_port(socket.SOCK_DGRAM), free_port(), free_port(socket.SOCK_DGRAM)
    extra = f"""
[processes.comms]
rate_hz = 10.0

[processes.comms.params]
link_udp = "127.0.0.1:{udp}"
link_tcp = "127.0.0.1:{tcp}"

[processes.spacelink.params]
ground_udp = "127.0.0.1:{relay}"
light_time_s = {LIGHT_TIME_S}

[processes.simulator.params.comms]
relay_in_view_s = 86400.0
"""
    base = HilBase(deployment_text(extra), run_dir)
    station: subprocess.Popen[bytes] | None = None
    try:
        base.start()
        api, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
        archive, log = run_dir / "archive.db", run_dir / "station.log"
        with log.open("wb") as out:
            station = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fsw.cli",
                    "ground",
                    "station",
                    "--deployment",
                    str(base.path),
                    "--run-dir",
                    str(run_dir),
                    "--archive",
                    str(archive),
                    "--api",
                    api,
                    "--pub",
                    pub,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        ground = Ground(base, station, run_dir, archive, api, pub, f"tcp://127.0.0.1:{tcp}", log)
        with ground.client() as client:
            client.wait_ready(WAIT_S)  # the station answers once its sockets are bound
            assert client.ping(WAIT_S).ok, log.read_text()  # ... and the base answers it
        yield ground
    finally:
        if station is not None:
            _stop(station)
        base.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


class TestLink:
    """The station reaches the base through the simulated link, authenticated."""

    def test_ping_goes_both_ways_through_the_light_time(self, ground: Ground) -> None:
        result = ground.fsw("ping", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["stages"] == ["accepted", "completed"]
        assert report["round_trip_s"] >= 2 * LIGHT_TIME_S  # up and down the simulated link
        with ground.client() as client:
            link = client.link()
        assert link["tm_by_kind"]["pong"] >= 1
        assert link["tm_by_kind"]["invalid"] == 0
        assert link["rtt_s"] is not None  # the keep-alive pings answer too

    def test_housekeeping_of_every_subsystem_arrives_decoded(self, ground: Ground) -> None:
        with ground.client() as client:
            latest = latest_of(client, {"power", "thermal", "comms", "reactor", "protection"})
        assert 0.0 <= latest["power"]["values"]["battery_soc"] <= 1.0
        assert latest["power"]["values"]["bus_voltage_v"] > 100.0
        assert latest["comms"]["values"]["link_up"] is True
        assert latest["comms"]["values"]["tc_accepted"] >= 1
        assert latest["reactor"]["values"]["mode"] == "OFF"


class TestStationApi:
    """Other programs use the station with pyzmq and msgpack alone, as docs/ground.md shows."""

    def test_plain_req_socket_sends_and_waits_for_the_verification(self, ground: Ground) -> None:
        context = zmq.Context()
        req = context.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, int(WAIT_S * 1000))
        try:
            req.connect(ground.api)
            req.send(msgpack.packb({"op": "send", "target": "power", "command": "noop", "args": {}}))
            request = msgpack.unpackb(req.recv())["request"]
            req.send(msgpack.packb({"op": "status", "request": request, "wait_s": WAIT_S}))
            status = msgpack.unpackb(req.recv())
        finally:
            req.close()
            context.term()
        assert status["stages"] == ["accepted", "started", "completed"]
        assert status["ok"] is True

    def test_bad_requests_get_an_error_and_the_station_goes_on(self, ground: Ground) -> None:
        context = zmq.Context()
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.RCVTIMEO, int(WAIT_S * 1000))
        replies = []
        try:
            dealer.connect(ground.api)
            for body in (
                b"\xc1 not msgpack",
                msgpack.packb([1, 2]),
                msgpack.packb({"op": "launch"}),
                msgpack.packb({"op": "status", "request": "ffffffff"}),
                msgpack.packb({"op": "send", "target": "power"}),
            ):
                dealer.send_multipart([b"", body])
                replies.append(msgpack.unpackb(dealer.recv_multipart()[-1]))
        finally:
            dealer.close()
            context.term()
        assert all("error" in reply for reply in replies), replies
        assert "unknown op 'launch'" in replies[2]["error"]
        with ground.client() as client:
            assert client.link()["bad_requests"] >= 5
            assert client.ping(WAIT_S).ok


class TestCommands:
    """Commands are checked, signed, sent, and verified stage by stage."""

    def test_command_is_accepted_started_and_completed(self, ground: Ground) -> None:
        with ground.client() as client:
            result = client.command("power", "switch_load", {"tier": 3, "on": False}, timeout_s=WAIT_S)
            assert result.ok, result
            assert result.stages == ("accepted", "started", "completed")
            procedure = Procedure(ground.api, timeout_s=WAIT_S)
            try:
                procedure.wait_check("power.tiers_commanded_off == 4", timeout_s=WAIT_S)  # bit 2: tier 3
            finally:
                procedure.close()
            assert client.command("power", "switch_load", {"tier": 3, "on": True}, timeout_s=WAIT_S).ok

    def test_command_the_base_refuses_is_rejected_with_its_reason(
        self, ground: Ground, capsys: pytest.CaptureFixture[str]
    ) -> None:
        result = ground.cli(
            capsys, "send", "thermal", "set_setpoint", "node=battery", "low_c=20", "high_c=10", "--json"
        )
        assert result.returncode == 1
        report = json.loads(result.stdout)
        assert report["outcome"] == "rejected"
        assert report["failure"] == "COMMAND_REJECTED"
        assert "low_c 20.0 must be below high_c 10.0" in report["reason"]

    def test_critical_command_needs_arm_then_execute(
        self, ground: Ground, capsys: pytest.CaptureFixture[str]
    ) -> None:
        unarmed = ground.cli(capsys, "send", "reactor", "trip_reset")
        assert unarmed.returncode == 1
        assert "send `arm command=trip_reset` to reactor" in unarmed.stdout
        armed = ground.cli(capsys, "arm", "reactor", "trip_reset")
        assert armed.returncode == 0, armed.stdout + armed.stderr
        executed = ground.cli(capsys, "execute", "reactor", "trip_reset")
        assert executed.returncode == 0, executed.stdout + executed.stderr
        assert "completed" in executed.stdout
        both = ground.cli(capsys, "send", "reactor", "trip_reset", "--arm")
        assert both.returncode == 0, both.stdout + both.stderr

    @pytest.mark.parametrize(
        ("words", "message"),
        [
            (("power", "switch_load", "tier=9", "on=true"), "power.switch_load: argument tier=9 is above"),
            (("power", "explode"), "unknown command 'explode' of power"),
            (("rover", "ping"), "unknown target 'rover'"),
        ],
    )
    def test_bad_command_never_leaves_and_exits_2(
        self, ground: Ground, words: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def sent(link: dict[str, int]) -> int:
            return link["tc_sent"] - link["keepalives"]

        with ground.client() as client:
            before = sent(client.link())
            assert main(["ground", "send", *words, "--api", ground.api]) == 2
            assert sent(client.link()) == before
        err = capsys.readouterr().err
        assert message in err
        assert len(err.strip().splitlines()) == 1


class TestEventsAndArchive:
    """Events arrive live and in the archive; the archive answers history queries and plots."""

    def test_event_of_a_command_is_published_and_archived(
        self, ground: Ground, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with Subscription(ground.pub, ["evt.power", "link"]) as subscription, ground.client() as client:
            while (message := subscription.receive(WAIT_S)) is not None and message[0] != "link":
                pass  # the subscription is live once the first link report arrives
            assert message is not None
            assert client.command("power", "switch_load", {"tier": 4, "on": True}, timeout_s=WAIT_S).ok
            event = None
            while event is None or event["name"] != "load_switched":
                received = subscription.receive(WAIT_S)
                assert received is not None, "no load_switched event"
                event = received[1] if received[0] == "evt.power" else None
        assert event["data"] == {"tier": 4, "on": True}
        assert event["severity"] == "info"
        with ground.client() as client:  # its outcome written means what came before it is too
            assert client.command("power", "noop", timeout_s=WAIT_S).ok
        result = ground.cli(capsys, "history", "events", "--json", "--archive", str(ground.archive))
        assert result.returncode == 0, result.stderr
        archived = json.loads(result.stdout)
        assert any(e["source"] == "power" and e["name"] == "load_switched" for e in archived)

    def test_history_of_commands_and_packets_as_json(
        self, ground: Ground, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with ground.client() as client:
            assert client.command("power", "noop", timeout_s=WAIT_S).ok
        commands = ground.cli(capsys, "history", "commands", "--json", "--archive", str(ground.archive))
        assert commands.returncode == 0, commands.stderr
        rows = json.loads(commands.stdout)
        noop = [r for r in rows if r["command"] == "noop"][-1]
        assert noop["target"] == "power"
        assert noop["stage"] == "completed"
        assert [s["stage"] for s in noop["stages"]] == ["accepted", "started", "completed"]
        assert all(r["origin"] != "keepalive" for r in rows)
        packets = ground.cli(
            capsys,
            "history", "packets", "--kind", "hk", "--source", "power", "--limit", "3", "--json",
            "--archive", str(ground.archive),
        )  # fmt: skip
        assert packets.returncode == 0, packets.stderr
        hk = json.loads(packets.stdout)
        assert 1 <= len(hk) <= 3
        assert all(p["service"] == 3 and p["subtype"] == 25 for p in hk)
        assert "battery_soc" in hk[-1]["content"]

    def test_plot_of_the_last_hour_is_a_png(self, ground: Ground) -> None:
        with ground.client() as client:  # both sources heard, and archived with the command's flush
            latest_of(client, {"power", "reactor"})
            assert client.command("power", "noop", timeout_s=WAIT_S).ok
        out = ground.run_dir / "soc.png"
        result = ground.fsw(
            "plot", "power.battery_soc", "reactor.fuel_temp_c", "--since", "1h", "--out", str(out),
            "--archive", str(ground.archive), "--deployment", str(ground.base.path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_archive_is_readable_with_plain_sql(self, ground: Ground) -> None:
        with Archive(ground.archive, readonly=True) as archive:
            times, values = archive.series("power", ["battery_soc"])
        assert times
        assert all(v is not None and 0.0 <= v <= 1.0 for v in values["battery_soc"])


class TestProcedures:
    """``fsw ground run`` passes a procedure whose checks hold and fails one whose check does not."""

    def test_example_procedure_passes(self, ground: Ground) -> None:
        result = ground.fsw("run", str(EXAMPLE_PROCEDURE))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "wait_check power.tiers_on < 8: passed" in result.stdout
        assert result.stdout.strip().endswith("check_power.py: passed")

    def test_procedure_whose_check_fails_exits_1_naming_the_line(
        self, ground: Ground, capsys: pytest.CaptureFixture[str]
    ) -> None:
        script = ground.run_dir / "impossible.py"
        script.write_text(
            'cmd("power noop")\nwait_check("power.battery_soc > 2", timeout_s=0.5)\nprint("not reached")\n',
            encoding="utf-8",
        )
        result = ground.cli(capsys, "run", str(script))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "cmd power noop: completed" in result.stdout
        assert f"FAILED at {script}:2: wait_check power.battery_soc > 2: false after 0.5 s" in result.stdout
        assert "not reached" not in result.stdout

    def test_procedure_with_a_failing_command_exits_1(
        self, ground: Ground, capsys: pytest.CaptureFixture[str]
    ) -> None:
        script = ground.run_dir / "refused.py"
        script.write_text('cmd("reactor trip_reset")\n', encoding="utf-8")
        result = ground.cli(capsys, "run", str(script))
        assert result.returncode == 1
        assert "cmd reactor trip_reset: rejected (COMMAND_REJECTED)" in result.stdout


class TestTcpLink:
    """A second station on comms' TCP endpoint (run last: it signs with the same key)."""

    def test_station_over_tcp_hears_the_base(self, ground: Ground, tmp_path: Path) -> None:
        api = f"tcp://127.0.0.1:{free_port()}"
        with (tmp_path / "station.log").open("wb") as out:
            station = subprocess.Popen(
                [
                    sys.executable, "-m", "fsw.cli", "ground", "station",
                    "--deployment", str(ground.base.path), "--run-dir", str(ground.run_dir),
                    "--archive", str(tmp_path / "tcp.db"), "--link", ground.link_tcp,
                    "--api", api, "--pub", f"tcp://127.0.0.1:{free_port()}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            with Station(api, timeout_s=WAIT_S) as client:
                client.wait_ready(WAIT_S)
                latest_of(client, {"power"})
                assert client.link()["connects"] == 1
        finally:
            _stop(station)
