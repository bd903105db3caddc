"""The dashboard (``fsw ground tui``) against a real station, headless (Textual's pilot).

The station runs in this process on a thread, with its real link, archive and sockets;
the base is played by a UDP socket of the test that answers with packets built by the
flight code's encoders (:mod:`fsw.spacelink`). The dashboard talks to the station only
through its API client and publisher, as it does in use. Every wait is for a condition
with a deadline (the publisher drops what it sends before a subscriber joined, so the
test's base repeats its housekeeping until the dashboard shows it).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import DataTable, Input, Static

from fsw.deployment import load_default
from fsw.errors import CommandRejected, ConfigError
from fsw.security import create_key_file
from fsw.spacelink import (
    HousekeepingLayout,
    decode_service,
    encode_tm,
    event_data,
    parse_tc,
    verification_data,
    verify_mac,
)
from ground.client import Station
from ground.mission import MissionDatabase
from ground.station import GroundStation, StationConfig
from ground.tui import Dashboard, DashboardState, limit_state, parse_command_line, points_shown
from tests.conftest import WAIT_S

T0 = 1_900_000_000.0


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def mission() -> MissionDatabase:
    return MissionDatabase.from_deployment(load_default())


@dataclass
class FakeBase:
    """The base's end of the link: takes telecommands, sends telemetry to the station."""

    mission: MissionDatabase
    key: bytes
    sock: socket.socket
    station: tuple[str, int] | None = None
    commands: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def pump(self) -> None:
        """Read every telecommand waiting; answer each TC[8,1] with TM[1,1] and TM[1,7]."""
        while True:
            try:
                packet, sender = self.sock.recvfrom(65536)
            except BlockingIOError:
                return
            self.station = sender
            raw = parse_tc(packet)
            verify_mac(raw, self.key)
            tc = decode_service(raw)
            if tc.command is None:
                continue
            self.commands.append((self.mission.names[raw.apid], tc.command, tc.args))
            for subtype in (1, 7):
                self.send(encode_tm(raw.apid, (1, subtype), verification_data(raw.request), unix_s=T0))

    def send(self, packet: bytes) -> None:
        if self.station is not None:
            self.sock.sendto(packet, self.station)

    def housekeeping(self, source: str, values: dict[str, Any]) -> None:
        apid = self.mission.apids[source]
        layout = HousekeepingLayout(apid, self.mission.points_of(source))
        self.send(encode_tm(apid, (3, 25), layout.pack(values), unix_s=T0))

    def event(self, source: str, name: str, data: dict[str, Any]) -> None:
        names = [e.name for e in self.mission.dictionaries[source].events]
        apid = self.mission.apids[source]
        self.send(encode_tm(apid, (5, 2), event_data(names.index(name), data), unix_s=T0))


@dataclass
class Ground:
    base: FakeBase
    api: str
    pub: str


@pytest.fixture
def ground(mission: MissionDatabase, tmp_path: Path) -> Iterator[Ground]:
    keys = create_key_file(tmp_path / "keys" / "link.toml")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    base = FakeBase(mission, keys.keys[keys.active], sock)
    api, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = StationConfig(
        link=f"udp://127.0.0.1:{sock.getsockname()[1]}",
        keys=tmp_path / "keys" / "link.toml",
        archive=tmp_path / "archive.db",
        api=api,
        pub=pub,
    )
    stations: list[GroundStation] = []
    ready = threading.Event()

    def serve() -> None:  # SQLite wants the archive used on the thread that opened it
        try:
            with GroundStation(config, mission) as station:
                stations.append(station)
                ready.set()
                station.run(handle_signals=False)
        finally:
            ready.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(WAIT_S)
    try:
        assert stations, "the station did not start"
        yield Ground(base, api, pub)
    finally:
        if stations:
            stations[0].stop()
            with Station(api, timeout_s=WAIT_S) as waker:  # a request wakes the loop to see stop()
                waker.request("link")
        thread.join(WAIT_S)
        sock.close()


async def until(pilot: Any, condition: Callable[[], bool], what: str, step: Callable[[], None]) -> None:
    """Run ``step`` and let the app work until ``condition`` holds (fails after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT_S} s")
        step()
        await pilot.pause(0.02)


def cell(app: Dashboard, table: str, row: str, column: str) -> Text:
    value = app.query_one(table, DataTable).get_cell(row, column)
    assert isinstance(value, Text)
    return value


class TestDashboardWithStation:
    def test_live_values_events_and_a_verified_command(self, ground: Ground) -> None:
        asyncio.run(self._session(ground))

    async def _session(self, ground: Ground) -> None:
        base = ground.base
        with Station(ground.api, timeout_s=WAIT_S) as client:
            client.wait_ready(WAIT_S)
            app = Dashboard(client, ground.pub, poll_period_s=0.02)
            async with app.run_test(size=(160, 50)) as pilot:
                assert app.state.mission is not None
                assert app.subscription is not None

                def housekeeping() -> None:
                    base.pump()
                    base.housekeeping("protection", {"mode": "SAFE"})
                    base.housekeeping("power", {"battery_soc": 0.25, "bus_voltage_v": 120.0, "mode": "SHED"})
                    base.housekeeping("comms", {"link_up": True})

                await until(
                    pilot,
                    lambda: (
                        cell(app, "#panel-power", "battery_soc", "value").plain == "0.25"
                        and app.state.value("protection", "mode") == "SAFE"
                    ),
                    "housekeeping on the dashboard",
                    housekeeping,
                )
                assert cell(app, "#panel-power", "battery_soc", "value").style == "bold yellow"
                assert cell(app, "#panel-power", "bus_voltage_v", "value").style == "green"
                assert cell(app, "#panel-power", "bus_voltage_v", "value").plain == "120"
                assert cell(app, "#panel-power", "net_power_w", "value").plain == "-"
                status = app.state.status(time.monotonic()).plain
                assert "mode SAFE" in status
                assert "link up" in status
                assert "last packet" in status
                assert "never" not in status
                assert str(app.query_one("#status", Static).render()).startswith(" lunar-base ")

                await until(
                    pilot,
                    lambda: any(e.get("name") == "load_switched" for e in app.state.events),
                    "event on the dashboard",
                    lambda: base.event("power", "load_switched", {"tier": 4, "on": False}),
                )
                event = next(e for e in app.state.events if e.get("name") == "load_switched")
                declared = next(
                    e for e in base.mission.dictionaries["power"].events if e.name == "load_switched"
                )
                assert (event["source"], event["severity"], event["data"]) == (
                    "power",
                    declared.severity.value,
                    {"tier": 4, "on": False},
                )

                app.query_one("#command", Input).value = "power switch_load tier=4 on=false"
                await pilot.press("enter")
                await until(
                    pilot,
                    lambda: any(row.outcome == "completed" for row in app.state.commands.values()),
                    "verified command",
                    base.pump,
                )
                assert base.commands == [("power", "switch_load", {"tier": 4, "on": False})]
                row = next(row for row in app.state.commands.values() if row.outcome == "completed")
                assert row.text == "power switch_load tier=4 on=false"
                assert cell(app, "#commands", row.request, "outcome").plain == "completed"
                stages = app.query_one("#commands", DataTable).get_cell(row.request, "stages")
                assert stages == "accepted, completed"

                app.query_one("#command", Input).value = "power warp factor=9"
                await pilot.press("enter")
                await pilot.pause()
                refused = next(r for r in app.state.commands.values() if r.outcome == "error")
                assert "unknown command 'warp'" in refused.reason
                base.pump()
                assert len(base.commands) == 1  # the refused command never left


class TestState:
    def test_limit_state_and_values(self, mission: MissionDatabase) -> None:
        soc = mission.point("power.battery_soc")
        assert limit_state(soc, 0.05) == "red"
        assert limit_state(soc, 0.9) == "green"
        assert limit_state(soc, None) == ""
        assert limit_state(mission.point("power.mode"), "SHED") == ""
        shown = points_shown(mission)
        assert set(shown) == {"power", "thermal", "reactor", "comms"}
        assert "fuel_temp_c" in shown["reactor"]
        assert "tc_accepted" in shown["comms"]

    def test_verification_that_overtakes_its_command_is_kept(self, mission: MissionDatabase) -> None:
        state = DashboardState(mission, now_s=0.0)
        state.apply("ver", {"request": "abcd", "stage": "accepted", "ok": True}, now_s=1.0)
        state.apply(
            "ver", {"request": "abcd", "stage": "failed", "failure": "COMMAND_FAILED", "reason": "no"}, 1.0
        )
        row = state.sent("abcd", "reactor startup", T0)
        assert row.stages == ["accepted", "failed"]
        assert row.outcome == "failed"
        assert row.reason == "COMMAND_FAILED: no"
        state.apply("cmd", {"request": "k", "target": "comms", "command": "ping", "origin": "keepalive"}, 1.0)
        assert "k" not in state.commands

    def test_command_line(self, mission: MissionDatabase) -> None:
        line = parse_command_line("reactor arm command=startup", mission)
        assert (line.target, line.command, line.args) == ("reactor", "arm", {"command": "startup"})
        assert line.text == "reactor arm command=startup"
        assert parse_command_line("ping", mission).command is None
        with pytest.raises(ConfigError):
            parse_command_line("reactor", mission)
        with pytest.raises(CommandRejected, match="tier"):
            parse_command_line("power switch_load tier=9 on=true", mission)
