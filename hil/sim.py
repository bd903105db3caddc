"""The ``sim`` board backend: a simulated board, opened on its pseudo-terminal like a serial port.

The simulator process serves each board of its world on a pseudo-terminal and links
``{run_dir}/boards/{kind}`` to the terminal's slave side. Flight code opens that path
exactly as it would a serial device, so the whole link (framing, CRC, retries, timeouts)
is exercised in simulation. Options: ``path`` (the tty path) or ``run_dir`` + ``kind``.
"""

from __future__ import annotations

import os

from fsw.errors import BoardError, BoardUnavailable, ConfigError
from hil.link import (
    DEFAULT_ATTEMPTS,
    DEFAULT_HELLO_TIMEOUT_S,
    DEFAULT_LOST_AFTER_TIMEOUTS,
    DEFAULT_MAX_EVENTS,
)
from hil.serial_board import DEFAULT_BAUD_RATE, SerialBoard


def sim_board_path(path: str | None, run_dir: str | None, kind: str | None) -> str:
    """The tty path of a simulated board: ``path``, or ``{run_dir}/boards/{kind}``.

    Raises :class:`ConfigError` unless exactly one of ``path`` and ``run_dir`` is given
    (``run_dir`` needing ``kind``).
    """
    if path is not None and run_dir is None:
        return path
    if path is None and run_dir is not None and kind:
        return os.path.join(run_dir, "boards", kind)
    msg = (
        "sim board options: give either path, or run_dir and kind "
        f"(got path={path!r}, run_dir={run_dir!r}, kind={kind!r})"
    )
    raise ConfigError(msg)


class SimBoard(SerialBoard):
    """A simulated board on its pseudo-terminal.

    Blocks for at most ``hello_timeout_s`` in the handshake. Raises :class:`ConfigError`
    for bad options, :class:`BoardUnavailable` when the tty is not there (is the simulator
    running?), :class:`BoardError` when ``kind`` is given and the board is of another kind.
    """

    def __init__(
        self,
        path: str | None = None,
        run_dir: str | None = None,
        kind: str | None = None,
        baud_rate: int = DEFAULT_BAUD_RATE,
        client: str = "lunar-fsw",
        hello_timeout_s: float = DEFAULT_HELLO_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        lost_after_timeouts: int = DEFAULT_LOST_AFTER_TIMEOUTS,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        tty_path = sim_board_path(path, run_dir, kind)
        try:
            super().__init__(
                tty_path,
                baud_rate=baud_rate,
                client=client,
                hello_timeout_s=hello_timeout_s,
                attempts=attempts,
                lost_after_timeouts=lost_after_timeouts,
                max_events=max_events,
            )
        except BoardUnavailable as exc:
            msg = f"simulated board at {tty_path!r} is not available (is the simulator up?): {exc}"
            raise BoardUnavailable(msg) from exc
        if kind is not None and self.description.kind != kind:
            self.close()
            msg = f"simulated board at {tty_path!r} is a {self.description.kind!r}, not {kind!r}"
            raise BoardError(msg)
