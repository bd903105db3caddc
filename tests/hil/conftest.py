"""Fixtures shared by the HIL tests: one real recorded run, made once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: The worked example's anomaly: the power board's battery gauge reads 0.62 low from 2 min.
SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "battery-gauge-fault" / "scenario.toml"

#: How the recorded run (and the runs compared with it) go: simulated, 3 min of mission time.
RUN = ("--speed", "max", "--duration", "3min", "--seed", "1")


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated run of the default base with the gauge fault, recorded with `fsw up --record`."""
    directory = tmp_path_factory.mktemp("recording")
    run_dir = tmp_path_factory.mktemp("r")
    subprocess.run(
        [sys.executable, "-m", "fsw.cli", "up", "--run-dir", str(run_dir / "run"), *RUN,
         "--scenario", str(SCENARIO), "--record", str(directory), "--json"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return directory
