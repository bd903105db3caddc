"""A recording of a simulated run, its replay onto a bus, and the ``fsw log`` commands.

One simulated base runs once for the module (``fsw up --speed max --duration 3s`` with the
recorder in its deployment, every other process started after it); the tests read,
replay and filter its log. Replays with ``--broker`` run as real ``fsw replay``
processes; the test subscribes first and the replay waits for that subscription
(``--wait-subscriber``), so nothing waits on a sleep.
"""

from __future__ import annotations

import json
import math
import os
import select as io_select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from fsw.cli import main
from fsw.errors import DeadlineMissed
from fsw.messages import decode
from fsw.timesource import FakeTime
from hil.recording import BusRecord, LogHeader, LogReader, LogWriter, Selected
from hil.replay import Replayer
from tests.conftest import WAIT_S, deployment_text

FRAMES = 30

RECORDED_BASE = """
[processes.recorder]
entry = "hil.recorder:Recorder"
params = {{ dir = "{dir}" }}

[processes.simulator]
start_after = ["recorder"]
[processes.power]
start_after = ["simulator", "recorder"]
[processes.thermal]
start_after = ["simulator", "recorder"]
[processes.comms]
start_after = ["simulator", "recorder"]
[processes.reactor]
start_after = ["simulator", "recorder"]
"""


@pytest.fixture(scope="module")
def recording() -> Iterator[Path]:
    """The log directory of a 3 s simulated run of the default base, recorded from frame 0."""
    root = Path(tempfile.mkdtemp(prefix="fsw-", dir="/tmp"))
    try:
        log_dir = root / "rec"
        path = root / "base.toml"
        path.write_text(deployment_text(RECORDED_BASE.format(dir=log_dir)), encoding="utf-8")
        done = subprocess.run(
            [
                *(sys.executable, "-m", "fsw.cli", "up", str(path), "--run-dir", str(root / "run")),
                *("--speed", "max", "--duration", f"{FRAMES / 10}s", "--json"),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        yield log_dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bus_records(path: Path) -> list[BusRecord]:
    with LogReader(path) as reader:
        return [r for r in reader if isinstance(r, BusRecord)]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the recording ------------------------------------------------------------------


def test_recording_of_a_simulated_run_starts_at_frame_0_and_misses_no_tick(recording: Path) -> None:
    records = bus_records(recording)
    assert all(r.ok for r in records)
    ticks = [decode(r.topic, r.body) for r in records if r.topic == b"tick.clock.frame"]
    assert [t.data["frame"] for t in ticks] == list(range(FRAMES))
    assert [r.t_s for r in records if r.topic == b"tick.clock.frame"] == [t.t_s for t in ticks]
    started = {decode(r.topic, r.body).source for r in records if r.topic.endswith(b".process_started")}
    assert {"power", "thermal", "comms", "reactor", "simulator", "recorder"} <= started
    power_hk = [r.t_s for r in records if r.topic == b"tlm.power.hk"]
    assert power_hk == [float(s) for s in range(FRAMES // 10)]
    with LogReader(recording) as reader:
        first = next(iter(reader))
    assert isinstance(first, LogHeader)
    assert "[processes.recorder]" in first.deployment
    assert reader.stats.total.bytes_skipped == 0


# --- replay -------------------------------------------------------------------------


class Listener:
    """An outside subscriber with only pyzmq, connected before the bus exists."""

    def __init__(self, endpoint: str, prefix: bytes) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.socket.setsockopt(zmq.SUBSCRIBE, prefix)

    def take(self, count: int, keep: object) -> list[list[bytes]]:
        got: list[list[bytes]] = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < count:
            left_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            assert self.socket.poll(left_ms), f"only {len(got)} of {count} messages arrived: {got}"
            frames = self.socket.recv_multipart()
            if keep(frames):  # type: ignore[operator]
                got.append(frames)
        return got

    def close(self) -> None:
        self.socket.close()
        self.context.term()


def start_replay(log: Path, run_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "fsw.cli", "replay", str(log), "--broker", "--hold", "--wait-subscriber"),
            *("--run-dir", str(run_dir), "--speed", "max", "--json", *args),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(replay: subprocess.Popen[bytes]) -> dict:
    """Wait until a holding replay says it is done, stop it (its broker with it), return its summary."""
    assert replay.stderr is not None
    said = b""
    deadline = time.monotonic() + WAIT_S
    while b"done;" not in said:
        ready, _, _ = io_select.select([replay.stderr], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"the replay did not finish: {said.decode(errors='replace')}"
        chunk = os.read(replay.stderr.fileno(), 4096)
        assert chunk, f"the replay exited: {said.decode(errors='replace')}"
        said += chunk
    replay.send_signal(signal.SIGTERM)
    out, err = replay.communicate(timeout=WAIT_S)
    assert replay.returncode == 0, (said + err).decode(errors="replace")
    return json.loads(out)


def test_replay_with_its_own_broker_republishes_the_telemetry_byte_for_byte_in_order(
    recording: Path, run_dir: Path
) -> None:
    recorded = [[r.topic, r.body] for r in bus_records(recording) if r.topic.startswith(b"tlm.")]
    # The replay's own broker publishes live housekeeping too: leave tlm.bus.* out of the comparison.
    expected = [f for f in recorded if not f[0].startswith(b"tlm.bus.")]
    listener = Listener(f"ipc://{run_dir}/sub", b"tlm.")
    replay = start_replay(recording, run_dir, "--topics", "tlm.")
    try:
        got = listener.take(len(expected), lambda f: not f[0].startswith(b"tlm.bus."))
        summary = finish(replay)
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.communicate()
        listener.close()
    assert got == expected
    assert summary["sent"] == summary["selected"] == len(recorded)
    assert summary["dropped"] == 0
    assert summary["broker"] is True
    assert summary["deployment"].startswith("recorded in")


def test_replay_skips_malformed_frames_unless_asked_and_sends_them_as_recorded(
    run_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    good = [
        b"tlm.a.hk",
        msgpack.packb({"v": 1, "kind": "tlm", "src": "a", "name": "hk", "t": 0.0, "seq": 0, "data": {}}),
    ]
    with LogWriter(log, base="synthetic", run_id="syn") as writer:
        writer.write_bus(good[0], good[1], t_s=0.0, ok=True)
        writer.write_bus(b"tlm.junk", b"\xc1", t_s=0.0, ok=False)
        writer.write_bus(b"tlm.three", b"x", t_s=0.0, ok=False, frames=[b"tlm.three", b"x", b"y"])
        writer.write_bus(good[0], good[1], t_s=0.1, ok=True)
    for extra, expected in (
        ((), [good, good]),
        (("--include-malformed",), [good, [b"tlm.junk", b"\xc1"], [b"tlm.three", b"x", b"y"], good]),
    ):
        listener = Listener(f"ipc://{run_dir}/sub", b"tlm.")
        replay = start_replay(log, run_dir, "--all", *extra)
        try:
            got = listener.take(len(expected), lambda f: not f[0].startswith(b"tlm.bus."))
            summary = finish(replay)
        finally:
            if replay.poll() is None:
                replay.kill()
                replay.communicate()
            listener.close()
        assert got == expected
        assert summary["malformed_skipped"] == (0 if extra else 2)


def item(t_s: float, segment: int = 0) -> Selected:
    return Selected(BusRecord(t_s, 0.0, b"tlm.a.hk", b""), t_s, segment)


def test_pacing_follows_mission_time_at_the_speed_and_restarts_with_each_run(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeTime(100.0)
    sent_at: list[float] = []
    monkeypatch.setattr(
        Replayer, "_send", staticmethod(lambda _socket, _frames: sent_at.append(clock.now_s()) or True)
    )
    items = [item(10.0), item(10.5), item(10.5), item(12.0), item(0.0, 1), item(1.0, 1)]
    with Replayer(f"ipc://{run_dir}/pub", f"ipc://{run_dir}/sub", time=clock, wait=clock.advance) as replayer:
        stats = replayer.replay(items, speed=2.0)
        assert [round(t - 100.0, 6) for t in sent_at] == [0.0, 0.25, 0.25, 1.0, 1.0, 1.5]
        assert (stats.sent, stats.first_mission_s, stats.last_mission_s) == (6, 10.0, 1.0)
        sent_at.clear()
        replayer.replay(items, speed=math.inf)
        assert len(set(sent_at)) == 1  # as fast as possible: no waiting at all
        stop_after_two = replayer.replay(items, speed=1.0, should_stop=lambda: len(sent_at) >= 8)
        assert stop_after_two.interrupted
        assert stop_after_two.sent == 2


def test_replay_without_a_bus_gives_up_at_its_deadline(run_dir: Path) -> None:
    with (
        Replayer(f"ipc://{run_dir}/pub", f"ipc://{run_dir}/sub") as replayer,
        pytest.raises(DeadlineMissed, match="probe did not come back"),
    ):
        replayer.connect(0.2)


# --- fsw log ------------------------------------------------------------------------


def test_log_info_counts_records_topics_and_time_span(
    recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "log", "info", str(recording), "--json")
    assert code == 0
    info = json.loads(out)
    records = bus_records(recording)
    assert info["records"] == len(records)
    assert info["topics"]["tick.clock.frame"] == FRAMES
    assert info["mission_time_s"] == [0.0, pytest.approx((FRAMES - 1) / 10)]
    assert info["bytes"]["skipped"] == info["bytes"]["torn"] == 0
    assert (
        info["bytes"]["kept"] == info["bytes"]["total"] == sum(f.stat().st_size for f in recording.iterdir())
    )
    code, out, _ = run_cli(capsys, "log", "info", str(recording))
    assert code == 0
    assert "tick.clock.frame" in out


def test_log_dump_prints_one_line_per_record(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "log", "dump", str(recording), "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    bus_lines = [line for line in lines if line["k"] == "bus"]
    assert len(bus_lines) == len(bus_records(recording))
    assert lines[0]["k"] == "header"
    for line in bus_lines:
        envelope = line["envelope"]
        assert line["topic"] == f"{envelope['kind']}.{envelope['src']}.{envelope['name']}"
        assert line["t"] == envelope["t"]
    code, out, _ = run_cli(capsys, "log", "dump", str(recording), "--topics", "tlm.power.hk", "--since", "1s")
    assert code == 0
    assert len(out.splitlines()) == FRAMES // 10 - 1 + 1  # hk at 1 s and 2 s, plus the header line


def test_log_filter_writes_a_new_log_of_the_selected_records(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "power"
    code, _, err = run_cli(
        capsys, "log", "filter", str(recording), "--out", str(out_dir), "--topics", "tlm.power."
    )
    assert code == 0, err
    original = [(r.topic, r.body, r.t_s) for r in bus_records(recording) if r.topic.startswith(b"tlm.power.")]
    filtered = [(r.topic, r.body, r.t_s) for r in bus_records(out_dir)]
    assert filtered == original
    with LogReader(recording) as a, LogReader(out_dir) as b:
        first_a, first_b = next(iter(a)), next(iter(b))
    assert isinstance(first_a, LogHeader)
    assert isinstance(first_b, LogHeader)
    assert (first_b.base, first_b.run_id, first_b.deployment) == (
        first_a.base,
        first_a.run_id,
        first_a.deployment,
    )


def test_a_damaged_log_is_reported_with_counts_not_a_traceback(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = sorted(recording.iterdir())[0]
    damaged = tmp_path / source.name
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data[:-7]))
    code, out, err = run_cli(capsys, "log", "info", str(damaged), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["bytes"]["skipped"] > 0
    assert info["bytes"]["torn"] > 0
    assert info["bytes"]["kept"] + info["bytes"]["skipped"] + info["bytes"]["torn"] == len(data) - 7
    assert 0 < info["records"] < len(bus_records(recording))
    code, _, err = run_cli(capsys, "log", "dump", str(damaged))
    assert code == 0
    assert "bytes skipped" in err
    assert "torn tail" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("log", "info", "/nonexistent/log"), "no such log file or directory"),
        (("replay", "/nonexistent/log"), "no such log file or directory"),
        (("log", "dump", "{rec}", "--since", "soon"), "--since"),
        (("log", "filter", "{rec}", "--out", "{rec}"), "where the log is read from"),
        (("replay", "{rec}", "--speed", "-3"), "speed"),
    ],
)
def test_bad_input_is_a_clear_error(
    recording: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, _, err = run_cli(capsys, *(a.format(rec=recording) for a in argv))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_record_without_a_base_says_so(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "record", str(tmp_path / "rec"), "--run-dir", str(run_dir), "--connect-timeout", "0.3"
    )
    assert code == 2
    assert "no message from" in err
    assert "is the base up" in err
