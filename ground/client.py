"""The Python client of the ground station (see :mod:`ground.station` for the protocol).

::

    from ground.client import Station

    with Station("tcp://127.0.0.1:7100") as station:
        result = station.command("power", "switch_load", {"tier": 4, "on": False})
        print(result.ok, result.stages, result.reason)
        print(station.latest()["power"]["values"]["battery_soc"])

Every call has a deadline: a station that does not answer in time raises
:class:`StationUnreachable` (a :class:`~fsw.errors.DeadlineMissed`); a request the
station refuses raises :class:`~fsw.errors.CommandRejected` (a command that fails the
dictionary check: unknown target, command or argument) or :class:`StationError`.
A command the *base* refuses is not an exception: its :class:`Verification` says so.
Not thread-safe: one :class:`Station` per thread.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import zmq

from fsw.bus import LINGER_MS
from fsw.errors import CommandRejected, DeadlineMissed, FswError
from fsw.resource import Resource
from fsw.timesource import Deadline, MonotonicTime, TimeSource
from ground.mission import MissionDatabase
from ground.station import DEFAULT_API, DEFAULT_PUB, MAX_WAIT_S

#: Seconds a request waits for the station's reply unless told otherwise.
DEFAULT_TIMEOUT_S: Final = 5.0
#: Seconds a command waits for its final verification unless told otherwise (light time both ways).
DEFAULT_COMMAND_TIMEOUT_S: Final = 30.0

__all__ = [
    "DEFAULT_API",
    "DEFAULT_PUB",
    "Station",
    "StationError",
    "StationUnreachable",
    "Subscription",
    "Verification",
]


class StationUnreachable(DeadlineMissed):
    """The station did not answer within the deadline (is ``fsw ground station`` running?)."""


class StationError(FswError):
    """The station refused a request; the message is its reason."""


@dataclass(frozen=True)
class Verification:
    """What the base said of one telecommand so far (the station's ``status`` reply).

    ``stages`` lists the stages received (``accepted``, ``started``, ``completed``,
    ``rejected``, ``start_failed``, ``failed``); ``final`` once the last one came, ``ok``
    if it completed; ``code``/``failure``/``reason`` say why it did not.
    """

    request: str
    target: str
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    final: bool = False
    ok: bool | None = None
    code: int | None = None
    failure: str = ""
    reason: str = ""
    round_trip_s: float | None = None
    details: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any]) -> Verification:
        """Build from a ``status`` reply."""
        return cls(
            request=str(reply.get("request", "")),
            target=str(reply.get("target", "")),
            command=str(reply.get("command", "")),
            args=dict(reply.get("args") or {}),
            stages=tuple(reply.get("stages") or ()),
            final=bool(reply.get("final")),
            ok=reply.get("ok"),
            code=reply.get("code"),
            failure=str(reply.get("failure") or ""),
            reason=str(reply.get("reason") or ""),
            round_trip_s=reply.get("round_trip_s"),
            details=tuple(reply.get("details") or ()),
        )

    @property
    def outcome(self) -> str:
        """``completed``, the failing stage (``rejected``, ...), or ``no verification`` if not final."""
        if not self.final:
            return "no verification"
        return self.stages[-1] if self.stages else ("completed" if self.ok else "failed")

    def to_json(self) -> dict[str, Any]:
        """The verification as JSON-able data (what ``fsw ground send --json`` prints)."""
        return {
            "request": self.request,
            "target": self.target,
            "command": self.command,
            "args": self.args,
            "outcome": self.outcome,
            "stages": list(self.stages),
            "final": self.final,
            "ok": self.ok,
            "code": self.code,
            "failure": self.failure,
            "reason": self.reason,
            "round_trip_s": self.round_trip_s,
        }


class _SocketOwner(Resource):
    """One ZeroMQ socket and the context it was made in, both owned (linger set by the maker)."""

    _context: zmq.Context[zmq.Socket[bytes]] | None
    _socket: zmq.Socket[bytes] | None
    _closed: bool

    def close(self) -> None:
        """Close the socket, then its context (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None


class Station(_SocketOwner):
    """A connection to the station's request socket at ``api``; ``timeout_s`` is the default deadline."""

    def __init__(
        self,
        api: str = DEFAULT_API,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        time: TimeSource | None = None,
    ) -> None:
        self.api = api
        self.timeout_s = timeout_s
        self._time = time or MonotonicTime()
        self._ids = itertools.count(1)
        self._context: zmq.Context[zmq.Socket[bytes]] | None = zmq.Context()
        self._socket: zmq.Socket[bytes] | None = None
        self._closed = False
        try:
            self._socket = self._context.socket(zmq.DEALER)
            self._socket.setsockopt(zmq.LINGER, LINGER_MS)
            self._socket.connect(api)
        except zmq.ZMQError as exc:
            self.close()
            msg = f"cannot connect to the station at {api}: {exc}"
            raise StationError(msg) from exc

    def request(self, op: str, *, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": op, **fields}`` and return the reply map.

        Raises :class:`StationUnreachable` after ``timeout_s`` (default: the client's)
        without a reply, :class:`~fsw.errors.CommandRejected` or :class:`StationError`
        for an ``error`` reply.
        """
        if self._socket is None:
            msg = f"station client of {self.api} is closed"
            raise StationError(msg)
        request_id = next(self._ids)
        body = msgpack.packb({"op": op, "id": request_id, **fields}, use_bin_type=True)
        deadline = Deadline(self.timeout_s if timeout_s is None else timeout_s, self._time)
        with contextlib.suppress(zmq.Again):  # not connected yet: the poll below times out
            self._socket.send_multipart([b"", body], zmq.NOBLOCK)
        while True:
            remaining_ms = deadline.remaining_ms()
            if remaining_ms <= 0 or not self._socket.poll(remaining_ms, zmq.POLLIN):
                waited_s = self.timeout_s if timeout_s is None else timeout_s
                msg = (
                    f"the station at {self.api} did not answer {op!r} within {waited_s:g} s "
                    "(is `fsw ground station` running?)"
                )
                raise StationUnreachable(msg)
            frames = self._socket.recv_multipart()
            try:
                reply = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                continue
            if not isinstance(reply, dict) or reply.get("id") != request_id:
                continue  # a late reply to an earlier request that timed out
            del reply["id"]
            if "error" in reply:
                if reply.get("rejected"):
                    raise CommandRejected(str(reply["error"]))
                raise StationError(str(reply["error"]))
            return reply

    # ----------------------------------------------------------------- commands

    def send(self, target: str, command: str, args: Mapping[str, Any] | None = None) -> str:
        """Send one command (checked against the dictionary by the station); return its request id."""
        reply = self.request("send", target=target, command=command, args=dict(args or {}))
        return str(reply["request"])

    def status(self, request: str, *, wait_s: float = 0.0) -> Verification:
        """The verification of ``request`` so far; with ``wait_s``, waits that long for the final stage."""
        reply = self.request("status", request=request, wait_s=wait_s, timeout_s=wait_s + self.timeout_s)
        return Verification.from_reply(reply)

    def wait(self, request: str, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> Verification:
        """The verification of ``request`` once final, or as it is after ``timeout_s`` (not ``final``)."""
        deadline = Deadline(timeout_s, self._time)
        while True:
            verification = self.status(request, wait_s=min(MAX_WAIT_S, deadline.remaining_s()))
            if verification.final or deadline.expired:
                return verification

    def command(
        self,
        target: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        arm: bool = False,
    ) -> Verification:
        """Send a command and wait for its verification (``arm``: send ``arm command=...`` first).

        An arm that does not complete is returned as the verification (the command is not sent).
        """
        deadline = Deadline(timeout_s, self._time)
        if arm:
            armed = self.wait(self.send(target, "arm", {"command": command}), deadline.remaining_s())
            if not armed.ok:
                return armed
        return self.wait(self.send(target, command, args), deadline.remaining_s())

    def ping(self, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> Verification:
        """A TC[17,1] to the base and its verification (``round_trip_s`` is the round trip)."""
        reply = self.request("ping")
        return self.wait(str(reply["request"]), timeout_s)

    # ----------------------------------------------------------------- telemetry

    def latest(self) -> dict[str, dict[str, Any]]:
        """The newest housekeeping of each source: ``{source: {"unix_s", "values"}}``."""
        return self.request("latest")

    def counter(self) -> int:
        """Housekeeping packets the station has received in all."""
        return int(self.request("wait", after=-1, wait_s=0.0)["counter"])

    def wait_housekeeping(self, after: int, wait_s: float) -> int:
        """Wait (at most ``wait_s``) until more than ``after`` housekeeping packets arrived; the count."""
        wait_s = min(max(0.0, wait_s), MAX_WAIT_S)
        reply = self.request("wait", after=after, wait_s=wait_s, timeout_s=wait_s + self.timeout_s)
        return int(reply["counter"])

    def dictionary(self) -> dict[str, Any]:
        """``{"base", "link_process", "apids", "dictionary"}`` of the station's base."""
        return self.request("dictionary")

    def mission(self) -> MissionDatabase:
        """The station's :class:`~ground.mission.MissionDatabase` (from ``dictionary``)."""
        return MissionDatabase.from_json(self.dictionary())

    def link(self) -> dict[str, Any]:
        """The link's counters (see :meth:`ground.station.GroundStation.link_report`)."""
        return self.request("link")

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Wait until the station answers (at most ``timeout_s``); its link report."""
        return self.request("link", timeout_s=timeout_s)


class Subscription(_SocketOwner):
    """Live messages from the station's publisher at ``pub``, for topic prefixes ``topics``.

    Topics: ``hk.<source>``, ``evt.<source>``, ``ver``, ``cmd``, ``link`` (``b""`` or no
    topics: everything). A subscriber hears only what is published after it connected.
    """

    def __init__(self, pub: str = DEFAULT_PUB, topics: Iterable[str] = ("",)) -> None:
        self.pub = pub
        self._context: zmq.Context[zmq.Socket[bytes]] | None = zmq.Context()
        self._socket: zmq.Socket[bytes] | None = self._context.socket(zmq.SUB)
        self._closed = False
        self._time = MonotonicTime()
        try:
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.setsockopt(zmq.RCVHWM, 10_000)
            for topic in list(topics) or [""]:
                self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
            self._socket.connect(pub)
        except zmq.ZMQError as exc:
            self.close()
            msg = f"cannot subscribe to the station at {pub}: {exc}"
            raise StationError(msg) from exc

    def receive(self, timeout_s: float) -> tuple[str, dict[str, Any]] | None:
        """The next message ``(topic, data)``, or ``None`` after ``timeout_s``."""
        if self._socket is None:
            return None
        deadline = Deadline(timeout_s, self._time)
        while self._socket.poll(deadline.remaining_ms(), zmq.POLLIN):
            frames = self._socket.recv_multipart()
            if len(frames) != 2:
                continue
            try:
                data = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                continue
            if isinstance(data, dict):
                return frames[0].decode("utf-8", errors="replace"), data
            if deadline.expired:
                break
        return None

    def fileno(self) -> int:
        """A descriptor that becomes readable when messages may be waiting (zmq ``FD``)."""
        if self._socket is None:
            msg = "subscription closed"
            raise StationError(msg)
        return int(self._socket.getsockopt(zmq.FD))
