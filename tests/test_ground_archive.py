"""The ground archive: batched packets, commands and their stages, counters, queries, plain SQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fsw.dictionary import ArgType, Dictionary, EventDef, Point, Severity
from fsw.errors import ConfigError, StorageError
from fsw.spacelink import HousekeepingLayout, encode_tm, event_data, request_id, verification_data
from ground.archive import SCHEMA_VERSION, Archive, CommandRecord, TelecommandCounters, VerificationRecord
from ground.mission import MissionDatabase
from ground.telemetry import Packet, TelemetryDecoder

POINTS = (Point("battery_soc", ArgType.FLOAT), Point("mode", ArgType.STR), Point("on", ArgType.BOOL))
MISSION = MissionDatabase(
    {
        "power": Dictionary(
            telemetry=POINTS,
            events=(EventDef("load_switched", Severity.INFO), EventDef("bus_low", Severity.WARNING)),
        )
    },
    {"power": 0x10},
)
T0 = 1_900_000_000.0


def hk(decoder: TelemetryDecoder, t_s: float, soc: float | None) -> Packet:
    data = HousekeepingLayout(0x10, POINTS).pack({"battery_soc": soc, "mode": "NOMINAL", "on": True})
    return decoder.decode(encode_tm(0x10, (3, 25), data, unix_s=t_s), t_s + 1.3)


def event(decoder: TelemetryDecoder, t_s: float, event_id: int) -> Packet:
    return decoder.decode(encode_tm(0x10, (5, 1 + event_id), event_data(event_id, {"v": 1}), unix_s=t_s), t_s)


def command(archive: Archive, seq_count: int, sent_s: float, origin: str = "api") -> tuple[int, str]:
    request = request_id(0x10, seq_count).hex()
    record = CommandRecord(
        sent_s, origin, request, "power", "switch_load", {"tier": 4}, 0x10, seq_count, 1, 77, b"tc"
    )
    return archive.record_command(record, TelecommandCounters(seq_count=seq_count + 1)), request


class TestWriting:
    def test_packets_are_written_with_ids_and_read_back_in_order(self, tmp_path: Path) -> None:
        decoder = TelemetryDecoder(MISSION)
        packets = [hk(decoder, T0 + i, 0.5 + i / 100) for i in range(10)]
        with Archive(tmp_path / "a.db") as archive:
            assert archive.ingest(packets[:4]) == [1, 2, 3, 4]
            assert archive.ingest(packets[4:]) == [5, 6, 7, 8, 9, 10]
            assert [p.id for p in packets] == list(range(1, 11))
            rows = archive.packets(kinds=["hk"], limit=3)
            assert [r["id"] for r in rows] == [8, 9, 10]
            assert rows[-1]["content"] == {"battery_soc": 0.59, "mode": "NOMINAL", "on": True}
            assert archive.newest_unix_s() == T0 + 9
        with Archive(tmp_path / "a.db") as again:  # a restart continues the ids
            assert again.ingest([hk(decoder, T0 + 10, 0.6)]) == [11]

    def test_invalid_packets_are_kept_raw_with_their_reason(self, tmp_path: Path) -> None:
        garbage = TelemetryDecoder(MISSION).decode(b"\x01\x02\x03", T0)
        with Archive(tmp_path / "a.db") as archive:
            archive.ingest([garbage])
            (row,) = archive.packets()
        assert row["kind"] == "invalid"
        assert row["raw"] == "010203"
        assert "TRUNCATED" in row["error"]

    def test_command_and_its_stages(self, tmp_path: Path) -> None:
        decoder = TelemetryDecoder(MISSION)
        with Archive(tmp_path / "a.db") as archive:
            command_id, request = command(archive, 5, T0)
            stages = []
            for subtype, code in ((1, None), (3, None), (8, 21)):
                data = verification_data(bytes.fromhex(request), code, "boom" if code else "")
                packet = decoder.decode(
                    encode_tm(0x10, (1, subtype), data, unix_s=T0 + subtype), T0 + subtype
                )
                content = packet.content
                stages.append(
                    VerificationRecord(
                        command_id, packet, packet.received_s, packet.unix_s, content["stage"], content["ok"],
                        content["code"], content["failure"], content["reason"],
                    )
                )  # fmt: skip
                archive.write([packet], [stages[-1]])
            (row,) = archive.commands()
            assert archive.counters().seq_count == 6
            assert archive.command_by_request(request) == row
        assert row["stage"] == "failed"
        assert row["final"] is True
        assert row["ok"] is False
        assert (row["code"], row["failure"], row["reason"]) == (21, "COMMAND_FAILED", "boom")
        assert [s["stage"] for s in row["stages"]] == ["accepted", "started", "failed"]
        assert row["finished_s"] == T0 + 8

    def test_keepalives_are_left_out_unless_asked(self, tmp_path: Path) -> None:
        with Archive(tmp_path / "a.db") as archive:
            command(archive, 1, T0, origin="keepalive")
            command(archive, 2, T0 + 1)
            assert [c["origin"] for c in archive.commands()] == ["api"]
            assert len(archive.commands(include_keepalive=True)) == 2
            assert archive.newest_sent_s() == T0 + 1

    def test_counters_survive_a_reopen(self, tmp_path: Path) -> None:
        with Archive(tmp_path / "a.db") as archive:
            assert archive.counters() == TelecommandCounters()
            archive.reserve(TelecommandCounters(seq_count=9, reserved={1: 1999, 2: 5}, active_key=2))
        with Archive(tmp_path / "a.db") as archive:
            assert archive.counters() == TelecommandCounters(9, {1: 1999, 2: 5}, 2)


class TestReading:
    def test_events_by_severity_and_time(self, tmp_path: Path) -> None:
        decoder = TelemetryDecoder(MISSION)
        with Archive(tmp_path / "a.db") as archive:
            archive.ingest([event(decoder, T0 + i, i % 2) for i in range(6)])
            assert len(archive.events()) == 6
            warnings = archive.events(severity="warning")
            assert [e["name"] for e in warnings] == ["bus_low"] * 3
            assert [e["unix_s"] for e in archive.events(since_s=T0 + 4)] == [T0 + 4, T0 + 5]
            with pytest.raises(ConfigError, match="severity 'loud'"):
                archive.events(severity="loud")

    def test_series_of_points_in_a_time_range(self, tmp_path: Path) -> None:
        decoder = TelemetryDecoder(MISSION)
        with Archive(tmp_path / "a.db") as archive:
            archive.ingest([hk(decoder, T0 + i, None if i == 2 else i / 10) for i in range(5)])
            times, values = archive.series("power", ["battery_soc", "on", "mode"], since_s=T0 + 1)
        assert times == [T0 + 1, T0 + 2, T0 + 3, T0 + 4]
        assert values["battery_soc"] == [0.1, None, 0.3, 0.4]
        assert values["on"] == [1.0] * 4
        assert values["mode"] == [None] * 4

    def test_plain_sql_through_the_views(self, tmp_path: Path) -> None:
        decoder = TelemetryDecoder(MISSION)
        path = tmp_path / "a.db"
        with Archive(path) as archive:
            archive.ingest([hk(decoder, T0, 0.8), event(decoder, T0 + 1, 1)])
        db = sqlite3.connect(path)
        try:
            soc = db.execute(
                "SELECT unix_s, json_extract(vals, '$.battery_soc') FROM housekeeping WHERE source = 'power'"
            ).fetchall()
            events = db.execute("SELECT name, severity FROM events").fetchall()
        finally:
            db.close()
        assert soc == [(T0, 0.8)]
        assert events == [("bus_low", "warning")]


class TestOpening:
    def test_readonly_needs_an_existing_archive(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="no archive at"):
            Archive(tmp_path / "none.db", readonly=True)

    def test_readonly_archive_refuses_writes(self, tmp_path: Path) -> None:
        Archive(tmp_path / "a.db").close()
        with Archive(tmp_path / "a.db", readonly=True) as archive, pytest.raises(StorageError):
            archive.ingest([TelemetryDecoder(MISSION).decode(b"\x00", T0)])

    def test_not_an_archive(self, tmp_path: Path) -> None:
        path = tmp_path / "junk.db"
        path.write_bytes(b"this is not SQLite" * 100)
        with pytest.raises(StorageError, match=r"junk\.db"):
            Archive(path)

    def test_another_schema_version_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "a.db"
        Archive(path).close()
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
        db.commit()
        db.close()
        with pytest.raises(StorageError, match=f"schema {SCHEMA_VERSION + 1}"):
            Archive(path)

    def test_close_is_idempotent_and_final(self, tmp_path: Path) -> None:
        archive = Archive(tmp_path / "a.db")
        archive.close()
        archive.close()
        with pytest.raises(StorageError, match="closed"):
            archive.packets()
