"""The store-and-forward downlink queue: bound, retention, priority order, accounting, credit."""

from __future__ import annotations

import struct
from dataclasses import astuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.errors import ConfigError
from subsystems.downlink import PRIORITIES, Counters, DownlinkQueue, Priority

EVENT, HK, BULK = Priority.EVENT, Priority.HOUSEKEEPING, Priority.BULK


def message(number: int, size: int) -> bytes:
    """A ``size``-byte message (size >= 4) that says which one it is."""
    return struct.pack(">I", number) + b"x" * (size - 4)


def number_of(data: bytes) -> int:
    return int(struct.unpack(">I", data[:4])[0])


# --- examples -------------------------------------------------------------------------


def test_capacity_must_be_a_positive_integer() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="capacity_bytes"):
            DownlinkQueue(bad)  # type: ignore[arg-type]


def test_highest_priority_first_fifo_within() -> None:
    queue = DownlinkQueue(1000)
    for number, priority in enumerate((BULK, HK, EVENT, HK, EVENT, BULK)):
        queue.push(priority, message(number, 10))
    out = queue.drain(1000)
    assert [(o.priority, number_of(o.data)) for o in out] == [
        (EVENT, 2),
        (EVENT, 4),
        (HK, 1),
        (HK, 3),
        (BULK, 0),
        (BULK, 5),
    ]
    assert queue.total_bytes == queue.total_messages == 0


def test_full_queue_drops_the_oldest_of_the_lowest_priority_below() -> None:
    queue = DownlinkQueue(40)
    queue.push(HK, message(0, 10))
    queue.push(BULK, message(1, 10))
    queue.push(BULK, message(2, 10))
    queue.push(HK, message(3, 10))
    assert queue.push(EVENT, message(4, 15))  # needs 15: bulk 1 and bulk 2 go, oldest first
    assert [number_of(d) for d in queue.held(BULK)] == []
    assert [number_of(d) for d in queue.held(HK)] == [0, 3]
    assert queue.counters[BULK].dropped_messages == 2
    assert queue.counters[BULK].dropped_bytes == 20
    assert queue.total_bytes == 35


def test_the_lowest_priority_meets_a_queue_full_of_higher_ones_and_is_dropped() -> None:
    queue = DownlinkQueue(20)
    queue.push(EVENT, message(0, 10))
    queue.push(HK, message(1, 10))
    assert not queue.push(BULK, message(2, 10))
    assert queue.counters[BULK].dropped_messages == 1
    assert [number_of(d) for d in queue.held(HK)] == [1]


def test_equal_priority_drops_the_oldest_of_its_own_priority() -> None:
    queue = DownlinkQueue(30)
    queue.push(EVENT, message(0, 10))
    queue.push(HK, message(1, 10))
    queue.push(HK, message(2, 10))
    assert queue.push(HK, message(3, 10))
    assert [number_of(d) for d in queue.held(HK)] == [2, 3]
    assert queue.messages_at(EVENT) == 1  # never a higher priority


def test_nothing_is_evicted_when_even_evicting_everything_allowed_cannot_make_room() -> None:
    queue = DownlinkQueue(30)
    queue.push(EVENT, message(0, 20))
    queue.push(BULK, message(1, 5))
    assert not queue.push(HK, message(2, 16))  # 5 free + 5 of bulk < 16
    assert queue.messages_at(BULK) == 1
    assert queue.counters[BULK].dropped_messages == 0
    assert queue.counters[HK].dropped_messages == 1


def test_an_oversize_message_is_dropped_on_arrival_and_touches_nothing() -> None:
    queue = DownlinkQueue(30)
    queue.push(BULK, message(0, 10))
    assert not queue.push(EVENT, message(1, 31))
    assert queue.oversize_dropped == 1
    assert queue.counters[EVENT] == Counters(1, 31, 0, 0, 1, 31)
    assert queue.messages_at(BULK) == 1


def test_a_message_longer_than_one_budget_leaves_whole_after_its_transmission_time() -> None:
    queue = DownlinkQueue(10_000)
    queue.push(HK, message(0, 2500))
    leaving = [queue.drain(1000) for _ in range(3)]
    assert [len(out) for out in leaving] == [0, 0, 1]  # 1000 + 1000 + 1000 >= 2500
    assert len(leaving[2][0].data) == 2500
    assert queue.credit_bytes == 0.0  # the queue ran empty: the link idles


def test_credit_keeps_the_full_rate_over_uneven_messages() -> None:
    queue = DownlinkQueue(100_000)
    for number in range(40):
        queue.push(BULK, message(number, 700))  # 28,000 bytes
    sent = sum(len(o.data) for _ in range(28) for o in queue.drain(1000))
    assert sent >= 28_000 - 700  # every cycle's budget used but the last partial message


def test_the_link_going_down_forfeits_the_credit() -> None:
    queue = DownlinkQueue(10_000)
    queue.push(HK, message(0, 2500))
    queue.drain(1000)
    queue.drain(1000)
    assert queue.credit_bytes == 2000.0
    assert queue.drain(0) == []
    assert queue.credit_bytes == 0.0
    assert queue.drain(1000) == []  # sent again from its start
    assert queue.drain(1000) == []
    assert len(queue.drain(1000)) == 1


def test_a_waiting_higher_priority_message_is_never_overtaken_by_a_smaller_lower_one() -> None:
    queue = DownlinkQueue(10_000)
    queue.push(EVENT, message(0, 1500))
    queue.push(BULK, message(1, 10))
    assert queue.drain(1000) == []
    assert [o.priority for o in queue.drain(1000)] == [EVENT, BULK]


# --- properties -----------------------------------------------------------------------

CAPACITY = 2000

push_op = st.tuples(st.just("push"), st.sampled_from(PRIORITIES), st.integers(4, CAPACITY + 200))
drain_op = st.tuples(st.just("drain"), st.sampled_from(PRIORITIES), st.integers(0, 1500))
operations = st.lists(st.one_of(push_op, drain_op), max_size=80)


def check_accounting(queue: DownlinkQueue) -> None:
    for priority in PRIORITIES:
        c = queue.counters[priority]
        held = queue.held(priority)
        assert c.queued_messages == c.sent_messages + c.dropped_messages + len(held)
        assert c.queued_bytes == c.sent_bytes + c.dropped_bytes + sum(map(len, held))
        assert queue.bytes_at(priority) == sum(map(len, held))


@settings(max_examples=300, deadline=None)
@given(operations)
def test_bound_order_and_accounting_hold_whatever_the_traffic(ops: list[tuple[str, Priority, int]]) -> None:
    queue = DownlinkQueue(CAPACITY)
    pushed: dict[int, Priority] = {}
    left: list[int] = []
    for number, (op, priority, amount) in enumerate(ops):
        if op == "push":
            queue.push(priority, message(number, amount))
            pushed[number] = priority
        else:
            out = queue.drain(amount)
            priorities = [o.priority for o in out]
            assert priorities == sorted(priorities)  # highest priority first
            if out:  # nothing of a higher priority than the last one out stays behind
                assert all(queue.messages_at(p) == 0 for p in PRIORITIES if p < out[-1].priority)
            if amount == 0:
                assert out == []
            left.extend(number_of(o.data) for o in out)
        assert queue.total_bytes <= CAPACITY
        assert queue.total_bytes == sum(queue.bytes_at(p) for p in PRIORITIES)
        assert queue.peak_bytes <= CAPACITY
        check_accounting(queue)
    for priority in PRIORITIES:  # FIFO within a priority
        mine = [n for n in left if pushed[n] is priority]
        assert mine == sorted(mine)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_nothing_leaves_with_a_budget_of_zero(ops: list[tuple[str, Priority, int]]) -> None:
    queue = DownlinkQueue(CAPACITY)
    for number, (op, priority, amount) in enumerate(ops):
        if op == "push":
            queue.push(priority, message(number, amount))
        else:
            queue.drain(amount)
        before = [astuple(c) for c in queue.counters], queue.total_bytes
        assert queue.drain(0) == []
        assert ([astuple(c) for c in queue.counters], queue.total_bytes) == before


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PRIORITIES), st.integers(4, 400)), max_size=60))
def test_a_push_evicts_only_lower_or_equal_priorities(pushes: list[tuple[Priority, int]]) -> None:
    queue = DownlinkQueue(CAPACITY)
    for number, (priority, size) in enumerate(pushes):
        before = [queue.messages_at(p) for p in PRIORITIES]
        stored = queue.push(priority, message(number, size))
        after = [queue.messages_at(p) for p in PRIORITIES]
        assert all(after[p] >= before[p] for p in PRIORITIES if p < priority)
        if not stored:
            assert after == before
