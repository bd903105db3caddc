"""A lunation, measured: the whole base for a synodic month on 1 s frames, and its plots.

    python bench/lunation.py --days 30 --seed 1 --plots docs/img --write docs/performance.md

1. Baseline, in the same run: the simulated world alone (``hil.physics.World``, the
   deployment's board parameters) stepped through one day of 1 s frames in this process:
   the physics floor a run of the whole base cannot go under.
2. ``fsw up lunation --speed max --duration <days>d --seed <seed>``, recording the
   housekeeping of every process and every event (``--record-topics``), with the summary
   as JSON: wall time, frames per wall second, and each subsystem's statistics.
3. Plots of the month from the recording (``hil.plot``): environment and links, power,
   thermal, reactor.

Prints a Markdown section; ``--write`` replaces (or appends) it in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import report  # noqa: E402

from fsw.deployment import embedded_text  # noqa: E402
from hil.physics import World  # noqa: E402
from hil.physics.world import BOARD_PARAMS  # noqa: E402
from hil.plot import plot, series  # noqa: E402

SECTION = "## A lunation on 1 s frames"
TARGET_WALL_S = 30 * 60.0
RECORD_TOPICS = (
    "tlm.power.hk",
    "tlm.thermal.hk",
    "tlm.reactor.hk",
    "tlm.comms.hk",
    "tlm.simulator.hk",
    "evt.",
)
#: One PNG per panel group: (file stem, title, points).
PLOTS = (
    (
        "lunation-environment",
        "Sun and links",
        ("simulator.sun_elevation_deg", "power.solar_power_w", "comms.dte_visible", "comms.relay_visible"),
    ),
    (
        "lunation-power",
        "Power",
        (
            "power.solar_power_w",
            "power.reactor_power_w",
            "power.load_power_w",
            "power.battery_soc",
            "power.bus_voltage_v",
            "power.tiers_on",
        ),
    ),
    (
        "lunation-thermal",
        "Thermal",
        (
            "thermal.battery_temp_c",
            "thermal.avionics_temp_c",
            "thermal.habitat_temp_c",
            "thermal.radiator_temp_c",
            "thermal.reactor_radiator_temp_c",
        ),
    ),
    (
        "lunation-reactor",
        "Reactor",
        (
            "reactor.thermal_power_w",
            "reactor.electric_power_w",
            "reactor.fuel_temp_c",
            "reactor.rod_position",
        ),
    ),
)


WHERE_THE_TIME_GOES = (
    "Where the time goes: the physics is a small part (the world alone, above). A frame of the "
    "base is a chain of wake-ups: the clock's tick straight to the power and reactor processes, "
    "each one's SYNC over its pseudo-terminal to the simulator and the reply carrying the "
    "readings, their cycles, their `frame_done` back to the clock; the recorder joins every "
    "10th frame and writes every housekeeping packet and event. The two pty round trips through "
    "one simulator process are most of the frame (a pty write wakes the reader through the "
    "kernel's tty work queue). Without `--record` the same month runs at about 1,400-1,450 "
    "frames/s (about 30-31 min; `fsw up lunation --speed max --duration 12h`, measured "
    "alongside). Real pseudo-terminals are part of what the run proves, so they stay."
)


def world_seconds_per_frame(seed: int, frames: int) -> float:
    """Wall seconds per frame of the world alone, with the lunation's board parameters."""
    raw = tomllib.loads(embedded_text("lunation"))
    sim_params = raw["processes"]["simulator"].get("params", {})
    params = {board: sim_params[board] for board in BOARD_PARAMS if board in sim_params}
    world = World(seed=seed, frame_period_s=raw["clock"]["frame_period_s"], params=params)
    for model in world.boards.values():
        model.heartbeat()
    started = time.perf_counter()
    for frame in range(1, frames + 1):
        world.advance_to(frame)
        if frame % 5 == 0:
            world.reactor.heartbeat()  # the flight software's SYNCs keep the watchdog fed
    return (time.perf_counter() - started) / frames


def run_base(days: float, seed: int, record_dir: Path, run_dir: Path) -> dict[str, Any]:
    """Run ``fsw up lunation`` and return its JSON summary, with the measured wall time."""
    command = [
        sys.executable, "-m", "fsw.cli", "up", "lunation", "--speed", "max", "--duration", f"{days:g}d",
        "--seed", str(seed), "--run-dir", str(run_dir), "--record", str(record_dir),
        "--record-topics", *RECORD_TOPICS, "--json",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"fsw up lunation failed ({done.returncode})")
    summary: dict[str, Any] = json.loads(done.stdout)
    summary["command_wall_s"] = wall_s
    return summary


def make_plots(record_dir: Path, out_dir: Path, days: float) -> list[Path]:
    """One PNG per panel group, from one pass over the recording; absent points are named and left out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = list(dict.fromkeys(point for _, _, points in PLOTS for point in points))
    data = series(record_dir, wanted, missing_ok=True)
    for point in wanted:
        if point not in data:
            print(f"not in the recording: {point}", file=sys.stderr)
    written = []
    for stem, title, points in PLOTS:
        present = [data[p] for p in points if p in data]
        if present:
            written.append(plot(present, out_dir / f"{stem}.png", title=f"{title}, {days:g} days"))
    return written


def section(
    args: argparse.Namespace, summary: dict[str, Any], world_s_per_frame: float, plots: list[Path]
) -> str:
    """The Markdown section for docs/performance.md."""
    frames = summary["frames"]
    wall_s = summary["command_wall_s"]
    floor_s = world_s_per_frame * frames
    projected_30d_s = wall_s * 30.0 / args.days
    met = "**yes**" if projected_30d_s < TARGET_WALL_S else "**NO**"
    lines = [
        SECTION,
        "",
        f"`python bench/lunation.py --days {args.days:g} --seed {args.seed}"
        + (f" --plots {args.plots}" if args.plots else "")
        + (f" --write {args.write}`" if args.write else "`"),
        "",
        "| metric | value |",
        "|---|---|",
        f"| mission time | {args.days:g} d ({frames:,} frames of 1 s) |",
        f"| wall time of `fsw up lunation --speed max`, start-up and stop included | {wall_s / 60:.1f} min |",
        f"| frames per wall second once running | {summary['frames_per_wall_s']:,.0f} |",
        f"| the world alone, same frames, same run (physics floor) | {floor_s / 60:.1f} min |",
        f"| base / world alone | {wall_s / floor_s:.1f}x |",
        f"| 30 days at this rate (target < 30 min) | {projected_30d_s / 60:.1f} min: {met} |",
        f"| lost / malformed messages, late / missed frames | {summary['lost']} / {summary['malformed']}, "
        f"{summary['late_frames']} / {summary['missed_frames']} |",
        "",
        WHERE_THE_TIME_GOES,
        "",
        "What the month did (each process's `statistics`, from the run summary):",
        "",
        "| process | statistics |",
        "|---|---|",
    ]
    for name, stats in sorted(summary.get("statistics", {}).items()):
        text = ", ".join(f"`{k}` {v:.4g}" if isinstance(v, float) else f"`{k}` {v}" for k, v in stats.items())
        lines.append(f"| {name} | {text} |")
    if plots:
        lines += ["", "Plots of the run (docs/subsystems.md discusses them):", ""]
        lines += [f"![{p.stem}](img/{p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure, plot, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="mission days to run (default 30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-frames", type=int, default=86_400, help="world-alone frames to time")
    parser.add_argument("--plots", type=Path, help="directory for the PNG plots (e.g. docs/img)")
    parser.add_argument("--keep", type=Path, help="keep the recording in this directory")
    parser.add_argument("--write", type=Path, help="put the section into this Markdown file")
    args = parser.parse_args()
    world_s_per_frame = world_seconds_per_frame(args.seed, args.baseline_frames)
    with tempfile.TemporaryDirectory(prefix="lunation-") as tmp:
        record_dir = args.keep or Path(tmp) / "rec"
        summary = run_base(args.days, args.seed, record_dir, Path(tmp) / "run")
        plots = make_plots(record_dir, args.plots, args.days) if args.plots else []
    text = section(args, summary, world_s_per_frame, plots)
    print(text)
    if args.write is not None:
        report.replace_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
