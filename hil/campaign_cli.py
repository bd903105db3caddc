"""``fsw campaign``: a long-term autonomy campaign with random faults, and its report.

::

    fsw campaign --days 60 --faults random --seed 1 --report campaign-1/
    fsw campaign --days 2 --faults none --report quiet/            # the same base, no faults
    fsw campaign --days 60 --seed 1 --draw-only                    # which faults, without running
    fsw campaign --analyse --report campaign-1/                    # judge an earlier run again

Exit status: 0 when the run reached its duration with every safety invariant held, 1 when
an invariant was violated or the run ended early (the report is written either way), 2 for
a bad command line, catalogue or deployment. Registered through the ``fsw.commands``
entry-point group (:func:`register`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from fsw.log import configure_logging
from hil.campaign import (
    CampaignSettings,
    Draw,
    DrawnFault,
    faults_due,
    format_duration,
    prepare,
    run_campaign,
)
from hil.campaign_analysis import HELD, NOT_JUDGED, CampaignReport, analyse
from hil.campaign_report import REPORT_FILE, mission_time, write_report

#: Seconds in a day of mission time.
SECONDS_PER_DAY: Final = 86_400.0

EPILOG = """\
what it does:
  draws faults from the catalogue (each kind with a rate per day; --catalogue FILE for
  your own, the packaged one by default), writes them as a scenario, runs the whole base
  in lockstep at full speed for --days of mission time with no ground contact (fault-
  protection state fresh, in a temporary run directory), records housekeeping and events,
  then writes DIR/report.md (with PNG plots) and DIR/report.json: the safety invariants,
  minimum state of charge, peak temperatures, reactor trips, energy not served per tier,
  the mode timeline, and every fault with when it was detected and what responded.

safety invariants (a violation makes the exit status 1):
  fuel never above 850 C; battery never below its hard-cut floor (1 - hard_cut_dod);
  tier-0 loads never unpowered while energy was available; no mode the machine does not
  define.

speed: the lunation deployment with fault protection runs about 1,000 frames/s of 1 s
frames on a small machine: a day of mission time in about 90 s of wall time, 60 days in
about 1.5 h. --frame-period 10 runs coarser frames (every process's rate capped at the
frame rate) about 4x faster, less faithfully (monitor persistence and staleness are then
counted in 10 s frames).

examples:
  fsw campaign --days 60 --faults random --seed 1 --report campaign-1
  fsw campaign --days 3 --seed 4 --rate-scale 5 --frame-period 10 --report quick
"""


def _settings(args: argparse.Namespace) -> CampaignSettings:
    return CampaignSettings(
        report_dir=Path(args.report or f"campaign-seed{args.seed}"),
        days=args.days,
        faults=args.faults,
        seed=args.seed,
        rate_scale=args.rate_scale,
        deployment=args.deployment,
        catalogue=args.catalogue,
        frame_period_s=args.frame_period,
        run_dir=Path(args.run_dir) if args.run_dir else None,
    )


def _print_draw(draw: Draw, days: float) -> None:
    print(
        f"{len(draw.faults)} fault(s) over {days:g} days ({len(draw.skipped)} draw(s) left out: still active)"
    )
    for fault in draw.faults:
        lasts = "to the end" if fault.until_s is None else format_duration(fault.until_s - fault.at_s)
        when = mission_time(fault.at_s)
        print(f"  #{fault.number:<3} {when}  {fault.entry:<28} {fault.spec.describe()}  ({lasts})")


class _Progress:
    """A progress bar over mission time, with the faults injected so far."""

    def __init__(self, duration_s: float, frame_period_s: float) -> None:
        from rich.console import Console  # noqa: PLC0415 - only while a campaign runs
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._duration_s = duration_s
        self._period_s = frame_period_s
        self._due = faults_due(())
        self._total = 0
        self._progress = Progress(
            TextColumn("campaign"),
            BarColumn(),
            TextColumn("{task.fields[mission]}"),
            TextColumn("{task.fields[faults]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("run", total=duration_s, mission="day 0", faults="")

    def start(self, faults: tuple[DrawnFault, ...]) -> None:
        """Start drawing, counting ``faults`` as their times pass."""
        self._due = faults_due(faults)
        self._total = len(faults)
        self._progress.start()

    def update(self, frames: int, final_frame: int | None, mission_time_s: float) -> None:
        """Move to ``frames`` completed (the supervisor's progress callback)."""
        del final_frame, mission_time_s
        t_s = min(self._duration_s, frames * self._period_s)
        self._progress.update(
            self._task,
            completed=t_s,
            mission=f"day {t_s / SECONDS_PER_DAY:.2f} of {self._duration_s / SECONDS_PER_DAY:g}",
            faults=f"faults {self._due(t_s)}/{self._total}",
        )

    def close(self) -> None:
        """Stop drawing."""
        self._progress.stop()


def _print_verdict(report: CampaignReport, path: Path) -> None:
    settings = report.settings
    verdict = "every safety invariant held" if report.passed else "FAILED"
    what = f"{settings.get('days')} d, faults {settings.get('faults')}, seed {settings.get('seed')}"
    print(f"campaign {what}: {verdict}")
    if report.summary.get("reason") != "duration reached":
        print(f"  run ended early: {report.summary.get('reason')}")
    for invariant in report.invariants:
        mark = {HELD: "ok ", NOT_JUDGED: "-- "}.get(invariant.status, "!! ")
        print(f"  {mark}{invariant.title}: {invariant.status} ({invariant.detail})")
    counts = report.figures.get("faults") or {}
    print("  faults: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"))
    print(f"report: {path}")


def cmd_campaign(args: argparse.Namespace) -> int:
    """``fsw campaign``: run (or ``--analyse``, or ``--draw-only``) and report."""
    settings = _settings(args)
    if args.draw_only:
        _, draw = prepare(settings)
        _print_draw(draw, settings.days)
        return 0
    if not args.analyse:
        configure_logging("supervisor", json=False)
        progress: _Progress | None = None

        def started(draw: Draw, run_dir: Path, frame_period_s: float) -> None:
            nonlocal progress
            print(
                f"campaign: {len(draw.faults)} fault(s) over {settings.days:g} days, seed {settings.seed}; "
                f"run dir {run_dir}; report {settings.report_dir}",
                file=sys.stderr,
            )
            if not args.json:
                progress = _Progress(settings.duration_s, frame_period_s)
                progress.start(draw.faults)

        def advanced(frames: int, final_frame: int | None, mission_time_s: float) -> None:
            if progress is not None:
                progress.update(frames, final_frame, mission_time_s)

        try:
            run_campaign(settings, on_start=started, on_progress=advanced)
        finally:
            if progress is not None:
                progress.close()
        print("campaign: reading the recording and writing the report", file=sys.stderr)
    report = analyse(settings.report_dir)
    path = write_report(report, settings.report_dir, plots=not args.no_plots)
    if args.json:
        print((settings.report_dir / "report.json").read_text(encoding="utf-8"), end="")
    else:
        _print_verdict(report, path)
    return 0 if report.passed else 1


def register(subparsers: Any) -> None:
    """Add ``campaign`` to the ``fsw`` command's subparsers (entry point ``fsw.commands``)."""
    parser = subparsers.add_parser(
        "campaign",
        help="long-term autonomy campaign: weeks of mission time, random faults, a report",
        description="Run the whole base for --days of mission time in accelerated lockstep with "
        "faults drawn at random from a catalogue and no ground contact, then write a report "
        f"(DIR/{REPORT_FILE} with PNG plots, DIR/report.json) and judge the safety invariants.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--days", type=float, default=60.0, help="mission days to run (default 60)")
    parser.add_argument(
        "--faults",
        choices=("random", "none"),
        default="random",
        help="draw faults from the catalogue, or none",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the fault draw and the simulation (default 0)"
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every catalogue rate by X (default 1)",
    )
    parser.add_argument(
        "--deployment",
        default="lunation",
        metavar="FILE",
        help="deployment file, or the name of an embedded one (default: lunation)",
    )
    parser.add_argument(
        "--catalogue", metavar="FILE", help="fault catalogue (TOML; default: the packaged one)"
    )
    parser.add_argument(
        "--frame-period",
        type=float,
        metavar="S",
        help="run on frames of S seconds (process rates capped at the frame rate); default: the deployment's",
    )
    parser.add_argument("--report", metavar="DIR", help="report directory (default: campaign-seed<N>)")
    parser.add_argument(
        "--run-dir", help="run directory for sockets and logs (default: a fresh temporary one, removed after)"
    )
    parser.add_argument("--no-plots", action="store_true", help="write the report without PNG plots")
    parser.add_argument(
        "--analyse", action="store_true", help="do not run: judge the campaign already in --report DIR again"
    )
    parser.add_argument(
        "--draw-only", action="store_true", help="do not run: print the faults the seed draws"
    )
    parser.add_argument(
        "--json", action="store_true", help="print report.json instead of the verdict (no bar)"
    )
    parser.set_defaults(func=cmd_campaign)
