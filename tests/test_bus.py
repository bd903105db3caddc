"""The bus as one process sees it: what it publishes is what the codec says, drops are counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.bus import Bus, CommandClient
from fsw.messages import Kind, Message, decode, encode

payloads = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=8)),
)


@pytest.fixture(scope="module")
def wires() -> Iterator[tuple[Bus, zmq.Socket, zmq.Socket]]:
    """A Bus whose publisher feeds a plain SUB, and whose subscriber hears a plain PUB."""
    context = zmq.Context()
    tap = context.socket(zmq.SUB)
    tap.setsockopt(zmq.SUBSCRIBE, b"")
    tap.bind("inproc://bus-publish")
    feed = context.socket(zmq.PUB)
    feed.bind("inproc://bus-subscribe")
    bus = Bus(
        "power", "inproc://bus-publish", "inproc://bus-subscribe", subscribe=(b"tlm.",), context=context
    )
    # Handshake both ways: keep sending until the first message comes through.
    while not tap.poll(10):
        bus.publish(Kind.TELEMETRY, "probe", {})
    while tap.poll(0):
        tap.recv_multipart()
    while not bus.subscriber.poll(10):
        feed.send_multipart(encode(Message(Kind.TELEMETRY, "probe", "hk", 0.0, 0, {})))
    while bus.receive() is not None:
        pass
    yield bus, tap, feed
    bus.close()
    tap.close(linger=0)
    feed.close(linger=0)
    context.term()


class TestPublish:
    """Bus.publish sends exactly the frames fsw.messages.encode makes."""

    @settings(max_examples=50)
    @given(st.sampled_from(Kind), payloads, st.floats(min_value=0, max_value=1e9))
    def test_published_frames_equal_the_codec(self, wires, kind: Kind, data: dict, t_s: float) -> None:
        bus, tap, _ = wires
        bus.publish(kind, "hk", data, t_s)
        topic, body = tap.recv_multipart()
        message = decode(topic, body)
        assert (topic, body) == encode(message)
        assert (message.kind, message.source, message.t_s, message.data) == (kind, "power", t_s, data)


class TestReceive:
    """Sequence gaps are counted as lost; restarts of a source are noticed."""

    def test_gap_counts_lost_messages(self, wires) -> None:
        bus, _, feed = wires
        before = bus.stats.lost
        for seq in (100, 101, 105):
            feed.send_multipart(encode(Message(Kind.TELEMETRY, "thermal", "hk", 0.0, seq, {})))
        received = [bus.receive() for _ in range(3) if bus.subscriber.poll(1000)]
        assert [m.seq for m in received if m] == [100, 101, 105]
        assert bus.stats.lost - before == 3

    def test_wrong_frame_count_is_malformed_not_raised(self, wires) -> None:
        bus, _, feed = wires
        before = bus.stats.malformed
        feed.send(b"tlm.x.hk")
        feed.send_multipart([b"tlm.x.hk", b"a", b"b"])
        feed.send_multipart(encode(Message(Kind.TELEMETRY, "ok", "hk", 0.0, 0, {})))
        assert bus.subscriber.poll(1000)
        message = None
        while message is None:
            bus.subscriber.poll(1000)
            message = bus.receive()
        assert message.source == "ok"
        assert bus.stats.malformed - before == 2
        assert "3 frames" in bus.stats.last_malformed


class TestCommandClient:
    """The client's memory of outcomes is bounded; what it forgets is counted."""

    def test_outcomes_are_bounded(self) -> None:
        with CommandClient("inproc://nobody-home", max_outcomes=3) as client:
            ids = [client.send("power", "noop") for _ in range(5)]
            assert client.outcomes_forgotten == 2
            assert client.wait(ids[0], timeout_s=0.0).reason.startswith("forgotten")
            assert client.wait(ids[4], timeout_s=0.0).status == "pending"
