"""``fsw record``, ``fsw replay`` and ``fsw log``: recording, replay and log inspection.

Registered through the ``fsw.commands`` entry point (``recording``). Every command
reports bad input (a missing log, a bad option, a corrupt file) as a clear message and
an exit status, never a traceback; a corrupt log is read as far as it goes and its
skipped and torn bytes are counted in the report.

* ``fsw record DIR [DEPLOYMENT]``: attach to a running base, record until Ctrl-C or
  ``--duration`` of wall time;
* ``fsw replay LOG [DEPLOYMENT]``: re-publish recorded telemetry and events (or
  everything) onto a bus, paced by mission time;
* ``fsw log info LOG``, ``fsw log dump LOG``, ``fsw log filter LOG --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import select as io_select
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fsw.errors import ConfigError, DeadlineMissed
from hil.recording import (
    FSYNC_POLICIES,
    LogHeader,
    LogReader,
    LogWriter,
    ReadStats,
    Selection,
    SelectionCounts,
    log_files,
    select,
)

if TYPE_CHECKING:
    from fsw.deployment import Deployment
    from fsw.process import SignalWakeup
    from hil.recorder import BusTap, SequenceWatch
    from hil.replay import ReplayStats

#: Most distinct topics ``fsw log info`` counts one by one; the rest are counted together.
MAX_TOPICS_COUNTED: Final = 10_000
#: Wall seconds ``fsw record`` waits for the first message before it says the base is not up.
RECORD_CONNECT_TIMEOUT_S: Final = 5.0
#: Topic bucket for topics beyond :data:`MAX_TOPICS_COUNTED`.
OTHER_TOPICS: Final = "(other topics)"

RECORD_EPILOG = """\
examples:
  fsw record recordings/                      the running default base, until Ctrl-C
  fsw record rec/ my-base.toml --duration 10min --fsync always

The files are <run_id>-<index>.fswlog (docs/recording.md). For a recording that starts
at frame 0 of a simulated run, use `fsw up --record DIR` instead: its recorder is part
of the lockstep.
"""

REPLAY_EPILOG = """\
examples:
  fsw replay rec/                             telemetry and events, at the recorded pace,
                                              into the running base of the recorded deployment
  fsw replay rec/ --broker --speed 10         on a bus of its own, ten times faster
  fsw replay rec/ --speed max --all           everything (ticks, heartbeats, acks), at once
  fsw replay rec/ --since 1h --until 2h --topics tlm.power.

The deployment that locates the bus is DEPLOYMENT, else the one recorded in the log,
else the embedded default. With --broker the default run directory is the base's with
"-replay" appended, so a running base is never disturbed; the replay prints it.
"""


def _utc(unix_s: float | None) -> str:
    if unix_s is None or not math.isfinite(unix_s):
        return "-"
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat(timespec="milliseconds")


def _topic_text(topic: bytes) -> str:
    return topic.decode("utf-8", errors="backslashreplace")


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return repr(value)


def _mission_seconds(text: str | None, option: str) -> float | None:
    from fsw.run import parse_duration  # noqa: PLC0415 - keeps `fsw` start-up light

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ConfigError as exc:
        msg = f"{option}: {exc}"
        raise ConfigError(msg) from exc


def _selection(
    args: argparse.Namespace, default_topics: tuple[bytes, ...], include_malformed: bool
) -> Selection:
    topics = tuple(t.encode() for t in args.topics) if args.topics else default_topics
    since_s = _mission_seconds(args.since, "--since")
    until_s = _mission_seconds(args.until, "--until")
    if since_s is not None and until_s is not None and until_s < since_s:
        msg = f"--until {args.until} is before --since {args.since}"
        raise ConfigError(msg)
    return Selection(topics=topics, since_s=since_s, until_s=until_s, include_malformed=include_malformed)


def _log_damage(stats: ReadStats) -> str:
    total = stats.total
    parts = []
    if total.bytes_skipped:
        reasons = ", ".join(f"{k} {v}" for k, v in total.skipped_by_reason.items() if v)
        parts.append(f"{total.bytes_skipped} bytes skipped ({reasons})")
    if total.bytes_torn:
        parts.append(f"{total.bytes_torn} bytes of torn tail")
    for report in stats.unreadable:
        parts.append(f"{report.path.name}: {report.error}")
    return "; ".join(parts)


def first_header(path: str | Path) -> LogHeader | None:
    """The first header of the log at ``path`` (``None`` if its first good record is not one)."""
    with LogReader(path) as reader:
        for record in reader:
            return record if isinstance(record, LogHeader) else None
    return None


# --- fsw record -----------------------------------------------------------------------


def _live_run(deployment: Deployment, text: str) -> tuple[str, str]:
    """The running base's run id and deployment text, from its run directory; else a new id."""
    from fsw import run as run_module  # noqa: PLC0415
    from fsw.supervisor import new_run_id  # noqa: PLC0415

    try:
        _, options = run_module.read(deployment.run_dir)
        live_text = (deployment.run_dir / run_module.DEPLOYMENT_FILE).read_text(encoding="utf-8")
    except (ConfigError, OSError):
        return new_run_id(), text
    return options.run_id, live_text


def _record_loop(
    subscribe_endpoint: str,
    high_water_mark: int,
    tap: BusTap,
    sequences: SequenceWatch,
    *,
    duration_s: float | None,
    connect_timeout_s: float,
) -> bool:
    """Record from ``subscribe_endpoint`` until a signal or ``duration_s`` of wall time.

    Returns ``False`` if no message arrived within ``connect_timeout_s``. Every wait is
    bounded (at most 1 s, and by the next fsync and the end).
    """
    import zmq  # noqa: PLC0415 - keeps `fsw` start-up light

    from fsw.bus import connect, receive_frames  # noqa: PLC0415
    from fsw.process import SignalWakeup  # noqa: PLC0415
    from fsw.timesource import MonotonicTime  # noqa: PLC0415

    clock = MonotonicTime()
    started_s = clock.now_s()
    end_s = started_s + duration_s if duration_s is not None else math.inf
    connect_by_s = started_s + connect_timeout_s
    wakeup = SignalWakeup()
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    subscriber: zmq.Socket[bytes] | None = None
    try:
        subscriber = connect(context, zmq.SUB, subscribe_endpoint, high_water_mark=high_water_mark)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        poller = zmq.Poller()
        poller.register(subscriber, zmq.POLLIN)
        poller.register(wakeup.fileno(), zmq.POLLIN)
        while not wakeup.stop_requested:
            now_s = clock.now_s()
            heard = tap.stats.received > 0
            if now_s >= end_s:
                break
            if not heard and now_s >= connect_by_s:
                return False
            timer_s = tap.next_timer_s()
            due_s = min(end_s, math.inf if heard else connect_by_s, math.inf if timer_s is None else timer_s)
            timeout_ms = max(0, min(1000, int((due_s - now_s) * 1000.0 + 0.999)))
            for source, _ in poller.poll(timeout_ms):
                if source is not subscriber:
                    wakeup.drain()
                    continue
                for _ in range(1000):
                    frames = receive_frames(subscriber)
                    if frames is None:
                        break
                    message, _ = tap.record(frames)
                    if message is not None:
                        sequences.account(message)
            tap.on_timer()
    finally:
        if subscriber is not None:
            subscriber.close(linger=0)
        context.term()
        wakeup.close()
    return True


def cmd_record(args: argparse.Namespace) -> int:
    """``fsw record``: attach to a running base and record everything until Ctrl-C or the duration."""
    from fsw.cli import load_deployment  # noqa: PLC0415
    from fsw.run import parse_duration  # noqa: PLC0415
    from fsw.timesource import MonotonicTime  # noqa: PLC0415
    from hil.recorder import BusTap, SequenceWatch, recorder_settings  # noqa: PLC0415

    deployment, text = load_deployment(args.deployment, args.run_dir)
    duration_s = parse_duration(args.duration) if args.duration else None
    params: dict[str, Any] = {"dir": args.dir, "fsync": args.fsync, "fsync_interval_s": args.fsync_interval}
    if args.max_file_bytes is not None:
        params["max_file_bytes"] = args.max_file_bytes
    settings = recorder_settings(params, Path(args.dir), "fsw record")
    run_id, text = _live_run(deployment, text)
    clock = MonotonicTime()

    def open_writer() -> LogWriter:
        return LogWriter(
            settings.directory,
            base=deployment.name,
            run_id=run_id,
            deployment_text=text,
            fsync=settings.fsync,
            fsync_interval_s=settings.fsync_interval_s,
            max_file_bytes=settings.max_file_bytes,
            time=clock,
            background_sync=True,
        )

    def report(what: str) -> Callable[[str], None]:
        return lambda detail: print(f"fsw record: {what}: {detail}", file=sys.stderr)

    tap = BusTap(
        open_writer, time=clock, on_error=report("recording error"), on_resume=report("recording again")
    )
    if not tap.open():
        msg = f"cannot record into {settings.directory}: {tap.stats.last_error}"
        raise ConfigError(msg)
    sequences = SequenceWatch()
    started_s = clock.now_s()
    print(
        f"fsw record: recording {deployment.name} ({deployment.bus.subscribe}) into {settings.directory}; "
        "Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        heard = _record_loop(
            deployment.bus.subscribe,
            deployment.bus.high_water_mark,
            tap,
            sequences,
            duration_s=duration_s,
            connect_timeout_s=args.connect_timeout,
        )
    finally:
        tap.close()
    if not heard:
        msg = (
            f"no message from {deployment.name} at {deployment.bus.subscribe} within "
            f"{args.connect_timeout:g} s (is the base up? pass its deployment and --run-dir)"
        )
        raise DeadlineMissed(msg)
    writer = tap.writer
    summary = {
        "dir": str(settings.directory),
        "run_id": run_id,
        "records": tap.stats.recorded,
        "malformed": tap.stats.malformed,
        "dropped": tap.records_lost,
        "lost_on_the_way": sequences.lost,
        "files": writer.stats.files if writer else 0,
        "bytes": writer.stats.bytes if writer else 0,
        "fsyncs": writer.stats.fsyncs if writer else 0,
        "write_errors": (writer.stats.write_errors if writer else 0) + tap.stats.open_errors,
        "wall_s": round(clock.now_s() - started_s, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"recorded {summary['records']} messages ({summary['malformed']} malformed, "
            f"{summary['dropped']} dropped, {summary['lost_on_the_way']} lost on the way) in "
            f"{summary['files']} file(s), {summary['bytes']} bytes, into {summary['dir']}",
            file=sys.stderr,
        )
    return 0 if tap.records_lost == 0 else 1


# --- fsw replay -----------------------------------------------------------------------


def _replay_deployment(args: argparse.Namespace, header: LogHeader | None) -> tuple[Deployment, str, str]:
    """The deployment of a replay, its text and where it came from (see ``REPLAY_EPILOG``)."""
    from fsw import deployment as deployment_module  # noqa: PLC0415
    from fsw.cli import load_deployment  # noqa: PLC0415

    if args.deployment:
        deployment, text = load_deployment(args.deployment, args.run_dir)
        origin = args.deployment
    elif header is not None and header.deployment:
        text = header.deployment
        origin = f"recorded in {args.log}"
        try:
            deployment = deployment_module.parse(text, source=origin, run_dir=args.run_dir)
        except ConfigError as exc:
            msg = f"the deployment recorded in the log is not usable ({exc}); pass a DEPLOYMENT file"
            raise ConfigError(msg) from exc
    else:
        deployment, text = load_deployment(None, args.run_dir)
        origin = "embedded default"
    if args.broker and not args.run_dir:
        run_dir = deployment_module.default_run_dir(f"{deployment.name}-replay")
        deployment = deployment_module.parse(text, source=deployment.source, run_dir=run_dir)
    return deployment, text, origin


def _wait_on(wakeup: SignalWakeup) -> Callable[[float], None]:
    def wait(delay_s: float) -> None:
        readable, _, _ = io_select.select([wakeup.fileno()], [], [], max(0.0, delay_s))
        if readable:
            wakeup.drain()

    return wait


def _run_replay(
    args: argparse.Namespace,
    deployment: Deployment,
    text: str,
    reader: LogReader,
    selection: Selection,
    counts: SelectionCounts,
    speed: float,
) -> ReplayStats:
    """Start the broker (``--broker``), connect, replay, hold (``--hold``); close everything."""
    from fsw.process import SignalWakeup  # noqa: PLC0415
    from hil.replay import (  # noqa: PLC0415
        BROKER_START_TIMEOUT_S,
        CONNECT_TIMEOUT_S,
        Replayer,
        ReplayStats,
        StandaloneBroker,
    )

    out = sys.stderr
    stats = ReplayStats(interrupted=True)
    wakeup = SignalWakeup()
    broker: StandaloneBroker | None = None
    replayer: Replayer | None = None

    def stopped() -> bool:
        return wakeup.stop_requested

    try:
        if args.broker:
            broker = StandaloneBroker(deployment, text, grace_s=deployment.restart.grace_s)
            print(
                f"fsw replay: broker started; listeners subscribe at {deployment.bus.subscribe} "
                f"(run dir {deployment.run_dir})",
                file=out,
                flush=True,
            )
        replayer = Replayer(
            deployment.bus.publish,
            deployment.bus.subscribe,
            high_water_mark=deployment.bus.high_water_mark,
            wait=_wait_on(wakeup),
            # The broker's own heartbeat echo is no listener.
            ignore_subscriptions=(b"hb.bus.",) if broker is not None else (),
        )
        timeout_s = args.connect_timeout or (BROKER_START_TIMEOUT_S if broker else CONNECT_TIMEOUT_S)
        check = broker.check_alive if broker is not None else None
        if not replayer.connect(timeout_s, should_stop=stopped, check=check):
            return stats
        if args.wait_subscriber:
            print("fsw replay: waiting for a subscriber", file=out, flush=True)
            if not replayer.connect(
                args.wait_timeout, subscriber_for=selection.topics, should_stop=stopped, check=check
            ):
                return stats
        stats = replayer.replay(select(reader, selection, counts), speed=speed, should_stop=stopped)
        replayer.round_trip()
        if args.hold and broker is not None and not stats.interrupted:
            print("fsw replay: done; the broker stays up until Ctrl-C", file=out, flush=True)
            wait = _wait_on(wakeup)
            while not wakeup.stop_requested:
                broker.check_alive()
                wait(1.0)
        return stats
    finally:
        if replayer is not None:
            replayer.close()
        if broker is not None:
            broker.close()
        wakeup.close()


def cmd_replay(args: argparse.Namespace) -> int:
    """``fsw replay``: re-publish a recording onto a bus."""
    from fsw.run import parse_speed  # noqa: PLC0415
    from hil.replay import DEFAULT_TOPICS  # noqa: PLC0415

    if args.hold and not args.broker:
        msg = "--hold keeps the replay's own broker up: it needs --broker"
        raise ConfigError(msg)
    reader = LogReader(args.log)
    header = first_header(args.log)
    speed = parse_speed(args.speed) if args.speed else 1.0
    selection = _selection(args, (b"",) if args.all else DEFAULT_TOPICS, args.include_malformed)
    deployment, text, origin = _replay_deployment(args, header)
    counts = SelectionCounts()
    try:
        stats = _run_replay(args, deployment, text, reader, selection, counts, speed)
    finally:
        reader.close()
    damage = _log_damage(reader.stats)
    summary = {
        "log": str(args.log),
        "deployment": origin,
        "publish": deployment.bus.publish,
        "subscribe": deployment.bus.subscribe,
        "broker": bool(args.broker),
        "records": counts.records,
        "selected": counts.selected,
        "malformed_skipped": counts.malformed_skipped,
        "filtered_out": counts.filtered_out,
        **stats.to_json(),
        "log_bytes_skipped": reader.stats.total.bytes_skipped,
        "log_bytes_torn": reader.stats.total.bytes_torn,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"replayed {stats.sent} of {counts.records} records ({counts.filtered_out} not selected, "
            f"{counts.malformed_skipped} malformed skipped, {stats.dropped} dropped) in "
            f"{stats.wall_s:.2f} s ({stats.rate_per_s:.0f}/s)" + (f"; log: {damage}" if damage else ""),
            file=sys.stderr,
        )
    if stats.interrupted:
        return 130
    return 0 if stats.dropped == 0 else 1


# --- fsw log --------------------------------------------------------------------------


def _log_summary(path: str) -> dict[str, Any]:
    reader = LogReader(path)
    topics: Counter[str] = Counter()
    headers: list[dict[str, Any]] = []
    records = malformed = 0
    t_min = t_max = w_min = w_max = None
    with reader:
        for record in reader:
            if isinstance(record, LogHeader):
                headers.append(
                    {
                        "base": record.base,
                        "run_id": record.run_id,
                        "file_index": record.file_index,
                        "created": _utc(record.created_unix_s),
                        "version": record.version,
                        "deployment_bytes": len(record.deployment.encode()),
                    }
                )
                continue
            records += 1
            topic = _topic_text(record.topic)
            if topic not in topics and len(topics) >= MAX_TOPICS_COUNTED:
                topic = OTHER_TOPICS
            topics[topic] += 1
            if not record.ok:
                malformed += 1
            elif math.isfinite(record.t_s):
                t_min = record.t_s if t_min is None else min(t_min, record.t_s)
                t_max = record.t_s if t_max is None else max(t_max, record.t_s)
            w_min = record.wall_unix_s if w_min is None else min(w_min, record.wall_unix_s)
            w_max = record.wall_unix_s if w_max is None else max(w_max, record.wall_unix_s)
    total = reader.stats.total
    return {
        "path": path,
        "files": [
            {
                "file": str(r.path),
                "bytes": r.counts.bytes_total,
                "records": r.counts.records - r.headers,
                "headers": r.headers,
                "bytes_kept": r.counts.bytes_kept,
                "bytes_skipped": r.counts.bytes_skipped,
                "bytes_torn": r.counts.bytes_torn,
                "error": r.error,
            }
            for r in reader.stats.files
        ],
        "runs": sorted({h["run_id"] for h in headers}),
        "bases": sorted({h["base"] for h in headers}),
        "headers": headers,
        "records": records,
        "malformed": malformed,
        "mission_time_s": [t_min, t_max],
        "wall_time": [_utc(w_min), _utc(w_max)],
        "wall_s": round(w_max - w_min, 3) if w_min is not None and w_max is not None else 0.0,
        "bytes": {
            "total": total.bytes_total,
            "kept": total.bytes_kept,
            "skipped": total.bytes_skipped,
            "torn": total.bytes_torn,
        },
        "skipped_by_reason": total.skipped_by_reason,
        "skipped_regions": total.skipped_regions,
        "topics": dict(sorted(topics.items())),
    }


def cmd_log_info(args: argparse.Namespace) -> int:
    """``fsw log info``: files, records, time span, counts per topic, damage."""
    info = _log_summary(args.log)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    out = sys.stdout
    b = info["bytes"]
    print(f"log {info['path']}: {len(info['files'])} file(s), {b['total']} bytes", file=out)
    print(f"  base {', '.join(info['bases']) or '-'}; run(s) {', '.join(info['runs']) or '-'}", file=out)
    t_min, t_max = info["mission_time_s"]
    span = f"{t_min:.3f} .. {t_max:.3f} s" if t_min is not None and t_max is not None else "-"
    print(f"  records {info['records']} ({info['malformed']} malformed); mission time {span}", file=out)
    print(f"  wall time {info['wall_time'][0]} .. {info['wall_time'][1]} ({info['wall_s']} s)", file=out)
    reasons = ", ".join(f"{k} {v}" for k, v in info["skipped_by_reason"].items() if v)
    print(
        f"  bytes kept {b['kept']}, skipped {b['skipped']}"
        + (f" ({reasons})" if reasons else "")
        + f", torn tail {b['torn']}",
        file=out,
    )
    print("  files:", file=out)
    for f in info["files"]:
        note = f"  ERROR {f['error']}" if f["error"] else ""
        print(
            f"    {Path(f['file']).name:<32} {f['bytes']:>12} B {f['records']:>9} records "
            f"skipped {f['bytes_skipped']} torn {f['bytes_torn']}{note}",
            file=out,
        )
    print("  topics:", file=out)
    width = max((len(t) for t in info["topics"]), default=10)
    for topic, count in info["topics"].items():
        print(f"    {topic:<{width}} {count:>9}", file=out)
    return 0


def _dump_lines(reader: LogReader, selection: Selection) -> Iterator[dict[str, Any]]:
    from fsw.errors import CodecError  # noqa: PLC0415
    from fsw.messages import decode  # noqa: PLC0415
    from hil.replay import body_preview, envelope_json  # noqa: PLC0415

    counts = SelectionCounts()
    headers_seen = 0
    for item in select(reader, selection, counts):
        while headers_seen < len(counts.headers):
            h = counts.headers[headers_seen]
            headers_seen += 1
            yield {
                "k": "header",
                "base": h.base,
                "run_id": h.run_id,
                "file_index": h.file_index,
                "created_unix_s": h.created_unix_s,
                "version": h.version,
                "deployment_bytes": len(h.deployment.encode()),
            }
        record = item.record
        line: dict[str, Any] = {
            "k": "bus",
            "t": record.t_s,
            "w": record.wall_unix_s,
            "topic": _topic_text(record.topic),
            "ok": record.ok,
        }
        if record.frames is not None:
            line["frames"] = len(record.frames)
        try:
            if record.frames is not None:
                msg = f"message has {len(record.frames)} frames, expected 2 (topic, body)"
                raise CodecError(msg)
            line["envelope"] = envelope_json(decode(record.topic, record.body))
        except CodecError as exc:
            line["error"] = str(exc)
            line["body_hex"] = body_preview(record.body)
        yield line


def cmd_log_dump(args: argparse.Namespace) -> int:
    """``fsw log dump``: one line per record (JSON lines with ``--json``)."""
    selection = _selection(args, (b"",), include_malformed=True)
    reader = LogReader(args.log)
    out = sys.stdout
    with reader:
        for line in _dump_lines(reader, selection):
            if args.json:
                out.write(json.dumps(line, default=_json_default) + "\n")
            elif line["k"] == "header":
                out.write(
                    f"# header base={line['base']} run={line['run_id']} file={line['file_index']} "
                    f"created={_utc(line['created_unix_s'])}\n"
                )
            elif "envelope" in line:
                envelope = line["envelope"]
                data = json.dumps(envelope["data"], default=_json_default, separators=(",", ":"))
                out.write(f"{line['t']:12.3f} {line['topic']} seq={envelope['seq']} {data}\n")
            else:
                out.write(f"{line['t']:12.3f} {line['topic']} MALFORMED {line['error']}\n")
    damage = _log_damage(reader.stats)
    if damage:
        print(f"fsw log dump: {damage}", file=sys.stderr)
    return 0


def cmd_log_filter(args: argparse.Namespace) -> int:
    """``fsw log filter``: copy the selected records into a new log."""
    out_dir = Path(args.out)
    sources = log_files(args.log)
    if out_dir.exists():
        if not out_dir.is_dir():
            msg = f"--out {out_dir} exists and is not a directory"
            raise ConfigError(msg)
        if any(p.resolve().parent == out_dir.resolve() for p in sources):
            msg = f"--out {out_dir} is where the log is read from; choose another directory"
            raise ConfigError(msg)
        if any(p.name.endswith(".fswlog") for p in out_dir.iterdir()):
            msg = f"--out {out_dir} already holds a log; choose an empty directory"
            raise ConfigError(msg)
    selection = _selection(args, (b"",), include_malformed=not args.drop_malformed)
    reader = LogReader(args.log)
    counts = SelectionCounts()
    writer: LogWriter | None = None
    files = written = 0
    try:
        with reader:
            for item in select(reader, selection, counts):
                header = counts.headers[-1] if counts.headers else None
                run_id = header.run_id if header is not None else "filtered"
                if writer is None or writer.run_id != run_id:
                    if writer is not None:
                        files += writer.stats.files
                        writer.close()
                    writer = LogWriter(
                        out_dir,
                        base=header.base if header is not None else "",
                        run_id=run_id,
                        deployment_text=header.deployment if header is not None else "",
                    )
                writer.write(item.record)
                written += 1
    except OSError as exc:
        msg = f"cannot write the filtered log into {out_dir}: {exc}"
        raise ConfigError(msg) from exc
    finally:
        if writer is not None:
            files += writer.stats.files
            writer.close()
    damage = _log_damage(reader.stats)
    print(
        f"wrote {written} of {counts.records} records into {out_dir} ({files} file(s))"
        + (f"; input: {damage}" if damage else ""),
        file=sys.stderr,
    )
    return 0


def cmd_log_plot(args: argparse.Namespace) -> int:
    """``fsw log plot``: housekeeping points of a log against mission time, into a PNG."""
    from hil.plot import plot, series  # noqa: PLC0415 - matplotlib only when plotting

    data = series(
        args.log,
        args.points,
        since_s=_mission_seconds(args.since, "--since"),
        until_s=_mission_seconds(args.until, "--until"),
    )
    path = plot(data.values(), args.out, title=args.title or "")
    samples = sum(len(s.t_s) for s in data.values())
    print(f"wrote {path} ({len(data)} points, {samples} samples)", file=sys.stderr)
    return 0


# --- registration ---------------------------------------------------------------------


def _add_deployment_args(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("deployment", nargs="?", help=f"deployment file (TOML); default: {what}")
    parser.add_argument("--run-dir", help="run directory of the base (sockets)")


def _add_selection_args(parser: argparse.ArgumentParser, topics_help: str) -> None:
    parser.add_argument("--topics", "--topic", nargs="+", metavar="PREFIX", help=topics_help)
    parser.add_argument("--since", metavar="T", help="from this mission time on: 90s, 10min, 1h, or seconds")
    parser.add_argument("--until", metavar="T", help="up to this mission time (inclusive)")


def register(subparsers: Any) -> None:
    """Add ``record``, ``replay`` and ``log`` to the ``fsw`` command (entry point ``fsw.commands``)."""
    record = subparsers.add_parser(
        "record",
        help="record everything on a running base's bus into a log",
        description="Attach to a running base's bus and record every message, malformed ones "
        "included, into an append-only log in DIR until Ctrl-C or --duration of wall time.",
        epilog=RECORD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("dir", help="directory of the log (created if missing)")
    _add_deployment_args(record, "the embedded default base")
    record.add_argument("--fsync", choices=FSYNC_POLICIES, default="interval", help="when to fsync")
    record.add_argument(
        "--fsync-interval", type=float, default=1.0, metavar="S", help="seconds between fsyncs (interval)"
    )
    record.add_argument("--max-file-bytes", type=int, metavar="N", help="start a new file at this size")
    record.add_argument("--duration", help="stop after this much wall time: 90s, 10min, 1h")
    record.add_argument(
        "--connect-timeout",
        type=float,
        default=RECORD_CONNECT_TIMEOUT_S,
        metavar="S",
        help="give up if no message arrives within S seconds (default 5)",
    )
    record.add_argument("--json", action="store_true", help="print the summary as JSON")
    record.set_defaults(func=cmd_record)

    replay = subparsers.add_parser(
        "replay",
        help="re-publish a recording onto a bus, paced by mission time",
        description="Publish the recorded frames of LOG (a file or a directory), byte for byte and in "
        "recorded order, onto a bus: by default telemetry and events, paced by their mission time at "
        "--speed (1 = real time).",
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("log", help="log file or directory")
    _add_deployment_args(replay, "the one recorded in the log")
    replay.add_argument("--speed", help="N times the recorded pace, or 'max' (default 1)")
    _add_selection_args(replay, "topic prefixes to replay (default: tlm. evt.)")
    replay.add_argument("--all", action="store_true", help="replay everything: ticks, heartbeats, acks too")
    replay.add_argument("--include-malformed", action="store_true", help="also re-send malformed frames")
    replay.add_argument("--broker", action="store_true", help="start a broker of its own for the replay")
    replay.add_argument("--hold", action="store_true", help="with --broker: keep it up after the replay")
    replay.add_argument(
        "--wait-subscriber", action="store_true", help="start only once someone subscribes to the topics"
    )
    replay.add_argument(
        "--wait-timeout", type=float, default=60.0, metavar="S", help="for --wait-subscriber (default 60)"
    )
    replay.add_argument(
        "--connect-timeout",
        type=float,
        metavar="S",
        help="for the bus to answer (default 10, 15 with --broker)",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.set_defaults(func=cmd_replay)

    log = subparsers.add_parser("log", help="inspect and filter recorded logs")
    log_sub = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    info = log_sub.add_parser("info", help="files, records, time span, counts per topic, damage")
    info.add_argument("log", help="log file or directory")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_log_info)
    dump = log_sub.add_parser("dump", help="one line per record: mission time, topic, envelope or error")
    dump.add_argument("log", help="log file or directory")
    _add_selection_args(dump, "only topics with these prefixes")
    dump.add_argument("--json", action="store_true", help="JSON lines")
    dump.set_defaults(func=cmd_log_dump)
    filt = log_sub.add_parser("filter", help="write the selected records into a new log")
    filt.add_argument("log", help="log file or directory")
    filt.add_argument("--out", required=True, metavar="DIR", help="directory of the new log (empty)")
    _add_selection_args(filt, "only topics with these prefixes")
    filt.add_argument("--drop-malformed", action="store_true", help="leave malformed frames out")
    filt.set_defaults(func=cmd_log_filter)
    plot = log_sub.add_parser(
        "plot",
        help="plot housekeeping points against mission time into a PNG (needs the ground extra)",
    )
    plot.add_argument("log", help="log file or directory")
    plot.add_argument("points", nargs="+", metavar="SOURCE.POINT", help="e.g. power.battery_soc")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="image to write")
    plot.add_argument("--title", help="title above the panels")
    plot.add_argument("--since", metavar="T", help="from this mission time on: 90s, 10min, 1h, 2d")
    plot.add_argument("--until", metavar="T", help="up to this mission time (inclusive)")
    plot.set_defaults(func=cmd_log_plot)


__all__ = [
    "cmd_log_dump",
    "cmd_log_filter",
    "cmd_log_info",
    "cmd_log_plot",
    "cmd_record",
    "cmd_replay",
    "first_header",
    "register",
]
