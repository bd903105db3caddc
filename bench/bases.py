"""Whole bases under ``fsw up``: lockstep frame rate, footprint and command round trip.

* Lockstep: ``fsw up [DEPLOYMENT] --speed max --duration D --json`` and its
  ``frames_per_wall_s``, against a raw pyzmq tick-and-acknowledge loop with the
  same number of participants (clock PUB -> proxy -> N SUB, each PUSHes an
  acknowledgement to the clock's PULL; the next tick goes out when all N are in).
* Footprint: VmRSS of every process of a base running in real time, and the
  CPU (utime + stime) of the whole base over an idle window, against a raw
  equivalent with as many processes (proxy, a 10 Hz clock, participants that
  acknowledge every tick), measured over the same window.
* Commands: ``CommandClient.call(<process>, "ping")`` through the router, against a
  raw REQ/REP round trip with msgpack both ways.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq
from harness import (
    CLOCK_TICKS_PER_S,
    PYTHON,
    ROOT,
    ProcessGroup,
    QuietPolicy,
    Worker,
    percentiles_ns,
    process_cpu_ticks,
    process_rss_kib,
)

import fsw.clock
from fsw import deployment as deployment_module
from fsw.bus import CommandClient
from fsw.deployment import Deployment
from fsw.errors import FswError
from fsw.supervisor import query_status

#: The 4 subsystems of the default base without boards and without the simulator:
#: each runs its runtime loop (ticks, housekeeping, frame reports) with nothing to read.
BOARDLESS_BASE = """\
[base]
name = "bench-boardless"

[clock]
frame_period_s = 0.1
frame_timeout_s = 2.0
start_timeout_s = 30.0

[bus]
high_water_mark = 10000
heartbeat_period_s = 1.0
command_timeout_s = 1.0

[processes.power]
entry = "subsystems.power:PowerProcess"
rate_hz = 1.0
housekeeping_period_s = 1.0

[processes.thermal]
entry = "subsystems.thermal:ThermalProcess"
rate_hz = 1.0
housekeeping_period_s = 1.0

[processes.comms]
entry = "subsystems.comms:CommsProcess"
rate_hz = 1.0
housekeeping_period_s = 1.0

[processes.reactor]
entry = "subsystems.reactor:ReactorProcess"
rate_hz = 10.0
housekeeping_period_s = 1.0
"""


@dataclass(frozen=True)
class BaseUnderTest:
    """A deployment to run: TOML text, or ``None`` for the embedded default base."""

    label: str
    text: str | None

    def deployment(self, run_dir: Path) -> Deployment:
        """The parsed deployment with ``run_dir`` filled in."""
        if self.text is None:
            return deployment_module.load_default(run_dir=run_dir)
        return deployment_module.parse(self.text, source=self.label, run_dir=run_dir)

    def up_argv(self, group: ProcessGroup, run_dir: Path, *extra: str) -> list[str]:
        """``python -m fsw.cli up [file] --run-dir DIR extra...``."""
        argv = [PYTHON, "-m", "fsw.cli", "up"]
        if self.text is not None:
            path = group.run_dir() / "base.toml"
            path.write_text(self.text, encoding="utf-8")
            argv.append(str(path))
        return [*argv, "--run-dir", str(run_dir), *extra]


BOARDLESS = BaseUnderTest("boardless base (power, thermal, comms, reactor; no simulator)", BOARDLESS_BASE)
DEFAULT = BaseUnderTest("default base (subsystems/base.toml, simulator + simulated boards)", None)


def simulator_available() -> bool:
    """Whether the simulator the default base needs exists yet."""
    return (ROOT / "hil" / "simulator.py").exists()


# ----------------------------------------------------------------- lockstep


def fsw_lockstep(group: ProcessGroup, base: BaseUnderTest, duration_s: float) -> dict[str, Any]:
    """Run ``fsw up --speed max --duration`` to completion; return its JSON summary."""
    run_dir = group.run_dir()
    argv = base.up_argv(group, run_dir, "--speed", "max", "--duration", f"{duration_s:g}s", "--json")
    worker = group.start(argv, f"fsw-up-lockstep-{run_dir.name}")
    try:
        out, _ = worker.popen.communicate(timeout=120.0)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"fsw up did not finish (logs in {run_dir}/logs)") from exc
    if worker.popen.returncode != 0:
        raise RuntimeError(f"fsw up exited {worker.popen.returncode} (see {group.log_dir})")
    summary: dict[str, Any] = json.loads(out)
    if summary.get("reason") != "duration reached":
        raise RuntimeError(f"fsw up stopped early: {summary.get('reason')}")
    return summary


@dataclass
class RawLockstep:
    """A running raw tick-and-acknowledge loop: proxy, clock and N participants."""

    clock: Worker
    workers: list[Worker]

    def run(self, frames: int, period_s: float = 0.0) -> dict[str, Any]:
        """Run ``frames`` frames as fast as possible (or paced every ``period_s``)."""
        return self.clock.call({"cmd": "run", "frames": frames, "period_s": period_s}, 120.0)


def start_raw_lockstep(group: ProcessGroup, participants: int) -> RawLockstep:
    """Start the raw proxy, clock and ``participants`` participants."""
    run_dir = group.run_dir()
    pub_ep, sub_ep, frames_ep = (f"ipc://{run_dir}/{name}" for name in ("pub", "sub", "frames"))
    proxy = group.bench_script("raw_nodes.py", "proxy", pub_ep, sub_ep, name="raw-lock-proxy")
    proxy.receive(20.0)
    clock = group.bench_script(
        "raw_nodes.py", "clock", pub_ep, frames_ep, participants, name="raw-lock-clock"
    )
    workers = [
        group.bench_script("raw_nodes.py", "participant", sub_ep, frames_ep, f"p{i}", name=f"raw-lock-p{i}")
        for i in range(participants)
    ]
    for worker in [clock, *workers]:
        worker.receive(20.0)
    return RawLockstep(clock, [proxy, clock, *workers])


@dataclass
class LockstepResult:
    """Frames per wall second per stack and round."""

    fps: dict[str, list[float]] = field(default_factory=dict)
    disturbed: dict[str, list[bool]] = field(default_factory=dict)
    participants: int = 0
    frames: int = 0
    awaited_per_frame: float | None = None


def lockstep(
    group: ProcessGroup, base: BaseUnderTest, rounds: int, duration_s: float, quiet: QuietPolicy, log: Any
) -> LockstepResult:
    """Interleaved rounds of ``fsw up --speed max`` and the raw loop with as many participants."""
    deployment = base.deployment(Path("/tmp/unused"))
    participants = len(deployment.lockstep_participants)
    frames = max(1, round(duration_s / deployment.clock.frame_period_s))
    raw = start_raw_lockstep(group, participants)
    result = LockstepResult(participants=participants, frames=frames)
    result.awaited_per_frame = awaited_per_frame(deployment)
    for round_index in range(rounds):
        order = ("raw", "fsw") if round_index % 2 == 0 else ("fsw", "raw")
        for stack in order:
            label = f"lockstep {stack} round {round_index + 1}"
            if stack == "raw":
                answer, disturbed = quiet.run(label, functools.partial(raw.run, frames))
                fps = float(answer["frames_per_s"])
            else:
                summary, disturbed = quiet.run(
                    label, functools.partial(fsw_lockstep, group, base, duration_s)
                )
                fps = float(summary["frames_per_wall_s"])
                if summary.get("late_frames") or summary.get("missed_frames"):
                    late, missed = summary["late_frames"], summary["missed_frames"]
                    log(f"  note: the fsw run had {late} late and {missed} missed frames")
            result.fps.setdefault(stack, []).append(fps)
            result.disturbed.setdefault(stack, []).append(disturbed)
            log(f"  round {round_index + 1} {stack:>3}: {fps:,.0f} frames/s ({frames} frames)")
    return result


def awaited_per_frame(deployment: Deployment) -> float | None:
    """Participants the framework's clock waits for per frame, on average (``None``: all, every frame).

    A clock whose participants declare when they have work (``Participant.due``) waits only for
    those due: a process is due every ``frames_per_cycle`` and every ``frames_per_housekeeping``.
    """
    if not hasattr(fsw.clock.Participant, "due"):
        return None
    period = deployment.clock.frame_period_s
    schedules = [
        (p.frames_per_cycle(period), p.frames_per_housekeeping(period))
        for p in deployment.processes
        if p.lockstep
    ]
    span = math.lcm(*(n for schedule in schedules for n in schedule)) if schedules else 1
    due = sum(sum(any(f % n == 0 for n in s) for s in schedules) for f in range(span))
    return due / span


# ----------------------------------------------------------------- a base in real time


@dataclass
class RunningBase:
    """A base under ``fsw up`` in real time, with the pid of every process."""

    deployment: Deployment
    supervisor: Worker
    pids: dict[str, int]


def start_base(group: ProcessGroup, base: BaseUnderTest, timeout_s: float = 60.0) -> RunningBase:
    """Start ``fsw up`` in real time and wait until every process is ready."""
    run_dir = group.run_dir()
    deployment = base.deployment(run_dir)
    supervisor = group.start(base.up_argv(group, run_dir), f"fsw-up-realtime-{run_dir.name}", pipes=False)
    deadline = time.monotonic() + timeout_s
    while True:
        if supervisor.popen.poll() is not None:
            raise RuntimeError(f"fsw up exited {supervisor.popen.returncode} (logs in {run_dir}/logs)")
        try:
            status = query_status(deployment.bus.status, timeout_s=1.0)
        except FswError:
            status = {"processes": []}
        processes = status["processes"]
        pids = {p["name"]: p["pid"] for p in processes if p["pid"]}
        group.extra_pids.update(pids.values())
        if processes and all(p["state"] == "ready" for p in processes):
            return RunningBase(deployment, supervisor, {"supervisor": supervisor.pid, **pids})
        if time.monotonic() > deadline:
            states = {p["name"]: p["state"] for p in processes}
            raise RuntimeError(f"base not ready within {timeout_s:g} s: {states} (logs in {run_dir}/logs)")
        time.sleep(0.2)


@dataclass
class Footprint:
    """RSS (KiB) and CPU (% of one core over the window) per process, framework and raw."""

    fsw_rss_kib: dict[str, int]
    fsw_cpu_pct: dict[str, float]
    raw_rss_kib: dict[str, int]
    raw_cpu_pct: dict[str, float]
    window_s: float


def footprint(running: RunningBase, raw_group: ProcessGroup, settle_s: float, window_s: float) -> Footprint:
    """Measure the idle base and a raw equivalent with as many processes, over the same window."""
    participants = max(1, len(running.pids) - 2)
    raw = start_raw_lockstep(raw_group, participants)
    frames = int((settle_s + window_s + 5.0) * 10)
    raw.clock.send({"cmd": "run", "frames": frames, "period_s": 0.1})
    raw_pids = {w.name: w.pid for w in raw.workers}
    time.sleep(settle_s)
    pids = {**running.pids, **raw_pids}
    before = {name: process_cpu_ticks(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(window_s)
    after = {name: process_cpu_ticks(pid) for name, pid in pids.items()}
    elapsed = time.monotonic() - started
    cpu = {name: (after[name] - before[name]) / CLOCK_TICKS_PER_S / elapsed * 100.0 for name in pids}
    rss = {name: process_rss_kib(pid) for name, pid in pids.items()}
    return Footprint(
        fsw_rss_kib={n: rss[n] for n in running.pids},
        fsw_cpu_pct={n: cpu[n] for n in running.pids},
        raw_rss_kib={n: rss[n] for n in raw_pids},
        raw_cpu_pct={n: cpu[n] for n in raw_pids},
        window_s=elapsed,
    )


# ----------------------------------------------------------------- commands


@dataclass
class CommandResult:
    """Round-trip percentiles (µs) per stack and round."""

    p50: dict[str, list[float]] = field(default_factory=dict)
    p99: dict[str, list[float]] = field(default_factory=dict)
    p999: dict[str, list[float]] = field(default_factory=dict)
    disturbed: dict[str, list[bool]] = field(default_factory=dict)
    failures: int = 0
    target: str = ""


def _raw_rtt(socket: zmq.Socket[bytes], calls: int) -> list[int]:
    samples = []
    for i in range(calls):
        started = time.perf_counter_ns()
        socket.send(msgpack.packb({"id": f"bench-{i}", "target": "power", "command": "ping", "args": {}}))
        msgpack.unpackb(socket.recv())
        samples.append(time.perf_counter_ns() - started)
    return samples


def _fsw_rtt(client: CommandClient, target: str, calls: int) -> tuple[list[int], int]:
    samples = []
    failures = 0
    for _ in range(calls):
        started = time.perf_counter_ns()
        outcome = client.call(target, "ping", timeout_s=5.0)
        samples.append(time.perf_counter_ns() - started)
        if not outcome.ok:
            failures += 1
    return samples, failures


def commands(
    running: RunningBase,
    group: ProcessGroup,
    rounds: int,
    calls: int,
    warmup: int,
    quiet: QuietPolicy,
    log: Any,
) -> CommandResult:
    """Interleaved rounds of ``calls`` synchronous pings: router + process vs raw REQ/REP."""
    target = running.deployment.lockstep_participants[0]
    endpoint = f"ipc://{group.run_dir()}/rep"
    server = group.bench_script("raw_nodes.py", "rep", endpoint, name="raw-rep")
    server.receive(20.0)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    result = CommandResult(target=target)
    try:
        req = context.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(endpoint)
        client = CommandClient(running.deployment.bus.command, source="bench", context=context)
        _raw_rtt(req, warmup)
        _, failed = _fsw_rtt(client, target, warmup)
        result.failures += failed
        for round_index in range(rounds):
            order = ("raw", "fsw") if round_index % 2 == 0 else ("fsw", "raw")
            for stack in order:
                label = f"commands {stack} round {round_index + 1}"
                if stack == "raw":
                    samples, disturbed = quiet.run(label, functools.partial(_raw_rtt, req, calls))
                else:
                    (samples, failed), disturbed = quiet.run(
                        label, functools.partial(_fsw_rtt, client, target, calls)
                    )
                    result.failures += failed
                result.disturbed.setdefault(stack, []).append(disturbed)
                p50, p99, p999 = percentiles_ns(samples, (0.5, 0.99, 0.999))
                result.p50.setdefault(stack, []).append(p50)
                result.p99.setdefault(stack, []).append(p99)
                result.p999.setdefault(stack, []).append(p999)
                log(f"  round {round_index + 1} {stack:>3}: p50 {p50:.0f} p99 {p99:.0f} p99.9 {p999:.0f} µs")
    finally:
        context.destroy(linger=0)
    return result


# ----------------------------------------------------------------- where a process's memory goes

_IMPORT_PROBE = """
import json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
base, heavy = sys.argv[1].split(","), sys.argv[2].split(",")
steps = [("python", rss())]
for module in base:
    __import__(module)
    steps.append((module, rss()))
print(json.dumps({"steps": steps, "loaded": [m for m in heavy if m in sys.modules]}))
"""

#: What a framework child imports (``python -m fsw.launch`` of a subsystem), in order.
CHILD_IMPORTS = ("zmq", "msgpack", "fsw.launch", "subsystems.power")

#: Large modules that have no part in moving bus messages; each is reported if a child loads it.
HEAVY_MODULES = ("structlog", "asyncio", "rich", "pygments", "importlib.metadata", "email", "zipfile")


@dataclass
class ImportCosts:
    """VmRSS (KiB) of a fresh interpreter along a child's imports, and the heavy modules it loads."""

    steps: list[tuple[str, int]]
    loaded: list[str]
    #: VmRSS (KiB) each heavy root module adds by itself on top of zmq + msgpack.
    alone: dict[str, int]


def _probe(base: tuple[str, ...]) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, "-c", _IMPORT_PROBE, ",".join(base), ",".join(HEAVY_MODULES)],
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def import_costs() -> ImportCosts:
    """What a child's imports cost in memory, and which heavy modules come with them."""
    child = _probe(CHILD_IMPORTS)
    loaded = [str(m) for m in child["loaded"]]
    alone: dict[str, int] = {}
    for root in ("structlog", "importlib.metadata"):
        if root in loaded:
            steps = _probe(("zmq", "msgpack", root))["steps"]
            alone[root] = int(steps[-1][1]) - int(steps[-2][1])
    return ImportCosts([(str(n), int(k)) for n, k in child["steps"]], loaded, alone)
