"""Telecommand security: the key ring and the anti-replay window.

Following the CCSDS Space Data Link Security ideas (security association = key id; a
sequence number per key; a MAC trailer; see :mod:`fsw.spacelink` for the bytes):

* :class:`KeyRing`, read from a key file the deployment names: numbered 256-bit keys, one
  of them *active*. Only the active key authenticates telecommands; a key-rotation command
  makes another key of the file active (the key material never crosses the link). The ring
  never shows key bytes in its ``repr``, in logs or in errors.
* :class:`ReplayWindow`: per key, the highest sequence number accepted and which of the
  :data:`WINDOW` numbers below it were seen. A number above the highest, or inside the
  window and not seen, is fresh; anything else is a replay.

Key file (TOML, written with mode 0600 by :func:`create_key_file`)::

    active = 1
    [keys]
    1 = "64 hex digits"
    2 = "64 hex digits"
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fsw.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Bytes of each key.
KEY_BYTES: Final = 32
#: Sequence numbers below the highest accepted that may still arrive (out of order) once.
WINDOW: Final = 64
#: Largest sequence number (u32).
MAX_SEQUENCE: Final = 2**32 - 1
#: Where the base keeps its key file unless the deployment says otherwise (comms param ``keys``).
DEFAULT_KEY_FILE: Final = "{state_dir}/keys/link.toml"


def resolve_key_path(template: str, *, state_dir: str | Path, run_dir: str | Path) -> Path:
    """The key file path of ``template`` with ``{state_dir}`` and ``{run_dir}`` filled in, ``~`` expanded."""
    text = template.replace("{state_dir}", str(state_dir)).replace("{run_dir}", str(run_dir))
    return Path(text).expanduser()


@dataclass
class KeyRing:
    """Numbered keys and the active one. ``repr`` and ``str`` never show key bytes."""

    keys: dict[int, bytes] = field(repr=False)
    active: int
    path: str = ""

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            msg = f"{self.path or 'key ring'}: active key {self.active} is not among keys {sorted(self.keys)}"
            raise ConfigError(msg)

    def key(self, key_id: int) -> bytes:
        """The bytes of key ``key_id``; raises ``KeyError`` if the ring has none."""
        return self.keys[key_id]

    def activate(self, key_id: int) -> None:
        """Make ``key_id`` the active key; raises :class:`ConfigError` if there is no such key."""
        if key_id not in self.keys:
            msg = f"no key {key_id} in {self.path or 'the key ring'} (keys: {sorted(self.keys)})"
            raise ConfigError(msg)
        self.active = key_id


def load_key_file(path: str | Path) -> KeyRing:
    """Read the key file at ``path``; raises :class:`ConfigError` naming the file and what is wrong.

    The error never contains key bytes.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read key file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        msg = f"key file {path} is not TOML"  # the parser's message could quote a key
        raise ConfigError(msg) from None
    return key_ring_from(raw, str(path))


def key_ring_from(raw: Mapping[str, Any], where: str) -> KeyRing:
    """A :class:`KeyRing` from a parsed key file; raises :class:`ConfigError` naming ``where``."""
    unknown = sorted(set(raw) - {"active", "keys"})
    if unknown:
        msg = f"{where}: unknown key(s) {', '.join(unknown)} (expected active, keys)"
        raise ConfigError(msg)
    table = raw.get("keys")
    if not isinstance(table, Mapping) or not table:
        msg = f"{where}: no [keys] table"
        raise ConfigError(msg)
    keys: dict[int, bytes] = {}
    for name, text in table.items():
        try:
            key_id = int(name)
        except ValueError:
            msg = f"{where}: keys.{name}: the key id must be a number 0..65535"
            raise ConfigError(msg) from None
        if not 0 <= key_id <= 0xFFFF:
            msg = f"{where}: keys.{name}: the key id must be 0..65535"
            raise ConfigError(msg)
        try:
            key = bytes.fromhex(str(text))
        except ValueError:
            msg = f"{where}: keys.{name} is not hexadecimal"
            raise ConfigError(msg) from None
        if len(key) != KEY_BYTES:
            msg = f"{where}: keys.{name} has {len(key)} bytes, expected {KEY_BYTES}"
            raise ConfigError(msg)
        keys[key_id] = key
    active = raw.get("active", min(keys))
    if not isinstance(active, int) or isinstance(active, bool):
        msg = f"{where}: active must be a key id"
        raise ConfigError(msg)
    return KeyRing(keys, active, where)


def create_key_file(path: str | Path, key_ids: tuple[int, ...] = (1, 2, 3), active: int = 1) -> KeyRing:
    """Write a new key file of random keys at ``path`` (mode 0600, parents made); refuses to overwrite.

    Raises :class:`ConfigError` if the file exists or cannot be written.
    """
    path = Path(path)
    keys = {key_id: secrets.token_bytes(KEY_BYTES) for key_id in key_ids}
    lines = [f"active = {active}", "", "[keys]", *(f'{k} = "{v.hex()}"' for k, v in keys.items())]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"key file {path} exists already"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cannot create key file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return KeyRing(keys, active, str(path))


class ReplayWindow:
    """Per key id: the highest sequence number accepted and the ones seen in the window below it.

    :meth:`fresh` only looks; :meth:`accept` records (call it once the MAC is good, so
    forged packets cannot move the window). :meth:`state` and :meth:`from_state` let the
    owner persist it.
    """

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._highest: dict[int, int] = {}
        self._seen: dict[int, int] = {}  # bit i set: highest - i was accepted

    def fresh(self, key_id: int, sequence: int) -> bool:
        """Whether ``sequence`` under ``key_id`` has not been accepted and is not too old."""
        highest = self._highest.get(key_id)
        if highest is None or sequence > highest:
            return True
        offset = highest - sequence
        return offset < self.window and not (self._seen[key_id] >> offset) & 1

    def accept(self, key_id: int, sequence: int) -> None:
        """Record ``sequence`` under ``key_id`` as accepted (the caller checked :meth:`fresh`)."""
        highest = self._highest.get(key_id)
        if highest is None:
            self._highest[key_id], self._seen[key_id] = sequence, 1
        elif sequence > highest:
            shift = sequence - highest
            mask = (1 << self.window) - 1
            self._seen[key_id] = ((self._seen[key_id] << shift) | 1) & mask if shift < self.window else 1
            self._highest[key_id] = sequence
        else:
            self._seen[key_id] |= 1 << (highest - sequence)

    def highest(self, key_id: int) -> int | None:
        """The highest sequence number accepted under ``key_id``, if any."""
        return self._highest.get(key_id)

    def state(self) -> dict[str, list[int]]:
        """Everything needed to rebuild the window: key id -> [highest, seen bits]."""
        return {str(k): [h, self._seen[k]] for k, h in self._highest.items()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], window: int = WINDOW) -> ReplayWindow:
        """Inverse of :meth:`state`; entries that are not [int, int] are skipped."""
        replay = cls(window)
        for key, value in state.items():
            if (
                isinstance(value, (list, tuple))
                and len(value) == 2
                and all(isinstance(v, int) for v in value)
                and str(key).isdigit()
            ):
                replay._highest[int(key)], replay._seen[int(key)] = int(value[0]), int(value[1])
        return replay
