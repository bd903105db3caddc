"""Response deadline of the fault protection, in real time: limit crossing at the board to the
response command accepted by the board.

    python bench/response.py [--reps N] [--write docs/performance.md]

The default base (``subsystems/base.toml``: 10 Hz frames, simulated boards, the protection
process) runs under ``fsw up`` in real time with one change, so that every repetition starts
from the same state: its monitors file is the shipped one with ``fuel_temp`` replaced by
``bench_fuel_temp`` (same point and red level, persistence 1, policy ``rearm``; response: the
shipped ``reactor_shutdown`` sequence only, no mode request). The simulated reactor starts
cold and OFF, so the ``shutdown`` it answers with moves nothing and can be repeated; every
other shipped monitor stays in force.

One repetition, timed in this process (``perf_counter_ns`` as each message arrives from the
broker):

1. ``simulator.inject_fault``: an ``offset`` on ``reactor.fuel_temp_c`` that puts the reading
   past the red level; the result names the frame N whose board reads first see it
   (``takes_effect_at_frame``).
2. Start: the tick of frame N (``tick.clock.frame``). Checked: the reactor's board sample of
   frame N is the first one past the limit.
3. Ends: ``tlm.reactor.board_command`` (``rod_target``; the tapped board publishes it once the
   board has accepted the command; its ``frame`` gives the frames) and
   ``evt.protection.sequence_completed`` (the protection process has the command's final
   status: the acknowledgement). On the way: ``board_sample`` of frame N, the monitor's
   ``monitor_changed`` to red and the ``sequence_started`` event.
4. ``clear_fault``; the monitor's ``monitor_changed`` back to green ends the repetition.

Baselines, in the same run:

* reflex: the same chain with this process in the protection process's place (an ``offset`` on
  ``reactor.reflector_temp_c``, which nothing else watches; on the first board sample past
  the threshold this process sends ``reactor.shutdown`` itself), interleaved with the
  protection repetitions, the order flipping every pair;
* ping: ``CommandClient.call("reactor", "ping")`` through the router, as ``bench/run.py``
  measures it, between the pairs;
* store: ``StateStore.append_event`` (SQLite WAL, ``synchronous = FULL``) in the base's state
  directory, between the pairs: what the protection process writes three times before it sends.

``--state-dir DIR`` puts the base's state (the protection's store) under ``DIR`` instead
(``/dev/shm``: the same path with no disk under the fsyncs); ``--json FILE`` dumps every
repetition's stamps.

Anchor: cFS Limit Checker samples its actionpoints at 1 Hz (the scheduler's
``LC_SAMPLE_AP_MID``), so a crossing waits up to 1 s before an RTS is even requested.
Target: p99 within two frames of the monitor's rate (200 ms at 10 Hz). Every process it
starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bases
import report
import zmq
from harness import ROOT, ProcessGroup, QuietPolicy, median

from fsw.bus import Bus, CommandClient, CommandOutcome
from fsw.messages import Kind, Message
from fsw.monitors import load_monitors
from fsw.store import StateStore
from subsystems.deployment import DEFAULT_DEPLOYMENT

SECTION = "## Response deadline: limit crossing to the board's acknowledgement"

#: The shipped monitors file, as the default base names it.
SHIPPED_MONITORS = 'monitors = "subsystems:protection/monitors.toml"'
#: The monitor the benchmark puts in place of ``fuel_temp``.
MONITOR = "bench_fuel_temp"
REPLACED = "fuel_temp"
POINT = "fuel_temp_c"
RED_HIGH_C = 840.0
SEQUENCE = "reactor_shutdown"
#: A channel nothing watches: the reflex baseline's trigger.
REFLEX_CHANNEL = "reflector_temp_c"
REFLEX_OFFSET = 500.0
#: cFS LC: actionpoints sampled once a second (cfs.md, "Sample rate").
LC_SAMPLE_PERIOD_MS = 1000.0
#: Wall seconds one repetition may take before the run stops with what it saw.
REP_TIMEOUT_S = 5.0
#: Pairs measured between two looks at the rest of the host.
BATCH_PAIRS = 10

BENCH_MONITOR = f"""
[[monitor]]
name = "{MONITOR}"
kind = "limit"
point = "reactor.{POINT}"
red_high = {RED_HIGH_C}
persistence = 1
policy = "rearm"
response = {{ sequence = "{SEQUENCE}" }}
description = "The benchmark's fuel_temp: persistence 1, sequence only, re-arming."
"""


def log(text: str) -> None:
    """Progress on standard error."""
    print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- the base under test


def monitors_text() -> str:
    """The shipped monitors with ``fuel_temp`` replaced by the benchmark's monitor."""
    shipped = (ROOT / "subsystems" / "protection" / "monitors.toml").read_text(encoding="utf-8")
    head, *blocks = shipped.split("\n[[monitor]]")
    kept = [b for b in blocks if f'\nname = "{REPLACED}"\n' not in b]
    if len(kept) != len(blocks) - 1:
        raise RuntimeError(f"the shipped monitors file has no single monitor named {REPLACED!r}")
    return head + "".join("\n[[monitor]]" + b for b in kept) + BENCH_MONITOR


def base_under_test(group: ProcessGroup, state_dir: Path | None) -> tuple[bases.BaseUnderTest, int]:
    """The default base with the benchmark's monitors file (and ``state_dir``, if given); and
    how many monitors it has."""
    path = group.run_dir() / "monitors.toml"
    path.write_text(monitors_text(), encoding="utf-8")
    specs = load_monitors(path)
    if DEFAULT_DEPLOYMENT.count(SHIPPED_MONITORS) != 1 or DEFAULT_DEPLOYMENT.count("\n[base]\n") != 1:
        raise RuntimeError(f"subsystems/base.toml no longer says [base] and {SHIPPED_MONITORS}")
    text = DEFAULT_DEPLOYMENT.replace(SHIPPED_MONITORS, f'monitors = "{path}"')
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix="fsw-response-", dir=state_dir))
        group.dirs.append(fresh)
        text = text.replace("\n[base]\n", f'\n[base]\nstate_dir = "{fresh}"\n')
    label = "default base (subsystems/base.toml), monitors: shipped with fuel_temp -> bench_fuel_temp"
    return bases.BaseUnderTest(label, text), len(specs)


# ----------------------------------------------------------------- the bus, seen from here


@dataclass
class Seen:
    """What arrived since :meth:`Watcher.reset`, each stamped with ``perf_counter_ns`` at receipt."""

    board_commands: list[tuple[int, int, str, Any]] = field(default_factory=list)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


class Watcher:
    """This process's subscriber on the base's bus and its command client, in one poll loop.

    Not thread-safe. ``close()`` is idempotent; usable as a context manager.
    """

    TOPICS = (
        b"tick.clock.frame",
        b"tlm.reactor.board_sample",
        b"tlm.reactor.board_command",
        b"tlm.protection.hk",
        b"evt.protection.",
    )
    KEEP_FRAMES = 600

    def __init__(self, running: bases.RunningBase) -> None:
        bus_config = running.deployment.bus
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.bus = Bus(
            "bench", bus_config.publish, bus_config.subscribe, subscribe=self.TOPICS, context=self.context
        )
        self.client = CommandClient(bus_config.command, source="bench", context=self.context)
        self.poller = zmq.Poller()
        self.poller.register(self.bus.subscriber, zmq.POLLIN)
        self.poller.register(self.client.socket, zmq.POLLIN)
        self.ticks: dict[int, int] = {}
        self.samples: dict[int, tuple[int, dict[str, Any]]] = {}
        self.hk: dict[str, Any] = {}
        self.outcomes: dict[str, tuple[int, CommandOutcome]] = {}
        self.seen = Seen()
        #: Called with (ns, frame, values) as each reactor board sample arrives.
        self.on_sample: Callable[[int, int, dict[str, Any]], None] | None = None
        self.last_frame = -1
        self._closed = False

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets and the context. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.bus.close()
        self.client.close()
        self.context.destroy(linger=0)

    def reset(self) -> None:
        """Forget the board commands and events seen so far."""
        self.seen = Seen()

    def pump(self, timeout_s: float) -> None:
        """Take every message and acknowledgement waiting, waiting up to ``timeout_s`` for the first."""
        ready = dict(self.poller.poll(max(0, int(timeout_s * 1000))))
        if self.bus.subscriber in ready:
            while True:
                message = self.bus.receive()
                if message is None:
                    break
                self._take(time.perf_counter_ns(), message)
        if self.client.socket in ready:
            for outcome in self.client.drain():
                self.outcomes[outcome.id] = (time.perf_counter_ns(), outcome)

    def _take(self, ns: int, message: Message) -> None:
        data = message.data
        if message.kind is Kind.TICK:
            frame = int(data.get("frame", -1))
            self.ticks[frame] = ns
            self.last_frame = max(self.last_frame, frame)
            self.ticks.pop(frame - self.KEEP_FRAMES, None)
            self.samples.pop(frame - self.KEEP_FRAMES, None)
        elif message.kind is Kind.TELEMETRY and message.name == "board_sample":
            frame = int(data.get("frame", -1))
            values = data.get("values", {})
            self.samples[frame] = (ns, values)
            if self.on_sample is not None:
                self.on_sample(ns, frame, values)
        elif message.kind is Kind.TELEMETRY and message.name == "board_command":
            self.seen.board_commands.append(
                (ns, int(data.get("frame", -1)), str(data.get("actuator")), data.get("value"))
            )
        elif message.kind is Kind.TELEMETRY and message.name == "hk":
            self.hk = dict(data)
        elif message.kind is Kind.EVENT:
            self.seen.events.append((ns, message.name, dict(data)))

    def wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Pump until ``done()``; raises RuntimeError naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {what} within {timeout_s:g} s")
            self.pump(min(left, 0.05))

    def command(self, target: str, name: str, args: dict[str, Any] | None = None) -> CommandOutcome:
        """Send a command and pump until its final status; raises RuntimeError unless it completed."""
        command_id = self.client.send(target, name, args)
        self.wait(lambda: command_id in self.outcomes, REP_TIMEOUT_S, f"final status of {target}.{name}")
        _, outcome = self.outcomes.pop(command_id)
        if not outcome.ok:
            raise RuntimeError(f"{target}.{name} {outcome.status}: {outcome.reason}")
        return outcome

    def event(self, name: str, **match: Any) -> tuple[int, dict[str, Any]] | None:
        """The first event ``name`` seen since the reset whose data has ``match``."""
        for ns, event, data in self.seen.events:
            if event == name and all(data.get(k) == v for k, v in match.items()):
                return ns, data
        return None

    def rod_command(self, after_ns: int = 0) -> tuple[int, int] | None:
        """(ns, frame) of the first ``rod_target`` board command seen since the reset, after ``after_ns``."""
        for ns, frame, actuator, _ in self.seen.board_commands:
            if actuator == "rod_target" and ns > after_ns:
                return ns, frame
        return None

    def reading(self, channel: str) -> float:
        """The last board reading of ``channel``."""
        frame = max(self.samples)
        return float(self.samples[frame][1][channel])


# ----------------------------------------------------------------- repetitions


@dataclass
class Rep:
    """One repetition's stamps (ns, this process's clock) and frames."""

    frame: int
    tick_ns: int
    sample_ns: int
    board_ns: int
    board_frame: int
    ack_ns: int
    red_ns: int = 0
    started_ns: int = 0
    reading: float = math.nan

    def ms(self, end_ns: int, start_ns: int | None = None) -> float:
        """Milliseconds from ``start_ns`` (the tick of the crossing frame) to ``end_ns``."""
        return (end_ns - (self.tick_ns if start_ns is None else start_ns)) / 1e6


def crossing(watcher: Watcher, frame: int, channel: str, above: float) -> tuple[int, int, float]:
    """(tick ns, sample ns, reading) of ``frame``; checks it is the first reading past ``above``."""
    watcher.wait(lambda: frame in watcher.ticks and frame in watcher.samples, 2.0, f"tick and sample {frame}")
    sample_ns, values = watcher.samples[frame]
    value = float(values[channel])
    before = watcher.samples.get(frame - 1)
    if not value > above or (before is not None and float(before[1][channel]) > above):
        raise RuntimeError(f"frame {frame} is not the crossing of {channel} past {above:g}: {value:g}")
    return watcher.ticks[frame], sample_ns, value


def protection_rep(watcher: Watcher) -> Rep:
    """Offset the fuel reading past red; time the protection's shutdown to the board and its ack."""
    watcher.reset()
    watcher.wait(lambda: watcher.reading(POINT) < RED_HIGH_C, REP_TIMEOUT_S, f"{POINT} under red")
    offset = RED_HIGH_C + 60.0 - watcher.reading(POINT)
    fault = {"board": "reactor", "kind": "offset", "channel": POINT, "value": offset}
    injected = watcher.command("simulator", "inject_fault", fault)
    frame = int(injected.result["takes_effect_at_frame"])
    by = f"monitor:{MONITOR}"
    watcher.wait(
        lambda: watcher.rod_command() is not None and watcher.event("sequence_completed", by=by) is not None,
        REP_TIMEOUT_S,
        "shutdown at the board and its acknowledgement",
    )
    tick_ns, sample_ns, value = crossing(watcher, frame, POINT, RED_HIGH_C)
    board = watcher.rod_command()
    red = watcher.event("monitor_changed", monitor=MONITOR, state="red")
    started = watcher.event("sequence_started", by=by)
    ack = watcher.event("sequence_completed", by=by)
    if board is None or red is None or started is None or ack is None:
        raise RuntimeError("a stamp is missing")
    watcher.command("simulator", "clear_fault", {"board": "reactor", "kind": "offset", "channel": POINT})
    watcher.wait(
        lambda: watcher.event("monitor_changed", monitor=MONITOR, state="green") is not None,
        REP_TIMEOUT_S,
        f"{MONITOR} green again",
    )
    return Rep(frame, tick_ns, sample_ns, board[0], board[1], ack[0], red[0], started[0], value)


def reflex_rep(watcher: Watcher) -> Rep:
    """The same chain with this process as the monitor: it sends ``reactor.shutdown`` itself."""
    watcher.reset()
    threshold = watcher.reading(REFLEX_CHANNEL) + REFLEX_OFFSET / 2
    sent: dict[str, Any] = {}

    def on_sample(_ns: int, _frame: int, values: dict[str, Any]) -> None:
        if not sent and float(values.get(REFLEX_CHANNEL, 0.0)) > threshold:
            sent["id"] = watcher.client.send("reactor", "shutdown")
            sent["ns"] = time.perf_counter_ns()

    fault = {"board": "reactor", "kind": "offset", "channel": REFLEX_CHANNEL, "value": REFLEX_OFFSET}
    watcher.on_sample = on_sample
    try:
        injected = watcher.command("simulator", "inject_fault", fault)
        frame = int(injected.result["takes_effect_at_frame"])
        watcher.wait(
            lambda: bool(sent) and sent["id"] in watcher.outcomes and watcher.rod_command() is not None,
            REP_TIMEOUT_S,
            "shutdown at the board and its acknowledgement",
        )
    finally:
        watcher.on_sample = None
    ack_ns, outcome = watcher.outcomes.pop(sent["id"])
    if not outcome.ok:
        raise RuntimeError(f"reactor.shutdown {outcome.status}: {outcome.reason}")
    tick_ns, sample_ns, value = crossing(watcher, frame, REFLEX_CHANNEL, threshold)
    board = watcher.rod_command()
    if board is None:
        raise RuntimeError("no board command")
    cleared = watcher.command(
        "simulator", "clear_fault", {"board": "reactor", "kind": "offset", "channel": REFLEX_CHANNEL}
    )
    clear_frame = int(cleared.result["takes_effect_at_frame"])
    watcher.wait(
        lambda: max(watcher.samples) >= clear_frame and watcher.reading(REFLEX_CHANNEL) < threshold,
        REP_TIMEOUT_S,
        f"{REFLEX_CHANNEL} back under {threshold:g}",
    )
    return Rep(frame, tick_ns, sample_ns, board[0], board[1], ack_ns, 0, sent["ns"], value)


def pings(client: CommandClient, count: int) -> list[int]:
    """Round trips (ns) of ``reactor.ping`` through the router."""
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        outcome = client.call("reactor", "ping", timeout_s=5.0)
        samples.append(time.perf_counter_ns() - started)
        if not outcome.ok:
            raise RuntimeError(f"reactor.ping {outcome.status}: {outcome.reason}")
    return samples


def appends(store: StateStore, count: int) -> list[int]:
    """Durations (ns) of ``append_event`` with a monitor_changed-sized payload."""
    samples = []
    data = {"monitor": MONITOR, "previous": "green", "state": "red", "cause": "value=900", "respond": True}
    for _ in range(count):
        started = time.perf_counter_ns()
        store.append_event(0.0, "monitor_changed", data)
        samples.append(time.perf_counter_ns() - started)
    return samples


# ----------------------------------------------------------------- statistics


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (``q`` in 0..1; the max for q = 1)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


QS = (0.5, 0.95, 0.99, 1.0)


def row(label: str, values_ms: list[float], period_ms: float, frames: list[int] | None = None) -> str:
    """A table row: p50, p95, p99, max in ms and in frames."""
    ms = [quantile(values_ms, q) for q in QS]
    in_frames = " / ".join(f"{v / period_ms:.2f}" for v in ms)
    numbered = (
        "-" if frames is None else " / ".join(str(int(quantile([float(f) for f in frames], q))) for q in QS)
    )
    cells = " | ".join(f"{v:,.1f}" for v in ms)
    return f"| {label} | {len(values_ms)} | {cells} | {in_frames} | {numbered} |"


@dataclass
class Results:
    """Everything measured, for the section."""

    protection: list[Rep] = field(default_factory=list)
    reflex: list[Rep] = field(default_factory=list)
    ping_ns: list[int] = field(default_factory=list)
    append_ns: list[int] = field(default_factory=list)
    disturbed: int = 0
    pairs: int = 0
    mode_changes: int = 0
    monitors: int = 0
    mode_at_end: str = ""
    elapsed_s: float = 0.0
    period_ms: float = 100.0
    state_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        """Every repetition's stages (ms from the tick of the crossing frame) and the baselines."""

        def stages(rep: Rep) -> dict[str, float]:
            return {
                "frame": rep.frame,
                "board_frame": rep.board_frame,
                "sample_ms": rep.ms(rep.sample_ns),
                "red_ms": rep.ms(rep.red_ns) if rep.red_ns else math.nan,
                "started_ms": rep.ms(rep.started_ns),
                "board_ms": rep.ms(rep.board_ns),
                "ack_ms": rep.ms(rep.ack_ns),
            }

        return {
            "protection": [stages(r) for r in self.protection],
            "reflex": [stages(r) for r in self.reflex],
            "ping_ms": [ns / 1e6 for ns in self.ping_ns],
            "append_ms": [ns / 1e6 for ns in self.append_ns],
        }


def host_sentence(quiet: QuietPolicy, disturbed: int, batches: int) -> str:
    """What other work on the host did while the batches ran."""
    load = quiet.other_load
    return (
        f"Other work on the host (CPU of every process outside this benchmark's tree, plus steal), "
        f"per batch of 10 pairs: median {median(load):.2f}, max {max(load, default=0.0):.2f} cores; "
        f"{quiet.waited_s:.0f} s spent waiting for it to stop before a batch; batches during which it "
        f"still exceeded {quiet.threshold_cores:.2f} of a core: {disturbed} of {batches}, kept (a deadline "
        "counts every repetition)."
    )


def section(results: Results, command: str, quiet: QuietPolicy, started: str) -> str:
    """The Markdown section."""
    period = results.period_ms
    prot, reflex = results.protection, results.reflex
    board_ms = [r.ms(r.board_ns) for r in prot]
    ack_ms = [r.ms(r.ack_ns) for r in prot]
    reflex_board_ms = [r.ms(r.board_ns) for r in reflex]
    reflex_ack_ms = [r.ms(r.ack_ns) for r in reflex]
    ping_ms = [ns / 1e6 for ns in results.ping_ns]
    append_ms = [ns / 1e6 for ns in results.append_ns]
    target_ms = 2 * period
    ping_p99 = quantile(ping_ms, 0.99)
    info = report.machine()
    summary = [
        "| p99 | protection | reflex baseline | protection / reflex | router ping | protection / ping "
        "| target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, measured, baseline in (
        ("crossing -> board accepted the command", board_ms, reflex_board_ms),
        ("crossing -> acknowledgement", ack_ms, reflex_ack_ms),
    ):
        p99, base_p99 = quantile(measured, 0.99), quantile(baseline, 0.99)
        met = "**yes**" if p99 <= target_ms else "**NO**"
        summary.append(
            f"| {label} | {p99:,.1f} ms | {base_p99:,.1f} ms | {p99 / base_p99:.2f}x | {ping_p99:.2f} ms "
            f"| {p99 / ping_p99:.1f}x | ≤ {target_ms:g} ms (2 frames at {1000 / period:g} Hz) | {met} |"
        )
    p99_ack = quantile(ack_ms, 0.99)
    summary.append(
        f"| crossing -> acknowledgement, against the cFS anchor | {p99_ack:,.1f} ms | LC samples every "
        f"{LC_SAMPLE_PERIOD_MS:,.0f} ms | {p99_ack / LC_SAMPLE_PERIOD_MS:.3f}x of one LC period "
        "| - | - | - | - |"
    )
    header = (
        "| interval | n | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | p50 / p95 / p99 / max in frames "
        f"(ms / {period:g}) | frame numbers after N: p50 / p95 / p99 / max |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    table = "\n".join(
        [
            header,
            row("**protection: crossing -> board accepted the shutdown**", board_ms, period,
                [r.board_frame - r.frame for r in prot]),
            row("protection: crossing -> acknowledgement (`sequence_completed`)", ack_ms, period),
            row("baseline, reflex (this process as the monitor): crossing -> board accepted", reflex_board_ms,
                period, [r.board_frame - r.frame for r in reflex]),
            row("baseline, reflex: crossing -> acknowledgement (command completed)", reflex_ack_ms, period),
            row("baseline, `reactor.ping` round trip through the router", ping_ms, period),
            row("baseline, `StateStore.append_event` on the state directory's disk", append_ms, period),
        ]
    )  # fmt: skip
    stages = [
        ("tick of frame N -> reactor's board sample of N", [r.ms(r.sample_ns) for r in prot]),
        ("board sample -> `monitor_changed` red", [r.ms(r.red_ns, r.sample_ns) for r in prot]),
        ("`monitor_changed` -> `sequence_started`", [r.ms(r.started_ns, r.red_ns) for r in prot]),
        ("`sequence_started` -> board accepted the shutdown", [r.ms(r.board_ns, r.started_ns) for r in prot]),
        ("board accepted -> `sequence_completed`", [r.ms(r.ack_ns, r.board_ns) for r in prot]),
    ]
    reflex_stages = [
        ("tick of frame N -> board sample of N", [r.ms(r.sample_ns) for r in reflex]),
        ("board sample -> `reactor.shutdown` sent", [r.ms(r.started_ns, r.sample_ns) for r in reflex]),
        ("sent -> board accepted", [r.ms(r.board_ns, r.started_ns) for r in reflex]),
        ("board accepted -> final status here", [r.ms(r.ack_ns, r.board_ns) for r in reflex]),
    ]
    stage_lines = ["| stage | p50 (ms) | p99 (ms) | max (ms) |", "|---|---|---|---|"]
    for label, values in [*(("protection: " + a, b) for a, b in stages),
                          *(("reflex: " + a, b) for a, b in reflex_stages)]:  # fmt: skip
        stage_lines.append(
            f"| {label} | {quantile(values, 0.5):.2f} | {quantile(values, 0.99):.2f} | {max(values):.2f} |"
        )
    frames_hist: dict[int, int] = {}
    for r in prot:
        frames_hist[r.board_frame - r.frame] = frames_hist.get(r.board_frame - r.frame, 0) + 1
    hist = ", ".join(f"{v} at +{k}" for k, v in sorted(frames_hist.items()))
    share_ms = quantile(board_ms, 0.5) - quantile(reflex_board_ms, 0.5)
    append_p50 = quantile(append_ms, 0.5)
    batches = math.ceil(results.pairs / BATCH_PAIRS)
    intro = f"""Run {started}, {results.elapsed_s / 60:.1f} min; {info["nproc"]} CPUs ({info["cpu"]}),
Python {info["python"]}; the base's state directory (the protection process's SQLite store) on
{results.state_dir or "an unknown file system"}. The default base (`subsystems/base.toml`) under
`fsw up` in real time ({period:g} ms frames), with {results.monitors} monitors: the shipped
`subsystems/protection/monitors.toml` with `fuel_temp` replaced by `bench_fuel_temp` (red above
{RED_HIGH_C:g} C, persistence 1, policy `rearm`, response: the shipped `{SEQUENCE}` sequence
only, no mode request), so that every repetition starts from the same state. A repetition: an
`offset` fault on the reactor board's `fuel_temp_c` (`simulator.inject_fault`) past the red
level, timed from the frame its result names (`takes_effect_at_frame`, checked to be the first
board sample past the limit), then cleared, and the monitor back to green. The reflex baseline
is the same chain with this benchmark's process in the protection process's place: an offset on
`reflector_temp_c`, which nothing watches, and `reactor.shutdown` sent from here on the first
board sample past it. {results.pairs} interleaved pairs (the order flips every pair) after 3 of
each as warm-up; {len(results.ping_ns)} router pings and {len(results.append_ns)} event-log
appends between the pairs. Protection mode changes during the repetitions:
{results.mode_changes}; mode at the end: {results.mode_at_end}."""
    frames = f"""Frame numbers: the `frame` the reactor's tapped board stamps on the accepted command,
against N; over the protection repetitions: {hist} (+0: accepted within the frame of the
crossing)."""
    red_to_started_p50 = quantile(stages[2][1], 0.5)
    append_stage_p99 = (quantile(stages[2][1], 0.99), quantile(stages[3][1], 0.99))
    reflex_send_p99 = quantile(reflex_stages[2][1], 0.99)
    tail = (
        ": an fsync waits for whatever else the disk is doing"
        if min(append_stage_p99) > reflex_send_p99
        else "; at p99 the rest of the host's work weighs on every stage alike"
    )
    if red_to_started_p50 >= append_p50:
        where = f"""Most of it is its event log: `_on_transitions`, `_respond` and `_start`
(fsw/protection.py) publish `monitor_changed`, `response_started` and `sequence_started` and
append each to the SQLite event log (WAL, `synchronous = FULL`: one commit with its fsync per
append) before `_step_sequences` sends the command; an append took {append_p50:.2f} ms (median)
on this disk in the same run, so the three cost about {3 * append_p50:.1f} ms ahead of the send
(`monitor_changed` -> `sequence_started`, {red_to_started_p50:.2f} ms, holds two of them). The
two stages that hold the appends reach {append_stage_p99[0]:.1f} and {append_stage_p99[1]:.1f} ms
at p99, against {reflex_send_p99:.1f} ms for the reflex's send -> board accepted{tail}. To see
the path without the disk, run with `--state-dir /dev/shm` (the store on tmpfs)."""
    else:
        where = f"""`monitor_changed` -> `sequence_started` takes {red_to_started_p50:.2f} ms (median),
under one event-log append on this disk ({append_p50:.2f} ms): no append stands between the
decision and the send."""
    share = f"""The protection process's own share is the median difference from the reflex,
{share_ms:.2f} ms. {where} The monitor evaluation itself is the second stage (board sample ->
`monitor_changed`)."""
    inside = f"""What is inside the measured interval: from the clock's tick of the frame whose board
reads first show the limit crossed to the reactor's tapped board publishing the command it
accepted (`tlm.reactor.board_command`), and to `evt.protection.sequence_completed` (the
protection process has the command's final status) for the acknowledgement; both ends are
stamped as they reach this benchmark through the broker. Inside: the reactor's frame sync and
board read over its pseudo-terminal, its `board_sample` through the broker, the monitor
evaluation, the three events and their log appends, the command through the router to the
reactor process, its command handler and the board command over the pseudo-terminal; for the
acknowledgement also the final status back through the router and the `sequence_completed`
event. Outside: the physics (the offset applies at the world step into frame N: the crossing is
that frame's tick); persistence (a monitor with persistence p waits p - 1 more samples by
design: the shipped `fuel_temp` has 3, +{2 * period:g} ms at 10 Hz); points sampled more slowly
(the power process reads its board at `rate_hz = 1` in `subsystems/base.toml`:
`power.battery_soc` reaches the protection process once a second, so a power monitor's deadline
by the same rule is 2 s, and its crossing can wait up to 9 frames for the power process's next
read); a mode request and its entry sequence (not part of this monitor's response); the rod's
travel (the board accepted the target). The cFS anchor is LC's sampling alone: with
`MaxFailsBeforeRTS = 1` a crossing waits up to {LC_SAMPLE_PERIOD_MS:,.0f} ms for the next 1 Hz
`LC_SAMPLE_AP_MID` before SC is asked to start the RTS, whose commands go out on SC's own
wakeups (1 Hz in sch_lab). {host_sentence(quiet, results.disturbed, batches)}"""
    blocks = [
        SECTION,
        f"```\n{command}\n```",
        prose(intro),
        "\n".join(summary),
        table,
        prose(frames),
        "Where the time goes (each stamp taken as its message reached this benchmark through the broker):",
        "\n".join(stage_lines),
        prose(share),
        prose(inside),
    ]
    return "\n\n".join(blocks) + "\n"


def prose(text: str) -> str:
    """A paragraph re-wrapped at 100 columns (words and code spans kept whole)."""
    return textwrap.fill(" ".join(text.split()), width=100, break_long_words=False, break_on_hyphens=False)


# ----------------------------------------------------------------- the run


def filesystem(path: Path) -> str:
    """The file system type (``ext4``, ``tmpfs``...) of the mount holding ``path``, from /proc/mounts
    ('' if unknown)."""
    best = ("", "")
    try:
        lines = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    resolved = str(path.resolve())
    for line in lines:
        _, mount, kind, *_ = line.split()
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[0]):
            best = (mount, kind)
    return best[1]


def measure(
    group: ProcessGroup, reps: int, pings_per_pair: int, quiet: QuietPolicy, state_dir: Path | None
) -> Results:
    """Start the base, run the warm-up and ``reps`` interleaved pairs, return the stamps."""
    base, monitors = base_under_test(group, state_dir)
    log("starting the default base in real time")
    running = bases.start_base(group, base)
    results = Results(monitors=monitors, period_ms=running.deployment.clock.frame_period_s * 1000.0)
    where = "in the run directory, where `fsw up` puts it" if state_dir is None else "under `--state-dir`"
    results.state_dir = f"{filesystem(running.deployment.state_dir) or 'an unknown file system'} ({where})"
    store = StateStore(running.deployment.state_dir / "bench-store.db")
    try:
        with Watcher(running) as watcher:
            log("waiting for the protection process to leave BOOT and finish its entry sequence")
            watcher.wait(
                lambda: watcher.hk.get("mode") == "NOMINAL" and watcher.hk.get("sequences_running") == 0,
                90.0,
                "protection NOMINAL with no sequence running",
            )
            watcher.wait(lambda: len(watcher.samples) > 2, 5.0, "reactor board samples")
            changes_before = int(watcher.hk.get("mode_changes", 0))
            for _ in range(3):
                protection_rep(watcher)
                reflex_rep(watcher)
            batch = BATCH_PAIRS
            for first in range(0, reps, batch):
                count = min(batch, reps - first)

                def run_batch(first: int = first, count: int = count) -> None:
                    for index in range(first, first + count):
                        order = (
                            (protection_rep, reflex_rep) if index % 2 == 0 else (reflex_rep, protection_rep)
                        )
                        for rep in order:
                            (results.protection if rep is protection_rep else results.reflex).append(
                                rep(watcher)
                            )
                        results.ping_ns += pings(watcher.client, pings_per_pair)
                        results.append_ns += appends(store, 1)
                        results.pairs += 1

                _, disturbed = quiet.run(f"pairs {first + 1}-{first + count}", run_batch)
                results.disturbed += disturbed
                board = [r.ms(r.board_ns) for r in results.protection[-count:]]
                log(
                    f"  pairs {first + 1}-{first + count}: protection, crossing -> board accepted: "
                    f"max {max(board):.1f} ms"
                )
            watcher.wait(lambda: "mode_changes" in watcher.hk, 2.0, "protection housekeeping")
            watcher.pump(1.2)
            results.mode_changes = int(watcher.hk.get("mode_changes", 0)) - changes_before
            results.mode_at_end = str(watcher.hk.get("mode", "?"))
    finally:
        store.close()
    return results


def main() -> int:
    """Run, print the section, optionally write it into docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100, help="interleaved pairs (default 100)")
    parser.add_argument("--pings", type=int, default=10, help="ping round trips after each pair (default 10)")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of this Markdown file")
    parser.add_argument("--json", type=Path, help="also dump every repetition's stamps (ms) as JSON")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="put the base's state (the protection's SQLite store) in a fresh directory under this one "
        "(default: <run dir>/state, as the deployment says)",
    )
    args = parser.parse_args()
    command = shlex.join(["python", "bench/response.py", *sys.argv[1:]])
    started_wall = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    started = time.monotonic()
    log_dir = Path(f"/tmp/fsw-bench-logs-{int(time.time())}-{os.getpid()}")
    group = ProcessGroup(log_dir)
    quiet = QuietPolicy(30.0, log, attempts=1)
    try:
        results = measure(group, args.reps, args.pings, quiet, args.state_dir)
    except BaseException:
        log(f"stopped early; the logs of every process it started are in {log_dir}")
        raise
    finally:
        group.stop()
    shutil.rmtree(log_dir, ignore_errors=True)  # kept only when the run failed
    results.elapsed_s = time.monotonic() - started
    text = section(results, command, quiet, started_wall)
    print(text)
    if args.write is not None:
        path = args.write if args.write.is_absolute() else ROOT / args.write
        report.replace_section(path, SECTION, text)
        log(f"wrote {path}")
    if args.json is not None:
        args.json.write_text(json.dumps(results.to_json(), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
