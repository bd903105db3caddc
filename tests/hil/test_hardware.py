"""Against a real board, opt-in: `FSW_HIL_DEVICE=/dev/ttyUSB0 pytest -m hil tests/hil/test_hardware.py`.

Read-only checks of the board contract (nothing is commanded): the handshake, a frame
sync, a read of every channel, the status. `FSW_HIL_BAUD` sets the baud rate (115200).
"""

from __future__ import annotations

import math
import os

import pytest

from fsw.board import open_board

pytestmark = pytest.mark.hil


def test_real_board_keeps_the_contract(hil_device: str) -> None:
    baud_rate = int(os.environ.get("FSW_HIL_BAUD", "115200"))
    with open_board("serial", device=hil_device, baud_rate=baud_rate) as board:
        described = {c.name for c in board.description.channels}
        assert described, "the board describes no channel"
        board.sync(0, 0.0)
        sample = board.read()
        assert set(sample.values) == described
        for channel in board.description.channels:
            value = sample.values[channel.name]
            if isinstance(value, float) and math.isfinite(value):
                assert channel.low is None or value >= channel.low, channel.name
                assert channel.high is None or value <= channel.high, channel.name
        assert board.status().link_up
