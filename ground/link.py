"""The station's end of the space link: a UDP or TCP socket to the base, never blocking.

``udp://HOST:PORT`` sends each telecommand as one datagram to the base (through the
simulated space link, or to comms directly) from one local port, and takes every
datagram that comes back as one telemetry packet; the base answers to the address of
the last valid telecommand, so the station pings it regularly. ``tcp://HOST:PORT``
connects to comms' TCP listener; packets are sent back to back and the CCSDS length
field delimits them. A lost TCP connection is retried with a growing backoff.

Both are driven by the station's poller: :meth:`Link.fileno` and
:meth:`Link.wants_write` say what to wait for, :meth:`Link.on_readable` and
:meth:`Link.on_writable` do the work, and :meth:`Link.tick` runs reconnections.
Nothing here blocks.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections import deque
from dataclasses import dataclass
from typing import Final

from fsw.errors import ConfigError
from fsw.resource import Resource
from fsw.spacelink import split_host_port
from fsw.timesource import MonotonicTime, TimeSource

#: Largest packet the link takes (a CCSDS Space Packet: 6 + 65536 bytes).
MAX_PACKET_BYTES: Final = 65542
#: Most datagrams or packets read in one :meth:`Link.on_readable` (a flood never stalls the station).
MAX_READ_PER_CALL: Final = 1000
#: Bytes of telecommands a TCP link holds while the socket is not writable.
MAX_OUTBOX_BYTES: Final = 1 << 20
#: First and longest wait between TCP connection attempts (wall seconds).
RECONNECT_INITIAL_S: Final = 0.2
RECONNECT_MAX_S: Final = 5.0


@dataclass(frozen=True)
class LinkUrl:
    """A parsed link URL: ``udp://host:port`` or ``tcp://host:port``."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_link_url(text: str) -> LinkUrl:
    """Parse ``udp://HOST:PORT`` or ``tcp://HOST:PORT``; :class:`ConfigError` naming the text."""
    scheme, sep, rest = text.partition("://")
    split = split_host_port(rest)
    if not sep or scheme not in ("udp", "tcp") or split is None or not split[0]:
        msg = f"link {text!r} must be udp://HOST:PORT or tcp://HOST:PORT"
        raise ConfigError(msg)
    host, port = split
    if not 0 < port < 65536:
        msg = f"link {text!r}: port must be 1..65535"
        raise ConfigError(msg)
    return LinkUrl(scheme, host, port)


@dataclass
class LinkCounters:
    """What went over the link since the station started."""

    tc_sent: int = 0
    tc_bytes: int = 0
    tc_dropped: int = 0
    tm_received: int = 0
    tm_bytes: int = 0
    tm_oversized: int = 0
    connects: int = 0
    disconnects: int = 0
    errors: int = 0
    last_error: str = ""


class Link(Resource):
    """One link to the base (see the module docstring). Use :func:`open_link`."""

    def __init__(self, url: LinkUrl, time: TimeSource) -> None:
        self.url = url
        self.counters = LinkCounters()
        self._time = time
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether telecommands can leave now (always true for UDP)."""
        return True

    def fileno(self) -> int | None:
        """The socket to poll, or ``None`` while there is none (TCP between attempts)."""
        raise NotImplementedError

    def wants_write(self) -> bool:
        """Whether the poller should wake on writable (a TCP connect or backlog)."""
        return False

    def send(self, packet: bytes) -> bool:
        """Send one telecommand without blocking; ``False`` (and counted) if it could not leave."""
        raise NotImplementedError

    def on_readable(self) -> list[bytes]:
        """Every packet waiting (at most :data:`MAX_READ_PER_CALL`)."""
        raise NotImplementedError

    def on_writable(self) -> None:
        """The socket is writable: finish a connect, send the backlog."""

    def next_timer_s(self) -> float | None:
        """Monotonic time at which :meth:`tick` wants to run, if any."""
        return None

    def tick(self) -> None:
        """Run what is due (reconnection attempts)."""

    def _error(self, text: str) -> None:
        self.counters.errors += 1
        self.counters.last_error = text


class UdpLink(Link):
    """Datagrams to and from ``url`` (any sender's datagrams are taken: replies come from the relay)."""

    def __init__(self, url: LinkUrl, time: TimeSource, *, bind: str = "") -> None:
        super().__init__(url, time)
        try:
            infos = socket.getaddrinfo(url.host, url.port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            msg = f"link {url}: cannot resolve {url.host}: {exc}"
            raise ConfigError(msg) from exc
        family, _, _, _, address = infos[0]
        self.address = address
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.socket.setblocking(False)
            if bind:
                host, _, port = bind.rpartition(":")
                self.socket.bind((host.strip("[]") or "", int(port)))
            else:  # what the first send would do; the port is known (and logged) from the start
                self.socket.bind(("", 0))
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except (OSError, ValueError) as exc:
            self.socket.close()
            msg = f"link {url}: cannot bind the local port {bind!r}: {exc}"
            raise ConfigError(msg) from exc

    @property
    def local_port(self) -> int:
        """The local UDP port (the base sends telemetry here)."""
        return int(self.socket.getsockname()[1])

    def fileno(self) -> int | None:
        """The UDP socket."""
        return None if self._closed else self.socket.fileno()

    def send(self, packet: bytes) -> bool:
        """One datagram to the base."""
        try:
            self.socket.sendto(packet, self.address)
        except OSError as exc:
            self.counters.tc_dropped += 1
            self._error(f"send: {exc}")
            return False
        self.counters.tc_sent += 1
        self.counters.tc_bytes += len(packet)
        return True

    def on_readable(self) -> list[bytes]:
        """Every datagram waiting, one packet each."""
        packets: list[bytes] = []
        while len(packets) < MAX_READ_PER_CALL:
            try:
                data = self.socket.recv(MAX_PACKET_BYTES + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ICMP port unreachable from a base not up yet, and the like
                if exc.errno != errno.ECONNREFUSED:
                    self._error(f"receive: {exc}")
                continue
            if len(data) > MAX_PACKET_BYTES:
                self.counters.tm_oversized += 1
                continue
            self.counters.tm_received += 1
            self.counters.tm_bytes += len(data)
            packets.append(data)
        return packets

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if not self._closed:
            self._closed = True
            self.socket.close()


class TcpLink(Link):
    """A TCP connection to ``url``, re-established when lost (packets delimited by their length field)."""

    def __init__(self, url: LinkUrl, time: TimeSource) -> None:
        super().__init__(url, time)
        self.socket: socket.socket | None = None
        self._connecting = False
        self._connected = False
        self._inbox = bytearray()
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._backoff_s = RECONNECT_INITIAL_S
        self._retry_at_s: float | None = time.now_s()

    @property
    def connected(self) -> bool:
        """Whether the connection is up."""
        return self._connected

    def fileno(self) -> int | None:
        """The socket, while there is one."""
        return self.socket.fileno() if self.socket is not None else None

    def wants_write(self) -> bool:
        """While connecting, or while telecommands wait."""
        return self.socket is not None and (self._connecting or bool(self._outbox))

    def next_timer_s(self) -> float | None:
        """When the next connection attempt is due."""
        return self._retry_at_s

    def tick(self) -> None:
        """Start a connection attempt if one is due."""
        if self._retry_at_s is None or self._time.now_s() < self._retry_at_s or self.socket is not None:
            return
        self._retry_at_s = None
        try:
            infos = socket.getaddrinfo(self.url.host, self.url.port, type=socket.SOCK_STREAM)
            family, _, _, _, address = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            self._error(f"connect: {exc}")
            self._schedule_retry()
            return
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            self._error(f"connect: {errno.errorcode.get(code, code)}")
            self._schedule_retry()
            return
        self.socket = sock
        self._connecting = True

    def _schedule_retry(self) -> None:
        self._retry_at_s = self._time.now_s() + self._backoff_s
        self._backoff_s = min(RECONNECT_MAX_S, self._backoff_s * 2)

    def _drop(self, why: str) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        if self._connected:
            self.counters.disconnects += 1
        self._connected = self._connecting = False
        self._inbox.clear()
        self._error(why)
        self._schedule_retry()

    def on_writable(self) -> None:
        """Finish the connect, then send what waits."""
        if self.socket is None:
            return
        if self._connecting:
            code = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code != 0:
                self._drop(f"connect: {errno.errorcode.get(code, code)}")
                return
            self._connecting = False
            self._connected = True
            self._backoff_s = RECONNECT_INITIAL_S
            self.counters.connects += 1
        self._flush()

    def _flush(self) -> None:
        while self._outbox and self.socket is not None and self._connected:
            head = self._outbox[0]
            try:
                sent = self.socket.send(head)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._drop(f"send: {exc}")
                return
            self._outbox_bytes -= sent
            if sent < len(head):
                self._outbox[0] = head[sent:]
                return
            self._outbox.popleft()

    def send(self, packet: bytes) -> bool:
        """Queue one telecommand and send what can go; ``False`` if not connected or the queue is full."""
        if not self._connected or self._outbox_bytes + len(packet) > MAX_OUTBOX_BYTES:
            self.counters.tc_dropped += 1
            return False
        self._outbox.append(packet)
        self._outbox_bytes += len(packet)
        self.counters.tc_sent += 1
        self.counters.tc_bytes += len(packet)
        self._flush()
        return True

    def on_readable(self) -> list[bytes]:
        """Every whole packet received; a closed or failed connection is dropped and retried."""
        if self.socket is None:
            return []
        if self._connecting:
            self.on_writable()
            if not self._connected:
                return []
        try:
            data = self.socket.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:
            self._drop(f"receive: {exc}")
            return []
        if not data:
            self._drop("the base closed the connection")
            return []
        self._inbox += data
        packets: list[bytes] = []
        inbox = self._inbox
        while len(inbox) >= 6 and len(packets) < MAX_READ_PER_CALL:
            length = (inbox[4] << 8 | inbox[5]) + 7
            if len(inbox) < length:
                break
            packet = bytes(inbox[:length])
            del inbox[:length]
            self.counters.tm_received += 1
            self.counters.tm_bytes += length
            packets.append(packet)
        return packets

    def close(self) -> None:
        """Close the connection (idempotent); no more attempts."""
        if not self._closed:
            self._closed = True
            self._retry_at_s = None
            if self.socket is not None:
                with contextlib.suppress(OSError):
                    self.socket.close()
                self.socket = None
            self._connected = False


def open_link(url: str, *, time: TimeSource | None = None, bind: str = "") -> Link:
    """Open the link ``url`` (see :func:`parse_link_url`); ``bind`` the local UDP ``HOST:PORT``.

    Raises :class:`ConfigError` for a bad URL or a host that does not resolve. A TCP link
    connects in the background (see :class:`TcpLink`).
    """
    parsed = parse_link_url(url)
    clock = time or MonotonicTime()
    if parsed.scheme == "udp":
        return UdpLink(parsed, clock, bind=bind)
    if bind:
        msg = "--bind is for udp:// links only"
        raise ConfigError(msg)
    return TcpLink(parsed, clock)
