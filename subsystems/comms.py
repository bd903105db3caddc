"""Comms subsystem: links, transmitter, the store-and-forward downlink and the command-loss timer.

Links. Reads the radio board's visibility of the Earth (direct-to-Earth) and of the relay
orbiter, keys the transmitter while either is in view and unkeys it when neither is. A
link is *up* while the board reports a downlink rate above 0 (a path in view, the
transmitter keyed and the radio healthy). A path in view with the transmitter keyed and
no rate for ``RADIO_FAULT_CYCLES`` control cycles is a radio fault (``radio_fault``).

Store and forward (:mod:`subsystems.downlink`). Everything the ground should see is queued
as encoded bus messages (the envelope of :mod:`fsw.messages`), by priority:

* 0, events: every event on the bus (``evt.*``), alarms (severity warning and above,
  counted in ``alarms_queued``) and the rest alike;
* 1, housekeeping: every process's ``hk`` packet, each source sampled every
  ``hk_realtime_period_s`` (1 s: every packet at the default rates) while a link is up and
  every ``hk_stored_period_s`` (10 s) while none is, so the queue holds hours of history;
* 2, bulk: the science data stream, ``science_rate_bps`` (64 kbit/s) in records of
  ``science_chunk_bytes`` (4096) payload bytes (``tlm.comms.science`` envelopes with the
  record number and payload), produced while the science tier T3 is powered (the power
  subsystem's ``tiers_on`` bit 2; assumed on until power housekeeping has been heard).

What is queued is already the packet the ground receives (PUS telemetry of
:mod:`fsw.spacelink`, encoded at push time by :class:`~subsystems.groundlink.TelemetryEncoder`,
so the queue's bytes are the link's bytes): events as TM[5,x], housekeeping as TM[3,25] of
the source's APID, and the ground link's verification reports (TM[1,x], TM[17,2]) at
priority 0 with the events. Science records stay bus envelopes: they take their share of
the link's rate but go to the science archive, not on the ground link (``science_not_sent_bytes``).

Each control cycle while a link is up, ``downlink_rate_bps * cycle period / 8`` bytes
leave the queue, highest priority first, never a message split (a message longer than a
cycle's budget is carried over until its transmission time has passed); nothing leaves
while no link is up. Between cycles, the reports of the ground link (priority 0) leave as
soon as they are queued, on the next cycle's budget (at most one cycle's worth borrowed
ahead), so a telecommand's verification does not wait for the next cycle. What leaves is
handed to :meth:`CommsProcess.downlink`, which sends it on the ground link. The queue is
bounded by
``queue_bytes`` (16 MiB); when it is full, lower priorities make room for higher ones (see
:mod:`subsystems.downlink` for the rule) and every drop is counted per priority; drops of
events or housekeeping are reported by ``downlink_loss`` at most once an hour.

Ground link (:mod:`subsystems.groundlink`). Authenticated telecommands over UDP
(``link_udp``) and TCP (``link_tcp``), heard only while a link is up; TC[17,1] is answered
here, TC[8,1] goes to the process of its APID through the router, and every stage is
verified back (docs/space-link.md). ``activate_key`` (critical) rotates the key.

Command loss. No valid command from off the base (commands sent by the base's own
processes, such as fault protection's sequences, do not count; every valid telecommand
does) for
``command_loss_timeout_s`` of mission time (15 days by default: longer than a
direct-to-Earth outage) is a fault: the ``command_loss`` event,
and the ``command_loss`` housekeeping point true until the next valid command (which
raises ``command_loss_cleared``).

Modes: ``NO_LINK``, ``RELAY``, ``DIRECT`` (the path in view; direct-to-Earth preferred when
both are). Parameters (``[processes.comms.params]``) are checked in :meth:`setup`; a bad one
raises :class:`~fsw.errors.ConfigError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from fsw.bus import CommandClient
from fsw.deployment import numeric_params
from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, EventDef, Limits, Point, Severity
from fsw.errors import CommandRejected, ConfigError, FswError
from fsw.messages import Kind, Message, encode
from fsw.process import FlightProcess, Frame
from fsw.spacelink import DEFAULT_EPOCH_UTC, epoch_from_text, link_apids
from subsystems.downlink import LABELS, PRIORITIES, DownlinkQueue, Outgoing, Priority
from subsystems.groundlink import (
    LINK_EVENTS,
    LINK_POINTS,
    GroundLink,
    LinkConfig,
    TelemetryEncoder,
    read_link_config,
    utc_now_s,
)

#: One-way light time Earth-Moon, mean (seconds); the board's ``light_time_s`` when it has one.
ONE_WAY_LIGHT_TIME_S: Final = 1.28

#: Control cycles with a path in view, the transmitter keyed and no rate before ``radio_fault``.
RADIO_FAULT_CYCLES: Final = 3

#: Shortest mission time between two ``downlink_loss`` reports (s).
LOSS_REPORT_INTERVAL_S: Final = 3600.0

#: Event severities queued as alarms.
ALARM_SEVERITIES: Final = frozenset({"warning", "error", "critical"})

#: Bit of the science tier (T3) in the power subsystem's ``tiers_on``.
SCIENCE_TIER_BIT: Final = 1 << 2

#: Tolerance on mission-time comparisons of the housekeeping sampling (s).
_TIME_EPSILON_S: Final = 1e-6

#: ``[processes.comms.params]``: name -> (default, low, high).
PARAMS: Final[dict[str, tuple[float, float, float]]] = {
    "queue_bytes": (16 * 1024 * 1024, 1024.0, 2.0**31),
    "science_rate_bps": (64_000.0, 0.0, 1e8),
    "science_chunk_bytes": (4096.0, 64.0, 65536.0),
    "hk_realtime_period_s": (1.0, 0.0, 86400.0),
    "hk_stored_period_s": (10.0, 0.0, 86400.0),
    "command_loss_timeout_s": (15 * 86400.0, 60.0, 60.0 * 86400.0),
    "tc_rate_per_s": (2000.0, 1.0, 1e6),
    "tc_per_wakeup": (64.0, 1.0, 10_000.0),
}

#: Sender name of the ground's commands on the bus (a name no process may take).
GROUND_SOURCE: Final = "ground"


def _queue_points() -> tuple[Point, ...]:
    points: list[Point] = []
    for priority in PRIORITIES:
        label = LABELS[priority]
        what = f"priority {int(priority)} ({label})"
        points += [
            Point(f"queue_{label}_bytes", ArgType.INT, "B", f"Bytes waiting at {what}."),
            Point(f"queue_{label}_messages", ArgType.INT, "", f"Messages waiting at {what}."),
            Point(f"sent_{label}_bytes", ArgType.INT, "B", f"Bytes downlinked at {what}, total."),
            Point(f"sent_{label}_messages", ArgType.INT, "", f"Messages downlinked at {what}, total."),
            Point(f"dropped_{label}_bytes", ArgType.INT, "B", f"Bytes dropped at {what}, total."),
            Point(f"dropped_{label}_messages", ArgType.INT, "", f"Messages dropped at {what}, total."),
        ]
    return tuple(points)


def read_params(params: Any) -> dict[str, float]:
    """The comms parameters with their defaults; raises :class:`ConfigError` naming a bad key."""
    return numeric_params(params, PARAMS, "processes.comms.params", unknown_ok=True)


class CommsProcess(FlightProcess):
    """Flight process of the comms subsystem (see the module docstring)."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("dte_visible", ArgType.BOOL, "", "Earth visible for a direct link."),
            Point("relay_visible", ArgType.BOOL, "", "Relay orbiter visible."),
            Point("downlink_rate_bps", ArgType.FLOAT, "bit/s", "Current downlink rate."),
            Point("transmitter_on", ArgType.BOOL, "", "Transmitter keyed."),
            Point("link_up", ArgType.BOOL, "", "A link is closed: data leaves the queue."),
            Point("link_time_s", ArgType.FLOAT, "s", "Mission time with a link up, total."),
            Point("light_time_s", ArgType.FLOAT, "s", "One-way light time to the Earth."),
            Point("radio_fault", ArgType.BOOL, "", "A path is in view, the transmitter keyed, no link."),
            Point("since_command_s", ArgType.FLOAT, "s", "Mission time since the last valid command."),
            Point("command_loss", ArgType.BOOL, "", "Command-loss fault active (no valid command in time)."),
            Point("mode", ArgType.STR, "", "NO_LINK, RELAY or DIRECT."),
            Point("queue_bytes", ArgType.INT, "B", "Bytes waiting in the downlink queue."),
            Point("queue_messages", ArgType.INT, "", "Messages waiting in the downlink queue."),
            Point(
                "queue_fill",
                ArgType.FLOAT,
                "",
                "Downlink queue fill level (0..1).",
                Limits(yellow_high=0.8, red_high=0.95),
            ),
            Point("queue_peak_bytes", ArgType.INT, "B", "Most bytes ever waiting in the queue."),
            *_queue_points(),
            Point("downlinked_bytes", ArgType.INT, "B", "Bytes handed to the ground link, total."),
            Point("alarms_queued", ArgType.INT, "", "Events of severity warning and above queued, total."),
            Point("science_bytes", ArgType.INT, "B", "Science (bulk) bytes produced, total."),
            Point(
                "science_not_sent_bytes",
                ArgType.INT,
                "B",
                "Science bytes that left the queue for the science archive, not the ground link.",
            ),
            *LINK_POINTS,
        ),
        events=(
            EventDef("link_acquired", Severity.INFO, "A link came up."),
            EventDef("link_lost", Severity.INFO, "No link is up any more."),
            EventDef("command_loss", Severity.ERROR, "No valid command for the command-loss timeout."),
            EventDef("command_loss_cleared", Severity.INFO, "A valid command arrived after a command loss."),
            EventDef("radio_fault", Severity.WARNING, "A path is in view, the transmitter keyed, no link."),
            EventDef("radio_recovered", Severity.INFO, "The radio closes a link again."),
            EventDef(
                "downlink_loss",
                Severity.WARNING,
                "The full downlink queue dropped events or housekeeping (counts since the last report).",
            ),
            *LINK_EVENTS,
        ),
        commands=(
            CommandDef(
                "set_transmitter",
                (Arg("on", ArgType.BOOL),),
                "Key or unkey the transmitter (auto keying resumes at the next link change).",
            ),
            CommandDef(
                "set_command_loss_timeout",
                (Arg("timeout_s", ArgType.FLOAT, "s", low=60.0, high=60.0 * 86400.0),),
                "Set the command-loss timer.",
            ),
            CommandDef(
                "activate_key",
                (Arg("key_id", ArgType.INT, low=0, high=65535, description="A key id of the key file."),),
                "Make another key of the key file the one that authenticates telecommands (kept across "
                "restarts); telecommands under the previous key are refused from then on.",
                critical=True,
            ),
        ),
    )

    def setup(self) -> None:
        """Check the parameters, open the board and check its channels, open the ground link."""
        params = read_params(self.params)
        link_config = read_link_config(
            self.params, params, state_dir=self.deployment.state_dir, run_dir=self.deployment.run_dir
        )
        super().setup()
        self.command_loss_timeout_s = params["command_loss_timeout_s"]
        self.queue = DownlinkQueue(int(params["queue_bytes"]))
        self.science_rate_bps = params["science_rate_bps"]
        self.science_chunk_bytes = int(params["science_chunk_bytes"])
        self.hk_realtime_period_s = params["hk_realtime_period_s"]
        self.hk_stored_period_s = params["hk_stored_period_s"]
        self.cycle_period_s = self.spec.frames_per_cycle(self.frame_period_s) * self.frame_period_s
        self.mode = "NO_LINK"
        self.values: dict[str, Any] = {}
        self.transmitter_on = False
        self.link_up = False
        self.link_time_s = 0.0
        self.radio_fault = False
        self._radio_suspect_cycles = 0
        self.radio_faults = 0
        self.last_command_t_s = 0.0
        #: Senders on the base itself: their commands are not contact with the ground.
        self._on_board = frozenset(
            {"clock", "bus", "supervisor", *(process.name for process in self.deployment.processes)}
        )
        self.command_loss_raised = False
        self.command_losses = 0
        self.downlinked_bytes = 0
        self.downlinked_messages = 0
        self.alarms_queued = 0
        self.science_on = True
        self.science_bytes = 0
        self._science_records = 0
        self._science_backlog_bytes = 0.0
        self._science_payload = bytes(self.science_chunk_bytes)
        self._hk_last_t_s: dict[str, float] = {}
        self._loss_reported = [0] * len(PRIORITIES)
        self._loss_report_t_s = -LOSS_REPORT_INTERVAL_S
        self._last_t_s: float | None = None
        self._keyed_once = False
        if self.board is not None:
            self.board.description.require(
                ("dte_visible", "relay_visible", "downlink_rate_bps"), ("transmitter",)
            )
        self.science_not_sent_bytes = 0
        #: The link's budget of one control cycle, and how much of the next one reports took early.
        self._cycle_budget_bytes = 0.0
        self._borrowed_bytes = 0.0
        #: Events raised before the bus is up, published once joined.
        self._deferred_events: list[tuple[str, dict[str, Any]]] = []
        self._open_link(link_config)

    def _open_link(self, config: LinkConfig) -> None:
        """The telemetry encoder, the command client and the ground link (its endpoints opened)."""
        names = [spec.name for spec in self.deployment.processes]
        apids = link_apids(names, config.apids)
        if config.epoch_utc:
            epoch_s = epoch_from_text(config.epoch_utc)
        elif self.options.lockstep:
            epoch_s = epoch_from_text(DEFAULT_EPOCH_UTC)
        else:
            epoch_s = utc_now_s() - self.mission_time_s  # set again on the first frame
        self._epoch_from_frames = not config.epoch_utc and not self.options.lockstep
        self.encoder = TelemetryEncoder(apids, self._dictionaries(), epoch_s)
        if self.context is None:
            msg = "process context missing"
            raise FswError(msg)
        self.client = CommandClient(
            self.deployment.bus.command, source=GROUND_SOURCE, time=self.time, context=self.context
        )
        self.add_reader(self.client.socket, self._on_outcomes)
        self.link = GroundLink(
            config,
            host=self,
            encoder=self.encoder,
            own_apid=apids[self.name],
            time_source=self.time,
            commands=self.client,
        )
        self.add_reader(self.link.fileno(), self._on_link)
        self.link.open_endpoints()

    def _dictionaries(self) -> dict[str, Dictionary]:
        """Each process's full dictionary (its housekeeping layout and event ids on the link)."""
        from fsw.launch import deployment_dictionaries  # noqa: PLC0415 - the launcher imports this module

        def unloadable(name: str, exc: ConfigError) -> None:  # its packets count as unencodable
            self.log.warning("dictionary_unavailable", process=name, error=str(exc)[:200])

        return deployment_dictionaries(self.deployment, unloadable=unloadable)

    def teardown(self) -> None:
        """Close the ground link, its command client and the board."""
        try:
            link = getattr(self, "link", None)
            if link is not None:
                link.close()
        finally:
            client = getattr(self, "client", None)
            if client is not None:
                client.close()
            super().teardown()

    def on_joined(self) -> None:
        """Publish what the ground link reported while the bus was not up yet."""
        deferred, self._deferred_events = self._deferred_events, []
        for name, data in deferred:
            self.event(name, **data)

    # ----------------------------------------------------------------- the link's host

    def link_is_up(self) -> bool:
        """Whether a link is up (the radio hears the ground only then)."""
        return self.link_up

    def link_mission_time_s(self) -> float:
        """Mission time now, for the link's time stamps."""
        return self.mission_time_s

    def queue_report(self, packet: bytes) -> None:
        """Queue a verification or ping report with the events (priority 0)."""
        self.queue.push(Priority.EVENT, packet)

    def link_event(self, name: str, data: dict[str, Any]) -> None:
        """Publish a link event (held until the bus is up)."""
        if self._joined:
            self.event(name, **data)
        else:
            self._deferred_events.append((name, data))

    def link_note(self, name: str, data: dict[str, Any], *, error: bool = False) -> None:
        """Log what the link did that depends on this host (an endpoint's port, a key file made)."""
        (self.log.error if error else self.log.info)(name, **data)

    def ground_contact(self, command: str = "telecommand") -> None:
        """The ground is in contact (a valid telecommand, or a command from off the base):
        the command-loss timer starts again and a command loss clears."""
        self.last_command_t_s = self.mission_time_s
        if self.command_loss_raised:
            self.command_loss_raised = False
            self.event("command_loss_cleared", command=command)

    def _on_link(self) -> None:
        self.link.service()
        self._send_reports_now()

    def _on_outcomes(self) -> None:
        self.link.collect_outcomes()
        self._send_reports_now()

    def next_timer_s(self) -> float | None:
        """Now if telecommands wait in the link's buffers; when to retry an endpoint that failed."""
        if self.link.backlog:
            return self.time.now_s()
        return self.link.reopen_at_s

    def on_timer(self) -> None:
        """Serve the link's backlog, or try again to open its endpoints."""
        if self.link.backlog:
            self._on_link()
        reopen_s = self.link.reopen_at_s
        if reopen_s is not None and self.time.now_s() >= reopen_s:
            self.link.open_endpoints()

    def extra_subscriptions(self) -> tuple[bytes, ...]:
        """Every event, and the ``hk`` packet of every process of the deployment."""
        return (b"evt.", *(f"tlm.{spec.name}.hk".encode() for spec in self.deployment.processes))

    # ----------------------------------------------------------------- in: the bus

    def on_message(self, message: Message) -> None:
        """Queue an event (priority 0) or a sampled housekeeping packet (priority 1).

        Hot path: every event and every housekeeping packet of the base arrives here.
        """
        kind = message.kind
        if kind is Kind.EVENT:
            if message.data.get("severity") in ALARM_SEVERITIES:
                self.alarms_queued += 1
            packet = self.encoder.event(message.source, message.name, message.t_s, message.data)
            if packet is None:
                self.link.counters.tm_unencodable += 1
                return
            self.queue.push(Priority.EVENT, packet)
        elif kind is Kind.TELEMETRY and message.name == "hk":
            source = message.source
            if source == "power":
                tiers_on = message.data.get("tiers_on")
                if isinstance(tiers_on, int):
                    self.science_on = bool(tiers_on & SCIENCE_TIER_BIT)
            last_s = self._hk_last_t_s.get(source)
            period_s = self.hk_realtime_period_s if self.link_up else self.hk_stored_period_s
            if last_s is not None and message.t_s - last_s < period_s - _TIME_EPSILON_S:
                return
            self._hk_last_t_s[source] = message.t_s
            packet = self.encoder.housekeeping(source, message.t_s, message.data)
            if packet is None:
                self.link.counters.tm_unencodable += 1
                return
            self.queue.push(Priority.HOUSEKEEPING, packet)

    # ----------------------------------------------------------------- the control cycle

    def on_frame(self, frame: Frame) -> None:
        """Run the command-loss timer, produce science, follow the links, drain the queue.

        A board that does not answer (the exception goes to the runtime) leaves the link
        down for the cycle: nothing leaves the queue.
        """
        t_s = frame.t_s
        if self._epoch_from_frames:
            self._epoch_from_frames = False
            self.encoder.epoch_unix_s = utc_now_s() - t_s  # real time: UTC at mission time 0
        self.link.expire()
        if t_s - self.last_command_t_s >= self.command_loss_timeout_s and not self.command_loss_raised:
            self.command_loss_raised = True
            self.command_losses += 1
            self.event("command_loss", since_command_s=round(t_s - self.last_command_t_s, 1))
        self._produce_science(t_s)
        self._report_losses(t_s)
        if self._last_t_s is not None and self.link_up:
            self.link_time_s += t_s - self._last_t_s
        self._last_t_s = t_s
        self.link_up = False
        if self.board is not None:
            self._follow_links()
        if self.link_up:
            budget_bytes = float(self.values["downlink_rate_bps"]) * self.cycle_period_s / 8.0
            self._cycle_budget_bytes = budget_bytes
            usable_bytes = budget_bytes - self._borrowed_bytes
            self._borrowed_bytes = max(0.0, -usable_bytes)
            if usable_bytes > 0.0:  # else reports sent early took this cycle's budget
                sent = self.queue.drain(usable_bytes)
                if sent:
                    self.downlink(sent)
        else:
            self._cycle_budget_bytes = self._borrowed_bytes = 0.0
            self.queue.drain(0.0)  # the link is down: nothing leaves, a half-sent message starts again

    def _send_reports_now(self) -> None:
        """Let waiting reports (priority 0) leave between cycles, on the next cycle's budget.

        At most one cycle's budget is borrowed ahead, so the link's rate holds over every
        cycle; a verification does not wait for the next cycle to leave.
        """
        waiting = self.queue.bytes_at(Priority.EVENT)
        if not self.link_up or not waiting:
            return
        budget_bytes = min(float(waiting), self._cycle_budget_bytes - self._borrowed_bytes)
        if budget_bytes <= 0.0:
            return
        self._borrowed_bytes += budget_bytes
        sent = self.queue.drain(budget_bytes)
        if sent:
            self.downlink(sent)

    def _follow_links(self) -> None:
        """Read the radio, key the transmitter on link changes, set ``link_up``, watch for a radio fault."""
        if self.board is None:
            return
        self.values = values = dict(self.board.read().values)
        dte, relay = bool(values["dte_visible"]), bool(values["relay_visible"])
        rate_bps = float(values["downlink_rate_bps"])
        mode = "DIRECT" if dte else ("RELAY" if relay else "NO_LINK")
        keyed = bool(values.get("transmitter_on", self.transmitter_on))
        if mode != self.mode or not self._keyed_once:
            if mode != self.mode:
                self.event(
                    "link_acquired" if mode != "NO_LINK" else "link_lost", mode=mode, previous=self.mode
                )
                self.mode = mode
            want = mode != "NO_LINK"
            # The first cycle also sets the board's transmitter, whatever it was keyed at before.
            if want != keyed or want != self.transmitter_on:
                self.board.command("transmitter", want)
                self.transmitter_on = want
            self._keyed_once = True
        self.link_up = rate_bps > 0.0
        if mode != "NO_LINK" and keyed and not self.link_up:
            self._radio_suspect_cycles += 1
            if self._radio_suspect_cycles >= RADIO_FAULT_CYCLES and not self.radio_fault:
                self.radio_fault = True
                self.radio_faults += 1
                self.event("radio_fault", mode=mode, cycles=self._radio_suspect_cycles)
        else:
            self._radio_suspect_cycles = 0
            if self.radio_fault and self.link_up:
                self.radio_fault = False
                self.event("radio_recovered", mode=mode, downlink_rate_bps=rate_bps)

    def _produce_science(self, t_s: float) -> None:
        """Queue this cycle's science records (bulk, priority 2) while the science tier is powered."""
        if not self.science_on or self.science_rate_bps <= 0.0:
            return
        self._science_backlog_bytes += self.science_rate_bps * self.cycle_period_s / 8.0
        chunk = self.science_chunk_bytes
        while self._science_backlog_bytes >= chunk:
            self._science_backlog_bytes -= chunk
            record = Message(
                Kind.TELEMETRY,
                self.name,
                "science",
                t_s,
                self._science_records,
                {"record": self._science_records, "payload": self._science_payload},
            )
            self._science_records += 1
            self.science_bytes += chunk
            self.queue.push(Priority.BULK, encode(record)[1])

    def downlink(self, sent: Sequence[Outgoing]) -> None:
        """Send what left the queue this cycle on the ground link, in order.

        Everything that leaves counts as downlinked; science records go to the science
        archive, not on the ground link (``science_not_sent_bytes``).
        """
        self.downlinked_messages += len(sent)
        for item in sent:
            size = len(item.data)
            self.downlinked_bytes += size
            if item.priority is Priority.BULK:
                self.science_not_sent_bytes += size
            else:
                self.link.send(item.data)

    def _report_losses(self, t_s: float) -> None:
        if t_s - self._loss_report_t_s < LOSS_REPORT_INTERVAL_S:
            return
        counters = self.queue.counters
        lost = {
            LABELS[p]: counters[p].dropped_messages - self._loss_reported[p]
            for p in (Priority.EVENT, Priority.HOUSEKEEPING)
        }
        if not any(lost.values()):
            return
        self._loss_report_t_s = t_s
        self._loss_reported = [c.dropped_messages for c in counters]
        self.event("downlink_loss", **{f"dropped_{label}_messages": n for label, n in lost.items()})

    # ----------------------------------------------------------------- commands and telemetry

    def _execute(self, message: Any) -> None:
        # A command from off the base (not from one of its own processes, such as fault
        # protection's sequences) resets the command-loss timer and clears the fault.
        if str(getattr(message, "source", "")) not in self._on_board:
            self.ground_contact(str(getattr(message, "name", "")))
        super()._execute(message)

    def housekeeping(self) -> dict[str, Any]:
        """Links, the downlink queue by priority, counters and timers."""
        values = self.values
        queue = self.queue
        points: dict[str, Any] = {
            k: values[k] for k in ("dte_visible", "relay_visible", "downlink_rate_bps") if k in values
        }
        points.update(
            transmitter_on=self.transmitter_on,
            link_up=self.link_up,
            link_time_s=round(self.link_time_s, 3),
            light_time_s=float(values.get("light_time_s", ONE_WAY_LIGHT_TIME_S)),
            radio_fault=self.radio_fault,
            since_command_s=round(self.mission_time_s - self.last_command_t_s, 3),
            command_loss=self.command_loss_raised,
            mode=self.mode,
            queue_bytes=queue.total_bytes,
            queue_messages=queue.total_messages,
            queue_fill=round(queue.total_bytes / queue.capacity_bytes, 6),
            queue_peak_bytes=queue.peak_bytes,
            downlinked_bytes=self.downlinked_bytes,
            alarms_queued=self.alarms_queued,
            science_bytes=self.science_bytes,
            science_not_sent_bytes=self.science_not_sent_bytes,
        )
        points.update(self.link.points())
        for priority in PRIORITIES:
            label = LABELS[priority]
            c = queue.counters[priority]
            points[f"queue_{label}_bytes"] = queue.bytes_at(priority)
            points[f"queue_{label}_messages"] = queue.messages_at(priority)
            points[f"sent_{label}_bytes"] = c.sent_bytes
            points[f"sent_{label}_messages"] = c.sent_messages
            points[f"dropped_{label}_bytes"] = c.dropped_bytes
            points[f"dropped_{label}_messages"] = c.dropped_messages
        return points

    def statistics(self) -> dict[str, Any]:
        """Link time, data downlinked, drops by priority, peak queue, faults."""
        stats: dict[str, Any] = {
            "link_time_h": round(self.link_time_s / 3600.0, 3),
            "downlinked_mb": round(self.downlinked_bytes / 1e6, 3),
            "queue_peak_bytes": self.queue.peak_bytes,
        }
        for priority in PRIORITIES:
            stats[f"dropped_{LABELS[priority]}_messages"] = self.queue.counters[priority].dropped_messages
        stats.update(command_losses=self.command_losses, radio_faults=self.radio_faults)
        counters = self.link.counters
        stats.update(tc_accepted=counters.accepted, tc_rejected=sum(counters.rejected.values()))
        return stats

    def command_set_transmitter(self, on: bool) -> dict[str, Any]:
        """Key or unkey the transmitter."""
        if self.board is not None:
            self.board.command("transmitter", on)
        self.transmitter_on = on
        return {"on": on}

    def command_set_command_loss_timeout(self, timeout_s: float) -> dict[str, Any]:
        """Set the command-loss timeout."""
        self.command_loss_timeout_s = timeout_s
        return {"timeout_s": timeout_s}

    def command_activate_key(self, key_id: int) -> dict[str, Any]:
        """Make key ``key_id`` of the key file the active one; rejected if the file has none such."""
        try:
            previous = self.link.activate_key(key_id)
        except ConfigError as exc:
            raise CommandRejected(str(exc)) from exc
        return {"key_id": key_id, "previous": previous}
