"""The flight side of a board link: requests, replies, retries, events, link loss.

A :class:`Link` talks the board wire protocol (:mod:`hil.wire`) over any non-blocking
:class:`ByteStream`. One request is outstanding at a time:

* the request gets the next sequence number (u16, wrapping) and is sent;
* the link waits for the frame with that sequence number: the expected reply, or a NAK.
  Other replies (late answers to earlier requests, wrong types) are dropped and counted
  as ``out_of_order``; EVENT frames are queued for :meth:`Link.poll_events`;
* if nothing comes, the same frame (same sequence number) is sent again, up to
  ``attempts`` times, evenly spaced within the request's ``timeout_s``; boards treat
  every request as idempotent, so a repeat is harmless;
* when ``timeout_s`` is spent the request raises :class:`~fsw.errors.BoardTimeout`; after
  ``lost_after_timeouts`` such requests in a row it raises
  :class:`~fsw.errors.BoardLinkLost` instead and ``link_up`` is False. The next
  answered request brings the link back up. An end of stream (peer hung up, device
  gone) raises :class:`~fsw.errors.BoardLinkLost` at once.

:class:`LinkBoard` is the one :class:`~fsw.board.Board` implementation on top of a link;
backends (serial, sim, tcp) only supply the byte stream. Nothing here starts a thread:
every call runs in the caller's thread and blocks for at most its deadline.
"""

from __future__ import annotations

import math
import os
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol, TypeVar

from fsw.board import (
    DEFAULT_TIMEOUT_S,
    Board,
    BoardDescription,
    BoardEvent,
    BoardStatus,
    LinkCounters,
    Sample,
    Value,
)
from fsw.errors import BoardError, BoardLinkLost, BoardTimeout, ConfigError
from fsw.resource import Resource
from hil.wire import (
    PROTOCOL_VERSION,
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
    Status,
    StatusReply,
    Sync,
    SyncAck,
    encode_frame,
    message_type,
)

#: Default deadline of the HELLO handshake (s).
DEFAULT_HELLO_TIMEOUT_S: Final = 2.0
DEFAULT_ATTEMPTS: Final = 3
DEFAULT_LOST_AFTER_TIMEOUTS: Final = 3
DEFAULT_MAX_EVENTS: Final = 256
_READ_CHUNK_BYTES: Final = 4096
_MAX_READS_PER_POLL: Final = 64

ReplyT = TypeVar("ReplyT")


class ByteStream(Protocol):
    """A non-blocking byte stream with a pollable descriptor. Owned by the link over it."""

    def fileno(self) -> int:
        """Descriptor to poll for readability and writability."""

    def read_some(self, max_bytes: int) -> bytes:
        """Return what is available now (``b""`` if nothing); raise ``EOFError`` at the end."""

    def write_some(self, data: bytes) -> int:
        """Write what fits now; return how many bytes (0 if none); ``EOFError`` if gone."""

    def close(self) -> None:
        """Release the stream. Idempotent."""


class FdStream:
    """A byte stream over a file descriptor (a tty, a pipe); ``on_close`` releases it."""

    def __init__(self, fd: int, on_close: Callable[[], None]) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._on_close: Callable[[], None] | None = on_close

    def fileno(self) -> int:
        """The descriptor."""
        return self._fd

    def read_some(self, max_bytes: int) -> bytes:
        """Non-blocking read; ``EOFError`` at end of file or on a hard error (EIO)."""
        try:
            data = os.read(self._fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise EOFError(str(exc)) from exc
        if not data:
            msg = "end of stream"
            raise EOFError(msg)
        return data

    def write_some(self, data: bytes) -> int:
        """Non-blocking write; ``EOFError`` on a hard error."""
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise EOFError(str(exc)) from exc

    def close(self) -> None:
        """Release the descriptor through its owner. Idempotent."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


class SocketStream:
    """A byte stream over a connected stream socket, which it owns."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self._sock.fileno()

    def read_some(self, max_bytes: int) -> bytes:
        """Non-blocking receive; ``EOFError`` when the peer closed or reset."""
        try:
            data = self._sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            raise EOFError(str(exc)) from exc
        if not data:
            msg = "connection closed by the board"
            raise EOFError(msg)
        return data

    def write_some(self, data: bytes) -> int:
        """Non-blocking send; ``EOFError`` when the connection is gone."""
        try:
            return self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            raise EOFError(str(exc)) from exc

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self._sock.close()


def _ms(timeout_s: float) -> int:
    return max(0, math.ceil(timeout_s * 1000.0))


class Link(Resource):
    """Request/reply over a :class:`ByteStream`, with retries, event queue and loss detection.

    Owns ``stream``. ``attempts`` sends per request (first one included),
    ``lost_after_timeouts`` unanswered requests in a row declare the link lost,
    ``max_events`` bounds the event queue (when full, new events are dropped and counted
    in ``counters.events_dropped``). ``clock`` is the monotonic time source (s).
    Raises :class:`ConfigError` for a non-positive count.
    """

    def __init__(
        self,
        stream: ByteStream,
        name: str = "board",
        attempts: int = DEFAULT_ATTEMPTS,
        lost_after_timeouts: int = DEFAULT_LOST_AFTER_TIMEOUTS,
        max_events: int = DEFAULT_MAX_EVENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for option, value in (
            ("attempts", attempts),
            ("lost_after_timeouts", lost_after_timeouts),
            ("max_events", max_events),
        ):
            if value < 1:
                msg = f"board link {name!r}: {option} must be at least 1, got {value}"
                raise ConfigError(msg)
        self.name = name
        self._stream = stream
        self._attempts = attempts
        self._lost_after = lost_after_timeouts
        self._clock = clock
        self._deframer = Deframer(versions=frozenset({PROTOCOL_VERSION}))
        self._events: deque[BoardEvent] = deque()
        self._max_events = max_events
        self._seq = 0
        self._pending: tuple[int, type[object]] | None = None
        self._reply: Message | None = None
        self._consecutive_timeouts = 0
        self._cut_frame = False
        self._eof: str | None = None
        self._closed = False
        self._poll_in = select.poll()
        self._poll_in.register(stream.fileno(), select.POLLIN)
        self._poll_out = select.poll()
        self._poll_out.register(stream.fileno(), select.POLLOUT)
        #: False once the link is declared lost; True again after an answered request.
        self.link_up = True
        self.counters = LinkCounters()

    @property
    def queued_events(self) -> int:
        """Events waiting for :meth:`poll_events` (the queue's fill level)."""
        return len(self._events)

    def exchange(self, message: Message, reply_type: type[ReplyT], timeout_s: float) -> ReplyT | Nak:
        """Send ``message`` and return the board's ``reply_type`` answer, or its NAK.

        Blocks for at most ``timeout_s`` seconds (every attempt included). Raises
        :class:`BoardTimeout` when no answer came in time, :class:`BoardLinkLost` when
        that made too many in a row or the stream ended, :class:`BoardError` when the link
        is closed, :class:`~fsw.errors.FrameError` when the message cannot be encoded.
        """
        self._check_usable()
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        data = encode_frame(Frame(seq, message))
        deadline = self._clock() + max(0.0, timeout_s)
        self._pending = (seq, reply_type)
        self._reply = None
        try:
            for attempt in range(self._attempts):
                if attempt:
                    self.counters.retries += 1
                now = self._clock()
                attempt_end = now + (deadline - now) / (self._attempts - attempt)
                if self._send(data, deadline):
                    self._wait_reply(attempt_end)
                if self._reply is not None:
                    self._consecutive_timeouts = 0
                    self.link_up = True
                    return self._reply
                if self._clock() >= deadline:
                    break
        finally:
            self._pending = None
        raise self._timeout_error(message, seq, timeout_s)

    def poll_events(self) -> list[BoardEvent]:
        """Read what has arrived without blocking; return and forget the queued events."""
        if not self._closed and self._eof is None:
            try:
                for _ in range(_MAX_READS_PER_POLL):
                    if not self._pump(0.0):
                        break
            except EOFError as exc:
                self._eof = str(exc)
                self.link_up = False
        events = list(self._events)
        self._events.clear()
        return events

    def close(self) -> None:
        """Close the stream. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.link_up = False
        self._stream.close()

    # internals ------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            msg = f"board link {self.name!r} is closed"
            raise BoardError(msg)
        if self._eof is not None:
            msg = f"board link {self.name!r} lost: {self._eof}"
            raise BoardLinkLost(msg)

    def _lost_stream(self, exc: EOFError) -> BoardLinkLost:
        self._eof = str(exc) or "end of stream"
        self.link_up = False
        return BoardLinkLost(f"board link {self.name!r} lost: {self._eof}")

    def _send(self, data: bytes, deadline: float) -> bool:
        """Write ``data`` before ``deadline``; False if the deadline cut it."""
        if self._cut_frame:
            data = b"\x00" + data  # end the partial frame we left on the wire
            self._cut_frame = False
        written = 0
        while written < len(data):
            try:
                written += self._stream.write_some(data[written:])
            except EOFError as exc:
                raise self._lost_stream(exc) from exc
            if written >= len(data):
                break
            remaining = deadline - self._clock()
            if remaining <= 0.0:
                self._cut_frame = written > 0
                return False
            self._poll_out.poll(_ms(remaining))
        return True

    def _wait_reply(self, until: float) -> None:
        while self._reply is None:
            remaining = until - self._clock()
            if remaining <= 0.0:
                return
            try:
                self._pump(remaining)
            except EOFError as exc:
                raise self._lost_stream(exc) from exc

    def _pump(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for bytes, then decode and dispatch them; True if any."""
        if not self._poll_in.poll(_ms(timeout_s)):
            return False
        data = self._stream.read_some(_READ_CHUNK_BYTES)
        if not data:
            return False
        frames = self._deframer.feed(data)
        dc = self._deframer.counters
        self._deframer.drain_rejections()
        self.counters.frames_ok = dc.frames_ok
        self.counters.frames_bad = dc.frames_bad
        self.counters.bytes_skipped = dc.bytes_skipped
        for frame in frames:
            self._dispatch(frame)
        return True

    def _dispatch(self, frame: Frame) -> None:
        message = frame.message
        if isinstance(message, Event):
            if len(self._events) >= self._max_events:
                self.counters.events_dropped += 1
            else:
                self._events.append(message.event)
            return
        pending = self._pending
        if (
            pending is not None
            and self._reply is None
            and frame.seq == pending[0]
            and isinstance(message, (pending[1], Nak))
        ):
            self._reply = message
            return
        self.counters.out_of_order += 1

    def _timeout_error(self, message: Message, seq: int, timeout_s: float) -> BoardError:
        self.counters.timeouts += 1
        self._consecutive_timeouts += 1
        what = f"{message_type(message).name} seq {seq}"
        if self._consecutive_timeouts >= self._lost_after:
            self.link_up = False
            msg = (
                f"board link {self.name!r} lost: {self._consecutive_timeouts} requests in a "
                f"row unanswered (last {what}, {timeout_s} s, {self._attempts} attempts)"
            )
            return BoardLinkLost(msg)
        msg = (
            f"board link {self.name!r}: no answer to {what} within {timeout_s} s ({self._attempts} attempts)"
        )
        return BoardTimeout(msg)


def _nak_code_name(code: int) -> str:
    try:
        return NakCode(code).name
    except ValueError:
        return f"code {code}"


class LinkBoard(Board):
    """A :class:`~fsw.board.Board` over a :class:`Link`: what every wire backend is.

    Takes ownership of ``stream`` (closed on failure too) and does the HELLO handshake
    within ``hello_timeout_s``: raises :class:`BoardTimeout` / :class:`BoardLinkLost` if
    the board does not answer, :class:`BoardError` if it refuses (version mismatch).
    Every other method blocks for at most its ``timeout_s``; a NAK raises
    :class:`BoardError` with the board's reason.
    """

    def __init__(
        self,
        stream: ByteStream,
        name: str,
        client: str = "lunar-fsw",
        hello_timeout_s: float = DEFAULT_HELLO_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        lost_after_timeouts: int = DEFAULT_LOST_AFTER_TIMEOUTS,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self._synced_sample: Sample | None = None
        try:
            self._link = Link(stream, name, attempts, lost_after_timeouts, max_events)
        except BaseException:
            stream.close()
            raise
        self.counters = self._link.counters
        try:
            self.description = self._handshake(client, hello_timeout_s)
        except BaseException:
            self._link.close()
            raise

    def _handshake(self, client: str, timeout_s: float) -> BoardDescription:
        reply = self._link.exchange(Hello(client), HelloReply, timeout_s)
        if isinstance(reply, Nak):
            msg = (
                f"board at {self._link.name!r} refused the handshake: {reply.reason} "
                f"(NAK {_nak_code_name(reply.code)})"
            )
            raise BoardError(msg)
        return reply.description

    def _refused(self, what: str, nak: Nak) -> BoardError:
        return BoardError(
            f"board {self.description.kind!r} refused {what}: {nak.reason} (NAK {_nak_code_name(nak.code)})"
        )

    @property
    def link_up(self) -> bool:
        """False once the link was declared lost, until a request is answered again."""
        return self._link.link_up

    def sync(self, frame: int, t_s: float, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Send SYNC(frame, t_s) and wait for its SYNC_ACK; the board's events arrive first."""
        self._synced_sample = None
        reply = self._link.exchange(Sync(frame, t_s), SyncAck, timeout_s)
        if isinstance(reply, Nak):
            raise self._refused(f"SYNC of frame {frame}", reply)
        if reply.values:
            self._synced_sample = Sample(reply.board_time_s, dict(reply.values))

    def read(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Sample:
        """Read every channel once.

        The first read after a SYNC whose acknowledgement carried the board's sample
        returns that sample without a round trip; any other read asks the board.
        """
        if self._synced_sample is not None:
            sample, self._synced_sample = self._synced_sample, None
            return sample
        reply = self._link.exchange(Read(), ReadReply, timeout_s)
        if isinstance(reply, Nak):
            raise self._refused("READ", reply)
        return reply.sample

    def command(self, actuator: str, value: Value, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Drive ``actuator`` to ``value``; it takes effect from the board's next step.

        A refusal (unknown actuator, out of range, forbidden by the board's state) raises
        :class:`BoardError` naming the actuator and the board's reason.
        """
        reply = self._link.exchange(Command(actuator, value), CommandAck, timeout_s)
        if isinstance(reply, Nak):
            raise self._refused(f"command {actuator}={value!r}", reply)

    def status(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> BoardStatus:
        """Ask the board for its clock and fault flags."""
        reply = self._link.exchange(Status(), StatusReply, timeout_s)
        if isinstance(reply, Nak):
            raise self._refused("STATUS", reply)
        return BoardStatus(self._link.link_up, reply.board_time_s, frozenset(reply.faults))

    def poll_events(self) -> list[BoardEvent]:
        """Return and forget the events received so far; never blocks."""
        return self._link.poll_events()

    def close(self) -> None:
        """Close the link and its stream. Idempotent."""
        self._link.close()
