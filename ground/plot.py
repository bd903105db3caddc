"""Plots of archived telemetry (``fsw ground plot``), one panel per point against UTC.

Points are ``<source>.<point>``; their values come from the archive's housekeeping
(:meth:`ground.archive.Archive.series`). ``--since 1h`` counts back from the newest
packet archived (so a simulated run in 2030 plots as well as a live one); an ISO 8601
time is taken as it is. Yellow and red limits of the dictionary are drawn as dashed
lines. Needs matplotlib (``pip install 'lunar-fsw[ground]'``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from fsw.dictionary import Limits
from fsw.errors import ConfigError
from fsw.run import parse_duration
from fsw.spacelink import epoch_from_text
from ground.archive import Archive
from ground.mission import MissionDatabase
from hil.plot import Series, parse_point, pyplot, save_figure


def resolve_since(text: str | None, newest_s: float | None) -> float | None:
    """``--since``: a duration back from ``newest_s`` (``1h``, ``30min``), or an ISO 8601 time.

    ``None`` (no text) is everything. Raises :class:`ConfigError` for text that is neither.
    """
    if not text:
        return None
    if text[:1].isdigit() and ("-" in text[1:] or "T" in text):
        return epoch_from_text(text)
    seconds = parse_duration(text)
    if newest_s is None:
        return None
    return newest_s - seconds


def archive_series(
    archive: Archive, points: Sequence[str], *, since_s: float | None = None, until_s: float | None = None
) -> list[Series]:
    """The samples of ``points`` (times in UTC Unix seconds, values NaN where not numbers).

    Raises :class:`ConfigError` for a malformed point name, or naming the points that
    have no sample in the range.
    """
    wanted = [(name, *parse_point(name)) for name in points]
    by_source: dict[str, list[str]] = {}
    for _, source, point in wanted:
        by_source.setdefault(source, []).append(point)
    found: dict[str, Series] = {}
    for source, names in by_source.items():
        times, values = archive.series(source, names, since_s=since_s, until_s=until_s)
        for point in names:
            column = values[point]
            series = Series(f"{source}.{point}")
            for t_s, value in zip(times, column, strict=True):
                series.t_s.append(t_s)
                series.values.append(float("nan") if value is None else value)
            found[series.name] = series
    empty = [name for name, _, _ in wanted if not any(v == v for v in found[name].values)]  # noqa: PLR0124
    if empty:
        msg = f"no numeric samples of {', '.join(empty)} in {archive.path} for that time range"
        raise ConfigError(msg)
    return [found[name] for name, _, _ in wanted]


def _limit_lines(axis: object, limits: Limits | None) -> None:
    if limits is None:
        return
    for value, colour in (
        (limits.red_low, "red"),
        (limits.yellow_low, "orange"),
        (limits.yellow_high, "orange"),
        (limits.red_high, "red"),
    ):
        if value is not None:
            axis.axhline(value, color=colour, linestyle="--", linewidth=0.8, alpha=0.7)  # type: ignore[attr-defined]


def plot_series(
    data: Sequence[Series],
    out: str | Path,
    *,
    title: str = "",
    mission: MissionDatabase | None = None,
) -> Path:
    """Draw one panel per series against UTC time into ``out`` (PNG); limits from ``mission``.

    Raises :class:`ConfigError` if matplotlib is missing or ``out`` cannot be written.
    """
    plt = pyplot()
    import matplotlib.dates as mdates  # noqa: PLC0415 - ground-only, optional (pyplot() checked it)

    figure, axes = plt.subplots(len(data), 1, sharex=True, figsize=(10, 1.9 * len(data) + 0.9), squeeze=False)
    try:
        for axis, series in zip(axes[:, 0], data, strict=True):
            times = [dt.datetime.fromtimestamp(t, tz=dt.timezone.utc) for t in series.t_s]
            axis.plot(times, series.values, linewidth=0.9)
            label = series.name
            if mission is not None and mission.has_point(series.name):
                point = mission.point(series.name)
                if point.unit:
                    label = f"{series.name} [{point.unit}]"
                _limit_lines(axis, point.limits)
            axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            axis.grid(visible=True, alpha=0.3)
        bottom = axes[-1, 0]
        locator = mdates.AutoDateLocator(tz=dt.timezone.utc, maxticks=8)  # type: ignore[no-untyped-call]
        bottom.xaxis.set_major_locator(locator)
        formatter = mdates.ConciseDateFormatter(locator, tz=dt.timezone.utc)  # type: ignore[no-untyped-call]
        bottom.xaxis.set_major_formatter(formatter)
        bottom.set_xlabel("UTC")
        return save_figure(figure, out, title)
    finally:
        plt.close(figure)


def plot_archive(
    archive: Archive,
    points: Sequence[str],
    out: str | Path,
    *,
    since: str | None = None,
    mission: MissionDatabase | None = None,
) -> Path:
    """Plot ``points`` from ``archive`` since ``since`` (see :func:`resolve_since`) into ``out``."""
    newest_s = archive.newest_unix_s()
    if newest_s is None:
        msg = f"the archive {archive.path} holds no telemetry yet"
        raise ConfigError(msg)
    since_s = resolve_since(since, newest_s)
    data = archive_series(archive, points, since_s=since_s)
    start = dt.datetime.fromtimestamp(data[0].t_s[0] if data[0].t_s else newest_s, tz=dt.timezone.utc)
    end = dt.datetime.fromtimestamp(newest_s, tz=dt.timezone.utc)
    title = f"{mission.base + ': ' if mission else ''}{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"
    return plot_series(data, out, title=title, mission=mission)
