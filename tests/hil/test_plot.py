"""`fsw log plot`: housekeeping points of a real recording, as series and as a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fsw.errors import ConfigError
from hil.plot import parse_point, series

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_series_holds_every_housekeeping_sample_in_mission_time_order(recording: Path) -> None:
    data = series(recording, ["power.battery_soc", "thermal.battery_temp_c"], since_s=60.0)
    soc = data["power.battery_soc"]
    # 1 Hz housekeeping over 3 min, from 60 s on: about 120 samples, in order
    assert 100 <= len(soc.t_s) <= 125
    assert soc.t_s == sorted(soc.t_s)
    assert soc.t_s[0] >= 60.0
    assert all(0.0 <= v <= 1.0 for v in soc.values)
    assert len(data["thermal.battery_temp_c"].t_s) > 100


def test_missing_point_names_what_the_source_has(recording: Path) -> None:
    with pytest.raises(ConfigError, match=r"no samples of power.nosuch .*power has .*battery_soc"):
        series(recording, ["power.nosuch"])
    with pytest.raises(ConfigError, match=r"must be <source>\.<point>"):
        parse_point("battery_soc")


def test_command_line_plot(recording: Path, tmp_path: Path) -> None:
    # In a child process: matplotlib keeps its fonts open for the life of the process.
    out = tmp_path / "month.png"
    done = subprocess.run(
        [sys.executable, "-m", "fsw.cli", "log", "plot", str(recording), "power.battery_soc",
         "reactor.fuel_temp_c", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 points" in done.stderr
    assert out.read_bytes()[:8] == PNG_MAGIC
