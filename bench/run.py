"""The lunar-fsw benchmark suite.

``python bench/run.py [--quick] [--rounds N] [--write docs/performance.md]``

Measures, side by side with raw pyzmq + msgpack baselines in interleaved rounds:

1. telemetry lossless capacity through the broker, 4 publishers -> 3 subscribers;
2. one-way telemetry latency through the broker at 1 kHz;
3. command round trip through the router (``CommandClient.call(..., "ping")``) vs REQ/REP;
4. lockstep frame rate of whole bases (``fsw up --speed max``) vs a raw tick-and-acknowledge loop;
5. resident memory and idle CPU of a base in real time vs a raw equivalent.

Prints a table (measured, baseline, ratio, target, met?) and, with ``--write``,
writes it with the method, the machine and the reasons for missed targets.
Every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import analysis
import bases
import hotpath
import report
import telemetry
from harness import ROOT, ProcessGroup, QuietPolicy, median, quiet_ratio, quiet_values
from report import Row

FULL_LADDER = [
    5_000.0, 10_000.0, 15_000.0, 20_000.0, 25_000.0, 30_000.0, 35_000.0, 40_000.0, 50_000.0,
    60_000.0, 70_000.0, 80_000.0, 90_000.0, 100_000.0, 120_000.0, 140_000.0, 160_000.0, 200_000.0,
]  # fmt: skip
QUICK_LADDER = [
    5_000.0, 10_000.0, 20_000.0, 30_000.0, 40_000.0, 60_000.0, 80_000.0, 100_000.0, 120_000.0, 160_000.0,
]  # fmt: skip

MB_AS_MIB = 200e6 / 2**20


@dataclasses.dataclass(frozen=True)
class Config:
    """How long and how often each benchmark runs."""

    rounds: int
    ladder: list[float]
    tlm_warmup_s: float
    tlm_window_s: float
    latency_warmup_s: float
    latency_window_s: float
    rtt_calls: int
    rtt_warmup: int
    lockstep_duration_s: float
    idle_settle_s: float
    idle_window_s: float
    repeat_budget_s: float


FULL = Config(3, FULL_LADDER, 0.5, 2.0, 1.0, 5.0, 3000, 300, 800.0, 3.0, 10.0, 200.0)
QUICK = Config(2, QUICK_LADDER, 0.3, 1.0, 0.5, 2.0, 1000, 100, 300.0, 2.0, 5.0, 10.0)


def log(text: str) -> None:
    """Progress on standard error (the table goes to standard output)."""
    print(text, file=sys.stderr, flush=True)


def quiet_median(values: dict[str, list[float]], disturbed: dict[str, list[bool]], stack: str) -> float:
    """Median of ``stack``'s rounds, over those the rest of the host left quiet (if any)."""
    return median(quiet_values(values[stack], disturbed[stack]))


def quiet_ratio_of(values: dict[str, list[float]], disturbed: dict[str, list[bool]]) -> float:
    """Median per-round ratio framework / raw, over the rounds quiet on both sides (if any)."""
    return quiet_ratio(values["fsw"], disturbed["fsw"], values["raw"], disturbed["raw"])


def per_round(values: list[float], disturbed: list[bool], fmt: str = ",.0f") -> str:
    """Per-round values, a disturbed one marked with an asterisk."""
    return ", ".join(f"{v:{fmt}}" + ("*" if d else "") for v, d in zip(values, disturbed, strict=True))


class Suite:
    """Runs the sections in order and collects the rows and the detail sections."""

    def __init__(self, config: Config, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.rows: list[Row] = []
        self.sections: list[tuple[str, str]] = []
        self.data: dict[str, Any] = {}
        self.evidence = analysis.Evidence({}, {}, bases.ImportCosts([], [], {}))
        self.quiet = QuietPolicy(config.repeat_budget_s, log)

    def section(self, title: str, body: Callable[[ProcessGroup], None]) -> None:
        """Run ``body`` with a fresh process group, always stopped afterwards."""
        log(f"== {title}")
        started = time.monotonic()
        group = ProcessGroup(self.log_dir)
        try:
            body(group)
        finally:
            group.stop()
        log(f"   ({time.monotonic() - started:.0f} s)")

    # ----------------------------------------------------------------- sections

    def hot_path(self, _group: ProcessGroup) -> None:
        """Per-message CPU in one thread, the hot path's pieces, and what each import costs in memory."""
        hot = hotpath.measure(rounds=20)
        self.evidence = analysis.Evidence(hot, hotpath.components(), bases.import_costs())
        for name, row in hot.items():
            log(
                f"  {name}: publish {row['publish_us']:.2f} µs, "
                f"receive {row['receive_us']:.2f} µs per message"
            )
        ev = self.evidence
        lines = [
            "Per-message CPU in one thread (publish into an in-process libzmq XSUB/XPUB proxy, receive",
            "back; median of batches of 2,000; `python bench/hotpath.py --profile` prints a cProfile of",
            "the framework side):",
            "",
            "| side | raw pyzmq + msgpack | framework (`Bus.publish` / `Bus.receive`) | ratio |",
            "|---|---|---|---|",
        ]
        for side in ("publish_us", "receive_us"):
            raw, fsw = hot["raw"][side], hot["fsw"][side]
            lines.append(f"| {side.split('_')[0]} | {raw:.2f} µs | {fsw:.2f} µs | {fsw / raw:.1f}x |")
        raw_total, fsw_total = ev.per_message("raw"), ev.per_message("fsw")
        lines.append(f"| total | {raw_total:.2f} µs | {fsw_total:.2f} µs | {fsw_total / raw_total:.1f}x |")
        lines += ["", "The pieces (µs per call, best of 5 x 100,000):", "", "| operation | µs |", "|---|---|"]
        # A pipe inside a table cell must be escaped, even in code.
        lines += [f"| `{name.replace('|', chr(92) + '|')}` | {us:.2f} |" for name, us in ev.parts.items()]
        lines += [
            "",
            "Resident memory of a fresh interpreter after each import a framework child makes (VmRSS):",
            "",
            "| after importing | VmRSS | added |",
            "|---|---|---|",
        ]
        previous = None
        for name, kib in ev.imports.steps:
            added = "" if previous is None else f"+{(kib - previous) / 1024:.1f} MiB"
            lines.append(f"| {name} | {kib / 1024:.1f} MiB | {added} |")
            previous = kib
        lines.append("")
        lines.append(
            "Large modules loaded along the way: "
            + (", ".join(ev.imports.loaded) or "none")
            + ". "
            + " ".join(
                f"`{root}` alone adds {kib / 1024:.1f} MiB on top of zmq + msgpack."
                for root, kib in ev.imports.alone.items()
            )
        )
        self.sections.append(("Where the time and memory go", "\n".join(lines)))

    def capacity(self, group: ProcessGroup) -> None:
        """Benchmark 1: lossless capacity, 4 -> broker -> 3."""
        c = self.config
        result = telemetry.capacity(
            group, c.ladder, c.rounds, c.tlm_warmup_s, c.tlm_window_s, self.quiet, log
        )
        raw, fsw = result.capacity("raw"), result.capacity("fsw")
        ratio = fsw / raw if raw else float("nan")
        self.data["capacity"] = {
            "raw": raw,
            "fsw": fsw,
            "steps": [[s.to_json() for s in steps] for steps in result.steps],
        }
        self.rows.append(
            Row(
                "Telemetry lossless capacity, 4 pub -> broker -> 3 sub (msgs/s offered in)",
                fsw,
                raw,
                ratio,
                "msgs/s",
                "≥ 0.60x raw",
                ratio >= 0.60,
                analysis.capacity_why(self.evidence),
            )
        )
        lines = [
            "Ladder of total offered rates (4 publishers, `rate x 1 ms` per 1 ms tick) climbed in every",
            "round until two rates in a row fail (three before the first pass). As in the baseline doc, a",
            "rate passes with 0 loss in every round, the publishers keeping up, and a median p99 over the",
            "rounds under 1 ms (a round that stopped below the rate counts as a failure); the capacity is",
            "the highest rate that passes, and its ratio is framework / raw capacity. Steps disturbed by",
            "other work on the host, and rates above a climb that such a step ended, are marked * and do",
            "not count. Warm-up "
            f"{c.tlm_warmup_s:g} s, window {c.tlm_window_s:g} s per step; delivered = 3 x offered in.",
            "",
            "| offered in (msgs/s) | raw: p99 per round (µs) | raw | framework: p99 per round (µs) "
            "| framework |",
            "|---|---|---|---|---|",
        ]
        summaries = {stack: {r.rate: r for r in result.summary(stack)} for stack in ("raw", "fsw")}
        for rate in sorted(set(summaries["raw"]) | set(summaries["fsw"])):
            cells = []
            for stack in ("raw", "fsw"):
                summary = summaries[stack].get(rate)
                if summary is None:
                    cells += ["-", "-"]
                    continue
                p99s = ", ".join(
                    ("-" if s is None else f"{s.p99_us:,.0f}" + (f" (lost {s.loss})" if s.loss else ""))
                    + ("*" if unknown else "")
                    for s, unknown in zip(summary.steps, summary.unknown, strict=True)
                )
                cells += [p99s, "**pass**" if summary.passed else "fail"]
            lines.append(f"| {rate:,.0f} | " + " | ".join(cells) + " |")
        for stack in ("raw", "fsw"):
            if result.all_disturbed(stack):
                lines.append(
                    f"\nEvery {stack} step was disturbed by other work on the host: its capacity counts "
                    "the disturbed steps after all, and is a lower bound."
                )
            top = result.at_capacity(stack)
            if top is not None:
                run = [s for s in top.steps if s]
                lines.append(
                    f"\nAt capacity, {stack}: {top.rate:,.0f} msgs/s in, "
                    f"{median(s.delivered for s in run):,.0f} delivered, "
                    f"p50 {median(s.p50_us for s in run):,.0f} µs, median p99 {top.p99_us:,.0f} µs."
                )
        self.sections.append(("Telemetry capacity: every step", "\n".join(lines)))

    def latency(self, group: ProcessGroup) -> None:
        """Benchmark 2: one-way latency at 1 kHz, 1 -> broker -> 1."""
        c = self.config
        result = telemetry.latency(group, c.rounds, c.latency_warmup_s, c.latency_window_s, self.quiet, log)
        self.data["latency"] = vars(result)
        d = result.disturbed
        fsw_p50, raw_p50 = quiet_median(result.p50, d, "fsw"), quiet_median(result.p50, d, "raw")
        fsw_p99 = quiet_median(result.p99, d, "fsw")
        self.rows.append(
            Row(
                "One-way telemetry latency @ 1 kHz, 1 pub -> broker -> 1 sub, p50 (µs)",
                fsw_p50,
                raw_p50,
                quiet_ratio_of(result.p50, d),
                "µs",
            )
        )
        self.rows.append(
            Row(
                "One-way telemetry latency @ 1 kHz, 1 pub -> broker -> 1 sub, p99 (µs)",
                fsw_p99,
                quiet_median(result.p99, d, "raw"),
                quiet_ratio_of(result.p99, d),
                "µs",
                "< 1,000 µs",
                fsw_p99 < 1000,
                analysis.latency_why(result.p99["fsw"], result.p99["raw"], fsw_p50, raw_p50),
            )
        )
        lines = [
            f"1 publisher at 1,000 msgs/s, warm-up {c.latency_warmup_s:g} s, window {c.latency_window_s:g} s "
            "per round; each round's percentiles (µs):",
            "",
            "| round | stack | p50 | p99 | p99.9 | loss | disturbed by other work |",
            "|---|---|---|---|---|---|---|",
        ]
        for index in range(c.rounds):
            lines += [
                f"| {index + 1} | {stack} | {result.p50[stack][index]:,.0f} "
                f"| {result.p99[stack][index]:,.0f} | {result.p999[stack][index]:,.0f} "
                f"| {result.loss[stack][index]} | {'yes' if d[stack][index] else 'no'} |"
                for stack in ("raw", "fsw")
            ]
        self.sections.append(("Telemetry latency at 1 kHz: every round", "\n".join(lines)))

    def lockstep(self, group: ProcessGroup, base: bases.BaseUnderTest, short: str) -> None:
        """Benchmark 4: ``fsw up --speed max`` against the raw tick-and-acknowledge loop."""
        c = self.config
        result = bases.lockstep(group, base, c.rounds, c.lockstep_duration_s, self.quiet, log)
        fsw, raw, d = result.fps["fsw"], result.fps["raw"], result.disturbed
        ratio = quiet_ratio_of(result.fps, d)
        measured = quiet_median(result.fps, d, "fsw")
        raw_fps = quiet_median(result.fps, d, "raw")
        self.data.setdefault("lockstep", {})[short] = {
            "fsw": fsw,
            "raw": raw,
            "disturbed": d,
            "frames": result.frames,
            "median_fsw": measured,
        }
        boardless = (
            self.data["lockstep"].get("boardless base", {}).get("median_fsw") if base.text is None else None
        )
        self.rows.append(
            Row(
                f"Lockstep frame rate, {short} ({result.participants} participants; frames/s)",
                measured,
                raw_fps,
                ratio,
                "/s",
                "≥ 0.50x raw and ≥ 1,000/s",
                ratio >= 0.5 and measured >= 1000,
                analysis.lockstep_why(
                    self.evidence,
                    result.participants,
                    measured,
                    raw_fps,
                    ratio,
                    boardless,
                    result.awaited_per_frame,
                ),
            )
        )
        self.sections.append(
            (
                f"Lockstep: {base.label}",
                f"{result.frames} frames per run (`fsw up --speed max --duration "
                f"{c.lockstep_duration_s:g}s`, `frames_per_wall_s`), against the raw loop with "
                f"{result.participants} participants running as many frames. Per round, frames/s "
                f"(* = disturbed by other work on the host): framework {per_round(fsw, d['fsw'])}; "
                f"raw {per_round(raw, d['raw'])}."
                + (
                    ""
                    if result.awaited_per_frame is None
                    else f" The framework's clock waits, each frame, only for the participants that have "
                    f"work in it (control cycle or housekeeping due): {result.awaited_per_frame:.1f} of "
                    f"{result.participants} on average for this deployment; the raw loop waits for all "
                    f"{result.participants} on every frame."
                ),
            )
        )

    def realtime_base(self, group: ProcessGroup, base: bases.BaseUnderTest, short: str, rtt: bool) -> None:
        """Benchmark 5 (and 3 with ``rtt``) on one base started in real time."""
        c = self.config
        running = bases.start_base(group, base)
        raw_group = ProcessGroup(self.log_dir)
        try:
            fp = bases.footprint(running, raw_group, c.idle_settle_s, c.idle_window_s)
        finally:
            raw_group.stop()
        fsw_rss = sum(fp.fsw_rss_kib.values()) / 1024
        raw_rss = sum(fp.raw_rss_kib.values()) / 1024
        fsw_cpu = sum(fp.fsw_cpu_pct.values())
        raw_cpu = sum(fp.raw_cpu_pct.values())
        n = len(fp.fsw_rss_kib)
        log(
            f"  {short}: RSS {fsw_rss:.1f} MiB in {n} processes (raw {raw_rss:.1f}); "
            f"CPU {fsw_cpu:.2f} % (raw {raw_cpu:.2f})"
        )
        self.data.setdefault("footprint", {})[short] = vars(fp)
        self.rows.append(
            Row(
                f"Resident memory, whole {short} ({n} processes incl. supervisor; VmRSS)",
                fsw_rss,
                raw_rss,
                fsw_rss / raw_rss,
                "MiB",
                "< 200 MB (190.7 MiB)",
                fsw_rss < MB_AS_MIB,
                analysis.memory_why(self.evidence, n, fsw_rss, raw_rss),
            )
        )
        self.rows.append(
            Row(
                f"Idle CPU, whole {short} in real time ({fp.window_s:.0f} s window; % of one core)",
                fsw_cpu,
                raw_cpu,
                fsw_cpu / raw_cpu if raw_cpu else float("nan"),
                "%",
                "< 5 %",
                fsw_cpu < 5.0,
                analysis.cpu_why(fsw_cpu, raw_cpu),
            )
        )
        lines = [
            f"Idle in real time; CPU (utime + stime) over {fp.window_s:.1f} s, resolution "
            f"{100 / (fp.window_s * 100):.2f} % (one 10 ms tick). The raw equivalent has as many "
            "processes (proxy, 10 Hz clock, participants acknowledging every tick) and is measured over "
            "the same window.",
            "",
            "| process | VmRSS | CPU % of one core |",
            "|---|---|---|",
        ]
        lines += [
            f"| {name} | {fp.fsw_rss_kib[name] / 1024:.1f} MiB | {fp.fsw_cpu_pct[name]:.2f} |"
            for name in fp.fsw_rss_kib
        ]
        lines.append(f"| **total** | **{fsw_rss:.1f} MiB** | **{fsw_cpu:.2f}** |")
        lines += [
            f"| raw: {name} | {fp.raw_rss_kib[name] / 1024:.1f} MiB | {fp.raw_cpu_pct[name]:.2f} |"
            for name in fp.raw_rss_kib
        ]
        lines.append(f"| **raw total** | **{raw_rss:.1f} MiB** | **{raw_cpu:.2f}** |")
        self.sections.append((f"Footprint: {base.label}", "\n".join(lines)))
        if rtt:
            self.commands(group, running, short)

    def commands(self, group: ProcessGroup, running: bases.RunningBase, short: str) -> None:
        """Benchmark 3: command round trip through the router against REQ/REP."""
        c = self.config
        result = bases.commands(running, group, c.rounds, c.rtt_calls, c.rtt_warmup, self.quiet, log)
        self.data["commands"] = vars(result)
        d = result.disturbed
        name = f"Command round trip `{result.target}.ping` via router, {short}"
        self.rows.append(
            Row(
                f"{name}, p50 (µs)",
                quiet_median(result.p50, d, "fsw"),
                quiet_median(result.p50, d, "raw"),
                quiet_ratio_of(result.p50, d),
                "µs",
            )
        )
        fsw_p99 = quiet_median(result.p99, d, "fsw")
        self.rows.append(
            Row(
                f"{name}, p99 (µs)",
                fsw_p99,
                quiet_median(result.p99, d, "raw"),
                quiet_ratio_of(result.p99, d),
                "µs",
                "< 1,000 µs",
                fsw_p99 < 1000 and result.failures == 0,
                analysis.commands_why(self.evidence, result.p99["fsw"], result.p99["raw"])
                + (f" {result.failures} commands did not complete." if result.failures else ""),
            )
        )
        self.sections.append(
            (
                "Command round trip: every round",
                f"{c.rtt_calls:,} synchronous calls per round after {c.rtt_warmup} warm-up, timed in the "
                f"client with `perf_counter_ns`; the raw side is REQ/REP over ipc with msgpack both ways. "
                f"Framework commands that did not complete: {result.failures}.\n\n"
                "| round | stack | p50 | p99 | p99.9 (µs) | disturbed by other work |\n"
                "|---|---|---|---|---|---|\n"
                + "\n".join(
                    f"| {i + 1} | {stack} | {result.p50[stack][i]:,.0f} | {result.p99[stack][i]:,.0f} "
                    f"| {result.p999[stack][i]:,.0f} | {'yes' if d[stack][i] else 'no'} |"
                    for i in range(c.rounds)
                    for stack in ("raw", "fsw")
                ),
            )
        )


def method_text(config: Config, under_test: list[tuple[bases.BaseUnderTest, str]]) -> str:
    """What each benchmark runs, for the report."""
    base_lines = "\n".join(f"* {base.label}." for base, _ in under_test)
    return f"""Bases under test. The boardless base runs the default base's 4 subsystems with no boards and
no simulator, so the runtime alone is measured; the default base is benchmarked whenever
`hil/simulator.py` exists (it did for this run if it is listed):

{base_lines}

1. **Telemetry capacity**: the project's broker (`python -m fsw.launch RUN_DIR bus`), 4 publisher
   processes calling `Bus.publish` and 3 subscriber processes calling `Bus.receive`, against a raw
   pyzmq XSUB/XPUB proxy process with publishers sending `[topic, msgpack]` with hand-written
   `SNDMORE` calls and subscribers decoding with `unpackb`. Same payload, same HWM (10,000), ipc.
   Both stacks stay up and are stepped alternately at each offered rate.
2. **Latency**: the same stacks with 1 publisher at 1 kHz and 1 subscriber,
   {config.latency_window_s:g} s window per round.
3. **Command round trip**: `CommandClient.call("<first flight process>", "ping")` against the
   running base in real time (client -> router -> process -> router -> client, accepted +
   completed), against a REQ/REP server process answering msgpack with msgpack.
4. **Lockstep**: `python -m fsw.cli up [deployment] --speed max --duration
   {config.lockstep_duration_s:g}s --json`, its `frames_per_wall_s`, against a raw clock process
   (PUB -> raw proxy -> N SUB participants, each PUSHes an acknowledgement to the clock's PULL,
   next tick once all N are in) running as many frames with as many participants.
5. **Footprint**: `fsw up` in real time; after {config.idle_settle_s:g} s, VmRSS of every process
   and utime + stime over {config.idle_window_s:g} s, against a raw equivalent with as many
   processes (raw proxy, a 10 Hz raw clock, participants acknowledging each tick) over the same
   window.

{config.rounds} interleaved rounds per benchmark; all numbers from one run of the command above.
Other work on the shared host is watched around every measurement (the CPU time of every process
outside the benchmark's own process tree, kernel threads excepted, plus steal time): each
measurement waits until it stops (under 0.2 of a core over 0.2 s), and one during which it still
exceeded 0.05 of a core is repeated, up to 3 attempts; waiting and repeating share a budget of
{config.repeat_budget_s:g} s, after which measurements run as they come and disturbed ones are marked.
{{quiet}}"""


def main() -> int:
    parser = argparse.ArgumentParser(description="lunar-fsw benchmark suite")
    parser.add_argument("--quick", action="store_true", help="shorter windows, 2 rounds (< ~2 min)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per benchmark (default 3, quick 2)")
    parser.add_argument("--write", type=Path, help="write the report (markdown) to this file")
    parser.add_argument("--json", type=Path, help="also dump every measurement as JSON")
    args = parser.parse_args()
    config = QUICK if args.quick else FULL
    if args.rounds:
        config = dataclasses.replace(config, rounds=args.rounds)

    def on_term(signum: int, _frame: object) -> NoReturn:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    started_wall = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    started = time.monotonic()
    log_dir = Path(f"/tmp/fsw-bench-logs-{int(time.time())}")
    suite = Suite(config, log_dir)
    bases_under_test = [(bases.BOARDLESS, "boardless base")]
    if bases.simulator_available():
        bases_under_test.append((bases.DEFAULT, "default base"))
    else:
        log("hil/simulator.py does not exist yet: benchmarking the boardless base only")
    rtt_base = bases_under_test[-1]

    try:
        suite.section("hot path (one thread)", suite.hot_path)
        suite.section("telemetry capacity 4 -> 3", suite.capacity)
        suite.section("telemetry latency @ 1 kHz", suite.latency)
        for base, short in bases_under_test:
            suite.section(f"lockstep: {short}", functools.partial(suite.lockstep, base=base, short=short))
        for base, short in bases_under_test:
            rtt = (base, short) == rtt_base
            suite.section(
                f"real time: {short}", functools.partial(suite.realtime_base, base=base, short=short, rtt=rtt)
            )
    except BaseException:
        log(f"stopped early; the logs of every process it started are in {log_dir}")
        raise
    elapsed = time.monotonic() - started

    info = report.machine()
    load_after = os.getloadavg()
    info["load"] = (
        f"{load_before[0]:.2f} / {load_before[1]:.2f} at the start, "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} at the end (1 / 5 min)"
    )
    command = shlex.join(["python", "bench/run.py", *sys.argv[1:]])
    print()
    print(
        f"{command}  ({elapsed / 60:.1f} min; {info['nproc']} CPUs, Python {info['python']}, "
        f"pyzmq {info['pyzmq']}, libzmq {info['libzmq']}; load average {info['load']})"
    )
    print(report.plain_table(suite.rows))
    print(suite.quiet.summary())
    if suite.quiet.warning():
        print(suite.quiet.warning().replace("**", ""))
    for row in suite.rows:
        if row.met is False:
            print(f"\nMISSED {row.metric}: {row.why}")
    method = method_text(config, bases_under_test).replace("{quiet}", suite.quiet.summary())
    suite.sections.insert(0, ("Method", method))
    if args.write:
        path = args.write if args.write.is_absolute() else ROOT / args.write
        text = report.document(
            command, info, suite.rows, suite.sections, started_wall, elapsed, suite.quiet.warning()
        )
        if path.exists():  # other benchmarks (bench/recording.py) keep their sections of the file
            text = report.keep_foreign_sections(text, path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
        print(f"\nwrote {path}")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": [vars(r) for r in suite.rows], **suite.data}, indent=1, default=str)
        )
    shutil.rmtree(log_dir, ignore_errors=True)  # kept only when a section failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
