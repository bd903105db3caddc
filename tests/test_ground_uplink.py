"""Telecommands the station builds: authenticated as the base checks them, never a number twice."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fsw.errors import ConfigError
from fsw.security import MAX_SEQUENCE, create_key_file
from fsw.spacelink import decode_service, parse_tc, verify_mac
from ground.archive import Archive, TelecommandCounters
from ground.uplink import RESERVE_BLOCK, Telecommander

WALL_S = 1_800_000_000.0


class Persisted:
    """The counters as an archive would hold them: a copy at each write."""

    def __init__(self) -> None:
        self.writes: list[TelecommandCounters] = []

    def __call__(self, counters: TelecommandCounters) -> None:
        self.writes.append(copy.deepcopy(counters))

    @property
    def last(self) -> TelecommandCounters:
        return copy.deepcopy(self.writes[-1])


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "link.toml"
    create_key_file(path)
    return path


def test_telecommand_authenticates_with_the_base_checks(keys: Path) -> None:
    uplink = Telecommander(keys, TelecommandCounters(), Persisted(), wall_s=lambda: WALL_S)
    built = uplink.build(0x10, "switch_load", {"tier": 4, "on": False})
    raw = parse_tc(built.packet)
    verify_mac(raw, uplink.ring.key(1))
    tc = decode_service(raw)
    assert (tc.apid, tc.command, tc.args) == (0x10, "switch_load", {"tier": 4, "on": False})
    assert (tc.key_id, tc.sequence, tc.seq_count) == (1, int(WALL_S), 0)
    assert built.request == raw.request.hex()
    ping = decode_service(parse_tc(uplink.build(0x12).packet))
    assert ping.command is None
    assert (ping.sequence, ping.seq_count) == (int(WALL_S) + 1, 1)


def test_sequence_numbers_are_reserved_before_use_and_never_reused_after_a_restart(keys: Path) -> None:
    persisted = Persisted()
    uplink = Telecommander(keys, TelecommandCounters(), persisted, wall_s=lambda: WALL_S)
    first = [uplink.build(0x10, "noop").telecommand.sequence for _ in range(3)]
    assert first == [int(WALL_S), int(WALL_S) + 1, int(WALL_S) + 2]
    assert len(persisted.writes) == 1  # one reservation covers the block
    assert persisted.last.reserved[1] == int(WALL_S) + RESERVE_BLOCK - 1
    # A restart with the counters as written (the clock went back, even): above the block.
    again = Telecommander(keys, persisted.last, persisted, wall_s=lambda: 0.0)
    assert again.build(0x10, "noop").telecommand.sequence == int(WALL_S) + RESERVE_BLOCK


def test_counters_in_a_real_archive(keys: Path, tmp_path: Path) -> None:
    with Archive(tmp_path / "a.db") as archive:
        uplink = Telecommander(keys, archive.counters(), archive.reserve, wall_s=lambda: WALL_S)
        used = uplink.build(0x10, "noop").telecommand.sequence
    with Archive(tmp_path / "a.db") as archive:
        later = Telecommander(keys, archive.counters(), archive.reserve, wall_s=lambda: WALL_S)
        assert later.build(0x10, "noop").telecommand.sequence > used


def test_rotation_signs_with_the_new_key_and_is_remembered(keys: Path) -> None:
    persisted = Persisted()
    uplink = Telecommander(keys, TelecommandCounters(), persisted, wall_s=lambda: WALL_S)
    uplink.activate(2)
    raw = parse_tc(uplink.build(0x10, "noop").packet)
    assert raw.security.key_id == 2
    verify_mac(raw, uplink.ring.key(2))
    assert persisted.last.active_key == 2
    with pytest.raises(ConfigError, match="no key 9"):
        uplink.activate(9)


def test_missing_key_file_says_where_it_is_expected(tmp_path: Path) -> None:
    uplink = Telecommander(tmp_path / "nowhere.toml", TelecommandCounters(), Persisted())
    assert not uplink.keys_loaded
    with pytest.raises(ConfigError, match=r"no key file at .*nowhere.toml: start the base once"):
        uplink.build(0x10)


def test_used_up_sequence_numbers_ask_for_a_rotation(keys: Path) -> None:
    counters = TelecommandCounters(reserved={1: MAX_SEQUENCE})
    uplink = Telecommander(keys, counters, Persisted())
    with pytest.raises(ConfigError, match="rotate to another key"):
        uplink.build(0x10)


def test_packet_sequence_count_wraps_at_14_bits(keys: Path) -> None:
    uplink = Telecommander(keys, TelecommandCounters(seq_count=0x3FFF), Persisted(), wall_s=lambda: WALL_S)
    assert uplink.build(0x10).telecommand.seq_count == 0x3FFF
    assert uplink.build(0x10).telecommand.seq_count == 0
