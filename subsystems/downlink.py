"""The store-and-forward downlink queue: encoded messages by priority, bounded in bytes.

Pure: no I/O, no clock. The comms subsystem fills it from the bus and drains it each
control cycle while a link is up; the ground segment can reuse it as is.

Priorities, highest first: :attr:`Priority.EVENT` (0: events and alarms),
:attr:`Priority.HOUSEKEEPING` (1), :attr:`Priority.BULK` (2: science data). Within a
priority, first in, first out.

Bound and retention. The queue never holds more than ``capacity_bytes`` (the sum of the
messages' lengths). A message that does not fit makes room, in this order:

1. the oldest messages of the lowest priority present that is *lower* than the incoming
   message's, then of the next lowest, and so on;
2. then the oldest messages of the incoming message's *own* priority: with equal
   priorities the newest data wins, as in a ring buffer (after a long outage the
   ground wants the latest state; the drop counters tell what was lost);
3. never a message of a higher priority: if even (1) and (2) together cannot make room,
   nothing is evicted and the incoming message is dropped. In particular a message of
   the lowest priority present meets a queue full of higher ones and is dropped.

A message longer than ``capacity_bytes`` (oversize) can never be stored: it is dropped on
arrival, nothing else is touched, and :attr:`DownlinkQueue.oversize_dropped` counts it.

Draining. :meth:`DownlinkQueue.drain` takes the budget of one cycle (bytes the link can
carry now) and returns the messages that leave, highest priority first, FIFO within a
priority, never split. It stops at the first message that does not fit: a lower-priority
message never overtakes a waiting higher one, even if it is smaller. The budget not spent
while a message waits is carried over as *credit* to the next drain, so a message longer
than one cycle's budget leaves, whole, after as many cycles as its transmission takes, and
the link's throughput is the full rate whatever the message sizes. The credit is forfeited
when the queue runs empty (the link idles) and when the budget is 0 or less (the link went
down mid-message: the message is sent again from its start on the next link). So with a
budget of 0 nothing ever leaves.

Accounting, per priority, in messages and bytes: every message handed to
:meth:`DownlinkQueue.push` counts as *queued* (even if dropped at once); then exactly one
of *sent* (left through :meth:`drain`), *dropped* (evicted or refused) or still held.
Always ``queued == sent + dropped + held``.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from typing import Final, NamedTuple

from fsw.errors import ConfigError


class Priority(enum.IntEnum):
    """Downlink priority; a lower value leaves first and is dropped last."""

    EVENT = 0
    HOUSEKEEPING = 1
    BULK = 2


#: Every priority, highest first.
PRIORITIES: Final = tuple(Priority)

#: Short names of the priorities, for telemetry point names.
LABELS: Final = {Priority.EVENT: "event", Priority.HOUSEKEEPING: "hk", Priority.BULK: "bulk"}


class Outgoing(NamedTuple):
    """A message leaving the queue: its priority and its encoded bytes."""

    priority: Priority
    data: bytes


@dataclass
class Counters:
    """What one priority's messages became, in messages and bytes (monotonic)."""

    queued_messages: int = 0
    queued_bytes: int = 0
    sent_messages: int = 0
    sent_bytes: int = 0
    dropped_messages: int = 0
    dropped_bytes: int = 0


class DownlinkQueue:
    """A priority queue of encoded messages bounded in bytes (see the module docstring).

    ``capacity_bytes`` must be a positive integer; raises :class:`ConfigError` otherwise.
    Not thread-safe.
    """

    def __init__(self, capacity_bytes: int) -> None:
        if isinstance(capacity_bytes, bool) or not isinstance(capacity_bytes, int) or capacity_bytes < 1:
            msg = f"capacity_bytes must be a positive integer, got {capacity_bytes!r}"
            raise ConfigError(msg)
        self.capacity_bytes = capacity_bytes
        self._queues: tuple[deque[bytes], ...] = tuple(deque() for _ in PRIORITIES)
        self._held_bytes = [0] * len(PRIORITIES)
        self._bytes = 0
        self._credit = 0.0
        #: Counters by priority (index = priority value).
        self.counters: tuple[Counters, ...] = tuple(Counters() for _ in PRIORITIES)
        #: Most bytes ever held at once.
        self.peak_bytes = 0
        #: Messages refused because they are longer than the whole capacity (also in ``dropped``).
        self.oversize_dropped = 0

    # ------------------------------------------------------------------ state

    @property
    def total_bytes(self) -> int:
        """Bytes held now (all priorities)."""
        return self._bytes

    @property
    def total_messages(self) -> int:
        """Messages held now (all priorities)."""
        return sum(len(q) for q in self._queues)

    @property
    def credit_bytes(self) -> float:
        """Budget carried over to the next drain for the message waiting at the head (bytes)."""
        return self._credit

    def bytes_at(self, priority: Priority) -> int:
        """Bytes held now at ``priority``."""
        return self._held_bytes[priority]

    def messages_at(self, priority: Priority) -> int:
        """Messages held now at ``priority``."""
        return len(self._queues[priority])

    def held(self, priority: Priority) -> tuple[bytes, ...]:
        """The messages held at ``priority``, oldest first (a copy)."""
        return tuple(self._queues[priority])

    # ------------------------------------------------------------------ in

    def push(self, priority: Priority, data: bytes) -> bool:
        """Queue ``data`` at ``priority``, evicting as the retention policy says.

        Return whether it was stored (False: dropped, oversize or no room above it).
        """
        size = len(data)
        counters = self.counters[priority]
        counters.queued_messages += 1
        counters.queued_bytes += size
        free = self.capacity_bytes - self._bytes
        if size > free:
            if size > self.capacity_bytes:
                self.oversize_dropped += 1
                self._drop(counters, size)
                return False
            evictable = sum(self._held_bytes[priority:])
            if size > free + evictable:
                self._drop(counters, size)
                return False
            self._make_room(priority, size - free)
        self._queues[priority].append(data)
        self._held_bytes[priority] += size
        self._bytes += size
        self.peak_bytes = max(self.peak_bytes, self._bytes)
        return True

    def _make_room(self, priority: Priority, needed: int) -> None:
        """Evict oldest-first from the lowest priority up to ``priority`` until ``needed`` bytes are free."""
        for level in range(len(PRIORITIES) - 1, priority - 1, -1):
            queue = self._queues[level]
            counters = self.counters[level]
            while queue and needed > 0:
                size = len(queue.popleft())
                self._held_bytes[level] -= size
                self._bytes -= size
                self._drop(counters, size)
                needed -= size
            if needed <= 0:
                return

    @staticmethod
    def _drop(counters: Counters, size: int) -> None:
        counters.dropped_messages += 1
        counters.dropped_bytes += size

    # ------------------------------------------------------------------ out

    def drain(self, budget_bytes: float) -> list[Outgoing]:
        """Return the messages that leave now with ``budget_bytes`` of link (see the module docstring).

        Highest priority first, FIFO within a priority, never split; unspent budget is
        carried over while a message waits. A budget of 0 or less (or NaN) sends nothing
        and forfeits the carried credit.
        """
        if not budget_bytes > 0.0:
            self._credit = 0.0
            return []
        available = self._credit + budget_bytes if math.isfinite(budget_bytes) else math.inf
        out: list[Outgoing] = []
        for priority in PRIORITIES:
            queue = self._queues[priority]
            counters = self.counters[priority]
            while queue:
                size = len(queue[0])
                if size > available:
                    self._credit = min(available, float(self.capacity_bytes))
                    return out
                data = queue.popleft()
                available -= size
                self._held_bytes[priority] -= size
                self._bytes -= size
                counters.sent_messages += 1
                counters.sent_bytes += size
                out.append(Outgoing(priority, data))
        self._credit = 0.0
        return out
