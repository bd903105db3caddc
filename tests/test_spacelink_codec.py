"""The space link's packets and security: round trips, hostile bytes, spacepackets agrees.

Pure: no processes, no sockets. Every packet the base builds is decoded here with
``spacepackets`` too, as another ground system would.
"""

from __future__ import annotations

import binascii
import os
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ecss import PusTm
from spacepackets.ecss.pus_1_verification import ManagedParamsVerification, Service1Tm
from spacepackets.ecss.tm import ManagedParams

from fsw.dictionary import ArgType, Point
from fsw.errors import ConfigError, LinkRejected
from fsw.security import WINDOW, KeyRing, ReplayWindow, create_key_file, load_key_file
from fsw.spacelink import (
    DEFAULT_APIDS,
    FAILURE_CODE_BITS,
    MAX_REASON_BYTES,
    MAX_TC_BYTES,
    MISSING_INT,
    TC_FUNCTION,
    TC_PING,
    TIMESTAMP_LEN,
    Failure,
    HousekeepingLayout,
    Telecommand,
    apid_map,
    decode_service,
    decode_tm,
    encode_tc,
    encode_tm,
    event_data,
    parse_event,
    parse_tc,
    parse_verification,
    unix_from_cds,
    verification_data,
    verify_mac,
    with_sequence_count,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

apids = st.integers(min_value=1, max_value=0x7FE)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=24)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
arg_maps = st.dictionaries(st.text(max_size=10), scalars, max_size=5)
telecommands = st.builds(
    Telecommand,
    apid=apids,
    service=st.just(8),
    subtype=st.just(1),
    seq_count=st.integers(min_value=0, max_value=0x3FFF),
    key_id=st.integers(min_value=0, max_value=0xFFFF),
    sequence=st.integers(min_value=0, max_value=2**32 - 1),
    command=names,
    args=arg_maps,
    source_id=st.integers(min_value=0, max_value=0xFFFF),
) | st.builds(
    Telecommand,
    apid=apids,
    service=st.just(17),
    subtype=st.just(1),
    seq_count=st.integers(min_value=0, max_value=0x3FFF),
    key_id=st.integers(min_value=0, max_value=0xFFFF),
    sequence=st.integers(min_value=0, max_value=2**32 - 1),
)


# --- telecommands ------------------------------------------------------------------------


def take(packet: bytes, key: bytes = KEY) -> Telecommand:
    """What the base does with a packet: framing, MAC, service; raises :class:`LinkRejected`."""
    raw = parse_tc(packet)
    verify_mac(raw, key)
    return decode_service(raw)


def refusal(packet: bytes, decoder: Any = take) -> LinkRejected | None:
    """The refusal ``decoder`` raises for ``packet``, or None if it took it."""
    try:
        decoder(packet)
    except LinkRejected as exc:
        return exc
    return None


@given(telecommands)
def test_a_telecommand_survives_encode_parse_verify_decode(tc: Telecommand) -> None:
    packet = encode_tc(tc, KEY)
    raw = parse_tc(packet)
    verify_mac(raw, KEY)
    assert decode_service(raw) == tc
    assert raw.request == tc.request == packet[:4]


@given(telecommands, st.data())
def test_any_single_bit_flip_is_refused(tc: Telecommand, data: st.DataObject) -> None:
    packet = bytearray(encode_tc(tc, KEY))
    bit = data.draw(st.integers(min_value=0, max_value=len(packet) * 8 - 1))
    packet[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(LinkRejected):
        take(bytes(packet))


@given(telecommands)
def test_another_key_is_a_bad_mac(tc: Telecommand) -> None:
    raw = parse_tc(encode_tc(tc, KEY))
    with pytest.raises(LinkRejected) as caught:
        verify_mac(raw, OTHER_KEY)
    assert caught.value.code == Failure.BAD_MAC
    assert caught.value.request == tc.request


@given(st.binary(max_size=MAX_TC_BYTES + 40))
def test_arbitrary_bytes_are_refused_with_a_code_never_a_crash(packet: bytes) -> None:
    exc = refusal(packet)
    if exc is not None:
        assert exc.code in set(Failure)
        assert exc.request is None or len(exc.request) == 4


def with_crc(body: bytes) -> bytes:
    """``body`` (a packet without its CRC) with a correct CRC-16-CCITT appended."""
    return body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


@given(telecommands, st.data())
def test_changes_behind_a_good_crc_are_caught_by_the_mac_or_the_framing(
    tc: Telecommand, data: st.DataObject
) -> None:
    packet = encode_tc(tc, KEY)
    offset = data.draw(st.integers(min_value=0, max_value=len(packet) - 3))
    patch = data.draw(st.binary(min_size=1, max_size=8))
    body = bytearray(packet[:-2])
    body[offset : offset + len(patch)] = patch
    mangled = with_crc(bytes(body[: len(packet) - 2]))
    if refusal(mangled) is None:
        assert mangled == packet  # only a patch that changed nothing gets through
        assert take(mangled) == tc


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda p: p[:5], Failure.TRUNCATED),
        (lambda p: p[:-1], Failure.TRUNCATED),
        (lambda p: p + b"\0", Failure.LENGTH_MISMATCH),
        (lambda p: p[:-2] + bytes((p[-2] ^ 1, p[-1])), Failure.BAD_CRC),
        (lambda p: p + bytes(MAX_TC_BYTES), Failure.OVERSIZED),
    ],
    ids=["short-header", "short", "trailing", "crc", "oversized"],
)
def test_framing_failures_have_their_codes(mangle: Any, code: Failure) -> None:
    packet = encode_tc(Telecommand(0x10, *TC_PING, 1, 1, 1), KEY)
    with pytest.raises(LinkRejected) as caught:
        parse_tc(mangle(packet))
    assert caught.value.code == code


def test_unknown_services_and_bad_service_data_are_refused_after_the_mac() -> None:
    unknown = parse_tc(encode_tc(Telecommand(0x10, 20, 1, 1, 1, 1), KEY))
    verify_mac(unknown, KEY)
    with pytest.raises(LinkRejected) as caught:
        decode_service(unknown)
    assert caught.value.code == Failure.UNKNOWN_SERVICE
    for name, args in (("x" * 255, {"a": 1}), ("ok", {})):
        raw = parse_tc(encode_tc(Telecommand(0x10, *TC_FUNCTION, 1, 1, 1, name, args), KEY))
        assert decode_service(raw).command == name
    raw = parse_tc(encode_tc(Telecommand(0x10, *TC_FUNCTION, 1, 1, 1, "noop"), KEY))
    bad = type(raw)(**{**raw.__dict__, "service_data": raw.service_data + b"\xc1"})  # msgpack "never used"
    with pytest.raises(LinkRejected) as caught:
        decode_service(bad)
    assert caught.value.code == Failure.MALFORMED


def test_a_too_long_telecommand_is_refused_when_encoded() -> None:
    with pytest.raises(ConfigError, match="exceeds"):
        encode_tc(Telecommand(0x10, *TC_FUNCTION, 1, 1, 1, "x", {"blob": "y" * MAX_TC_BYTES}), KEY)


# --- telemetry ---------------------------------------------------------------------------


@given(
    apids,
    st.sampled_from([(1, 1), (1, 2), (3, 25), (5, 1), (5, 4), (17, 2)]),
    st.binary(max_size=300),
    st.floats(min_value=0.0, max_value=3e9),
    st.integers(min_value=0, max_value=0x3FFF),
)
def test_telemetry_decodes_here_and_with_spacepackets(
    apid: int, kind: tuple[int, int], data: bytes, unix_s: float, count: int
) -> None:
    packet = with_sequence_count(encode_tm(apid, kind, data, unix_s=unix_s), count)
    tm = decode_tm(packet)
    assert (tm.apid, tm.service, tm.subtype, tm.seq_count, tm.data) == (apid, *kind, count, data)
    assert tm.unix_s == pytest.approx(unix_s, abs=0.001)
    theirs = PusTm.unpack(packet, timestamp_len=TIMESTAMP_LEN)
    assert (theirs.apid, theirs.service, theirs.message_subtype) == (apid, *kind)
    assert bytes(theirs.source_data) == data
    assert unix_from_cds(bytes(theirs.timestamp)) == tm.unix_s


@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_telemetry_are_refused_never_a_crash(packet: bytes) -> None:
    exc = refusal(packet, decode_tm)
    if exc is not None:
        assert exc.code in set(Failure)


@given(
    st.binary(min_size=4, max_size=4),
    st.none() | st.sampled_from(Failure),
    st.text(max_size=150),
)
def test_verification_data_round_trips_and_cuts_reasons_on_a_character(
    request: bytes, failure: Failure | None, reason: str
) -> None:
    got_request, code, text = parse_verification(verification_data(request, failure, reason))
    assert got_request == request
    assert code == failure
    if failure is None:
        assert text == ""
    else:
        assert reason.startswith(text)
        assert len(text.encode()) <= MAX_REASON_BYTES
        assert len(text.encode()) > MAX_REASON_BYTES - 4 or text == reason


@pytest.mark.parametrize("failure", list(Failure))
def test_every_failure_code_is_sixteen_bits_and_spacepackets_reads_it(failure: Failure) -> None:
    assert FAILURE_CODE_BITS == 16
    assert 0 < failure < 2**FAILURE_CODE_BITS
    request = struct.pack(">HH", 0x1810, 0xC005)
    packet = encode_tm(0x10, (1, 2), verification_data(request, failure, "why"), unix_s=1.9e9)
    report = Service1Tm.unpack(
        packet, ManagedParams(timestamp_len=TIMESTAMP_LEN), ManagedParamsVerification(bytes_err_code=2)
    )
    assert report.tc_req_id.pack() == request
    assert report.failure_notice is not None
    assert report.failure_notice.code.val == failure
    assert report.failure_notice.data == b"why"


points = st.lists(
    st.builds(Point, name=names, type=st.sampled_from(ArgType)), max_size=12, unique_by=lambda p: p.name
)


def value_of(kind: ArgType) -> st.SearchStrategy[Any]:
    return {
        ArgType.FLOAT: st.floats(allow_nan=False),
        ArgType.INT: st.integers(min_value=MISSING_INT + 1, max_value=2**63 - 1),
        ArgType.BOOL: st.booleans(),
        ArgType.STR: st.text(max_size=300),
    }[kind]


@given(points, st.integers(min_value=1, max_value=0x7FE), st.data())
def test_housekeeping_layout_round_trips_with_missing_points(
    layout_points: list[Point], structure_id: int, data: st.DataObject
) -> None:
    layout = HousekeepingLayout(structure_id, layout_points)
    values = {
        p.name: data.draw(st.none() | value_of(p.type), label=p.name)
        for p in layout_points
        if data.draw(st.booleans(), label=f"{p.name} present")
    }
    back = layout.unpack(layout.pack(values))
    assert set(back) == {p.name for p in layout_points}
    for point in layout_points:
        sent = values.get(point.name)
        if point.type is ArgType.STR:
            text = "" if sent is None else sent
            assert text.startswith(back[point.name])
            assert len(back[point.name].encode()) <= 255
        else:
            assert back[point.name] == sent


def test_housekeeping_refuses_another_structure_and_short_or_long_data() -> None:
    layout = HousekeepingLayout(0x10, [Point("a", ArgType.INT), Point("b", ArgType.STR)])
    data = layout.pack({"a": 1, "b": "x"})
    for bad in (data[:-1], data + b"\0", struct.pack(">H", 0x11) + data[2:], b"\0"):
        with pytest.raises(LinkRejected):
            layout.unpack(bad)


@given(st.integers(min_value=0, max_value=0xFFFF), st.dictionaries(st.text(max_size=10), scalars, max_size=6))
def test_event_data_round_trips(event_id: int, fields: dict[str, Any]) -> None:
    assert parse_event(event_data(event_id, fields)) == (event_id, fields)


# --- APIDs -------------------------------------------------------------------------------


def test_apids_are_the_defaults_then_the_next_free_by_name_and_overrides_win() -> None:
    found = apid_map(["zeta", "power", "bus", "alpha", "spacelink"])
    assert found["power"] == DEFAULT_APIDS["power"] == 0x10
    assert found["bus"] == 0x03  # the router's process is named "bus"
    assert (found["alpha"], found["zeta"]) == (0x20, 0x21)
    assert apid_map(["power"], {"power": 0x100}) == {"power": 0x100}
    with pytest.raises(ConfigError, match="given to both"):
        apid_map(["power", "thermal"], {"thermal": 0x10})
    with pytest.raises(ConfigError, match="must be"):
        apid_map(["power"], {"power": 0x7FF})


# --- security ----------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=80))
def test_replay_window_accepts_each_sequence_once_and_nothing_too_old(sequences: list[int]) -> None:
    window = ReplayWindow()
    accepted: set[int] = set()
    for sequence in sequences:
        highest = max(accepted, default=None)
        expected = sequence not in accepted and (highest is None or sequence > highest - WINDOW)
        assert window.fresh(1, sequence) == expected
        if expected:
            window.accept(1, sequence)
            accepted.add(sequence)
        assert not window.fresh(1, sequence)
        assert window.fresh(2, sequence)  # each key has its own window
    again = ReplayWindow.from_state(window.state())
    for sequence in range(0, 470):
        assert again.fresh(1, sequence) == window.fresh(1, sequence)


def test_replay_window_state_ignores_entries_that_are_not_its_own() -> None:
    window = ReplayWindow.from_state({"1": [5, 1], "x": [1, 1], "2": "no", "3": [1, 2, 3]})
    assert window.state() == {"1": [5, 1]}


def test_a_key_file_is_private_never_overwritten_and_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "link.toml"
    ring = create_key_file(path, (1, 2), active=2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_key_file(path)
    assert loaded.keys == ring.keys
    assert loaded.active == 2
    for shown in (repr(loaded), str(loaded)):
        assert all(key.hex() not in shown for key in ring.keys.values())
    with pytest.raises(ConfigError, match="exists"):
        create_key_file(path)
    secret = ring.keys[1].hex()
    path.write_text(f'active = 1\n[keys]\n1 = "{secret}"\n2 = "{secret[:10]}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_key_file(path)
    assert secret[:10] not in str(caught.value)
    path.write_text(f'active = 1\n[keys\n1 = "{secret}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_key_file(path)
    assert secret not in str(caught.value)


def test_a_key_ring_activates_only_keys_it_has() -> None:
    ring = KeyRing({1: KEY, 2: OTHER_KEY}, 1)
    ring.activate(2)
    assert ring.active == 2
    with pytest.raises(ConfigError, match="no key 3"):
        ring.activate(3)
    with pytest.raises(ConfigError, match="not among"):
        KeyRing({1: KEY}, 2)
