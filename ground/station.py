"""The ground station: the one process that talks to the base (``fsw ground station``).

It owns the link (:mod:`ground.link`), the key ring and telecommand counters
(:mod:`ground.uplink`), the archive (:mod:`ground.archive`) and two ZeroMQ sockets every
other ground tool uses (the console commands, the dashboard, procedures, your own):

* a ROUTER at ``--api`` (default :data:`DEFAULT_API`): requests are msgpack maps
  ``{"op": ..., "id": any, ...}``; each gets one reply map (echoing ``id`` if given), or
  ``{"error": text}`` (with ``"rejected": true`` when a command failed its dictionary
  check). Works with REQ and DEALER clients alike. Ops:

  ``send``  ``{target, command, args}``: checked against the dictionary, signed, archived,
            sent; reply ``{"request": hex, "sequence", "key_id", "seq_count", "command_id"}``.
  ``ping``  ``{}``: a TC[17,1] to the link process; same reply as ``send``.
  ``status`` ``{request, wait_s?}``: ``{"request", "target", "command", "stages": [names],
            "details": [...], "final", "ok", "code", "failure", "reason", "round_trip_s"}``;
            with ``wait_s`` (at most :data:`MAX_WAIT_S`) the reply waits for the final stage.
  ``latest`` ``{}``: ``{source: {"unix_s", "values": {point: value}}}``, the newest
            housekeeping of every source.
  ``wait``  ``{after, wait_s}``: ``{"counter"}`` once more than ``after`` housekeeping
            packets have arrived in all (at once with ``after = -1``), or after ``wait_s``.
  ``dictionary`` ``{}``: ``{"base", "link_process", "apids", "dictionary"}``.
  ``link``  ``{}``: the link's counters (also published on ``link``).

* a PUB at ``--pub`` (default :data:`DEFAULT_PUB`), msgpack bodies: ``hk.<source>``
  ``{source, unix_s, values}``; ``evt.<source>`` ``{source, name, severity, unix_s,
  data}``; ``ver`` ``{request, stage, ok, code, failure, reason, target, command}``;
  ``cmd`` ``{request, target, command, args, origin}`` for every command sent; ``link``
  once a second.

Keep-alive: a TC[17,1] every ``keepalive_s`` (and one at start) so the base, which
answers to the address of the last valid telecommand, knows where the station is; its
round trip is the link's ``rtt_s``. Nothing blocks: one loop polls the link, the ROUTER
and a signal pipe with the nearest timer as its deadline; SIGTERM or SIGINT stops it,
writing what the archive has not yet got.
"""

from __future__ import annotations

import time as time_module
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack
import zmq

from fsw.bus import connect, receive_frames
from fsw.errors import CommandRejected, FswError, StorageError
from fsw.log import get_logger
from fsw.process import SignalWakeup
from fsw.resource import Resource
from fsw.timesource import MonotonicTime, TimeSource
from ground.archive import Archive, CommandRecord, VerificationRecord
from ground.link import Link, UdpLink, open_link
from ground.mission import MissionDatabase
from ground.telemetry import EVENT, FINAL_STAGES, HK, PONG, VERIFICATION, Packet, TelemetryDecoder
from ground.uplink import Built, Telecommander

#: Default endpoint of the station's request socket (ROUTER).
DEFAULT_API: Final = "tcp://127.0.0.1:7100"
#: Default endpoint of the station's publisher (PUB).
DEFAULT_PUB: Final = "tcp://127.0.0.1:7101"
#: Seconds between keep-alive pings.
KEEPALIVE_S: Final = 10.0
#: Seconds before a keep-alive that could not leave (a TCP link not connected yet) is tried again.
KEEPALIVE_RETRY_S: Final = 0.5
#: Most wall seconds packets wait before they are written to the archive.
FLUSH_PERIOD_S: Final = 0.2
#: Packets that make the archive write at once.
FLUSH_PACKETS: Final = 2000
#: Packets held for the archive at most (beyond this, a failing archive drops them, counted).
MAX_BUFFERED_PACKETS: Final = 100_000
#: Seconds between two ``link`` reports on the publisher.
LINK_REPORT_PERIOD_S: Final = 1.0
#: Longest a ``status`` or ``wait`` request may wait (seconds).
MAX_WAIT_S: Final = 60.0
#: Commands whose state is kept in memory (older ones are read back from the archive).
MAX_COMMANDS_KEPT: Final = 10_000
#: Requests waiting for an answer at most.
MAX_WAITERS: Final = 1000
#: Requests handled in one pass of the loop.
MAX_REQUESTS_PER_PASS: Final = 200
#: Longest a request body may be (bytes).
MAX_REQUEST_BYTES: Final = 64 * 1024
#: Longest the loop sleeps when nothing is due (seconds).
MAX_POLL_S: Final = 1.0
#: High-water marks of the API and publisher sockets.
API_HWM: Final = 1000
PUB_HWM: Final = 10_000

_NOBLOCK: Final = int(zmq.NOBLOCK)


@dataclass(frozen=True)
class StationConfig:
    """Where the station's link, keys, archive and sockets are (see ``fsw ground station --help``)."""

    link: str
    keys: Path
    archive: Path
    api: str = DEFAULT_API
    pub: str = DEFAULT_PUB
    keepalive_s: float = KEEPALIVE_S
    #: Local ``HOST:PORT`` of a UDP link (default: any free port).
    bind: str = ""


@dataclass
class CommandState:
    """A command sent, and what the base said of it so far."""

    id: int
    request: str
    origin: str
    target: str
    command: str
    args: dict[str, Any]
    sent_s: float
    sent_mono_s: float
    details: list[dict[str, Any]] = field(default_factory=list)
    final: bool = False
    ok: bool | None = None
    code: int | None = None
    failure: str = ""
    reason: str = ""
    round_trip_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The reply of ``status``."""
        return {
            "request": self.request,
            "command_id": self.id,
            "origin": self.origin,
            "target": self.target,
            "command": self.command,
            "args": self.args,
            "sent_s": self.sent_s,
            "stages": [d["stage"] for d in self.details],
            "details": self.details,
            "final": self.final,
            "ok": self.ok,
            "code": self.code,
            "failure": self.failure,
            "reason": self.reason,
            "round_trip_s": self.round_trip_s,
        }


def _status_from_archive(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "request": row["request"],
        "command_id": row["id"],
        "origin": row["origin"],
        "target": row["target"],
        "command": row["command"],
        "args": row["args"],
        "sent_s": row["sent_s"],
        "stages": [s["stage"] for s in row["stages"]],
        "details": row["stages"],
        "final": row["final"],
        "ok": row["ok"],
        "code": row["code"],
        "failure": row["failure"],
        "reason": row["reason"],
        "round_trip_s": None if row["finished_s"] is None else row["finished_s"] - row["sent_s"],
    }


@dataclass
class _Waiter:
    envelope: list[bytes]
    request_id: Any
    deadline_s: float
    request: str | None = None  # a status waiter: this command's final stage
    after: int | None = None  # a wait waiter: more housekeeping than this


class GroundStation(Resource):
    """The station (see the module docstring). ``run()`` until a signal; ``close()`` releases all.

    Raises :class:`~fsw.errors.ConfigError` for a bad link URL, :class:`~fsw.errors.BusError`
    for an endpoint that cannot be bound, :class:`~fsw.errors.StorageError` for an archive
    that cannot be opened. ``time`` is monotonic time for deadlines, ``wall_s`` the Unix
    clock for time stamps (both injected in tests).
    """

    def __init__(
        self,
        config: StationConfig,
        mission: MissionDatabase,
        *,
        time: TimeSource | None = None,
        wall_s: Callable[[], float] = time_module.time,
    ) -> None:
        self.config = config
        self.mission = mission
        self.log = get_logger(component="ground-station")
        self._time = time or MonotonicTime()
        self._wall_s = wall_s
        self._closed = False
        self._stop = False
        self.archive: Archive | None = None
        self.link: Link | None = None
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self.api: zmq.Socket[bytes] | None = None
        self.pub: zmq.Socket[bytes] | None = None
        try:
            self.archive = Archive(config.archive)
            self.uplink = Telecommander(
                config.keys, self.archive.counters(), self.archive.reserve, wall_s=wall_s
            )
            self.link = open_link(config.link, time=self._time, bind=config.bind)
            self._context = zmq.Context()
            self.api = connect(self._context, zmq.ROUTER, config.api, high_water_mark=API_HWM, bind=True)
            self.pub = connect(self._context, zmq.PUB, config.pub, high_water_mark=PUB_HWM, bind=True)
        except BaseException:
            self.close()
            raise
        self.decoder = TelemetryDecoder(mission)
        self.commands: OrderedDict[str, CommandState] = OrderedDict()
        self.latest: dict[str, dict[str, Any]] = {}
        self.hk_counter = 0
        self._buffer: list[Packet] = []
        self._flush_now = False
        self._verifications: list[VerificationRecord] = []
        self._waiters: list[_Waiter] = []
        self._link_apid = mission.apids.get(mission.link_process, min(mission.apids.values()))
        now = self._time.now_s()
        self._next_keepalive_s = now
        self._next_flush_s: float | None = None
        self._next_report_s = now + LINK_REPORT_PERIOD_S
        self._last_tm_mono_s: float | None = None
        self._last_tm_unix_s: float | None = None
        self.rtt_s: float | None = None
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "keepalives",
                "pongs",
                "requests",
                "bad_requests",
                "replies_dropped",
                "published_dropped",
                "unmatched_verifications",
                "archive_errors",
                "archive_dropped",
            ),
            0,
        )
        self._keys_warned = False
        self._last_error = ""

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Write what the archive has not yet got, close every socket and the archive (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.archive is not None and getattr(self, "_buffer", None):
            self._flush()
        for sock in (self.api, self.pub):
            if sock is not None:
                sock.close()
        self.api = self.pub = None
        if self._context is not None:
            self._context.term()
            self._context = None
        if self.link is not None:
            self.link.close()
        if self.archive is not None:
            self.archive.close()

    def stop(self) -> None:
        """Make :meth:`run` return after its current pass (call from the loop's thread)."""
        self._stop = True

    def run(self, *, handle_signals: bool = True) -> None:
        """Serve until SIGTERM/SIGINT (``handle_signals``, main thread only) or :meth:`stop`."""
        wakeup = SignalWakeup() if handle_signals else None
        link = self.link
        self.log.info(
            "station_started",
            link=str(link.url) if link is not None else "",
            local_port=link.local_port if isinstance(link, UdpLink) else None,
            api=self.config.api,
            pub=self.config.pub,
            archive=str(self.config.archive),
            keys=str(self.config.keys),
            apids=len(self.mission.apids),
        )
        try:
            while not self._stop and not (wakeup is not None and wakeup.stop_requested):
                self.poll_once(wakeup)
        finally:
            if wakeup is not None:
                self.log.info("station_stopping", signal=wakeup.signal_name or None)
                wakeup.close()
            self._flush()

    def poll_once(self, wakeup: SignalWakeup | None = None, max_wait_s: float = MAX_POLL_S) -> None:
        """One pass: wait for the link, a request or the nearest timer (at most ``max_wait_s``), handle it."""
        link, api = self.link, self.api
        if link is None or api is None:
            return
        poller = zmq.Poller()
        poller.register(api, zmq.POLLIN)
        link_fd = link.fileno()
        if link_fd is not None:
            poller.register(link_fd, zmq.POLLIN | (zmq.POLLOUT if link.wants_write() else 0))
        if wakeup is not None:
            poller.register(wakeup.fileno(), zmq.POLLIN)
        now = self._time.now_s()
        due = min(t for t in self._timers() if t is not None)
        timeout_ms = max(0, min(int(max_wait_s * 1000), int((due - now) * 1000.0 + 0.999)))
        ready = dict(poller.poll(timeout_ms))
        if wakeup is not None and wakeup.fileno() in ready:
            wakeup.drain()
        if link_fd is not None and link_fd in ready:
            flags = ready[link_fd]
            if flags & zmq.POLLOUT:
                link.on_writable()
            if flags & zmq.POLLIN:
                self.receive(link.on_readable())
        if api in ready:
            self._serve()
        self._run_timers()

    def _timers(self) -> list[float | None]:
        link = self.link
        return [
            self._next_keepalive_s,
            self._next_flush_s,
            self._next_report_s,
            link.next_timer_s() if link is not None else None,
            min((w.deadline_s for w in self._waiters), default=None),
        ]

    def _run_timers(self) -> None:
        now = self._time.now_s()
        if self.link is not None and (t := self.link.next_timer_s()) is not None and now >= t:
            self.link.tick()
        if now >= self._next_keepalive_s:
            self._next_keepalive_s = now + self.config.keepalive_s
            self._keepalive()
        if self._next_flush_s is not None and now >= self._next_flush_s:
            self._flush()
        if now >= self._next_report_s:
            self._next_report_s = now + LINK_REPORT_PERIOD_S
            self._publish(b"link", self.link_report())
        if self._waiters:
            self._expire_waiters(now)

    # ----------------------------------------------------------------- telemetry in

    def receive(self, packets: list[bytes]) -> None:
        """Decode, dispatch and buffer for the archive every packet of ``packets``."""
        if not packets:
            return
        received_s = self._wall_s()
        self._last_tm_mono_s = self._time.now_s()
        counter_before = self.hk_counter
        for raw in packets:
            packet = self.decoder.decode(raw, received_s)
            kind = packet.kind
            if kind == HK:
                self._housekeeping(packet)
            elif kind == EVENT:
                self._event(packet)
            elif kind == VERIFICATION:
                self._verification(packet)
            elif kind == PONG:
                self.stats["pongs"] += 1
            if packet.unix_s is not None:
                self._last_tm_unix_s = packet.unix_s
            self._buffer.append(packet)
        if len(self._buffer) >= FLUSH_PACKETS or self._flush_now:
            self._flush()  # a command's outcome is in the archive once a client can hear of it
        elif self._next_flush_s is None:
            self._next_flush_s = self._time.now_s() + FLUSH_PERIOD_S
        if self.hk_counter != counter_before and self._waiters:
            self._wake(lambda w: w.after is not None and self.hk_counter > w.after)

    def _housekeeping(self, packet: Packet) -> None:
        source = packet.source or ""
        entry = {"source": source, "unix_s": packet.unix_s, "values": packet.content}
        self.latest[source] = entry
        self.hk_counter += 1
        self._publish(b"hk." + source.encode(), entry)

    def _event(self, packet: Packet) -> None:
        source = packet.source or f"apid_{packet.apid}"
        content = packet.content
        self._publish(
            b"evt." + source.encode(),
            {
                "source": source,
                "name": content["name"],
                "severity": content["severity"],
                "unix_s": packet.unix_s,
                "data": content["data"],
            },
        )

    def _verification(self, packet: Packet) -> None:
        content = packet.content
        request, stage = content["request"], content["stage"]
        state = self.commands.get(request)
        if state is None:
            state = self._state_from_archive(request)
        if state is None:
            self.stats["unmatched_verifications"] += 1
            return
        detail = {
            "stage": stage,
            "ok": content["ok"],
            "code": content["code"],
            "failure": content["failure"],
            "reason": content["reason"],
            "unix_s": packet.unix_s,
            "received_s": packet.received_s,
        }
        state.details.append(detail)
        self._verifications.append(
            VerificationRecord(
                command_id=state.id,
                packet=packet,
                received_s=packet.received_s,
                unix_s=packet.unix_s,
                stage=stage,
                ok=bool(content["ok"]),
                code=content["code"],
                failure=content["failure"],
                reason=content["reason"],
            )
        )
        if content["code"] is not None:
            state.code, state.failure, state.reason = content["code"], content["failure"], content["reason"]
        if stage in FINAL_STAGES and not state.final:
            self._flush_now = True
            state.final = True
            state.ok = stage == "completed"
            state.round_trip_s = round(self._time.now_s() - state.sent_mono_s, 6)
            self._finished(state)
        self._publish(
            b"ver",
            {
                "request": request,
                "stage": stage,
                "ok": content["ok"],
                "code": content["code"],
                "failure": content["failure"],
                "reason": content["reason"],
                "target": state.target,
                "command": state.command,
            },
        )
        if state.final:
            self._wake(lambda w: w.request == request)

    def _finished(self, state: CommandState) -> None:
        if state.origin == "keepalive":
            if state.ok:
                self.rtt_s = state.round_trip_s
            return
        self.log.info(
            "command_verified" if state.ok else "command_failed",
            target=state.target,
            command=state.command,
            request=state.request,
            round_trip_s=state.round_trip_s,
            failure=state.failure or None,
            reason=state.reason or None,
        )
        if (
            state.ok
            and state.target == self.mission.link_process
            and state.command == "activate_key"
            and isinstance(state.args.get("key_id"), int)
        ):
            try:
                self.uplink.activate(int(state.args["key_id"]))
                self.log.info("key_activated", key_id=state.args["key_id"])
            except FswError as exc:
                self.log.error("key_activation_failed", error=str(exc))

    def _state_from_archive(self, request: str) -> CommandState | None:
        if self.archive is None:
            return None
        try:
            row = self.archive.command_by_request(request)
        except StorageError:
            return None
        if row is None or row["final"]:
            return None
        state = CommandState(
            id=row["id"],
            request=request,
            origin=row["origin"],
            target=row["target"],
            command=row["command"],
            args=row["args"],
            sent_s=row["sent_s"],
            sent_mono_s=self._time.now_s() - max(0.0, self._wall_s() - row["sent_s"]),
            details=list(row["stages"]),
        )
        self._remember(state)
        return state

    def _remember(self, state: CommandState) -> None:
        self.commands[state.request] = state
        self.commands.move_to_end(state.request)
        while len(self.commands) > MAX_COMMANDS_KEPT:
            self.commands.popitem(last=False)

    def _flush(self) -> None:
        self._next_flush_s = None
        self._flush_now = False
        if self.archive is None or not (self._buffer or self._verifications):
            return
        packets, verifications = self._buffer, self._verifications
        self._buffer, self._verifications = [], []
        try:
            self.archive.write(packets, verifications)
        except StorageError as exc:
            self.stats["archive_errors"] += 1
            self._last_error = str(exc)
            self.log.error("archive_write_failed", error=str(exc), packets=len(packets))
            if len(packets) + len(self._buffer) <= MAX_BUFFERED_PACKETS:
                self._buffer[:0] = packets  # try again with the next batch
                self._verifications[:0] = verifications
                self._next_flush_s = self._time.now_s() + 1.0
            else:
                self.stats["archive_dropped"] += len(packets)

    # ----------------------------------------------------------------- telecommands out

    def transmit(
        self, built: Built, target: str, command: str, args: dict[str, Any], origin: str
    ) -> CommandState:
        """Archive ``built`` (with the counters it used), then send it; return its state.

        Raises :class:`~fsw.errors.FswError` if the link is not connected or the archive
        cannot take it (nothing is sent then).
        """
        link, archive = self.link, self.archive
        if link is None or archive is None:
            msg = "the station is closed"
            raise FswError(msg)
        if not link.connected:
            msg = f"link {link.url} is not connected (retrying; last error: {link.counters.last_error})"
            raise FswError(msg)
        sent_s = self._wall_s()
        tc = built.telecommand
        record = CommandRecord(
            sent_s=sent_s,
            origin=origin,
            request=built.request,
            target=target,
            command=command,
            args=args,
            apid=tc.apid,
            seq_count=tc.seq_count,
            key_id=tc.key_id,
            sequence=tc.sequence,
            raw=built.packet,
        )
        command_id = archive.record_command(record, self.uplink.counters)
        state = CommandState(
            id=command_id,
            request=built.request,
            origin=origin,
            target=target,
            command=command,
            args=args,
            sent_s=sent_s,
            sent_mono_s=self._time.now_s(),
        )
        self._remember(state)
        if not link.send(built.packet):
            state.final, state.ok, state.reason = True, False, f"not sent: {link.counters.last_error}"
        self._publish(
            b"cmd",
            {"request": state.request, "target": target, "command": command, "args": args, "origin": origin},
        )
        if origin != "keepalive":
            self.log.info(
                "command_sent",
                target=target,
                command=command,
                request=state.request,
                key_id=tc.key_id,
                sequence=tc.sequence,
            )
        return state

    def _keepalive(self) -> None:
        try:
            built = self.uplink.build(self._link_apid)
        except FswError as exc:
            if not self._keys_warned:
                self._keys_warned = True
                self.log.warning("keepalive_not_sent", error=str(exc))
            self._last_error = str(exc)
            return
        self._keys_warned = False
        try:
            self.transmit(built, self.mission.link_process, "ping", {}, "keepalive")
        except FswError as exc:  # not connected yet (TCP): try again soon
            self._last_error = str(exc)
            self._next_keepalive_s = self._time.now_s() + min(KEEPALIVE_RETRY_S, self.config.keepalive_s)
            return
        self.stats["keepalives"] += 1

    # ----------------------------------------------------------------- the request socket

    def _serve(self) -> None:
        api = self.api
        for _ in range(MAX_REQUESTS_PER_PASS):
            if api is None:
                return
            frames = receive_frames(api)
            if frames is None:
                return
            if len(frames) < 2:
                continue
            envelope, body = frames[:-1], frames[-1]
            self.stats["requests"] += 1
            request: Any = None
            try:
                if len(body) > MAX_REQUEST_BYTES:
                    msg = f"request of {len(body)} bytes, more than {MAX_REQUEST_BYTES}"
                    raise CommandRejected(msg)
                request = msgpack.unpackb(body, raw=False, strict_map_key=False)
                if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                    msg = 'a request is a msgpack map with "op"'
                    raise CommandRejected(msg)
                reply = self._handle(envelope, request)
            except CommandRejected as exc:
                self.stats["bad_requests"] += 1
                reply = {"error": exc.reason, "rejected": True}
            except FswError as exc:
                self.stats["bad_requests"] += 1
                reply = {"error": str(exc)}
            except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as exc:
                self.stats["bad_requests"] += 1
                reply = {"error": f"request is not msgpack: {type(exc).__name__}"}
            except Exception as exc:  # a bug must not stop the station: the client gets the error
                self.stats["bad_requests"] += 1
                self.log.exception(
                    "request_failed", op=request.get("op") if isinstance(request, dict) else None
                )
                reply = {"error": f"station error: {type(exc).__name__}: {exc}"}
            if reply is not None:
                self._reply(envelope, request.get("id") if isinstance(request, dict) else None, reply)

    def _reply(self, envelope: list[bytes], request_id: Any, reply: dict[str, Any]) -> None:
        if self.api is None:
            return
        if request_id is not None:
            reply = {**reply, "id": request_id}
        body = msgpack.packb(reply, use_bin_type=True, default=str)
        try:
            self.api.send_multipart([*envelope, body], _NOBLOCK)
        except zmq.Again:
            self.stats["replies_dropped"] += 1

    def _handle(self, envelope: list[bytes], request: dict[str, Any]) -> dict[str, Any] | None:
        op = request["op"]
        if op == "send":
            return self._op_send(request)
        if op == "ping":
            built = self.uplink.build(self._link_apid)
            return self._sent(self.transmit(built, self.mission.link_process, "ping", {}, "api"), built)
        if op == "status":
            return self._op_status(envelope, request)
        if op == "latest":
            return {
                source: {"unix_s": e["unix_s"], "values": e["values"]} for source, e in self.latest.items()
            }
        if op == "wait":
            return self._op_wait(envelope, request)
        if op == "dictionary":
            return self.mission.to_json()
        if op == "link":
            return self.link_report()
        msg = f"unknown op {op!r} (ops: send, ping, status, latest, wait, dictionary, link)"
        raise CommandRejected(msg)

    @staticmethod
    def _sent(state: CommandState, built: Built) -> dict[str, Any]:
        tc = built.telecommand
        reply: dict[str, Any] = {
            "request": state.request,
            "command_id": state.id,
            "sequence": tc.sequence,
            "key_id": tc.key_id,
            "seq_count": tc.seq_count,
        }
        if state.final and not state.ok:
            reply["error"] = state.reason
        return reply

    def _op_send(self, request: dict[str, Any]) -> dict[str, Any]:
        target, command, args = request.get("target"), request.get("command"), request.get("args") or {}
        if not isinstance(target, str) or not isinstance(command, str) or not isinstance(args, dict):
            msg = 'send needs "target" and "command" (strings) and "args" (a map)'
            raise CommandRejected(msg)
        checked = self.mission.check_command(target, command, args)
        given = {name: checked[name] for name in args}
        built = self.uplink.build(self.mission.apid_of(target), command, given)
        return self._sent(self.transmit(built, target, command, given, "api"), built)

    def _park(self, waiter: _Waiter) -> None:
        if len(self._waiters) >= MAX_WAITERS:
            msg = f"more than {MAX_WAITERS} requests waiting: try again later"
            raise FswError(msg)
        self._waiters.append(waiter)

    @staticmethod
    def _wait_s(request: dict[str, Any]) -> float:
        wait_s = request.get("wait_s", 0.0)
        if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or not wait_s >= 0:
            msg = "wait_s must be a number of seconds >= 0"
            raise CommandRejected(msg)
        return min(float(wait_s), MAX_WAIT_S)

    def _op_status(self, envelope: list[bytes], request: dict[str, Any]) -> dict[str, Any] | None:
        key = request.get("request")
        if not isinstance(key, str):
            msg = 'status needs "request" (the hex request id send returned)'
            raise CommandRejected(msg)
        wait_s = self._wait_s(request)
        state = self.commands.get(key)
        if state is None:
            row = self.archive.command_by_request(key) if self.archive is not None else None
            if row is None:
                msg = f"no command with request id {key!r}"
                raise CommandRejected(msg)
            return _status_from_archive(row)
        if state.final or wait_s <= 0:
            return state.to_json()
        self._park(_Waiter(envelope, request.get("id"), self._time.now_s() + wait_s, request=key))
        return None

    def _op_wait(self, envelope: list[bytes], request: dict[str, Any]) -> dict[str, Any] | None:
        after = request.get("after", -1)
        if isinstance(after, bool) or not isinstance(after, int):
            msg = "wait needs after: an integer housekeeping counter"
            raise CommandRejected(msg)
        wait_s = self._wait_s(request)
        if self.hk_counter > after or wait_s <= 0:
            return {"counter": self.hk_counter}
        self._park(_Waiter(envelope, request.get("id"), self._time.now_s() + wait_s, after=after))
        return None

    def _answer(self, waiter: _Waiter) -> None:
        if waiter.request is not None:
            state = self.commands.get(waiter.request)
            reply = state.to_json() if state is not None else {"error": f"request {waiter.request} forgotten"}
        else:
            reply = {"counter": self.hk_counter}
        self._reply(waiter.envelope, waiter.request_id, reply)

    def _wake(self, ready: Callable[[_Waiter], bool]) -> None:
        keep = []
        for waiter in self._waiters:
            if ready(waiter):
                self._answer(waiter)
            else:
                keep.append(waiter)
        self._waiters = keep

    def _expire_waiters(self, now: float) -> None:
        self._wake(lambda w: now >= w.deadline_s)

    # ----------------------------------------------------------------- reports

    def _publish(self, topic: bytes, data: dict[str, Any]) -> None:
        if self.pub is None:
            return
        try:
            self.pub.send_multipart([topic, msgpack.packb(data, use_bin_type=True, default=str)], _NOBLOCK)
        except zmq.Again:
            self.stats["published_dropped"] += 1

    def link_report(self) -> dict[str, Any]:
        """The link's counters: what went each way, the last telemetry, the round trip, the archive."""
        link = self.link
        counters = link.counters if link is not None else None
        now = self._time.now_s()
        key_id: int | None
        try:
            key_id = self.uplink.active_key
        except FswError:
            key_id = None
        report: dict[str, Any] = {
            "url": str(link.url) if link is not None else "",
            "connected": link.connected if link is not None else False,
            "local_port": link.local_port if isinstance(link, UdpLink) else None,
            "tm_by_kind": dict(self.decoder.counts),
            "tm_unknown_apid": self.decoder.unknown_apids,
            "last_tm_age_s": None if self._last_tm_mono_s is None else round(now - self._last_tm_mono_s, 3),
            "last_tm_unix_s": self._last_tm_unix_s,
            "rtt_s": self.rtt_s,
            "keepalive_s": self.config.keepalive_s,
            "key_id": key_id,
            "keys": str(self.config.keys),
            "commands_pending": sum(1 for c in self.commands.values() if not c.final),
            "archive": str(self.config.archive),
            "archive_packets": self.archive.packets_written if self.archive is not None else 0,
            "archive_buffered": len(self._buffer),
            "hk_counter": self.hk_counter,
            "last_error": self._last_error or (counters.last_error if counters is not None else ""),
            **self.stats,
        }
        if counters is not None:
            report.update(
                tc_sent=counters.tc_sent,
                tc_bytes=counters.tc_bytes,
                tc_dropped=counters.tc_dropped,
                tm_received=counters.tm_received,
                tm_bytes=counters.tm_bytes,
                tm_oversized=counters.tm_oversized,
                connects=counters.connects,
                disconnects=counters.disconnects,
                link_errors=counters.errors,
            )
        return report
