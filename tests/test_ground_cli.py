"""``fsw ground`` without a base: its parsing, its errors (exit 2, one line), the archive commands."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from fsw.cli import main
from fsw.deployment import load_default
from fsw.spacelink import HousekeepingLayout, encode_tm, event_data
from ground.archive import Archive
from ground.mission import MissionDatabase, link_defaults
from ground.plot import resolve_since
from ground.telemetry import TelemetryDecoder

T0 = 1_900_000_000.0


@pytest.fixture(autouse=True)
def _no_station_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSW_GROUND_API", raising=False)
    monkeypatch.delenv("FSW_GROUND_PUB", raising=False)


def unused_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="module")
def mission() -> MissionDatabase:
    return MissionDatabase.from_deployment(load_default())


@pytest.fixture
def archive_path(tmp_path: Path, mission: MissionDatabase) -> Path:
    decoder = TelemetryDecoder(mission)
    power = mission.apids["power"]
    layout = HousekeepingLayout(power, mission.points_of("power"))
    packets = [
        decoder.decode(
            encode_tm(power, (3, 25), layout.pack({"battery_soc": 0.5 + i / 1000}), unix_s=T0 + i), T0
        )
        for i in range(0, 7200, 60)
    ]
    switched = mission.dictionaries["power"].events.index(
        next(e for e in mission.dictionaries["power"].events if e.name == "load_switched")
    )
    packets.append(
        decoder.decode(encode_tm(power, (5, 1), event_data(switched, {"tier": 4}), unix_s=T0 + 7000), T0)
    )
    path = tmp_path / "archive.db"
    with Archive(path) as archive:
        archive.ingest(packets)
    return path


class TestErrors:
    def test_station_not_answering_is_exit_2_in_one_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = main(["ground", "ping", "--api", unused_endpoint(), "--station-timeout-s", "0.2"])
        err = capsys.readouterr().err
        assert code == 2
        assert "did not answer 'ping' within 0.2 s (is `fsw ground station` running?)" in err
        assert len(err.strip().splitlines()) == 1

    def test_unknown_subcommand_is_exit_2(self) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["ground", "launch"])
        assert exit_.value.code == 2

    def test_bad_argument_word_is_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["ground", "send", "power", "switch_load", "tier", "--api", unused_endpoint()]) == 2
        assert "argument 'tier' is not key=value" in capsys.readouterr().err

    def test_bad_link_url(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        code = main(["ground", "station", "--link", "http://base:80", "--archive", str(tmp_path / "a.db")])
        assert code == 2
        assert "must be udp://HOST:PORT or tcp://HOST:PORT" in capsys.readouterr().err

    def test_missing_archive(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        assert main(["ground", "history", "events", "--archive", str(tmp_path / "none.db")]) == 2
        assert "no archive at" in capsys.readouterr().err

    def test_missing_procedure(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        assert main(["ground", "run", str(tmp_path / "none.py")]) == 2
        assert "no procedure file" in capsys.readouterr().err

    def test_export_needs_a_format(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["ground", "export"]) == 2
        assert "export needs --json FILE or --xtce FILE" in capsys.readouterr().err


class TestArchiveCommands:
    def test_history_packets_since_is_counted_from_the_newest(
        self, archive_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert (
            main(
                ["ground", "history", "packets", "--since", "5min", "--json", "--archive", str(archive_path)]
            )
            == 0
        )
        rows = json.loads(capsys.readouterr().out)
        assert sorted(r["unix_s"] - T0 for r in rows) == [6840, 6900, 6960, 7000, 7020, 7080, 7140]
        assert "raw" not in rows[0]

    def test_history_events_as_text(self, archive_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["ground", "history", "events", "--archive", str(archive_path)]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert line.endswith("info     power.load_switched  tier=4")

    def test_plot_unknown_point_names_what_exists(
        self, archive_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        code = main(
            ["ground", "plot", "power.soc", "--out", str(tmp_path / "x.png"), "--archive", str(archive_path)]
        )
        assert code == 2
        assert "power has no telemetry point 'soc' (points: frame," in capsys.readouterr().err

    def test_export_json_has_apids_and_dictionaries(self, tmp_path: Path, mission: MissionDatabase) -> None:
        out = tmp_path / "dictionary.json"
        assert main(["ground", "export", "--json", str(out)]) == 0
        exported = json.loads(out.read_text())
        assert exported["apids"] == mission.apids
        assert exported["link_process"] == "comms"
        assert MissionDatabase.from_json(exported).to_json() == exported


class TestDefaults:
    def test_one_host_needs_no_flags(self) -> None:
        deployment = load_default()
        defaults = link_defaults(deployment)
        assert defaults.link == "udp://127.0.0.1:10015"  # through the simulated space link
        assert defaults.keys == deployment.state_dir / "keys" / "link.toml"

    def test_since(self) -> None:
        assert resolve_since("1h", T0) == T0 - 3600
        assert resolve_since("2030-01-01T00:00:00Z", T0) == 1893456000.0
        assert resolve_since(None, T0) is None
        assert resolve_since("1h", None) is None
