"""Replay of a recording onto a bus: the recorded frames, byte for byte, in recorded order.

:class:`Replayer` publishes bus records of a log (``hil.recording``) into a broker's
``publish`` endpoint, paced by their mission time at a speed (``1`` is mission time at
the pace of the wall clock, ``math.inf`` as fast as possible). Mission time is taken
from the log's *mission clock* (see :class:`hil.recording.Selection`), so records of
processes without a mission time (the supervisor's events) go out in their recorded
place without moving the pace back.

Start-up without sleeps: the replayer publishes a probe (``hb.replay.probe``) until it
receives it back through the broker, so its first record cannot be lost to a late
connection; optionally it also waits until someone subscribes to what it replays. It
ends with one more probe round trip, so every record has passed the broker when
:meth:`Replayer.replay` returns.

The publishing socket is an XPUB connected to the broker's XSUB with
``ZMQ_XPUB_NODROP``: at the high-water mark a send waits (at most ``send_timeout_s``)
instead of dropping silently, and it receives the broker's subscriptions.

:class:`StandaloneBroker` runs a broker of its own (``python -m fsw.launch RUN_DIR bus``)
for ``fsw replay --broker``, so a ground console can attach to a replay without a base.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket as socket_module
import subprocess
import sys
import time as time_module
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import zmq

from fsw import run as run_module
from fsw.bus import connect, receive_frames
from fsw.deployment import Deployment
from fsw.errors import BusError, CodecError, ConfigError, DeadlineMissed, ProcessError
from fsw.messages import Kind, Message, Sequencer, decode, encode
from fsw.resource import Resource
from fsw.run import RunOptions
from fsw.timesource import Deadline, MonotonicTime, TimeSource
from hil.recording import Selected

#: Source name of the replay's probe messages (``hb.replay.probe``).
REPLAY_SOURCE: Final = "replay"
#: Topic prefixes replayed by default: telemetry and events.
DEFAULT_TOPICS: Final = (b"tlm.", b"evt.")
#: Wall seconds to wait for the probe to come back through the broker.
CONNECT_TIMEOUT_S: Final = 10.0
#: Wall seconds between two probes while connecting.
PROBE_PERIOD_S: Final = 0.05
#: Wall seconds a send may wait at the high-water mark before the record counts as dropped.
SEND_TIMEOUT_S: Final = 5.0
#: How long closing the publisher may take to hand over what it still holds (ms).
PUBLISHER_LINGER_MS: Final = 2000
#: Longest single pacing wait (wall seconds), so a stop request is seen promptly.
MAX_PACING_WAIT_S: Final = 0.2
#: Wall seconds to wait for a standalone broker to come up.
BROKER_START_TIMEOUT_S: Final = 15.0

_PROBE_PREFIX: Final = f"{Kind.HEARTBEAT.value}.{REPLAY_SOURCE}.".encode()


@dataclass
class ReplayStats:
    """What one replay did. Mission times are the mission clock of the first and last record sent."""

    sent: int = 0
    dropped: int = 0
    first_mission_s: float | None = None
    last_mission_s: float | None = None
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def rate_per_s(self) -> float:
        """Records sent per wall second."""
        return self.sent / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {**asdict(self), "rate_per_s": round(self.rate_per_s, 1)}


def _sleep_wait(delay_s: float) -> None:
    time_module.sleep(delay_s)


def _never() -> bool:
    return False


class _Pacer:
    """Waits until each record is due: ``speed`` times its mission clock after the first of its run."""

    def __init__(
        self,
        speed: float,
        time: TimeSource,
        wait: Callable[[float], None],
        should_stop: Callable[[], bool],
    ) -> None:
        self._speed = speed
        self._time = time
        self._wait = wait
        self._should_stop = should_stop
        self._segment: int | None = None
        self._anchor_wall_s = 0.0
        self._anchor_clock_s = 0.0

    def wait_until_due(self, item: Selected) -> bool:
        """Block until ``item`` is due; return ``False`` if a stop was requested meanwhile."""
        if not math.isfinite(self._speed):
            return True
        if item.segment != self._segment:
            self._segment = item.segment
            self._anchor_wall_s = self._time.now_s()
            self._anchor_clock_s = item.mission_clock_s
        due_s = self._anchor_wall_s + (item.mission_clock_s - self._anchor_clock_s) / self._speed
        while (delay_s := due_s - self._time.now_s()) > 0:
            if self._should_stop():
                return False
            self._wait(min(delay_s, MAX_PACING_WAIT_S))
        return True


class Replayer(Resource):
    """Publishes recorded frames into a broker. Construct, :meth:`connect`, :meth:`replay`, close.

    ``publish_endpoint`` and ``subscribe_endpoint`` are the broker's (``[bus] publish`` and
    ``subscribe``). ``wait(delay_s)`` is how pacing waits (default: sleep; it may return
    early); ``time`` is the wall clock pacing reads. Sockets belong to the thread that made
    the replayer; ``close()`` is idempotent.
    """

    def __init__(
        self,
        publish_endpoint: str,
        subscribe_endpoint: str,
        *,
        high_water_mark: int = 10000,
        send_timeout_s: float = SEND_TIMEOUT_S,
        time: TimeSource | None = None,
        wait: Callable[[float], None] = _sleep_wait,
        ignore_subscriptions: Iterable[bytes] = (),
    ) -> None:
        self._time = time or MonotonicTime()
        self._wait = wait
        self._nonce = uuid.uuid4().hex
        self._sequencer = Sequencer()
        self._subscriptions: dict[bytes, int] = {}
        self._ignored = frozenset({_PROBE_PREFIX, *ignore_subscriptions})
        self._closed = False
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.publisher: zmq.Socket[bytes] | None = None
        self.subscriber: zmq.Socket[bytes] | None = None
        try:
            self.publisher = connect(
                self._context, zmq.XPUB, publish_endpoint, high_water_mark=high_water_mark
            )
            self.publisher.setsockopt(zmq.XPUB_NODROP, 1)
            self.publisher.setsockopt(zmq.SNDTIMEO, max(1, int(send_timeout_s * 1000)))
            self.publisher.setsockopt(zmq.LINGER, PUBLISHER_LINGER_MS)
            self.subscriber = connect(
                self._context, zmq.SUB, subscribe_endpoint, high_water_mark=high_water_mark
            )
            self.subscriber.setsockopt(zmq.SUBSCRIBE, _PROBE_PREFIX)
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- connecting

    def _probe(self) -> None:
        if self.publisher is None:
            return
        topic, body = encode(
            Message(
                Kind.HEARTBEAT,
                REPLAY_SOURCE,
                "probe",
                0.0,
                self._sequencer.next(Kind.HEARTBEAT),
                {"pid": os.getpid(), "nonce": self._nonce},
            )
        )
        with contextlib.suppress(zmq.Again):
            self.publisher.send(topic, zmq.SNDMORE | zmq.NOBLOCK)
            self.publisher.send(body, zmq.NOBLOCK)

    def _own_probe_back(self) -> bool:
        """Read what the subscriber holds; return whether one of our probes is among it."""
        if self.subscriber is None:
            return False
        seen = False
        while (frames := receive_frames(self.subscriber)) is not None:
            if len(frames) != 2:
                continue
            try:
                message = decode(frames[0], frames[1])
            except CodecError:
                continue
            if message.source == REPLAY_SOURCE and message.data.get("nonce") == self._nonce:
                seen = True
        return seen

    def _read_subscriptions(self) -> None:
        if self.publisher is None:
            return
        while True:
            try:
                event = self.publisher.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not event:
                continue
            prefix = event[1:]
            if event[0] == 1:
                self._subscriptions[prefix] = self._subscriptions.get(prefix, 0) + 1
            elif event[0] == 0 and prefix in self._subscriptions:
                self._subscriptions[prefix] -= 1
                if self._subscriptions[prefix] <= 0:
                    del self._subscriptions[prefix]

    def has_subscriber(self, topics: Iterable[bytes]) -> bool:
        """Whether the broker has a subscription overlapping ``topics``.

        The replay's own probe subscription and ``ignore_subscriptions`` (e.g. a standalone
        broker's own ``hb.bus.``) do not count. In a running base its processes' own
        subscriptions (``tick.``, ``hb.<name>.``, ...) count like any listener's.
        """
        self._read_subscriptions()
        wanted = tuple(topics)
        for prefix in self._subscriptions:
            if prefix in self._ignored:
                continue
            if any(prefix.startswith(t) or t.startswith(prefix) for t in wanted):
                return True
        return False

    def connect(
        self,
        timeout_s: float = CONNECT_TIMEOUT_S,
        *,
        subscriber_for: Iterable[bytes] | None = None,
        should_stop: Callable[[], bool] = _never,
        check: Callable[[], None] | None = None,
    ) -> bool:
        """Block until the probe comes back through the broker (and, with ``subscriber_for``,
        someone subscribes to one of those topic prefixes: see :meth:`has_subscriber`),
        at most ``timeout_s``.

        ``check()`` runs between probes (it may raise, e.g. if a broker process died).
        Returns ``False`` if ``should_stop()`` became true first. Raises
        :class:`DeadlineMissed` naming what was not seen.
        """
        deadline = Deadline(timeout_s, self._time)
        wanted = tuple(subscriber_for) if subscriber_for is not None else None
        echoed = False
        while True:
            if should_stop():
                return False
            if check is not None:
                check()
            if not echoed:
                self._probe()
            if self.subscriber is not None and self.subscriber.poll(
                min(int(PROBE_PERIOD_S * 1000), deadline.remaining_ms())
            ):
                echoed = self._own_probe_back() or echoed
            if echoed and (wanted is None or self.has_subscriber(wanted)):
                return True
            if deadline.expired:
                what = (
                    "no subscriber for " + ", ".join(repr(t.decode(errors="replace")) for t in wanted or ())
                    if echoed
                    else "the replay's probe did not come back through the broker (is the bus up?)"
                )
                msg = f"{what} within {timeout_s:g} s"
                raise DeadlineMissed(msg)

    def round_trip(self, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
        """Send a probe and wait until it comes back: everything sent before it has passed the broker."""
        deadline = Deadline(timeout_s, self._time)
        self._probe()
        while self.subscriber is not None and self.subscriber.poll(deadline.remaining_ms()):
            if self._own_probe_back():
                return True
            if deadline.expired:
                break
        return False

    # ----------------------------------------------------------------- replaying

    def replay(
        self,
        selected: Iterable[Selected],
        *,
        speed: float = 1.0,
        should_stop: Callable[[], bool] = _never,
    ) -> ReplayStats:
        """Publish every selected record, in order, paced at ``speed`` times its mission time.

        ``speed`` is positive; ``math.inf`` sends as fast as the broker takes them. Blocks
        for the whole replay; stops early when ``should_stop()`` is true (``interrupted``).
        A send that waits more than ``send_timeout_s`` at the high-water mark drops that
        record (counted). Raises :class:`ConfigError` for a bad speed and
        :class:`BusError` if the socket stalls in the middle of a message.
        """
        if not speed > 0:
            msg = f"speed {speed!r} must be positive"
            raise ConfigError(msg)
        if self.publisher is None:
            msg = "replayer is closed"
            raise BusError(msg)
        publisher = self.publisher
        stats = ReplayStats()
        started_s = self._time.now_s()
        pacer = _Pacer(speed, self._time, self._wait, should_stop)
        try:
            for item in selected:
                if should_stop() or not pacer.wait_until_due(item):
                    stats.interrupted = True
                    break
                if self._send(publisher, item.record.wire_frames()):
                    stats.sent += 1
                    if stats.first_mission_s is None:
                        stats.first_mission_s = item.mission_clock_s
                    stats.last_mission_s = item.mission_clock_s
                else:
                    stats.dropped += 1
        finally:
            stats.wall_s = self._time.now_s() - started_s
        return stats

    @staticmethod
    def _send(publisher: zmq.Socket[bytes], frames: list[bytes]) -> bool:
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            try:
                publisher.send(frame, zmq.SNDMORE if index < last else 0)
            except zmq.Again as exc:
                if index == 0:
                    return False
                msg = "the replay's publisher stalled in the middle of a message"
                raise BusError(msg) from exc
        return True

    # ----------------------------------------------------------------- closing

    def close(self) -> None:
        """Close both sockets and the context; the publisher hands over what it holds first
        (at most :data:`PUBLISHER_LINGER_MS`). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.subscriber is not None:
            self.subscriber.close(linger=0)
            self.subscriber = None
        if self.publisher is not None:
            self.publisher.close(linger=PUBLISHER_LINGER_MS)
            self.publisher = None
        self._context.term()


# --- a broker of the replay's own -----------------------------------------------------


def _ipc_path(endpoint: str) -> Path | None:
    return Path(endpoint[len("ipc://") :]) if endpoint.startswith("ipc://") else None


def endpoint_in_use(endpoint: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections on the ``ipc://`` ``endpoint`` (``False`` for tcp)."""
    path = _ipc_path(endpoint)
    if path is None or not path.exists():
        return False
    probe = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    try:
        probe.settimeout(timeout_s)
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


class StandaloneBroker(Resource):
    """A broker process for a replay: ``python -m fsw.launch RUN_DIR bus``.

    Writes ``deployment_text`` and run options into ``deployment.run_dir`` and starts
    the broker there (its log: ``<run_dir>/logs/bus.log``). It gets SIGTERM if this
    process dies. Raises :class:`ConfigError` if a bus already runs in that run
    directory (its sockets would be taken over) and :class:`ProcessError` if it cannot
    start. ``close()`` (idempotent) sends SIGTERM, then SIGKILL after ``grace_s``.
    """

    def __init__(self, deployment: Deployment, deployment_text: str, *, grace_s: float = 3.0) -> None:
        self.deployment = deployment
        self.grace_s = grace_s
        self.run_dir = deployment.run_dir
        bus = deployment.bus
        for endpoint in (bus.publish, bus.subscribe, bus.command, bus.dispatch):
            if endpoint_in_use(endpoint):
                msg = (
                    f"a bus is already running at {endpoint}; "
                    "replay into it without --broker, or pass another --run-dir"
                )
                raise ConfigError(msg)
        options = RunOptions(run_id=f"replay-{uuid.uuid4().hex[:8]}")
        try:
            run_module.write(self.run_dir, deployment_text, options)
            self.log_path = self.run_dir / "logs" / "bus.log"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log_file:
                self.popen: subprocess.Popen[bytes] = subprocess.Popen(
                    [sys.executable, "-m", "fsw.launch", str(self.run_dir), "bus"],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    start_new_session=True,
                )
        except OSError as exc:
            msg = f"cannot start a broker in {self.run_dir}: {exc}"
            raise ProcessError(msg) from exc
        self._closed = False

    def check_alive(self) -> None:
        """Raise :class:`ProcessError`, with the end of its log, if the broker has exited."""
        code = self.popen.poll()
        if code is None:
            return
        try:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            tail = ""
        msg = f"the replay's broker exited with status {code} (log {self.log_path}):\n{tail}"
        raise ProcessError(msg)

    def close(self) -> None:
        """SIGTERM the broker, SIGKILL it after ``grace_s``; wait for it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5.0)


def probe_topic_prefix() -> bytes:
    """The topic prefix of the replay's probes (listeners may want to ignore them)."""
    return _PROBE_PREFIX


def envelope_json(message: Message) -> dict[str, Any]:
    """The envelope of ``message`` as plain data (for JSON output)."""
    return {
        "v": 1,
        "kind": message.kind.value,
        "src": message.source,
        "name": message.name,
        "t": message.t_s,
        "seq": message.seq,
        "data": message.data,
    }


def body_preview(body: bytes, limit: int = 64) -> str:
    """Hex of the first ``limit`` bytes of a body that did not decode."""
    return body[:limit].hex() + ("..." if len(body) > limit else "")


__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_TOPICS",
    "REPLAY_SOURCE",
    "ReplayStats",
    "Replayer",
    "StandaloneBroker",
    "body_preview",
    "endpoint_in_use",
    "envelope_json",
    "probe_topic_prefix",
]
