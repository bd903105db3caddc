"""The board side of the wire protocol: serve a board model on a byte stream.

A :class:`BoardServer` answers one client on one non-blocking file descriptor, which it
owns from then on (the master side of a pseudo-terminal from :func:`open_pty`, or a
socket a :class:`TcpBoardServer` accepted). It never blocks and never raises on input: the host
process polls :meth:`BoardServer.fileno` for readability (and for writability while
:meth:`BoardServer.wants_write`) in its own select or ``zmq.Poller`` loop and calls
:meth:`BoardServer.handle_readable` / :meth:`BoardServer.handle_writable`.

Every request gets one answer with the request's sequence number: the reply, or a NAK
for a refused one (unknown actuator, out of range, refused by the board's state, bad
body, version mismatch, unsupported type). Frames that do not decode are counted and
skipped. A SYNC first calls ``on_sync(frame, t_s)`` (the simulator steps its world
there), then notes the heartbeat on the model, sends the events the model raised, and
only then the SYNC_ACK: a client that returns from ``sync`` has already queued every
event of the step it asked for.

Hosting a simulated world (one process)::

    world = World(seed, frame_period_s)
    servers = []
    for kind, model in world.boards.items():
        master_fd, slave_path = open_pty()
        servers.append(BoardServer(model, master_fd,
                                   on_sync=lambda frame, t_s: world.advance_to(frame)))
        # link {run_dir}/boards/{kind} -> slave_path
    while running:
        serve_once(servers, timeout_s=...)  # or: zmq.Poller on server.fileno(), POLLIN,
                                            # then server.handle_readable()
    for server in servers:
        server.close()                      # closes the pty too

A host that polls only for readability still gets its output out: pending output is
flushed on every ``handle_readable``; poll for writability while ``wants_write()`` to
flush sooner.

Output is buffered up to ``max_output_bytes``; a frame that does not fit is dropped
whole and counted, so a client that stops reading cannot make the server grow.
"""

from __future__ import annotations

import math
import os
import select
import socket
import termios
import threading
import tty
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from fsw.board import BoardDescription, BoardEvent, Sample, Value
from fsw.errors import BoardError, BoardUnavailable
from fsw.resource import Resource
from hil.wire import (
    PROTOCOL_VERSION,
    REQUEST_TYPES,
    Command,
    CommandAck,
    Deframer,
    Event,
    Frame,
    Hello,
    HelloReply,
    Message,
    Nak,
    NakCode,
    Read,
    ReadReply,
    Refusal,
    Rejection,
    Status,
    StatusReply,
    Sync,
    SyncAck,
    check_command,
    encode_frame,
)

#: Bytes read from the stream per call of ``handle_readable`` at most.
MAX_READ_BYTES: Final = 65_536
DEFAULT_MAX_OUTPUT_BYTES: Final = 65_536

SyncCallback = Callable[[int, float], None]


class ServedModel(Protocol):
    """What a :class:`BoardServer` needs from the board behind it (``hil.physics.BoardModel``)."""

    @property
    def description(self) -> BoardDescription:
        """The board's self-description, sent in HELLO_REPLY."""

    @property
    def board_time_s(self) -> float:
        """The board's clock (s)."""

    def read(self) -> Mapping[str, Value]:
        """Every channel now."""

    def command(self, actuator: str, value: Value) -> None:
        """Accept a command; raise ``BoardError`` to refuse it."""

    def faults(self) -> frozenset[str]:
        """Fault flags raised now."""

    def drain_events(self) -> list[BoardEvent]:
        """Return and forget the events raised since the last call."""

    def heartbeat(self) -> None:
        """Note a SYNC from this board's own client."""


class Servable(Protocol):
    """Something a host loop polls: see :func:`serve_once`."""

    def filenos(self) -> tuple[int, ...]:
        """File descriptors to poll now (they may change after each call of a handler)."""

    def wants_write(self) -> bool:
        """True while output is waiting for the stream to accept it."""

    def handle_readable(self, fd: int | None = None) -> None:
        """Serve what ``fd`` has to read; never blocks, never raises."""

    def handle_writable(self, fd: int | None = None) -> None:
        """Flush pending output; never blocks, never raises."""


@dataclass
class ServerCounters:
    """What a board server has seen and done; its housekeeping telemetry."""

    frames_ok: int = 0
    frames_bad: int = 0
    bytes_skipped: int = 0
    requests: int = 0
    naks: int = 0
    events_sent: int = 0
    frames_dropped: int = 0
    unexpected: int = 0
    handler_errors: int = 0


class BoardServer(Resource):
    """Serve ``model`` on the stream ``fd``, which the server owns from now on.

    ``fd`` is made non-blocking; ``close()`` (idempotent) closes it, together with the
    slave hold of a pty from :func:`open_pty`. ``on_sync(frame, t_s)`` runs on every SYNC
    before the SYNC_ACK is sent; if it raises, the SYNC is answered with a NAK
    ``BOARD_FAULT``. Nothing here blocks, and nothing the client sends makes it raise.
    Raises :class:`BoardUnavailable` if ``fd`` is not an open descriptor.
    """

    def __init__(
        self,
        model: ServedModel,
        fd: int,
        on_sync: SyncCallback | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        self.model = model
        self._fd = fd
        self._on_sync = on_sync
        self._max_output_bytes = max_output_bytes
        self._deframer = Deframer(versions=frozenset({PROTOCOL_VERSION}))
        self._output = bytearray()
        self._event_seq = 0
        self._closed = False
        #: True once the peer hung up (EOF or a hard error on the stream).
        self.peer_closed = False
        self.counters = ServerCounters()
        try:
            os.set_blocking(fd, False)
        except OSError as exc:
            msg = f"board server for {model.description.kind!r}: bad descriptor {fd}: {exc}"
            raise BoardUnavailable(msg) from exc

    # host loop interface --------------------------------------------------------------

    def fileno(self) -> int:
        """The stream's file descriptor, for a select or ``zmq.Poller`` loop."""
        return self._fd

    def filenos(self) -> tuple[int, ...]:
        """``(fileno(),)`` while serving, ``()`` once closed or the peer hung up."""
        return () if self._closed or self.peer_closed else (self._fd,)

    def wants_write(self) -> bool:
        """True while output waits for the stream; poll for writability then."""
        return bool(self._output) and not self._closed and not self.peer_closed

    def handle_readable(self, fd: int | None = None) -> None:
        """Read what the stream holds, answer every complete request. Never blocks or raises."""
        del fd
        if self._closed or self.peer_closed:
            return
        try:
            data = os.read(self._fd, MAX_READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            self._hang_up()
            return
        if not data:
            self._hang_up()
            return
        frames = self._deframer.feed(data)
        dc = self._deframer.counters
        self.counters.frames_ok = dc.frames_ok
        self.counters.frames_bad = dc.frames_bad
        self.counters.bytes_skipped = dc.bytes_skipped
        for frame in frames:
            self._serve(frame)
        for rejection in self._deframer.drain_rejections():
            self._answer_rejection(rejection)
        self._flush()

    def handle_writable(self, fd: int | None = None) -> None:
        """Write as much pending output as the stream takes now."""
        del fd
        self._flush()

    # board-side output --------------------------------------------------------------

    def send_event(self, event: BoardEvent) -> None:
        """Send an unsolicited EVENT (its sequence number is the board's event counter).

        Written at once if the stream takes it, else buffered; dropped and counted in
        ``frames_dropped`` if the output buffer is full. Never blocks.
        """
        if self._send(Frame(self._event_seq, Event(event))):
            self.counters.events_sent += 1
        self._event_seq = (self._event_seq + 1) & 0xFFFF
        self._flush()

    def send_model_events(self) -> int:
        """Send every event the model raised; returns how many.

        Called on every SYNC before the SYNC_ACK. Call it from the host loop only for a
        board whose world is not stepped by its client's SYNC: with lockstep clients, the
        SYNC_ACK is the place that keeps event arrival deterministic.
        """
        events = self.model.drain_events()
        for event in events:
            self.send_event(event)
        self._flush()
        return len(events)

    def inject_noise(self, data: bytes) -> None:
        """Queue raw bytes on the wire as a noisy line would (link tests and fault drills)."""
        self._queue(data)
        self._flush()

    def close(self) -> None:
        """Stop serving and close the stream. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._output.clear()
        close_pty(self._fd)

    # requests -------------------------------------------------------------------------

    def _serve(self, frame: Frame) -> None:
        if frame.type not in REQUEST_TYPES:
            self.counters.unexpected += 1  # a reply, NAK or EVENT: never answered
            return
        self.counters.requests += 1
        if frame.version != PROTOCOL_VERSION:
            reason = (
                f"board {self.model.description.kind!r} speaks protocol version "
                f"{PROTOCOL_VERSION}, not {frame.version}"
            )
            self._nak(frame, NakCode.VERSION_MISMATCH, reason)
            return
        try:
            reply = self._answer(frame.message)
        except Exception as exc:  # a model fault must not take the server down
            self.counters.handler_errors += 1
            self._nak(frame, NakCode.BOARD_FAULT, f"{type(exc).__name__}: {exc}")
            return
        if isinstance(reply, Refusal):
            self._nak(frame, reply.code, reply.reason)
        else:
            self._send(Frame(frame.seq, reply))

    def _answer(self, message: Message) -> Message | Refusal:
        model = self.model
        if isinstance(message, Hello):
            return HelloReply(model.description)
        if isinstance(message, Sync):
            if self._on_sync is not None:
                self._on_sync(message.frame, message.t_s)
            model.heartbeat()
            self.send_model_events()
            # The sample rides on the SYNC_ACK: one round trip a frame instead of two.
            return SyncAck(message.frame, model.board_time_s, dict(model.read()))
        if isinstance(message, Read):
            return ReadReply(Sample(model.board_time_s, dict(model.read())))
        if isinstance(message, Command):
            checked = check_command(model.description, message.actuator, message.value)
            if isinstance(checked, Refusal):
                return checked
            try:
                model.command(message.actuator, checked)
            except BoardError as exc:
                return Refusal(NakCode.REFUSED, str(exc))
            return CommandAck(message.actuator, checked)
        if isinstance(message, Status):
            return StatusReply(model.board_time_s, tuple(sorted(model.faults())))
        return Refusal(NakCode.UNSUPPORTED, f"a board does not serve {type(message).__name__}")

    def _answer_rejection(self, rejection: Rejection) -> None:
        if rejection.seq is None or rejection.version is None or rejection.type_code is None:
            return  # header unreadable: nothing to answer
        if rejection.reason == "version":
            code, reason = (
                NakCode.VERSION_MISMATCH,
                (f"board speaks protocol version {PROTOCOL_VERSION}, not {rejection.version}"),
            )
        elif rejection.reason == "type":
            code = NakCode.UNSUPPORTED
            reason = f"unknown message type 0x{rejection.type_code:02X}"
        elif rejection.type_code in {int(t) for t in REQUEST_TYPES}:
            code, reason = NakCode.BAD_FRAME, rejection.detail
        else:
            return
        self.counters.naks += 1
        nak = Nak(int(code), reason)
        self._send(Frame(rejection.seq, nak, version=rejection.version))

    def _nak(self, frame: Frame, code: NakCode, reason: str) -> None:
        self.counters.naks += 1
        self._send(Frame(frame.seq, Nak(int(code), reason), version=frame.version))

    # output ---------------------------------------------------------------------------

    def _send(self, frame: Frame) -> bool:
        try:
            data = encode_frame(frame)
        except BoardError as exc:
            self.counters.handler_errors += 1
            fallback = Nak(int(NakCode.BOARD_FAULT), f"{frame.type.name} not encodable: {exc}")
            data = encode_frame(Frame(frame.seq, Nak(fallback.code, fallback.reason[:200])))
        return self._queue(data)

    def _queue(self, data: bytes) -> bool:
        if self._closed or self.peer_closed:
            return False
        if len(self._output) + len(data) > self._max_output_bytes:
            self.counters.frames_dropped += 1
            return False
        self._output += data
        return True

    def _flush(self) -> None:
        while self._output and not self._closed and not self.peer_closed:
            try:
                written = os.write(self._fd, self._output)
            except BlockingIOError:
                return
            except OSError:
                self._hang_up()
                return
            del self._output[:written]

    def _hang_up(self) -> None:
        self.peer_closed = True
        self._output.clear()


# --- pseudo-terminals ---------------------------------------------------------------

#: Slave descriptors held open for the pty masters handed out by :func:`open_pty`.
_slave_holds: dict[int, int] = {}
_slave_holds_lock = threading.Lock()


def open_pty() -> tuple[int, str]:
    """Open a pseudo-terminal pair in raw mode; return ``(master_fd, slave_path)``.

    The slave is set raw (8 bits, no echo, no CR/LF translation, no signals);
    ``slave_path`` is the tty a flight process opens like a serial port. The caller owns
    ``master_fd`` (non-blocking) and hands it to a :class:`BoardServer`, which closes it,
    or closes it with :func:`close_pty`. Until then this module holds the slave side open,
    so the master never sees a hang-up (and a poll loop never spins) while no client has
    the tty open. Raises :class:`BoardUnavailable` if the system gives no pseudo-terminal.
    """
    try:
        master_fd, slave_fd = os.openpty()
    except OSError as exc:
        msg = f"cannot open a pseudo-terminal: {exc}"
        raise BoardUnavailable(msg) from exc
    try:
        tty.setraw(slave_fd, termios.TCSANOW)
        attrs = termios.tcgetattr(slave_fd)
        attrs[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON)
        attrs[1] &= ~termios.OPOST
        attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        termios.tcsetattr(slave_fd, termios.TCSANOW, attrs)
        os.set_blocking(master_fd, False)
        slave_path = os.ttyname(slave_fd)
    except (OSError, termios.error) as exc:
        os.close(master_fd)
        os.close(slave_fd)
        msg = f"cannot set up the pseudo-terminal: {exc}"
        raise BoardUnavailable(msg) from exc
    with _slave_holds_lock:
        _slave_holds[master_fd] = slave_fd
    return master_fd, slave_path


def close_pty(master_fd: int) -> None:
    """Close a master from :func:`open_pty` and the slave hold kept for it."""
    with _slave_holds_lock:
        slave_fd = _slave_holds.pop(master_fd, None)
    if slave_fd is not None:
        os.close(slave_fd)
    os.close(master_fd)


# --- TCP ----------------------------------------------------------------------------


class TcpBoardServer(Resource):
    """Serve ``model`` on a listening TCP socket, one client at a time.

    While a client is connected only its socket is polled; further connections wait in
    the listen backlog until it hangs up. Owns the listening socket and the client
    socket; ``close()`` is idempotent. Port 0 picks a free port (see :attr:`address`).
    Raises :class:`BoardUnavailable` if the address cannot be bound.
    """

    def __init__(
        self,
        model: ServedModel,
        host: str = "127.0.0.1",
        port: int = 0,
        on_sync: SyncCallback | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        self.model = model
        self._on_sync = on_sync
        self._max_output_bytes = max_output_bytes
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(1)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            msg = f"cannot listen for a board client on {host}:{port}: {exc}"
            raise BoardUnavailable(msg) from exc
        self._listener: socket.socket | None = listener
        self._server: BoardServer | None = None
        self.clients_served = 0

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        if self._listener is None:
            msg = "TCP board server is closed"
            raise BoardError(msg)
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def server(self) -> BoardServer | None:
        """The :class:`BoardServer` of the connected client, if any."""
        return self._server

    def filenos(self) -> tuple[int, ...]:
        """The client socket while one is connected, else the listening socket."""
        if self._listener is None:
            return ()
        if self._server is not None:
            return (self._server.fileno(),)
        return (self._listener.fileno(),)

    def wants_write(self) -> bool:
        """True while the client's output waits for the socket."""
        return self._server is not None and self._server.wants_write()

    def handle_readable(self, fd: int | None = None) -> None:
        """Accept a waiting client, or serve the connected one. Never blocks or raises."""
        del fd
        if self._listener is None:
            return
        if self._server is None:
            self._accept()
            return
        self._server.handle_readable()
        if self._server.peer_closed:
            self._drop_client()

    def handle_writable(self, fd: int | None = None) -> None:
        """Flush the client's pending output."""
        del fd
        if self._server is not None:
            self._server.handle_writable()
            if self._server.peer_closed:
                self._drop_client()

    def send_event(self, event: BoardEvent) -> None:
        """Send an EVENT to the connected client; without a client it is lost."""
        if self._server is not None:
            self._server.send_event(event)

    def inject_noise(self, data: bytes) -> None:
        """Queue raw bytes to the connected client (link tests and fault drills)."""
        if self._server is not None:
            self._server.inject_noise(data)

    def close(self) -> None:
        """Close the client and the listening socket. Idempotent."""
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        if self._listener is None:
            return
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # the client gave up before we accepted (ECONNABORTED and kin)
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            client.close()
            return
        # The BoardServer owns the descriptor from here: detach it from the socket object.
        self._server = BoardServer(self.model, client.detach(), self._on_sync, self._max_output_bytes)
        self.clients_served += 1

    def _drop_client(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


# --- host loop ----------------------------------------------------------------------


def serve_once(servers: Sequence[Servable], timeout_s: float) -> int:
    """Wait up to ``timeout_s`` for any server's stream, then serve what is ready.

    Blocks at most ``timeout_s`` (0 polls without waiting). Returns how many
    descriptors were ready. A host with a ``zmq.Poller`` does the same with its own
    poller: register every ``filenos()`` for reading (and writing while ``wants_write()``),
    call the handlers, and re-read ``filenos()`` after each round.
    """
    poller = select.poll()
    owner: dict[int, Servable] = {}
    for server in servers:
        for fd in server.filenos():
            flags = select.POLLIN | (select.POLLOUT if server.wants_write() else 0)
            poller.register(fd, flags)
            owner[fd] = server
    if not owner:
        return 0
    timeout_ms = max(0, math.ceil(timeout_s * 1000.0))
    try:
        ready = poller.poll(timeout_ms)
    except InterruptedError:
        return 0
    for fd, flags in ready:
        server = owner[fd]
        if flags & select.POLLOUT:
            server.handle_writable(fd)
        if flags & (select.POLLIN | select.POLLHUP | select.POLLERR):
            server.handle_readable(fd)
    return len(ready)


class _Waker:
    """A pipe whose write end interrupts a serving loop's poll (a :class:`Servable`)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def filenos(self) -> tuple[int, ...]:
        return (self.read_fd,)

    def wants_write(self) -> bool:
        return False

    def handle_readable(self, fd: int | None = None) -> None:
        del fd
        os.read(self.read_fd, 64)

    def handle_writable(self, fd: int | None = None) -> None:
        del fd

    def wake(self) -> None:
        os.write(self.write_fd, b"!")

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


class ServingThread(Resource):
    """Serves ``servers`` with :func:`serve_once` on a thread of its own, until stopped.

    For tests and tools that need a board on the other end of a link in the same
    process. ``start()`` starts (or restarts after ``stop()``) the thread; ``stop()``
    wakes it and joins it within ``join_timeout_s``, raising :class:`BoardError` if it
    does not end; ``close()`` stops it and releases the wake-up pipe (idempotent). The
    servers themselves stay the caller's to close.
    """

    def __init__(self, servers: Sequence[Servable], *, join_timeout_s: float = 5.0) -> None:
        self._servers = list(servers)
        self._join_timeout_s = join_timeout_s
        self._waker: _Waker | None = _Waker()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ServingThread:
        """Start serving; returns ``self``."""
        if self._waker is None:
            msg = "the serving thread is closed"
            raise BoardError(msg)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="board-server", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        everything: list[Servable] = [*self._servers]
        if self._waker is not None:
            everything.append(self._waker)
        while not self._stop.is_set():
            serve_once(everything, timeout_s=5.0)

    def stop(self) -> None:
        """Stop serving (blocks up to ``join_timeout_s``)."""
        if self._thread is None or self._waker is None:
            return
        self._stop.set()
        self._waker.wake()
        self._thread.join(timeout=self._join_timeout_s)
        if self._thread.is_alive():
            msg = f"board server thread did not stop within {self._join_timeout_s:g} s"
            raise BoardError(msg)
        self._thread = None

    def close(self) -> None:
        """Stop and release the wake-up pipe. Idempotent."""
        self.stop()
        if self._waker is not None:
            self._waker.close()
            self._waker = None
