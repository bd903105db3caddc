"""The bus envelope: a symmetric codec that raises only its own error."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.errors import CodecError
from fsw.messages import MAX_BODY_BYTES, Kind, Message, _fast_envelope, decode, encode, envelope_from_map

names = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_"),
    min_size=1,
    max_size=20,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
)
payloads = st.dictionaries(
    st.text(max_size=12),
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=10,
    ),
    max_size=8,
)
messages = st.builds(
    Message,
    kind=st.sampled_from(Kind),
    source=names,
    name=names,
    t_s=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    seq=st.integers(min_value=0, max_value=2**63),
    data=payloads,
)


class TestRoundTrip:
    """decode(encode(m)) == m for every kind and payload."""

    @given(messages)
    def test_round_trip(self, message: Message) -> None:
        topic, body = encode(message)
        assert decode(topic, body) == message

    @given(st.sampled_from(Kind))
    def test_topic_routes_by_kind_source_name(self, kind: Kind) -> None:
        topic, _ = encode(Message(kind, "reactor", "hk", 1.0, 0, {}))
        assert topic == f"{kind.value}.reactor.hk".encode()


class TestMalformed:
    """Anything that is not a valid envelope raises CodecError, and only that."""

    @given(st.binary(max_size=200), st.binary(max_size=40))
    def test_arbitrary_bytes_raise_only_codec_error(self, body: bytes, topic: bytes) -> None:
        with contextlib.suppress(CodecError):
            decode(topic, body)

    @given(messages, st.data())
    def test_bit_flips_raise_only_codec_error(self, message: Message, data: st.DataObject) -> None:
        topic, body = encode(message)
        position = data.draw(st.integers(min_value=0, max_value=len(body) * 8 - 1))
        flipped = bytearray(body)
        flipped[position // 8] ^= 1 << (position % 8)
        with contextlib.suppress(CodecError):
            decode(topic, bytes(flipped))

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ([1, 2], "not a map"),
            ({"v": 1}, "envelope keys wrong"),
            ({"v": 2, "kind": "tlm", "src": "a", "name": "b", "t": 0.0, "seq": 0, "data": {}}, "version"),
            (
                {"v": 1, "kind": "nope", "src": "a", "name": "b", "t": 0.0, "seq": 0, "data": {}},
                "unknown kind",
            ),
            ({"v": 1, "kind": "tlm", "src": "a.b", "name": "b", "t": 0.0, "seq": 0, "data": {}}, "source"),
            (
                {"v": 1, "kind": "tlm", "src": "a", "name": "b", "t": "x", "seq": 0, "data": {}},
                "mission time",
            ),
            ({"v": 1, "kind": "tlm", "src": "a", "name": "b", "t": 0.0, "seq": -1, "data": {}}, "sequence"),
            ({"v": 1, "kind": "tlm", "src": "a", "name": "b", "t": 0.0, "seq": 0, "data": []}, "data"),
        ],
    )
    def test_reason_names_the_field(self, raw: object, reason: str) -> None:
        with pytest.raises(CodecError, match=reason):
            decode(b"tlm.a.b", msgpack.packb(raw))

    def test_topic_must_match_envelope(self) -> None:
        _, body = encode(Message(Kind.TELEMETRY, "power", "hk", 0.0, 0, {}))
        with pytest.raises(CodecError, match="does not match"):
            decode(b"tlm.reactor.hk", body)

    def test_oversized_body_is_rejected_both_ways(self) -> None:
        big = Message(Kind.TELEMETRY, "power", "hk", 0.0, 0, {"blob": b"x" * MAX_BODY_BYTES})
        with pytest.raises(CodecError, match="exceeds"):
            encode(big)
        with pytest.raises(CodecError, match="exceeds"):
            decode(b"tlm.power.hk", b"\x00" * (MAX_BODY_BYTES + 1))


class TestFastPath:
    """The one-pass check of the hot path accepts exactly what the full validation accepts."""

    @given(
        st.fixed_dictionaries(
            {
                "v": st.sampled_from([1, 2, True, 1.0]),
                "kind": st.sampled_from(["tlm", "evt", "hb", "bogus", 3]),
                "src": st.sampled_from(["power", "", "a.b", 5]),
                "name": st.sampled_from(["hk", "", None]),
                "t": st.sampled_from([0.0, 5, True, "x"]),
                "seq": st.sampled_from([0, 7, -1, True, 1.5]),
                "data": st.sampled_from([{}, {"a": 1}, [], None]),
            }
        )
    )
    def test_fast_and_full_validation_agree(self, raw: dict) -> None:
        fast = _fast_envelope(raw)
        try:
            full = envelope_from_map(raw)
        except CodecError:
            assert fast is None
        else:
            assert fast is None or fast == full
