"""Ground link throughput: authenticated telecommands verified per second, and the archive's ingest rate.

    python bench/link.py [--quick] [--rounds N] [--write docs/performance.md]

Two figures, each against a baseline measured in the same run, in interleaved rounds (the
order flips every round):

1. **Telecommands verified per second.** The default base (``subsystems/base.toml``) runs
   under ``fsw up`` in real time, its relay orbiter always in view (the link is up), comms
   on its shipped 1 Hz cycle. This process talks to comms' UDP port directly (loopback, no
   simulated space link, so no light time), with the base's own key file: telecommands
   built beforehand with :func:`fsw.spacelink.encode_tc` (key id, sequence number, HMAC
   trailer), sent with at most ``--window`` outstanding, each verified when its TM[1,7]
   completion report comes back. Two kinds: TC[17,1] are-you-alive (answered by comms:
   TM[1,1], TM[17,2], TM[1,7]) and TC[8,1] ``power noop`` (through the router to the power
   process and back: TM[1,1], TM[1,3], TM[1,7]). Everything the base does per
   telecommand is inside: framing and CRC check, the MAC, the anti-replay window saved
   to SQLite once per batch before any of it runs, the dispatch, the reports encoded as
   PUS telemetry and queued on the downlink, and sent. The flood guard (``tc_rate_per_s``,
   2,000/s shipped) and the simulated radio's downlink rate (2 Mbit/s relay, 10 Mbit/s
   direct, shipped) are raised in the benchmark's deployment (to 1,000,000/s and
   100 Mbit/s) so that the software's capacity is measured, not the guard or the radio;
   the section states what the shipped radio rates allow. Baseline: a Python process on
   a UDP socket that answers every datagram with three datagrams of the same sizes
   carrying its request id, no parsing and no checks, driven by the same client code
   with the same window.
2. **Telemetry packets the archive ingests per second.** A mix of the base's downlink
   (housekeeping of every process, events, verification reports) encoded with the flight
   encoders, then decoded (:class:`ground.telemetry.TelemetryDecoder`) and written with
   :meth:`ground.archive.Archive.write` in batches of the station's flush size, as the
   station does. Baseline: plain ``sqlite3`` inserts of the same bytes (id, time, blob) in
   the same batches, WAL and ``synchronous = NORMAL`` like the archive, in a fresh file on
   the same file system.

Targets (issue 6): at least 1,000 telecommands verified per second, at least 20,000
telemetry packets ingested per second. ``--quick`` runs one short round of each.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import os
import random
import select
import shlex
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bases
import report
from harness import ROOT, ProcessGroup, QuietPolicy, median, percentiles_ns

from fsw.dictionary import ArgType
from fsw.security import load_key_file
from fsw.spacelink import (
    TC_FUNCTION,
    TC_PING,
    HousekeepingLayout,
    Telecommand,
    decode_service,
    encode_tc,
    encode_tm,
    event_data,
    mac,
    parse_tc,
    parse_verification,
    verification_data,
    verify_mac,
)
from ground.archive import Archive, to_json_text
from ground.mission import MissionDatabase, link_defaults
from ground.station import FLUSH_PACKETS
from ground.telemetry import TelemetryDecoder
from hil.testing import merge_toml
from subsystems.deployment import DEFAULT_DEPLOYMENT

SECTION = "## Ground link: telecommands verified and telemetry archived"

#: Byte offsets in a PUS-C TM: service, subtype, and the source data (request id of TM[1,x]).
_SERVICE, _SUBTYPE, _DATA = 7, 8, 20
#: Seconds a telecommand may go unanswered before it counts as lost.
LOST_AFTER_S = 5.0
#: Telecommands sent before each timed run (not counted).
WARMUP = 200
#: The flood guard in the benchmark's deployment (telecommands/s): above anything measured.
BENCH_TC_RATE_PER_S = 1_000_000
#: The simulated radio's downlink rate in the benchmark's deployment (bit/s; Ka band's upper end).
BENCH_RADIO_BPS = 100_000_000
#: The shipped radio's rates (bit/s): relay orbiter, direct-to-Earth.
SHIPPED_RADIO_BPS = {"relay": 2_000_000, "direct-to-Earth": 10_000_000}


def log(text: str) -> None:
    """Progress on standard error."""
    print(text, file=sys.stderr, flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----------------------------------------------------------------- telecommands


@dataclass
class RunResult:
    """One timed run of telecommands: how many were verified, how fast, and their round trips."""

    sent: int
    verified: int
    failed: int
    lost: int
    elapsed_s: float
    round_trips_ns: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.verified / self.elapsed_s if self.elapsed_s > 0 else 0.0


class LinkClient:
    """Sends prebuilt telecommands with at most ``window`` outstanding; counts TM[1,7] answers.

    The request id of a telecommand is its first four bytes (packet id, sequence control);
    a verification report carries it at the start of its source data.
    """

    def __init__(self, address: tuple[str, int], window: int) -> None:
        self.address = address
        self.window = window
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        #: The newest TM[3,25] source data of each APID heard (the base's housekeeping).
        self.housekeeping: dict[int, bytes] = {}

    def close(self) -> None:
        self.sock.close()

    def run(self, packets: list[bytes]) -> RunResult:
        """Send every packet of ``packets``, the window full; wait for each one's final report."""
        outstanding: dict[bytes, int] = {}
        result = RunResult(len(packets), 0, 0, 0, 0.0)
        sock, window, address = self.sock, self.window, self.address
        pending = iter(packets)
        exhausted = False
        started = time.perf_counter_ns()
        lost_after_ns = int(LOST_AFTER_S * 1e9)
        while not exhausted or outstanding:
            while not exhausted and len(outstanding) < window:
                packet = next(pending, None)
                if packet is None:
                    exhausted = True
                    break
                outstanding[packet[:4]] = time.perf_counter_ns()
                sock.sendto(packet, address)
            ready, _, _ = select.select([sock], [], [], 0.5)
            now = time.perf_counter_ns()
            if ready:
                while True:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        break
                    if len(data) < _DATA + 6 or data[_SERVICE] != 1:
                        if data[_SERVICE : _SUBTYPE + 1] == b"\x03\x19":
                            self.housekeeping[(data[0] & 0x07) << 8 | data[1]] = data[_DATA:-2]
                        continue
                    subtype, request = data[_SUBTYPE], data[_DATA : _DATA + 4]
                    sent_ns = outstanding.get(request)
                    if sent_ns is None:
                        continue
                    if subtype == 7:
                        del outstanding[request]
                        result.verified += 1
                        result.round_trips_ns.append(now - sent_ns)
                    elif subtype in (2, 4, 8):
                        del outstanding[request]
                        result.failed += 1
                        if len(result.failures) < 5:
                            _, code, reason = parse_verification(data[_DATA:-2])
                            result.failures.append(f"TM[1,{subtype}] code {code}: {reason}")
            for request, sent_ns in list(outstanding.items()):
                if now - sent_ns > lost_after_ns:
                    del outstanding[request]
                    result.lost += 1
        result.elapsed_s = (time.perf_counter_ns() - started) / 1e9
        return result


class Telecommands:
    """Authenticated telecommands for the base under test, numbered across the whole run."""

    def __init__(self, key_path: Path, mission: MissionDatabase) -> None:
        ring = load_key_file(key_path)
        self.key_id = ring.active
        self.key = ring.key(ring.active)
        self.mission = mission
        self.sequence = 1
        self.seq_count = 0

    def build(self, count: int, kind: str) -> list[bytes]:
        """``count`` telecommands: ``ping`` (TC[17,1] to comms) or ``noop`` (TC[8,1] power noop)."""
        packets = []
        for _ in range(count):
            if kind == "ping":
                apid, (service, subtype), command = self.mission.apids["comms"], TC_PING, None
            else:
                apid, (service, subtype), command = self.mission.apids["power"], TC_FUNCTION, "noop"
            tc = Telecommand(apid, service, subtype, self.seq_count, self.key_id, self.sequence, command)
            packets.append(encode_tc(tc, self.key))
            self.sequence += 1
            self.seq_count = (self.seq_count + 1) & 0x3FFF
        return packets


def _serve_echo(
    port_out: multiprocessing.connection.Connection, stop: multiprocessing.synchronize.Event
) -> None:
    """The baseline: every datagram answered by three of the sizes the base sends, with its request id."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    port_out.send(sock.getsockname()[1])
    replies = [
        encode_tm(0x12, (1, 1), bytes(4), unix_s=1.9e9),
        encode_tm(0x12, (17, 2), b"", unix_s=1.9e9),
        encode_tm(0x12, (1, 7), bytes(4), unix_s=1.9e9),
    ]
    heads = [(r[:_DATA], r[_DATA + 4 :]) for r in replies[::2]]
    pong = replies[1]
    while not stop.is_set():
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        data, sender = sock.recvfrom(65536)
        request = data[:4]
        sock.sendto(heads[0][0] + request + heads[0][1], sender)
        sock.sendto(pong, sender)
        sock.sendto(heads[1][0] + request + heads[1][1], sender)
    sock.close()


def link_deployment(udp_port: int, relay_port: int) -> str:
    """The default base with comms' UDP port, the relay always in view, the flood guard and the
    radio's downlink rate raised (so that neither bounds the figure)."""
    return merge_toml(
        DEFAULT_DEPLOYMENT,
        f"""
[processes.comms.params]
link_udp = "127.0.0.1:{udp_port}"
link_tcp = ""
tc_rate_per_s = {BENCH_TC_RATE_PER_S}

[processes.spacelink.params]
ground_udp = "127.0.0.1:{relay_port}"

[processes.simulator.params.comms]
relay_in_view_s = 86400.0
dte_rate_bps = {BENCH_RADIO_BPS}
relay_rate_bps = {BENCH_RADIO_BPS}
""",
    )


def wait_for_link(client: LinkClient, commands: Telecommands, timeout_s: float = 60.0) -> None:
    """Ping until the base verifies one (its link comes up at comms' first cycle)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.run(commands.build(1, "ping")).verified:
            return
        time.sleep(0.5)  # comms' cycle is 1 s: the link comes up on one of them
    raise RuntimeError(f"the base verified no ping within {timeout_s:g} s")


@dataclass
class CommandResults:
    """Per kind: the base's runs and the echo baseline's, round by round."""

    base: dict[str, list[RunResult]] = field(default_factory=dict)
    echo: list[RunResult] = field(default_factory=list)
    disturbed: list[bool] = field(default_factory=list)
    codec_us: dict[str, float] = field(default_factory=dict)
    #: comms' mode and downlink rate (bit/s) in its last housekeeping heard on the link.
    radio: tuple[str, float] | None = None
    window: int = 0
    count: int = 0
    rounds: int = 0


def measure_commands(
    group: ProcessGroup, quiet: QuietPolicy, rounds: int, count: int, window: int
) -> CommandResults:
    """Start the base and the echo server; run the interleaved rounds."""
    results = CommandResults(window=window, count=count, rounds=rounds)
    udp_port, relay_port = free_udp_port(), free_udp_port()
    base = bases.BaseUnderTest(
        "default base (subsystems/base.toml), relay in view, comms UDP direct",
        link_deployment(udp_port, relay_port),
    )
    log("starting the base (fsw up, real time)")
    running = bases.start_base(group, base)
    mission = MissionDatabase.from_deployment(running.deployment)
    keys = link_defaults(running.deployment).keys
    deadline = time.monotonic() + 30.0
    while not keys.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the base made no key file at {keys}")
        time.sleep(0.1)
    commands = Telecommands(keys, mission)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    echo = multiprocessing.Process(target=_serve_echo, args=(sender, stop), daemon=True)
    echo.start()
    try:
        echo_port = receiver.recv()
        base_client = LinkClient(("127.0.0.1", udp_port), window)
        echo_client = LinkClient(("127.0.0.1", echo_port), window)
        try:
            wait_for_link(base_client, commands)
            for kind in ("ping", "noop"):
                base_client.run(commands.build(WARMUP, kind))
            echo_client.run(commands.build(WARMUP, "ping"))
            results.base = {"ping": [], "noop": []}
            for index in range(rounds):
                order = ["echo", "ping", "noop"] if index % 2 == 0 else ["noop", "ping", "echo"]
                disturbed = False
                for what in order:
                    client = echo_client if what == "echo" else base_client
                    kind = "ping" if what == "echo" else what

                    def run(client: LinkClient = client, kind: str = kind) -> RunResult:
                        return client.run(commands.build(count, kind))  # fresh sequence numbers each attempt

                    result, was_disturbed = quiet.run(f"{what} round {index + 1}", run)
                    disturbed |= was_disturbed
                    (results.echo if what == "echo" else results.base[what]).append(result)
                    log(
                        f"  round {index + 1} {what}: {result.rate:,.0f}/s verified "
                        f"({result.verified}/{result.sent}, failed {result.failed}, lost {result.lost})"
                    )
                results.disturbed.append(disturbed)
            results.radio = radio_state(base_client, mission)
        finally:
            base_client.close()
            echo_client.close()
    finally:
        stop.set()
        echo.join(5.0)
        if echo.is_alive():
            echo.kill()
    results.codec_us = codec_costs(commands, mission)
    return results


#: Downlink bytes of one verified TC[17,1]: TM[1,1], TM[17,2], TM[1,7].
REPORT_BYTES = sum(
    len(encode_tm(1, kind, data, unix_s=1.9e9))
    for kind, data in (((1, 1), bytes(4)), ((17, 2), b""), ((1, 7), bytes(4)))
)


def radio_state(client: LinkClient, mission: MissionDatabase) -> tuple[str, float] | None:
    """comms' mode and downlink rate from its newest housekeeping the client heard."""
    apid = mission.apids["comms"]
    data = client.housekeeping.get(apid)
    if data is None:
        return None
    values = HousekeepingLayout(apid, mission.points_of("comms")).unpack(data)
    return str(values.get("mode")), float(values.get("downlink_rate_bps") or 0.0)


def codec_costs(commands: Telecommands, mission: MissionDatabase) -> dict[str, float]:
    """µs per call of the pieces of one telecommand's path, in this process (best of 5)."""
    key = commands.key
    ping = commands.build(1, "ping")[0]
    noop = commands.build(1, "noop")[0]
    raw = parse_tc(noop)
    apid = mission.apids["comms"]

    def best(fn: Callable[[], object], n: int = 5000) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter_ns()
            for _ in range(n):
                fn()
            times.append((time.perf_counter_ns() - started) / n / 1000.0)
        return min(times)

    tc = Telecommand(apid, 17, 1, 1, commands.key_id, 1)
    return {
        "encode_tc (TC[17,1], MAC included)": best(lambda: encode_tc(tc, key)),
        "parse_tc (framing, CRC)": best(lambda: parse_tc(ping)),
        "verify_mac (HMAC-SHA256)": best(lambda: verify_mac(raw, key)),
        "mac alone (hmac.new + digest)": best(lambda: mac(key, raw.covered)),
        "decode_service (TC[8,1], msgpack)": best(lambda: decode_service(raw)),
        "encode_tm (TM[1,7])": best(
            lambda: encode_tm(apid, (1, 7), verification_data(raw.request), unix_s=1.9e9)
        ),
    }


# ----------------------------------------------------------------- the archive


def telemetry_mix(mission: MissionDatabase, count: int, seed: int = 1) -> list[bytes]:
    """``count`` packets as the base sends them: every process's housekeeping each second,
    and three events and three verification reports a second, with values of every type."""
    rng = random.Random(seed)
    sources = [name for name in mission.dictionaries if name in mission.apids]
    layouts = {name: HousekeepingLayout(mission.apids[name], mission.points_of(name)) for name in sources}

    def value(kind: ArgType, index: int) -> Any:
        if kind is ArgType.FLOAT:
            return rng.uniform(-1e3, 1e4)
        if kind is ArgType.INT:
            return rng.randrange(0, 10**6)
        if kind is ArgType.BOOL:
            return rng.random() < 0.5
        return ("NOMINAL", "SAFE", "POWER", "RELAY", "")[index % 5]

    packets: list[bytes] = []
    second = 0
    while len(packets) < count:
        unix_s = 1.9e9 + second
        for name in sources:
            layout = layouts[name]
            values = {p.name: value(p.type, i) for i, p in enumerate(layout.points)}
            packets.append(encode_tm(layout.structure_id, (3, 25), layout.pack(values), unix_s=unix_s))
        for name in ("power", "reactor", "protection"):
            events = mission.dictionaries[name].events
            index = rng.randrange(len(events))
            data = event_data(index, {"value": rng.uniform(0, 100), "mode": "NOMINAL"})
            packets.append(encode_tm(mission.apids[name], (5, 1), data, unix_s=unix_s))
        for subtype in (1, 3, 7):
            request = bytes((0x18, 0x10, 0xC0, second & 0xFF))
            packets.append(
                encode_tm(mission.apids["power"], (1, subtype), verification_data(request), unix_s=unix_s)
            )
        second += 1
    return packets[:count]


def ingest_station(mission: MissionDatabase, packets: list[bytes], path: Path) -> float:
    """Packets/s: decode each and write them to a fresh archive in the station's batches."""
    decoder = TelemetryDecoder(mission)
    with Archive(path) as archive:
        started = time.perf_counter()
        for first in range(0, len(packets), FLUSH_PACKETS):
            received_s = time.time()
            batch = [decoder.decode(raw, received_s) for raw in packets[first : first + FLUSH_PACKETS]]
            archive.write(batch, ())
        elapsed = time.perf_counter() - started
    return len(packets) / elapsed


def ingest_archive_only(mission: MissionDatabase, packets: list[bytes], path: Path) -> float:
    """Packets/s: the archive's write alone, of packets decoded beforehand."""
    decoder = TelemetryDecoder(mission)
    decoded = [decoder.decode(raw, 1.9e9) for raw in packets]
    with Archive(path) as archive:
        started = time.perf_counter()
        for first in range(0, len(decoded), FLUSH_PACKETS):
            archive.write(decoded[first : first + FLUSH_PACKETS], ())
        elapsed = time.perf_counter() - started
    return len(packets) / elapsed


def ingest_raw_sqlite(packets: list[bytes], path: Path) -> float:
    """Packets/s: the baseline, plain inserts of the same bytes (id, time, blob), same batches."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(
            "CREATE TABLE packets (id INTEGER PRIMARY KEY, received_s REAL NOT NULL, raw BLOB NOT NULL)"
        )
        started = time.perf_counter()
        for first in range(0, len(packets), FLUSH_PACKETS):
            received_s = time.time()
            rows = [(received_s, raw) for raw in packets[first : first + FLUSH_PACKETS]]
            db.execute("BEGIN")
            db.executemany("INSERT INTO packets (received_s, raw) VALUES (?, ?)", rows)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        db.close()
    return len(packets) / elapsed


@dataclass
class ArchiveResults:
    station: list[float] = field(default_factory=list)
    archive_only: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    disturbed: list[bool] = field(default_factory=list)
    count: int = 0
    mean_bytes: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)
    filesystem: str = ""
    #: µs per packet of the station's pieces, in this process.
    costs_us: dict[str, float] = field(default_factory=dict)


def measure_archive(quiet: QuietPolicy, rounds: int, count: int) -> ArchiveResults:
    """The interleaved rounds of the archive's ingest and its baseline."""
    from fsw.deployment import load_default  # noqa: PLC0415

    mission = MissionDatabase.from_deployment(load_default())
    packets = telemetry_mix(mission, count)
    decoder = TelemetryDecoder(mission)
    for raw in packets:
        decoder.decode(raw, 0.0)
    results = ArchiveResults(
        count=count,
        mean_bytes=sum(map(len, packets)) / len(packets),
        kinds={k: v for k, v in decoder.counts.items() if v},
    )
    where = Path(tempfile.mkdtemp(prefix="fsw-link-bench-"))
    serial = itertools.count()
    results.filesystem = report_filesystem(where)
    try:
        for index in range(rounds):
            steps: list[tuple[str, Callable[[Path], float], list[float]]] = [
                ("raw sqlite3", lambda p: ingest_raw_sqlite(packets, p), results.raw),
                (
                    "station (decode + archive)",
                    lambda p: ingest_station(mission, packets, p),
                    results.station,
                ),
                (
                    "archive write alone",
                    lambda p: ingest_archive_only(mission, packets, p),
                    results.archive_only,
                ),
            ]
            if index % 2:
                steps.reverse()
            disturbed = False
            for label, run, into in steps:
                fresh = (where / f"{next(serial)}.db" for _ in iter(int, 1))  # a new file each attempt
                rate, was_disturbed = quiet.run(
                    f"{label} round {index + 1}", lambda r=run, f=fresh: r(next(f))
                )
                disturbed |= was_disturbed
                into.append(rate)
                log(f"  round {index + 1} {label}: {rate:,.0f} packets/s")
            results.disturbed.append(disturbed)
        results.costs_us = archive_costs(mission, packets[:20_000])
    finally:
        shutil.rmtree(where, ignore_errors=True)
    return results


def archive_costs(mission: MissionDatabase, packets: list[bytes]) -> dict[str, float]:
    """µs per packet of the station's pieces (best of 3): decoding, the content as JSON."""
    decoder = TelemetryDecoder(mission)
    decoded = [decoder.decode(raw, 1.9e9) for raw in packets]

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - started) / len(packets) / 1000.0)
        return min(times)

    return {
        "TelemetryDecoder.decode": best(lambda: [decoder.decode(raw, 1.9e9) for raw in packets]),
        "content as JSON (to_json_text)": best(lambda: [to_json_text(p.content) for p in decoded]),
    }


def report_filesystem(path: Path) -> str:
    """The file system type of the mount holding ``path`` ('' if unknown)."""
    best = ("", "")
    try:
        lines = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    resolved = str(path.resolve())
    for line in lines:
        _, mount, kind, *_ = line.split()
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
            best = (mount, kind)
    return best[1]


# ----------------------------------------------------------------- the report


def _quiet(values: list[float], disturbed: list[bool]) -> list[float]:
    chosen = [v for v, d in zip(values, disturbed, strict=True) if not d]
    return chosen or values


def _ratios(measured: list[float], baseline: list[float], disturbed: list[bool]) -> float:
    pairs = [(m, b) for m, b, d in zip(measured, baseline, disturbed, strict=True) if not d and b]
    return median(m / b for m, b in (pairs or list(zip(measured, baseline, strict=True))))


def section(
    commands: CommandResults | None,
    archive: ArchiveResults | None,
    command: str,
    started: str,
    elapsed_s: float,
    quiet: QuietPolicy,
) -> str:
    """The Markdown section of docs/performance.md."""
    info = report.machine()
    lines = [
        SECTION,
        "",
        "```",
        command,
        "```",
        "",
        f"Run {started}, {elapsed_s / 60:.1f} min; {info['nproc']} CPUs ({info['cpu']}), "
        f"Python {info['python']}.",
        "Medians over the rounds; the ratio is the median of the per-round ratios (measured / baseline).",
        "",
        *([quiet.warning(), ""] if quiet.warning() else []),
        "| metric | measured | baseline (same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    if commands is not None:
        echo = [r.rate for r in commands.echo]
        for kind, label in (
            ("ping", "TC[17,1] verified per second (TM[1,7] back), authenticated, UDP loopback"),
            ("noop", "TC[8,1] `power noop` verified per second (through the router), authenticated"),
        ):
            rates = [r.rate for r in commands.base[kind]]
            measured = median(_quiet(rates, commands.disturbed))
            baseline = median(_quiet(echo, commands.disturbed))
            met = "**yes**" if measured >= 1000 else "**NO**"
            ratio = _ratios(rates, echo, commands.disturbed)
            lines.append(
                f"| {label} | {measured:,.0f} /s | {baseline:,.0f} /s (raw UDP, 1 in 3 out) "
                f"| {ratio:.2f}x | ≥ 1,000 /s | {met} |"
            )
    if archive is not None:
        station = median(_quiet(archive.station, archive.disturbed))
        raw = median(_quiet(archive.raw, archive.disturbed))
        met = "**yes**" if station >= 20_000 else "**NO**"
        ratio = _ratios(archive.station, archive.raw, archive.disturbed)
        lines.append(
            f"| Telemetry packets archived per second (decode + `Archive.write`) | {station:,.0f} /s "
            f"| {raw:,.0f} /s (plain sqlite3 inserts) | {ratio:.2f}x | ≥ 20,000 /s | {met} |"
        )
    lines.append("")
    if commands is not None:
        lines += [
            "| telecommand round trip (send -> TM[1,7]) | p50 (µs) | p99 (µs) | verified | failed | lost |",
            "|---|---|---|---|---|---|",
        ]
        for label, runs in (
            ("TC[17,1] to comms", commands.base["ping"]),
            ("TC[8,1] power noop", commands.base["noop"]),
            ("baseline: raw UDP echo", commands.echo),
        ):
            samples = [ns for r in runs for ns in r.round_trips_ns]
            p50, p99 = percentiles_ns(samples, (0.5, 0.99))
            lines.append(
                f"| {label} | {p50:,.0f} | {p99:,.0f} | {sum(r.verified for r in runs):,} "
                f"| {sum(r.failed for r in runs)} | {sum(r.lost for r in runs)} |"
            )
        failures = sorted({f for runs in commands.base.values() for r in runs for f in r.failures})
        lines += [
            "",
            f"{commands.rounds} rounds of {commands.count:,} telecommands of each kind, "
            f"{commands.window} outstanding at most (comms serves at most 64 per wakeup), after "
            f"{WARMUP} of each as warm-up; every telecommand carries its own key id, sequence number "
            "and MAC (built before the timing starts). The base's flood guard is raised to "
            f"{BENCH_TC_RATE_PER_S:,}/s for the run (shipped: 2,000/s, beyond which telecommands are "
            "refused as FLOOD).",
        ]
        if commands.radio is not None:
            mode, rate_bps = commands.radio
            lines.append(
                f"The reports leave on comms' downlink like all telemetry (mode {mode} during the run, "
                f"the simulated radio's rate raised to {rate_bps / 1e6:g} Mbit/s for it); "
                "a verified TC[17,1] takes "
                f"{REPORT_BYTES} bytes of downlink (TM[1,1], TM[17,2], TM[1,7]), so at the shipped rates "
                + ", ".join(
                    f"the {name} link's {bps / 1e6:g} Mbit/s carries at most {bps / 8 / REPORT_BYTES:,.0f} /s"
                    for name, bps in SHIPPED_RADIO_BPS.items()
                )
                + " (less what housekeeping and events take)."
            )
        if failures:
            lines.append("Failure reports seen: " + "; ".join(failures) + ".")
        lines += [
            "",
            "Per telecommand in one process (µs per call, best of 5 x 5,000): "
            + ", ".join(f"{name} {us:.1f}" for name, us in commands.codec_us.items())
            + ".",
            "",
        ]
    if archive is not None:
        only = median(_quiet(archive.archive_only, archive.disturbed))
        kinds = ", ".join(f"{v:,} {k}" for k, v in archive.kinds.items())
        lines += [
            f"Archive: {archive.count:,} packets a round ({kinds}; {archive.mean_bytes:.0f} bytes on "
            f"average), in batches of {FLUSH_PACKETS:,} (the station's flush size), each run into a "
            f"fresh file on {archive.filesystem or 'the temporary directory'}; the archive's write "
            f"alone, of packets decoded beforehand: {only:,.0f} /s. The archive stores each packet's "
            "header fields, its decoded content as JSON and the raw bytes, in one transaction per "
            "batch. Per packet in one process (µs, best of 3 over 20,000): "
            + ", ".join(f"{name} {us:.1f}" for name, us in archive.costs_us.items())
            + f"; a plain insert of the baseline: {1e6 / raw:.1f}.",
            "",
        ]
    lines.append(quiet.summary())
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run, print the section, optionally write it into docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round of each")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--commands", type=int, default=5000, help="telecommands per round and kind")
    parser.add_argument("--packets", type=int, default=100_000, help="telemetry packets per archive round")
    parser.add_argument(
        "--window", type=int, default=32, help="telecommands outstanding at most (default 32)"
    )
    parser.add_argument("--only", choices=("commands", "archive"), help="run one of the two")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of this Markdown file")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.commands, args.packets = 1, 1000, 20_000
    command = shlex.join(["python", "bench/link.py", *sys.argv[1:]])
    started_wall = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    started = time.monotonic()
    quiet = QuietPolicy(60.0, log, attempts=2)
    archive = commands = None
    if args.only in (None, "archive"):
        log("archive ingest")
        archive = measure_archive(quiet, args.rounds, args.packets)
    if args.only in (None, "commands"):
        log("telecommands through the link")
        log_dir = Path(f"/tmp/fsw-bench-logs-{int(time.time())}-{os.getpid()}")
        group = ProcessGroup(log_dir)
        try:
            commands = measure_commands(group, quiet, args.rounds, args.commands, args.window)
        except BaseException:
            log(f"stopped early; the logs of every process it started are in {log_dir}")
            raise
        finally:
            group.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    text = section(commands, archive, command, started_wall, time.monotonic() - started, quiet)
    print(text)
    if args.write is not None:
        path = args.write if args.write.is_absolute() else ROOT / args.write
        report.replace_section(path, SECTION, text)
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
