"""What the benchmark's worker processes share: pacing, the payload, the stdin/stdout protocol.

Nothing here imports ``fsw``: the raw pyzmq workers must not pay for the
framework's imports (that would skew the memory baseline).

Workers take one JSON command per line on standard input and answer each with
one JSON line on standard output; they stop at end of input or ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

#: Publishers release their messages in bursts, one burst per tick (as in the baseline doc).
TICK_NS = 1_000_000


def telemetry_payload(source: str) -> dict[str, Any]:
    """The 10-field telemetry dict of the baseline doc (103 bytes as msgpack)."""
    return {
        "src": source,
        "t": 0,
        "seq": 0,
        "soc": 0.87,
        "v": 120.1,
        "i": 3.21,
        "temp": 21.5,
        "sol": 310.4,
        "mode": 2,
        "ok": True,
    }


def die_with_parent() -> None:
    """Have Linux SIGKILL this process if the benchmark that started it dies."""
    name = ctypes.util.find_library("c")
    if name is None or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(name, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def commands() -> Iterator[dict[str, Any]]:
    """The commands on standard input, until end of input or ``quit``."""
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            return
        yield command


def reply(obj: dict[str, Any]) -> None:
    """Answer the benchmark with one JSON line."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def sleep_until_ns(deadline_ns: int) -> None:
    """Sleep until ``time.monotonic_ns()`` reaches ``deadline_ns``."""
    delay_ns = deadline_ns - time.monotonic_ns()
    if delay_ns > 0:
        time.sleep(delay_ns / 1e9)


def publish_paced(
    send: Callable[[dict[str, Any]], None], payload: dict[str, Any], command: dict[str, Any]
) -> dict[str, Any]:
    """Send ``rate`` msgs/s from ``t0_ns``, ``rate x 1 ms`` per 1 ms tick, until the window ends.

    Each message gets the next ``seq`` and a CLOCK_MONOTONIC stamp ``t`` (ns)
    taken just before it is encoded. A late wake-up sends the messages of the
    ticks it missed at once, so the average rate is exact unless the publisher
    is saturated (``achieved_rate`` then falls short). Returns the first and
    last ``seq`` stamped inside the measurement window.
    """
    rate = float(command["rate"])
    t0 = int(command["t0_ns"])
    window_start = t0 + int(command["warmup_ns"])
    window_end = window_start + int(command["window_ns"])
    per_tick = rate * TICK_NS / 1e9
    seq = int(payload["seq"])
    sent = 0
    first = last = -1
    monotonic_ns = time.monotonic_ns
    sleep_until_ns(t0)
    while True:
        now = monotonic_ns()
        if now >= window_end:
            break
        ticks = (now - t0) // TICK_NS + 1
        due = int(ticks * per_tick)
        while sent < due:
            payload["seq"] = seq
            stamp = monotonic_ns()
            payload["t"] = stamp
            send(payload)
            if window_start <= stamp < window_end:
                if first < 0:
                    first = seq
                last = seq
            seq += 1
            sent += 1
        sleep_until_ns(t0 + ticks * TICK_NS)
    payload["seq"] = seq
    elapsed_s = (monotonic_ns() - t0) / 1e9
    return {
        "source": payload["src"],
        "first": first,
        "last": last,
        "sent": sent,
        "achieved_rate": sent / elapsed_s if elapsed_s > 0 else 0.0,
    }


class WindowCounter:
    """A subscriber's tally of the messages stamped inside the measurement window."""

    def __init__(self, command: dict[str, Any]) -> None:
        self.window_start = int(command["t0_ns"]) + int(command["warmup_ns"])
        self.window_end = self.window_start + int(command["window_ns"])
        self.stop_ns = self.window_end + int(command["drain_ns"])
        self.latencies_ns: list[int] = []
        self.counts: Counter[str] = Counter()

    def result(self) -> dict[str, Any]:
        """Counts per source and a 1-µs latency histogram."""
        histogram = Counter(lat // 1000 for lat in self.latencies_ns)
        return {"counts": dict(self.counts), "hist_us": {str(k): v for k, v in histogram.items()}}
