"""The ground link end to end: a real base in real time, a station on UDP and TCP sockets.

The base runs with the simulated space link (``spacelink``, light time 0.2 s each way to
keep the tests short), the relay orbiter always in view, comms at 10 Hz. The station
here is a few lines over the packet layer (``fsw.spacelink``): it signs telecommands with
the key file the base uses and reads everything the base sends; verification reports are
decoded with ``spacepackets`` as another ground system would.

One base serves every test of the module; each test starts by pinging, so the base
answers the test's own socket. The last test kills comms (the supervisor starts it
again) and ends the base, so the restarted process does not outlive it.
"""

from __future__ import annotations

import itertools
import random
import select
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from spacepackets.ecss.pus_1_verification import ManagedParamsVerification, Service1Tm
from spacepackets.ecss.tm import ManagedParams

from fsw.launch import load_class
from fsw.messages import Kind, Message
from fsw.security import create_key_file, load_key_file
from fsw.spacelink import (
    TC_FUNCTION,
    TC_PING,
    TIMESTAMP_LEN,
    Failure,
    HousekeepingLayout,
    Telecommand,
    Telemetry,
    decode_tm,
    encode_tc,
    parse_event,
    parse_verification,
)
from hil.faults import clear_command_args, inject_args
from hil.spacelink import Way
from hil.testing import HilBase, merge_toml
from subsystems.comms import CommsProcess
from subsystems.deployment import DEFAULT_DEPLOYMENT
from subsystems.power import PowerProcess
from tests.conftest import TEST_OVERRIDES

LIGHT_S = 0.2
WAIT_S = 15.0
POWER, COMMS, REACTOR, PROTECTION = 0x10, 0x12, 0x13, 0x14
FINAL = {(1, 2), (1, 7), (1, 8)}

#: Sequence numbers under each key, shared by every station of the module (as one ground
#: archive keeps them): every telecommand gets a new one.
SEQUENCES = itertools.count(1)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Station:
    """A bare ground station: signs telecommands, keeps every packet it receives."""

    def __init__(self, keys: Path, target: tuple[str, int]) -> None:
        self.ring = load_key_file(keys)
        self.target = target
        self.count = itertools.count(1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.heard: list[tuple[float, bytes, Telemetry]] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def packet(
        self, apid: int = COMMS, command: str | None = None, args: dict[str, Any] | None = None, **kw: Any
    ) -> bytes:
        """A signed telecommand: TC[17,1], or TC[8,1] ``command``; ``kind`` forces the service."""
        key_id = kw.get("key_id", self.ring.active)
        service, subtype = kw.get("kind") or (TC_PING if command is None else TC_FUNCTION)
        tc = Telecommand(
            apid, service, subtype, next(self.count) & 0x3FFF, key_id, next(SEQUENCES), command, args or {}
        )
        return encode_tc(tc, self.ring.keys.get(key_id, bytes(32)))

    def send(self, packet: bytes) -> bytes:
        """Send ``packet``; return its request id."""
        self.sock.sendto(packet, self.target)
        return packet[:4]

    def receive(self, timeout_s: float) -> bool:
        """Take one packet into :attr:`heard` if one comes within ``timeout_s``."""
        ready, _, _ = select.select([self.sock], [], [], timeout_s)
        if not ready:
            return False
        data = self.sock.recvfrom(65536)[0]
        self.heard.append((time.time(), data, decode_tm(data)))
        return True

    def wait(self, found: Callable[[], Any], timeout_s: float = WAIT_S, what: str = "packet") -> Any:
        """Receive until ``found()`` is truthy; return it."""
        deadline = time.monotonic() + timeout_s
        while not (result := found()):
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [(t.service, t.subtype) for *_, t in self.heard]
                pytest.fail(f"no {what} within {timeout_s} s; heard {kinds}")
            self.receive(left)
        return result

    def reports(self, request: bytes, since: int = 0) -> list[tuple[int, int | None, str]]:
        """(subtype, failure code, reason) of every TM[1,x] heard for ``request`` (from ``heard[since]``)."""
        out = []
        for _, _, tm in self.heard[since:]:
            if tm.service == 1:
                got, code, reason = parse_verification(tm.data)
                if got == request:
                    out.append((tm.subtype, code, reason))
        return out

    def verify(self, packet: bytes, timeout_s: float = WAIT_S) -> list[tuple[int, int | None, str]]:
        """Send ``packet`` and return its reports (heard after sending) once the final one has come."""
        since = len(self.heard)
        request = self.send(packet)
        self.wait(
            lambda: any((1, s) in FINAL for s, _, _ in self.reports(request, since)),
            timeout_s,
            f"final report of {request.hex()}",
        )
        return self.reports(request, since)

    def ping(self, timeout_s: float = WAIT_S) -> None:
        """Ping until one is verified (the first ones may meet a flood limit still refilling)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            request = self.send(self.packet())
            answer_by = time.monotonic() + 1.0 + 2 * LIGHT_S
            while time.monotonic() < answer_by:
                if (7, None, "") in self.reports(request):
                    return
                self.receive(max(0.0, answer_by - time.monotonic()))
        pytest.fail("the base never answered a ping")


class LinkedBase:
    """The module's base, its key file and the addresses of its link."""

    def __init__(self, run_dir: Path) -> None:
        self.keys = run_dir / "keys.toml"
        create_key_file(self.keys)
        self.udp = free_port(socket.SOCK_DGRAM)
        self.tcp = free_port(socket.SOCK_STREAM)
        self.relay = free_port(socket.SOCK_DGRAM)
        layer = f"""
[processes.simulator.params.comms]
relay_in_view_s = 86400.0
[processes.comms]
rate_hz = 10.0
housekeeping_period_s = 0.5
[processes.comms.params]
link_udp = "127.0.0.1:{self.udp}"
link_tcp = "127.0.0.1:{self.tcp}"
keys = "{self.keys}"
tc_rate_per_s = 50
hk_stored_period_s = 0.5
[processes.spacelink.params]
ground_udp = "127.0.0.1:{self.relay}"
light_time_s = {LIGHT_S}
"""
        self.base = HilBase(merge_toml(DEFAULT_DEPLOYMENT, TEST_OVERRIDES, layer), run_dir)

    def comms_hk(self, check: Callable[[dict[str, Any]], bool], what: str) -> Message:
        """The next housekeeping packet of comms on the bus that passes ``check``."""
        return self.base.await_message(
            lambda m: m.kind is Kind.TELEMETRY and m.source == "comms" and m.name == "hk" and check(m.data),
            WAIT_S,
            include_history=False,
            what=what,
        )


@pytest.fixture(scope="module")
def linked() -> Iterator[LinkedBase]:
    run_dir = Path(tempfile.mkdtemp(prefix="fsw-", dir="/tmp"))
    setup = LinkedBase(run_dir)
    try:
        setup.base.start()
        setup.base.await_telemetry("comms", "link_up", True, timeout_s=WAIT_S, include_history=True)
        yield setup
    finally:
        setup.base.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def station(linked: LinkedBase) -> Iterator[Station]:
    """A station talking through the simulated space link, answered by the base."""
    with Station(linked.keys, ("127.0.0.1", linked.relay)) as ground:
        ground.ping()
        yield ground


def test_each_way_of_the_relay_delays_by_light_time_and_rate_and_drops_beyond_its_bound() -> None:
    way = Way(light_time_s=1.0, rate_bps=8000.0, capacity=2)  # 1000 bytes a second
    way.offer(bytes(500), 10.0, lost=False)  # on the air 10.0-10.5, arrives 11.5
    way.offer(bytes(500), 10.0, lost=False)  # waits for the first: 10.5-11.0, arrives 12.0
    way.offer(bytes(10), 10.0, lost=False)  # the third in flight: dropped
    way.offer(bytes(10), 10.0, lost=True)
    assert (way.counters.dropped, way.counters.lost) == (1, 1)
    assert way.next_s == pytest.approx(11.5)
    assert way.due(11.4) == []
    assert len(way.due(11.5)) == 1
    assert len(way.due(12.0)) == 1
    assert way.next_s is None


def test_a_ping_through_the_simulated_link_is_verified_two_light_times_later(station: Station) -> None:
    started = time.time()
    request = station.send(station.packet())
    station.wait(lambda: (7, None, "") in station.reports(request), what="TM[1,7]")
    assert time.time() - started >= 2 * LIGHT_S
    assert [s for s, _, _ in station.reports(request)] == [1, 7]
    pong = [tm for _, _, tm in station.heard if (tm.service, tm.subtype) == (17, 2)]
    assert pong
    assert pong[-1].apid == COMMS
    assert abs(pong[-1].unix_s - time.time()) < 5.0  # real time: stamped in UTC


def test_a_command_is_verified_and_its_reports_decode_with_spacepackets(station: Station) -> None:
    packet = station.packet(POWER, "noop")
    station.verify(packet)
    raw = [data for _, data, tm in station.heard if tm.service == 1 and tm.apid == POWER]
    decoded = [
        Service1Tm.unpack(
            d, ManagedParams(timestamp_len=TIMESTAMP_LEN), ManagedParamsVerification(bytes_err_code=2)
        )
        for d in raw
    ]
    mine = [r for r in decoded if r.tc_req_id.pack() == packet[:4]]
    assert [r.message_subtype for r in mine] == [1, 3, 7]  # accepted, started, completed

    unknown = station.verify(station.packet(POWER, "no_such_command"))
    assert unknown[-1][:2] == (2, Failure.COMMAND_REJECTED)
    assert "no_such_command" in unknown[-1][2]
    bad_arg = station.verify(station.packet(POWER, "switch_load", {"tier": 99, "on": True}))
    assert bad_arg[-1][:2] == (2, Failure.COMMAND_REJECTED)
    assert "tier" in bad_arg[-1][2]
    unarmed = station.verify(station.packet(REACTOR, "startup"))
    assert unarmed[-1][:2] == (2, Failure.COMMAND_REJECTED)
    assert "arm" in unarmed[-1][2]


def test_housekeeping_and_events_come_as_pus_packets_of_their_process(station: Station) -> None:
    layout = HousekeepingLayout(POWER, PowerProcess.full_dictionary().telemetry)

    def power_hk() -> dict[str, Any] | None:
        for _, _, tm in station.heard:
            if (tm.apid, tm.service, tm.subtype) == (POWER, 3, 25):
                return layout.unpack(tm.data)
        return None

    values = station.wait(power_hk, what="TM[3,25] of power")
    assert 0.0 <= values["battery_soc"] <= 1.0
    assert values["frame"] > 0
    # An event: arming a critical command of the reactor raises command_armed there.
    station.verify(station.packet(REACTOR, "arm", {"command": "startup"}))
    station.verify(station.packet(REACTOR, "disarm"))
    events = [e.name for e in load_class("subsystems.reactor:ReactorProcess").full_dictionary().events]

    def armed() -> dict[str, Any] | None:
        for _, _, tm in station.heard:
            if (tm.apid, tm.service) == (REACTOR, 5):
                event_id, data = parse_event(tm.data)
                if events[event_id] == "command_armed":
                    assert tm.subtype == 1  # informative
                    return data
        return None

    assert station.wait(armed, what="TM[5,1] command_armed")["command"] == "startup"


def test_hostile_input_is_refused_counted_and_never_stalls_the_link(linked: LinkedBase) -> None:
    comms = ("127.0.0.1", linked.udp)
    with Station(linked.keys, comms) as direct:
        direct.ping()
        good = direct.packet()
        direct.verify(good)
        forged = bytearray(direct.packet())
        forged[-4] ^= 0xFF
        cases = {
            Failure.TRUNCATED: good[:-3],
            Failure.OVERSIZED: good + bytes(2000),
            Failure.LENGTH_MISMATCH: good + b"\0",
            Failure.BAD_CRC: good[:-1] + bytes((good[-1] ^ 1,)),
            Failure.REPLAYED: good,
            Failure.UNKNOWN_APID: direct.packet(0x7F0),
            Failure.UNKNOWN_KEY: direct.packet(key_id=77),
            Failure.INACTIVE_KEY: direct.packet(key_id=2),
            Failure.UNKNOWN_SERVICE: direct.packet(kind=(20, 1)),
            Failure.MALFORMED: direct.packet(command="noop", kind=TC_PING),  # a ping carries no data
        }
        for code, packet in cases.items():
            reports = direct.verify(packet)
            assert reports[-1][:2] == (2, code), (code, reports)
        refused_mac = direct.verify(bytes(forged[:-2]) + _crc(bytes(forged[:-2])))
        assert refused_mac[-1][:2] == (2, Failure.BAD_MAC)
        # A burst of random bytes (over the flood limit too) and garbage on TCP.
        rng = random.Random(6)
        for _ in range(300):
            direct.sock.sendto(rng.randbytes(rng.randrange(0, 1100)), comms)
        with socket.create_connection(("127.0.0.1", linked.tcp), timeout=WAIT_S) as tcp:
            tcp.sendall(rng.randbytes(5000))
            try:  # the base sends this client telemetry, then hangs up on its garbage
                while tcp.recv(65536):
                    pass
            except ConnectionResetError:
                pass
        counted = linked.comms_hk(
            lambda hk: hk["tcp_garbage"] >= 1 and hk["tc_rejected_flood"] >= 1, "garbage and flood counted"
        )
        for code in (*cases, Failure.BAD_MAC, Failure.FLOOD):
            assert counted.data[f"tc_rejected_{code.name.lower()}"] >= 1, code
        assert counted.data["tc_rejected"] >= 300
        direct.ping()  # the link still answers
    assert not linked.base.event_history("process_started", "comms")[1:]  # never restarted
    linked.base.await_event("security_violation", "comms", timeout_s=WAIT_S)


def test_telemetry_held_during_a_blackout_leaves_when_the_link_returns(
    linked: LinkedBase, station: Station
) -> None:
    base = linked.base
    # The base's own answer to a radio fault (cycling the transmitter for 10 s) would hold the
    # link down after the fault clears: switched off for this test, through the link, armed.
    for command, args in (
        ("arm", {"command": "disable_monitor"}),
        ("disable_monitor", {"name": "radio_fault"}),
    ):
        assert station.verify(station.packet(PROTECTION, command, args))[-1][0] == 7
    cut_s = time.time()
    base.send_and_assert_command("simulator", "inject_fault", inject_args("comms", "link_loss"))
    linked.comms_hk(lambda hk: not hk["link_up"], "link down")
    unheard = station.send(station.packet())
    down = linked.comms_hk(
        lambda hk: hk["tc_rejected_no_link"] >= 1 and hk["radio_fault"], "radio fault, TC unheard"
    )
    later = base.await_message(
        lambda m: (
            m.kind is Kind.TELEMETRY and m.source == "comms" and m.name == "hk" and m.t_s >= down.t_s + 1.0
        ),
        WAIT_S,
        what="a blackout of a second",
    )
    assert later.data["queue_hk_messages"] > 0
    assert later.data["link_up"] is False
    station.heard.clear()
    restored_s = time.time()
    base.send_and_assert_command("simulator", "clear_fault", clear_command_args("comms", "link_loss"))
    radio_events = [e.name for e in CommsProcess.full_dictionary().events]

    def stored(service: int) -> list[Telemetry]:
        return [tm for _, _, tm in station.heard if tm.service == service and cut_s < tm.unix_s < restored_s]

    station.wait(lambda: stored(3), what="housekeeping stamped during the blackout")
    station.wait(
        lambda: any(
            radio_events[parse_event(tm.data)[0]] == "radio_fault" for tm in stored(5) if tm.apid == COMMS
        ),
        what="the radio_fault event raised during the blackout",
    )
    assert station.reports(unheard) == []  # what the radio did not hear is not answered
    assert station.verify(station.packet(PROTECTION, "enable_monitor", {"name": "radio_fault"}))[-1][0] == 7


def test_key_rotation_needs_arm_then_refuses_the_old_key(linked: LinkedBase, station: Station) -> None:
    unarmed = station.verify(station.packet(COMMS, "activate_key", {"key_id": 2}))
    assert unarmed[-1][:2] == (2, Failure.COMMAND_REJECTED)
    assert [s for s, _, _ in station.verify(station.packet(COMMS, "arm", {"command": "activate_key"}))][
        -1
    ] == 7
    assert [s for s, _, _ in station.verify(station.packet(COMMS, "activate_key", {"key_id": 2}))][-1] == 7
    old = station.verify(station.packet(key_id=1))
    assert old[-1][:2] == (2, Failure.INACTIVE_KEY)
    station.ring.activate(2)
    station.ping()
    hk = linked.comms_hk(lambda hk: hk["link_active_key"] == 2, "key 2 active")
    assert hk.data["tc_rejected_inactive_key"] >= 1
    linked.base.await_event("key_activated", "comms", {"key_id": 2, "previous": 1}, timeout_s=WAIT_S)


def test_the_replay_window_and_the_active_key_survive_a_kill_9_of_comms(linked: LinkedBase) -> None:
    base = linked.base
    try:
        active = linked.comms_hk(lambda hk: True, "comms housekeeping").data["link_active_key"]
        with Station(linked.keys, ("127.0.0.1", linked.udp)) as direct:
            direct.ring.activate(active)
            direct.ping()
            recorded = direct.packet()
            assert direct.verify(recorded)[-1][0] == 7
            old_pid = next(
                m.data["pid"] for m in reversed(base.history) if m.source == "comms" and "pid" in m.data
            )
            base.kill("comms")
            base.await_message(
                lambda m: (
                    m.kind is Kind.HEARTBEAT
                    and m.source == "comms"
                    and m.data.get("state") == "running"
                    and m.data.get("pid") != old_pid
                ),
                WAIT_S,
                what="comms running again",
            )
            again = linked.comms_hk(lambda hk: hk["link_up"], "link up again")
            assert again.data["link_active_key"] == active
            direct.ping()  # the new comms answers this socket from now on
            replayed = direct.verify(recorded)
            assert replayed[-1][:2] == (2, Failure.REPLAYED)
    finally:
        base.stop()  # the module's last test: the restarted comms must not outlive it


def _crc(body: bytes) -> bytes:
    import binascii  # noqa: PLC0415
    import struct  # noqa: PLC0415

    return struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))
