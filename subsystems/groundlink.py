"""The base's end of the ground link: sockets, the telecommand pipeline, verification, telemetry.

The comms process owns one :class:`GroundLink` (and the link owns its sockets, its key ring
and its state store); :class:`TelemetryEncoder` turns what the base queues for the ground
into PUS telemetry. The packets are those of :mod:`fsw.spacelink` (docs/space-link.md).

Transports. A UDP socket (``link_udp``) and a TCP listener (``link_tcp``), both
non-blocking, behind one selector whose descriptor the comms process polls with its bus
sockets (:meth:`GroundLink.fileno`). Over TCP, packets follow each other with no framing:
each one's CCSDS length field says where the next begins; a stream whose next header
cannot start a telecommand (wrong version or type, a length out of bounds) is garbage
and its client is dropped (``tcp_garbage``). Telemetry goes to the UDP address of the
last valid telecommand (none yet: ``tm_unaddressed``) and to every TCP client.

Telecommand pipeline, each packet in order, the first failure wins:

1. no link up (the radio hears nothing): ``NO_LINK``, counted, no reply;
2. over the token bucket (``tc_rate_per_s``, a second's worth of burst): ``FLOOD``,
   counted, no reply;
3. framing and CRC (:func:`fsw.spacelink.parse_tc`); the APID must be a process's;
4. the key id must be in the key ring and be its active key; the MAC must match;
5. the sequence number must be fresh in the anti-replay window (then it is accepted);
6. once every packet of the wakeup went through 1-5, the window is saved in
   ``<state_dir>/comms.db`` in one transaction (group commit), and only then are the
   accepted telecommands decoded (unknown service, malformed data) and executed.

A refused telecommand never executes. It is counted by its :class:`~fsw.spacelink.Failure`
(``tc_rejected_<code>``), answered with TM[1,2] (code and reason) when its header could be
read, and reported by the event ``security_violation`` (error: unknown or inactive key,
bad MAC, replay) or ``tc_rejected`` (warning), each at most once a second (the next one
carries how many were held back in ``suppressed``). No telecommand is read after
``tc_per_wakeup`` in one wakeup: the comms process's loop turns between batches.

Execution. TC[17,1]: TM[1,1], TM[17,2], TM[1,7]. TC[8,1]: sent to the router as a command
from ``ground`` to the process of the packet's APID, without blocking; the router's and
the process's answers become TM[1,1] + TM[1,3] (accepted), TM[1,7] (completed), TM[1,2]
(rejected, timed out) or TM[1,8] (failed). A command that has no final answer within
:data:`VERIFICATION_TIMEOUT_S` gets ``TIMED_OUT``. Every report goes through the host's
downlink queue at the highest priority.

Keys. The key file (``keys``; created with fresh random keys if missing: its path is
logged, never its keys) gives the ring; the active key id survives restarts in the state store.
:meth:`GroundLink.activate_key` rotates. A key file that cannot be read leaves the link
without keys: every telecommand is refused (``UNKNOWN_KEY``) and ``key_file_error`` says why.
A damaged state store is moved aside and the window starts empty (``link_state_lost``:
rotate the key, so that telecommands recorded before are refused as ``INACTIVE_KEY``).

Bounds: TCP clients (:data:`TCP_CLIENTS_MAX`), each client's input
(:data:`TCP_INPUT_BYTES_MAX`) and output (:data:`TCP_OUTPUT_BYTES_MAX`: a client that does
not read is dropped), commands awaiting verification (:data:`PENDING_COMMANDS_MAX`). Every
drop is counted in the link's housekeeping points (:data:`LINK_POINTS`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from fsw.bus import CommandClient, CommandOutcome
from fsw.dictionary import ArgType, Dictionary, EventDef, Point, Severity
from fsw.errors import ConfigError, FswError, LinkRejected, StorageError
from fsw.resource import Resource
from fsw.security import (
    DEFAULT_KEY_FILE,
    KeyRing,
    ReplayWindow,
    create_key_file,
    load_key_file,
    resolve_key_path,
)
from fsw.spacelink import (
    EVENT_SUBTYPES,
    MAX_TC_BYTES,
    MIN_TC_BYTES,
    SECURITY_FAILURES,
    TM_ACCEPT_FAILED,
    TM_ACCEPTED,
    TM_COMPLETED,
    TM_COMPLETION_FAILED,
    TM_HOUSEKEEPING,
    TM_PONG,
    TM_STARTED,
    UNDECLARED_EVENT,
    Failure,
    HousekeepingLayout,
    RawTelecommand,
    apid_of,
    decode_service,
    encode_tm,
    epoch_from_text,
    event_data,
    parse_tc,
    split_host_port,
    verification_data,
    verify_mac,
    with_sequence_count,
)
from fsw.store import StateStore, quarantine
from fsw.timesource import TimeSource

#: Default UDP endpoint of the link (``link_udp``).
DEFAULT_UDP: Final = "127.0.0.1:10025"
#: Default TCP endpoint of the link (``link_tcp``).
DEFAULT_TCP: Final = "127.0.0.1:10026"
#: TCP clients served at once; one more is accepted and closed at once (counted).
TCP_CLIENTS_MAX: Final = 8
#: Bytes of a TCP client's input held before the link stops reading it (TCP then pushes back).
TCP_INPUT_BYTES_MAX: Final = 64 * 1024
#: Bytes of telemetry waiting for a TCP client before it is dropped as not reading.
TCP_OUTPUT_BYTES_MAX: Final = 4 * 1024 * 1024
#: Receive buffer asked for the UDP socket (bytes; the kernel may give less).
UDP_RECEIVE_BUFFER_BYTES: Final = 1024 * 1024
#: Bytes read from a TCP client in one go.
TCP_READ_BYTES: Final = 16 * 1024
#: Commands waiting for their final answer at once; more are refused (``COMMAND_REJECTED``).
PENDING_COMMANDS_MAX: Final = 256
#: Wall seconds a command may go without a final answer before it is reported ``TIMED_OUT``.
VERIFICATION_TIMEOUT_S: Final = 60.0
#: Shortest wall time between two events of one name (``tc_rejected``, ``security_violation``).
EVENT_INTERVAL_S: Final = 1.0
#: Wall seconds between two attempts to open an endpoint that could not be opened.
REOPEN_INTERVAL_S: Final = 10.0
#: Keys of the state store.
REPLAY_KEY: Final = "replay_window"
ACTIVE_KEY_KEY: Final = "active_key"

_UDP: Final = "udp"
_LISTENER: Final = "listener"

#: The link's housekeeping points (the comms process publishes them).
LINK_POINTS: Final = (
    Point("link_endpoints_open", ArgType.BOOL, "", "Every configured ground-link endpoint is open."),
    Point("link_active_key", ArgType.INT, "", "Key id that authenticates telecommands (-1: no keys)."),
    Point("tc_sequence_highest", ArgType.INT, "", "Highest sequence number accepted under the active key."),
    Point("tc_received", ArgType.INT, "", "Telecommand packets received, total."),
    Point("tc_accepted", ArgType.INT, "", "Telecommands authenticated and fresh, total."),
    Point("tc_rejected", ArgType.INT, "", "Telecommands refused, total (by reason below)."),
    *(
        Point(
            f"tc_rejected_{failure.name.lower()}", ArgType.INT, "", f"Telecommands refused: {failure.name}."
        )
        for failure in Failure
    ),
    Point("tc_commits", ArgType.INT, "", "Anti-replay windows saved (one per batch of telecommands), total."),
    Point("tc_pings", ArgType.INT, "", "TC[17,1] answered, total."),
    Point("tc_commands", ArgType.INT, "", "TC[8,1] sent to their process, total."),
    Point("verification_pending", ArgType.INT, "", "Commands waiting for their final answer."),
    Point("tm_packets", ArgType.INT, "", "Telemetry packets sent on the ground link, total."),
    Point("tm_bytes", ArgType.INT, "B", "Telemetry bytes sent on the ground link, total."),
    Point("tm_unaddressed", ArgType.INT, "", "Telemetry packets with no one to send to, total."),
    Point("tm_udp_dropped", ArgType.INT, "", "Telemetry packets UDP could not send, total."),
    Point("tm_unencodable", ArgType.INT, "", "Events or housekeeping of unknown sources not sent, total."),
    Point("tcp_clients", ArgType.INT, "", "TCP clients connected."),
    Point("tcp_refused", ArgType.INT, "", "TCP clients refused (too many), total."),
    Point("tcp_garbage", ArgType.INT, "", "TCP clients dropped for a stream that is not telecommands."),
    Point("tcp_slow", ArgType.INT, "", "TCP clients dropped for not reading their telemetry."),
    Point("link_socket_errors", ArgType.INT, "", "Socket errors on the ground link, total."),
    Point("link_store_errors", ArgType.INT, "", "Anti-replay state that could not be saved, total."),
)

#: The link's events (the comms process declares them).
LINK_EVENTS: Final = (
    EventDef("key_file_error", Severity.ERROR, "The key file cannot be used: every telecommand is refused."),
    EventDef("key_activated", Severity.INFO, "Another key authenticates telecommands (key_id, previous)."),
    EventDef(
        "link_state_lost",
        Severity.ERROR,
        "The anti-replay state was damaged and set aside: rotate the key (activate_key).",
    ),
    EventDef(
        "tc_rejected", Severity.WARNING, "A telecommand was refused (code, reason, sender, suppressed)."
    ),
    EventDef(
        "security_violation",
        Severity.ERROR,
        "A telecommand failed authentication or replay checks (code, reason, sender, suppressed).",
    ),
)


# ----------------------------------------------------------------- configuration


@dataclass(frozen=True)
class LinkConfig:
    """Where the link listens, its keys and state, and its rates."""

    udp: tuple[str, int] | None
    tcp: tuple[str, int] | None
    keys_path: Path
    store_path: Path
    apids: dict[str, int] = field(default_factory=dict)
    epoch_utc: str = ""
    tc_rate_per_s: float = 2000.0
    tc_per_wakeup: int = 64


def parse_address(text: str, where: str) -> tuple[str, int] | None:
    """``"host:port"`` (numeric IPv4, ``[IPv6]``, ``localhost``) -> (host, port); ``""`` -> None.

    Numeric only: a board does not wait on name lookups. Raises :class:`ConfigError` naming
    ``where``.
    """
    if text == "":
        return None
    split = split_host_port(text)
    try:
        numeric = split is not None and bool(ipaddress.ip_address(split[0]))
    except ValueError:
        numeric = False
    if split is None or not numeric or not 0 <= split[1] <= 65535:
        msg = f"{where} = {text!r} must be 'ADDRESS:PORT' with a numeric address (or '' for none)"
        raise ConfigError(msg)
    return split


def read_link_config(
    params: Mapping[str, Any],
    numbers: Mapping[str, float],
    *,
    state_dir: Path,
    run_dir: Path,
    where: str = "processes.comms.params",
) -> LinkConfig:
    """The link's settings from the comms ``params`` (``numbers``: its checked numeric ones).

    Raises :class:`ConfigError` naming ``[where]`` and the key.
    """
    texts: dict[str, str] = {}
    for key, default in (
        ("link_udp", DEFAULT_UDP),
        ("link_tcp", DEFAULT_TCP),
        ("keys", DEFAULT_KEY_FILE),
        ("epoch_utc", ""),
    ):
        value = params.get(key, default)
        if not isinstance(value, str):
            msg = f"[{where}] {key} must be a string, got {value!r}"
            raise ConfigError(msg)
        texts[key] = value
    raw_apids = params.get("apids", {})
    if not isinstance(raw_apids, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in raw_apids.values()
    ):
        msg = f"[{where}] apids must be a table of process name = APID (integer)"
        raise ConfigError(msg)
    if texts["epoch_utc"]:
        try:
            epoch_from_text(texts["epoch_utc"])
        except ConfigError as exc:
            msg = f"[{where}] epoch_utc: {exc}"
            raise ConfigError(msg) from exc
    return LinkConfig(
        udp=parse_address(texts["link_udp"], f"[{where}] link_udp"),
        tcp=parse_address(texts["link_tcp"], f"[{where}] link_tcp"),
        keys_path=resolve_key_path(texts["keys"], state_dir=state_dir, run_dir=run_dir),
        store_path=state_dir / "comms.db",
        apids={str(k): int(v) for k, v in raw_apids.items()},
        epoch_utc=texts["epoch_utc"],
        tc_rate_per_s=float(numbers["tc_rate_per_s"]),
        tc_per_wakeup=int(numbers["tc_per_wakeup"]),
    )


# ----------------------------------------------------------------- telemetry


class TelemetryEncoder:
    """PUS telemetry of the base: housekeeping, events and reports. Pure: no I/O.

    ``apids`` maps process names to APIDs; ``dictionaries`` each process's full dictionary
    (the housekeeping layout and the event ids come from it). Time stamps are
    ``epoch_unix_s`` plus the mission time. Sequence counts are left at 0: the link
    numbers packets as they leave (:func:`fsw.spacelink.with_sequence_count`).
    """

    def __init__(
        self, apids: Mapping[str, int], dictionaries: Mapping[str, Dictionary], epoch_unix_s: float
    ) -> None:
        self.apids = dict(apids)
        self.epoch_unix_s = epoch_unix_s
        self.layouts = {
            name: HousekeepingLayout(self.apids[name], dictionary.telemetry)
            for name, dictionary in dictionaries.items()
            if name in self.apids
        }
        self.event_ids = {
            name: {event.name: index for index, event in enumerate(dictionary.events)}
            for name, dictionary in dictionaries.items()
        }

    def housekeeping(self, source: str, t_s: float, values: Mapping[str, Any]) -> bytes | None:
        """TM[3,25] of ``source``'s housekeeping at mission time ``t_s``; None for an unknown source."""
        layout = self.layouts.get(source)
        if layout is None:
            return None
        return self.report(layout.structure_id, TM_HOUSEKEEPING, t_s, layout.pack(values))

    def event(self, source: str, name: str, t_s: float, data: Mapping[str, Any]) -> bytes | None:
        """TM[5,x] of one event (``data`` as on the bus, with its ``severity``); None if unsendable."""
        apid = self.apids.get(source)
        if apid is None:
            return None
        fields = {k: v for k, v in data.items() if k != "severity"}
        event_id = self.event_ids.get(source, {}).get(name)
        if event_id is None:
            event_id, fields = UNDECLARED_EVENT, {"event": name, **fields}
        subtype = EVENT_SUBTYPES.get(str(data.get("severity", "")), 1)
        try:
            return self.report(apid, (5, subtype), t_s, event_data(event_id, fields))
        except (ValueError, TypeError, OverflowError):  # data too long or not encodable
            return None

    def report(self, apid: int, kind: tuple[int, int], t_s: float, data: bytes = b"") -> bytes:
        """Any TM packet of ``apid`` at mission time ``t_s``."""
        return encode_tm(apid, kind, data, unix_s=self.epoch_unix_s + t_s)


# ----------------------------------------------------------------- small parts


class TokenBucket:
    """At most ``rate_per_s`` on average, bursts of up to ``burst`` (wall time from the caller)."""

    def __init__(self, rate_per_s: float, burst: float, now_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._at_s = now_s

    def take(self, now_s: float) -> bool:
        """Spend one token if there is one; return whether there was."""
        self._tokens = min(self.burst, self._tokens + (now_s - self._at_s) * self.rate_per_s)
        self._at_s = now_s
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class StreamFramer:
    """Splits a TCP byte stream into telecommand packets by their length fields. Pure.

    :meth:`next_packet` raises :class:`LinkRejected` when the next header cannot begin a
    telecommand (wrong version, not a TC, no secondary header, length out of
    [:data:`MIN_TC_BYTES`, :data:`MAX_TC_BYTES`]): the stream has lost its framing for good.
    """

    def __init__(self, max_buffer_bytes: int = TCP_INPUT_BYTES_MAX) -> None:
        self.max_buffer_bytes = max_buffer_bytes
        self._buffer = bytearray()

    @property
    def room(self) -> int:
        """Bytes that may be fed now."""
        return max(0, self.max_buffer_bytes - len(self._buffer))

    def feed(self, data: bytes) -> None:
        """Append received bytes (at most :attr:`room`; the caller reads no more than that)."""
        self._buffer += data[: self.room]

    def _length(self) -> int | None:
        buffer = self._buffer
        if len(buffer) < 6:
            return None
        first = buffer[0]
        if first >> 5 != 0 or not (first >> 4) & 1 or not (first >> 3) & 1:
            msg = f"stream byte {first:#04x} cannot begin a CCSDS telecommand with a secondary header"
            raise LinkRejected(Failure.NOT_TELECOMMAND, msg)
        length = (buffer[4] << 8 | buffer[5]) + 7
        if length > MAX_TC_BYTES:
            raise LinkRejected(Failure.OVERSIZED, f"a {length}-byte telecommand, more than {MAX_TC_BYTES}")
        if length < MIN_TC_BYTES:
            raise LinkRejected(Failure.TRUNCATED, f"a {length}-byte telecommand, less than {MIN_TC_BYTES}")
        return length

    def has_packet(self) -> bool:
        """Whether a whole packet is buffered (a header that is garbage counts: it must be seen)."""
        try:
            length = self._length()
        except LinkRejected:
            return True
        return length is not None and len(self._buffer) >= length

    def next_packet(self) -> bytes | None:
        """The next whole packet, or None until more bytes come; raises :class:`LinkRejected`."""
        length = self._length()
        if length is None or len(self._buffer) < length:
            return None
        packet = bytes(self._buffer[:length])
        del self._buffer[:length]
        return packet


class EventThrottle:
    """At most one event of a name per ``interval_s``; how many were held back rides on the next."""

    def __init__(self, interval_s: float = EVENT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last_s: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def admit(self, name: str, now_s: float) -> int | None:
        """None: hold this one back; else publish it with this many held back since the last."""
        last = self._last_s.get(name)
        if last is not None and now_s - last < self.interval_s:
            self._held[name] = self._held.get(name, 0) + 1
            return None
        self._last_s[name] = now_s
        return self._held.pop(name, 0)


@dataclass(frozen=True)
class Origin:
    """Where a telecommand came from: ``udp`` and the sender's address, or ``tcp`` and the peer's."""

    transport: str
    address: tuple[Any, ...]

    @property
    def text(self) -> str:
        """``udp 127.0.0.1:5000``."""
        return f"{self.transport} {self.address[0]}:{self.address[1]}"


@dataclass
class _Pending:
    """A command sent to its process, waiting for the answers to report."""

    request: bytes
    apid: int
    outcome: CommandOutcome
    deadline_s: float
    reported: int = 0


@dataclass
class _Client:
    """One TCP client: its socket, its input framing and its waiting output."""

    sock: socket.socket
    peer: tuple[Any, ...]
    framer: StreamFramer = field(default_factory=StreamFramer)
    output: bytearray = field(default_factory=bytearray)

    @property
    def origin(self) -> Origin:
        return Origin("tcp", self.peer)


@dataclass
class LinkCounters:
    """What the link did (monotonic except ``verification_pending`` and ``tcp_clients``)."""

    received: int = 0
    accepted: int = 0
    rejected: dict[Failure, int] = field(default_factory=lambda: dict.fromkeys(Failure, 0))
    commits: int = 0
    pings: int = 0
    commands: int = 0
    tm_packets: int = 0
    tm_bytes: int = 0
    tm_unaddressed: int = 0
    tm_udp_dropped: int = 0
    tm_unencodable: int = 0
    tcp_refused: int = 0
    tcp_garbage: int = 0
    tcp_slow: int = 0
    socket_errors: int = 0
    store_errors: int = 0


class LinkHost(Protocol):
    """What the link needs from the process that owns it (the comms process)."""

    def link_is_up(self) -> bool:
        """Whether a space link is up now (else the radio hears nothing)."""
        ...

    def link_mission_time_s(self) -> float:
        """Mission time now (s), for time stamps."""
        ...

    def queue_report(self, packet: bytes) -> None:
        """Queue a verification or ping report for the downlink, at the highest priority."""
        ...

    def link_event(self, name: str, data: dict[str, Any]) -> None:
        """Publish event ``name`` (declared in :data:`LINK_EVENTS`)."""
        ...

    def link_note(self, name: str, data: dict[str, Any], *, error: bool = False) -> None:
        """Log ``name`` (what depends on the host, not the mission: no event, so seeded runs repeat)."""
        ...

    def ground_contact(self) -> None:
        """A valid telecommand arrived: the ground is in contact (command-loss timer)."""
        ...


# ----------------------------------------------------------------- the link


class GroundLink(Resource):
    """The base's end of the ground link (see the module docstring).

    ``apids`` maps process names to APIDs (``own_apid`` answers what has no process);
    ``commands`` carries TC[8,1] to the router (None: they are refused). Opening the key
    file and the state store happens here; the sockets open in :meth:`open_endpoints`.
    Non-blocking throughout: no call waits on a socket; the store's transactions wait at
    most its lock timeout. Not thread-safe.
    """

    def __init__(
        self,
        config: LinkConfig,
        *,
        host: LinkHost,
        encoder: TelemetryEncoder,
        own_apid: int,
        time_source: TimeSource,
        commands: CommandClient | None = None,
    ) -> None:
        self.config = config
        self._host = host
        self.encoder = encoder
        self._own_apid = own_apid
        self._time = time_source
        self._commands = commands
        self._apid_names = {apid: name for name, apid in encoder.apids.items()}
        self.counters = LinkCounters()
        self._bucket = TokenBucket(config.tc_rate_per_s, max(1.0, config.tc_rate_per_s), time_source.now_s())
        self._throttle = EventThrottle()
        self._pending: dict[str, _Pending] = {}
        self._tm_counts: dict[int, int] = {}
        self._reply_to: tuple[Any, ...] | None = None
        self._udp: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._clients: dict[int, _Client] = {}
        self._reopen_at_s: float | None = None
        self._bind_failed: set[str] = set()
        self._closed = False
        self._selector = selectors.DefaultSelector()
        if getattr(self._selector, "fileno", None) is None:  # select() and poll() have no descriptor
            self._selector.close()
            msg = "the ground link needs epoll or kqueue (selectors.DefaultSelector has no descriptor)"
            raise ConfigError(msg)
        #: Whether whole packets wait in TCP buffers after a wakeup's batch (serve again soon).
        self.backlog = False
        self.store: StateStore | None = None
        self.window = ReplayWindow()
        try:
            self._open_store()
            self.keys = self._load_keys()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------- start and stop

    def _open_store(self) -> None:
        """Open the state store and take up its window; a damaged one is set aside, never fatal.

        With no store at all (it cannot even be made), every batch is refused: nothing
        executes that could be replayed after a restart.
        """
        path = self.config.store_path
        try:
            self.store = StateStore(path, max_events=1)
            state = self.store.get(REPLAY_KEY, {}) or {}
            self.window = ReplayWindow.from_state(state if isinstance(state, dict) else {})
            return
        except StorageError as exc:
            if self.store is not None:
                self.store.close()
                self.store = None
            error = str(exc)[:200]
        try:
            moved = quarantine(path).name
            self.store = StateStore(path, max_events=1)
        except StorageError as exc:
            moved, error = "", f"{error}; {str(exc)[:200]}"
        self._host.link_event("link_state_lost", {"error": error, "moved_to": moved})

    def _load_keys(self) -> KeyRing | None:
        path = self.config.keys_path
        if self.config.udp is None and self.config.tcp is None and not path.exists():
            return None  # no ground link: no key file to make
        try:
            if path.exists():
                ring = load_key_file(path)
            else:
                ring = create_key_file(path)
                self._host.link_note("key_file_created", {"path": str(path)})
        except ConfigError as exc:
            self._host.link_event("key_file_error", {"error": str(exc)[:300]})
            return None
        stored = self.store.get(ACTIVE_KEY_KEY) if self.store is not None else None
        if isinstance(stored, int) and stored in ring.keys:
            ring.activate(stored)
        return ring

    def fileno(self) -> int:
        """The descriptor that becomes readable when any of the link's sockets needs service."""
        return int(self._selector.fileno())

    def open_endpoints(self) -> bool:
        """Open the configured endpoints that are not open yet; return whether all are.

        One that cannot be opened (its port taken) is logged (``link_endpoint_failed``, the
        first time) and tried again after :data:`REOPEN_INTERVAL_S` (see :attr:`reopen_at_s`);
        ``link_endpoints_open`` is false meanwhile. A log, not an event: what depends on the
        host and not on the mission stays out of the event history, which a seeded run repeats.
        """
        failed = False
        if self.config.udp is not None and self._udp is None:
            self._udp = self._bind(socket.SOCK_DGRAM, self.config.udp)
            if self._udp is not None:
                self._selector.register(self._udp, selectors.EVENT_READ, _UDP)
            failed |= self._udp is None
        if self.config.tcp is not None and self._listener is None:
            self._listener = self._bind(socket.SOCK_STREAM, self.config.tcp)
            if self._listener is not None:
                self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
            failed |= self._listener is None
        self._reopen_at_s = self._time.now_s() + REOPEN_INTERVAL_S if failed else None
        return not failed

    @property
    def reopen_at_s(self) -> float | None:
        """Wall time (of the link's time source) of the next attempt to open an endpoint, if due."""
        return self._reopen_at_s

    @property
    def endpoints(self) -> dict[str, tuple[str, int]]:
        """The bound address of each open endpoint (``udp``, ``tcp``): the real port if 0 was asked."""
        found: dict[str, tuple[str, int]] = {}
        for name, sock in (("udp", self._udp), ("tcp", self._listener)):
            if sock is not None:
                address = sock.getsockname()
                found[name] = (str(address[0]), int(address[1]))
        return found

    def _bind(self, kind: int, address: tuple[str, int]) -> socket.socket | None:
        transport = "udp" if kind == socket.SOCK_DGRAM else "tcp"
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, kind)
        try:
            sock.setblocking(False)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:  # room for a burst between two wakeups (the kernel caps it at its maximum)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)
            sock.bind(address)
            if kind == socket.SOCK_STREAM:
                sock.listen(TCP_CLIENTS_MAX)
        except OSError as exc:
            sock.close()
            if transport not in self._bind_failed:  # logged once, then tried every 10 s quietly
                self._bind_failed.add(transport)
                where = {"transport": transport, "address": f"{address[0]}:{address[1]}", "error": str(exc)}
                self._host.link_note("link_endpoint_failed", where, error=True)
            return None
        self._bind_failed.discard(transport)
        bound = sock.getsockname()
        self._host.link_note(
            "link_endpoint_open", {"transport": transport, "address": f"{bound[0]}:{bound[1]}"}
        )
        return sock

    def close(self) -> None:
        """Close the sockets, the selector and the store. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for client in list(self._clients.values()):
            self._drop(client)
        for sock in (self._udp, self._listener):
            if sock is not None:
                sock.close()
        self._udp = self._listener = None
        self._selector.close()
        if self.store is not None:
            self.store.close()
            self.store = None

    # ------------------------------------------------------------- uplink

    def service(self) -> None:
        """Serve every socket that is ready and up to ``tc_per_wakeup`` telecommands; never blocks."""
        if self._closed:
            return
        budget = self.config.tc_per_wakeup
        batch: list[tuple[bytes, Origin]] = []
        for key, mask in self._selector.select(0):
            if key.data is _UDP:
                self._read_udp(batch, budget)
            elif key.data is _LISTENER:
                self._accept()
            else:
                client = self._clients.get(key.fd)
                if client is None:
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._flush(client)
                if mask & selectors.EVENT_READ and client.sock.fileno() >= 0 and key.fd in self._clients:
                    self._read_tcp(client)
        for client in list(self._clients.values()):
            self._frames(client, batch, budget)
        self.backlog = any(c.framer.has_packet() for c in self._clients.values())
        if batch:
            self.handle(batch)

    def _read_udp(self, batch: list[tuple[bytes, Origin]], budget: int) -> None:
        if self._udp is None:
            return
        for _ in range(2 * budget):  # bounded even if every read reports an error
            if len(batch) >= budget:
                return
            try:
                packet, address = self._udp.recvfrom(MAX_TC_BYTES + 1)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error for an earlier send, reported here on Linux
                self.counters.socket_errors += 1
                continue
            batch.append((packet, Origin("udp", tuple(address))))

    def _accept(self) -> None:
        if self._listener is None:
            return
        for _ in range(TCP_CLIENTS_MAX + 1):
            try:
                sock, peer = self._listener.accept()
            except BlockingIOError:
                return
            except OSError:
                self.counters.socket_errors += 1
                return
            if len(self._clients) >= TCP_CLIENTS_MAX:
                self.counters.tcp_refused += 1
                sock.close()
                continue
            sock.setblocking(False)
            client = _Client(sock, tuple(peer))
            self._clients[sock.fileno()] = client
            self._selector.register(sock, selectors.EVENT_READ, client)

    def _read_tcp(self, client: _Client) -> None:
        room = client.framer.room
        if room <= 0:
            return  # its packets are served first; TCP pushes back on the client meanwhile
        try:
            data = client.sock.recv(min(room, TCP_READ_BYTES))
        except BlockingIOError:
            return
        except OSError:
            self._drop(client)
            return
        if not data:
            self._drop(client)
            return
        client.framer.feed(data)

    def _frames(self, client: _Client, batch: list[tuple[bytes, Origin]], budget: int) -> None:
        while len(batch) < budget:
            try:
                packet = client.framer.next_packet()
            except LinkRejected as exc:
                self.counters.received += 1
                self.counters.tcp_garbage += 1
                self._reject(exc, client.origin)
                self._drop(client)
                return
            if packet is None:
                return
            batch.append((packet, client.origin))

    def _drop(self, client: _Client) -> None:
        fd = next((fd for fd, c in self._clients.items() if c is client), None)
        if fd is None:
            return
        del self._clients[fd]
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.sock.close()

    def handle(self, packets: Iterable[tuple[bytes, Origin]]) -> None:
        """Take a batch of received packets through the pipeline (see the module docstring).

        Never raises for anything in the packets: each refusal is counted and reported.
        """
        now_s = self._time.now_s()
        admitted: list[tuple[RawTelecommand, Origin]] = []
        for packet, origin in packets:
            raw = self._admit(packet, origin, now_s)
            if raw is not None:
                admitted.append((raw, origin))
        if not admitted:
            return
        if not self._save_window():
            for raw, origin in admitted:
                reason = "the anti-replay state could not be saved: not executed"
                self._reject(LinkRejected(Failure.COMMAND_REJECTED, reason, raw.request), origin)
            return
        for raw, origin in admitted:
            self._execute(raw, origin)

    def _admit(self, packet: bytes, origin: Origin, now_s: float) -> RawTelecommand | None:
        """Steps 1-5 of the pipeline; the telecommand if it passed (its sequence accepted)."""
        counters = self.counters
        counters.received += 1
        if not self._host.link_is_up():
            counters.rejected[Failure.NO_LINK] += 1
            return None
        if not self._bucket.take(now_s):
            self._reject(
                LinkRejected(Failure.FLOOD, f"over {self.config.tc_rate_per_s:g} telecommands/s"), origin
            )
            return None
        try:
            raw = parse_tc(packet)
            if raw.apid not in self._apid_names:
                raise LinkRejected(Failure.UNKNOWN_APID, f"no process has APID {raw.apid:#x}", raw.request)
            security = raw.security
            verify_mac(raw, self._key(raw))
            if not self.window.fresh(security.key_id, security.sequence):
                highest = self.window.highest(security.key_id)
                reason = (
                    f"sequence {security.sequence} under key {security.key_id} was accepted before "
                    f"or is older than the window (highest {highest})"
                )
                raise LinkRejected(Failure.REPLAYED, reason, raw.request)
        except LinkRejected as exc:
            self._reject(exc, origin)
            return None
        self.window.accept(security.key_id, security.sequence)
        return raw

    def _key(self, raw: RawTelecommand) -> bytes:
        key_id = raw.security.key_id
        if self.keys is None:
            raise LinkRejected(Failure.UNKNOWN_KEY, "the base has no usable key file", raw.request)
        if key_id not in self.keys.keys:
            raise LinkRejected(Failure.UNKNOWN_KEY, f"no key {key_id}", raw.request)
        if key_id != self.keys.active:
            raise LinkRejected(Failure.INACTIVE_KEY, f"key {key_id} is not the active key", raw.request)
        return self.keys.key(key_id)

    def _save_window(self) -> bool:
        if self.store is None:
            return False
        try:
            self.store.put(REPLAY_KEY, self.window.state(), self._host.link_mission_time_s())
        except StorageError:
            self.counters.store_errors += 1
            return False
        self.counters.commits += 1
        return True

    def _reject(self, exc: LinkRejected, origin: Origin) -> None:
        """Count a refusal, report it (throttled event, TM[1,2] when the header was read)."""
        code = Failure(exc.code)
        self.counters.rejected[code] += 1
        security = code in SECURITY_FAILURES
        name = "security_violation" if security else "tc_rejected"
        held = self._throttle.admit(name, self._time.now_s())
        if held is not None:
            data = {"code": code.name, "reason": exc.reason[:200], "sender": origin.text, "suppressed": held}
            self._host.link_event(name, data)
        if exc.request is not None and code is not Failure.FLOOD:
            self._verify(self._apid_of(exc.request), TM_ACCEPT_FAILED, exc.request, code, exc.reason)

    def _apid_of(self, request: bytes) -> int:
        apid = apid_of(request)
        return apid if apid in self._apid_names else self._own_apid

    def _verify(
        self, apid: int, kind: tuple[int, int], request: bytes, failure: int | None = None, reason: str = ""
    ) -> None:
        now_s = self._host.link_mission_time_s()
        self._host.queue_report(
            self.encoder.report(apid, kind, now_s, verification_data(request, failure, reason))
        )

    def _execute(self, raw: RawTelecommand, origin: Origin) -> None:
        self.counters.accepted += 1
        if origin.transport == "udp":
            self._reply_to = origin.address
        self._host.ground_contact()
        try:
            tc = decode_service(raw)
        except LinkRejected as exc:
            self._reject(exc, origin)
            return
        request = raw.request
        if tc.command is None:
            self.counters.pings += 1
            self._verify(raw.apid, TM_ACCEPTED, request)
            now_s = self._host.link_mission_time_s()
            self._host.queue_report(self.encoder.report(raw.apid, TM_PONG, now_s))
            self._verify(raw.apid, TM_COMPLETED, request)
            return
        self._dispatch(raw.apid, tc.command, tc.args, request, origin)

    def _dispatch(
        self, apid: int, command: str, args: dict[str, Any], request: bytes, origin: Origin
    ) -> None:
        target = self._apid_names[apid]
        refusal = ""
        if self._commands is None:
            refusal = "the link has no command path"
        elif len(self._pending) >= PENDING_COMMANDS_MAX:
            refusal = f"{len(self._pending)} commands are waiting for their answers"
        else:
            try:
                command_id = self._commands.send(target, command, args)
            except FswError as exc:  # the router's queue is full, or the command cannot be encoded
                refusal = str(exc)
            else:
                outcome = self._commands.wait(command_id, 0.0)  # the live outcome; never blocks
                deadline_s = self._time.now_s() + VERIFICATION_TIMEOUT_S
                self._pending[command_id] = _Pending(request, apid, outcome, deadline_s)
                self.counters.commands += 1
                return
        self._reject(LinkRejected(Failure.COMMAND_REJECTED, refusal, request), origin)

    # ------------------------------------------------------------- verification

    def collect_outcomes(self) -> None:
        """Take the router's answers (never blocks) and report every new stage of each command."""
        if self._commands is None:
            return
        self._commands.drain()
        for command_id, pending in list(self._pending.items()):
            stages = pending.outcome.stages
            while pending.reported < len(stages):
                self._report_stage(pending, stages[pending.reported])
                pending.reported += 1
            if pending.outcome.final:
                del self._pending[command_id]

    def _report_stage(self, pending: _Pending, stage: str) -> None:
        apid, request, reason = pending.apid, pending.request, pending.outcome.reason
        if stage == "accepted":
            self._verify(apid, TM_ACCEPTED, request)
            self._verify(apid, TM_STARTED, request)
        elif stage == "completed":
            self._verify(apid, TM_COMPLETED, request)
        elif stage == "rejected":
            self._verify(apid, TM_ACCEPT_FAILED, request, Failure.COMMAND_REJECTED, reason)
        elif stage == "timed_out":
            self._verify(apid, TM_ACCEPT_FAILED, request, Failure.TIMED_OUT, reason)
        elif stage == "failed":
            self._verify(apid, TM_COMPLETION_FAILED, request, Failure.COMMAND_FAILED, reason)

    def expire(self) -> None:
        """Report ``TIMED_OUT`` for commands past :data:`VERIFICATION_TIMEOUT_S` with no final answer."""
        now_s = self._time.now_s()
        for command_id, pending in list(self._pending.items()):
            if now_s < pending.deadline_s:
                continue
            del self._pending[command_id]
            accepted = "accepted" in pending.outcome.stages
            kind = TM_COMPLETION_FAILED if accepted else TM_ACCEPT_FAILED
            reason = f"no final answer within {VERIFICATION_TIMEOUT_S:g} s"
            self._verify(pending.apid, kind, pending.request, Failure.TIMED_OUT, reason)

    # ------------------------------------------------------------- keys

    def activate_key(self, key_id: int) -> int:
        """Make ``key_id`` the active key and save that; return the previous one.

        Raises :class:`ConfigError` if the ring has no such key (or no ring was loaded).
        """
        if self.keys is None:
            msg = f"no usable key file ({self.config.keys_path})"
            raise ConfigError(msg)
        previous = self.keys.active
        self.keys.activate(key_id)
        if self.store is not None:
            try:
                self.store.put(ACTIVE_KEY_KEY, key_id, self._host.link_mission_time_s())
            except StorageError:
                self.counters.store_errors += 1
        self._host.link_event("key_activated", {"key_id": key_id, "previous": previous})
        return previous

    # ------------------------------------------------------------- downlink

    def send(self, packet: bytes) -> None:
        """Number ``packet`` in its APID's sequence and send it to the UDP reply address and TCP clients.

        Never blocks: a UDP send that would block is dropped (``tm_udp_dropped``), a TCP
        client whose waiting output passes :data:`TCP_OUTPUT_BYTES_MAX` is dropped.
        """
        apid = apid_of(packet)
        count = self._tm_counts.get(apid, 0)
        self._tm_counts[apid] = (count + 1) & 0x3FFF
        packet = with_sequence_count(packet, count)
        counters = self.counters
        counters.tm_packets += 1
        counters.tm_bytes += len(packet)
        addressed = False
        if self._udp is not None and self._reply_to is not None:
            addressed = True
            try:
                self._udp.sendto(packet, self._reply_to)
            except BlockingIOError:
                counters.tm_udp_dropped += 1
            except OSError:
                counters.socket_errors += 1
        for client in list(self._clients.values()):
            addressed = True
            self._write(client, packet)
        if not addressed:
            counters.tm_unaddressed += 1

    def _write(self, client: _Client, packet: bytes) -> None:
        if client.output:
            client.output += packet
            if len(client.output) > TCP_OUTPUT_BYTES_MAX:
                self.counters.tcp_slow += 1
                self._drop(client)
            return
        try:
            sent = client.sock.send(packet)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(client)
            return
        if sent < len(packet):
            client.output += packet[sent:]
            self._selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.output)
        except BlockingIOError:
            return
        except OSError:
            self._drop(client)
            return
        del client.output[:sent]
        if not client.output:
            self._selector.modify(client.sock, selectors.EVENT_READ, client)

    # ------------------------------------------------------------- telemetry

    def points(self) -> dict[str, Any]:
        """Values of :data:`LINK_POINTS`."""
        counters = self.counters
        configured = (self.config.udp is not None, self.config.tcp is not None)
        opened = (self._udp is not None, self._listener is not None)
        active = self.keys.active if self.keys is not None else -1
        highest = self.window.highest(active) if active >= 0 else None
        values: dict[str, Any] = {
            "link_endpoints_open": configured == opened,
            "link_active_key": active,
            "tc_sequence_highest": -1 if highest is None else highest,
            "tc_received": counters.received,
            "tc_accepted": counters.accepted,
            "tc_rejected": sum(counters.rejected.values()),
        }
        for failure, count in counters.rejected.items():
            values[f"tc_rejected_{failure.name.lower()}"] = count
        values.update(
            tc_commits=counters.commits,
            tc_pings=counters.pings,
            tc_commands=counters.commands,
            verification_pending=len(self._pending),
            tm_packets=counters.tm_packets,
            tm_bytes=counters.tm_bytes,
            tm_unaddressed=counters.tm_unaddressed,
            tm_udp_dropped=counters.tm_udp_dropped,
            tm_unencodable=counters.tm_unencodable,
            tcp_clients=len(self._clients),
            tcp_refused=counters.tcp_refused,
            tcp_garbage=counters.tcp_garbage,
            tcp_slow=counters.tcp_slow,
            link_socket_errors=counters.socket_errors,
            link_store_errors=counters.store_errors,
        )
        return values


def utc_now_s() -> float:
    """Wall-clock UTC (Unix seconds): the real-time epoch of mission time."""
    return time.time()


__all__ = [
    "LINK_EVENTS",
    "LINK_POINTS",
    "GroundLink",
    "LinkConfig",
    "LinkHost",
    "Origin",
    "StreamFramer",
    "TelemetryEncoder",
    "TokenBucket",
    "read_link_config",
]
