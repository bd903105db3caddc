"""Time series of recorded telemetry points, and PNG plots of them (``fsw log plot``).

A point is named ``<source>.<point>`` (``power.battery_soc``,
``thermal.battery_temp_c``): the value of ``<point>`` in every valid
``tlm.<source>.hk`` record of a log. :func:`series` reads them (no plotting
library needed); :func:`plot` draws one panel per point against mission time with
matplotlib, which comes with the ``ground`` extra (``pip install
'lunar-fsw[ground]'``): the flight side never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsw.errors import CodecError, ConfigError
from fsw.messages import decode
from fsw.monitors import as_number
from hil.recording import LogReader, Selection, select

SECONDS_PER_DAY: Final = 86_400.0

#: Most samples kept per point; longer series are thinned evenly (the plot cannot show more).
MAX_SAMPLES: Final = 200_000


@dataclass
class Series:
    """One point's samples: mission times (s) and values (NaN where not a number)."""

    name: str
    t_s: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def parse_point(name: str) -> tuple[str, str]:
    """Split ``source.point``; :class:`ConfigError` naming ``name`` if it is not that shape."""
    source, dot, point = name.partition(".")
    if not dot or not source or not point:
        msg = f"point {name!r} must be <source>.<point>, e.g. power.battery_soc"
        raise ConfigError(msg)
    return source, point


def series(
    log: str | Path,
    points: Sequence[str],
    *,
    since_s: float | None = None,
    until_s: float | None = None,
    missing_ok: bool = False,
) -> dict[str, Series]:
    """Read ``points`` from the housekeeping records of ``log`` (file or directory), in one pass.

    Blocking (reads the whole log). Raises :class:`ConfigError` for a malformed point
    name, a log that cannot be read, or (unless ``missing_ok``: then it is left out of
    the result) a point the log never holds, naming the points it does hold for that source.
    """
    wanted = {name: parse_point(name) for name in points}
    by_source: dict[str, list[tuple[str, str]]] = {}
    for name, (source, point) in wanted.items():
        by_source.setdefault(source, []).append((name, point))
    out = {name: Series(name) for name in wanted}
    seen_points: dict[str, set[str]] = {source: set() for source in by_source}
    topics = tuple(f"tlm.{source}.hk".encode() for source in by_source)
    with LogReader(log) as reader:
        for item in select(reader, Selection(topics=topics, since_s=since_s, until_s=until_s)):
            try:
                message = decode(item.record.topic, item.record.body)
            except CodecError:
                continue
            wanted_here = by_source.get(message.source)
            if wanted_here is None:
                continue
            seen_points[message.source].update(message.data)
            for name, point in wanted_here:
                if point in message.data:
                    target = out[name]
                    target.t_s.append(message.t_s)
                    target.values.append(as_number(message.data[point]))
    missing = [name for name, s in out.items() if not s.t_s]
    if missing and missing_ok:
        for name in missing:
            del out[name]
    elif missing:
        hints = "; ".join(
            f"{src} has {', '.join(sorted(seen_points[src])[:40]) or 'no housekeeping here'}"
            for src in sorted({wanted[m][0] for m in missing})
        )
        msg = f"no samples of {', '.join(missing)} in {log} ({hints})"
        raise ConfigError(msg)
    for s in out.values():
        _thin(s)
    return out


def _thin(s: Series) -> None:
    if len(s.t_s) > MAX_SAMPLES:
        step = math.ceil(len(s.t_s) / MAX_SAMPLES)
        s.t_s = s.t_s[::step]
        s.values = s.values[::step]


def plot(
    data: Iterable[Series],
    out: str | Path,
    *,
    title: str = "",
    units: dict[str, str] | None = None,
) -> Path:
    """Draw one panel per series against mission time (days, or hours under 2 days) into ``out`` (PNG).

    Raises :class:`ConfigError` if matplotlib is not installed or ``out`` cannot be written.
    """
    plt = pyplot()
    panels = list(data)
    span_s = max((s.t_s[-1] for s in panels if s.t_s), default=0.0)
    scale_s, unit = (SECONDS_PER_DAY, "d") if span_s >= 2 * SECONDS_PER_DAY else (3600.0, "h")
    figure, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(10, 1.9 * len(panels) + 0.8), squeeze=False
    )
    for axis, s in zip(axes[:, 0], panels, strict=True):
        axis.plot([t / scale_s for t in s.t_s], s.values, linewidth=0.9)
        label = s.name if not units or not units.get(s.name) else f"{s.name} [{units[s.name]}]"
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        axis.grid(visible=True, alpha=0.3)
    axes[-1, 0].set_xlabel(f"mission time ({unit})")
    try:
        return save_figure(figure, out, title)
    finally:
        plt.close(figure)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; :class:`ConfigError` if matplotlib is not installed."""
    try:
        import matplotlib  # noqa: PLC0415 - ground-only, optional

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        msg = "plotting needs matplotlib: pip install 'lunar-fsw[ground]'"
        raise ConfigError(msg) from exc
    return plt


def save_figure(figure: Any, out: str | Path, title: str = "", *, dpi: int = 110) -> Path:
    """Title ``figure``, lay it out and write it to ``out`` (PNG); :class:`ConfigError` if it cannot."""
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(out)
    try:
        figure.savefig(path, dpi=dpi)
    except OSError as exc:
        msg = f"cannot write {path}: {exc}"
        raise ConfigError(msg) from exc
    return path


__all__ = ["Series", "parse_point", "plot", "pyplot", "save_figure", "series"]
