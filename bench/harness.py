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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable

T = TypeVar("T")


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


def quiet_values(values: list[float], disturbed: list[bool]) -> list[float]:
    """The values measured while the host was quiet, or all of them if none was."""
    quiet = [v for v, d in zip(values, disturbed, strict=True) if not d]
    return quiet or values


def quiet_ratio(
    measured: list[float],
    measured_disturbed: list[bool],
    baseline: list[float],
    baseline_disturbed: list[bool],
) -> float:
    """Median of per-round ratios, over the rounds where neither side was disturbed (if any)."""
    pairs = list(zip(measured, measured_disturbed, baseline, baseline_disturbed, strict=True))
    quiet = [(m, b) for m, md, b, bd in pairs if not md and not bd]
    chosen = quiet or [(m, b) for m, _, b, _ in pairs]
    return median(m / b for m, b in chosen if b)


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


def steal_ticks() -> int:
    """CPU time the hypervisor gave to other guests, all CPUs, in clock ticks (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8])


def cpu_ticks_split() -> tuple[int, int]:
    """CPU time of (this process tree, every other user-space process), in clock ticks.

    Each process counts its utime + stime and its reaped children's cutime + cstime, so a
    process that exits moves into its parent's count and nothing is counted twice. Kernel
    threads (children of kthreadd) are left out: they also work for the benchmark's traffic.
    """
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(v) for v in fields[11:15])
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    ours: set[int] = set()
    stack = [os.getpid()]
    while stack:
        pid = stack.pop()
        ours.add(pid)
        stack.extend(children.get(pid, ()))
    kernel = {2, *children.get(2, ())}
    own = sum(times[pid] for pid in ours if pid in times)
    other = sum(t for pid, t in times.items() if pid not in ours and pid not in kernel)
    return own, other


class HostLoad:
    """CPU the rest of the host (other processes, other guests) used while we measured."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, int]:
        _, other = cpu_ticks_split()
        return time.monotonic(), other + steal_ticks()

    def other_cores(self) -> float:
        """Cores' worth of CPU used by other processes and guests since construction."""
        start_s, start_other = self._start
        now_s, other = self._sample()
        elapsed = now_s - start_s
        return max(0.0, (other - start_other) / CLOCK_TICKS_PER_S / elapsed) if elapsed > 0 else 0.0


class QuietPolicy:
    """Keeps measurements away from other work on the host, within a time budget.

    Before each measurement it waits (probing 0.2 s at a time) until other processes use
    less than ``probe_cores``. A measurement is disturbed when other processes used more than
    ``threshold_cores`` on average while it ran; it is then repeated, up to ``attempts`` times in
    all. Waiting and repeating share the run's ``budget_s``; once it is spent, measurements run
    as they come and a disturbed one is kept and marked.
    """

    PROBE_S = 0.2
    #: Longest wait before one measurement; two such waits in a row mean the host stays busy.
    MAX_WAIT_S = 15.0

    def __init__(
        self,
        budget_s: float,
        log: Callable[[str], None],
        threshold_cores: float = 0.05,
        probe_cores: float = 0.2,
        attempts: int = 3,
    ) -> None:
        self.budget_s = budget_s
        self.log = log
        self.threshold_cores = threshold_cores
        self.probe_cores = probe_cores
        self.attempts = attempts
        self.spent_s = 0.0
        self.waited_s = 0.0
        self.repeated = 0
        self.kept_disturbed: list[tuple[str, float]] = []
        self.other_load: list[float] = []
        self._waits_timed_out = 0

    def _wait_for_quiet(self, label: str) -> None:
        started = time.monotonic()
        while self.spent_s < self.budget_s:
            load = HostLoad()
            time.sleep(self.PROBE_S)
            if load.other_cores() <= self.probe_cores:
                self._waits_timed_out = 0
                return
            if time.monotonic() - started < 2 * self.PROBE_S:
                self.log(f"  ({label}: waiting for other work on the host to stop)")
            self.spent_s += self.PROBE_S
            self.waited_s += self.PROBE_S
            if time.monotonic() - started >= self.MAX_WAIT_S:
                self._waits_timed_out += 1
                if self._waits_timed_out >= 2:
                    self.log("  (other work keeps the host busy: measuring as it comes from now on)")
                    self.spent_s = max(self.spent_s, self.budget_s)
                return

    def run(self, label: str, measure: Callable[[], T]) -> tuple[T, bool]:
        """Run ``measure`` when the host is quiet, again if other work disturbed it.

        Returns the result and whether other work disturbed it.
        """
        for attempt in range(1, self.attempts + 1):
            self._wait_for_quiet(label)
            load = HostLoad()
            started = time.monotonic()
            result = measure()
            other = load.other_cores()
            if other <= self.threshold_cores:
                self.other_load.append(other)
                return result, False
            if attempt == self.attempts or self.spent_s >= self.budget_s:
                self.other_load.append(other)
                self.kept_disturbed.append((label, other))
                self.log(f"  ({label}: other work used {other:.2f} cores meanwhile; kept, marked disturbed)")
                return result, True
            self.repeated += 1
            self.spent_s += time.monotonic() - started
            self.log(f"  ({label}: other work used {other:.2f} cores meanwhile; repeating)")
        raise AssertionError("unreachable")

    def warning(self) -> str:
        """A warning for the top of the report when other work disturbed many measurements, else ''."""
        total = len(self.other_load)
        if not total or len(self.kept_disturbed) * 4 < total:
            return ""
        return (
            f"**Warning:** {len(self.kept_disturbed)} of {total} measurements ran while other processes "
            f"on the host used more than {self.threshold_cores:.2f} of a core (median "
            f"{median(self.other_load):.2f} cores), so the figures below describe a busy host, not an idle "
            "one; see 'Method'. Rerun when the host is quiet."
        )

    def summary(self) -> str:
        """One sentence for the report."""
        load = sorted(self.other_load)
        text = (
            f"Other work on the host during the measurements kept: median {median(load):.2f}, "
            f"max {max(load, default=0.0):.2f} cores. "
            f"Waited {self.waited_s:.0f} s in all for other work on the host to stop; measurements "
            f"repeated because other processes used more than {self.threshold_cores:.2f} of a core while "
            f"they ran: {self.repeated} (budget for waiting and repeating {self.budget_s:g} s, "
            f"{self.spent_s:.0f} s used)."
        )
        if self.kept_disturbed:
            worst = max(other for _, other in self.kept_disturbed)
            text += (
                f" Kept although disturbed: {len(self.kept_disturbed)} "
                f"(worst {worst:.2f} cores of other work), left out of the medians wherever a quiet "
                "round of the same measurement exists: "
                + ", ".join(label for label, _ in self.kept_disturbed)
                + "."
            )
        else:
            text += " Every figure kept was measured while the rest of the host stayed under that load."
        return text
