"""Properties of the board wire codec: round trips, byte accounting, resynchronisation."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.board import Actuator, BoardDescription, BoardEvent, Channel, Sample, ValueType
from fsw.errors import FrameError
from hil.wire import (
    MAX_ENCODED_BYTES,
    PROTOCOL_VERSION,
    Command,
    CommandAck,
    Deframer,
    Event,
    Frame,
    Hello,
    HelloReply,
    Nak,
    NakCode,
    Read,
    ReadReply,
    Refusal,
    Status,
    StatusReply,
    Sync,
    SyncAck,
    check_command,
    cobs_decode,
    cobs_encode,
    crc16_ccitt_false,
    decode_frame,
    encode_frame,
)

# --- strategies ---------------------------------------------------------------------

names = st.text(max_size=12)
floats = st.floats(allow_nan=False)
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
values = st.one_of(st.booleans(), ints, floats)
bounds = st.none() | floats


def _items(cls: type) -> st.SearchStrategy:
    return st.builds(
        cls,
        name=names,
        type=st.sampled_from(ValueType),
        unit=st.text(max_size=4),
        low=bounds,
        high=bounds,
        description=st.text(max_size=20),
    )


descriptions = st.builds(
    BoardDescription,
    kind=names,
    protocol_version=st.integers(0, 255),
    firmware=names,
    channels=st.lists(_items(Channel), max_size=6).map(tuple),
    actuators=st.lists(_items(Actuator), max_size=4).map(tuple),
)
plain_data = st.recursive(
    st.none() | st.booleans() | ints | floats | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)

MESSAGES: dict[str, st.SearchStrategy] = {
    "HELLO": st.builds(Hello, client=names),
    "HELLO_REPLY": st.builds(HelloReply, description=descriptions),
    "SYNC": st.builds(Sync, frame=st.integers(0, 2**63 - 1), t_s=floats),
    "SYNC_ACK": st.builds(SyncAck, frame=st.integers(0, 2**63 - 1), board_time_s=floats),
    "READ": st.just(Read()),
    "READ_REPLY": st.builds(
        ReadReply,
        sample=st.builds(Sample, board_time_s=floats, values=st.dictionaries(names, values, max_size=8)),
    ),
    "COMMAND": st.builds(Command, actuator=names, value=values),
    "COMMAND_ACK": st.builds(CommandAck, actuator=names, value=values),
    "STATUS": st.just(Status()),
    "STATUS_REPLY": st.builds(
        StatusReply, board_time_s=floats, faults=st.lists(names, max_size=4).map(tuple)
    ),
    "NAK": st.builds(Nak, code=st.integers(0, 255), reason=st.text(max_size=40)),
    "EVENT": st.builds(
        Event,
        event=st.builds(
            BoardEvent,
            name=names,
            board_time_s=floats,
            severity=names,
            data=st.dictionaries(names, plain_data, max_size=4),
        ),
    ),
}
messages = st.one_of(*MESSAGES.values())
frames = st.builds(Frame, seq=st.integers(0, 0xFFFF), message=messages)


# --- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MESSAGES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_message_type_round_trips(kind: str, data: st.DataObject) -> None:
    frame = Frame(seq=data.draw(st.integers(0, 0xFFFF)), message=data.draw(MESSAGES[kind]))
    encoded = encode_frame(frame)
    assert encoded.endswith(b"\x00")
    assert 0 not in encoded[:-1]
    assert decode_frame(encoded) == frame
    assert decode_frame(encoded[:-1]) == frame  # the delimiter is optional


@given(st.binary(max_size=2000))
def test_cobs_round_trips_and_removes_zeros(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


def test_cobs_known_vectors() -> None:
    assert cobs_encode(b"") == bytes.fromhex("01")
    assert cobs_encode(b"\x00") == bytes.fromhex("0101")
    assert cobs_encode(b"\x11\x22\x00\x33") == bytes.fromhex("0311220233")
    assert cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_worked_example_in_the_protocol_document() -> None:
    frame = Frame(seq=7, message=Sync(frame=42, t_s=4.2))
    assert encode_frame(frame).hex(" ") == (
        "03 01 02 19 07 82 a5 66 72 61 6d 65 2a a3 74 5f 73 cb 40 10 cc cc cc cc cc cd 74 8a 00"
    )


# --- deframer accounting ------------------------------------------------------------


def _accounted(deframer: Deframer) -> bool:
    c = deframer.counters
    return c.bytes_kept + c.bytes_skipped + deframer.bytes_left == c.bytes_fed


@given(st.lists(st.binary(max_size=600), max_size=12))
def test_arbitrary_bytes_never_raise_and_every_byte_is_accounted(chunks: list[bytes]) -> None:
    deframer = Deframer()
    for chunk in chunks:
        deframer.feed(chunk)
        assert _accounted(deframer)
        assert deframer.bytes_left <= MAX_ENCODED_BYTES


@given(
    st.lists(frames, min_size=3, max_size=6),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flips_are_skipped_and_the_stream_resynchronises(
    sent: list[Frame], flips: list[tuple[int, int]]
) -> None:
    encoded = [encode_frame(f) for f in sent]
    first = bytearray(encoded[0])
    for position, bit in flips:  # corrupt the first frame only, its delimiter included
        first[position % len(first)] ^= 1 << bit
    deframer = Deframer()
    received = deframer.feed(bytes(first) + b"".join(encoded[1:]))
    assert _accounted(deframer)
    # the corruption can swallow at most the next frame (a lost delimiter joins them)
    assert received[-(len(sent) - 2) :] == sent[2:]


@given(st.lists(frames, min_size=1, max_size=5), st.lists(st.integers(min_value=0), max_size=8))
def test_frames_split_anywhere_reassemble(sent: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in sent)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    deframer = Deframer()
    received = [frame for piece in pieces for frame in deframer.feed(piece)]
    assert received == sent
    assert deframer.counters.bytes_kept == len(stream)
    assert deframer.counters.bytes_skipped == 0
    assert deframer.bytes_left == 0


def test_an_endless_frame_is_bounded_and_skipped() -> None:
    deframer = Deframer()
    good = encode_frame(Frame(1, Read()))
    for _ in range(10):
        deframer.feed(b"\x55" * 1000)
        assert deframer.bytes_left <= MAX_ENCODED_BYTES
    assert deframer.feed(b"\x00" + good) == [Frame(1, Read())]
    assert deframer.counters.skipped_by_reason["oversize"] == 1
    assert _accounted(deframer)


# --- rejections ---------------------------------------------------------------------


def test_bad_crc_is_named() -> None:
    raw = bytearray(encode_frame(Frame(3, Status())))
    raw[-2] ^= 0x01  # last CRC byte
    with pytest.raises(FrameError, match="crc"):
        decode_frame(bytes(raw))


def test_unknown_version_is_refused_except_for_hello() -> None:
    with pytest.raises(FrameError, match="version"):
        decode_frame(encode_frame(Frame(1, Read(), version=PROTOCOL_VERSION + 1)))
    hello = Frame(1, Hello("probe"), version=PROTOCOL_VERSION + 1)
    assert decode_frame(encode_frame(hello)) == hello


def test_malformed_request_keeps_its_header_for_a_nak() -> None:
    deframer = Deframer()
    # a COMMAND whose body lacks "value": a good CRC over a bad body
    payload = bytes((PROTOCOL_VERSION, 0x04)) + (9).to_bytes(2, "big")
    payload += msgpack.packb({"actuator": "heater"})
    raw = payload + crc16_ccitt_false(payload).to_bytes(2, "big")
    assert deframer.feed(cobs_encode(raw) + b"\x00") == []
    (rejection,) = deframer.drain_rejections()
    assert (rejection.reason, rejection.seq, rejection.type_code) == ("body", 9, 0x04)
    assert "value" in rejection.detail


def test_oversized_message_cannot_be_encoded() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        encode_frame(Frame(0, Nak(1, "x" * 5000)))


def test_check_command_against_a_description() -> None:
    description = BoardDescription(
        "thermal",
        PROTOCOL_VERSION,
        "fw",
        (),
        (
            Actuator("heater", ValueType.FLOAT, "1", 0.0, 1.0),
            Actuator("pump", ValueType.BOOL),
        ),
    )
    assert check_command(description, "heater", 1) == 1.0
    assert check_command(description, "pump", 1) is True
    for actuator, value, code in [
        ("fan", 1.0, NakCode.UNKNOWN_ACTUATOR),
        ("heater", 1.5, NakCode.OUT_OF_RANGE),
        ("heater", float("nan"), NakCode.OUT_OF_RANGE),
        ("heater", True, NakCode.OUT_OF_RANGE),
        ("pump", 0.5, NakCode.OUT_OF_RANGE),
    ]:
        refusal = check_command(description, actuator, value)
        assert isinstance(refusal, Refusal)
        assert refusal.code is code
        assert actuator in refusal.reason
