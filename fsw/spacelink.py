"""The ground link's packets: CCSDS Space Packets with ECSS PUS-C services, authenticated.

Both ends use this module: the base (comms) parses telecommands and builds telemetry, the
ground builds telecommands and parses telemetry. Headers, secondary headers and the
CRC-16-CCITT of every packet come from the ``spacepackets`` library; what is ours is the
content of the user data, laid out below and in docs/space-link.md.

Telecommands (PUS-C TC, ``ack_flags`` all set, ``source_id`` the ground station). The
application data is framed as the CCSDS Space Data Link Security baseline frames a
transfer frame, applied to the packet:

======================  ======  ==============================================
security header         6 B     key id (u16), sequence number (u32), big-endian
service data            n B     per service (below)
MAC trailer             16 B    HMAC-SHA256 truncated to 128 bits
packet error control    2 B     CRC-16-CCITT (added by ``spacepackets``)
======================  ======  ==============================================

The MAC covers every byte before it: the primary header (with the final length), the TC
secondary header, the security header and the service data. Services:

* TC[17,1] are-you-alive: no service data. Answered with TM[17,2].
* TC[8,1] perform a function: ``flags`` (u8, 0), ``name length`` (u8), the dictionary
  command's name (ASCII), then its arguments as one msgpack map (the rest of the data).
  The packet's APID names the process that obeys it.

Telemetry (PUS-C TM, CDS short time stamp of 7 bytes in the secondary header):

* TM[1,1]/[1,3]/[1,7] acceptance, start, completion success: the request id (4 bytes: the
  telecommand's packet id and sequence control).
* TM[1,2]/[1,4]/[1,8] acceptance, start, completion failure: the request id, the failure
  code (u16, :class:`Failure`), and the reason (UTF-8, at most :data:`MAX_REASON_BYTES`).
* TM[3,25] housekeeping parameter report: the structure id (u16, the process's APID), then
  every telemetry point of the process's dictionary in dictionary order, each by its type:
  float as IEEE-754 binary64, int as i64, bool as u8, str as u8 length + UTF-8 (at most 255
  bytes). A point with no value is sent as NaN, :data:`MISSING_INT`, 255, or an empty string.
* TM[5,1..4] events, by severity (1 informative: debug and info; 2 low: warning; 3 medium:
  error; 4 high: critical): the event id (u16, its index in the process's dictionary), then
  its data as one msgpack map. An event its source's dictionary does not declare (the
  supervisor has none) has id :data:`UNDECLARED_EVENT` and its name in the map's ``event``.
* TM[17,2] are-you-alive reply: no data.

Every parser here accounts for every byte: a packet whose length field disagrees with the
bytes received, a short or oversized packet, a bad CRC, or trailing data is refused with
:class:`~fsw.errors.LinkRejected`, whose ``code`` is the :class:`Failure` sent back.
"""

from __future__ import annotations

import binascii
import datetime as dt
import enum
import hashlib
import hmac
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
from spacepackets.ccsds.spacepacket import PacketType, SpacePacketHeader
from spacepackets.ccsds.time import CdsShortTimestamp
from spacepackets.ecss import PusTc, PusTm, check_pus_crc

from fsw.dictionary import ArgType, Point, Severity
from fsw.errors import ConfigError, LinkRejected

#: Bytes of the security header: key id (u16) and sequence number (u32).
SECURITY_HEADER_LEN: Final = 6
#: Bytes of the MAC trailer (HMAC-SHA256 truncated to 128 bits).
MAC_LEN: Final = 16
#: Bytes of the CDS short time stamp in every TM secondary header.
TIMESTAMP_LEN: Final = 7
#: Primary header (6), PUS-C TC secondary header (5), CRC (2).
TC_OVERHEAD: Final = 6 + 5 + 2
#: Primary header (6), PUS-C TM secondary header (7) with its time stamp, CRC (2): an empty TM.
TM_OVERHEAD: Final = 6 + 7 + 7 + 2
#: Largest telecommand accepted (bytes, whole packet).
MAX_TC_BYTES: Final = 1024
#: Smallest well-formed telecommand: headers, security header, MAC, CRC.
MIN_TC_BYTES: Final = TC_OVERHEAD + SECURITY_HEADER_LEN + MAC_LEN
#: Longest reason carried in a verification failure report (bytes of UTF-8).
MAX_REASON_BYTES: Final = 200
#: Bits of the failure code in TM[1,2], TM[1,4] and TM[1,8].
FAILURE_CODE_BITS: Final = 16
#: An int point with no value, in TM[3,25].
MISSING_INT: Final = -(2**63)
#: A bool point with no value, in TM[3,25].
MISSING_BOOL: Final = 255
#: The APID of idle packets (never used for data).
IDLE_APID: Final = 0x7FF
#: Event id of an event its source's dictionary does not declare (TM[5,x]).
UNDECLARED_EVENT: Final = 0xFFFF

#: PUS services and subtypes of the link.
TC_PING: Final = (17, 1)
TM_PONG: Final = (17, 2)
TC_FUNCTION: Final = (8, 1)
TM_HOUSEKEEPING: Final = (3, 25)
TM_ACCEPTED, TM_ACCEPT_FAILED = (1, 1), (1, 2)
TM_STARTED, TM_START_FAILED = (1, 3), (1, 4)
TM_COMPLETED, TM_COMPLETION_FAILED = (1, 7), (1, 8)

#: Event severity -> TM[5,x] subtype.
EVENT_SUBTYPES: Final = {
    Severity.DEBUG.value: 1,
    Severity.INFO.value: 1,
    Severity.WARNING.value: 2,
    Severity.ERROR.value: 3,
    Severity.CRITICAL.value: 4,
}

#: APIDs of the embedded base's processes; others get the next free APID from 0x20, by name.
DEFAULT_APIDS: Final = {
    "supervisor": 0x01,
    "clock": 0x02,
    "bus": 0x03,
    "power": 0x10,
    "thermal": 0x11,
    "comms": 0x12,
    "reactor": 0x13,
    "protection": 0x14,
    "simulator": 0x15,
    "recorder": 0x16,
    "spacelink": 0x17,
}

#: Where the APIDs beyond :data:`DEFAULT_APIDS` start.
FIRST_FREE_APID: Final = 0x20

#: Time code epoch of CDS (1958-01-01) is handled by ``spacepackets``; ours is the mission's.
DEFAULT_EPOCH_UTC: Final = "2030-01-01T00:00:00+00:00"


class Failure(enum.IntEnum):
    """Failure codes of TM[1,2], TM[1,4] and TM[1,8] (u16), and the link's rejection counters."""

    TRUNCATED = 1  #: shorter than its headers, or than its length field says
    OVERSIZED = 2  #: longer than :data:`MAX_TC_BYTES`
    LENGTH_MISMATCH = 3  #: bytes beyond the length field's packet
    BAD_CRC = 4  #: the CRC-16-CCITT does not match
    NOT_TELECOMMAND = 5  #: wrong version, packet type or no secondary header
    UNKNOWN_APID = 6  #: no process of the base has this APID
    UNKNOWN_SERVICE = 7  #: neither TC[17,1] nor TC[8,1]
    UNKNOWN_KEY = 8  #: the key id is not in the key ring
    INACTIVE_KEY = 9  #: a key that is not the active one
    BAD_MAC = 10  #: the MAC does not match
    REPLAYED = 11  #: sequence number outside the anti-replay window, or seen before
    MALFORMED = 12  #: service data that does not decode
    FLOOD = 13  #: more telecommands than the link accepts per second
    NO_LINK = 14  #: arrived while no link was up
    COMMAND_REJECTED = 20  #: the process refused the command (reason attached)
    COMMAND_FAILED = 21  #: the command started and failed
    TIMED_OUT = 22  #: no answer from the process in time


#: Failures that are the security layer's (each also raises a security event).
SECURITY_FAILURES: Final = frozenset(
    {Failure.UNKNOWN_KEY, Failure.INACTIVE_KEY, Failure.BAD_MAC, Failure.REPLAYED}
)


def apid_map(process_names: Sequence[str], overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """APID of each process: ``overrides``, then :data:`DEFAULT_APIDS`, then the next free.

    Raises :class:`ConfigError` for an APID out of 1..0x7FE or used twice.
    """
    apids: dict[str, int] = {}
    for name in process_names:
        if overrides and name in overrides:
            apids[name] = int(overrides[name])
        elif name in DEFAULT_APIDS:
            apids[name] = DEFAULT_APIDS[name]
    taken = set(apids.values())
    next_free = FIRST_FREE_APID
    for name in sorted(n for n in process_names if n not in apids):
        while next_free in taken or next_free in DEFAULT_APIDS.values():
            next_free += 1
        apids[name] = next_free
        taken.add(next_free)
    seen: dict[int, str] = {}
    for name, apid in apids.items():
        if not 1 <= apid < IDLE_APID:
            msg = f"APID of {name} is {apid}: must be 1..{IDLE_APID - 1}"
            raise ConfigError(msg)
        if apid in seen:
            msg = f"APID {apid:#x} given to both {seen[apid]} and {name}"
            raise ConfigError(msg)
        seen[apid] = name
    return apids


def link_apids(process_names: Sequence[str], overrides: Mapping[str, int]) -> dict[str, int]:
    """APIDs of a base: the framework's processes (supervisor, clock, bus, recorder) and ``process_names``.

    Both ends number the processes with this, so the ground and comms agree.
    """
    names = ["supervisor", "clock", "bus", "recorder", *process_names]
    return apid_map(list(dict.fromkeys(names)), overrides)


def split_host_port(text: str) -> tuple[str, int] | None:
    """``"HOST:PORT"`` (``[IPv6]:PORT`` too; ``localhost`` as 127.0.0.1) -> (host, port).

    None if there is no ``:`` or the port is not a whole number; the caller checks the host
    and the port's range, and says what it wanted.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        return None
    host = host.strip("[]")
    return ("127.0.0.1" if host == "localhost" else host), int(port_text)


# ----------------------------------------------------------------- time


def epoch_from_text(text: str) -> float:
    """UTC seconds (Unix) of an ISO 8601 time; raises :class:`ConfigError` if it does not parse."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"not an ISO 8601 time: {text!r}"
        raise ConfigError(msg) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def cds_timestamp(unix_s: float) -> bytes:
    """The 7-byte CDS short time code of ``unix_s`` (UTC, millisecond resolution)."""
    moment = dt.datetime.fromtimestamp(max(unix_s, -378691200.0), tz=dt.timezone.utc)
    return bytes(CdsShortTimestamp.from_datetime(moment).pack())


def unix_from_cds(stamp: bytes) -> float:
    """UTC seconds (Unix) of a 7-byte CDS short time code; raises :class:`LinkRejected`."""
    try:
        return float(CdsShortTimestamp.unpack(stamp).as_unix_seconds())
    except Exception as exc:  # spacepackets raises several types on bad codes
        raise LinkRejected(Failure.MALFORMED, f"bad CDS time stamp {stamp.hex()}: {exc}") from exc


# ----------------------------------------------------------------- authentication


@dataclass(frozen=True)
class SecurityHeader:
    """Key id and anti-replay sequence number of one telecommand."""

    key_id: int
    sequence: int

    def pack(self) -> bytes:
        """The 6 bytes of the header."""
        return struct.pack(">HI", self.key_id, self.sequence)

    @classmethod
    def unpack(cls, data: bytes) -> SecurityHeader:
        """Read the header from the first 6 bytes of ``data`` (the caller checked the length)."""
        key_id, sequence = struct.unpack_from(">HI", data)
        return cls(key_id, sequence)


def mac(key: bytes, covered: bytes) -> bytes:
    """The MAC trailer over ``covered``: HMAC-SHA256 truncated to :data:`MAC_LEN` bytes."""
    return hmac.new(key, covered, hashlib.sha256).digest()[:MAC_LEN]


# ----------------------------------------------------------------- telecommands


@dataclass(frozen=True)
class Telecommand:
    """A telecommand as the ground means it: where, what, and how it is authenticated.

    ``command`` is ``None`` for TC[17,1]; otherwise the dictionary command of the process at
    ``apid``, with ``args``.
    """

    apid: int
    service: int
    subtype: int
    seq_count: int
    key_id: int
    sequence: int
    command: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    source_id: int = 0

    @property
    def request(self) -> bytes:
        """The request id (packet id and sequence control) its verification reports carry."""
        return request_id(self.apid, self.seq_count)


def request_id(apid: int, seq_count: int) -> bytes:
    """The 4-byte request id of the telecommand with ``apid`` and ``seq_count`` (unsegmented)."""
    packet_id = (1 << 12) | (1 << 11) | (apid & 0x7FF)  # version 0, TC, secondary header
    return struct.pack(">HH", packet_id, (0b11 << 14) | (seq_count & 0x3FFF))


def _service_data(command: str | None, args: Mapping[str, Any]) -> bytes:
    if command is None:
        return b""
    name = command.encode("ascii")
    if not 0 < len(name) < 256:
        msg = f"command name {command!r} must be 1..255 ASCII characters"
        raise ConfigError(msg)
    packed: bytes = msgpack.packb(dict(args), use_bin_type=True)
    return bytes((0, len(name))) + name + packed


def encode_tc(tc: Telecommand, key: bytes) -> bytes:
    """The packed, authenticated telecommand. Raises :class:`ConfigError` if it is too long."""
    data = _service_data(tc.command, tc.args)
    header = SecurityHeader(tc.key_id, tc.sequence).pack()
    body = header + data
    placeholder = PusTc(
        service=tc.service,
        message_subtype=tc.subtype,
        apid=tc.apid,
        app_data=body + bytes(MAC_LEN),
        seq_count=tc.seq_count,
        source_id=tc.source_id,
    ).pack()
    covered = bytes(placeholder[: -(MAC_LEN + 2)])
    packet = PusTc(
        service=tc.service,
        message_subtype=tc.subtype,
        apid=tc.apid,
        app_data=body + mac(key, covered),
        seq_count=tc.seq_count,
        source_id=tc.source_id,
    ).pack()
    if len(packet) > MAX_TC_BYTES:
        msg = f"telecommand of {len(packet)} bytes exceeds {MAX_TC_BYTES}"
        raise ConfigError(msg)
    return bytes(packet)


@dataclass(frozen=True)
class RawTelecommand:
    """A telecommand whose framing is checked but not yet its MAC (see :func:`parse_tc`)."""

    apid: int
    service: int
    subtype: int
    seq_count: int
    source_id: int
    security: SecurityHeader
    service_data: bytes
    covered: bytes
    mac: bytes

    @property
    def request(self) -> bytes:
        """The request id of this telecommand."""
        return request_id(self.apid, self.seq_count)


def parse_tc(packet: bytes) -> RawTelecommand:
    """Check the framing of one telecommand packet and split it; the MAC is not checked.

    Refuses, with :class:`LinkRejected` and its :class:`Failure` code: a packet shorter
    than :data:`MIN_TC_BYTES` or than its length field, longer than :data:`MAX_TC_BYTES`,
    with bytes after the length field's end, a bad CRC, or not a PUS-C telecommand.
    """
    size = len(packet)
    if size < 6:
        raise LinkRejected(Failure.TRUNCATED, f"{size} bytes: shorter than a primary header")
    header = SpacePacketHeader.unpack(packet[:6])
    request = request_id(header.apid, header.seq_count)
    if size > MAX_TC_BYTES:
        raise LinkRejected(
            Failure.OVERSIZED, f"telecommand of {size} bytes, more than {MAX_TC_BYTES}", request
        )
    declared = header.packet_len
    if size < declared:
        raise LinkRejected(Failure.TRUNCATED, f"{size} bytes, the length field says {declared}", request)
    if size > declared:
        raise LinkRejected(
            Failure.LENGTH_MISMATCH, f"{size - declared} bytes after the packet's {declared}", request
        )
    if size < MIN_TC_BYTES:
        raise LinkRejected(
            Failure.TRUNCATED,
            f"{size} bytes: shorter than the {MIN_TC_BYTES} of an empty telecommand",
            request,
        )
    if not check_pus_crc(packet):
        raise LinkRejected(Failure.BAD_CRC, "CRC-16-CCITT does not match", request)
    if header.ccsds_version != 0 or header.packet_type != PacketType.TC or not header.sec_header_flag:
        raise LinkRejected(
            Failure.NOT_TELECOMMAND, "not a CCSDS telecommand with a secondary header", request
        )
    pus_version = packet[6] >> 4
    if pus_version != 2:  # PUS-C
        raise LinkRejected(Failure.NOT_TELECOMMAND, f"PUS version {pus_version}, expected 2 (PUS-C)", request)
    service, subtype = packet[7], packet[8]
    (source_id,) = struct.unpack_from(">H", packet, 9)
    app_data = packet[11:-2]
    return RawTelecommand(
        apid=header.apid,
        service=service,
        subtype=subtype,
        seq_count=header.seq_count,
        source_id=source_id,
        security=SecurityHeader.unpack(app_data),
        service_data=bytes(app_data[SECURITY_HEADER_LEN:-MAC_LEN]),
        covered=bytes(packet[: -(MAC_LEN + 2)]),
        mac=bytes(app_data[-MAC_LEN:]),
    )


def verify_mac(raw: RawTelecommand, key: bytes) -> None:
    """Raise :class:`LinkRejected` (``BAD_MAC``) unless ``raw``'s MAC is right for ``key``."""
    if not hmac.compare_digest(mac(key, raw.covered), raw.mac):
        raise LinkRejected(Failure.BAD_MAC, f"MAC does not match key {raw.security.key_id}", raw.request)


def decode_service(raw: RawTelecommand) -> Telecommand:
    """The telecommand ``raw`` carries (its MAC checked by the caller).

    Raises :class:`LinkRejected`: ``UNKNOWN_SERVICE`` for anything but TC[17,1] and TC[8,1],
    ``MALFORMED`` for service data that does not decode, every byte accounted for.
    """
    kind = (raw.service, raw.subtype)

    def telecommand(command: str | None = None, args: dict[str, Any] | None = None) -> Telecommand:
        return Telecommand(
            raw.apid,
            raw.service,
            raw.subtype,
            raw.seq_count,
            raw.security.key_id,
            raw.security.sequence,
            command,
            args or {},
            raw.source_id,
        )

    data = raw.service_data
    if kind == TC_PING:
        if data:
            raise LinkRejected(Failure.MALFORMED, f"TC[17,1] carries {len(data)} bytes of data", raw.request)
        return telecommand()
    if kind != TC_FUNCTION:
        raise LinkRejected(
            Failure.UNKNOWN_SERVICE, f"TC[{raw.service},{raw.subtype}] is not served", raw.request
        )
    if len(data) < 2:
        raise LinkRejected(Failure.MALFORMED, "TC[8,1] shorter than its flags and name length", raw.request)
    flags, name_len = data[0], data[1]
    if flags != 0:
        raise LinkRejected(Failure.MALFORMED, f"TC[8,1] flags {flags:#04x}, expected 0", raw.request)
    name_bytes = data[2 : 2 + name_len]
    if name_len == 0 or len(name_bytes) < name_len:
        raise LinkRejected(Failure.MALFORMED, f"TC[8,1] command name of {name_len} bytes", raw.request)
    try:
        name = name_bytes.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LinkRejected(Failure.MALFORMED, "TC[8,1] command name is not ASCII", raw.request) from exc
    rest = data[2 + name_len :]
    try:
        args = msgpack.unpackb(rest, raw=False, strict_map_key=True) if rest else {}
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise LinkRejected(
            Failure.MALFORMED, f"TC[8,1] arguments are not one msgpack map: {type(exc).__name__}", raw.request
        ) from exc
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise LinkRejected(Failure.MALFORMED, "TC[8,1] arguments are not a map of names", raw.request)
    return telecommand(name, args)


# ----------------------------------------------------------------- telemetry


@dataclass(frozen=True)
class Telemetry:
    """One telemetry packet as received: header fields, time and source data."""

    apid: int
    service: int
    subtype: int
    seq_count: int
    message_counter: int
    unix_s: float
    data: bytes


def encode_tm(
    apid: int,
    kind: tuple[int, int],
    data: bytes,
    *,
    unix_s: float,
    seq_count: int = 0,
    message_counter: int = 0,
) -> bytes:
    """A packed PUS-C telemetry packet with a CDS short time stamp of ``unix_s``."""
    return bytes(
        PusTm(
            service=kind[0],
            message_subtype=kind[1],
            timestamp=cds_timestamp(unix_s),
            source_data=data,
            apid=apid,
            seq_count=seq_count & 0x3FFF,
            message_counter=message_counter & 0xFFFF,
        ).pack()
    )


def apid_of(packet: bytes) -> int:
    """The APID in the first two bytes of a space packet (or of a request id)."""
    return (packet[0] & 0x07) << 8 | packet[1]


def with_sequence_count(packet: bytes, seq_count: int) -> bytes:
    """``packet`` (any space packet with a CRC) with its sequence count set and its CRC redone.

    The sender numbers each APID's packets as they leave, so the receiver sees gaps only
    for packets lost on the way. The length does not change.
    """
    control = struct.pack(">H", (packet[2] & 0xC0) << 8 | (seq_count & 0x3FFF))
    body = packet[:2] + control + packet[4:-2]
    return body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


def decode_tm(packet: bytes) -> Telemetry:
    """Parse one telemetry packet, every byte accounted for; raises :class:`LinkRejected`."""
    size = len(packet)
    if size < TM_OVERHEAD:
        raise LinkRejected(Failure.TRUNCATED, f"{size} bytes: shorter than a PUS-C TM header")
    header = SpacePacketHeader.unpack(packet[:6])
    if size != header.packet_len:
        code = Failure.TRUNCATED if size < header.packet_len else Failure.LENGTH_MISMATCH
        raise LinkRejected(code, f"{size} bytes, the length field says {header.packet_len}")
    if not check_pus_crc(packet):
        raise LinkRejected(Failure.BAD_CRC, "CRC-16-CCITT does not match")
    if header.packet_type != PacketType.TM or not header.sec_header_flag:
        raise LinkRejected(Failure.NOT_TELECOMMAND, "not a CCSDS telemetry packet with a secondary header")
    try:
        tm = PusTm.unpack(packet, timestamp_len=TIMESTAMP_LEN)
    except Exception as exc:  # spacepackets raises several types on bad packets
        raise LinkRejected(Failure.MALFORMED, f"not a PUS-C TM: {type(exc).__name__}: {exc}") from exc
    return Telemetry(
        apid=header.apid,
        service=tm.service,
        subtype=tm.message_subtype,
        seq_count=header.seq_count,
        message_counter=tm.pus_tm_sec_header.message_counter,
        unix_s=unix_from_cds(bytes(tm.timestamp)),
        data=bytes(tm.source_data),
    )


def utf8_prefix(text: str, max_bytes: int) -> bytes:
    """``text`` as UTF-8, cut to at most ``max_bytes`` on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return data
    return data[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8")


def verification_data(request: bytes, failure: int | None = None, reason: str = "") -> bytes:
    """Source data of TM[1,x]: the request id, and for a failure its code and reason.

    The reason is cut to :data:`MAX_REASON_BYTES` of UTF-8 on a character boundary.
    """
    if failure is None:
        return request
    return request + struct.pack(">H", int(failure)) + utf8_prefix(reason, MAX_REASON_BYTES)


def parse_verification(data: bytes) -> tuple[bytes, int | None, str]:
    """Inverse of :func:`verification_data`: request id, failure code (or ``None``), reason."""
    if len(data) < 4 or len(data) == 5:
        raise LinkRejected(Failure.MALFORMED, f"TM[1,x] of {len(data)} bytes")
    if len(data) == 4:
        return data, None, ""
    (code,) = struct.unpack_from(">H", data, 4)
    return data[:4], code, data[6:].decode("utf-8", errors="replace")


#: struct format character of each fixed-size point type (big-endian runs are built from them).
_FORMATS: Final = {ArgType.FLOAT: "d", ArgType.INT: "q", ArgType.BOOL: "B"}


class HousekeepingLayout:
    """The fixed layout of one process's TM[3,25]: its points in dictionary order.

    :meth:`pack` and :meth:`unpack` are a symmetric pair: a point missing from ``values``
    comes back as ``None``; an int that does not fit 64 bits, or a value of the wrong type
    that cannot be converted, is sent as missing.
    """

    def __init__(self, structure_id: int, points: Sequence[Point]) -> None:
        self.structure_id = structure_id
        self.points = tuple(points)
        self.names = tuple(p.name for p in self.points)
        #: Runs of fixed-size points (one Struct and their converters each), and strings (None).
        self._segments: list[tuple[struct.Struct, tuple[Callable[[Any], Any], ...]] | None] = []
        chars: list[str] = []
        converters: list[Callable[[Any], Any]] = []
        for point in self.points:
            if point.type is ArgType.STR:
                if chars:
                    self._segments.append((struct.Struct(">" + "".join(chars)), tuple(converters)))
                    chars, converters = [], []
                self._segments.append(None)
            else:
                chars.append(_FORMATS[point.type])
                converters.append(_MISSING_AS_NONE[point.type])
        if chars:
            self._segments.append((struct.Struct(">" + "".join(chars)), tuple(converters)))

    def pack(self, values: Mapping[str, Any]) -> bytes:
        """The source data of TM[3,25] for ``values`` (point name -> value)."""
        out = [struct.pack(">H", self.structure_id)]
        for point in self.points:
            out.append(_pack_value(point.type, values.get(point.name)))
        return b"".join(out)

    def unpack(self, data: bytes) -> dict[str, Any]:
        """Point name -> value (``None`` where missing); raises :class:`LinkRejected`.

        One :mod:`struct` call per run of fixed-size points (the ground decodes every packet).
        """
        if len(data) < 2:
            raise LinkRejected(Failure.MALFORMED, "TM[3,25] shorter than its structure id")
        sid = data[0] << 8 | data[1]
        if sid != self.structure_id:
            raise LinkRejected(Failure.MALFORMED, f"TM[3,25] structure {sid}, expected {self.structure_id}")
        offset = 2
        values: list[Any] = []
        try:
            for segment in self._segments:
                if segment is None:
                    length = data[offset]
                    end = offset + 1 + length
                    if end > len(data):
                        msg = f"string of {length} bytes at {offset} runs past the end"
                        raise struct.error(msg)
                    values.append(data[offset + 1 : end].decode("utf-8"))
                    offset = end
                else:
                    layout, converters = segment
                    raw = layout.unpack_from(data, offset)
                    offset += layout.size
                    values.extend([convert(v) for convert, v in zip(converters, raw, strict=True)])
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise LinkRejected(Failure.MALFORMED, f"TM[3,25] of structure {sid} ends early: {exc}") from exc
        if offset != len(data):
            raise LinkRejected(Failure.LENGTH_MISMATCH, f"TM[3,25] has {len(data) - offset} bytes left over")
        return dict(zip(self.names, values, strict=True))


def _pack_value(kind: ArgType, value: Any) -> bytes:
    if kind is ArgType.STR:
        text = utf8_prefix("" if value is None else str(value), 255)
        return bytes((len(text),)) + text
    if kind is ArgType.BOOL:
        return bytes((MISSING_BOOL if value is None else int(bool(value)),))
    if kind is ArgType.INT:
        if isinstance(value, (bool, int)) and MISSING_INT < int(value) < 2**63:
            return struct.pack(">q", int(value))
        if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**63:
            return struct.pack(">q", int(value))
        return struct.pack(">q", MISSING_INT)
    try:
        number = float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        number = math.nan
    return struct.pack(">d", number)


def _float_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _int_or_none(value: int) -> int | None:
    return None if value == MISSING_INT else value


def _bool_or_none(value: int) -> bool | None:
    return None if value == MISSING_BOOL else bool(value)


#: How a fixed-size point's raw value reads back: its missing value as ``None``.
_MISSING_AS_NONE: Final[dict[ArgType, Callable[[Any], Any]]] = {
    ArgType.FLOAT: _float_or_none,
    ArgType.INT: _int_or_none,
    ArgType.BOOL: _bool_or_none,
}


def event_data(event_id: int, data: Mapping[str, Any]) -> bytes:
    """Source data of TM[5,x]: the event id and its data as one msgpack map."""
    packed: bytes = msgpack.packb(dict(data), use_bin_type=True, default=str)
    return struct.pack(">H", event_id) + packed


def parse_event(data: bytes) -> tuple[int, dict[str, Any]]:
    """Inverse of :func:`event_data`; raises :class:`LinkRejected`."""
    if len(data) < 2:
        raise LinkRejected(Failure.MALFORMED, "TM[5,x] shorter than its event id")
    (event_id,) = struct.unpack_from(">H", data)
    try:
        payload = msgpack.unpackb(data[2:], raw=False, strict_map_key=False) if len(data) > 2 else {}
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise LinkRejected(Failure.MALFORMED, f"TM[5,x] data is not msgpack: {type(exc).__name__}") from exc
    if not isinstance(payload, dict):
        raise LinkRejected(Failure.MALFORMED, "TM[5,x] data is not a map")
    return event_id, payload
