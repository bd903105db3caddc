"""The bus as one process sees it: publish, subscribe, command.

:class:`Bus` owns one process's publish and subscribe sockets to the broker. It
stamps every outgoing message with the process's name and per-(source, kind)
sequence numbers, validates every incoming frame, counts malformed ones (and
reports them as a ``malformed_frame`` event, at most once a second), and
detects lost messages from gaps in the sequence numbers of every stream it
fully subscribes to. Those counters are the process's bus telemetry.

:class:`CommandClient` sends commands to the router and collects their
acknowledgements (accepted / rejected / timed out, then completed / failed).

Sockets belong to the process, and the thread, that made them. ``close()`` is
idempotent and lingers at most :data:`LINGER_MS`.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import zmq

from fsw.errors import BusError, CodecError, DeadlineMissed
from fsw.messages import (
    ENVELOPE_VERSION,
    MAX_BODY_BYTES,
    Kind,
    Message,
    Sequencer,
    decode,
    encode,
    envelope_from_map,
    topic_of,
)
from fsw.resource import Resource
from fsw.timesource import Deadline, MonotonicTime, TimeSource

#: How long a closing socket may try to deliver what it still holds.
LINGER_MS: Final = 200

#: Minimum wall time between two ``malformed_frame`` events from one process.
MALFORMED_EVENT_INTERVAL_S: Final = 1.0

#: Command outcomes a CommandClient keeps at most (the oldest are forgotten).
MAX_OUTCOMES_KEPT: Final = 10_000

#: Final command statuses; every command gets exactly one.
FINAL_STATUSES: Final = frozenset({"rejected", "timed_out", "completed", "failed"})


@dataclass
class BusStats:
    """Counters of one process's bus traffic (published in its heartbeat)."""

    sent: int = 0
    received: int = 0
    malformed: int = 0
    lost: int = 0
    source_restarts: int = 0
    last_malformed: str = ""


def connect(
    context: zmq.Context[zmq.Socket[bytes]],
    kind: int,
    endpoint: str,
    *,
    high_water_mark: int,
    bind: bool = False,
    identity: bytes | None = None,
) -> zmq.Socket[bytes]:
    """Create a socket of ``kind`` with explicit linger and high-water marks, then connect or bind.

    Raises :class:`BusError` naming the endpoint if that fails.
    """
    socket = context.socket(kind)
    try:
        socket.setsockopt(zmq.LINGER, LINGER_MS)
        socket.setsockopt(zmq.SNDHWM, high_water_mark)
        socket.setsockopt(zmq.RCVHWM, high_water_mark)
        if identity is not None:
            socket.setsockopt(zmq.ROUTING_ID, identity)
        if bind:
            if endpoint.startswith("ipc://"):
                path = endpoint[len("ipc://") :]
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            socket.bind(endpoint)
        else:
            socket.connect(endpoint)
    except zmq.ZMQError as exc:
        socket.close(linger=0)
        verb = "bind" if bind else "connect"
        msg = f"cannot {verb} {zmq.SocketType(kind).name} socket to {endpoint}: {exc}"
        raise BusError(msg) from exc
    return socket


# Flags as plain ints: pyzmq's IntFlag arithmetic costs on every message.
_NOBLOCK: Final = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK: Final = int(zmq.SNDMORE | zmq.NOBLOCK)
_RCVMORE: Final = int(zmq.RCVMORE)
_packb = msgpack.packb
_KIND_VALUES: Final = {kind: kind.value for kind in Kind}


def send_frames(socket: zmq.Socket[bytes], topic: bytes, body: bytes) -> bool:
    """Send a (topic, body) message without blocking; return False if it was dropped.

    Written as two ``send`` calls rather than ``send_multipart``, which costs
    several times more per message in pyzmq.
    """
    try:
        socket.send(topic, _SNDMORE_NOBLOCK)
        socket.send(body, _NOBLOCK)
    except zmq.Again:
        return False
    return True


def covers(prefixes: Iterable[bytes], kind: str, source: str) -> bool:
    """Whether a subscription to ``prefixes`` takes the whole (kind, source) stream.

    Only then are gaps in its sequence numbers losses: ``tlm.power.`` takes the power
    telemetry stream, ``tlm.power.hk`` only part of it.
    """
    return f"{kind}.{source}.".encode().startswith(tuple(prefixes))


def receive_frames(socket: zmq.Socket[bytes]) -> list[bytes] | None:
    """Receive every frame of one message without blocking; ``None`` if none is waiting."""
    try:
        frames = [socket.recv(_NOBLOCK)]
    except zmq.Again:
        return None
    while socket.getsockopt(_RCVMORE):
        frames.append(socket.recv(_NOBLOCK))
    return frames


class Bus(Resource):
    """One process's publish and subscribe sockets on the broker.

    ``subscribe`` lists topic prefixes (bytes, e.g. ``b"tlm.reactor."``).
    Not thread-safe: use it from the thread that made it.
    """

    def __init__(
        self,
        source: str,
        publish_endpoint: str,
        subscribe_endpoint: str,
        *,
        subscribe: Iterable[bytes] = (),
        high_water_mark: int = 10000,
        time: TimeSource | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.source = source
        self.stats = BusStats()
        self.mission_time_s = 0.0
        self._time = time or MonotonicTime()
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._next_seq: dict[Kind, int] = {}
        self._prefixes: list[bytes] = []
        self._covered: dict[tuple[str, str], bool] = {}
        self._last_seq: dict[tuple[str, str], int] = {}
        self._malformed_reported = 0
        self._malformed_event_at_s = -MALFORMED_EVENT_INTERVAL_S
        self._closed = False
        self.publisher = connect(self._context, zmq.PUB, publish_endpoint, high_water_mark=high_water_mark)
        self.subscriber = connect(self._context, zmq.SUB, subscribe_endpoint, high_water_mark=high_water_mark)
        for prefix in subscribe:
            self.subscribe(prefix)

    def subscribe(self, prefix: bytes) -> None:
        """Also take messages whose topic starts with ``prefix``."""
        self.subscriber.setsockopt(zmq.SUBSCRIBE, prefix)
        self._prefixes.append(prefix)
        self._covered.clear()

    def publish(self, kind: Kind, name: str, data: Mapping[str, Any], t_s: float | None = None) -> None:
        """Publish one message; never blocks. ``t_s`` defaults to the current mission time.

        Raises :class:`~fsw.errors.CodecError` if ``data`` cannot be encoded.
        """
        # The same bytes as fsw.messages.encode, without building a Message first (hot path).
        seq = self._next_seq.get(kind, 0)
        self._next_seq[kind] = seq + 1
        try:
            body = _packb(
                {
                    "v": ENVELOPE_VERSION,
                    "kind": _KIND_VALUES[kind],
                    "src": self.source,
                    "name": name,
                    "t": float(self.mission_time_s if t_s is None else t_s),
                    "seq": seq,
                    "data": data if type(data) is dict else dict(data),
                },
                use_bin_type=True,
            )
        except (TypeError, ValueError, OverflowError) as exc:
            msg = f"cannot encode {kind.value} {self.source}.{name}: {exc}"
            raise CodecError(msg) from exc
        if len(body) > MAX_BODY_BYTES:
            msg = f"{self.source}.{name}: body of {len(body)} bytes exceeds {MAX_BODY_BYTES}"
            raise CodecError(msg)
        if send_frames(self.publisher, topic_of(kind, self.source, name), body):
            self.stats.sent += 1

    def receive(self, socket: zmq.Socket[bytes] | None = None) -> Message | None:
        """Return the next valid message waiting, or ``None``; never blocks.

        Reads the bus subscriber, or ``socket`` (another SUB of this process, such as the
        clock's direct tick path) with the same checks and counters. Malformed frames are
        consumed, counted and reported, never raised.
        """
        subscriber = self.subscriber if socket is None else socket
        while True:
            # Frames rather than bytes: ``Frame.more`` is free, getsockopt(RCVMORE) is not.
            try:
                topic_frame = subscriber.recv(_NOBLOCK, copy=False)
            except zmq.Again:
                return None
            try:
                if not topic_frame.more:
                    msg = "message has 1 frame, expected 2 (topic, body)"
                    raise CodecError(msg)
                body_frame = subscriber.recv(_NOBLOCK, copy=False)
                if body_frame.more:
                    extra = 1
                    while subscriber.recv(_NOBLOCK, copy=False).more:
                        extra += 1
                    msg = f"message has {2 + extra} frames, expected 2 (topic, body)"
                    raise CodecError(msg)
                message = decode(topic_frame.bytes, body_frame.bytes)
            except CodecError as exc:
                self._malformed(str(exc))
                continue
            self.stats.received += 1
            self._account(message)
            return message

    def _account(self, message: Message) -> None:
        stream = (message.source, message.kind.value)
        covered = self._covered.get(stream)
        if covered is None:
            covered = self._covered[stream] = covers(self._prefixes, message.kind.value, message.source)
        if not covered:
            return
        last = self._last_seq.get(stream)
        self._last_seq[stream] = message.seq
        if last is None:
            return
        if message.seq > last + 1:
            self.stats.lost += message.seq - last - 1
        elif message.seq <= last:
            self.stats.source_restarts += 1

    def _malformed(self, reason: str) -> None:
        self.stats.malformed += 1
        self.stats.last_malformed = reason
        now_s = self._time.now_s()
        if now_s - self._malformed_event_at_s >= MALFORMED_EVENT_INTERVAL_S:
            count = self.stats.malformed - self._malformed_reported
            self._malformed_reported = self.stats.malformed
            self._malformed_event_at_s = now_s
            self.publish(
                Kind.EVENT,
                "malformed_frame",
                {"severity": "warning", "count": count, "reason": reason[:200]},
            )

    def close(self) -> None:
        """Close both sockets (and the context if this bus made it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.publisher.close(linger=LINGER_MS)
        self.subscriber.close(linger=0)
        if self._own_context:
            self._context.term()


@dataclass
class CommandOutcome:
    """Everything the bus said about one command, ending in its final status."""

    id: str
    target: str
    command: str
    status: str = "pending"
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the command completed."""
        return self.status == "completed"

    @property
    def final(self) -> bool:
        """Whether a final status has arrived."""
        return self.status in FINAL_STATUSES


def pack_body(message: Message) -> bytes:
    """Encode ``message`` as a single-frame body (command path: no topic frame)."""
    return encode(message)[1]


def unpack_body(body: bytes) -> Message:
    """Decode a single-frame body from the command path; raises :class:`CodecError`."""
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        msg = f"body is not msgpack: {type(exc).__name__}: {exc}"
        raise CodecError(msg) from exc
    return envelope_from_map(raw)


class CommandClient(Resource):
    """Sends commands to the router and waits for their outcomes.

    Each command gets exactly one final status: ``rejected`` (with a reason),
    ``timed_out`` (nobody accepted it in time), ``completed`` or ``failed``.
    Not thread-safe.
    """

    _ids = itertools.count()

    def __init__(
        self,
        command_endpoint: str,
        *,
        source: str = "operator",
        time: TimeSource | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        max_outcomes: int = MAX_OUTCOMES_KEPT,
    ) -> None:
        self.source = source
        self._time = time or MonotonicTime()
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._sequencer = Sequencer()
        self._prefix = f"{source}-{os.getpid()}-"
        self._outcomes: dict[str, CommandOutcome] = {}
        #: Outcomes kept at most, and how many were dropped (oldest first) to keep to it.
        self.max_outcomes = max_outcomes
        self.outcomes_forgotten = 0
        self._finished: deque[str] = deque(maxlen=1000)
        self._closed = False
        self.socket = connect(self._context, zmq.DEALER, command_endpoint, high_water_mark=1000)

    def send(self, target: str, command: str, args: Mapping[str, Any] | None = None) -> str:
        """Send ``command`` to ``target`` and return its id; never blocks for long.

        Raises :class:`DeadlineMissed` if the router's queue is full.
        """
        command_id = f"{self._prefix}{next(self._ids)}"
        body = pack_body(
            Message(
                Kind.COMMAND,
                self.source,
                command,
                0.0,
                self._sequencer.next(Kind.COMMAND),
                {"id": command_id, "target": target, "args": dict(args or {})},
            )
        )
        try:
            self.socket.send(body, zmq.NOBLOCK)
        except zmq.Again as exc:
            msg = f"router queue full: cannot send {target}.{command}"
            raise DeadlineMissed(msg) from exc
        self._outcomes[command_id] = CommandOutcome(command_id, target, command)
        while len(self._outcomes) > self.max_outcomes:
            # Bounded: the oldest outcome goes first, answered or not (counted).
            self._outcomes.pop(next(iter(self._outcomes)))
            self.outcomes_forgotten += 1
        return command_id

    def wait(self, command_id: str, timeout_s: float) -> CommandOutcome:
        """Block until ``command_id`` has a final status or ``timeout_s`` passes.

        Returns the outcome as far as it got (``final`` tells which).
        """
        outcome = self._outcomes.get(command_id)
        if outcome is None:
            return CommandOutcome(command_id, "", "", reason="forgotten: too many commands outstanding")
        deadline = Deadline(timeout_s, self._time)
        while not outcome.final:
            remaining_ms = deadline.remaining_ms()
            if remaining_ms <= 0 or not self.socket.poll(remaining_ms, zmq.POLLIN):
                break
            self.drain()
        return outcome

    def call(
        self,
        target: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = 5.0,
    ) -> CommandOutcome:
        """Send a command and wait for its final status (see :meth:`wait`)."""
        return self.wait(self.send(target, command, args), timeout_s)

    def drain(self) -> list[CommandOutcome]:
        """Take every acknowledgement waiting on :attr:`socket`; never blocks.

        Returns the outcomes that reached their final status in this call: a process that
        sends commands from its own loop registers :attr:`socket` with its poller and
        calls this when it is readable.
        """
        finished: list[CommandOutcome] = []
        while True:
            try:
                body = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return finished
            try:
                ack = unpack_body(body)
            except CodecError:
                continue
            outcome = self._outcomes.get(str(ack.data.get("id")))
            if outcome is None or outcome.final:
                continue
            status = str(ack.data.get("status", ""))
            outcome.stages.append(status)
            outcome.status = status
            outcome.reason = str(ack.data.get("reason", ""))
            result = ack.data.get("result")
            if isinstance(result, dict):
                outcome.result = result
            if outcome.final:
                finished.append(outcome)
                self._finished.append(outcome.id)
                if len(self._finished) == self._finished.maxlen:
                    oldest = self._finished.popleft()
                    self._outcomes.pop(oldest, None)

    def close(self) -> None:
        """Close the socket (and the context if this client made it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.socket.close(linger=0)
        if self._own_context:
            self._context.term()


__all__ = [
    "FINAL_STATUSES",
    "LINGER_MS",
    "Bus",
    "BusStats",
    "CommandClient",
    "CommandOutcome",
    "connect",
    "covers",
    "pack_body",
    "receive_frames",
    "send_frames",
    "topic_of",
    "unpack_body",
]
