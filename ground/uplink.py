"""Telecommands as the station builds them: authenticated, numbered, never reusing a number.

:class:`Telecommander` holds the key ring (read from the key file when first needed, so
a station can start before the base has made its keys) and the counters: the packet
sequence count (14 bits, one for every APID; it makes the request id the verification
reports carry) and, per key, the anti-replay sequence number. Sequence numbers are
*reserved* in blocks of :data:`RESERVE_BLOCK`, written durably to the archive before any
number of the block is used: a restarted station continues above every number it may
have sent. A key never used by this archive starts at the current Unix time in seconds,
so a station that lost its archive still starts above what the base has seen (unless it
used to send more than one command a second on average).

Key rotation: the active key is the key file's ``active`` until a ``comms activate_key``
sent by this station completes; :meth:`Telecommander.activate` then switches (and the
archive remembers it).
"""

from __future__ import annotations

import time as time_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fsw.errors import ConfigError
from fsw.security import MAX_SEQUENCE, KeyRing, load_key_file
from fsw.spacelink import TC_FUNCTION, TC_PING, Telecommand, encode_tc
from ground.archive import TelecommandCounters

#: Sequence numbers reserved (written to the archive) at a time.
RESERVE_BLOCK: Final = 1000
#: Packet sequence counts wrap at 14 bits.
SEQ_COUNT_MODULUS: Final = 1 << 14
#: ``source_id`` of the station in the TC secondary header.
STATION_SOURCE_ID: Final = 1


@dataclass(frozen=True)
class Built:
    """A telecommand ready to send: what it means and its bytes."""

    telecommand: Telecommand
    packet: bytes

    @property
    def request(self) -> str:
        """The request id (hex) its verification reports carry."""
        return self.telecommand.request.hex()


class Telecommander:
    """Builds authenticated telecommands (see the module docstring).

    ``keys`` is the key file; ``counters`` what the archive holds; ``persist`` writes
    counters durably (called before a reserved number is used). ``wall_s`` is the Unix
    clock (injected in tests).
    """

    def __init__(
        self,
        keys: Path,
        counters: TelecommandCounters,
        persist: Callable[[TelecommandCounters], None],
        *,
        wall_s: Callable[[], float] = time_module.time,
    ) -> None:
        self.keys_path = keys
        self.counters = counters
        self._persist = persist
        self._wall_s = wall_s
        self._ring: KeyRing | None = None
        self._next: dict[int, int] = {}

    @property
    def ring(self) -> KeyRing:
        """The key ring, read on first use; :class:`ConfigError` saying where it is expected."""
        if self._ring is None:
            if not self.keys_path.exists():
                msg = (
                    f"no key file at {self.keys_path}: start the base once on this host (it creates its "
                    "keys there), or copy the base's key file to this machine and pass --keys FILE"
                )
                raise ConfigError(msg)
            self._ring = load_key_file(self.keys_path)
        return self._ring

    @property
    def keys_loaded(self) -> bool:
        """Whether the key file has been read."""
        return self._ring is not None

    @property
    def active_key(self) -> int:
        """The key id telecommands are signed with."""
        ring = self.ring
        active = self.counters.active_key
        return active if active is not None and active in ring.keys else ring.active

    def activate(self, key_id: int) -> None:
        """Sign with ``key_id`` from now on (after the base confirmed ``activate_key``)."""
        if key_id not in self.ring.keys:
            msg = f"no key {key_id} in {self.keys_path}"
            raise ConfigError(msg)
        self.counters.active_key = key_id
        self._persist(self.counters)

    def _sequence(self, key_id: int) -> int:
        reserved = self.counters.reserved.get(key_id)
        number = self._next.get(key_id)
        if number is None:
            number = reserved + 1 if reserved is not None else max(1, int(self._wall_s()))
        if number > MAX_SEQUENCE:
            msg = f"sequence numbers of key {key_id} are used up: rotate to another key (comms activate_key)"
            raise ConfigError(msg)
        if reserved is None or number > reserved:
            self.counters.reserved[key_id] = min(MAX_SEQUENCE, number + RESERVE_BLOCK - 1)
            self._persist(self.counters)
        self._next[key_id] = number + 1
        return number

    def build(self, apid: int, command: str | None = None, args: Mapping[str, Any] | None = None) -> Built:
        """The next telecommand to ``apid``: TC[8,1] ``command`` with ``args``, or TC[17,1] if ``None``.

        Advances the counters (reserving more in the archive when needed). Raises
        :class:`ConfigError` with no key file or a command too long for one packet.
        """
        key_id = self.active_key
        key = self.ring.key(key_id)
        seq_count = self.counters.seq_count
        sequence = self._sequence(key_id)
        self.counters.seq_count = (seq_count + 1) % SEQ_COUNT_MODULUS
        service, subtype = TC_PING if command is None else TC_FUNCTION
        telecommand = Telecommand(
            apid=apid,
            service=service,
            subtype=subtype,
            seq_count=seq_count,
            key_id=key_id,
            sequence=sequence,
            command=command,
            args=dict(args or {}),
            source_id=STATION_SOURCE_ID,
        )
        return Built(telecommand, encode_tc(telecommand, key))
