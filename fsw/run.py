"""What one run of the base shares: its deployment, speed, seed and duration.

The supervisor writes the deployment text and a small ``run.json`` into the run
directory before it starts any child; every child reads both from there, so
all processes of one run agree even if the deployment file is edited while it
runs.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from fsw import deployment as deployment_module
from fsw.deployment import Deployment
from fsw.errors import ConfigError

RUN_FILE: Final = "run.json"
DEPLOYMENT_FILE: Final = "deployment.toml"

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$")
_DURATION_UNITS_S: Final = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class RunOptions:
    """How the clock runs this time.

    ``speed`` is ``None`` in real-time mode (ticks paced by the wall clock, no
    lockstep); a number in simulated mode (lockstep, paced at ``speed`` times
    real time), ``math.inf`` for ``--speed max``.
    """

    run_id: str
    speed: float | None = None
    seed: int = 0
    duration_s: float | None = None
    record_dir: str | None = None
    #: Topic prefixes the recorder keeps (``--record-topics``); empty: everything.
    record_topics: tuple[str, ...] = ()
    scenario: str | None = None
    board_backends: dict[str, str] = field(default_factory=dict)

    @property
    def lockstep(self) -> bool:
        """Whether frames run in lockstep (simulated time)."""
        return self.speed is not None


def parse_duration(text: str) -> float:
    """Parse ``90s``, ``10min``, ``1h``, ``30d``, ``250ms`` or a bare number of seconds.

    Raises :class:`ConfigError` naming the text.
    """
    match = _DURATION.match(text)
    if match is None:
        msg = f"duration {text!r} is not a number with a unit of ms, s, min, h or d (e.g. 90s, 30d)"
        raise ConfigError(msg)
    return float(match.group(1)) * _DURATION_UNITS_S[match.group(2) or "s"]


def parse_speed(text: str) -> float:
    """Parse ``--speed``: a positive number or ``max``. Raises :class:`ConfigError`."""
    if text.strip().lower() == "max":
        return math.inf
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not speed > 0 or not math.isfinite(speed):
        msg = f"speed {text!r} must be a positive number or 'max'"
        raise ConfigError(msg)
    return speed


def write(run_dir: Path, deployment_text: str, options: RunOptions) -> None:
    """Write the deployment text and run options into ``run_dir`` (atomically)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(run_dir / DEPLOYMENT_FILE, deployment_text)
    raw = asdict(options)
    if options.speed is not None and math.isinf(options.speed):
        raw["speed"] = "max"
    _atomic_write(run_dir / RUN_FILE, json.dumps(raw))


def read(run_dir: Path) -> tuple[Deployment, RunOptions]:
    """Read what :func:`write` wrote. Raises :class:`ConfigError` if it is missing or bad."""
    deployment = deployment_module.load(run_dir / DEPLOYMENT_FILE, run_dir=run_dir)
    try:
        raw = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        speed = raw["speed"]
        options = RunOptions(
            run_id=str(raw["run_id"]),
            speed=math.inf if speed == "max" else (None if speed is None else float(speed)),
            seed=int(raw["seed"]),
            duration_s=None if raw["duration_s"] is None else float(raw["duration_s"]),
            record_dir=None if raw.get("record_dir") is None else str(raw["record_dir"]),
            record_topics=tuple(str(t) for t in raw.get("record_topics") or ()),
            scenario=None if raw.get("scenario") is None else str(raw["scenario"]),
            board_backends={str(k): str(v) for k, v in dict(raw.get("board_backends") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{run_dir / RUN_FILE}: unreadable run options: {exc}"
        raise ConfigError(msg) from exc
    return deployment, options


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
