"""The ground's telemetry decoding: its fast path agrees with the reference, and nothing crashes it."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.deployment import load_default
from fsw.dictionary import ArgType, Dictionary, EventDef, Point, Severity
from fsw.errors import LinkRejected
from fsw.spacelink import (
    UNDECLARED_EVENT,
    Failure,
    HousekeepingLayout,
    decode_tm,
    encode_tm,
    event_data,
    request_id,
    verification_data,
)
from ground.mission import MissionDatabase
from ground.telemetry import (
    EVENT,
    HK,
    INVALID,
    PONG,
    VERIFICATION,
    TelemetryDecoder,
    fast_decode_tm,
)

POINTS = (
    Point("voltage_v", ArgType.FLOAT, "V"),
    Point("count", ArgType.INT),
    Point("on", ArgType.BOOL),
    Point("mode", ArgType.STR),
    Point("temp_c", ArgType.FLOAT, "C"),
    Point("label", ArgType.STR),
)

MISSION = MissionDatabase(
    {
        "power": Dictionary(
            telemetry=POINTS,
            events=(EventDef("load_switched", Severity.INFO), EventDef("bus_low", Severity.WARNING)),
        )
    },
    {"power": 0x10},
)

values_of = st.fixed_dictionaries(
    {},
    optional={
        "voltage_v": st.floats(allow_nan=True, allow_infinity=True),
        "count": st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
        "on": st.booleans(),
        "mode": st.text(max_size=80),
        "temp_c": st.floats(width=32),
        "label": st.text(alphabet="abcxyz", max_size=300),
    },
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


class TestFastDecode:
    @given(
        apid=st.integers(1, 0x7FE),
        service=st.integers(0, 255),
        subtype=st.integers(0, 255),
        data=st.binary(max_size=300),
        unix_s=st.floats(0.0, 4e9),
        seq=st.integers(0, 0x3FFF),
        counter=st.integers(0, 0xFFFF),
    )
    def test_fast_path_agrees_with_the_reference(
        self, apid: int, service: int, subtype: int, data: bytes, unix_s: float, seq: int, counter: int
    ) -> None:
        packet = encode_tm(
            apid, (service, subtype), data, unix_s=unix_s, seq_count=seq, message_counter=counter
        )
        assert fast_decode_tm(packet) == decode_tm(packet)

    @given(st.binary(max_size=120))
    def test_garbage_is_refused_like_the_reference_refuses_it(self, garbage: bytes) -> None:
        try:
            expected: object = decode_tm(garbage)
        except LinkRejected as exc:
            expected = exc.code
        try:
            got: object = fast_decode_tm(garbage)
        except LinkRejected as exc:
            got = exc.code
        assert got == expected

    @given(st.integers(0, 200), st.integers(0, 7))
    def test_one_flipped_bit_is_never_accepted_silently(self, index: int, bit: int) -> None:
        packet = bytearray(encode_tm(0x10, (3, 25), bytes(range(180)), unix_s=1.9e9))
        index %= len(packet)
        packet[index] ^= 1 << bit
        with pytest.raises(LinkRejected):
            fast_decode_tm(bytes(packet))

    def test_empty_pong_decodes(self) -> None:
        tm = fast_decode_tm(encode_tm(0x12, (17, 2), b"", unix_s=1.9e9))
        assert (tm.service, tm.subtype, tm.data) == (17, 2, b"")


class TestHousekeepingLayout:
    """The ground decodes TM[3,25] with :class:`fsw.spacelink.HousekeepingLayout` itself."""

    @given(values_of)
    def test_what_is_packed_unpacks_to_the_same_points(self, values: dict[str, Any]) -> None:
        layout = HousekeepingLayout(0x10, POINTS)
        got = layout.unpack(layout.pack(values))
        assert set(got) == {p.name for p in POINTS}
        again = layout.unpack(layout.pack(got))
        assert all(same(got[k], again[k]) for k in got)

    @given(values_of, st.integers(0, 400))
    def test_truncated_or_padded_data_is_refused(self, values: dict[str, Any], cut: int) -> None:
        layout = HousekeepingLayout(0x10, POINTS)
        data = layout.pack(values)
        if cut < len(data):
            with pytest.raises(LinkRejected):
                layout.unpack(data[:cut])
        with pytest.raises(LinkRejected):
            layout.unpack(data + b"\x00")

    def test_every_process_of_the_base_decodes_its_own_housekeeping(self) -> None:
        mission = MissionDatabase.from_deployment(load_default())
        for name, apid in mission.apids.items():
            points = mission.points_of(name)
            layout = HousekeepingLayout(apid, points)
            missing = {p.name: "" if p.type is ArgType.STR else None for p in points}  # an empty string
            assert layout.unpack(layout.pack({})) == missing


class TestDecoder:
    def decoder(self) -> TelemetryDecoder:
        return TelemetryDecoder(MISSION)

    def test_housekeeping(self) -> None:
        data = HousekeepingLayout(0x10, POINTS).pack({"voltage_v": 120.5, "mode": "NOMINAL", "on": True})
        packet = self.decoder().decode(encode_tm(0x10, (3, 25), data, unix_s=1.9e9), 5.0)
        assert packet.kind == HK
        assert packet.source == "power"
        assert packet.unix_s == 1.9e9
        assert packet.received_s == 5.0
        assert packet.content["voltage_v"] == 120.5
        assert packet.content["count"] is None
        assert packet.content["on"] is True

    def test_events_by_dictionary_index_and_undeclared(self) -> None:
        decoder = self.decoder()
        declared = decoder.decode(encode_tm(0x10, (5, 2), event_data(1, {"v": 99.0}), unix_s=1.9e9), 0.0)
        assert declared.kind == EVENT
        assert declared.content == {"name": "bus_low", "severity": "warning", "data": {"v": 99.0}}
        undeclared = event_data(UNDECLARED_EVENT, {"event": "process_exited", "process": "power"})
        packet = decoder.decode(encode_tm(0x10, (5, 3), undeclared, unix_s=1.9e9), 0.0)
        assert packet.content == {"name": "process_exited", "severity": "error", "data": {"process": "power"}}

    def test_verification_stages(self) -> None:
        decoder = self.decoder()
        request = request_id(0x10, 7)
        ok = decoder.decode(encode_tm(0x10, (1, 7), verification_data(request), unix_s=1.9e9), 0.0)
        assert ok.kind == VERIFICATION
        assert ok.content == {
            "request": request.hex(),
            "stage": "completed",
            "ok": True,
            "code": None,
            "failure": "",
            "reason": "",
        }
        refused = verification_data(request, Failure.BAD_MAC, "MAC does not match key 1")
        failed = decoder.decode(encode_tm(0x10, (1, 2), refused, unix_s=1.9e9), 0.0)
        assert failed.content["stage"] == "rejected"
        assert failed.content["failure"] == "BAD_MAC"
        assert failed.content["reason"] == "MAC does not match key 1"

    def test_pong_and_unknown_apid(self) -> None:
        decoder = self.decoder()
        assert decoder.decode(encode_tm(0x10, (17, 2), b"", unix_s=1.9e9), 0.0).kind == PONG
        stranger = decoder.decode(encode_tm(0x55, (3, 25), b"\x00\x55", unix_s=1.9e9), 0.0)
        assert stranger.kind == INVALID
        assert "UNKNOWN_APID" in stranger.error
        assert decoder.unknown_apids == 1

    def test_malformed_content_is_an_invalid_record(self) -> None:
        decoder = self.decoder()
        short = decoder.decode(encode_tm(0x10, (3, 25), struct.pack(">H", 0x10), unix_s=1.9e9), 0.0)
        assert short.kind == INVALID
        assert short.apid == 0x10
        assert decoder.counts[INVALID] == 1

    @given(st.binary(max_size=400))
    def test_arbitrary_bytes_never_raise(self, raw: bytes) -> None:
        packet = self.decoder().decode(raw, 0.0)
        assert packet.raw == raw
        assert packet.kind in {HK, EVENT, VERIFICATION, PONG, INVALID, "other"}

    @given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=64))
    def test_any_service_with_any_data_is_a_record(self, service: int, subtype: int, data: bytes) -> None:
        packet = self.decoder().decode(encode_tm(0x10, (service, subtype), data, unix_s=1.9e9), 0.0)
        assert packet.kind in {HK, EVENT, VERIFICATION, PONG, INVALID, "other"}
        if packet.kind == INVALID:
            assert packet.error
