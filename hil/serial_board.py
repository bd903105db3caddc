"""The ``serial`` board backend: a board on a serial port (or any tty), via pyserial.

The port is opened raw 8N1 at ``baud_rate`` with no flow control, locked for exclusive
use, and read and written without blocking through its file descriptor (POSIX only).
The module is named ``serial_board`` so that it does not shadow pyserial's ``serial``.
"""

from __future__ import annotations

import os

import serial

from fsw.errors import BoardUnavailable, ConfigError
from hil.link import (
    DEFAULT_ATTEMPTS,
    DEFAULT_HELLO_TIMEOUT_S,
    DEFAULT_LOST_AFTER_TIMEOUTS,
    DEFAULT_MAX_EVENTS,
    FdStream,
    LinkBoard,
)

DEFAULT_BAUD_RATE = 115_200


def open_serial_stream(device: str, baud_rate: int) -> FdStream:
    """Open ``device`` raw 8N1 at ``baud_rate``, exclusive and non-blocking.

    Raises :class:`ConfigError` for a bad baud rate and :class:`BoardUnavailable` when the
    device cannot be opened (missing, busy, not a tty). Does not block.
    """
    if isinstance(baud_rate, bool) or not isinstance(baud_rate, int) or baud_rate <= 0:
        msg = f"serial board {device!r}: baud_rate must be a positive integer, got {baud_rate!r}"
        raise ConfigError(msg)
    try:
        port = serial.Serial(
            port=device,
            baudrate=baud_rate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=0,
            write_timeout=0,
            xonxoff=False,
            rtscts=False,
            dsrdtr=False,
            exclusive=True,
        )
    except (serial.SerialException, ValueError, OSError) as exc:
        msg = f"cannot open serial board device {device!r} at {baud_rate} baud: {exc}"
        raise BoardUnavailable(msg) from exc
    try:
        fd = port.fileno()
        os.set_blocking(fd, False)
    except (OSError, serial.SerialException) as exc:
        port.close()
        msg = f"serial board device {device!r} has no usable file descriptor: {exc}"
        raise BoardUnavailable(msg) from exc
    return FdStream(fd, port.close)


class SerialBoard(LinkBoard):
    """A board on the serial device ``device`` (e.g. ``/dev/ttyUSB0``) at ``baud_rate``.

    Opens the port and does the HELLO handshake (blocking for at most
    ``hello_timeout_s``). Raises :class:`BoardUnavailable` if the device cannot be
    opened, :class:`~fsw.errors.BoardTimeout` if the board does not answer; the port is
    closed again on any failure. The link options are those of :class:`~hil.link.LinkBoard`.
    """

    def __init__(
        self,
        device: str,
        baud_rate: int = DEFAULT_BAUD_RATE,
        client: str = "lunar-fsw",
        hello_timeout_s: float = DEFAULT_HELLO_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        lost_after_timeouts: int = DEFAULT_LOST_AFTER_TIMEOUTS,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self.device = device
        super().__init__(
            open_serial_stream(device, baud_rate),
            name=device,
            client=client,
            hello_timeout_s=hello_timeout_s,
            attempts=attempts,
            lost_after_timeouts=lost_after_timeouts,
            max_events=max_events,
        )
