"""One contract suite for every board backend, plus the simulated world's physics.

The serving side runs in a thread of the test process: a :class:`BoardServer` on a real
pseudo-terminal (``sim``, ``serial``) or a :class:`TcpBoardServer` on loopback (``tcp``),
serving the reactor board of a seeded :class:`World`. Nothing sleeps to wait for
readiness: the pty and the listening socket exist before the client opens them, and the
handshake has a deadline. Every test is checked for leaked descriptors and threads.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.board import Board, BoardEvent, ValueType, open_board
from fsw.errors import (
    BoardError,
    BoardLinkLost,
    BoardTimeout,
    BoardUnavailable,
    ConfigError,
)
from hil.board_server import (
    BoardServer,
    ServingThread,
    TcpBoardServer,
    close_pty,
    open_pty,
)
from hil.physics import (
    Coupling,
    Environment,
    Illumination,
    PowerModel,
    World,
)
from hil.physics.environment import ECLIPSE_YEAR_S, SYNODIC_MONTH_S
from hil.wire import (
    PROTOCOL_VERSION,
    Command,
    Deframer,
    Frame,
    Hello,
    Nak,
    NakCode,
    cobs_encode,
    crc16_ccitt_false,
    encode_frame,
)

REACTOR_CHANNELS = {
    "thermal_power_w": ValueType.FLOAT,
    "electric_power_w": ValueType.FLOAT,
    "fuel_temp_c": ValueType.FLOAT,
    "rod_position": ValueType.FLOAT,
    "period_s": ValueType.FLOAT,
    "tripped": ValueType.BOOL,
    "converter_ok": ValueType.BOOL,
    "fission_power_w": ValueType.FLOAT,
    "decay_heat_w": ValueType.FLOAT,
    "heat_removed_w": ValueType.FLOAT,
    "reflector_temp_c": ValueType.FLOAT,
    "converters_running": ValueType.INT,
    "heat_pipes_ok": ValueType.INT,
}
PYTHON_TYPE = {ValueType.FLOAT: float, ValueType.BOOL: bool, ValueType.INT: int}
FAST_TIMEOUT_S = 0.05


# --- leak check ---------------------------------------------------------------------


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    gc.collect()
    fds, threads = _open_fds(), set(threading.enumerate())
    yield
    gc.collect()
    assert set(threading.enumerate()) == threads, "a test left a thread running"
    leaked = _open_fds() - fds
    assert not leaked, f"a test left descriptors open: {sorted(leaked)}"


# --- serving harness ----------------------------------------------------------------


class Rig:
    """A world whose reactor board is served in a thread, and a client on ``backend``."""

    def __init__(self, backend: str) -> None:
        self.world = World(seed=11, frame_period_s=1.0)
        self.frame = 0
        self._stack = contextlib.ExitStack()
        sync = self._on_sync
        if backend == "tcp":
            tcp = self._stack.enter_context(TcpBoardServer(self.world.reactor, on_sync=sync))
            self.server: TcpBoardServer | BoardServer = tcp
            options: dict[str, object] = {"host": "127.0.0.1", "port": tcp.address[1]}
        else:
            master_fd, slave_path = open_pty()
            pty_server = BoardServer(self.world.reactor, master_fd, on_sync=sync)
            self.server = self._stack.enter_context(pty_server)
            key = "path" if backend == "sim" else "device"
            options = {key: slave_path}
            if backend == "serial":
                options["baud_rate"] = 115_200
        self.thread = ServingThread([self.server])
        self._stack.callback(self.thread.close)
        self.thread.start()
        try:
            self.board: Board = self._stack.enter_context(open_board(backend, **options))
        except BaseException:
            self._stack.close()
            raise

    def _on_sync(self, frame: int, t_s: float) -> None:
        del t_s
        self.world.advance_to(frame)

    def next_frame(self) -> None:
        """Sync the board to the next frame."""
        self.frame += 1
        self.board.sync(self.frame, self.frame * self.world.frame_period_s)

    @contextlib.contextmanager
    def silent(self) -> Iterator[None]:
        """The board stops answering for the duration."""
        self.thread.stop()
        try:
            yield
        finally:
            self.thread.start()

    def inject_noise(self, data: bytes) -> None:
        """Put raw bytes on the wire towards the client."""
        with self.silent():
            self.server.inject_noise(data)

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(params=["sim", "serial", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    harness = Rig(request.param)
    try:
        yield harness
    finally:
        harness.close()


# --- the contract -------------------------------------------------------------------


class TestBoardContract:
    """What every board backend must do, whatever carries its bytes."""

    def test_handshake_describes_the_board(self, rig: Rig) -> None:
        description = rig.board.description
        assert description.kind == "reactor"
        assert description.protocol_version == PROTOCOL_VERSION
        assert {c.name: c.type for c in description.channels} == REACTOR_CHANNELS
        assert {a.name for a in description.actuators} == {"rod_target", "scram", "trip_reset"}
        rod = description.actuator("rod_target")
        assert (rod.low, rod.high) == (0.0, 1.0)

    def test_read_returns_every_channel(self, rig: Rig) -> None:
        sample = rig.board.read()
        assert sample.board_time_s == 0.0
        assert set(sample.values) == set(REACTOR_CHANNELS)
        for name, value in sample.values.items():
            assert type(value) is PYTHON_TYPE[REACTOR_CHANNELS[name]], name
        rig.next_frame()
        assert rig.board.read().board_time_s == 1.0

    def test_command_takes_effect_after_the_next_sync(self, rig: Rig) -> None:
        rig.next_frame()
        rig.board.command("rod_target", 0.2)
        assert rig.board.read().values["rod_position"] == 0.0
        rig.next_frame()
        assert rig.board.read().values["rod_position"] == pytest.approx(0.005)

    def test_out_of_range_command_is_refused_naming_the_actuator(self, rig: Rig) -> None:
        with pytest.raises(BoardError, match=r"rod_target.*outside \[0.0, 1.0\]"):
            rig.board.command("rod_target", 1.5)
        with pytest.raises(BoardError, match=r"scram.*takes a bool"):
            rig.board.command("scram", 0.5)

    def test_unknown_actuator_is_refused_naming_it(self, rig: Rig) -> None:
        with pytest.raises(BoardError, match="coolant_pump"):
            rig.board.command("coolant_pump", True)
        assert rig.board.read().values["tripped"] is False  # the link carries on

    def test_board_trip_event_arrives_through_poll_events(self, rig: Rig) -> None:
        rig.next_frame()
        rig.board.command("scram", True)
        assert rig.board.poll_events() == []
        rig.next_frame()
        events = rig.board.poll_events()
        assert [e.name for e in events] == ["trip"]
        assert events[0].severity == "critical"
        assert events[0].data["reason"] == "manual_scram"
        assert rig.board.poll_events() == []
        status = rig.board.status()
        assert status.link_up
        assert {"tripped", "trip:manual_scram"} <= status.faults

    def test_silent_board_times_out_then_the_link_is_lost_then_recovers(self, rig: Rig) -> None:
        board = rig.board
        with rig.silent():
            with pytest.raises(BoardTimeout):
                board.read(timeout_s=FAST_TIMEOUT_S)
            with pytest.raises(BoardTimeout):
                board.status(timeout_s=FAST_TIMEOUT_S)
            with pytest.raises(BoardLinkLost):
                board.read(timeout_s=FAST_TIMEOUT_S)
            with pytest.raises(BoardLinkLost):
                board.read(timeout_s=FAST_TIMEOUT_S)
        assert board.counters.timeouts == 4
        assert board.counters.retries == 8  # three attempts per request
        assert board.read().board_time_s == 0.0  # answered: the link is back
        assert board.status().link_up
        assert board.counters.out_of_order >= 4  # late answers to the silent requests

    def test_garbage_on_the_line_is_counted_and_survived(self, rig: Rig) -> None:
        before = rig.board.counters.bytes_skipped
        # a junk frame, then junk with no delimiter that corrupts the next reply
        rig.inject_noise(b"\x00\xde\xad\xbe\xef\x00" + bytes(range(1, 200)))
        sample = rig.board.read()
        assert set(sample.values) == set(REACTOR_CHANNELS)
        counters = rig.board.counters
        assert counters.bytes_skipped - before >= 5 + 199
        assert counters.frames_bad >= 2
        assert counters.retries >= 1

    def test_close_twice_is_fine_and_a_closed_board_refuses(self, rig: Rig) -> None:
        rig.board.close()
        rig.board.close()
        with pytest.raises(BoardError, match="closed"):
            rig.board.read()


# --- backend specifics --------------------------------------------------------------


@pytest.fixture
def reactor_pty() -> Iterator[tuple[World, BoardServer, str, ServingThread]]:
    world = World(seed=5, frame_period_s=1.0)
    master_fd, slave_path = open_pty()
    with BoardServer(world.reactor, master_fd) as server:
        thread = ServingThread([server])
        thread.start()
        try:
            yield world, server, slave_path, thread
        finally:
            thread.close()


def _raw_exchange(path: str, request: bytes, timeout_s: float = 2.0) -> list[Frame]:
    """Write ``request`` on the tty and return the first frames that come back."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fd, request)
        deframer = Deframer(versions=range(256))
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            assert poller.poll(math.ceil(timeout_s * 1000)), "no answer from the board"
            frames = deframer.feed(os.read(fd, 4096))
            if frames:
                return frames
    finally:
        os.close(fd)


def test_sim_board_opens_by_run_dir_and_kind(reactor_pty, tmp_path: Path) -> None:
    _, _, slave_path, _ = reactor_pty
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "reactor").symlink_to(slave_path)
    with open_board("sim", run_dir=str(tmp_path), kind="reactor") as board:
        assert board.description.kind == "reactor"
    (tmp_path / "boards" / "power").symlink_to(slave_path)
    with pytest.raises(BoardError, match="is a 'reactor', not 'power'"):
        open_board("sim", run_dir=str(tmp_path), kind="power")


def test_sim_board_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="path, or run_dir and kind"):
        open_board("sim")
    with pytest.raises(BoardUnavailable, match="simulator"):
        open_board("sim", run_dir=str(tmp_path), kind="reactor")


def test_board_that_never_answers_the_handshake_times_out() -> None:
    master_fd, slave_path = open_pty()
    try:
        with pytest.raises(BoardTimeout, match="HELLO"):
            open_board("serial", device=slave_path, hello_timeout_s=FAST_TIMEOUT_S)
    finally:
        close_pty(master_fd)


def test_tcp_board_that_is_not_there_is_unavailable() -> None:
    with TcpBoardServer(World(1, 1.0).power) as server:
        port = server.address[1]
    with pytest.raises(BoardUnavailable, match="cannot connect"):
        open_board("tcp", host="127.0.0.1", port=port, connect_timeout_s=1.0)


def test_tcp_server_serves_the_next_client_after_a_hang_up() -> None:
    world = World(1, 1.0)
    with TcpBoardServer(world.comms) as server:
        thread = ServingThread([server])
        thread.start()
        try:
            for _ in range(2):
                with open_board("tcp", host="127.0.0.1", port=server.address[1]) as board:
                    assert board.description.kind == "comms"
                    assert "dte_visible" in board.read().values
        finally:
            thread.close()
        assert server.clients_served == 2


def test_board_answers_a_foreign_version_with_a_nak_in_that_version(reactor_pty) -> None:
    _, _, slave_path, _ = reactor_pty
    (reply,) = _raw_exchange(slave_path, encode_frame(Frame(77, Hello("v9"), version=9)))
    assert (reply.version, reply.seq) == (9, 77)
    assert isinstance(reply.message, Nak)
    assert reply.message.code == NakCode.VERSION_MISMATCH
    assert "version 1" in reply.message.reason


def test_board_naks_a_malformed_request_and_counts_junk(reactor_pty) -> None:
    _, server, slave_path, _ = reactor_pty
    payload = bytes((PROTOCOL_VERSION, 0x04, 0x01, 0x02)) + b"\x81\xa8actuator\xa5scram"
    raw = payload + crc16_ccitt_false(payload).to_bytes(2, "big")
    junk = b"\x07\x07\x07\x00"
    (reply,) = _raw_exchange(slave_path, junk + cobs_encode(raw) + b"\x00")
    assert reply.seq == 0x0102
    assert isinstance(reply.message, Nak)
    assert reply.message.code == NakCode.BAD_FRAME
    assert "value" in reply.message.reason
    assert server.counters.frames_bad == 2
    assert server.counters.bytes_skipped == len(junk) + len(cobs_encode(raw)) + 1


def test_server_refuses_by_board_state_with_refused(reactor_pty) -> None:
    _, _, slave_path, _ = reactor_pty
    (reply,) = _raw_exchange(slave_path, encode_frame(Frame(5, Command("rod_target", 0.5))))
    assert isinstance(reply.message, Nak)
    assert reply.message.code == NakCode.REFUSED
    assert "heartbeat" in reply.message.reason


def test_server_drops_output_when_the_client_does_not_read() -> None:
    world = World(1, 1.0)
    master_fd, _ = open_pty()
    with BoardServer(world.thermal, master_fd, max_output_bytes=512) as server:
        for i in range(200):  # nobody reads the tty: the pty buffer, then ours, fill up
            server.send_event(BoardEvent("noise", float(i), data={"pad": "x" * 40}))
        assert server.counters.frames_dropped > 0
        assert server.counters.events_sent + server.counters.frames_dropped == 200


# --- physics ------------------------------------------------------------------------


def test_illumination_cycles_with_the_synodic_month_and_has_dark_spells() -> None:
    light = Illumination(random.Random(3))
    step_s = 3600.0
    hours = int(ECLIPSE_YEAR_S / step_s)
    lit = [light.lit_fraction(i * step_s) > 0.5 for i in range(hours)]
    spells, run = [], 0
    for is_lit in lit:
        if is_lit:
            if run:
                spells.append(run)
            run = 0
        else:
            run += 1
    assert 0.80 <= sum(lit) / hours <= 0.98
    assert len(spells) >= 3
    assert max(spells) <= 7 * 24
    for t_s in (0.0, 1e6, 5e6):
        az = light.sun_azimuth_deg(t_s)
        assert light.sun_azimuth_deg(t_s + SYNODIC_MONTH_S) == pytest.approx(az, abs=1e-6)
        assert light.sun_azimuth_deg(t_s + SYNODIC_MONTH_S / 2) == pytest.approx(
            (az + 180.0) % 360.0, abs=1e-6
        )
    assert all(abs(light.sun_elevation_deg(i * 86_400.0)) <= 1.95 for i in range(400))


def test_solar_power_follows_the_light() -> None:
    world = World(seed=3, frame_period_s=3600.0)
    power = world.power
    seen_dark = seen_full = False
    for frame in range(1, 24 * 30):
        world.advance_to(frame)
        lit = world.illumination.lit_fraction(world.time_s)
        solar_w = float(power.read()["solar_power_w"])
        assert solar_w == pytest.approx(power.peak_solar_w * lit, rel=1e-3, abs=1e-6)
        seen_dark |= lit == 0.0
        seen_full |= lit == 1.0
    assert seen_dark
    assert seen_full
    assert 9_500.0 < power.peak_solar_w < 10_500.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 1.0),  # lit fraction
            st.floats(0.0, 15_000.0),  # reactor electric power
            st.floats(0.0, 3_000.0),  # heater power
            st.sampled_from([1.0, 60.0, 3600.0, 86_400.0]),  # step
            st.sets(st.sampled_from(["load_t1", "load_t2", "load_t3", "load_t4"])),
        ),
        max_size=40,
    ),
    st.floats(0.0, 1.0),
)
def test_battery_charge_stays_in_the_unit_interval(steps: list, initial_soc: float) -> None:
    power = PowerModel(initial_soc=initial_soc)
    t_s = 0.0
    for lit, reactor_w, heater_w, dt_s, tiers_on in steps:
        for tier in ("load_t1", "load_t2", "load_t3", "load_t4"):
            with contextlib.suppress(BoardError):  # refused under battery protection
                power.command(tier, tier in tiers_on)
        t_s += dt_s
        env = Environment(t_s, 0.0, 0.5, lit, 200.0)
        power.step(dt_s, env, Coupling(reactor_electric_w=reactor_w, heater_power_w=heater_w))
        values = power.read()
        assert 0.0 <= float(values["battery_soc"]) <= 1.0
        assert 31 * 2.7 - 20.0 <= float(values["battery_voltage_v"]) <= 31 * 4.1 + 20.0
        if values["battery_soc"] < PowerModel.PROTECTION_CUT_SOC:
            assert "battery_protection" in power.faults()


def test_reactor_trips_on_heartbeat_loss_and_latches_until_trip_reset() -> None:
    world = World(seed=7, frame_period_s=1.0, heartbeat_timeout_s=5.0)
    reactor = world.reactor
    reactor.heartbeat()
    reactor.command("rod_target", 0.3)
    for frame in range(1, 4):
        world.advance_to(frame)
        reactor.heartbeat()
    assert not reactor.tripped
    assert float(reactor.read()["rod_position"]) == pytest.approx(0.015)

    world.advance_to(12)  # the flight software goes silent
    assert reactor.tripped
    assert reactor.trip_reason == "heartbeat_loss"
    (trip,) = reactor.drain_events()
    assert (trip.name, trip.data["reason"]) == ("trip", "heartbeat_loss")
    assert 8.0 < trip.board_time_s <= 8.4  # last heartbeat at 3 s, timeout 5 s
    assert reactor.read()["rod_position"] == 0.0
    assert "heartbeat_lost" in reactor.faults()

    reactor.command("trip_reset", True)  # refused at the step: heartbeat still stale
    world.advance_to(13)
    assert reactor.tripped
    assert [e.name for e in reactor.drain_events()] == ["trip_reset_refused"]

    reactor.heartbeat()  # heartbeats resume: the trip stays latched
    for frame in range(14, 16):
        world.advance_to(frame)
        reactor.heartbeat()
    assert reactor.tripped
    with pytest.raises(BoardError, match="trip_reset"):
        reactor.command("rod_target", 0.1)

    reactor.command("trip_reset", True)
    world.advance_to(16)
    reactor.heartbeat()
    assert not reactor.tripped
    assert [e.name for e in reactor.drain_events()] == ["trip_reset"]
    reactor.command("rod_target", 0.1)


def test_reactor_trips_when_the_rod_is_pulled_out_fast() -> None:
    world = World(seed=7, frame_period_s=1.0)
    reactor = world.reactor
    reactor.heartbeat()
    reactor.command("rod_target", 1.0)
    for frame in range(1, 1200):
        world.advance_to(frame)
        reactor.heartbeat()
        if reactor.tripped:
            break
    assert reactor.tripped
    assert reactor.trip_reason in {"short_period", "overpower", "fuel_overtemperature"}
    assert float(reactor.read()["fuel_temp_c"]) < 840.0


def test_reactor_start_up_reaches_ten_kilowatts_electric() -> None:
    world = World(seed=2, frame_period_s=5.0)
    reactor = world.reactor
    reactor.heartbeat()
    target = 0.55
    reactor.command("rod_target", target)
    peak_w = 0.0
    for frame in range(1, int(2 * 3600 / 5.0)):
        world.advance_to(frame)
        reactor.heartbeat()
        values = reactor.read()
        peak_w = max(peak_w, float(values["fission_power_w"]))
        if frame % 6:
            continue
        fuel_c, power_w = float(values["fuel_temp_c"]), float(values["fission_power_w"])
        period_s = float(values["period_s"])
        if fuel_c > 810.0 or power_w > 42_000.0:
            target -= 0.005
        elif fuel_c < 790.0 and power_w < 40_000.0 and (period_s > 100.0 or period_s < 0.0):
            target += 0.005 if fuel_c < 600.0 else 0.002
        reactor.command("rod_target", min(1.0, max(0.0, target)))
    values = reactor.read()
    assert not reactor.tripped
    assert peak_w < 1.08 * reactor.rated_thermal_power_w  # below the setback level
    assert 770.0 < float(values["fuel_temp_c"]) < 820.0
    assert 9_000.0 < float(values["electric_power_w"]) < 10_500.0
    assert 0.75 < float(values["rod_position"]) < 0.85
    assert world.power.read()["reactor_power_w"] == values["electric_power_w"]


def test_worlds_with_the_same_seed_are_identical() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        world = World(seed=seed, frame_period_s=600.0)
        world.thermal.command("heater_habitat", 0.4)
        world.advance_to(500)
        return [dict(model.read()) for model in world.boards.values()]

    assert run(21) == run(21)
    assert run(21) != run(22)


def test_world_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="frame_period_s"):
        World(seed=1, frame_period_s=0.0)
    with pytest.raises(ConfigError, match="heartbeat_timeout_s"):
        World(seed=1, frame_period_s=10.0, heartbeat_timeout_s=5.0)
