"""The ``tcp`` board backend: a board (or a board emulator) reached over a TCP connection."""

from __future__ import annotations

import contextlib
import socket

from fsw.errors import BoardTimeout, BoardUnavailable, ConfigError
from hil.link import (
    DEFAULT_ATTEMPTS,
    DEFAULT_HELLO_TIMEOUT_S,
    DEFAULT_LOST_AFTER_TIMEOUTS,
    DEFAULT_MAX_EVENTS,
    LinkBoard,
    SocketStream,
)

DEFAULT_CONNECT_TIMEOUT_S = 2.0


def connect_stream(host: str, port: int, connect_timeout_s: float) -> SocketStream:
    """Connect to ``host:port`` within ``connect_timeout_s``; the stream is non-blocking.

    Raises :class:`ConfigError` for a bad port or deadline, :class:`BoardTimeout` when the
    connection is not made in time, :class:`BoardUnavailable` when it is refused.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        msg = f"tcp board {host!r}: port must be an integer in 1..65535, got {port!r}"
        raise ConfigError(msg)
    if not connect_timeout_s > 0:
        msg = f"tcp board {host}:{port}: connect_timeout_s must be positive"
        raise ConfigError(msg)
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout_s)
    except TimeoutError as exc:
        msg = f"tcp board {host}:{port}: no connection within {connect_timeout_s} s"
        raise BoardTimeout(msg) from exc
    except OSError as exc:
        msg = f"tcp board {host}:{port}: cannot connect: {exc}"
        raise BoardUnavailable(msg) from exc
    with contextlib.suppress(OSError):  # without TCP_NODELAY we only lose latency
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return SocketStream(sock)


class TcpBoard(LinkBoard):
    """A board at ``host:port`` over TCP.

    Connects within ``connect_timeout_s``, then does the HELLO handshake within
    ``hello_timeout_s``; raises as :func:`connect_stream` and :class:`~hil.link.LinkBoard`
    do, with the socket closed on any failure.
    """

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        client: str = "lunar-fsw",
        hello_timeout_s: float = DEFAULT_HELLO_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        lost_after_timeouts: int = DEFAULT_LOST_AFTER_TIMEOUTS,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self.address = (host, port)
        super().__init__(
            connect_stream(host, port, connect_timeout_s),
            name=f"{host}:{port}",
            client=client,
            hello_timeout_s=hello_timeout_s,
            attempts=attempts,
            lost_after_timeouts=lost_after_timeouts,
            max_events=max_events,
        )
