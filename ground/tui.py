"""The live dashboard of the ground console (``fsw ground tui``), in Textual.

::

    fsw ground station &          # the station (link, archive, API) must be running
    fsw ground tui                # or: fsw ground tui --api tcp://HOST:7100 --pub tcp://HOST:7101

What it shows, live from the station's publisher (:mod:`ground.station`):

* a status line: the base, its mode (fault protection's ``mode``), whether the radio link
  is up (comms' ``link_up``), the round trip of the station's keep-alive, and how long ago
  the last packet arrived;
* four panels, power, thermal, reactor and comms, of key points, each coloured by its
  dictionary limits (green, yellow, red; magenta for a value that is not a number);
* the events as they come, coloured by severity;
* the commands sent (by this console or any other) with their verification stages as the
  base reports them (accepted, started, completed; rejected or failed with the reason);
* a command line: ``TARGET COMMAND key=value ...`` (``reactor arm command=startup``, then
  ``reactor startup``), or ``ping``. Commands are checked against the dictionary before
  they leave.

The dictionary and the newest housekeeping come from the station's API at start
(``dictionary``, ``latest``); everything after from its publisher, polled every
:data:`POLL_PERIOD_S` without waiting. The app owns its subscription and closes it when
it ends; requests to the station run on a worker thread (one at a time: the client is
not thread-safe), so a slow station never freezes the screen. Ctrl+Q quits.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from fsw.dictionary import Point, parse_assignments
from fsw.errors import ConfigError, FswError
from fsw.monitors import as_number
from ground.client import Station, Subscription
from ground.mission import MissionDatabase
from ground.telemetry import FINAL_STAGES

#: The panels and their points, ``(source, points)``; points a dictionary lacks are left out.
PANELS: Final = (
    (
        "power",
        (
            "mode",
            "battery_soc",
            "battery_dod",
            "bus_voltage_v",
            "solar_power_w",
            "reactor_power_w",
            "load_power_w",
            "net_power_w",
            "tiers_shed",
        ),
    ),
    (
        "thermal",
        (
            "mode",
            "battery_temp_c",
            "avionics_temp_c",
            "habitat_temp_c",
            "radiator_temp_c",
            "reactor_radiator_temp_c",
            "heater_power_w",
            "nodes_out_of_limits",
        ),
    ),
    (
        "reactor",
        (
            "mode",
            "power_pct",
            "fuel_temp_c",
            "period_s",
            "rod_position",
            "electric_power_w",
            "tripped",
            "converters_running",
            "heat_pipes_ok",
            "alarms",
        ),
    ),
    (
        "comms",
        (
            "mode",
            "link_up",
            "dte_visible",
            "relay_visible",
            "downlink_rate_bps",
            "light_time_s",
            "queue_fill",
            "since_command_s",
            "tc_accepted",
            "tc_rejected",
        ),
    ),
)
#: The point that says the base's mode (fault protection's mode machine).
MODE_POINT: Final = ("protection", "mode")
#: The point that says whether the radio link is up.
LINK_POINT: Final = ("comms", "link_up")
#: Seconds between two polls of the publisher (each takes what is waiting, never blocks).
POLL_PERIOD_S: Final = 0.1
#: Messages taken from the publisher in one poll at most (the rest wait for the next).
MAX_MESSAGES_PER_POLL: Final = 500
#: Event lines kept (the oldest go first).
MAX_EVENTS: Final = 500
#: Command rows kept in the table (the oldest go first).
MAX_COMMANDS: Final = 200
#: Verification reports kept for commands not yet seen (they may overtake the send's reply).
MAX_EARLY_REPORTS: Final = 256
#: Commands sent by these origins are not shown (the station's own keep-alive pings).
HIDDEN_ORIGINS: Final = frozenset({"keepalive"})

#: Styles of the limit states and of event severities.
LIMIT_STYLES: Final = {"green": "green", "yellow": "bold yellow", "red": "bold red", "invalid": "magenta"}
SEVERITY_STYLES: Final = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold white on red",
}
_OUTCOME_STYLES: Final = {"completed": "green", "sent": "", "error": "bold red"}


def _clock(unix_s: float | None) -> str:
    if unix_s is None:
        return "--:--:--"
    return dt.datetime.fromtimestamp(unix_s, tz=dt.timezone.utc).strftime("%H:%M:%S")


def value_text(value: Any) -> str:
    """A telemetry value as the dashboard shows it (``-`` for no value or an empty string)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def limit_state(point: Point, value: Any) -> str:
    """``green``/``yellow``/``red``/``invalid`` by the point's limits; ``""`` without limits or value."""
    if point.limits is None or value is None:
        return ""
    return point.limits.state(as_number(value))


def arg_text(args: Mapping[str, Any]) -> str:
    """``key=value`` words as an operator types them."""
    words = []
    for name, value in args.items():
        plain = isinstance(value, str) and value and value.isprintable() and " " not in value
        words.append(f"{name}={value if plain else json.dumps(value, default=str)}")
    return " ".join(words)


@dataclass(frozen=True)
class CommandLine:
    """One command as typed: ``target`` and ``command`` (``None`` for ``ping``), its arguments."""

    target: str | None
    command: str | None
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The command as the dashboard lists it."""
        if self.command is None:
            return "ping"
        args = arg_text(self.args)
        return f"{self.target} {self.command}" + (f" {args}" if args else "")


def parse_command_line(text: str, mission: MissionDatabase | None) -> CommandLine:
    """``TARGET COMMAND key=value ...`` or ``ping``, checked against ``mission`` when known.

    Raises :class:`ConfigError` for a line that does not parse, and
    :class:`~fsw.errors.CommandRejected` naming what the dictionary refuses.
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        msg = f"cannot read {text!r}: {exc}"
        raise ConfigError(msg) from exc
    if words == ["ping"]:
        return CommandLine(None, None)
    if len(words) < 2:
        msg = "type TARGET COMMAND key=value ... (e.g. reactor arm command=startup), or ping"
        raise ConfigError(msg)
    target, command = words[0], words[1]
    args = parse_assignments(words[2:])
    if mission is not None:
        mission.check_command(target, command, args)
    return CommandLine(target, command, args)


@dataclass
class CommandRow:
    """A command in the dashboard's list and what the base said of it so far."""

    request: str
    text: str
    sent_s: float
    stages: list[str] = field(default_factory=list)
    outcome: str = "sent"
    reason: str = ""


class DashboardState:
    """What the dashboard knows, fed by the station's messages. No I/O, no Textual.

    :meth:`apply` takes one published message ``(topic, data)``; the app renders the
    state. ``now_s`` is the monotonic clock that ages the last packet.
    """

    def __init__(self, mission: MissionDatabase | None, now_s: float) -> None:
        self.mission = mission
        self.latest: dict[str, dict[str, Any]] = {}
        self.link: dict[str, Any] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_EVENTS)
        self.commands: collections.OrderedDict[str, CommandRow] = collections.OrderedDict()
        self._early: collections.OrderedDict[str, list[dict[str, Any]]] = collections.OrderedDict()
        self.last_packet_s: float | None = None
        self._link_report_s = now_s
        self.messages = 0

    # ----------------------------------------------------------------- input

    def seed(self, latest: Mapping[str, Mapping[str, Any]]) -> None:
        """The station's newest housekeeping (its ``latest`` reply) before any message."""
        for source, entry in latest.items():
            self.latest[str(source)] = {
                "unix_s": entry.get("unix_s"),
                "values": dict(entry.get("values") or {}),
            }

    def apply(self, topic: str, data: Mapping[str, Any], now_s: float) -> set[str]:
        """Take one message; return what changed: source names, ``events``, ``commands``, ``link``."""
        self.messages += 1
        if topic.startswith("hk."):
            source = str(data.get("source") or topic[3:])
            self.latest[source] = {"unix_s": data.get("unix_s"), "values": dict(data.get("values") or {})}
            self.last_packet_s = now_s
            return {source, "status"}
        if topic.startswith("evt."):
            self.events.append(dict(data))
            self.last_packet_s = now_s
            return {"events", "status"}
        if topic == "ver":
            self.last_packet_s = now_s
            return {"commands", "status"} if self._verification(data) else {"status"}
        if topic == "cmd":
            if data.get("origin") in HIDDEN_ORIGINS:
                return set()
            text = CommandLine(
                str(data.get("target", "")), str(data.get("command", "")), dict(data.get("args") or {})
            ).text
            self.sent(str(data.get("request", "")), text, time.time())
            return {"commands"}
        if topic == "link":
            self.link = dict(data)
            self._link_report_s = now_s
            return {"status"}
        return set()

    def sent(self, request: str, text: str, sent_s: float) -> CommandRow:
        """A command that left (from this console's send or the station's ``cmd`` message)."""
        row = self.commands.get(request)
        if row is None:
            row = self.commands[request] = CommandRow(request, text, sent_s)
            while len(self.commands) > MAX_COMMANDS:
                self.commands.popitem(last=False)
            for report in self._early.pop(request, []):
                self._stage(row, report)
        return row

    def failed_to_send(self, text: str, reason: str, sent_s: float) -> CommandRow:
        """A command that never left (refused by the dictionary, or no station)."""
        key = f"error-{sent_s!r}-{len(self.commands)}"
        row = self.sent(key, text, sent_s)
        row.outcome, row.reason = "error", reason
        return row

    def _verification(self, report: Mapping[str, Any]) -> bool:
        request = str(report.get("request", ""))
        row = self.commands.get(request)
        if row is None:
            self._early.setdefault(request, []).append(dict(report))
            while len(self._early) > MAX_EARLY_REPORTS:
                self._early.popitem(last=False)
            return False
        self._stage(row, report)
        return True

    @staticmethod
    def _stage(row: CommandRow, report: Mapping[str, Any]) -> None:
        stage = str(report.get("stage", ""))
        row.stages.append(stage)
        if report.get("reason"):
            failure = report.get("failure") or ""
            row.reason = f"{failure}: {report['reason']}" if failure else str(report["reason"])
        if stage in FINAL_STAGES:
            row.outcome = stage
        elif row.outcome == "sent":
            row.outcome = "pending"

    # ----------------------------------------------------------------- views

    def value(self, source: str, point: str) -> Any:
        """The newest value of ``source.point`` (``None`` if none yet)."""
        return (self.latest.get(source) or {}).get("values", {}).get(point)

    def last_packet_age_s(self, now_s: float) -> float | None:
        """Seconds since the last packet from the base (the station's figure if it is newer)."""
        ages = []
        if self.last_packet_s is not None:
            ages.append(now_s - self.last_packet_s)
        reported = self.link.get("last_tm_age_s")
        if isinstance(reported, (int, float)):
            ages.append(float(reported) + (now_s - self._link_report_s))
        return min(ages) if ages else None

    def status(self, now_s: float) -> Text:
        """The status line."""
        base = self.mission.base if self.mission is not None else "base"
        mode = self.value(*MODE_POINT)
        up = self.value(*LINK_POINT)
        line = Text()
        line.append(f" {base} ", style="bold reverse")
        line.append("  mode ")
        line.append(value_text(mode) if mode is not None else "?", style=_mode_style(mode))
        line.append("  link ")
        if up is None:
            line.append("?", style="dim")
        else:
            line.append("up" if up else "down", style="green" if up else "bold red")
        rtt = self.link.get("rtt_s")
        if isinstance(rtt, (int, float)):
            line.append(f"  rtt {rtt:.2f} s")
        age = self.last_packet_age_s(now_s)
        line.append("  last packet ")
        if age is None:
            line.append("never", style="dim")
        else:
            line.append(f"{age:.1f} s ago", style="yellow" if age > 30 else "")
        if self.link and not self.link.get("connected", True):
            line.append("  station link not connected", style="bold red")
        return line


def _mode_style(mode: Any) -> str:
    if mode in ("NOMINAL", None):
        return "bold green" if mode else "dim"
    if mode in ("SAFE", "EMERGENCY"):
        return "bold white on red"
    return "bold yellow"


class Dashboard(App[int]):
    """The dashboard app: ``client`` is the station's API client, ``pub`` its publisher.

    The app uses ``client`` only from one thread at a time and never closes it (the
    caller owns it); it owns and closes its subscription to ``pub``.
    """

    TITLE = "lunar-fsw ground"
    CSS = """
    #status { height: 1; background: $boost; }
    #panels { grid-size: 2 2; height: 1fr; min-height: 12; }
    .panel { border: round $primary; height: 1fr; }
    #lower { height: 12; }
    #events { width: 1fr; border: round $secondary; }
    #commands { width: 1fr; border: round $secondary; }
    #command { dock: bottom; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, client: Station, pub: str, *, poll_period_s: float = POLL_PERIOD_S) -> None:
        super().__init__()
        self.client = client
        self.pub = pub
        self.poll_period_s = poll_period_s
        self.state = DashboardState(None, time.monotonic())
        self.subscription: Subscription | None = None
        self._client_lock = threading.Lock()
        self._panels: dict[str, tuple[Point, ...]] = {}

    def compose(self) -> ComposeResult:
        """Status line, the four panels, events and commands, the command line."""
        yield Static(id="status")
        with Grid(id="panels"):
            for source, _ in PANELS:
                table: DataTable[Text | str] = DataTable(id=f"panel-{source}", classes="panel")
                table.border_title = source
                table.cursor_type = "none"
                yield table
        with Horizontal(id="lower"):
            events = RichLog(id="events", max_lines=MAX_EVENTS, markup=False, wrap=False)
            events.border_title = "events"
            yield events
            commands: DataTable[Text | str] = DataTable(id="commands")
            commands.border_title = "commands"
            commands.cursor_type = "none"
            yield commands
        yield Input(
            placeholder="TARGET COMMAND key=value ...  (e.g. reactor arm command=startup), or ping",
            id="command",
        )
        yield Footer()

    # ----------------------------------------------------------------- lifecycle

    def on_mount(self) -> None:
        """Load the dictionary and newest values, subscribe, start polling."""
        try:
            with self._client_lock:
                mission = self.client.mission()
                latest = self.client.latest()
        except FswError as exc:
            self.notify(f"the station did not give its dictionary: {exc}", severity="error", timeout=10)
            mission, latest = None, {}
        self.state.mission = mission
        if mission is not None:
            self.title = f"{mission.base}: ground"
        self.state.seed(latest)
        self._build_panels(mission)
        commands = self.query_one("#commands", DataTable)
        for key, label in (
            ("sent", "sent"),
            ("command", "command"),
            ("outcome", "outcome"),
            ("stages", "stages"),
        ):
            commands.add_column(label, key=key)
        self.subscription = Subscription(self.pub, ["hk.", "evt.", "ver", "cmd", "link"])
        self.set_interval(self.poll_period_s, self.poll)
        self._render_status()
        self.query_one("#command", Input).focus()

    def on_unmount(self) -> None:
        """Close the subscription (idempotent)."""
        self.close_subscription()

    def close_subscription(self) -> None:
        """Close the subscription to the station's publisher (idempotent)."""
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None

    def _build_panels(self, mission: MissionDatabase | None) -> None:
        for source, names in PANELS:
            table = self.query_one(f"#panel-{source}", DataTable)
            for key, label in (("point", "point"), ("value", "value"), ("unit", "unit")):
                table.add_column(label, key=key)
            points = tuple(
                mission.point(f"{source}.{name}")
                for name in names
                if mission is not None and mission.has_point(f"{source}.{name}")
            )
            self._panels[source] = points
            for point in points:
                table.add_row(point.name, "-", point.unit, key=point.name)
            self._render_panel(source)

    # ----------------------------------------------------------------- polling

    def poll(self) -> int:
        """Take the messages waiting on the publisher (never waits); return how many."""
        subscription = self.subscription
        if subscription is None:
            return 0
        changed: set[str] = set()
        events: list[Mapping[str, Any]] = []
        taken = 0
        now = time.monotonic()
        while taken < MAX_MESSAGES_PER_POLL:
            message = subscription.receive(0.0)
            if message is None:
                break
            taken += 1
            topic, data = message
            changed |= self.state.apply(topic, data, now)
            if topic.startswith("evt."):
                events.append(data)
        self._render(changed, events)
        return taken

    def feed(self, topic: str, data: Mapping[str, Any]) -> None:
        """Apply one message as if it came from the publisher (for replays and tests)."""
        changed = self.state.apply(topic, data, time.monotonic())
        self._render(changed, [data] if topic.startswith("evt.") else [])

    # ----------------------------------------------------------------- rendering

    def _render(self, changed: set[str], events: Sequence[Mapping[str, Any]] = ()) -> None:
        """Show what changed; nothing once the screen is gone (the app is ending)."""
        try:
            for event in events:
                self._write_event(event)
            for source in self._panels:
                if source in changed:
                    self._render_panel(source)
            if "commands" in changed:
                self._render_commands()
            self._render_status()
        except NoMatches:
            return

    def _render_status(self) -> None:
        self.query_one("#status", Static).update(self.state.status(time.monotonic()))

    def _render_panel(self, source: str) -> None:
        table = self.query_one(f"#panel-{source}", DataTable)
        entry = self.state.latest.get(source)
        table.border_subtitle = _clock(entry.get("unix_s")) if entry else "no data"
        for point in self._panels.get(source, ()):
            value = self.state.value(source, point.name)
            style = LIMIT_STYLES.get(limit_state(point, value), "")
            if value is None:
                style = "dim"
            table.update_cell(point.name, "value", Text(value_text(value), style=style), update_width=True)

    def _write_event(self, event: Mapping[str, Any]) -> None:
        severity = str(event.get("severity", ""))
        data = arg_text(event.get("data") or {})
        line = Text(f"{_clock(event.get('unix_s'))} {severity:<8} {event.get('source')}.{event.get('name')}")
        if data:
            line.append(f"  {data}")
        line.stylize(SEVERITY_STYLES.get(severity, ""))
        self.query_one("#events", RichLog).write(line)

    def _render_commands(self) -> None:
        table = self.query_one("#commands", DataTable)
        table.clear()
        for row in reversed(self.state.commands.values()):
            outcome = row.outcome + (f" ({row.reason})" if row.reason else "")
            style = _OUTCOME_STYLES.get(row.outcome, "yellow" if row.outcome == "pending" else "bold red")
            table.add_row(
                _clock(row.sent_s),
                row.text,
                Text(outcome, style=style),
                ", ".join(row.stages) or "-",
                key=row.request,
            )

    # ----------------------------------------------------------------- commanding

    def on_input_submitted(self, submitted: Input.Submitted) -> None:
        """Check the typed command and send it on the worker thread."""
        text = submitted.value.strip()
        if not text:
            return
        submitted.input.value = ""
        sent_s = time.time()
        try:
            line = parse_command_line(text, self.state.mission)
        except FswError as exc:
            self.state.failed_to_send(text, str(exc), sent_s)
            self._render({"commands"})
            return
        self.run_worker(lambda: self._send(line, sent_s), thread=True, group="station", exit_on_error=False)

    def _send(self, line: CommandLine, sent_s: float) -> None:
        """Worker thread: one request to the station; the outcome goes back to the app's thread."""
        try:
            with self._client_lock:
                if line.command is None:
                    request = str(self.client.request("ping")["request"])
                else:
                    request = self.client.send(line.target or "", line.command, line.args)
        except FswError as exc:
            self.call_from_thread(self._send_failed, line, str(exc), sent_s)
            return
        self.call_from_thread(self._sent, line, request, sent_s)

    def _sent(self, line: CommandLine, request: str, sent_s: float) -> None:
        self.state.sent(request, line.text, sent_s)
        self._render({"commands"})

    def _send_failed(self, line: CommandLine, reason: str, sent_s: float) -> None:
        self.state.failed_to_send(line.text, reason, sent_s)
        self._render({"commands"})


def run_tui(client: Station, pub_endpoint: str) -> int:
    """Run the dashboard until the operator quits (blocks); its exit status (0).

    ``client`` is a connected :class:`~ground.client.Station` (the caller closes it);
    ``pub_endpoint`` the station's publisher.
    """
    app = Dashboard(client, pub_endpoint)
    try:
        app.run()
    finally:
        app.close_subscription()
    return int(app.return_code or 0)


def points_shown(mission: MissionDatabase) -> dict[str, list[str]]:
    """The points each panel shows for ``mission`` (the :data:`PANELS` it has)."""
    return {
        source: [name for name in names if mission.has_point(f"{source}.{name}")] for source, names in PANELS
    }


__all__ = [
    "PANELS",
    "CommandLine",
    "Dashboard",
    "DashboardState",
    "limit_state",
    "parse_command_line",
    "points_shown",
    "run_tui",
    "value_text",
]
