"""The base's end of the ground link, as one object: its pipeline, its sockets, its state.

A real :class:`~subsystems.groundlink.GroundLink` with real UDP and TCP sockets on
loopback, a real key file and a real state store; its host is a small recorder standing
in for the comms process (what it queues, the events it raises, whether a link is up).
Every hostile input is refused with its counted reason, and a valid ping still passes.
"""

from __future__ import annotations

import os
import select
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsw.dictionary import ArgType, Dictionary, EventDef, Point, Severity
from fsw.errors import ConfigError, LinkRejected
from fsw.security import WINDOW, create_key_file
from fsw.spacelink import (
    MAX_TC_BYTES,
    TC_FUNCTION,
    TC_PING,
    UNDECLARED_EVENT,
    Failure,
    HousekeepingLayout,
    Telecommand,
    decode_tm,
    encode_tc,
    link_apids,
    parse_event,
    parse_verification,
)
from fsw.timesource import FakeTime
from subsystems.groundlink import (
    GroundLink,
    LinkConfig,
    Origin,
    StreamFramer,
    TelemetryEncoder,
    TokenBucket,
    parse_address,
    read_link_config,
)

WAIT_S = 5.0
COMMS = 0x12
SENDER = Origin("udp", ("127.0.0.1", 40000))


class Host:
    """Stands in for the comms process: records what the link asks of it."""

    def __init__(self) -> None:
        self.up = True
        self.reports: list[bytes] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.contacts = 0

    def link_is_up(self) -> bool:
        return self.up

    def link_mission_time_s(self) -> float:
        return 100.0

    def queue_report(self, packet: bytes) -> None:
        self.reports.append(packet)

    def link_event(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))

    def link_note(self, name: str, data: dict[str, Any], *, error: bool = False) -> None:
        self.notes.append((name, data))

    def ground_contact(self) -> None:
        self.contacts += 1

    def take(self) -> list[tuple[int, int, bytes, int | None, str]]:
        """(service, subtype, request, failure code, reason) of every report since the last take."""
        out = []
        for packet in self.reports:
            tm = decode_tm(packet)
            if tm.service == 1:
                request, code, reason = parse_verification(tm.data)
                out.append((tm.service, tm.subtype, request, code, reason))
            else:
                out.append((tm.service, tm.subtype, b"", None, ""))
        self.reports.clear()
        return out


class Ground:
    """Builds telecommands under the key file's keys, with fresh sequence numbers."""

    def __init__(self, keys_path: Path) -> None:
        from fsw.security import load_key_file  # noqa: PLC0415

        self.ring = load_key_file(keys_path)
        self.sequence = 0
        self.count = 0

    def tc(
        self,
        apid: int = COMMS,
        *,
        key_id: int | None = None,
        command: str | None = None,
        kind: tuple[int, int] | None = None,
        **args: Any,
    ) -> bytes:
        """A telecommand: TC[17,1], or TC[8,1] ``command`` with ``args``; ``kind`` forces the service."""
        self.sequence += 1
        self.count += 1
        key_id = self.ring.active if key_id is None else key_id
        service, subtype = kind or (TC_PING if command is None else TC_FUNCTION)
        tc = Telecommand(apid, service, subtype, self.count, key_id, self.sequence, command, args)
        return encode_tc(tc, self.ring.keys.get(key_id, bytes(32)))


def config(tmp: Path, **changes: Any) -> LinkConfig:
    values: dict[str, Any] = {
        "udp": ("127.0.0.1", 0),
        "tcp": ("127.0.0.1", 0),
        "keys_path": tmp / "keys" / "link.toml",
        "store_path": tmp / "comms.db",
        "tc_rate_per_s": 1000.0,
        "tc_per_wakeup": 64,
    }
    values.update(changes)
    return LinkConfig(**values)


DICTIONARIES = {
    "power": Dictionary(
        telemetry=(Point("soc", ArgType.FLOAT), Point("mode", ArgType.STR)),
        events=(EventDef("shed", Severity.WARNING), EventDef("restored", Severity.INFO)),
    )
}


def open_link(tmp: Path, host: Host, time: FakeTime | None = None, **changes: Any) -> GroundLink:
    apids = link_apids(["power", "comms"], {})
    encoder = TelemetryEncoder(apids, DICTIONARIES, 1.9e9)
    return GroundLink(
        config(tmp, **changes), host=host, encoder=encoder, own_apid=COMMS, time_source=time or FakeTime()
    )


@pytest.fixture
def host() -> Host:
    return Host()


@pytest.fixture
def link(tmp_path: Path, host: Host) -> Iterator[GroundLink]:
    with open_link(tmp_path, host) as opened:
        assert opened.open_endpoints()
        yield opened


@pytest.fixture
def ground(link: GroundLink) -> Ground:
    return Ground(link.config.keys_path)


def ping_passes(link: GroundLink, host: Host, ground: Ground) -> None:
    host.reports.clear()
    link.handle([(ground.tc(), SENDER)])
    assert [(s, t) for s, t, *_ in host.take()] == [(1, 1), (17, 2), (1, 7)]


def refused(link: GroundLink, host: Host, packet: bytes, code: Failure, *, reply: bool = True) -> None:
    before = link.counters.rejected[code]
    host.reports.clear()
    link.handle([(packet, SENDER)])
    assert link.counters.rejected[code] == before + 1, link.counters.rejected
    reports = host.take()
    if reply:
        assert [(s, t, c) for s, t, _, c, _ in reports] == [(1, 2, code)]
    else:
        assert reports == []


# --- the pipeline ------------------------------------------------------------------------


def test_a_ping_is_accepted_pongs_and_completes_and_counts_as_contact(
    link: GroundLink, host: Host, ground: Ground
) -> None:
    ping_passes(link, host, ground)
    assert host.contacts == 1
    assert link.counters.accepted == link.counters.pings == 1


def test_every_hostile_input_is_refused_with_its_reason_and_the_link_still_answers(
    link: GroundLink, host: Host, ground: Ground
) -> None:
    good = ground.tc()
    link.handle([(good, SENDER)])
    cases = [
        (good[:4], Failure.TRUNCATED, False),  # no header: nothing to answer
        (good[:-3], Failure.TRUNCATED, True),
        (good + bytes(MAX_TC_BYTES), Failure.OVERSIZED, True),
        (good + b"\0", Failure.LENGTH_MISMATCH, True),
        (good[:-1] + bytes((good[-1] ^ 0xFF,)), Failure.BAD_CRC, True),
        (good, Failure.REPLAYED, True),
        (ground.tc(0x7F0), Failure.UNKNOWN_APID, True),
        (ground.tc(key_id=9), Failure.UNKNOWN_KEY, True),
        (ground.tc(key_id=2), Failure.INACTIVE_KEY, True),
        (ground.tc(command="noop", kind=TC_PING), Failure.MALFORMED, True),  # a ping carries no data
        (ground.tc(kind=(20, 3)), Failure.UNKNOWN_SERVICE, True),
    ]
    forged = bytearray(ground.tc())
    forged[-5] ^= 1  # inside the MAC; the CRC redone
    cases.append((_with_crc(bytes(forged[:-2])), Failure.BAD_MAC, True))
    not_tc = bytearray(good)
    not_tc[0] &= ~0x10  # the packet type bit: telemetry
    cases.append((_with_crc(bytes(not_tc[:-2])), Failure.NOT_TELECOMMAND, True))
    for packet, code, reply in cases:
        refused(link, host, packet, code, reply=reply)
        ping_passes(link, host, ground)
    ground.sequence += WINDOW
    ping_passes(link, host, ground)
    ground.sequence -= WINDOW + 2  # never seen, but older than the window below the highest
    refused(link, host, ground.tc(), Failure.REPLAYED)
    ground.sequence += WINDOW + 2
    ping_passes(link, host, ground)
    violations = [name for name, _ in host.events if name == "security_violation"]
    assert violations  # throttled to one a second: the fake clock stands still
    assert {name for name, _ in host.events} >= {"tc_rejected", "security_violation"}
    rejected = link.counters.rejected
    after_acceptance = rejected[Failure.MALFORMED] + rejected[Failure.UNKNOWN_SERVICE]  # refused once decoded
    assert link.counters.received == link.counters.accepted + sum(rejected.values()) - after_acceptance
    assert all(ground.ring.keys[1].hex() not in repr(data) for _, data in host.events)


def test_a_flood_is_refused_without_replies_and_the_link_answers_once_it_passes(
    tmp_path: Path, host: Host
) -> None:
    time = FakeTime()
    with open_link(tmp_path, host, time, tc_rate_per_s=10.0) as link:
        ground = Ground(link.config.keys_path)
        link.handle([(ground.tc(), SENDER) for _ in range(50)])
        assert link.counters.accepted == 10  # a second's worth of burst
        assert link.counters.rejected[Failure.FLOOD] == 40
        assert len(host.take()) == 30  # three reports per ping, none for the flood
        assert sum(1 for name, d in host.events if d.get("code") == "FLOOD") == 1
        time.advance(1.0)
        ping_passes(link, host, ground)
        flood = [d for name, d in host.events if d.get("code") == "FLOOD"]
        assert len(flood) == 1


def test_nothing_is_heard_while_no_link_is_up(link: GroundLink, host: Host, ground: Ground) -> None:
    host.up = False
    refused(link, host, ground.tc(), Failure.NO_LINK, reply=False)
    assert host.contacts == 0
    host.up = True
    ping_passes(link, host, ground)


def test_a_replay_inside_one_batch_is_refused(link: GroundLink, host: Host, ground: Ground) -> None:
    packet = ground.tc()
    link.handle([(packet, SENDER), (packet, SENDER)])
    assert link.counters.accepted == 1
    assert link.counters.rejected[Failure.REPLAYED] == 1


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    packets=st.lists(st.binary(max_size=80) | st.builds(lambda n: b"\x18\x12" + bytes(n), st.integers(0, 40)))
)
def test_arbitrary_bytes_never_raise_and_every_packet_is_accounted_for(
    tmp_path: Path, packets: list[bytes]
) -> None:
    host = Host()
    with open_link(tmp_path, host) as link:  # one state for every example: the window only grows
        ground = Ground(link.config.keys_path)
        ground.sequence = link.window.highest(1) or 0
        link.handle([(p, SENDER) for p in packets])
        assert link.counters.received == len(packets)
        assert sum(link.counters.rejected.values()) == len(packets)
        ping_passes(link, host, ground)


# --- keys and state ----------------------------------------------------------------------


def test_rotation_makes_the_old_key_inactive_and_survives_a_restart(tmp_path: Path, host: Host) -> None:
    with open_link(tmp_path, host) as link:
        ground = Ground(link.config.keys_path)
        ping_passes(link, host, ground)
        assert link.activate_key(2) == 1
        assert ("key_activated", {"key_id": 2, "previous": 1}) in host.events
        refused(link, host, ground.tc(key_id=1), Failure.INACTIVE_KEY)
        with pytest.raises(ConfigError, match="no key 7"):
            link.activate_key(7)
    with open_link(tmp_path, host) as again:
        assert again.keys is not None
        assert again.keys.active == 2
        ground.ring.activate(2)
        ping_passes(again, host, ground)


def test_the_replay_window_survives_a_restart(tmp_path: Path, host: Host) -> None:
    with open_link(tmp_path, host) as link:
        ground = Ground(link.config.keys_path)
        packets = [ground.tc() for _ in range(3)]
        link.handle([(packets[0], SENDER), (packets[2], SENDER)])
    with open_link(tmp_path, host) as again:
        refused(again, host, packets[0], Failure.REPLAYED)
        refused(again, host, packets[2], Failure.REPLAYED)
        link_points = again.points()
        assert link_points["tc_sequence_highest"] == 3
        again.handle([(packets[1], SENDER)])  # out of order inside the window, never seen: fine
        assert again.counters.accepted == 1


def test_a_missing_key_file_is_created_private_and_its_keys_never_reported(
    tmp_path: Path, host: Host
) -> None:
    with open_link(tmp_path, host) as link:
        path = link.config.keys_path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert host.notes == [("key_file_created", {"path": str(path)})]  # logged, not an event
        assert host.events == []
        assert link.keys is not None
        assert all(key.hex() not in repr(host.notes) for key in link.keys.keys.values())


def test_a_bad_key_file_refuses_every_telecommand_and_says_why(tmp_path: Path, host: Host) -> None:
    keys = tmp_path / "keys" / "link.toml"
    keys.parent.mkdir()
    keys.write_text("active = 1\n[keys]\n1 = 'tooshort'\n", encoding="utf-8")
    with open_link(tmp_path, host) as link:
        assert link.keys is None
        assert host.events[0][0] == "key_file_error"
        key = create_key_file(tmp_path / "other.toml").key(1)
        packet = encode_tc(Telecommand(COMMS, *TC_PING, 1, 1, 1), key)
        refused(link, host, packet, Failure.UNKNOWN_KEY)
        assert link.points()["link_active_key"] == -1


def test_a_damaged_state_store_is_set_aside_and_reported(tmp_path: Path, host: Host) -> None:
    (tmp_path / "comms.db").write_bytes(b"not a database at all" * 100)
    with open_link(tmp_path, host) as link:
        assert host.events[0][0] == "link_state_lost"
        assert any(p.name.startswith("comms.db.damaged") for p in tmp_path.iterdir())
        ping_passes(link, host, Ground(link.config.keys_path))


# --- sockets -----------------------------------------------------------------------------


def wait_readable(link: GroundLink) -> None:
    ready, _, _ = select.select([link.fileno()], [], [], WAIT_S)
    assert ready, "the link's descriptor never became readable"


def receive(sock: socket.socket, count: int) -> list[tuple[int, int, int]]:
    """(service, subtype, seq_count) of the next ``count`` packets on a UDP socket."""
    out = []
    for _ in range(count):
        tm = decode_tm(sock.recvfrom(65536)[0])
        out.append((tm.service, tm.subtype, tm.seq_count))
    return out


def test_udp_telemetry_goes_to_the_last_valid_sender_numbered_per_apid(
    link: GroundLink, host: Host, ground: Ground
) -> None:
    port = link.endpoints["udp"][1]
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as station,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
    ):
        station.settimeout(WAIT_S)
        stranger.settimeout(0.2)
        link.send(link.encoder.report(COMMS, (17, 2), 0.0))
        assert link.counters.tm_unaddressed == 1  # nobody has sent a valid telecommand yet
        station.sendto(ground.tc(), ("127.0.0.1", port))
        wait_readable(link)
        link.service()
        stranger.sendto(b"\x18\x12junk", ("127.0.0.1", port))
        wait_readable(link)
        link.service()
        for packet in host.reports:
            link.send(packet)
        link.send(link.encoder.report(0x10, (17, 2), 0.0))
        # The ping's reports, the junk's refusal (to the last valid sender), power's first packet.
        assert receive(station, 5) == [(1, 1, 1), (17, 2, 2), (1, 7, 3), (1, 2, 4), (17, 2, 0)]
        with pytest.raises(TimeoutError):
            stranger.recvfrom(65536)  # an unauthenticated sender gets nothing


def test_tcp_packets_back_to_back_and_split_are_framed_and_garbage_drops_the_client(
    link: GroundLink, host: Host, ground: Ground
) -> None:
    address = ("127.0.0.1", link.endpoints["tcp"][1])
    with socket.create_connection(address, timeout=WAIT_S) as client:
        wait_readable(link)
        link.service()  # accepts
        stream = ground.tc() + ground.tc()
        client.sendall(stream[:7])
        wait_readable(link)
        link.service()
        assert link.counters.accepted == 0
        client.sendall(stream[7:])
        while link.counters.accepted < 2:
            wait_readable(link)
            link.service()
        assert link.points()["tcp_clients"] == 1
        expected = sum(len(packet) for packet in host.reports)
        for packet in host.reports:
            link.send(packet)
        got = b""
        while len(got) < expected:
            got += client.recv(65536)
        assert [decode_tm(got[i : i + 26]).subtype for i in (0, 48)] == [1, 7]  # TM[1,1], TM[17,2], TM[1,7]
        client.sendall(b"\xff" * 40)
        while link.points()["tcp_clients"]:
            wait_readable(link)
            link.service()
        assert link.counters.tcp_garbage == 1
        assert link.counters.rejected[Failure.NOT_TELECOMMAND] == 1
        assert client.recv(100) == b""  # the base hung up
    with socket.create_connection(address, timeout=WAIT_S) as again:
        wait_readable(link)
        link.service()
        again.sendall(ground.tc())
        while link.counters.accepted < 3:
            wait_readable(link)
            link.service()


def test_too_many_tcp_clients_are_refused_and_counted(link: GroundLink) -> None:
    from subsystems.groundlink import TCP_CLIENTS_MAX  # noqa: PLC0415

    address = ("127.0.0.1", link.endpoints["tcp"][1])
    clients: list[socket.socket] = []
    try:
        for _ in range(TCP_CLIENTS_MAX + 1):
            clients.append(socket.create_connection(address, timeout=WAIT_S))
            while link.points()["tcp_clients"] + link.counters.tcp_refused < len(clients):
                wait_readable(link)
                link.service()
        assert link.points()["tcp_clients"] == TCP_CLIENTS_MAX
        assert link.counters.tcp_refused == 1
    finally:
        for client in clients:
            client.close()


def test_an_endpoint_in_use_is_logged_and_tried_again_later(tmp_path: Path, host: Host) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 0))
    time = FakeTime()
    with open_link(tmp_path, host, time, udp=squatter.getsockname(), tcp=None) as link:
        try:
            assert not link.open_endpoints()
            assert host.notes[-1][0] == "link_endpoint_failed"  # logged: it depends on the host
            assert link.reopen_at_s == 10.0
            assert link.points()["link_endpoints_open"] is False
            time.advance(10.0)
            assert not link.open_endpoints()
            assert [n for n, _ in host.notes].count("link_endpoint_failed") == 1  # once, not every 10 s
        finally:
            squatter.close()
        assert link.open_endpoints()  # the port is free again
        assert host.notes[-1][0] == "link_endpoint_open"
        assert link.reopen_at_s is None


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=60), max_size=10))
def test_the_tcp_framer_takes_whole_packets_or_says_the_stream_is_garbage(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_buffer_bytes=4096)
    taken = b""
    garbage: LinkRejected | None = None
    for chunk in chunks:
        framer.feed(chunk)
        try:
            while (packet := framer.next_packet()) is not None:
                taken += packet
        except LinkRejected as exc:
            garbage = exc
            break
    assert garbage is None or garbage.code in (Failure.NOT_TELECOMMAND, Failure.OVERSIZED, Failure.TRUNCATED)
    assert b"".join(chunks).startswith(taken)


# --- telemetry ---------------------------------------------------------------------------


def test_housekeeping_and_events_are_pus_telemetry_of_their_source() -> None:
    encoder = TelemetryEncoder(link_apids(["power"], {}), DICTIONARIES, 1.9e9)
    packet = encoder.housekeeping("power", 10.0, {"soc": 0.5, "mode": "OK", "other": 1})
    assert packet is not None
    tm = decode_tm(packet)
    assert (tm.apid, tm.service, tm.subtype, tm.unix_s) == (0x10, 3, 25, 1.9e9 + 10.0)
    assert HousekeepingLayout(0x10, DICTIONARIES["power"].telemetry).unpack(tm.data) == {
        "soc": 0.5,
        "mode": "OK",
    }
    event = encoder.event("power", "shed", 11.0, {"severity": "warning", "tier": 4})
    assert event is not None
    tm = decode_tm(event)
    assert (tm.service, tm.subtype) == (5, 2)
    assert parse_event(tm.data) == (0, {"tier": 4})
    undeclared = encoder.event("supervisor", "child_restarted", 12.0, {"severity": "error", "process": "x"})
    assert undeclared is not None
    tm = decode_tm(undeclared)
    assert (tm.apid, tm.subtype) == (0x01, 3)
    assert parse_event(tm.data) == (UNDECLARED_EVENT, {"event": "child_restarted", "process": "x"})
    assert encoder.event("nobody", "x", 0.0, {}) is None
    assert encoder.housekeeping("nobody", 0.0, {}) is None


def test_the_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0, 2.0, 0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5)
    assert not bucket.take(0.5)


def test_link_settings_are_checked_and_name_the_key(tmp_path: Path) -> None:
    numbers = {"tc_rate_per_s": 10.0, "tc_per_wakeup": 8.0}
    cfg = read_link_config({}, numbers, state_dir=tmp_path / "s", run_dir=tmp_path)
    assert (cfg.udp, cfg.tcp) == (("127.0.0.1", 10025), ("127.0.0.1", 10026))
    assert cfg.keys_path == tmp_path / "s" / "keys" / "link.toml"
    off = read_link_config({"link_udp": "", "link_tcp": ""}, numbers, state_dir=tmp_path, run_dir=tmp_path)
    assert off.udp is off.tcp is None
    assert parse_address("[::1]:5", "x") == ("::1", 5)
    for key, value in (
        ("link_udp", "example.org:1"),
        ("link_tcp", "1.2.3.4"),
        ("epoch_utc", "soon"),
        ("keys", 3),
    ):
        with pytest.raises(ConfigError, match=key):
            read_link_config({key: value}, numbers, state_dir=tmp_path, run_dir=tmp_path)
    with pytest.raises(ConfigError, match="apids"):
        read_link_config({"apids": {"power": "x"}}, numbers, state_dir=tmp_path, run_dir=tmp_path)


def _with_crc(body: bytes) -> bytes:
    import binascii  # noqa: PLC0415
    import struct  # noqa: PLC0415

    return body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))
