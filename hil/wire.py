"""The board wire protocol: COBS framing, CRC-16/CCITT-FALSE, a 4-byte header, msgpack bodies.

One frame on the wire is::

    COBS( header[4] | body[n] | crc[2] ) 0x00

* ``header`` = protocol version (u8), message type (u8), sequence number (u16, big-endian);
* ``body`` = one msgpack map (string keys), the fields of :data:`Message`;
* ``crc`` = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)
  of header + body, big-endian;
* the COBS-encoded bytes contain no 0x00, so 0x00 ends every frame.

:func:`encode_frame` and :func:`decode_frame` are a symmetric pair of pure functions:
``decode_frame(encode_frame(f)) == f``. A :class:`Deframer` cuts a byte stream into
frames and accounts for every byte it was fed: kept (in a good frame, delimiter
included), skipped (garbage, bad COBS, bad CRC, too short, too long, unknown version or
type, bad body) or left (a partial frame held until its delimiter comes). It never
raises on input and never holds more than one maximum-length frame.

The full specification, written for firmware authors, is ``docs/board-protocol.md``.
"""

from __future__ import annotations

import binascii
import enum
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from fsw.board import Actuator, BoardDescription, BoardEvent, Channel, Sample, Value, ValueType
from fsw.errors import FrameError

#: The protocol version this implementation speaks.
PROTOCOL_VERSION: Final = 1
#: Versions a :class:`Deframer` accepts by default (HELLO is accepted in any version).
SUPPORTED_VERSIONS: Final = frozenset({PROTOCOL_VERSION})

HEADER_BYTES: Final = 4
CRC_BYTES: Final = 2
#: Largest decoded frame (header + body + CRC); a board needs two buffers of this size.
MAX_FRAME_BYTES: Final = 2048
#: Largest COBS-encoded frame, delimiter excluded (one code byte per 254 data bytes, plus one).
MAX_ENCODED_BYTES: Final = MAX_FRAME_BYTES + MAX_FRAME_BYTES // 254 + 1
FRAME_DELIMITER: Final = 0x00

_COBS_BLOCK: Final = 254
_U16_MAX: Final = 0xFFFF
_U8_MAX: Final = 0xFF


class MessageType(enum.IntEnum):
    """Message type codes. A reply's code is its request's code with bit 7 set."""

    HELLO = 0x01
    SYNC = 0x02
    READ = 0x03
    COMMAND = 0x04
    STATUS = 0x05
    HELLO_REPLY = 0x81
    SYNC_ACK = 0x82
    READ_REPLY = 0x83
    COMMAND_ACK = 0x84
    STATUS_REPLY = 0x85
    EVENT = 0xC0
    NAK = 0xFF


#: Types a flight client sends and a board answers.
REQUEST_TYPES: Final = frozenset(
    {
        MessageType.HELLO,
        MessageType.SYNC,
        MessageType.READ,
        MessageType.COMMAND,
        MessageType.STATUS,
    }
)


class NakCode(enum.IntEnum):
    """Why a board refused a request (the ``code`` of a NAK)."""

    BAD_FRAME = 1  # the request decoded (CRC good) but its body is malformed
    VERSION_MISMATCH = 2  # the board does not speak the request's protocol version
    UNSUPPORTED = 3  # a message type the board does not serve
    UNKNOWN_ACTUATOR = 4  # COMMAND names an actuator the board does not have
    OUT_OF_RANGE = 5  # COMMAND value outside [low, high] or of the wrong type
    REFUSED = 6  # valid command the board's state forbids now (e.g. reactor tripped)
    BOARD_FAULT = 7  # the board failed while serving the request


# --- messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """HELLO: open a session; ``client`` names the flight process (free text)."""

    client: str = ""


@dataclass(frozen=True)
class HelloReply:
    """HELLO_REPLY: the board's self-description."""

    description: BoardDescription


@dataclass(frozen=True)
class Sync:
    """SYNC: start of ``frame`` at mission time ``t_s``; also the flight heartbeat."""

    frame: int
    t_s: float


@dataclass(frozen=True)
class SyncAck:
    """SYNC_ACK: the board reached ``frame``; its own clock reads ``board_time_s``.

    ``values``, optional, is the board's sample at that frame (every channel), so the
    client needs no READ for it; empty when the board does not send one.
    """

    frame: int
    board_time_s: float
    values: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Read:
    """READ: ask for every channel once."""


@dataclass(frozen=True)
class ReadReply:
    """READ_REPLY: one sample of every channel."""

    sample: Sample


@dataclass(frozen=True)
class Command:
    """COMMAND: drive ``actuator`` to ``value``."""

    actuator: str
    value: Value


@dataclass(frozen=True)
class CommandAck:
    """COMMAND_ACK: the command was accepted (it takes effect in the next step)."""

    actuator: str
    value: Value


@dataclass(frozen=True)
class Status:
    """STATUS: ask for the board's health."""


@dataclass(frozen=True)
class StatusReply:
    """STATUS_REPLY: board clock and the fault flags now raised."""

    board_time_s: float
    faults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Nak:
    """NAK: the request with this sequence number was refused; ``code`` is a :class:`NakCode`."""

    code: int
    reason: str


@dataclass(frozen=True)
class Event:
    """EVENT: raised by the board on its own; carries the board's event sequence number."""

    event: BoardEvent


Message = (
    Hello
    | HelloReply
    | Sync
    | SyncAck
    | Read
    | ReadReply
    | Command
    | CommandAck
    | Status
    | StatusReply
    | Nak
    | Event
)

_TYPE_OF: Final[dict[type[Any], MessageType]] = {
    Hello: MessageType.HELLO,
    HelloReply: MessageType.HELLO_REPLY,
    Sync: MessageType.SYNC,
    SyncAck: MessageType.SYNC_ACK,
    Read: MessageType.READ,
    ReadReply: MessageType.READ_REPLY,
    Command: MessageType.COMMAND,
    CommandAck: MessageType.COMMAND_ACK,
    Status: MessageType.STATUS,
    StatusReply: MessageType.STATUS_REPLY,
    Nak: MessageType.NAK,
    Event: MessageType.EVENT,
}


def message_type(message: Message) -> MessageType:
    """Return the type code of ``message``."""
    return _TYPE_OF[type(message)]


@dataclass(frozen=True)
class Frame:
    """One decoded frame: a message with its sequence number and protocol version."""

    seq: int
    message: Message
    version: int = PROTOCOL_VERSION

    @property
    def type(self) -> MessageType:
        """The message type code."""
        return message_type(self.message)


# --- COBS and CRC -------------------------------------------------------------------


class _Reject(Exception):
    """A frame is rejected; ``reason`` is one of :data:`REJECT_REASONS`."""

    def __init__(
        self,
        reason: str,
        detail: str,
        version: int | None = None,
        type_code: int | None = None,
        seq: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.version = version
        self.type_code = type_code
        self.seq = seq


#: Why a :class:`Deframer` skipped bytes.
REJECT_REASONS: Final = ("cobs", "short", "crc", "oversize", "version", "type", "body")


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (poly 0x1021, init 0xFFFF); ``b"123456789"`` gives 0x29B1."""
    return binascii.crc_hqx(data, crc)


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data``: the result has no 0x00 and is at most ``len/254 + 1`` bytes longer."""
    out = bytearray()
    for piece in data.split(b"\x00"):
        start = 0
        while len(piece) - start >= _COBS_BLOCK:  # a full block: code 0xFF, no implied zero
            out.append(_COBS_BLOCK + 1)
            out += piece[start : start + _COBS_BLOCK]
            start += _COBS_BLOCK
        out.append(len(piece) - start + 1)
        out += piece[start:]
    return bytes(out)


def _cobs_decode(encoded: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(encoded)
    while i < n:
        code = encoded[i]
        if code == 0:
            raise _Reject("cobs", f"COBS code byte 0x00 at offset {i}")
        end = i + code
        if end > n:
            raise _Reject("cobs", f"COBS block at offset {i} runs {end - n} bytes past the end")
        block = encoded[i + 1 : end]
        if 0 in block:
            raise _Reject("cobs", f"0x00 inside the COBS block at offset {i}")
        out += block
        i = end
        if code != _COBS_BLOCK + 1 and i < n:
            out.append(0)
    return bytes(out)


def cobs_decode(encoded: bytes) -> bytes:
    """Invert :func:`cobs_encode`; raises :class:`FrameError` for bytes no encoder produces."""
    try:
        return _cobs_decode(encoded)
    except _Reject as exc:
        raise FrameError(exc.detail) from exc


# --- bodies -------------------------------------------------------------------------


def _body_of(message: Message) -> dict[str, Any]:
    if isinstance(message, Hello):
        return {"client": message.client}
    if isinstance(message, HelloReply):
        return message.description.to_map()
    if isinstance(message, Sync):
        return {"frame": message.frame, "t_s": message.t_s}
    if isinstance(message, SyncAck):
        if message.values:
            return {
                "frame": message.frame,
                "board_time_s": message.board_time_s,
                "values": dict(message.values),
            }
        return {"frame": message.frame, "board_time_s": message.board_time_s}
    if isinstance(message, (Read, Status)):
        return {}
    if isinstance(message, ReadReply):
        return {
            "board_time_s": message.sample.board_time_s,
            "values": dict(message.sample.values),
        }
    if isinstance(message, (Command, CommandAck)):
        return {"actuator": message.actuator, "value": message.value}
    if isinstance(message, StatusReply):
        return {"board_time_s": message.board_time_s, "faults": list(message.faults)}
    if isinstance(message, Nak):
        return {"code": message.code, "reason": message.reason}
    ev = message.event
    return {
        "name": ev.name,
        "severity": ev.severity,
        "board_time_s": ev.board_time_s,
        "data": dict(ev.data),
    }


class _Body:
    """Typed access to a decoded body map; every failure is a ``body`` rejection."""

    def __init__(self, fields: Mapping[str, Any], what: str) -> None:
        self._fields = fields
        self._what = what

    def _get(self, key: str) -> Any:
        try:
            return self._fields[key]
        except KeyError:
            raise _Reject("body", f"{self._what} lacks field {key!r}") from None

    def _bad(self, key: str, expected: str, got: Any) -> _Reject:
        return _Reject("body", f"{self._what}.{key} must be {expected}, got {type(got).__name__}")

    def has(self, key: str) -> bool:
        return key in self._fields

    def str_(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string", value)
        return value

    def int_(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer", value)
        return value

    def float_(self, key: str) -> float:
        value = self._get(key)
        return _as_float(value, lambda: self._bad(key, "a number", value))

    def optional_float(self, key: str) -> float | None:
        value = self._get(key)
        if value is None:
            return None
        return _as_float(value, lambda: self._bad(key, "a number or nil", value))

    def value(self, key: str) -> Value:
        value = self._get(key)
        if not isinstance(value, (bool, int, float)):
            raise self._bad(key, "a bool, integer or float", value)
        return value

    def map_(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self._bad(key, "a map with string keys", value)
        return value

    def list_(self, key: str) -> list[Any]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._bad(key, "an array", value)
        return value

    def fields_of(self, key: str) -> list[_Body]:
        items = self.list_(key)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise _Reject("body", f"{self._what}.{key}[{i}] must be a map")
            out.append(_Body(item, f"{self._what}.{key}[{i}]"))
        return out


def _as_float(value: Any, bad: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad()
    return float(value)


def _value_type(body: _Body) -> ValueType:
    raw = body.str_("type")
    try:
        return ValueType(raw)
    except ValueError:
        raise _Reject("body", f"unknown value type {raw!r}") from None


def _channel_of(body: _Body) -> Channel:
    return Channel(
        name=body.str_("name"),
        type=_value_type(body),
        unit=body.str_("unit"),
        low=body.optional_float("low"),
        high=body.optional_float("high"),
        description=body.str_("description"),
    )


def _actuator_of(body: _Body) -> Actuator:
    return Actuator(
        name=body.str_("name"),
        type=_value_type(body),
        unit=body.str_("unit"),
        low=body.optional_float("low"),
        high=body.optional_float("high"),
        description=body.str_("description"),
    )


def _values_of(body: _Body) -> dict[str, Value]:
    values = body.map_("values")
    for name, value in values.items():
        if not isinstance(value, (bool, int, float)):
            raise _Reject("body", f"channel {name!r} value must be a number or bool")
    return values


def _message_of(type_code: MessageType, body: _Body) -> Message:
    if type_code is MessageType.HELLO:
        return Hello(client=body.str_("client"))
    if type_code is MessageType.HELLO_REPLY:
        return HelloReply(
            BoardDescription(
                kind=body.str_("kind"),
                protocol_version=body.int_("protocol_version"),
                firmware=body.str_("firmware"),
                channels=tuple(_channel_of(c) for c in body.fields_of("channels")),
                actuators=tuple(_actuator_of(a) for a in body.fields_of("actuators")),
            )
        )
    if type_code is MessageType.SYNC:
        return Sync(frame=body.int_("frame"), t_s=body.float_("t_s"))
    if type_code is MessageType.SYNC_ACK:
        values = _values_of(body) if body.has("values") else {}
        return SyncAck(frame=body.int_("frame"), board_time_s=body.float_("board_time_s"), values=values)
    if type_code is MessageType.READ:
        return Read()
    if type_code is MessageType.READ_REPLY:
        return ReadReply(Sample(board_time_s=body.float_("board_time_s"), values=_values_of(body)))
    if type_code is MessageType.COMMAND:
        return Command(actuator=body.str_("actuator"), value=body.value("value"))
    if type_code is MessageType.COMMAND_ACK:
        return CommandAck(actuator=body.str_("actuator"), value=body.value("value"))
    if type_code is MessageType.STATUS:
        return Status()
    if type_code is MessageType.STATUS_REPLY:
        faults = body.list_("faults")
        if not all(isinstance(f, str) for f in faults):
            raise _Reject("body", "STATUS_REPLY.faults must be strings")
        return StatusReply(board_time_s=body.float_("board_time_s"), faults=tuple(faults))
    if type_code is MessageType.NAK:
        return Nak(code=body.int_("code"), reason=body.str_("reason"))
    return Event(
        BoardEvent(
            name=body.str_("name"),
            severity=body.str_("severity"),
            board_time_s=body.float_("board_time_s"),
            data=body.map_("data"),
        )
    )


# --- frames -------------------------------------------------------------------------


def encode_frame(frame: Frame) -> bytes:
    """Encode ``frame`` for the wire, trailing 0x00 delimiter included.

    Pure. Raises :class:`FrameError` when a field is out of range (sequence number not a
    u16, version not a u8), a body value msgpack cannot carry, or the frame would exceed
    :data:`MAX_FRAME_BYTES`.
    """
    if not 0 <= frame.seq <= _U16_MAX:
        msg = f"sequence number {frame.seq} is not a u16"
        raise FrameError(msg)
    if not 0 <= frame.version <= _U8_MAX:
        msg = f"protocol version {frame.version} is not a u8"
        raise FrameError(msg)
    type_code = message_type(frame.message)
    try:
        body: bytes = msgpack.packb(_body_of(frame.message), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        msg = f"{type_code.name} body cannot be encoded: {exc}"
        raise FrameError(msg) from exc
    payload = bytes((frame.version, type_code)) + frame.seq.to_bytes(2, "big") + body
    raw = payload + crc16_ccitt_false(payload).to_bytes(CRC_BYTES, "big")
    if len(raw) > MAX_FRAME_BYTES:
        msg = f"{type_code.name} frame of {len(raw)} bytes exceeds {MAX_FRAME_BYTES}"
        raise FrameError(msg)
    return cobs_encode(raw) + bytes((FRAME_DELIMITER,))


def _decode(encoded: bytes, versions: Collection[int]) -> Frame:
    if encoded.endswith(b"\x00"):
        encoded = encoded[:-1]
    if len(encoded) > MAX_ENCODED_BYTES:
        raise _Reject("oversize", f"{len(encoded)} encoded bytes exceed {MAX_ENCODED_BYTES}")
    raw = _cobs_decode(encoded)
    if len(raw) < HEADER_BYTES + CRC_BYTES:
        raise _Reject("short", f"{len(raw)} bytes is shorter than header + CRC")
    if len(raw) > MAX_FRAME_BYTES:
        raise _Reject("oversize", f"{len(raw)} bytes exceed {MAX_FRAME_BYTES}")
    payload, crc = raw[:-CRC_BYTES], int.from_bytes(raw[-CRC_BYTES:], "big")
    computed = crc16_ccitt_false(payload)
    if crc != computed:
        raise _Reject("crc", f"CRC 0x{crc:04X} does not match computed 0x{computed:04X}")
    version, code, seq = payload[0], payload[1], int.from_bytes(payload[2:4], "big")
    try:
        type_code = MessageType(code)
    except ValueError:
        raise _Reject("type", f"unknown message type 0x{code:02X}", version, code, seq) from None
    if version not in versions and type_code is not MessageType.HELLO:
        raise _Reject("version", f"unsupported protocol version {version}", version, code, seq)
    try:
        fields = msgpack.unpackb(payload[HEADER_BYTES:], raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        detail = f"{type_code.name} body is not msgpack: {exc}"
        raise _Reject("body", detail, version, code, seq) from exc
    if not isinstance(fields, dict):
        detail = f"{type_code.name} body is not a map"
        raise _Reject("body", detail, version, code, seq)
    try:
        message = _message_of(type_code, _Body(fields, type_code.name))
    except _Reject as exc:
        raise _Reject("body", exc.detail, version, code, seq) from exc
    return Frame(seq=seq, message=message, version=version)


def decode_frame(encoded: bytes, versions: Collection[int] = SUPPORTED_VERSIONS) -> Frame:
    """Decode one COBS-encoded frame (trailing 0x00 optional); the inverse of :func:`encode_frame`.

    Pure. ``versions`` are the protocol versions accepted; a HELLO is accepted in any
    version so that a board can answer a version mismatch. Raises :class:`FrameError`
    naming what is wrong: bad COBS, too short or long, CRC mismatch, unknown version or
    type, a body that is not a msgpack map of the right fields.
    """
    try:
        return _decode(encoded, versions)
    except _Reject as exc:
        msg = f"bad board frame ({exc.reason}): {exc.detail}"
        raise FrameError(msg) from exc


# --- stream deframing ---------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """A frame the deframer skipped. Header fields are known when the CRC was good."""

    reason: str
    detail: str
    version: int | None = None
    type_code: int | None = None
    seq: int | None = None


@dataclass
class DeframerCounters:
    """Byte and frame accounting: ``bytes_fed == bytes_kept + bytes_skipped + bytes_left``."""

    bytes_fed: int = 0
    bytes_kept: int = 0
    bytes_skipped: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    rejections_dropped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))


class Deframer:
    """Cut a byte stream into frames, accounting for every byte.

    ``feed`` never raises on input and holds at most :data:`MAX_ENCODED_BYTES` bytes of a
    partial frame: a longer run without a delimiter is skipped up to the next 0x00.
    Rejections whose header was readable (CRC good) are kept in a bounded queue, so a
    board can NAK them; older ones are dropped and counted when it is full.
    """

    def __init__(
        self,
        versions: Collection[int] = SUPPORTED_VERSIONS,
        max_rejections: int = 16,
    ) -> None:
        self._versions = frozenset(versions)
        self._buffer = bytearray()
        self._discarding = False
        self._rejections: deque[Rejection] = deque(maxlen=max(1, max_rejections))
        self.counters = DeframerCounters()

    @property
    def bytes_left(self) -> int:
        """Bytes of a partial frame held until its delimiter comes."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completed, in order. Never raises."""
        c = self.counters
        c.bytes_fed += len(data)
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(FRAME_DELIMITER, start)
            if end < 0:
                self._hold(data[start:])
                return frames
            chunk = data[start:end]
            start = end + 1
            if self._discarding:
                c.bytes_skipped += len(chunk) + 1
                self._discarding = False
                continue
            if len(self._buffer) + len(chunk) > MAX_ENCODED_BYTES:
                c.bytes_skipped += len(self._buffer) + len(chunk) + 1
                self._buffer.clear()
                self._reject(_Reject("oversize", "frame longer than the maximum"))
                continue
            encoded = bytes(self._buffer) + chunk
            self._buffer.clear()
            if not encoded:
                c.bytes_skipped += 1  # a lone delimiter: idle line, not a bad frame
                continue
            try:
                frame = _decode(encoded, self._versions)
            except _Reject as exc:
                c.bytes_skipped += len(encoded) + 1
                self._reject(exc)
                continue
            c.bytes_kept += len(encoded) + 1
            c.frames_ok += 1
            frames.append(frame)

    def drain_rejections(self) -> list[Rejection]:
        """Return and forget the queued rejections (oldest first)."""
        out = list(self._rejections)
        self._rejections.clear()
        return out

    def _hold(self, rest: bytes) -> None:
        c = self.counters
        if self._discarding:
            c.bytes_skipped += len(rest)
        elif len(self._buffer) + len(rest) > MAX_ENCODED_BYTES:
            c.bytes_skipped += len(self._buffer) + len(rest)
            self._buffer.clear()
            self._discarding = True
            self._reject(_Reject("oversize", "frame longer than the maximum"))
        else:
            self._buffer += rest

    def _reject(self, exc: _Reject) -> None:
        c = self.counters
        c.frames_bad += 1
        c.skipped_by_reason[exc.reason] = c.skipped_by_reason.get(exc.reason, 0) + 1
        if len(self._rejections) == self._rejections.maxlen:
            c.rejections_dropped += 1
        self._rejections.append(Rejection(exc.reason, exc.detail, exc.version, exc.type_code, exc.seq))


# --- command checks -----------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a board refuses a COMMAND: the NAK code and a reason naming the actuator."""

    code: NakCode
    reason: str


def check_command(description: BoardDescription, actuator: str, value: Value) -> Value | Refusal:
    """Check a COMMAND against the board's description.

    Returns the value normalised to the actuator's type (a bool actuator takes
    ``True``/``False`` or 0/1, a float actuator takes any number) or the :class:`Refusal`
    the board answers with: ``UNKNOWN_ACTUATOR`` or ``OUT_OF_RANGE``. Pure; never raises.
    """
    spec = next((a for a in description.actuators if a.name == actuator), None)
    if spec is None:
        known = ", ".join(a.name for a in description.actuators) or "none"
        reason = f"board {description.kind!r} has no actuator {actuator!r} (actuators: {known})"
        return Refusal(NakCode.UNKNOWN_ACTUATOR, reason)
    normalised: Value
    if spec.type is ValueType.BOOL:
        if isinstance(value, bool):
            normalised = value
        elif isinstance(value, int) and value in (0, 1):
            normalised = bool(value)
        else:
            reason = f"actuator {actuator!r} takes a bool, got {value!r}"
            return Refusal(NakCode.OUT_OF_RANGE, reason)
    elif spec.type is ValueType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return Refusal(NakCode.OUT_OF_RANGE, f"actuator {actuator!r} takes an integer")
        normalised = value
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return Refusal(NakCode.OUT_OF_RANGE, f"actuator {actuator!r} takes a number")
        normalised = float(value)
    number = float(normalised)
    low = spec.low if spec.low is not None else -float("inf")
    high = spec.high if spec.high is not None else float("inf")
    if not low <= number <= high:  # NaN fails this too
        unit = f" {spec.unit}" if spec.unit not in ("", "1") else ""
        reason = f"actuator {actuator!r} value {value!r} outside [{spec.low}, {spec.high}]{unit}"
        return Refusal(NakCode.OUT_OF_RANGE, reason)
    return normalised
