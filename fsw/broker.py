"""The broker process: the telemetry proxy and the command router.

Telemetry, events, ticks and heartbeats go through an XSUB/XPUB proxy run by
libzmq in a thread of its own (publishers connect to ``[bus] publish``,
subscribers to ``[bus] subscribe``). The proxy forwards frames as they are;
receivers validate them.

Commands go through the router, on the main thread. Commanders connect a
DEALER to ``[bus] command``; processes connect a DEALER, with their name as
routing id, to ``[bus] dispatch`` and register their dictionary there. For
every command the router checks the target and validates the arguments
against the target's dictionary before the target sees it, and guarantees one
final status:

* ``rejected``: the router or the target refused it (the reason says why);
* ``timed_out``: the target neither accepted nor rejected it within
  ``[bus] command_timeout_s``;
* after ``accepted``: ``completed``, or ``failed`` (including "did not
  complete within the command's timeout_s").

Every acknowledgement goes back to the commander, and each final one is also
published on the bus as ``ack.bus.<command>`` for anyone listening.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import zmq

from fsw.bus import FINAL_STATUSES, LINGER_MS, connect, pack_body, unpack_body
from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import (
    ArgType,
    CommandDef,
    Dictionary,
    EventDef,
    Point,
    Severity,
    dictionary_from_json,
)
from fsw.errors import CodecError, CommandRejected, DictionaryError
from fsw.messages import Kind, Message
from fsw.process import ROUTER_NAME, Process
from fsw.run import RunOptions
from fsw.timesource import TimeSource

#: Commands awaiting an outcome at once; beyond this new commands are rejected.
MAX_PENDING: Final = 10000

_INPROC_PUBLISH: Final = "inproc://broker-publish"


@dataclass
class Pending:
    """A command the router has forwarded and not yet seen finished."""

    client: bytes
    target: str
    command: str
    deadline_s: float
    accepted: bool = False
    completion_timeout_s: float = 1.0


class Broker(Process):
    """Runs the XSUB/XPUB proxy thread and the command router."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("commands_routed", ArgType.INT, description="Commands forwarded to targets."),
            Point("commands_refused", ArgType.INT, description="Commands rejected by the router."),
            Point("commands_timed_out", ArgType.INT, description="Commands no target answered in time."),
            Point("commands_pending", ArgType.INT, description="Commands awaiting an outcome."),
            Point("late_acks", ArgType.INT, description="Acknowledgements after the outcome was final."),
            Point("targets", ArgType.INT, description="Processes registered with the router."),
        ),
        events=(
            EventDef("command_rejected", Severity.WARNING, "The router refused a command."),
            EventDef("command_timed_out", Severity.WARNING, "No target answered a command in time."),
            EventDef("target_registered", Severity.INFO, "A process registered its dictionary."),
        ),
        commands=(CommandDef("targets", description="List registered targets and their commands."),),
    )

    def __init__(
        self,
        deployment: Deployment,
        spec: ProcessSpec,
        options: RunOptions,
        *,
        time: TimeSource | None = None,
    ) -> None:
        super().__init__(deployment, spec, options, time=time)
        self.dictionaries: dict[str, Dictionary] = {}
        self.pending: dict[str, Pending] = {}
        self.routed = 0
        self.refused = 0
        self.timed_out = 0
        self.late_acks = 0
        self._proxy: threading.Thread | None = None
        self._proxy_control: zmq.Socket[bytes] | None = None
        self._proxy_ready = threading.Event()
        self._proxy_error: list[BaseException] = []
        self._frontend: zmq.Socket[bytes] | None = None
        self._backend: zmq.Socket[bytes] | None = None
        self._next_hk_s = 0.0

    # The proxy must be up before this process's own Bus connects to it.
    def setup(self) -> None:
        """Start the proxy thread and wait (with a deadline) until it is bound."""
        if self.context is None:
            return
        self._proxy = threading.Thread(target=self._run_proxy, name="proxy", daemon=True)
        self._proxy.start()
        if not self._proxy_ready.wait(timeout=10.0) or self._proxy_error:
            error = self._proxy_error[0] if self._proxy_error else TimeoutError("proxy start")
            raise error
        self._proxy_control = self.context.socket(zmq.PAIR)
        self._proxy_control.setsockopt(zmq.LINGER, 0)
        self._proxy_control.connect("inproc://broker-control")

    def _run_proxy(self) -> None:
        if self.context is None:
            return
        bus = self.deployment.bus
        hwm = bus.high_water_mark
        sockets: list[zmq.Socket[bytes]] = []
        try:
            xsub = connect(self.context, zmq.XSUB, bus.publish, high_water_mark=hwm, bind=True)
            sockets.append(xsub)
            xsub.bind(_INPROC_PUBLISH)
            xpub = connect(self.context, zmq.XPUB, bus.subscribe, high_water_mark=hwm, bind=True)
            sockets.append(xpub)
            control = self.context.socket(zmq.PAIR)
            control.setsockopt(zmq.LINGER, 0)
            sockets.append(control)
            control.bind("inproc://broker-control")
        except BaseException as exc:
            self._proxy_error.append(exc)
            self._proxy_ready.set()
            for socket in sockets:
                socket.close(linger=0)
            return
        self._proxy_ready.set()
        try:
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for socket in sockets:
                socket.close(linger=0)

    def _open_extra_sockets(self) -> None:
        if self.context is None:
            return
        bus = self.deployment.bus
        self._frontend = connect(
            self.context, zmq.ROUTER, bus.command, high_water_mark=bus.high_water_mark, bind=True
        )
        self._backend = connect(
            self.context, zmq.ROUTER, bus.dispatch, high_water_mark=bus.high_water_mark, bind=True
        )
        # Unroutable targets raise instead of vanishing, so the router can say so.
        self._backend.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.add_reader(self._frontend, self._on_frontend)
        self.add_reader(self._backend, self._on_backend)
        self.dictionaries[ROUTER_NAME] = self.full_dictionary()

    def _close_extra_sockets(self) -> None:
        for socket in (self._frontend, self._backend):
            if socket is not None:
                socket.close(linger=LINGER_MS)
        self._frontend = self._backend = None
        if self._proxy_control is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._proxy_control.send(b"TERMINATE")
        if self._proxy is not None:
            self._proxy.join(timeout=5.0)
            self._proxy = None
        if self._proxy_control is not None:
            # Closed only after the proxy has read TERMINATE: linger 0 would discard it.
            self._proxy_control.close(linger=0)
            self._proxy_control = None

    def _on_registered(self) -> None:
        self._complete_join()

    def _register(self) -> None:
        # The broker registers with itself: nothing to send.
        self._registered = True
        self._on_registered()

    # ----------------------------------------------------------------- timers

    def next_timer_s(self) -> float | None:
        """Earliest of: the next housekeeping packet, the nearest command deadline."""
        due = [self._next_hk_s]
        if self.pending:
            due.append(min(p.deadline_s for p in self.pending.values()))
        return min(due)

    def on_timer(self) -> None:
        """Time out overdue commands; publish housekeeping once a second."""
        now_s = self.time.now_s()
        for command_id in [i for i, p in self.pending.items() if p.deadline_s <= now_s]:
            pending = self.pending[command_id]
            if pending.accepted:
                limit_s = pending.completion_timeout_s
                reason = f"{pending.target} did not complete {pending.command} within {limit_s:g} s"
                self._reply(command_id, "failed", reason)
            else:
                reason = f"{pending.target} did not answer within {self.deployment.bus.command_timeout_s:g} s"
                self.timed_out += 1
                self._reply(command_id, "timed_out", reason)
                self.event("command_timed_out", id=command_id, target=pending.target, command=pending.command)
        if now_s >= self._next_hk_s:
            self._next_hk_s = now_s + self.deployment.bus.heartbeat_period_s
            self.publish_housekeeping()

    def housekeeping(self) -> dict[str, Any]:
        """Router counters."""
        return {
            "commands_routed": self.routed,
            "commands_refused": self.refused,
            "commands_timed_out": self.timed_out,
            "commands_pending": len(self.pending),
            "late_acks": self.late_acks,
            "targets": len(self.dictionaries) - 1,
        }

    # ----------------------------------------------------------------- commanders

    def _on_frontend(self) -> None:
        if self._frontend is None:
            return
        for _ in range(1000):
            try:
                frames = self._frontend.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            self._route(frames[0], frames[1])

    def _route(self, client: bytes, body: bytes) -> None:
        try:
            message = unpack_body(body)
        except CodecError as exc:
            self.refused += 1
            self._send_client(
                client, {"id": "", "status": "rejected", "reason": f"malformed command: {exc}"}, "?"
            )
            return
        data = message.data
        command_id = data.get("id")
        target = data.get("target")
        args = data.get("args", {})
        if not isinstance(command_id, str) or not command_id:
            self._refuse(client, "", message.name, str(target), "command has no id")
            return
        if command_id in self.pending:
            self._refuse(client, command_id, message.name, str(target), "duplicate command id")
            return
        if message.kind is not Kind.COMMAND:
            self._refuse(
                client, command_id, message.name, str(target), f"kind {message.kind.value} is not a command"
            )
            return
        if not isinstance(target, str) or not isinstance(args, dict):
            self._refuse(
                client, command_id, message.name, str(target), "target must be a name and args a map"
            )
            return
        dictionary = self.dictionaries.get(target)
        if dictionary is None:
            known = ", ".join(sorted(t for t in self.dictionaries if t != ROUTER_NAME))
            self._refuse(
                client, command_id, message.name, target, f"unknown target {target!r} (registered: {known})"
            )
            return
        try:
            definition = dictionary.command(message.name)
            checked = definition.check(args)
        except CommandRejected as exc:
            self._refuse(client, command_id, message.name, target, f"{target}.{message.name}: {exc.reason}")
            return
        if len(self.pending) >= MAX_PENDING:
            self._refuse(client, command_id, message.name, target, "router busy: too many commands pending")
            return
        if target == ROUTER_NAME:
            self._execute_local(client, command_id, message)
            return
        forwarded = pack_body(
            Message(
                Kind.COMMAND,
                message.source,
                message.name,
                message.t_s,
                message.seq,
                {"id": command_id, "target": target, "args": checked},
            )
        )
        if self._backend is None:
            return
        try:
            self._backend.send_multipart([target.encode(), forwarded], zmq.NOBLOCK)
        except zmq.ZMQError:
            self._refuse(client, command_id, message.name, target, f"target {target!r} is not connected")
            return
        self.routed += 1
        self.pending[command_id] = Pending(
            client=client,
            target=target,
            command=message.name,
            deadline_s=self.time.now_s() + self.deployment.bus.command_timeout_s,
            completion_timeout_s=definition.timeout_s,
        )

    def _execute_local(self, client: bytes, command_id: str, message: Message) -> None:
        handler = getattr(self, f"command_{message.name}", None)
        result = handler() if handler is not None else None
        for status in ("accepted", "completed"):
            data: dict[str, Any] = {"id": command_id, "target": ROUTER_NAME, "status": status}
            if status == "completed" and isinstance(result, dict):
                data["result"] = result
            self._send_client(client, data, message.name)

    def _refuse(self, client: bytes, command_id: str, command: str, target: str, reason: str) -> None:
        self.refused += 1
        self._send_client(
            client, {"id": command_id, "target": target, "status": "rejected", "reason": reason}, command
        )
        self.event("command_rejected", id=command_id, target=target, command=command, reason=reason[:200])

    # ----------------------------------------------------------------- targets

    def _on_backend(self) -> None:
        if self._backend is None:
            return
        for _ in range(1000):
            try:
                frames = self._backend.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            try:
                message = unpack_body(frames[1])
            except CodecError as exc:
                self.log.warning("malformed_from_target", target=frames[0][:64], reason=str(exc))
                continue
            if message.kind is Kind.COMMAND and message.name == "register":
                self._on_register(frames[0], message)
            elif message.kind is Kind.ACK:
                self._on_ack(message)

    def _on_register(self, identity: bytes, message: Message) -> None:
        args = message.data.get("args", {})
        raw = args.get("dictionary") if isinstance(args, dict) else None
        try:
            if not isinstance(raw, dict):
                raise DictionaryError("register carries no dictionary")
            dictionary = dictionary_from_json(raw)
        except DictionaryError as exc:
            self.log.warning("bad_registration", target=message.source, reason=str(exc))
            return
        name = identity.decode(errors="replace")
        first = name not in self.dictionaries
        self.dictionaries[name] = dictionary
        if first:
            self.event("target_registered", target=name, commands=len(dictionary.commands))
        ack = pack_body(
            Message(
                Kind.ACK,
                ROUTER_NAME,
                "register",
                self.mission_time_s,
                0,
                {"id": message.data.get("id", ""), "status": "completed"},
            )
        )
        if self._backend is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._backend.send_multipart([identity, ack], zmq.NOBLOCK)

    def _on_ack(self, message: Message) -> None:
        command_id = str(message.data.get("id", ""))
        pending = self.pending.get(command_id)
        status = str(message.data.get("status", ""))
        if pending is None:
            self.late_acks += 1
            return
        if status == "accepted":
            if pending.accepted:
                return
            pending.accepted = True
            pending.deadline_s = self.time.now_s() + pending.completion_timeout_s
            self._send_client(pending.client, dict(message.data), pending.command)
            return
        if status not in FINAL_STATUSES or status == "timed_out":
            return
        if status in ("completed", "failed") and not pending.accepted:
            # A target may finish without a separate acceptance: send it for it.
            pending.accepted = True
            self._send_client(
                pending.client,
                {"id": command_id, "target": pending.target, "status": "accepted"},
                pending.command,
            )
        self._finish(command_id, dict(message.data))

    # ----------------------------------------------------------------- replies

    def _reply(self, command_id: str, status: str, reason: str) -> None:
        pending = self.pending.get(command_id)
        if pending is None:
            return
        self._finish(
            command_id, {"id": command_id, "target": pending.target, "status": status, "reason": reason}
        )

    def _finish(self, command_id: str, data: Mapping[str, Any]) -> None:
        pending = self.pending.pop(command_id)
        self._send_client(pending.client, data, pending.command)

    def _send_client(self, client: bytes, data: Mapping[str, Any], command: str) -> None:
        body = pack_body(Message(Kind.ACK, ROUTER_NAME, command or "?", self.mission_time_s, 0, dict(data)))
        if self._frontend is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._frontend.send_multipart([client, body], zmq.NOBLOCK)
        if data.get("status") in FINAL_STATUSES and self.bus is not None and command:
            self.bus.publish(Kind.ACK, command if command != "?" else "unknown", dict(data))

    # ----------------------------------------------------------------- router's own commands

    def command_targets(self) -> dict[str, Any]:
        """List registered targets and their commands."""
        return {name: [c.name for c in d.commands] for name, d in self.dictionaries.items()}

    def on_message(self, message: Message) -> None:
        """The broker subscribes to nothing beyond its own heartbeat."""
