"""The campaign report: ``report.md`` with PNG plots, and ``report.json`` with the same figures.

:func:`write_report` writes, into the campaign's report directory, what an operations
engineer reads after a long-term autonomy campaign (:mod:`hil.campaign`): the verdict on
every safety invariant, the headline figures (minimum state of charge, peak temperatures,
reactor trips, energy not served per tier, time in each mode), every fault injected with
when it was detected, what responded and how long it took in mission time, the mode
timeline, and plots of power, thermal and reactor telemetry. :func:`markdown` is the text
alone (pure). Plots need matplotlib (the ``ground`` extra); without it the report says so
and has no pictures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from statistics import median
from typing import Any, Final

from fsw.errors import ConfigError
from fsw.modes import MODES
from hil.campaign import SCENARIO_FILE, format_duration
from hil.campaign_analysis import (
    COLLAPSE_BUS_V,
    FUEL_LIMIT_C,
    HELD,
    NOT_JUDGED,
    VIOLATED,
    CampaignReport,
    FaultOutcome,
    ModeSpan,
    Table,
    time_in_modes,
)
from hil.plot import pyplot, save_figure

REPORT_FILE: Final = "report.md"
REPORT_JSON: Final = "report.json"
PLOTS: Final = ("modes.png", "power.png", "thermal.png", "reactor.png")

#: Most points drawn per line (longer series are reduced to a min/max envelope).
MAX_PLOT_BUCKETS: Final = 4000
#: Most faults drawn one per lane in the mode plot (more: one lane per board).
MAX_FAULT_LANES: Final = 60
#: Most mode changes listed in the report (all are in report.json).
MAX_MODE_ROWS: Final = 200

MODE_COLOURS: Final = {
    "BOOT": "#9e9e9e",
    "NOMINAL": "#4caf50",
    "DEGRADED": "#ffc107",
    "SAFE": "#2196f3",
    "SURVIVAL": "#9c27b0",
    "EMERGENCY": "#f44336",
}
BOARD_LANES: Final = ("power", "thermal", "comms", "reactor")
_VERDICT: Final = {HELD: "held", VIOLATED: "**VIOLATED**", NOT_JUDGED: "not judged"}


# --- text -----------------------------------------------------------------------------


def mission_time(t_s: float | None) -> str:
    """``12 d 03:25:10`` (mission time), or ``-``."""
    if t_s is None or not math.isfinite(t_s):
        return "-"
    whole = round(t_s)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days} d {hours:02d}:{minutes:02d}:{seconds:02d}"


def latency(seconds: float | None) -> str:
    """``+42 s``, ``+3.5 h``, or ``-``."""
    if seconds is None:
        return "-"
    return "+" + format_duration(max(0.0, seconds))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: Any, fmt: str = "{:.4g}") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return fmt.format(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return lines


def _response(outcome: FaultOutcome) -> str:
    parts = []
    if outcome.base_response is not None:
        parts.append(f"{latency(outcome.latency_s(outcome.base_response))} {outcome.base_response.text}")
    if outcome.subsystem_response is not None:
        sign = outcome.subsystem_response
        parts.append(f"{latency(outcome.latency_s(sign))} {sign.text}")
    return "; ".join(parts) or "-"


def _fault_rows(outcomes: Sequence[FaultOutcome]) -> list[list[str]]:
    rows = []
    for o in outcomes:
        fault = o.fault
        lasts = "to the end" if fault.until_s is None else format_duration(fault.until_s - fault.at_s)
        if o.status == "detected" and o.detection is not None:
            detected = f"{latency(o.detection_s)} {o.detection.text}"
        elif o.status == "rejected":
            detected = f"rejected: {o.rejected}"
        else:
            detected = o.status
        rows.append(
            [
                str(fault.number),
                mission_time(o.injected_s if o.injected_s is not None else fault.at_s),
                f"{fault.entry}: {fault.spec.describe()}",
                lasts,
                detected,
                _response(o),
                ", ".join(o.modes) or "-",
            ]
        )
    return rows


def _per_entry_rows(outcomes: Sequence[FaultOutcome]) -> list[list[str]]:
    by_entry: dict[str, list[FaultOutcome]] = {}
    for o in outcomes:
        by_entry.setdefault(o.fault.entry, []).append(o)
    rows = []
    for entry, group in sorted(by_entry.items()):
        injected = [o for o in group if o.injected_s is not None]
        detections = [o.detection_s for o in injected if o.detection_s is not None]
        responses = [o.response_s for o in injected if o.response_s is not None]
        rows.append(
            [
                entry,
                str(len(injected)),
                str(len(detections)),
                latency(median(detections)) if detections else "-",
                latency(max(detections)) if detections else "-",
                str(len(responses)),
                latency(median(responses)) if responses else "-",
            ]
        )
    return rows


def _mode_rows(spans: Sequence[ModeSpan]) -> list[list[str]]:
    return [
        [mission_time(s.start_s), s.mode, format_duration(s.end_s - s.start_s), s.cause or "-", s.by or "-"]
        for s in spans[:MAX_MODE_ROWS]
    ]


def _invariant_rows(report: CampaignReport) -> list[list[str]]:
    return [
        [
            i.title,
            _VERDICT.get(i.status, i.status),
            i.detail,
            str(i.judged),
            str(i.masked),
            mission_time(i.first_violation_t_s),
        ]
        for i in report.invariants
    ]


def _figure_lines(report: CampaignReport) -> list[str]:
    f = report.figures
    lines = []
    soc_when = mission_time(f.get("battery_soc_min_t_s"))
    lines.append(
        f"- **Minimum state of charge**: {_number(f.get('battery_soc_min'))} at {soc_when} "
        "(housekeeping, readings a sensor fault lied about left out; the lowest the power subsystem "
        f"read, lies included: {_number(f.get('battery_soc_min_read'))}); "
        f"lowest bus voltage read {_number(f.get('bus_voltage_min_v'))} V"
    )
    trips = f.get("reactor_trip_events") or []
    trip_text = "; ".join(f"{mission_time(t['t_s'])} {t['reason']}" for t in trips) or "none"
    lines.append(f"- **Reactor trips**: {f.get('reactor_trips')} ({trip_text})")
    not_served = f.get("energy_not_served_wh") or {}
    tiers = ", ".join(f"{k.upper()} {_number(v, '{:.1f}')} Wh" for k, v in not_served.items())
    all_tiers = _number(f.get("energy_not_served_total_wh"), "{:.1f}")
    lines.append(
        f"- **Energy not served**: {tiers} (total {all_tiers} Wh); "
        f"tier 0 short of power (bus collapsed) about {_number(f.get('tier0_short_h'))} h"
    )
    lines.append(f"- **Load shedding**: {f.get('shed_events')} sheds, {f.get('hard_cuts')} hard cuts")
    modes = time_in_modes(report.spans)
    total = sum(modes.values()) or 1.0
    mode_text = ", ".join(f"{m} {format_duration(s)} ({100 * s / total:.1f} %)" for m, s in modes.items())
    lines.append(f"- **Time in modes**: {mode_text or 'no fault-protection modes recorded'}")
    counts = f.get("faults") or {}
    lines.append(
        "- **Faults**: "
        + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none")
        + (f"; {len(report.skipped)} draws left out (same fault still active)" if report.skipped else "")
    )
    return lines


def _peak_rows(report: CampaignReport) -> list[list[str]]:
    peaks = report.figures.get("peak_temperatures_c") or {}
    nodes: dict[str, dict[str, Any]] = {}
    for key, value in peaks.items():
        base = key.removesuffix("_c")
        for suffix, column in (("_peak", "peak"), ("_min", "min")):
            if base.endswith(suffix):
                node = base.removesuffix(suffix).removesuffix("_temp")
                nodes.setdefault(node, {})[column] = value
    return [[node, _number(v.get("min")), _number(v.get("peak"))] for node, v in nodes.items()]


def _run_lines(report: CampaignReport) -> list[str]:
    s = report.settings
    run = report.summary
    restarts = {k: v for k, v in (run.get("restarts") or {}).items() if v}
    command = (
        f"fsw campaign --days {s.get('days')} --faults {s.get('faults')} --seed {s.get('seed')} "
        f"--rate-scale {s.get('rate_scale')}"
    )
    if s.get("frame_period_overridden"):
        command += f" --frame-period {s.get('frame_period_s')}"
    return [
        f"- Deployment {s.get('deployment')}, frames of {s.get('frame_period_s')} s; "
        f"catalogue {s.get('catalogue')}; rate scale {s.get('rate_scale')}; seed {s.get('seed')}",
        f"- Run: {run.get('reason')}; mission time {format_duration(float(run.get('mission_time_s', 0.0)))}, "
        f"{run.get('frames')} frames in {_number(run.get('wall_s'), '{:.0f}')} s of wall time "
        f"({_number(run.get('frames_per_wall_s'), '{:.0f}')} frames/s)",
        f"- Health: restarts {', '.join(f'{k} {v}' for k, v in restarts.items()) or 'none'}; "
        f"late/missed frames {run.get('late_frames')}/{run.get('missed_frames')}; "
        f"messages lost {run.get('lost')}, malformed {run.get('malformed')}",
        f"- Event history digest `{str(report.figures.get('events_digest', ''))[:16]}` (flight processes' "
        "events without run-specific fields: two runs with the same digest went event for event alike)",
        f"- Reproduce: `{command}`",
    ]


def markdown(report: CampaignReport, plots: Sequence[str] = PLOTS, plot_note: str = "") -> str:
    """The report as Markdown, with ``plots`` (file names beside it) embedded. Pure."""
    s = report.settings
    verdict = "every safety invariant held" if report.passed else "**FAILED**"
    if report.summary.get("reason") != "duration reached":
        verdict += f" (the run ended early: {report.summary.get('reason')})"
    out = [
        f"# Autonomy campaign: {s.get('days')} days, faults {s.get('faults')}, seed {s.get('seed')}",
        "",
        f"Verdict: {verdict}. No ground contact; faults drawn from the catalogue below.",
        "",
        *_run_lines(report),
        "",
        "## Safety invariants",
        "",
        *_table(
            ("invariant", "verdict", "detail", "samples judged", "not judged", "first violation"),
            _invariant_rows(report),
        ),
        "",
        "Samples are housekeeping (every 10 s in the lunation deployment); a sample is *not judged* "
        "while an injected sensor fault lies about the point or its board is silent. "
        f"The bus counts as collapsed below {COLLAPSE_BUS_V:g} V. Battery floor: state of charge "
        f"{s.get('battery_floor_soc')}.",
        "",
        "## Figures",
        "",
        *_figure_lines(report),
        "",
        "Temperatures as the flight software read them (over every control cycle):",
        "",
        *_table(("node", "lowest C", "highest C"), _peak_rows(report)),
        "",
        "## Modes",
        "",
    ]
    if "modes.png" in plots:
        out += ["![mode timeline and faults](modes.png)", ""]
    if report.spans:
        out += _table(("from", "mode", "for", "cause", "by"), _mode_rows(report.spans))
        if len(report.spans) > MAX_MODE_ROWS:
            out.append(f"({len(report.spans) - MAX_MODE_ROWS} more in report.json)")
    else:
        out.append("No mode change recorded: is fault protection in the deployment?")
    window = format_duration(report.detect_window_s)
    out += [
        "",
        "## Faults",
        "",
        f"Every fault injected (scenario: [{SCENARIO_FILE}]({SCENARIO_FILE})), when it was detected, what "
        f"responded and how long it took in mission time after the injection (looked for within {window}). "
        "Detected: a fault-protection monitor going yellow or red on a point or event of the watched "
        "subsystems, or a warning from them. Responses: fault protection's (a monitor's response) and "
        "the subsystems' own (load shedding, reactor setback or trip, mode changes).",
        "",
    ]
    if report.outcomes:
        out += _table(
            ("#", "injected", "fault", "lasts", "detected", "responses", "modes entered"),
            _fault_rows(report.outcomes),
        )
        out += [
            "",
            *_table(
                ("catalogue entry", "injected", "detected", "median", "slowest", "responded", "median"),
                _per_entry_rows(report.outcomes),
            ),
        ]
    else:
        out.append("No fault injected.")
    if report.skipped:
        out += ["", f"Left out of the draw (the same fault still active): {len(report.skipped)}."]
    out += ["", "## Telemetry", ""]
    for name, title in (("power.png", "power"), ("thermal.png", "thermal"), ("reactor.png", "reactor")):
        if name in plots:
            out += [f"![{title}]({name})", ""]
    if plot_note:
        out += [plot_note, ""]
    out += ["## Catalogue", ""]
    out += _table(
        ("entry", "board", "kind", "targets", "parameters", "rate /day", "lasts", "expected"),
        (
            [
                e["name"],
                e["board"],
                e["kind"],
                ", ".join(e.get("targets", [])) or "board",
                ", ".join(f"{k} {v}" for k, v in e.get("params", {}).items()) or "-",
                f"{e['rate_per_day']:g}",
                str(e.get("duration", "")),
                str(e.get("expect", "")),
            ]
            for e in report.catalogue
        ),
    )
    out += [
        "",
        "Files: `report.json` (these figures), `scenario.toml` (the faults), `campaign.json` (settings and "
        "draw), `run-summary.json`, `recording/` (`fsw log plot recording/ power.battery_soc ...`), `logs/`.",
        "",
    ]
    return "\n".join(out)


# --- plots ----------------------------------------------------------------------------


def _envelope(t_s: Sequence[float], values: Sequence[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most ``2 * buckets`` points keeping each bucket's lowest and highest value."""
    n = len(t_s)
    if n <= 2 * buckets:
        return list(t_s), list(values)
    size = math.ceil(n / buckets)
    xs: list[float] = []
    ys: list[float] = []
    for start in range(0, n, size):
        chunk = [(values[i], t_s[i]) for i in range(start, min(n, start + size)) if not math.isnan(values[i])]
        if not chunk:
            continue
        low = min(chunk)
        high = max(chunk)
        for v, t in sorted((low, high), key=lambda p: p[1]):
            xs.append(t)
            ys.append(v)
    return xs, ys


def _scale(report: CampaignReport) -> tuple[float, str]:
    end_s = max(report.observations.end_s, float(report.summary.get("mission_time_s", 0.0)))
    return (86_400.0, "d") if end_s >= 2 * 86_400.0 else (3600.0, "h")


def _shade_modes(axis: Any, spans: Sequence[ModeSpan], scale: float) -> None:
    for span in spans:
        if span.mode in ("NOMINAL", "BOOT"):
            continue
        axis.axvspan(
            span.start_s / scale,
            span.end_s / scale,
            color=MODE_COLOURS.get(span.mode, "#000"),
            alpha=0.12,
            lw=0,
        )


def _line(axis: Any, table: Table, point: str, scale: float, label: str, factor: float = 1.0) -> None:
    xs, ys = _envelope(table.t_s, table.columns[point], MAX_PLOT_BUCKETS)
    axis.plot([x / scale for x in xs], [y * factor for y in ys], linewidth=0.8, label=label)


def _save(plt: Any, figure: Any, path: Path) -> None:
    try:
        save_figure(figure, path, dpi=100)
    finally:
        plt.close(figure)


def _plot_modes(plt: Any, report: CampaignReport, path: Path) -> None:
    scale, unit = _scale(report)
    end = max(report.observations.end_s, float(report.summary.get("mission_time_s", 0.0))) / scale
    shown = [o for o in report.outcomes if o.injected_s is not None]
    per_fault = len(shown) <= MAX_FAULT_LANES
    lanes = [f"#{o.fault.number} {o.fault.entry}" for o in shown] if per_fault else list(BOARD_LANES)
    figure, (modes_axis, faults_axis) = plt.subplots(
        2,
        1,
        sharex=True,
        figsize=(11, 3.2 + 0.22 * max(len(lanes), 4)),
        gridspec_kw={"height_ratios": [2.2, 0.22 * max(len(lanes), 4) + 0.4]},
    )
    for row, mode in enumerate(MODES):
        bars = [(s.start_s / scale, (s.end_s - s.start_s) / scale) for s in report.spans if s.mode == mode]
        if bars:
            modes_axis.broken_barh(bars, (row - 0.4, 0.8), color=MODE_COLOURS[mode])
    modes_axis.set_yticks(range(len(MODES)), list(MODES), fontsize=8)
    modes_axis.set_ylim(-0.6, len(MODES) - 0.4)
    modes_axis.set_title("base mode (fault protection)", fontsize=9)
    modes_axis.grid(visible=True, axis="x", alpha=0.3)
    colours = {"detected": "#4caf50", "not detected": "#ff9800"}
    for index, o in enumerate(shown):
        injected_s = o.injected_s or 0.0
        board = o.fault.spec.board
        row = index if per_fault else (BOARD_LANES.index(board) if board in BOARD_LANES else 0)
        stop = o.cleared_s if o.cleared_s is not None else end * scale
        width = max((stop - injected_s) / scale, end / 300.0)
        faults_axis.broken_barh(
            [(injected_s / scale, width)],
            (row - 0.35, 0.7),
            color=colours.get(o.status, "#9e9e9e"),
            alpha=0.85,
        )
        if o.detection is not None:
            faults_axis.plot([o.detection.t_s / scale], [row], marker="|", color="black", markersize=8)
    faults_axis.set_yticks(range(len(lanes)), lanes, fontsize=7)
    faults_axis.set_ylim(len(lanes) - 0.4, -0.6)
    faults_axis.set_title("faults (green: detected, orange: not detected; | detection)", fontsize=9)
    faults_axis.set_xlim(0, end)
    faults_axis.set_xlabel(f"mission time ({unit})")
    faults_axis.grid(visible=True, axis="x", alpha=0.3)
    _save(plt, figure, path)


def _plot_panels(
    plt: Any,
    report: CampaignReport,
    path: Path,
    panels: Sequence[tuple[str, Callable[[Any, float], None]]],
) -> None:
    scale, unit = _scale(report)
    figure, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(11, 2.3 * len(panels) + 0.6), squeeze=False
    )
    for axis, (title, draw) in zip(axes[:, 0], panels, strict=True):
        _shade_modes(axis, report.spans, scale)
        draw(axis, scale)
        axis.set_ylabel(title, fontsize=8)
        axis.grid(visible=True, alpha=0.3)
        if len(axis.get_lines()) > 1:
            axis.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel(f"mission time ({unit}); shaded: modes other than NOMINAL")
    _save(plt, figure, path)


def write_plots(report: CampaignReport, directory: Path) -> list[str]:
    """Draw the four PNGs into ``directory``; return their names.

    Raises :class:`ConfigError` without matplotlib or if a file cannot be written.
    """
    plt = pyplot()
    tables = report.observations.tables
    power, thermal, reactor = tables["power"], tables["thermal"], tables["reactor"]
    floor = float(report.settings.get("battery_floor_soc", 0.1))
    _plot_modes(plt, report, directory / "modes.png")

    def soc(axis: Any, scale: float) -> None:
        _line(axis, power, "battery_soc", scale, "state of charge")
        axis.axhline(floor, color="red", linewidth=0.8, linestyle="--", label=f"floor {floor:g}")

    def bus(axis: Any, scale: float) -> None:
        _line(axis, power, "bus_voltage_v", scale, "bus")
        axis.axhline(COLLAPSE_BUS_V, color="red", linewidth=0.8, linestyle="--", label="collapse")

    def sources(axis: Any, scale: float) -> None:
        for point, label in (
            ("solar_power_w", "solar"),
            ("reactor_power_w", "reactor"),
            ("load_power_w", "load"),
        ):
            _line(axis, power, point, scale, label, factor=1e-3)

    _plot_panels(plt, report, directory / "power.png", (("charge", soc), ("bus V", bus), ("kW", sources)))

    def nodes(axis: Any, scale: float) -> None:
        for node in ("battery", "avionics", "habitat"):
            _line(axis, thermal, f"{node}_temp_c", scale, node)

    def radiators(axis: Any, scale: float) -> None:
        for node in ("radiator", "reactor_radiator"):
            _line(axis, thermal, f"{node}_temp_c", scale, node)

    _plot_panels(plt, report, directory / "thermal.png", (("C", nodes), ("radiators C", radiators)))

    def fuel(axis: Any, scale: float) -> None:
        _line(axis, reactor, "fuel_temp_c", scale, "fuel")
        axis.axhline(FUEL_LIMIT_C, color="red", linewidth=0.8, linestyle="--", label=f"{FUEL_LIMIT_C:g} C")

    def electric(axis: Any, scale: float) -> None:
        _line(axis, reactor, "electric_power_w", scale, "electric", factor=1e-3)

    _plot_panels(plt, report, directory / "reactor.png", (("fuel C", fuel), ("electric kW", electric)))
    return list(PLOTS)


def write_report(report: CampaignReport, directory: str | Path, *, plots: bool = True) -> Path:
    """Write ``report.md``, ``report.json`` and (with ``plots``) the PNGs into ``directory``.

    Returns the Markdown file's path. Without matplotlib the report is written without
    plots and says why. Raises :class:`ConfigError` if a file cannot be written.
    """
    target = Path(directory)
    drawn: list[str] = []
    note = ""
    if plots:
        try:
            drawn = write_plots(report, target)
        except ConfigError as exc:
            note = f"No plots: {exc}."
    path = target / REPORT_FILE
    try:
        path.write_text(markdown(report, drawn, note), encoding="utf-8")
        (target / REPORT_JSON).write_text(
            json.dumps(report.to_json(), indent=2, default=str) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        msg = f"cannot write the report into {target}: {exc}"
        raise ConfigError(msg) from exc
    return path


__all__ = [
    "PLOTS",
    "REPORT_FILE",
    "REPORT_JSON",
    "latency",
    "markdown",
    "mission_time",
    "write_plots",
    "write_report",
]
