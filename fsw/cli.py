"""The ``fsw`` command.

``fsw up`` runs a base, ``fsw status`` shows a running one, ``fsw dict`` prints
the dictionary, ``fsw cmd`` sends one command. Other packages add subcommands
through the ``fsw.commands`` entry-point group: each entry is a function
``register(subparsers) -> None`` that adds its parser and sets ``func``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from fsw import deployment as deployment_module
from fsw.board import board_backends
from fsw.bus import CommandOutcome
from fsw.deployment import Deployment
from fsw.dictionary import parse_assignments
from fsw.errors import ConfigError, FswError
from fsw.log import configure_logging
from fsw.run import RunOptions, parse_duration, parse_speed

COMMAND_ENTRY_POINT_GROUP = "fsw.commands"

UP_EPILOG = """\
modes:
  real time (default)   ticks paced by the wall clock; lateness is telemetry
  --speed N             simulated time in lockstep, N times real time
  --speed max           simulated time in lockstep, as fast as the processes go

examples:
  fsw up                                    the embedded default base, real time, until Ctrl-C
  fsw up --speed max --duration 1h --seed 7 an hour of mission time, as fast as possible
  fsw up my-base.toml --duration 10min      a deployment file of your own
  fsw up lunation --speed max --duration 30d
                                            a synodic month on 1 s frames, with its statistics

Ctrl-C (SIGINT) or SIGTERM stops every process in order; children still alive
after their grace period get SIGKILL. Logs of every process are in
<run_dir>/logs/<name>.log. While the base runs, `fsw status` shows it.
"""


def load_deployment(path: str | None, run_dir: str | None) -> tuple[Deployment, str]:
    """Load a deployment file, or an embedded deployment by name (default: ``default``).

    ``path`` names a file if one exists there or it looks like a path (``/`` or
    ``.toml``); otherwise an embedded deployment (``fsw up lunation``). Returns the
    deployment and its TOML text; raises :class:`ConfigError` naming what is wrong.
    """
    name = path or "default"
    if path and (Path(path).exists() or "/" in path or path.endswith(".toml")):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read deployment file {path}: {exc.strerror}"
            raise ConfigError(msg) from exc
        return deployment_module.parse(text, source=path, run_dir=run_dir), text
    try:
        text = deployment_module.embedded_text(name)
    except ConfigError as exc:
        msg = f"no deployment file {path} here, and {exc}"
        raise ConfigError(msg) from exc
    return deployment_module.parse(text, source=f"<embedded {name}>", run_dir=run_dir), text


def _add_deployment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "deployment",
        nargs="?",
        help="deployment file (TOML), or the name of an embedded one (default, lunation); "
        "default: the embedded default base",
    )
    parser.add_argument("--run-dir", help="directory for sockets, logs and board links")


def cmd_up(args: argparse.Namespace) -> int:
    """``fsw up``: run the base until a signal or the duration."""
    from fsw.supervisor import Supervisor, clean_run_dir, new_run_id  # noqa: PLC0415 - keeps `fsw dict` light

    deployment, text = load_deployment(args.deployment, args.run_dir)
    duration_s = parse_duration(args.duration) if args.duration else None
    speed = parse_speed(args.speed) if args.speed else None
    options = RunOptions(
        run_id=new_run_id(),
        speed=speed,
        seed=args.seed,
        duration_s=duration_s,
        record_dir=str(Path(args.record).resolve()) if args.record else None,
        record_topics=tuple(args.record_topics or ()),
        scenario=str(Path(args.scenario).resolve()) if args.scenario else None,
        board_backends=board_backends(),
    )
    if options.record_topics and options.record_dir is None:
        msg = "--record-topics needs --record DIR"
        raise ConfigError(msg)
    if options.scenario is not None and not Path(options.scenario).is_file():
        msg = f"scenario file {args.scenario} does not exist"
        raise ConfigError(msg)
    configure_logging("supervisor", json=False)
    clean_run_dir(deployment.run_dir)
    out = sys.stderr
    mode = (
        "real time"
        if speed is None
        else ("simulated, max speed" if math.isinf(speed) else f"simulated x{speed:g}")
    )
    print(
        f"{deployment.name}: starting {len(deployment.processes) + 2} processes ({mode}, seed {args.seed}); "
        f"run dir {deployment.run_dir}",
        file=out,
    )
    progress = _Progress(deployment, duration_s) if duration_s and not args.json else None
    supervisor = Supervisor(
        deployment,
        text,
        options,
        events_out=Path(args.events_out) if args.events_out else None,
        on_progress=progress.update if progress else None,
    )
    try:
        summary = supervisor.run()
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        _print_summary(summary.to_json())
    return 0


class _Progress:
    """A rich progress bar over mission time, fed by the clock's heartbeats."""

    def __init__(self, deployment: Deployment, duration_s: float) -> None:
        from rich.progress import (  # noqa: PLC0415 - only runs with a duration
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._period_s = deployment.clock.frame_period_s
        self._progress = Progress(
            TextColumn("mission time"),
            BarColumn(),
            TextColumn("{task.fields[mission]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        total_frames = max(1, round(duration_s / self._period_s))
        self._task = self._progress.add_task("run", total=total_frames, mission="0 s")
        self._progress.start()

    def update(self, frames: int, final_frame: int | None, mission_time_s: float) -> None:
        """Move the bar to ``frames`` completed."""
        self._progress.update(self._task, completed=frames, mission=_format_duration(frames * self._period_s))
        _ = (final_frame, mission_time_s)

    def close(self) -> None:
        """Stop drawing."""
        self._progress.stop()


def _format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.2f} {unit}"
    return f"{seconds:.1f} s"


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"run {summary['run_id']}: {summary['reason']}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("mission time", _format_duration(summary["mission_time_s"]))
    table.add_row(
        "frames", f"{summary['frames']} ({summary['frames_per_wall_s']:.0f} per wall second once running)"
    )
    table.add_row("wall time", f"{summary['wall_s']:.1f} s")
    table.add_row("messages published", str(summary["messages"]))
    table.add_row("drops (lost / malformed)", f"{summary['lost']} / {summary['malformed']}")
    table.add_row("late / missed frames", f"{summary['late_frames']} / {summary['missed_frames']}")
    restarts = {k: v for k, v in summary["restarts"].items() if v}
    table.add_row("restarts", ", ".join(f"{k} {v}" for k, v in restarts.items()) or "none")
    table.add_row("modes", ", ".join(f"{k} {v}" for k, v in summary["modes"].items()) or "-")
    severities = ", ".join(f"{k} {v}" for k, v in sorted(summary["events_by_severity"].items()))
    table.add_row("events", f"{summary['events']} ({severities})")
    table.add_row("event history digest", summary["event_digest"][:16])
    for name, statistics in sorted(summary.get("statistics", {}).items()):
        table.add_row(name, ", ".join(f"{k} {_format_statistic(v)}" for k, v in statistics.items()))
    Console(stderr=False).print(table)


def _format_statistic(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    """``fsw status``: ask the running base's supervisor."""
    from fsw.supervisor import query_status  # noqa: PLC0415

    deployment, _ = load_deployment(args.deployment, args.run_dir)
    status = query_status(deployment.bus.status, timeout_s=args.timeout)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    fps = status.get("frames_per_s")
    table = Table(
        title=f"{status['base']} ({status['mode']}): frame {status.get('frame')}, "
        f"{fps if fps is not None else '-'} frames/s, up {status['uptime_s']:.0f} s"
    )
    for column in (
        "process",
        "state",
        "pid",
        "restarts",
        "heartbeat age",
        "frame",
        "mode",
        "late",
        "missed",
        "lost",
    ):
        table.add_column(column)
    for p in status["processes"]:
        age = p["heartbeat_age_s"]
        table.add_row(
            p["name"],
            p["state"],
            str(p["pid"] or "-"),
            str(p["restarts"]),
            "-" if age is None else f"{age:.1f} s",
            str(p["frame"] if p["frame"] is not None else "-"),
            p["mode"] or "-",
            str(p["late_frames"]),
            str(p["missed_frames"]),
            str(p["lost"]),
        )
    Console().print(table)
    return 0


def cmd_dict(args: argparse.Namespace) -> int:
    """``fsw dict``: print every process's dictionary."""
    from fsw.launch import deployment_dictionaries  # noqa: PLC0415

    deployment, _ = load_deployment(args.deployment, args.run_dir)
    whole: dict[str, Any] = {name: d.to_json() for name, d in deployment_dictionaries(deployment).items()}
    if args.json:
        print(json.dumps(whole, indent=2))
        return 0
    for name, entry in whole.items():
        print(f"{name}")
        if entry["telemetry"]:
            print(f"  telemetry (tlm.{name}.hk):")
            for p in entry["telemetry"]:
                limits = p.get("limits")
                limit_text = f"  limits {limits}" if limits else ""
                print(f"    {p['name']:<28} {p['type']:<5} {p['unit']:<6} {p['description']}{limit_text}")
        if entry["events"]:
            print("  events:")
            for e in entry["events"]:
                print(f"    {e['name']:<28} {e['severity']:<8} {e['description']}")
        if entry["commands"]:
            print("  commands:")
            for c in entry["commands"]:
                arg_text = ", ".join(_arg_text(a) for a in c["args"])
                flag = " [critical]" if c["critical"] else ""
                print(f"    {c['name']}({arg_text}){flag}  {c['description']}")
    return 0


def _arg_text(arg: dict[str, Any]) -> str:
    text = f"{arg['name']}: {arg['type']}"
    if "low" in arg or "high" in arg:
        text += f" [{arg.get('low', '')}..{arg.get('high', '')}]"
    if "choices" in arg:
        text += f" in {arg['choices']}"
    if arg.get("unit"):
        text += f" {arg['unit']}"
    if "default" in arg:
        text += f" = {arg['default']!r}"
    return text


def cmd_cmd(args: argparse.Namespace) -> int:
    """``fsw cmd``: send one command and print its outcome."""
    from fsw.bus import CommandClient  # noqa: PLC0415

    deployment, _ = load_deployment(args.deployment_file, args.run_dir)
    arguments = parse_assignments(args.args)
    with CommandClient(deployment.bus.command, source="fsw-cmd") as client:
        if args.arm:
            armed = client.call(args.target, "arm", {"command": args.command}, timeout_s=args.timeout)
            if not armed.ok:
                print(json.dumps(outcome_report(armed), indent=2))
                return 1
        outcome = client.call(args.target, args.command, arguments, timeout_s=args.timeout)
    print(json.dumps(outcome_report(outcome), indent=2))
    return 0 if outcome.ok else 1


def outcome_report(outcome: CommandOutcome) -> dict[str, Any]:
    """A command's outcome as the JSON the command-line tools print."""
    return {
        "target": outcome.target,
        "command": outcome.command,
        "status": outcome.status if outcome.final else "no outcome (is the base up?)",
        "stages": outcome.stages,
        "reason": outcome.reason,
        "result": outcome.result,
    }


def build_parser() -> argparse.ArgumentParser:
    """The whole ``fsw`` argument parser, subcommands from entry points included."""
    parser = argparse.ArgumentParser(
        prog="fsw", description="lunar-fsw: flight software for an autonomous lunar base."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run the base (every process, supervised)",
        description="Start the broker, the frame clock, every subsystem and the simulator as "
        "separate OS processes; restart the ones that crash or hang, within the restart budget "
        "of the deployment file; stop them all on Ctrl-C, SIGTERM or after --duration of mission "
        "time, and print a summary (frames, messages, drops, restarts, modes).",
        epilog=UP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_deployment_args(up)
    up.add_argument("--speed", help="simulated time in lockstep: N times real time, or 'max'")
    up.add_argument("--seed", type=int, default=0, help="seed of the simulation (default 0)")
    up.add_argument("--duration", help="stop after this much mission time: 90s, 10min, 1h, 30d")
    up.add_argument("--events-out", help="write every event, as JSON lines, to this file")
    up.add_argument(
        "--scenario",
        metavar="FILE",
        help="fault scenario (TOML, docs/faults.md) for the simulator to play in this run",
    )
    up.add_argument(
        "--record",
        metavar="DIR",
        help="record every bus message (board samples included) to a log in DIR, from frame 0",
    )
    up.add_argument(
        "--record-topics",
        nargs="+",
        metavar="PREFIX",
        help="with --record: keep only topics starting with these prefixes (e.g. tlm.power.hk evt.)",
    )
    up.add_argument("--json", action="store_true", help="print the summary as JSON")
    up.set_defaults(func=cmd_up)

    status = sub.add_parser(
        "status", help="show a running base: processes, pids, restarts, heartbeats, lateness"
    )
    _add_deployment_args(status)
    status.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the supervisor")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    dictionary = sub.add_parser("dict", help="print the base's telemetry, event and command dictionary")
    _add_deployment_args(dictionary)
    dictionary.add_argument("--json", action="store_true", help="machine-readable JSON")
    dictionary.set_defaults(func=cmd_dict)

    command = sub.add_parser(
        "cmd",
        help="send one command over the bus and print its outcome",
        description="Send COMMAND to TARGET with key=value arguments (values parse as JSON: "
        'numbers, true/false, "text"), wait for its outcome and print it. Exit 0 if it completed.',
    )
    command.add_argument("target")
    command.add_argument("command")
    command.add_argument("args", nargs="*", metavar="key=value")
    command.add_argument(
        "--arm",
        action="store_true",
        help="for a critical command: send `arm command=COMMAND` first, then the command",
    )
    command.add_argument("--deployment", dest="deployment_file", help="deployment file (default: embedded)")
    command.add_argument("--run-dir")
    command.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the outcome")
    command.set_defaults(func=cmd_cmd)

    for entry in metadata.entry_points(group=COMMAND_ENTRY_POINT_GROUP):
        try:
            register: Callable[[Any], None] = entry.load()
            register(sub)
        except Exception as exc:  # a broken plugin must not take the other commands down
            print(f"fsw: subcommands {entry.name!r} from {entry.value} unavailable: {exc}", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fsw`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except FswError as exc:
        print(f"fsw {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`fsw dict | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
