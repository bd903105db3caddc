"""Telemetry through the broker: lossless capacity (4 -> 3) and one-way latency at 1 kHz (1 -> 1).

Two stacks run side by side, with the same topology, payload and measurement loops:

* ``raw``: a pyzmq XSUB/XPUB proxy process, publishers sending ``[topic, msgpack]``
  with hand-written ``SNDMORE`` calls, subscribers decoding with ``msgpack.unpackb``;
* ``fsw``: the project's broker (``python -m fsw.launch RUN_DIR bus``), publishers
  calling ``Bus.publish``, subscribers calling ``Bus.receive``.

Method (from the baseline doc): paced publishers release ``rate x 1 ms`` messages
every millisecond, stamped with CLOCK_MONOTONIC just before encoding; subscribers
take the latency just after decoding. Only messages stamped inside the window
(after a warm-up) count; loss is what the publishers stamped in the window minus
what each subscriber received of it. A rate *passes* with zero loss, p99 < 1 ms
and the publishers keeping up with the offered rate. The capacity is the highest
rate that passed, on a ladder climbed until two rates in a row fail.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import PYTHON, ProcessGroup, QuietPolicy, Worker, median, merge_histograms, percentile

from fsw import run as run_module
from fsw.bus import Bus
from fsw.messages import Kind
from fsw.run import RunOptions

#: The deployment of the broker-only telemetry bench: the broker and the bus limits of the default base.
BROKER_DEPLOYMENT = """\
[base]
name = "bench-bus"

[bus]
high_water_mark = 10000
heartbeat_period_s = 1.0
"""

#: High-water mark of every raw socket: the same as the framework's deployment.
HWM = 10000

P99_LIMIT_US = 1000.0
LEAD_NS = 200_000_000
DRAIN_NS = 250_000_000


@dataclass
class Stack:
    """One running telemetry stack: its publishers and subscribers."""

    name: str
    pubs: list[Worker]
    subs: list[Worker]


@dataclass
class Step:
    """One paced run at one offered rate."""

    stack: str
    rate: float
    offered: float
    delivered: float
    loss: int
    expected: int
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    disturbed: bool = False

    @property
    def passed(self) -> bool:
        """Zero loss, p99 under 1 ms, and the publishers kept up."""
        return self.loss == 0 and self.p99_us < P99_LIMIT_US and self.offered >= 0.97 * self.rate

    def to_json(self) -> dict[str, Any]:
        """Plain data for the report."""
        return {**vars(self), "passed": self.passed}


def _wait_ready(workers: list[Worker], timeout_s: float = 20.0) -> None:
    for worker in workers:
        answer = worker.receive(timeout_s)
        if not answer.get("ready"):
            raise RuntimeError(f"{worker.name} did not start: {answer}")


def start_raw(group: ProcessGroup, n_pub: int, n_sub: int) -> Stack:
    """Start a raw proxy, ``n_sub`` subscribers and ``n_pub`` publishers."""
    run_dir = group.run_dir()
    pub_ep, sub_ep = f"ipc://{run_dir}/pub", f"ipc://{run_dir}/sub"
    proxy = group.bench_script("raw_nodes.py", "proxy", pub_ep, sub_ep, "--hwm", HWM, name="raw-proxy")
    _wait_ready([proxy])
    subs = [
        group.bench_script("raw_nodes.py", "sub", sub_ep, "--hwm", HWM, name=f"raw-sub{i}")
        for i in range(n_sub)
    ]
    pubs = [
        group.bench_script("raw_nodes.py", "pub", pub_ep, i, "--hwm", HWM, name=f"raw-pub{i}")
        for i in range(n_pub)
    ]
    _wait_ready(subs + pubs)
    return Stack("raw", pubs, subs)


def wait_for_broker(run_dir: Path, timeout_s: float = 20.0) -> None:
    """Block until the broker's heartbeat comes through its own proxy."""
    deployment, _ = run_module.read(run_dir)
    with Bus("bench-probe", deployment.bus.publish, deployment.bus.subscribe, subscribe=(b"hb.bus.",)) as bus:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if bus.subscriber.poll(100):
                message = bus.receive()
                if message is not None and message.kind is Kind.HEARTBEAT:
                    return
    raise RuntimeError(f"the broker in {run_dir} sent no heartbeat within {timeout_s:g} s")


def start_fsw(group: ProcessGroup, n_pub: int, n_sub: int) -> Stack:
    """Start the project's broker, ``n_sub`` ``Bus`` subscribers and ``n_pub`` ``Bus`` publishers."""
    run_dir = group.run_dir()
    run_module.write(run_dir, BROKER_DEPLOYMENT, RunOptions(run_id="bench"))
    group.start([PYTHON, "-m", "fsw.launch", str(run_dir), "bus"], "fsw-bus", pipes=False)
    wait_for_broker(run_dir)
    subs = [group.bench_script("fsw_nodes.py", "sub", run_dir, i, name=f"fsw-sub{i}") for i in range(n_sub)]
    pubs = [group.bench_script("fsw_nodes.py", "pub", run_dir, i, name=f"fsw-pub{i}") for i in range(n_pub)]
    _wait_ready(subs + pubs)
    return Stack("fsw", pubs, subs)


def run_step(stack: Stack, rate: float, warmup_s: float, window_s: float) -> Step:
    """Offer ``rate`` msgs/s in total (split over the publishers) and measure what arrives."""
    t0 = time.monotonic_ns() + LEAD_NS
    command = {
        "cmd": "run",
        "t0_ns": t0,
        "warmup_ns": int(warmup_s * 1e9),
        "window_ns": int(window_s * 1e9),
        "drain_ns": DRAIN_NS,
    }
    for worker in stack.subs:
        worker.send(command)
    for worker in stack.pubs:
        worker.send({**command, "rate": rate / len(stack.pubs)})
    timeout_s = warmup_s + window_s + 30.0
    published = [worker.receive(timeout_s) for worker in stack.pubs]
    received = [worker.receive(timeout_s) for worker in stack.subs]
    expected_per_source = {
        p["source"]: (p["last"] - p["first"] + 1 if p["first"] >= 0 else 0) for p in published
    }
    expected = sum(expected_per_source.values()) * len(stack.subs)
    got = sum(
        min(r["counts"].get(source, 0), n) for r in received for source, n in expected_per_source.items()
    )
    histogram = merge_histograms(r["hist_us"] for r in received)
    return Step(
        stack=stack.name,
        rate=rate,
        offered=sum(p["achieved_rate"] for p in published),
        delivered=got / window_s,
        loss=expected - got,
        expected=expected,
        p50_us=percentile(histogram, 0.50),
        p99_us=percentile(histogram, 0.99),
        p999_us=percentile(histogram, 0.999),
        max_us=float(max(histogram)) if histogram else float("nan"),
    )


@dataclass
class RateSummary:
    """One stack at one offered rate, over every round.

    ``steps`` has one entry per round: the step, or ``None`` where the round stopped below this
    rate. ``unknown`` marks the rounds that say nothing about this rate: the step was disturbed
    by other work on the host, or the round was stopped by a disturbed failure before reaching it.
    """

    rate: float
    steps: list[Step | None]
    unknown: list[bool]

    @property
    def known(self) -> list[Step | None]:
        """The rounds that count: a quiet step, or ``None`` (stopped below by genuine failures)."""
        return [s for s, unknown in zip(self.steps, self.unknown, strict=True) if not unknown]

    @property
    def p99_us(self) -> float:
        """Median p99 over the rounds that count; a round that stopped below counts as a failure."""
        known = self.known
        return median(s.p99_us if s else math.inf for s in known) if known else math.inf

    @property
    def passed(self) -> bool:
        """No loss in any round that counts, publishers kept up, median p99 under 1 ms (as in the doc)."""
        run = [s for s in self.known if s]
        return (
            bool(run)
            and all(s.loss == 0 and s.offered >= 0.97 * s.rate for s in run)
            and self.p99_us < P99_LIMIT_US
        )


@dataclass
class CapacityResult:
    """Every step run, per round, and the capacity they give."""

    rounds: int
    steps: list[list[Step]] = field(default_factory=list)
    #: Per round and stack: whether a failure disturbed by other work helped end the climb.
    ended_by_noise: list[dict[str, bool]] = field(default_factory=list)

    def summary(self, stack: str) -> list[RateSummary]:
        """Each rate ``stack`` ran, with its step in every round.

        If other work on the host disturbed every step of ``stack``, the disturbed steps count
        after all (see :meth:`all_disturbed`), rather than leaving nothing to report.
        """
        summaries = self._summary(stack, ignore_noise=False)
        if all(all(r.unknown) for r in summaries):
            return self._summary(stack, ignore_noise=True)
        return summaries

    def all_disturbed(self, stack: str) -> bool:
        """Whether no step of ``stack`` ran while the rest of the host was quiet."""
        return all(all(r.unknown) for r in self._summary(stack, ignore_noise=False))

    def _summary(self, stack: str, *, ignore_noise: bool) -> list[RateSummary]:
        rates = sorted({s.rate for steps in self.steps for s in steps if s.stack == stack})
        by_round = [{s.rate: s for s in steps if s.stack == stack} for steps in self.steps]
        summaries = []
        for rate in rates:
            steps = [r.get(rate) for r in by_round]
            unknown = [
                not ignore_noise and (step.disturbed if step else noise[stack])
                for step, noise in zip(steps, self.ended_by_noise, strict=True)
            ]
            summaries.append(RateSummary(rate, steps, unknown))
        return summaries

    def capacity(self, stack: str) -> float:
        """The highest offered rate that passed over the rounds (0 if none did)."""
        return max((r.rate for r in self.summary(stack) if r.passed), default=0.0)

    def at_capacity(self, stack: str) -> RateSummary | None:
        """The summary of the capacity rate."""
        top = self.capacity(stack)
        return next((r for r in self.summary(stack) if r.rate == top), None)


def capacity(
    group: ProcessGroup,
    ladder: list[float],
    rounds: int,
    warmup_s: float,
    window_s: float,
    quiet: QuietPolicy,
    log: Any,
) -> CapacityResult:
    """Climb ``ladder`` (total offered msgs/s) on both 4 -> 3 stacks, interleaved step by step.

    In each round a stack climbs until two rates in a row fail after it has passed one (three if it
    has not passed any yet, so one noisy first step does not end its round).
    """
    stacks = [start_raw(group, 4, 3), start_fsw(group, 4, 3)]
    time.sleep(0.5)  # let the subscriptions reach the publishers
    result = CapacityResult(rounds)
    for round_index in range(rounds):
        order = stacks if round_index % 2 == 0 else stacks[::-1]
        failures = {s.name: 0 for s in stacks}
        passed = {s.name: False for s in stacks}
        noisy_failures = {s.name: 0 for s in stacks}
        steps: list[Step] = []
        for rate in ladder:
            active = [s for s in order if failures[s.name] < (2 if passed[s.name] else 3)]
            if not active:
                break
            for stack in active:
                step, disturbed = quiet.run(
                    f"{stack.name} {rate:,.0f}/s round {round_index + 1}",
                    functools.partial(run_step, stack, rate, warmup_s, window_s),
                )
                step.disturbed = disturbed
                steps.append(step)
                log(
                    f"  round {round_index + 1} {stack.name:>3} {rate:>9,.0f}/s: "
                    f"offered {step.offered:>9,.0f} "
                    f"loss {step.loss:>6} p50 {step.p50_us:>6.0f} p99 {step.p99_us:>7.0f} µs "
                    f"{'pass' if step.passed else 'FAIL'}"
                )
                if step.passed:
                    failures[stack.name] = noisy_failures[stack.name] = 0
                    passed[stack.name] = True
                else:
                    failures[stack.name] += 1
                    noisy_failures[stack.name] += step.disturbed
        result.steps.append(steps)
        result.ended_by_noise.append({name: n > 0 for name, n in noisy_failures.items()})
    return result


@dataclass
class LatencyResult:
    """p50 / p99 / p99.9 per stack and round (µs)."""

    p50: dict[str, list[float]] = field(default_factory=dict)
    p99: dict[str, list[float]] = field(default_factory=dict)
    p999: dict[str, list[float]] = field(default_factory=dict)
    loss: dict[str, list[int]] = field(default_factory=dict)
    disturbed: dict[str, list[bool]] = field(default_factory=dict)


def latency(
    group: ProcessGroup, rounds: int, warmup_s: float, window_s: float, quiet: QuietPolicy, log: Any
) -> LatencyResult:
    """One publisher at 1 kHz -> broker -> one subscriber, both stacks, interleaved rounds."""
    stacks = [start_raw(group, 1, 1), start_fsw(group, 1, 1)]
    time.sleep(0.5)
    result = LatencyResult()
    for round_index in range(rounds):
        order = stacks if round_index % 2 == 0 else stacks[::-1]
        for stack in order:
            step, disturbed = quiet.run(
                f"{stack.name} 1 kHz round {round_index + 1}",
                functools.partial(run_step, stack, 1000.0, warmup_s, window_s),
            )
            result.disturbed.setdefault(stack.name, []).append(disturbed)
            result.p50.setdefault(stack.name, []).append(step.p50_us)
            result.p99.setdefault(stack.name, []).append(step.p99_us)
            result.p999.setdefault(stack.name, []).append(step.p999_us)
            result.loss.setdefault(stack.name, []).append(step.loss)
            log(
                f"  round {round_index + 1} {stack.name:>3} 1 kHz: "
                f"p50 {step.p50_us:.0f} p99 {step.p99_us:.0f} "
                f"p99.9 {step.p999_us:.0f} max {step.max_us:.0f} µs, loss {step.loss}"
            )
    return result


__all__ = ["CapacityResult", "LatencyResult", "RateSummary", "Step", "capacity", "latency"]
