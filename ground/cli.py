"""``fsw ground``: the ground console (registered through the ``fsw.commands`` entry point).

::

    fsw ground station                      # the station: link, archive, API (leave it running)
    fsw ground ping
    fsw ground send power switch_load tier=4 on=false
    fsw ground send reactor startup --arm   # a critical command: arm, then execute
    fsw ground watch power.battery_soc reactor   # live values with limit colours
    fsw ground events --severity warning --follow
    fsw ground tui                          # the dashboard
    fsw ground run examples/procedures/check_power.py
    fsw ground plot power.battery_soc reactor.fuel_temp_c --since 1h --out last-hour.png
    fsw ground history commands --since 1h --json
    fsw ground export --xtce base.xml

Exit status: 0 when done (a command verified, a procedure passed), 1 when the base said
no (a command rejected or failed, a procedure's check failed), 2 for bad input or a
station that does not answer within its deadline (one line on standard error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import runpy
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from fsw.cli import load_deployment
from fsw.deployment import Deployment
from fsw.dictionary import parse_assignments
from fsw.errors import ConfigError, DeadlineMissed
from fsw.monitors import as_number
from ground.client import DEFAULT_COMMAND_TIMEOUT_S, Station, Subscription, Verification
from ground.mission import MissionDatabase, default_archive_path, link_defaults
from ground.station import DEFAULT_API, DEFAULT_PUB, KEEPALIVE_S

#: Environment variables that set ``--api`` and ``--pub`` for every client command.
API_ENVIRONMENT: Final = "FSW_GROUND_API"
PUB_ENVIRONMENT: Final = "FSW_GROUND_PUB"

#: What ``fsw ground watch`` shows with no points named.
DEFAULT_WATCH: Final = (
    "protection.mode",
    "power.battery_soc",
    "power.bus_voltage_v",
    "power.net_power_w",
    "thermal.battery_temp_c",
    "thermal.avionics_temp_c",
    "reactor.mode",
    "reactor.power_pct",
    "reactor.fuel_temp_c",
    "comms.mode",
    "comms.link_up",
    "comms.queue_fill",
)

#: Rich styles of the limit states.
LIMIT_STYLES: Final = {"green": "green", "yellow": "bold yellow", "red": "bold red", "invalid": "magenta"}

EPILOG = """\
the link (station):
  the station talks to the base for everyone: by default through the simulated space
  link of the same host's base (udp://127.0.0.1:10015, from the deployment file), with
  the base's key file ({state_dir}/keys/link.toml). Another machine: --link
  udp://BASE:10025 (comms directly) or tcp://BASE:10026, and --keys with a copy of the
  base's key file. Every other command talks to the station (--api, --pub; or
  $FSW_GROUND_API, $FSW_GROUND_PUB).

exit status:
  0 done; 1 the base refused or a procedure's check failed; 2 bad input, or no station.
"""


# ----------------------------------------------------------------- shared


def _deployment(args: argparse.Namespace) -> Deployment:
    deployment, _ = load_deployment(getattr(args, "deployment", None), getattr(args, "run_dir", None))
    return deployment


def _archive_path(args: argparse.Namespace) -> Path:
    if getattr(args, "archive", None):
        return Path(args.archive)
    return default_archive_path(_deployment(args).name)


def _station(args: argparse.Namespace) -> Station:
    return Station(args.api, timeout_s=args.station_timeout_s)


def _when(unix_s: float | None) -> str:
    if unix_s is None:
        return "-"
    return dt.datetime.fromtimestamp(unix_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _arg_text(args: dict[str, Any]) -> str:
    """``key=value`` words as a user types them (strings bare unless they need quotes)."""
    words = []
    for name, value in args.items():
        plain = isinstance(value, str) and value and value.isprintable() and " " not in value
        text = value if plain else json.dumps(value, default=str)
        words.append(f"{name}={text}")
    return " ".join(words)


def _verification_line(verification: Verification, timeout_s: float) -> str:
    args = _arg_text(verification.args)
    what = f"{verification.target} {verification.command}" + (f" {args}" if args else "")
    stages = ", ".join(verification.stages) or "none"
    if not verification.final:
        return f"{what}: no verification within {timeout_s:g} s (stages so far: {stages}; is the link up?)"
    if verification.ok:
        return f"{what}: completed in {verification.round_trip_s or 0.0:.2f} s ({stages})"
    failure = f" {verification.failure}" if verification.failure else ""
    return f"{what}: {verification.outcome}{failure}: {verification.reason} ({stages})"


def _report(verification: Verification, args: argparse.Namespace) -> int:
    if args.json:
        _print_json(verification.to_json())
    else:
        print(_verification_line(verification, args.timeout_s))
    return 0 if verification.ok else 1


# ----------------------------------------------------------------- station


def cmd_station(args: argparse.Namespace) -> int:
    """``fsw ground station``: run the station until Ctrl-C or SIGTERM."""
    from fsw.log import configure_logging  # noqa: PLC0415
    from ground.link import parse_link_url  # noqa: PLC0415
    from ground.station import GroundStation, StationConfig  # noqa: PLC0415

    deployment = _deployment(args)
    defaults = link_defaults(deployment)
    if not args.keepalive_s > 0:
        msg = "--keepalive-s must be positive"
        raise ConfigError(msg)
    config = StationConfig(
        link=args.link or defaults.link,
        keys=Path(args.keys) if args.keys else defaults.keys,
        archive=_archive_path(args),
        api=args.api,
        pub=args.pub,
        keepalive_s=args.keepalive_s,
        bind=args.bind or "",
    )
    parse_link_url(config.link)  # a bad URL is a one-line error before anything starts
    mission = MissionDatabase.from_deployment(deployment)
    configure_logging("ground-station", json=args.json_logs or None)
    print(
        f"ground station for {deployment.name}: link {config.link}, api {config.api}, pub {config.pub}, "
        f"archive {config.archive}",
        file=sys.stderr,
        flush=True,
    )
    with GroundStation(config, mission) as station:
        station.run()
    return 0


# ----------------------------------------------------------------- commands


def cmd_send(args: argparse.Namespace) -> int:
    """``fsw ground send`` and ``execute``: one command, its verification."""
    arguments = parse_assignments(args.args)
    with _station(args) as station:
        verification = station.command(
            args.target, args.tc_command, arguments, timeout_s=args.timeout_s, arm=args.arm
        )
    return _report(verification, args)


def cmd_arm(args: argparse.Namespace) -> int:
    """``fsw ground arm``: arm one critical command."""
    with _station(args) as station:
        verification = station.command(
            args.target, "arm", {"command": args.tc_command}, timeout_s=args.timeout_s
        )
    code = _report(verification, args)
    if verification.ok and not args.json:
        print(f"armed: now `fsw ground execute {args.target} {args.tc_command} ...` within the arm window")
    return code


def cmd_ping(args: argparse.Namespace) -> int:
    """``fsw ground ping``: a TC[17,1] and its round trip."""
    with _station(args) as station:
        verification = station.ping(args.timeout_s)
    if args.json:
        _print_json(verification.to_json())
    elif verification.ok:
        print(
            f"the base answered in {verification.round_trip_s or 0.0:.2f} s (request {verification.request})"
        )
    else:
        print(_verification_line(verification, args.timeout_s))
    return 0 if verification.ok else 1


# ----------------------------------------------------------------- live telemetry


def _watched(mission: MissionDatabase, names: Sequence[str]) -> list[str]:
    if not names:
        return [n for n in DEFAULT_WATCH if mission.has_point(n)]
    points: list[str] = []
    for name in names:
        if "." not in name and name in mission.dictionaries:
            points += [f"{name}.{p.name}" for p in mission.points_of(name)]
        else:
            mission.point(name)  # raises, naming what exists
            points.append(name)
    return points


def _value_cell(mission: MissionDatabase, name: str, value: Any) -> tuple[str, str, str]:
    point = mission.point(name)
    if value is None:
        return "-", "no value", "dim"
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    if point.limits is None:
        return text, "", ""
    state = point.limits.state(as_number(value))
    return text, state, LIMIT_STYLES.get(state, "")


def _watch_table(mission: MissionDatabase, points: Sequence[str], latest: dict[str, Any]) -> Any:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{mission.base}: live telemetry")
    for column in ("point", "value", "unit", "limits", "time (UTC)"):
        table.add_column(column)
    for name in points:
        source, _, point_name = name.partition(".")
        entry = latest.get(source) or {}
        value = (entry.get("values") or {}).get(point_name)
        text, state, style = _value_cell(mission, name, value)
        table.add_row(
            name,
            f"[{style}]{text}[/]" if style else text,
            mission.point(name).unit,
            f"[{style}]{state}[/]" if style and state else state,
            _when(entry.get("unix_s"))[11:] if entry else "-",
        )
    return table


def cmd_watch(args: argparse.Namespace) -> int:
    """``fsw ground watch``: live values of points, coloured by their limits."""
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    with _station(args) as station:
        mission = station.mission()
        points = _watched(mission, args.points)
        sources = sorted({p.partition(".")[0] for p in points})
        latest = station.latest()
        if args.once:
            if args.json:
                _print_json(
                    {
                        p: (latest.get(p.partition(".")[0]) or {}).get("values", {}).get(p.partition(".")[2])
                        for p in points
                    }
                )
            else:
                Console().print(_watch_table(mission, points, latest))
            return 0
        with (
            Subscription(args.pub, [f"hk.{s}" for s in sources]) as subscription,
            Live(_watch_table(mission, points, latest), auto_refresh=False) as live,
        ):
            while True:
                message = subscription.receive(1.0)
                if message is not None:
                    _, data = message
                    latest[str(data.get("source"))] = data
                live.update(_watch_table(mission, points, latest), refresh=True)


def _event_line(event: dict[str, Any]) -> str:
    data = _arg_text(event.get("data") or {})
    return (
        f"{_when(event.get('unix_s'))}  {event.get('severity', ''):<8} "
        f"{event.get('source')}.{event.get('name')}  {data}"
    ).rstrip()


def cmd_events(args: argparse.Namespace) -> int:
    """``fsw ground events``: archived events (``--since``), then live ones (``--follow``)."""
    from ground.archive import SEVERITIES, Archive  # noqa: PLC0415
    from ground.plot import resolve_since  # noqa: PLC0415

    wanted = SEVERITIES[SEVERITIES.index(args.severity) :]
    path = _archive_path(args)
    if path.exists() or not args.follow:
        with Archive(path, readonly=True) as archive:
            since_s = resolve_since(args.since, archive.newest_unix_s())
            for event in archive.events(since_s=since_s, severity=args.severity, limit=args.limit):
                print(json.dumps(event, default=str) if args.json else _event_line(event), flush=True)
    if not args.follow:
        return 0
    with Subscription(args.pub, ["evt."]) as subscription:
        while True:
            message = subscription.receive(1.0)
            if message is None:
                continue
            _, event = message
            if event.get("severity") in wanted:
                print(json.dumps(event, default=str) if args.json else _event_line(event), flush=True)


def cmd_tui(args: argparse.Namespace) -> int:
    """``fsw ground tui``: the live dashboard."""
    try:
        from ground.tui import run_tui  # noqa: PLC0415 - Textual loads only here
    except ImportError as exc:
        msg = f"the dashboard needs the ground extra (pip install 'lunar-fsw[ground]'): {exc}"
        raise ConfigError(msg) from exc
    with _station(args) as station:
        station.wait_ready(args.station_timeout_s)
        return int(run_tui(station, args.pub))


# ----------------------------------------------------------------- archive


def cmd_plot(args: argparse.Namespace) -> int:
    """``fsw ground plot``: points from the archive into a PNG."""
    from ground.archive import Archive  # noqa: PLC0415
    from ground.plot import plot_archive  # noqa: PLC0415

    deployment = _deployment(args)
    mission = MissionDatabase.from_deployment(deployment)
    for name in args.points:
        mission.point(name)
    with Archive(_archive_path(args), readonly=True) as archive:
        path = plot_archive(archive, args.points, args.out, since=args.since, mission=mission)
    print(f"wrote {path}")
    return 0


def _history_line(kind: str, row: dict[str, Any]) -> str:
    if kind == "events":
        return _event_line(row)
    if kind == "commands":
        args = _arg_text(row["args"])
        stages = ", ".join(s["stage"] for s in row["stages"]) or "none"
        reason = f" {row['failure']}: {row['reason']}" if row["reason"] else ""
        return (
            f"{_when(row['sent_s'])}  {row['request']}  {row['target']} {row['command']}"
            f"{' ' + args if args else ''}  -> {row['stage']}{reason} ({stages})"
        )
    what = row["name"] or row["kind"]
    where = row["source"] or (f"apid {row['apid']}" if row["apid"] is not None else "?")
    service = f"TM[{row['service']},{row['subtype']}]" if row["service"] is not None else "TM[?]"
    extra = f"  {row['error']}" if row["error"] else ""
    return f"{_when(row['unix_s'])}  {service:<9} {where:<11} {what:<22} {row['size']:>5} B{extra}"


def cmd_history(args: argparse.Namespace) -> int:
    """``fsw ground history``: packets, commands or events from the archive."""
    from ground.archive import Archive  # noqa: PLC0415
    from ground.plot import resolve_since  # noqa: PLC0415

    with Archive(_archive_path(args), readonly=True) as archive:
        if args.what == "packets":
            since_s = resolve_since(args.since, archive.newest_unix_s())
            kinds = [k for k in (args.kind or "").split(",") if k]
            rows = archive.packets(since_s=since_s, kinds=kinds, source=args.source, limit=args.limit)
            if not args.raw:
                for row in rows:
                    del row["raw"]
        elif args.what == "commands":
            since_s = resolve_since(args.since, archive.newest_sent_s())
            rows = archive.commands(since_s=since_s, include_keepalive=args.all, limit=args.limit)
        else:
            since_s = resolve_since(args.since, archive.newest_unix_s())
            rows = archive.events(since_s=since_s, severity=args.severity, limit=args.limit)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(_history_line(args.what, row))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``fsw ground export``: the dictionary as JSON, or XTCE."""
    if not args.json_out and not args.xtce:
        msg = "export needs --json FILE or --xtce FILE (or both)"
        raise ConfigError(msg)
    deployment = _deployment(args)
    mission = MissionDatabase.from_deployment(deployment)
    if args.json_out:
        text = json.dumps(mission.to_json(), indent=2) + "\n"
        if args.json_out == "-":
            sys.stdout.write(text)
        else:
            _write(Path(args.json_out), text)
            print(f"wrote {args.json_out}")
    if args.xtce:
        from ground.xtce import export_xtce  # noqa: PLC0415 - only for this export

        export_xtce(mission.dictionaries, mission.apids, Path(args.xtce), name=mission.base)
        print(f"wrote {args.xtce}")
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        msg = f"cannot write {path}: {exc.strerror}"
        raise ConfigError(msg) from exc


# ----------------------------------------------------------------- procedures


def _failing_line(path: Path, exc: BaseException) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path.resolve():
            return f"{path}:{frame.lineno}"
    return str(path)


def cmd_run(args: argparse.Namespace) -> int:
    """``fsw ground run``: a procedure, with ``cmd``, ``tlm``, ``wait_check``... in its globals."""
    from ground import procedure  # noqa: PLC0415

    path = Path(args.procedure)
    if not path.is_file():
        msg = f"no procedure file {path}"
        raise ConfigError(msg)
    procedure.connect(args.api, timeout_s=args.station_timeout_s, echo=procedure.echo_to(sys.stdout))
    argv = sys.argv
    sys.argv = [str(path), *args.procedure_args]
    try:
        runpy.run_path(str(path), init_globals=procedure.namespace(), run_name="__main__")
    except DeadlineMissed:
        raise  # no station: exit 2
    except procedure.CheckFailed as exc:
        print(f"{path.name}: FAILED at {_failing_line(path, exc)}: {exc}", flush=True)
        return 1
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        print(f"{path.name}: {'passed' if code == 0 else f'exit {code}'}", flush=True)
        return code
    except Exception as exc:  # the procedure's own error: report where, like Python would
        traceback.print_exc()
        print(f"{path.name}: FAILED at {_failing_line(path, exc)}: {type(exc).__name__}: {exc}", flush=True)
        return 1
    finally:
        sys.argv = argv
        procedure.disconnect()
    print(f"{path.name}: passed", flush=True)
    return 0


# ----------------------------------------------------------------- the parser


def _client_args(parser: argparse.ArgumentParser, *, pub: bool = False) -> None:
    parser.add_argument(
        "--api",
        default=os.environ.get(API_ENVIRONMENT) or DEFAULT_API,
        help=f"the station's request endpoint (default {DEFAULT_API}, or ${API_ENVIRONMENT})",
    )
    if pub:
        parser.add_argument(
            "--pub",
            default=os.environ.get(PUB_ENVIRONMENT) or DEFAULT_PUB,
            help=f"the station's publisher (default {DEFAULT_PUB}, or ${PUB_ENVIRONMENT})",
        )
    parser.add_argument(
        "--station-timeout-s",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for the station to answer a request (default 5)",
    )


def _deployment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment",
        metavar="FILE",
        help="deployment file, or the name of an embedded one (default: the embedded default base)",
    )
    parser.add_argument("--run-dir", help="the base's run directory (where its default state is)")


def _archive_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        metavar="FILE",
        help="the station's archive (default: ~/.local/share/lunar-fsw/ground/<base>.db)",
    )
    _deployment_args(parser)


def _command_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_COMMAND_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the final verification (default {DEFAULT_COMMAND_TIMEOUT_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the verification as JSON")
    _client_args(parser)


def register(subparsers: Any) -> None:
    """Add ``ground`` to the ``fsw`` command's subparsers (entry point ``fsw.commands``)."""
    ground = subparsers.add_parser(
        "ground",
        help="the ground console: station, commands, telemetry, procedures, archive",
        description="The ground segment: a station that holds the space link to the base and an "
        "archive of everything, and the commands that use it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ground.add_subparsers(dest="ground_command", required=True, metavar="COMMAND")
    _register_station(sub)
    _register_commands(sub)
    _register_telemetry(sub)
    _register_archive(sub)


def _register_station(sub: Any) -> None:
    station = sub.add_parser(
        "station",
        help="run the ground station (link, keys, archive, API) until Ctrl-C",
        description="Hold the space link to the base: sign and send telecommands, receive and "
        "archive every packet, serve the other ground tools on --api and --pub.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _archive_args(station)
    station.add_argument(
        "--link",
        metavar="URL",
        help="udp://HOST:PORT or tcp://HOST:PORT (default: the deployment's simulated space link, "
        "udp://127.0.0.1:10015)",
    )
    station.add_argument("--bind", metavar="HOST:PORT", help="local address of a UDP link (default: any)")
    station.add_argument(
        "--keys", metavar="FILE", help="key file (default: the deployment's, {state_dir}/keys/link.toml)"
    )
    station.add_argument(
        "--api", default=DEFAULT_API, help=f"request endpoint to bind (default {DEFAULT_API})"
    )
    station.add_argument(
        "--pub", default=DEFAULT_PUB, help=f"publisher endpoint to bind (default {DEFAULT_PUB})"
    )
    station.add_argument(
        "--keepalive-s",
        type=float,
        default=KEEPALIVE_S,
        metavar="S",
        help=f"seconds between keep-alive pings (default {KEEPALIVE_S:g})",
    )
    station.add_argument("--json-logs", action="store_true", help="log JSON lines even on a terminal")
    station.set_defaults(func=cmd_station)


def _register_commands(sub: Any) -> None:
    for name, what in (("send", "send one command and wait for its verification"), ("execute", None)):
        parser = sub.add_parser(
            name,
            help=what or "send a command armed before (same as send)",
            description="Send COMMAND to TARGET with key=value arguments (values parse as JSON: "
            'numbers, true/false, "text"), checked against the dictionary; wait for its '
            "verification and print it. Exit 0 if it completed, 1 if the base refused it.",
        )
        parser.add_argument("target")
        parser.add_argument("tc_command", metavar="command")
        parser.add_argument("args", nargs="*", metavar="key=value")
        parser.add_argument(
            "--arm", action="store_true", help="a critical command: send `arm command=COMMAND` first"
        )
        _command_args(parser)
        parser.set_defaults(func=cmd_send)

    arm = sub.add_parser("arm", help="arm a critical command (execute it within the arm window)")
    arm.add_argument("target")
    arm.add_argument("tc_command", metavar="command")
    _command_args(arm)
    arm.set_defaults(func=cmd_arm)

    ping = sub.add_parser("ping", help="a TC[17,1] to the base and its round trip")
    _command_args(ping)
    ping.set_defaults(func=cmd_ping)

    run = sub.add_parser(
        "run",
        help="run a procedure (cmd, tlm, wait_check, wait available)",
        description="Run a Python procedure with cmd, tlm, wait_check, check, wait and ping in its "
        "globals (see ground.procedure). Exit 0 if it ends, 1 if a check or a command fails.",
    )
    run.add_argument("procedure", metavar="PROCEDURE.py")
    run.add_argument("procedure_args", nargs=argparse.REMAINDER, metavar="ARG", help="its sys.argv[1:]")
    _client_args(run)
    run.set_defaults(func=cmd_run)


def _register_telemetry(sub: Any) -> None:
    watch = sub.add_parser(
        "watch",
        help="live telemetry with limit colours",
        description="Show points live (source.point, or a source for all its points; default: a "
        "summary of the base), coloured green, yellow or red by their dictionary limits.",
    )
    watch.add_argument("points", nargs="*", metavar="POINT")
    watch.add_argument("--once", action="store_true", help="print the current values once and exit")
    watch.add_argument("--json", action="store_true", help="with --once: the values as JSON")
    _client_args(watch, pub=True)
    watch.set_defaults(func=cmd_watch)

    events = sub.add_parser("events", help="events from the archive, then live with --follow")
    events.add_argument(
        "--severity",
        default="debug",
        choices=("debug", "info", "warning", "error", "critical"),
        help="this severity and above (default: all)",
    )
    events.add_argument("--since", help="back from the newest event archived (1h, 30min) or an ISO time")
    events.add_argument("--limit", type=int, default=100, help="most archived events shown (default 100)")
    events.add_argument("--follow", action="store_true", help="then print events as they arrive")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    _archive_args(events)
    _client_args(events, pub=True)
    events.set_defaults(func=cmd_events)

    tui = sub.add_parser("tui", help="the live dashboard (Textual)")
    _client_args(tui, pub=True)
    tui.set_defaults(func=cmd_tui)


def _register_archive(sub: Any) -> None:
    plot = sub.add_parser(
        "plot",
        help="plot archived points into a PNG",
        description="Plot POINTS (source.point) from the archive, one panel each, with their limits.",
    )
    plot.add_argument("points", nargs="+", metavar="POINT")
    plot.add_argument(
        "--since", default="1h", help="back from the newest packet (default 1h), or an ISO time"
    )
    plot.add_argument("--out", required=True, metavar="FILE.png")
    _archive_args(plot)
    plot.set_defaults(func=cmd_plot)

    history = sub.add_parser("history", help="what the archive holds: packets, commands or events")
    history.add_argument("what", choices=("packets", "commands", "events"))
    history.add_argument(
        "--since", help="back from the newest (packet time; commands: send time): 1h, 30min; or an ISO time"
    )
    history.add_argument("--limit", type=int, default=1000, help="most rows (the newest; default 1000)")
    history.add_argument("--json", action="store_true", help="JSON out")
    history.add_argument("--kind", help="packets: hk,event,verification,pong,other,invalid (comma list)")
    history.add_argument("--source", help="packets: of this process only")
    history.add_argument("--raw", action="store_true", help="packets: include the bytes (hex) in JSON")
    history.add_argument(
        "--severity",
        default="debug",
        choices=("debug", "info", "warning", "error", "critical"),
        help="events: this severity and above",
    )
    history.add_argument("--all", action="store_true", help="commands: include the keep-alive pings")
    _archive_args(history)
    history.set_defaults(func=cmd_history)

    export = sub.add_parser("export", help="the dictionary for other ground systems: JSON or XTCE")
    export.add_argument(
        "--json", dest="json_out", metavar="FILE", help="the JSON dictionary with APIDs ('-': stdout)"
    )
    export.add_argument("--xtce", metavar="FILE", help="an XTCE document of the packets and parameters")
    _deployment_args(export)
    export.set_defaults(func=cmd_export)
