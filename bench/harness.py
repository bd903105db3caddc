"""The benchmark's side of its worker processes: start, talk to, stop; and small statistics.

Every process the benchmark starts goes through a :class:`ProcessGroup`, whose
``stop()`` (called from ``finally``) sends SIGTERM, then SIGKILL after a grace
period, to each one by its pid. Bases started with ``fsw up`` also have the
pids of their children recorded, so a supervisor that failed to stop them
cannot leave them behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable


class WorkerError(RuntimeError):
    """A worker did not answer, or answered nonsense."""


class Worker:
    """A child process spoken to with JSON lines on its stdin and stdout."""

    def __init__(self, popen: subprocess.Popen[bytes], name: str) -> None:
        self.popen = popen
        self.name = name
        self._buffer = b""

    @property
    def pid(self) -> int:
        """The worker's pid."""
        return self.popen.pid

    def send(self, obj: dict[str, Any]) -> None:
        """Send one command."""
        if self.popen.stdin is None:
            raise WorkerError(f"{self.name}: no stdin")
        self.popen.stdin.write((json.dumps(obj) + "\n").encode())
        self.popen.stdin.flush()

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """Read one JSON answer; raises :class:`WorkerError` after ``timeout_s`` or at end of output."""
        if self.popen.stdout is None:
            raise WorkerError(f"{self.name}: no stdout")
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerError(f"{self.name}: no answer within {timeout_s:g} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise WorkerError(f"{self.name}: exited (code {self.popen.poll()}) without answering")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def call(self, obj: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send a command and return its answer."""
        self.send(obj)
        return self.receive(timeout_s)


class ProcessGroup:
    """Every process one benchmark section started; ``stop()`` ends them all, by pid."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.popens: list[subprocess.Popen[bytes]] = []
        self.extra_pids: set[int] = set()
        self.dirs: list[Path] = []

    def start(self, argv: Sequence[str], name: str, *, pipes: bool = True) -> Worker:
        """Start ``argv`` with stderr to ``<log_dir>/<name>.log``.

        With ``pipes``, stdin and stdout carry the JSON-lines protocol.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log,
                cwd=ROOT,
            )
        self.popens.append(popen)
        return Worker(popen, name)

    def bench_script(self, script: str, *args: str | int | Path, name: str) -> Worker:
        """Start ``python bench/<script> args...`` with the JSON-lines protocol."""
        return self.start([PYTHON, str(BENCH_DIR / script), *map(str, args)], name)

    def run_dir(self) -> Path:
        """A fresh, short directory for ipc sockets, removed by ``stop()``."""
        path = Path(tempfile.mkdtemp(prefix="fsw-b", dir="/tmp"))
        self.dirs.append(path)
        return path

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM every process (then SIGKILL after ``grace_s``), then the recorded extra pids."""
        for popen in self.popens:
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for popen in self.popens:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=5.0)
            for stream in (popen.stdin, popen.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        kill_pids(self.extra_pids, grace_s)
        self.popens.clear()
        self.extra_pids.clear()
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.dirs.clear()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_pids(pids: Iterable[int], grace_s: float) -> None:
    """SIGTERM each live pid, SIGKILL those still alive after ``grace_s``."""
    alive = [pid for pid in pids if pid_alive(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if pid_alive(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# ----------------------------------------------------------------- statistics


def median(values: Iterable[float]) -> float:
    """Median of ``values`` (NaN if empty)."""
    data = list(values)
    return statistics.median(data) if data else float("nan")


def merge_histograms(histograms: Iterable[dict[str, int]]) -> dict[int, int]:
    """Add 1-µs latency histograms (JSON keys are strings)."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            total[int(key)] = total.get(int(key), 0) + count
    return total


def percentile(histogram: dict[int, int], q: float) -> float:
    """The ``q``-quantile (0..1) of a 1-µs histogram, in µs (NaN if empty)."""
    total = sum(histogram.values())
    if total == 0:
        return float("nan")
    rank = q * (total - 1)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            return float(value)
    return float(max(histogram))


def percentiles_ns(samples: list[int], qs: Sequence[float]) -> list[float]:
    """Quantiles of raw nanosecond samples, in µs."""
    ordered = sorted(samples)
    if not ordered:
        return [float("nan")] * len(qs)
    return [ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] / 1000.0 for q in qs]


# ----------------------------------------------------------------- /proc


def process_cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def process_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
