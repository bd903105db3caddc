"""The bus envelope: every message on the bus, and its msgpack codec.

A message travels as two ZeroMQ frames: a topic (UTF-8 bytes) and a body (one
msgpack map). The topic is ``<kind>.<source>.<name>`` so a subscriber takes only
what it asks for by prefix (``tlm.reactor.`` is all reactor telemetry). The
body is the envelope::

    {"v": 1,              envelope version
     "kind": "tlm",       tlm | evt | cmd | ack | tick | hb
     "src": "power",      the sending process
     "name": "hk",        what it is (telemetry packet, event, command, ...)
     "t": 1234.5,         mission time in seconds when it was made
     "seq": 42,           per-(source, kind) sequence number, from 0
     "data": {...}}       the payload: a map with string keys

:func:`encode` and :func:`decode` are a symmetric pair of pure functions;
:func:`decode` validates every field and raises only :class:`~fsw.errors.CodecError`.
"""

from __future__ import annotations

import enum
from typing import Any, Final, NamedTuple

import msgpack

from fsw.errors import CodecError

#: Version written into, and required of, every envelope.
ENVELOPE_VERSION: Final = 1

#: Largest body accepted on the bus, in bytes. Larger frames are malformed.
MAX_BODY_BYTES: Final = 256 * 1024

#: Largest topic accepted, in bytes.
MAX_TOPIC_BYTES: Final = 255

_ENVELOPE_KEYS: Final = frozenset({"v", "kind", "src", "name", "t", "seq", "data"})


class Kind(str, enum.Enum):
    """What a message is. The value is the topic's first field."""

    TELEMETRY = "tlm"
    EVENT = "evt"
    COMMAND = "cmd"
    ACK = "ack"
    TICK = "tick"
    HEARTBEAT = "hb"


_KINDS: Final = {k.value: k for k in Kind}


class Message(NamedTuple):
    """One bus message. ``t_s`` is mission time in seconds; ``data`` is the payload.

    Immutable (a named tuple: cheap to build on the bus's hot path).
    """

    kind: Kind
    source: str
    name: str
    t_s: float
    seq: int
    data: dict[str, Any] = {}  # noqa: RUF012 - never mutated: decode and publish pass their own

    @property
    def topic(self) -> bytes:
        """The topic frame: ``<kind>.<source>.<name>`` as bytes."""
        return topic_of(self.kind, self.source, self.name)


#: Topics already built, by (kind, source, name); bounded, cleared when full.
_TOPICS: dict[tuple[Kind, str, str], bytes] = {}
_MAX_TOPICS_CACHED: Final = 4096


def topic_of(kind: Kind, source: str, name: str) -> bytes:
    """Return the topic frame for a message of ``kind`` from ``source`` named ``name``."""
    key = (kind, source, name)
    topic = _TOPICS.get(key)
    if topic is None:
        topic = f"{kind.value}.{source}.{name}".encode()
        if len(_TOPICS) >= _MAX_TOPICS_CACHED:
            _TOPICS.clear()
        _TOPICS[key] = topic
    return topic


def encode(message: Message) -> tuple[bytes, bytes]:
    """Encode ``message`` as its (topic, body) frames.

    Raises :class:`CodecError` if the payload holds something msgpack cannot
    carry or the result exceeds the size limits.
    """
    try:
        body = msgpack.packb(
            {
                "v": ENVELOPE_VERSION,
                "kind": message.kind.value,
                "src": message.source,
                "name": message.name,
                "t": message.t_s,
                "seq": message.seq,
                "data": message.data,
            },
            use_bin_type=True,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        msg = f"cannot encode {message.kind.value} {message.source}.{message.name}: {exc}"
        raise CodecError(msg) from exc
    topic = message.topic
    if len(body) > MAX_BODY_BYTES:
        msg = f"{message.source}.{message.name}: body of {len(body)} bytes exceeds {MAX_BODY_BYTES}"
        raise CodecError(msg)
    if len(topic) > MAX_TOPIC_BYTES:
        msg = f"topic of {len(topic)} bytes exceeds {MAX_TOPIC_BYTES}"
        raise CodecError(msg)
    return topic, body


def decode(topic: bytes, body: bytes) -> Message:
    """Decode and validate one (topic, body) pair.

    The topic must match the envelope. Raises only :class:`CodecError`, whose
    message says what was wrong.
    """
    if len(body) > MAX_BODY_BYTES:
        msg = f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}"
        raise CodecError(msg)
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        msg = f"body is not msgpack: {type(exc).__name__}: {exc}"
        raise CodecError(msg) from exc
    message = _fast_envelope(raw)
    if message is None:
        message = envelope_from_map(raw)
    if topic != message.topic:
        msg = f"topic {topic[:64]!r} does not match envelope {message.topic!r}"
        raise CodecError(msg)
    return message


def _fast_envelope(raw: object) -> Message | None:
    """The common case, checked in one pass: a well-formed envelope, or ``None`` to look closer.

    Accepts exactly what :func:`envelope_from_map` accepts; anything unusual is
    left to it, which says what is wrong.
    """
    if type(raw) is not dict or len(raw) != len(_ENVELOPE_KEYS):
        return None
    try:
        kind = _KINDS[raw["kind"]]
        source, name, t_s, seq, data = raw["src"], raw["name"], raw["t"], raw["seq"], raw["data"]
        version = raw["v"]
    except (KeyError, TypeError):
        return None
    if (
        version == ENVELOPE_VERSION
        and type(version) is int
        and type(source) is str
        and source
        and "." not in source
        and type(name) is str
        and name
        and (type(t_s) is float or type(t_s) is int)
        and type(seq) is int
        and seq >= 0
        and type(data) is dict
    ):
        return Message(kind, source, name, float(t_s), seq, data)
    return None


def envelope_from_map(raw: object) -> Message:
    """Validate a decoded msgpack object as an envelope; raises :class:`CodecError`."""
    if not isinstance(raw, dict):
        msg = f"envelope is {type(raw).__name__}, not a map"
        raise CodecError(msg)
    keys = set(raw)
    if keys != _ENVELOPE_KEYS:
        missing = sorted(str(k) for k in _ENVELOPE_KEYS - keys)
        extra = sorted(str(k) for k in keys - _ENVELOPE_KEYS)
        msg = f"envelope keys wrong (missing {missing}, unexpected {extra})"
        raise CodecError(msg)
    if raw["v"] != ENVELOPE_VERSION or isinstance(raw["v"], bool):
        msg = f"envelope version {raw['v']!r}, expected {ENVELOPE_VERSION}"
        raise CodecError(msg)
    kind = _KINDS.get(raw["kind"]) if isinstance(raw["kind"], str) else None
    if kind is None:
        msg = f"unknown kind {raw['kind']!r}"
        raise CodecError(msg)
    source, name, t_s, seq, data = raw["src"], raw["name"], raw["t"], raw["seq"], raw["data"]
    if not isinstance(source, str) or not source or "." in source:
        msg = f"source {source!r} is not a non-empty name without dots"
        raise CodecError(msg)
    if not isinstance(name, str) or not name:
        msg = f"name {name!r} is not a non-empty string"
        raise CodecError(msg)
    if isinstance(t_s, bool) or not isinstance(t_s, (int, float)):
        msg = f"mission time {t_s!r} is not a number"
        raise CodecError(msg)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        msg = f"sequence number {seq!r} is not a non-negative integer"
        raise CodecError(msg)
    if not isinstance(data, dict):
        msg = f"data is {type(data).__name__}, not a map"
        raise CodecError(msg)
    return Message(kind, source, name, float(t_s), seq, data)


class Sequencer:
    """Hands out per-(source, kind) sequence numbers for one process's outgoing messages."""

    def __init__(self) -> None:
        self._next: dict[Kind, int] = {}

    def next(self, kind: Kind) -> int:
        """Return the next sequence number of ``kind`` (0, 1, 2, ...)."""
        seq = self._next.get(kind, 0)
        self._next[kind] = seq + 1
        return seq
