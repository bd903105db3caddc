"""The `replay` backend keeps the board contract, serving a real recording frame by frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fsw.board import Board, open_board
from fsw.errors import BoardError, BoardLinkLost, BoardUnavailable
from fsw.messages import decode
from hil.recording import BusRecord, LogReader


@pytest.fixture
def board(recording: Path) -> Iterator[Board]:
    with open_board("replay", log=str(recording), source="power") as opened:
        yield opened


def recorded_samples(recording: Path, source: str) -> dict[int, dict]:
    samples = {}
    for record in LogReader(recording):
        if isinstance(record, BusRecord) and record.topic == f"tlm.{source}.board_sample".encode():
            message = decode(record.topic, record.body)
            samples[message.data["frame"]] = message.data["values"]
    return samples


class TestReplayContract:
    """Handshake, reads, commands, end of recording, close: as any board."""

    def test_description_is_the_recorded_board(self, board: Board) -> None:
        assert board.description.kind == "power"
        board.description.require(("battery_soc", "bus_voltage_v"), ("load_t1", "load_t4"))

    def test_read_in_frame_t_returns_what_was_read_in_frame_t(self, board: Board, recording: Path) -> None:
        samples = recorded_samples(recording, "power")
        for frame in (0, 10, 1190, 1200, 1230):
            board.sync(frame, frame * 0.1)
            assert dict(board.read().values) == samples[frame]
        assert samples[1190]["battery_soc"] > 0.7 > samples[1200]["battery_soc"]  # the gauge fault

    def test_between_recorded_frames_the_latest_sample_holds(self, board: Board, recording: Path) -> None:
        samples = recorded_samples(recording, "power")
        board.sync(15, 1.5)
        assert dict(board.read().values) == samples[10]

    def test_commands_are_checked_but_change_nothing(self, board: Board) -> None:
        board.sync(0, 0.0)
        before = dict(board.read().values)
        board.command("load_t4", True)
        with pytest.raises(BoardError, match="load_t9"):
            board.command("load_t9", True)
        with pytest.raises(BoardError, match="takes a bool"):
            board.command("load_t4", 5)
        board.sync(1, 0.1)
        assert dict(board.read().values) == before
        assert board.commands[-1] == (0, "load_t4", True)  # type: ignore[attr-defined]

    def test_past_the_end_of_the_recording_the_link_is_lost(self, board: Board) -> None:
        with pytest.raises(BoardLinkLost, match="ends before frame 999999"):
            board.sync(999_999, 99_999.9)

    def test_close_twice(self, board: Board) -> None:
        board.close()
        board.close()
        with pytest.raises(BoardError, match="closed"):
            board.read()

    def test_a_process_that_was_not_recorded_is_unavailable(self, recording: Path) -> None:
        with pytest.raises(BoardUnavailable, match="holds no board of 'rover'"):
            open_board("replay", log=str(recording), source="rover")
