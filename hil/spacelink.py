"""The simulated space link: a UDP relay between the ground and the base's comms.

The ground sends its telecommands to the relay's ground port (``ground_udp``, default
``127.0.0.1:10015``) instead of the base; the relay passes them to the comms process's
UDP endpoint (``base_udp``, default: comms' ``link_udp``) from a socket of its own, so
comms answers the relay, and the relay passes comms' telemetry back to the address the
ground last sent from. Each way it applies:

* the one-way light time, ``light_time_s`` (1.28 s, wall seconds);
* the rate, ``rate_bps`` (0: no cap): a packet leaves after those before it, ``8 * bytes /
  rate_bps`` seconds after it started;
* loss, ``loss`` (probability per packet), drawn from a generator seeded with the run's
  seed;
* a bound, ``queue_packets`` (10,000 per way): packets beyond it are dropped.

Visibility windows and the radio's data rate are the comms process's (it hears and
sends nothing while no link is up, and drains its queue at the board's rate), so the
relay carries what comms lets through and store-and-forward comes for free. Every drop
and loss is counted in the relay's housekeeping.

The relay is pure bytes: it neither parses nor authenticates; a bad packet is comms'
to refuse. It runs on wall time (``lockstep = false``) and takes its mission time from
the clock's housekeeping, for the time stamps of its own packets.
"""

from __future__ import annotations

import random
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from fsw.deployment import Deployment, ProcessSpec, numeric_params
from fsw.dictionary import ArgType, Dictionary, Point
from fsw.errors import ConfigError
from fsw.messages import Message
from fsw.process import Process
from fsw.run import RunOptions
from fsw.spacelink import split_host_port
from fsw.timesource import TimeSource

#: Default ground-facing endpoint of the relay.
DEFAULT_GROUND_UDP: Final = "127.0.0.1:10015"
#: The comms endpoint the relay talks to when neither it nor comms names one.
DEFAULT_BASE_UDP: Final = "127.0.0.1:10025"
#: Largest datagram read.
MAX_DATAGRAM_BYTES: Final = 65_535
#: Wall seconds between two attempts to bind a ground port that was taken.
REBIND_INTERVAL_S: Final = 10.0
#: Datagrams read from one socket in one wakeup, so the other way and the bus get their turn.
READS_PER_WAKEUP: Final = 256

#: ``[processes.spacelink.params]``: name -> (default, low, high).
PARAMS: Final[dict[str, tuple[float, float, float]]] = {
    "light_time_s": (1.28, 0.0, 60.0),
    "loss": (0.0, 0.0, 1.0),
    "rate_bps": (0.0, 0.0, 1e10),
    "queue_packets": (10_000.0, 1.0, 1e6),
}

_WAYS: Final = ("uplink", "downlink")


def _address(text: Any, where: str) -> tuple[str, int]:
    if not isinstance(text, str):
        msg = f"{where} must be a string 'ADDRESS:PORT', got {text!r}"
        raise ConfigError(msg)
    split = split_host_port(text)
    if split is None or not split[0] or not 0 <= split[1] <= 65535:
        msg = f"{where} = {text!r} must be 'ADDRESS:PORT'"
        raise ConfigError(msg)
    return split


def _socket_for(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


@dataclass
class WayCounters:
    """What one way of the relay did (monotonic)."""

    packets: int = 0
    bytes: int = 0
    lost: int = 0
    dropped: int = 0
    send_errors: int = 0


class Way:
    """One direction: packets in flight, each with the wall time it arrives."""

    def __init__(self, light_time_s: float, rate_bps: float, capacity: int) -> None:
        self.light_time_s = light_time_s
        self.rate_bps = rate_bps
        self.capacity = capacity
        self.flight: deque[tuple[float, bytes]] = deque()
        self.free_at_s = 0.0
        self.counters = WayCounters()

    def offer(self, packet: bytes, now_s: float, lost: bool) -> None:
        """Take a packet that arrived now: lose it, drop it (full), or schedule its arrival."""
        if lost:
            self.counters.lost += 1
            return
        if len(self.flight) >= self.capacity:
            self.counters.dropped += 1
            return
        start_s = max(now_s, self.free_at_s)
        self.free_at_s = start_s + (8.0 * len(packet) / self.rate_bps if self.rate_bps > 0.0 else 0.0)
        self.flight.append((self.free_at_s + self.light_time_s, packet))

    def due(self, now_s: float) -> list[bytes]:
        """The packets that have arrived by ``now_s``, in order."""
        out: list[bytes] = []
        while self.flight and self.flight[0][0] <= now_s:
            out.append(self.flight.popleft()[1])
        return out

    @property
    def next_s(self) -> float | None:
        return self.flight[0][0] if self.flight else None


class SpaceLinkRelay(Process):
    """The simulated space link (see the module docstring)."""

    dictionary: ClassVar[Dictionary] = Dictionary(
        telemetry=(
            Point("light_time_s", ArgType.FLOAT, "s", "One-way light time applied."),
            Point("ground_open", ArgType.BOOL, "", "The ground port is bound (if taken: tried every 10 s)."),
            Point(
                "ground_known", ArgType.BOOL, "", "The ground has sent something: downlink has a destination."
            ),
            *(
                point
                for way in _WAYS
                for point in (
                    Point(f"{way}_packets", ArgType.INT, "", f"Packets delivered on the {way}, total."),
                    Point(f"{way}_bytes", ArgType.INT, "B", f"Bytes delivered on the {way}, total."),
                    Point(f"{way}_in_flight", ArgType.INT, "", f"Packets on their way on the {way}."),
                    Point(f"{way}_lost", ArgType.INT, "", f"Packets lost on the {way} (``loss``), total."),
                    Point(
                        f"{way}_dropped",
                        ArgType.INT,
                        "",
                        f"Packets dropped on the {way} (queue full), total.",
                    ),
                    Point(f"{way}_send_errors", ArgType.INT, "", f"Packets the {way} could not send, total."),
                )
            ),
            Point(
                "downlink_unaddressed", ArgType.INT, "", "Telemetry that came before the ground did, total."
            ),
        ),
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
        where = f"processes.{spec.name}.params"
        numbers = numeric_params(self.params, PARAMS, where, unknown_ok=True)
        unknown = sorted(set(self.params) - set(PARAMS) - {"ground_udp", "base_udp"})
        if unknown:
            msg = f"[{where}] unknown parameter {unknown[0]!r}"
            raise ConfigError(msg)
        self.light_time_s = numbers["light_time_s"]
        self.loss = numbers["loss"]
        self.ground_address = _address(
            self.params.get("ground_udp", DEFAULT_GROUND_UDP), f"[{where}] ground_udp"
        )
        self.base_address = _address(self.params.get("base_udp", self._comms_udp()), f"[{where}] base_udp")
        capacity = int(numbers["queue_packets"])
        self.ways = {way: Way(self.light_time_s, numbers["rate_bps"], capacity) for way in _WAYS}
        self._rng = random.Random(options.seed)  # noqa: S311 - simulated loss, not cryptography
        self._ground_peer: tuple[Any, ...] | None = None
        self.downlink_unaddressed = 0
        self._ground: socket.socket | None = None
        self._base: socket.socket | None = None
        self._next_hk_s = 0.0
        #: Whether the ground port is bound; when to try again if not.
        self.ground_open = False
        self._bind_failed = False
        self._retry_bind_s: float | None = None

    def _comms_udp(self) -> str:
        """Comms' ``link_udp`` in this deployment, if it names one (the default otherwise)."""
        for spec in self.deployment.processes:
            if spec.entry == "subsystems.comms:CommsProcess":
                value = spec.params.get("link_udp", DEFAULT_BASE_UDP)
                return str(value) if value else DEFAULT_BASE_UDP
        return DEFAULT_BASE_UDP

    def subscriptions(self) -> tuple[bytes, ...]:
        """The clock's housekeeping: this process's mission time."""
        return (b"tlm.clock.hk",)

    def setup(self) -> None:
        """Open the socket toward comms and bind the ground port (tried again if it is taken)."""
        self._ground = _socket_for(self.ground_address)
        self._base = _socket_for(self.base_address)
        self._base.bind(("::" if ":" in self.base_address[0] else "0.0.0.0", 0))  # noqa: S104 - any port
        self.add_reader(self._ground.fileno(), self._from_ground)
        self.add_reader(self._base.fileno(), self._from_base)
        self._bind_ground()

    def _bind_ground(self) -> None:
        """Bind the ground port; if it is taken, log it (the first time) and try again in 10 s.

        A log, not an event: a port taken depends on the host, and a seeded run's event
        history must not. ``ground_open`` in the housekeeping says whether it is bound.
        """
        if self._ground is None or self.ground_open:
            return
        ground, base = self.ground_address, self.base_address
        try:
            self._ground.bind(ground)
        except OSError as exc:
            self._retry_bind_s = self.time.now_s() + REBIND_INTERVAL_S
            if not self._bind_failed:
                self._bind_failed = True
                self.log.error("relay_bind_failed", ground=f"{ground[0]}:{ground[1]}", error=str(exc))
            return
        self.ground_open = True
        self._retry_bind_s = None
        self.log.info("relay_open", ground=f"{ground[0]}:{ground[1]}", base=f"{base[0]}:{base[1]}")

    def teardown(self) -> None:
        """Close both sockets."""
        for sock in (self._ground, self._base):
            if sock is not None:
                sock.close()
        self._ground = self._base = None

    def on_message(self, message: Message) -> None:
        """Follow mission time from the clock's housekeeping."""
        self.mission_time_s = message.t_s
        if self.bus is not None:
            self.bus.mission_time_s = message.t_s

    # ----------------------------------------------------------------- relaying

    def _receive(self, sock: socket.socket | None) -> list[tuple[bytes, tuple[Any, ...]]]:
        received: list[tuple[bytes, tuple[Any, ...]]] = []
        if sock is None:
            return received
        for _ in range(READS_PER_WAKEUP):
            try:
                packet, address = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except BlockingIOError:
                break
            except OSError:  # an ICMP error for an earlier send
                continue
            received.append((packet, tuple(address)))
        return received

    def _from_ground(self) -> None:
        now_s = self.time.now_s()
        for packet, address in self._receive(self._ground):
            self._ground_peer = address
            self.ways["uplink"].offer(packet, now_s, self._lost())
        self._deliver(now_s)

    def _from_base(self) -> None:
        now_s = self.time.now_s()
        for packet, _address in self._receive(self._base):
            self.ways["downlink"].offer(packet, now_s, self._lost())
        self._deliver(now_s)

    def _lost(self) -> bool:
        return self.loss > 0.0 and self._rng.random() < self.loss

    def _deliver(self, now_s: float) -> None:
        for packet in self.ways["uplink"].due(now_s):
            self._send(self._base, packet, self.base_address, self.ways["uplink"].counters)
        for packet in self.ways["downlink"].due(now_s):
            if self._ground_peer is None:
                self.downlink_unaddressed += 1
                continue
            self._send(self._ground, packet, self._ground_peer, self.ways["downlink"].counters)

    @staticmethod
    def _send(
        sock: socket.socket | None, packet: bytes, address: tuple[Any, ...], counters: WayCounters
    ) -> None:
        if sock is None:
            return
        try:
            sock.sendto(packet, address)
        except OSError:  # would block, or refused: the packet is gone, as on a radio link
            counters.send_errors += 1
            return
        counters.packets += 1
        counters.bytes += len(packet)

    def next_timer_s(self) -> float | None:
        """The next arrival or housekeeping, whichever is first (wall time)."""
        due = [self._next_hk_s]
        due += [s for s in (way.next_s for way in self.ways.values()) if s is not None]
        if self._retry_bind_s is not None:
            due.append(self._retry_bind_s)
        return min(due)

    def on_timer(self) -> None:
        """Deliver what has arrived; publish housekeeping every ``housekeeping_period_s``."""
        now_s = self.time.now_s()
        self._deliver(now_s)
        if self._retry_bind_s is not None and now_s >= self._retry_bind_s:
            self._bind_ground()
        if now_s >= self._next_hk_s:
            self._next_hk_s = now_s + self.spec.housekeeping_period_s
            if self._joined:
                self.publish_housekeeping()

    def housekeeping(self) -> dict[str, Any]:
        """Counters of both ways."""
        points: dict[str, Any] = {
            "light_time_s": self.light_time_s,
            "ground_open": self.ground_open,
            "ground_known": self._ground_peer is not None,
            "downlink_unaddressed": self.downlink_unaddressed,
        }
        for name, way in self.ways.items():
            counters = way.counters
            points.update(
                {
                    f"{name}_packets": counters.packets,
                    f"{name}_bytes": counters.bytes,
                    f"{name}_in_flight": len(way.flight),
                    f"{name}_lost": counters.lost,
                    f"{name}_dropped": counters.dropped,
                    f"{name}_send_errors": counters.send_errors,
                }
            )
        return points

    def statistics(self) -> dict[str, Any]:
        """Packets carried and lost each way."""
        stats: dict[str, Any] = {}
        for name, way in self.ways.items():
            stats[f"{name}_packets"] = way.counters.packets
            stats[f"{name}_lost"] = way.counters.lost + way.counters.dropped
        return stats
