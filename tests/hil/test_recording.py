"""The recording log: its codec, byte accounting, writer, crash safety, and the recorder in a real base."""

from __future__ import annotations

import errno
import json
import os
import select as io_select
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import msgpack
import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from fsw.deployment import parse
from fsw.errors import CodecError, ConfigError
from fsw.messages import Kind, Message, encode
from fsw.run import RunOptions
from fsw.timesource import FakeTime
from hil import recording
from hil.recorder import BusTap, Recorder, SequenceWatch, recorder_settings
from hil.recording import (
    MAX_PAYLOAD_BYTES,
    RECORD_HEADER_BYTES,
    SYNC_MARKER,
    BusRecord,
    LogHeader,
    LogReader,
    LogWriter,
    ScanCounts,
    Selection,
    SelectionCounts,
    decode_record,
    encode_record,
    file_name,
    frame_payload,
    scan,
    select,
)
from tests.conftest import WAIT_S

# --- strategies ---------------------------------------------------------------------

finite = st.floats(allow_nan=False)
small_bytes = st.binary(max_size=300)
bus_records = st.builds(
    BusRecord,
    t_s=finite,
    wall_unix_s=finite,
    topic=st.binary(max_size=40),
    body=small_bytes,
    ok=st.booleans(),
    frames=st.none() | st.lists(st.binary(max_size=30), max_size=4).map(tuple),
)
headers = st.builds(
    LogHeader,
    base=st.text(max_size=20),
    run_id=st.text(max_size=20),
    file_index=st.integers(min_value=0, max_value=2**63 - 1),
    created_unix_s=finite,
    deployment=st.text(max_size=200),
    version=st.integers(min_value=0, max_value=2**31),
)
records = st.one_of(bus_records, headers)


def log_bytes(items: list[recording.Record]) -> tuple[bytes, list[int]]:
    """The encoded records back to back, and the offset of each."""
    offsets, chunks, at = [], [], 0
    for item in items:
        data = encode_record(item)
        offsets.append(at)
        chunks.append(data)
        at += len(data)
    return b"".join(chunks), offsets


def scanned(data: bytes) -> tuple[list[tuple[int, recording.Record]], ScanCounts]:
    counts = ScanCounts()
    found = list(scan(data, counts))
    return found, counts


def accounted(counts: ScanCounts, size: int) -> bool:
    return counts.bytes_kept + counts.bytes_skipped + counts.bytes_torn == counts.bytes_total == size


# --- the codec ----------------------------------------------------------------------


class TestCodec:
    """encode_record / decode_record are a symmetric pair."""

    @given(records)
    def test_round_trip_of_any_record(self, record: recording.Record) -> None:
        assert decode_record(encode_record(record)) == record

    @given(st.lists(records, max_size=20))
    def test_a_log_of_records_reads_back_whole(self, items: list[recording.Record]) -> None:
        data, offsets = log_bytes(items)
        found, counts = scanned(data)
        assert [r for _, r in found] == items
        assert [o for o, _ in found] == offsets
        assert counts.bytes_kept == len(data)
        assert counts.bytes_skipped == counts.bytes_torn == 0

    def test_layout_is_marker_length_crc_payload(self) -> None:
        record = BusRecord(t_s=1.5, wall_unix_s=2.0, topic=b"tlm.a.hk", body=b"\x80", ok=True)
        data = encode_record(record)
        assert data[:2] == SYNC_MARKER == b"\xf5\x7a"
        length = int.from_bytes(data[2:6], "big")
        assert len(data) == RECORD_HEADER_BYTES + length
        assert int.from_bytes(data[6:10], "big") == zlib.crc32(data[10:])
        payload = msgpack.unpackb(data[10:], raw=False)
        assert payload == {"k": "bus", "t": 1.5, "w": 2.0, "topic": b"tlm.a.hk", "body": b"\x80", "ok": True}

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (msgpack.packb([1, 2]), "not a map"),
            (msgpack.packb({"k": "what"}), "unknown record kind"),
            (msgpack.packb({"k": "bus", "t": "x", "w": 0.0, "topic": b"", "body": b"", "ok": True}), "'t'"),
            (
                msgpack.packb({"k": "bus", "t": 0.0, "w": 0.0, "topic": "str", "body": b"", "ok": True}),
                "topic",
            ),
            (b"\xc1", "not msgpack"),
        ],
    )
    def test_bad_payload_is_a_codec_error_naming_it(self, payload: bytes, reason: str) -> None:
        with pytest.raises(CodecError, match=reason):
            decode_record(frame_payload(payload))

    def test_oversized_record_is_refused(self) -> None:
        huge = BusRecord(t_s=0.0, wall_unix_s=0.0, topic=b"x", body=bytes(MAX_PAYLOAD_BYTES), ok=False)
        with pytest.raises(CodecError, match="exceeds"):
            encode_record(huge)


# --- byte accounting ----------------------------------------------------------------


class TestAccounting:
    """Every byte is kept, skipped or torn; nothing raises; good records survive damage elsewhere."""

    @given(st.binary(max_size=4000))
    def test_arbitrary_bytes_never_raise_and_are_accounted(self, data: bytes) -> None:
        _, counts = scanned(data)
        assert accounted(counts, len(data))

    @given(st.lists(records, min_size=1, max_size=12), st.binary(max_size=64), st.binary(max_size=64))
    def test_garbage_around_records_is_skipped(
        self, items: list[recording.Record], before: bytes, after: bytes
    ) -> None:
        body, _ = log_bytes(items)
        data = before + body + after
        found, counts = scanned(data)
        assert accounted(counts, len(data))
        # The scanner resynchronises on the first true record and keeps every one.
        assert [r for _, r in found][-len(items) :] == items

    @given(st.lists(records, min_size=1, max_size=12), st.data())
    def test_bit_flips_lose_only_the_records_they_hit(
        self, items: list[recording.Record], data: st.DataObject
    ) -> None:
        clean, offsets = log_bytes(items)
        flips = data.draw(st.lists(st.integers(0, len(clean) * 8 - 1), min_size=1, max_size=6))
        damaged = bytearray(clean)
        for bit in flips:
            damaged[bit // 8] ^= 1 << (bit % 8)
        found, counts = scanned(bytes(damaged))
        assert accounted(counts, len(clean))
        ends = [*offsets[1:], len(clean)]
        hit = {
            i
            for i, (start, end) in enumerate(zip(offsets, ends, strict=True))
            if any(start <= b // 8 < end for b in flips)
        }
        survivors = [(offsets[i], items[i]) for i in range(len(items)) if i not in hit]
        assert [f for f in found if f in survivors] == survivors

    @given(st.lists(records, min_size=1, max_size=12), st.data())
    def test_truncation_anywhere_leaves_a_counted_torn_tail(
        self, items: list[recording.Record], data: st.DataObject
    ) -> None:
        clean, offsets = log_bytes(items)
        cut = data.draw(st.integers(0, len(clean)))
        found, counts = scanned(clean[:cut])
        whole = [i for i, start in enumerate(offsets) if start + len(encode_record(items[i])) <= cut]
        assert [r for _, r in found] == [items[i] for i in whole]
        assert counts.bytes_skipped == 0
        kept = sum(len(encode_record(items[i])) for i in whole)
        assert counts.bytes_kept == kept
        assert counts.bytes_torn == cut - kept

    def test_damaged_length_pointing_past_the_end_does_not_hide_later_records(self) -> None:
        items = [BusRecord(float(i), 0.0, b"tlm.a.hk", bytes([i]) * 50) for i in range(5)]
        clean, offsets = log_bytes(items)
        damaged = bytearray(clean)
        damaged[offsets[1] + 2 : offsets[1] + 6] = (MAX_PAYLOAD_BYTES - 1).to_bytes(4, "big")
        found, counts = scanned(bytes(damaged))
        assert [r for _, r in found] == [items[0], *items[2:]]
        assert counts.skipped_by_reason["length"] == offsets[2] - offsets[1]
        assert counts.bytes_torn == 0

    def test_lone_partial_marker_at_the_end_is_torn(self) -> None:
        items = [BusRecord(0.0, 0.0, b"t", b"b")]
        clean, _ = log_bytes(items)
        found, counts = scanned(clean + SYNC_MARKER[:1])
        assert len(found) == 1
        assert counts.bytes_torn == 1


# --- the writer ---------------------------------------------------------------------


def write_some(writer: LogWriter, count: int, size: int = 100, start: int = 0) -> None:
    for i in range(start, start + count):
        writer.write_bus(b"tlm.test.hk", i.to_bytes(4, "big") * (size // 4), t_s=i * 0.1, ok=True)


def bus_only(path: Path) -> list[BusRecord]:
    with LogReader(path) as reader:
        return [r for r in reader if isinstance(r, BusRecord)]


class TestWriter:
    """Files, headers, rotation, fsync policies, disk errors."""

    def test_files_are_named_by_run_and_index_and_start_with_a_header(self, tmp_path: Path) -> None:
        with LogWriter(
            tmp_path, base="moon", run_id="r1", deployment_text="[base]\n", wall_clock=lambda: 5.0
        ) as w:
            write_some(w, 3)
        assert [p.name for p in tmp_path.iterdir()] == [file_name("r1", 0)] == ["r1-00000.fswlog"]
        with LogReader(tmp_path) as reader:
            everything = list(reader)
        assert everything[0] == LogHeader("moon", "r1", 0, 5.0, "[base]\n")
        assert [r.t_s for r in everything[1:] if isinstance(r, BusRecord)] == [0.0, 0.1, 0.2]

    def test_rotation_by_size_keeps_every_record_in_order(self, tmp_path: Path) -> None:
        with LogWriter(tmp_path, base="b", run_id="rot", max_file_bytes=4096) as w:
            write_some(w, 200, size=100)
            files = w.stats.files
        paths = sorted(tmp_path.iterdir())
        assert len(paths) == files > 3
        assert all(p.stat().st_size <= 4096 for p in paths)
        for index, path in enumerate(paths):
            with LogReader(path) as reader:
                first = next(iter(reader))
            assert isinstance(first, LogHeader)
            assert first.file_index == index
        assert [r.t_s for r in bus_only(tmp_path)] == [i * 0.1 for i in range(200)]

    def test_a_new_writer_never_appends_to_an_earlier_file(self, tmp_path: Path) -> None:
        with LogWriter(tmp_path, base="b", run_id="again") as w:
            write_some(w, 2)
        with (tmp_path / file_name("again", 0)).open("ab") as first:
            first.write(b"\xf5\x7a\x00")  # a torn tail
        with LogWriter(tmp_path, base="b", run_id="again") as w:
            write_some(w, 2, start=2)
            assert w.path == tmp_path / file_name("again", 1)
        with LogReader(tmp_path) as reader:
            got = [r.t_s for r in reader if isinstance(r, BusRecord)]
        assert got == [0.0, 0.1, 0.2, pytest.approx(0.3)]
        assert reader.stats.total.bytes_torn == 3

    @pytest.mark.parametrize(("policy", "expected"), [("always", 1 + 10), ("never", 0)])
    def test_fsync_always_and_never(self, tmp_path: Path, policy: str, expected: int) -> None:
        with LogWriter(tmp_path, base="b", run_id="p", fsync=policy) as w:
            write_some(w, 10)
            assert w.stats.fsyncs == expected
            assert w.next_sync_due_s() is None or policy == "never"
        assert len(bus_only(tmp_path)) == 10

    def test_fsync_interval_follows_injected_time(self, tmp_path: Path) -> None:
        clock = FakeTime()
        with LogWriter(
            tmp_path, base="b", run_id="i", fsync="interval", fsync_interval_s=1.0, time=clock
        ) as w:
            assert w.stats.fsyncs == 1  # the header
            write_some(w, 5)
            assert w.stats.fsyncs == 1
            assert w.next_sync_due_s() == pytest.approx(1.0)
            clock.advance(0.5)
            w.sync_if_due()
            assert w.stats.fsyncs == 1
            clock.advance(0.6)
            w.sync_if_due()
            assert w.stats.fsyncs == 2
            assert w.next_sync_due_s() is None  # nothing unsynced
            clock.advance(2.0)
            write_some(w, 1)  # a write past the interval syncs by itself
            assert w.stats.fsyncs == 3
        assert w.closed

    def test_background_fsync_runs_off_the_callers_thread_and_reports_its_errors(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = FakeTime()
        writer = LogWriter(
            tmp_path, base="b", run_id="bg", fsync_interval_s=1.0, time=clock, background_sync=True
        )
        write_some(writer, 5)
        clock.advance(1.0)
        writer.sync_if_due()
        assert writer.next_sync_due_s() is None  # handed to the thread
        assert writer._syncer is not None
        assert writer._syncer.wait(WAIT_S)
        writer.sync_if_due()  # picks up the outcome
        assert writer.stats.fsyncs == 2  # the header's, then the background one

        def broken(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(recording.os, "fsync", broken)
        write_some(writer, 1, start=5)
        clock.advance(1.0)
        writer.sync_if_due()
        assert writer._syncer.wait(WAIT_S)
        with pytest.raises(OSError, match="Input/output"):
            write_some(writer, 1, start=6)
        assert writer.stats.write_errors == 1
        monkeypatch.undo()
        write_some(writer, 1, start=7)  # a new file
        writer.close()
        assert writer.stats.files == 2
        assert [round(r.t_s, 1) for r in bus_only(tmp_path)] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7]

    def test_bad_options_are_config_errors(self, tmp_path: Path) -> None:
        for kwargs in (
            {"fsync": "sometimes"},
            {"fsync_interval_s": 0.0},
            {"max_file_bytes": 10},
            {"run_id": "a/b"},
        ):
            options = {"base": "b", "run_id": "r", **kwargs}
            with pytest.raises(ConfigError):
                LogWriter(tmp_path, **options)  # type: ignore[arg-type]
        assert list(tmp_path.iterdir()) == []

    def test_disk_error_abandons_the_file_and_the_next_write_starts_another(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        writer = LogWriter(tmp_path, base="b", run_id="err", fsync="interval", time=FakeTime())
        write_some(writer, 3)
        writer.sync()
        real_write = os.write

        def full_disk(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(recording.os, "write", full_disk)
        write_some(writer, 2, start=3)
        with pytest.raises(OSError, match="No space"):
            writer.flush()
        assert writer.stats.write_errors == 1
        assert writer.stats.records_lost == 2
        monkeypatch.setattr(recording.os, "write", real_write)
        write_some(writer, 1, start=5)
        writer.close()
        writer.close()  # idempotent
        assert writer.stats.files == 2
        assert [round(r.t_s, 1) for r in bus_only(tmp_path)] == [0.0, 0.1, 0.2, 0.5]


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from hil.recording import LogWriter
    writer = LogWriter(sys.argv[1], base="kill", run_id="k", fsync=sys.argv[2])
    i = 0
    while True:
        writer.write_bus(b"tlm.k.hk", i.to_bytes(8, "big") * 40, t_s=i * 0.1, ok=True)
        i += 1
        if i % 100 == 0:
            writer.flush()
            print(i, flush=True)
    """
)


@pytest.mark.parametrize("policy", ["always", "never"])
def test_kill_9_mid_write_leaves_every_complete_record_readable(tmp_path: Path, policy: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path), policy], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + WAIT_S
    try:
        assert child.stdout is not None
        reported = 0
        while reported < 300:
            ready, _, _ = io_select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "the writer reported no progress in time"
            line = child.stdout.readline()
            assert line, "the writer died on its own"
            reported = int(line)
    finally:
        child.kill()
        child.wait(timeout=WAIT_S)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with LogReader(tmp_path) as reader:
        got = [r for r in reader if isinstance(r, BusRecord)]
    counts = reader.stats.total
    assert len(got) >= reported
    assert [int.from_bytes(r.body[:8], "big") for r in got] == list(range(len(got)))
    assert counts.bytes_skipped == 0
    assert (
        counts.bytes_kept + counts.bytes_torn
        == counts.bytes_total
        == sum(f.stat().st_size for f in reader.files)
    )


# --- reader edges, selection --------------------------------------------------------


class TestReader:
    def test_missing_path_and_empty_directory_are_config_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="no such log"):
            LogReader(tmp_path / "nothing")
        with pytest.raises(ConfigError, match=r"no \.fswlog files"):
            LogReader(tmp_path)

    def test_empty_file_and_garbage_file_read_as_nothing(self, tmp_path: Path) -> None:
        (tmp_path / "a-00000.fswlog").write_bytes(b"")
        (tmp_path / "b-00000.fswlog").write_bytes(os.urandom(5000))
        with LogReader(tmp_path) as reader:
            assert list(reader) == []
        total = reader.stats.total
        assert total.bytes_total == 5000
        assert total.bytes_skipped + total.bytes_torn == 5000

    def test_abandoned_iteration_closes_its_file(self, tmp_path: Path) -> None:
        with LogWriter(tmp_path, base="b", run_id="x") as w:
            write_some(w, 5)
        reader = LogReader(tmp_path)
        iterator = iter(reader)
        next(iterator)
        reader.close()
        reader.close()


def bus(t_s: float, topic: bytes = b"tlm.a.hk", ok: bool = True) -> BusRecord:
    return BusRecord(t_s, 0.0, topic, b"", ok)


class TestSelection:
    def test_mission_clock_is_the_running_maximum_and_restarts_with_a_new_run(self) -> None:
        items: list[recording.Record] = [
            LogHeader("b", "run1", 0, 0.0),
            bus(1.0),
            bus(0.0, b"evt.supervisor.x"),  # no mission time of its own
            bus(2.0),
            LogHeader("b", "run1", 1, 0.0),  # next file, same run
            bus(3.0),
            LogHeader("b", "run2", 0, 0.0),
            bus(0.5),
        ]
        got = [(s.mission_clock_s, s.segment) for s in select(items, Selection())]
        assert got == [(1.0, 0), (1.0, 0), (2.0, 0), (3.0, 0), (0.5, 1)]

    def test_topics_window_and_malformed(self) -> None:
        items: list[recording.Record] = [bus(float(t)) for t in range(10)]
        items += [bus(9.0, b"evt.a.x"), bus(9.0, b"tick.clock.frame"), bus(9.0, b"junk", ok=False)]
        counts = SelectionCounts()
        chosen = list(select(items, Selection(topics=(b"tlm.", b"evt."), since_s=3.0, until_s=9.0), counts))
        assert [s.record.t_s for s in chosen] == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.0]
        assert counts.malformed_skipped == 1
        assert counts.filtered_out == 4
        with_bad = list(select(items, Selection(topics=(b"",), include_malformed=True)))
        assert len(with_bad) == len(items)


# --- the tap and the recorder's parameters ------------------------------------------


class TestBusTap:
    def test_malformed_frames_are_recorded_flagged_with_the_last_mission_time(self, tmp_path: Path) -> None:
        clock = FakeTime()
        tap = BusTap(lambda: LogWriter(tmp_path, base="b", run_id="tap", time=clock), time=clock)
        tick = encode(Message(Kind.TICK, "clock", "frame", 4.2, 42, {"frame": 42, "period_s": 0.1}))
        hk = encode(Message(Kind.TELEMETRY, "power", "hk", 4.0, 7, {"v": 1}))
        assert tap.record(list(tick))[0] is not None
        assert tap.record(list(hk))[0] is not None
        message, reason = tap.record([b"tick.x.frame", b"\xc1not msgpack"])
        assert message is None
        assert "not msgpack" in reason
        tap.record([b"one frame only"])
        tap.record([b"a", b"b", b"c"])
        tap.close()
        tap.close()
        got = bus_only(tmp_path)
        assert [(r.t_s, r.ok) for r in got] == [
            (4.2, True),
            (4.0, True),
            (4.2, False),
            (4.2, False),
            (4.2, False),
        ]
        assert got[0].wire_frames() == list(tick)
        assert got[3].wire_frames() == [b"one frame only"]
        assert got[4].wire_frames() == [b"a", b"b", b"c"]
        assert tap.stats.malformed == 3
        assert tap.stats.recorded == 5

    def test_topic_selection_keeps_only_the_chosen_prefixes(self, tmp_path: Path) -> None:
        clock = FakeTime()
        tap = BusTap(
            lambda: LogWriter(tmp_path, base="b", run_id="sel", time=clock),
            time=clock,
            topics=(b"tlm.power.",),
        )
        tick = encode(Message(Kind.TICK, "clock", "frame", 4.2, 42, {"frame": 42, "period_s": 0.1}))
        kept = encode(Message(Kind.TELEMETRY, "power", "hk", 4.2, 7, {"v": 1}))
        other = encode(Message(Kind.TELEMETRY, "thermal", "hk", 4.2, 8, {"v": 2}))
        for frames in (tick, kept, other):
            assert tap.record(list(frames))[0] is not None
        tap.close()
        assert [r.wire_frames() for r in bus_only(tmp_path)] == [list(kept)]
        assert tap.mission_time_s == 4.2  # ticks still set the mission clock

    def test_disk_error_is_reported_once_counted_and_retried(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = FakeTime()
        errors: list[str] = []
        resumed: list[str] = []
        tap = BusTap(
            lambda: LogWriter(tmp_path, base="b", run_id="t", fsync="always", time=clock),
            time=clock,
            retry_interval_s=1.0,
            on_error=errors.append,
            on_resume=resumed.append,
        )
        hk = list(encode(Message(Kind.TELEMETRY, "power", "hk", 1.0, 0, {})))
        tap.record(hk)
        real_fsync = os.fsync

        def broken(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(recording.os, "fsync", broken)
        for _ in range(5):
            tap.record(hk)
        assert len(errors) == 1
        assert "Input/output error" in errors[0]
        monkeypatch.setattr(recording.os, "fsync", real_fsync)
        tap.record(hk)  # still inside the retry interval: dropped
        assert tap.records_lost == 6
        clock.advance(1.0)
        tap.record(hk)
        assert len(resumed) == 1
        tap.close()
        # The record whose fsync failed reached the kernel: it reads back, yet counts as dropped
        # (it was not known to be on disk).
        assert len(bus_only(tmp_path)) == 3

    def test_directory_that_cannot_be_made_is_reported_not_raised(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        errors: list[str] = []
        tap = BusTap(
            lambda: LogWriter(blocker / "rec", base="b", run_id="t"), time=FakeTime(), on_error=errors.append
        )
        assert not tap.open()
        tap.record([b"x", b"y"])
        assert tap.stats.dropped == 1
        assert len(errors) == 1
        tap.close()

    def test_sequence_watch_ignores_streams_it_takes_only_part_of(self) -> None:
        watch = SequenceWatch(prefixes=(b"tlm.power.hk", b"evt."))
        for seq in (1, 5, 9):  # other tlm.power.* messages fall between these
            assert watch.account(Message(Kind.TELEMETRY, "power", "hk", 0.0, seq, {})) == 0
        watch.account(Message(Kind.EVENT, "power", "e", 0.0, 1, {}))
        assert watch.account(Message(Kind.EVENT, "power", "e", 0.0, 3, {})) == 1
        assert watch.lost == 1

    def test_sequence_watch_counts_gaps_and_restarts(self) -> None:
        watch = SequenceWatch(max_streams=2)
        for seq in (0, 1, 4, 0):
            watch.account(Message(Kind.TELEMETRY, "a", "hk", 0.0, seq, {}))
        watch.account(Message(Kind.EVENT, "a", "x", 0.0, 0, {}))
        watch.account(Message(Kind.EVENT, "b", "x", 0.0, 0, {}))  # beyond max_streams: not followed
        watch.account(Message(Kind.EVENT, "b", "x", 0.0, 9, {}))
        assert (watch.lost, watch.source_restarts) == (2, 1)


def test_recorder_parameters_are_checked(tmp_path: Path) -> None:
    default = tmp_path / "default"
    assert recorder_settings({}, default, "p").directory == default
    settings = recorder_settings({"dir": "~/x", "fsync": "always", "max_file_bytes": 8192}, default, "p")
    assert settings.fsync == "always"
    assert settings.max_file_bytes == 8192
    assert "~" not in str(settings.directory)
    for bad, key in (
        ({"fsync": "often"}, "fsync"),
        ({"fsync_interval_s": -1}, "fsync_interval_s"),
        ({"max_file_bytes": 1.5}, "max_file_bytes"),
        ({"dir": 3}, "dir"),
        ({"colour": "red"}, "colour"),
        ({"topics": "tlm."}, "topics"),
        ({"topics": []}, "topics"),
    ):
        with pytest.raises(ConfigError, match=key):
            recorder_settings(bad, default, "processes.recorder.params")


def test_recorder_with_bad_parameters_reports_them_and_records_nothing(tmp_path: Path) -> None:
    text = f"""
[base]
name = "b"
run_dir = "{tmp_path}"
[processes.recorder]
entry = "hil.recorder:Recorder"
params = {{ dir = "{tmp_path / "rec"}", fsync = "sometimes" }}
"""
    deployment = parse(text)
    recorder = Recorder(deployment, deployment.process("recorder"), RunOptions(run_id="r"), time=FakeTime())
    recorder.setup()
    try:
        assert recorder.tap is not None
        assert recorder.tap.failing
        assert "fsync = 'sometimes'" in recorder.tap.stats.last_error
        recorder.tap.record(list(encode(Message(Kind.TELEMETRY, "power", "hk", 1.0, 0, {}))))
        assert recorder.housekeeping()["records_dropped"] == 1
    finally:
        recorder.teardown()
    assert not (tmp_path / "rec").exists()


# --- the recorder in a real base ----------------------------------------------------

RECORDER_TOML = """
[processes.recorder]
entry = "hil.recorder:Recorder"
params = {{ dir = "{dir}", fsync = "always" }}
"""


def test_recorder_in_a_real_base_records_ticks_telemetry_events_acks_and_malformed_frames(
    start_base, run_dir: Path
) -> None:
    log_dir = run_dir / "rec"
    base = start_base(RECORDER_TOML.format(dir=log_dir))
    base.event("recording_started", source="recorder")
    assert base.client.call("power", "switch_load", {"tier": 4, "on": False}).ok
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    junk = [[b"tick.x.frame", b"\xc1not msgpack"], [b"tick.x.frame"], [b"tick.x.frame", b"\x80", b"extra"]]
    try:
        pub.connect(base.deployment.bus.publish)

        def send_junk() -> None:
            for frames in junk:
                pub.send_multipart(frames)

        send_junk()
        base.next_matching(
            lambda m: (
                (send_junk() or True)
                and m.kind is Kind.EVENT
                and m.name == "malformed_frame"
                and m.source == "recorder"
            ),
            what="the recorder's malformed_frame event",
        )
    finally:
        pub.close()
        context.term()
    hk = base.next_matching(lambda m: m.kind is Kind.TELEMETRY and m.source == "recorder" and m.name == "hk")
    assert hk.data["records_written"] > 0
    assert hk.data["write_errors"] == 0
    assert hk.data["files"] == 1
    flushed = base.client.call("recorder", "flush")
    assert flushed.ok, flushed
    assert Path(flushed.result["file"]).parent == log_dir

    got = bus_only(log_dir)
    topics = {r.topic for r in got if r.ok}
    assert {
        b"tick.clock.frame",
        b"tlm.power.hk",
        b"evt.recorder.recording_started",
        b"ack.bus.switch_load",
    } <= topics
    malformed = [r for r in got if not r.ok]
    assert {tuple(r.wire_frames()) for r in malformed} >= {tuple(frames) for frames in junk}
    ticks = [r for r in got if r.topic == b"tick.clock.frame"]
    assert all(r.ok for r in ticks)
    assert all(m.t_s >= 0.0 for m in malformed)
    with LogReader(log_dir) as reader:
        header = next(iter(reader))
    assert isinstance(header, LogHeader)
    assert header.base == base.deployment.name
    assert "hil.recorder:Recorder" in header.deployment

    # `fsw record` attaches to the same running base from outside, for one second of wall time.
    outside = run_dir / "outside"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "fsw.cli", "record", str(outside), str(base.path)),
            *("--run-dir", str(run_dir), "--duration", "1s", "--json"),
        ],
        capture_output=True,
        timeout=WAIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    summary = json.loads(done.stdout)
    assert summary["records"] > 0
    assert summary["dropped"] == 0
    assert summary["run_id"] == header.run_id
    assert {b"hb.power.hb", b"tick.clock.frame", b"tlm.recorder.hk"} <= {r.topic for r in bus_only(outside)}
