"""Injected wall time.

Everything that waits or paces reads a :class:`TimeSource` handed to it, never
``time`` directly, so tests drive time with :class:`FakeTime` and never sleep.
Mission time is a different thing: it comes from the frame clock's ticks.
"""

from __future__ import annotations

import time
from typing import Protocol


class TimeSource(Protocol):
    """Monotonic wall time in seconds."""

    def now_s(self) -> float:
        """Return monotonic seconds; only differences are meaningful."""
        ...


class MonotonicTime:
    """The real monotonic clock (``time.monotonic``)."""

    def now_s(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()


class FakeTime:
    """A clock that moves only when told to. For tests."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = start_s

    def now_s(self) -> float:
        """Return the current fake time."""
        return self._now_s

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            msg = f"cannot move time backwards by {seconds} s"
            raise ValueError(msg)
        self._now_s += seconds


class Deadline:
    """A point in wall time after which a wait is over."""

    def __init__(self, timeout_s: float, source: TimeSource) -> None:
        self._source = source
        self._at_s = source.now_s() + timeout_s

    def remaining_s(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at_s - self._source.now_s())

    def remaining_ms(self) -> int:
        """Milliseconds left, rounded up, for pyzmq's millisecond timeouts."""
        return int(self.remaining_s() * 1000.0 + 0.999)

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._source.now_s() >= self._at_s
