"""Telemetry as the ground receives it: one packet in, one :class:`Packet` record out.

:class:`TelemetryDecoder` turns the bytes of one PUS-C TM packet into a :class:`Packet`:
header fields, the packet's UTC time, the process of its APID, and its content decoded
against the mission database (housekeeping values, an event's name and data, a
verification report). It never raises: a packet that does not decode is still a record
(``kind = "invalid"``, with the reason), so the archive keeps every packet received.

Decoding is on the ground's hot path (the archive ingests tens of thousands of packets a
second), so the common case is read with precompiled :mod:`struct` layouts; anything the
fast path does not recognise goes to :func:`fsw.spacelink.decode_tm`, the reference, and
the tests check both agree on every packet the fast path accepts.
"""

from __future__ import annotations

import binascii
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fsw.dictionary import ArgType, EventDef, Point
from fsw.errors import LinkRejected
from fsw.spacelink import (
    MISSING_BOOL,
    MISSING_INT,
    TIMESTAMP_LEN,
    TM_HOUSEKEEPING,
    TM_PONG,
    UNDECLARED_EVENT,
    Failure,
    Telemetry,
    decode_tm,
    parse_event,
    parse_verification,
)
from ground.mission import MissionDatabase

#: Packet kinds of the archive, by PUS service.
HK: Final = "hk"
EVENT: Final = "event"
VERIFICATION: Final = "verification"
PONG: Final = "pong"
OTHER: Final = "other"
INVALID: Final = "invalid"

#: Verification stage of each TM[1,x] subtype.
STAGES: Final = {
    1: "accepted",
    2: "rejected",
    3: "started",
    4: "start_failed",
    7: "completed",
    8: "failed",
}
#: Stages after which a telecommand has its final outcome.
FINAL_STAGES: Final = frozenset({"rejected", "start_failed", "completed", "failed"})

#: Event severity of each TM[5,x] subtype, for events the dictionary does not know.
SUBTYPE_SEVERITIES: Final = {1: "info", 2: "warning", 3: "error", 4: "critical"}

#: Days from the CDS epoch (1958-01-01) to the Unix epoch.
_CDS_DAYS_TO_UNIX: Final = 4383
#: P-field of the CDS short time code the link uses (no extension, 16-bit days, ms of day).
_CDS_P_FIELD: Final = 0x40
_HEADER: Final = struct.Struct(">HHHBBBHHBHI")
_HEADER_LEN: Final = 6 + 7 + TIMESTAMP_LEN  # primary, PUS-C TM secondary, CDS time stamp
_MIN_TM: Final = _HEADER_LEN + 2


def fast_decode_tm(packet: bytes) -> Telemetry:
    """:func:`fsw.spacelink.decode_tm`, quicker on well-formed packets; raises :class:`LinkRejected`.

    Reads the headers with one :mod:`struct` call and checks the CRC-16-CCITT with
    :func:`binascii.crc_hqx`; a packet that is not a plain PUS-C TM with a CDS short
    time stamp goes to the reference decoder for its verdict.
    """
    size = len(packet)
    if size >= _MIN_TM:
        (packet_id, seq_ctrl, length, pus, service, subtype, counter, _dest, p_field, days, ms) = (
            _HEADER.unpack_from(packet)
        )
        if (
            size == length + 7
            and packet_id >> 11 == 0b00001  # version 0, TM, secondary header
            and pus >> 4 == 2
            and p_field == _CDS_P_FIELD
            and binascii.crc_hqx(packet, 0xFFFF) == 0
        ):
            return Telemetry(
                apid=packet_id & 0x7FF,
                service=service,
                subtype=subtype,
                seq_count=seq_ctrl & 0x3FFF,
                message_counter=counter,
                unix_s=(days - _CDS_DAYS_TO_UNIX) * 86400.0 + ms / 1000.0,
                data=packet[_HEADER_LEN:-2],
            )
    return decode_tm(packet)


# ----------------------------------------------------------------- housekeeping layouts

_FORMAT_CHARS: Final = {ArgType.FLOAT: "d", ArgType.INT: "q", ArgType.BOOL: "B"}


def _float(value: float) -> float | None:
    return None if value != value else value  # NaN is the missing value  # noqa: PLR0124


def _int(value: int) -> int | None:
    return None if value == MISSING_INT else value


def _bool(value: int) -> bool | None:
    return None if value == MISSING_BOOL else bool(value)


_CONVERTERS: Final[dict[ArgType, Callable[[Any], Any]]] = {
    ArgType.FLOAT: _float,
    ArgType.INT: _int,
    ArgType.BOOL: _bool,
}


class CompiledLayout:
    """The TM[3,25] layout of one APID, read with one :mod:`struct` call per run of fixed-size points.

    The same bytes as :class:`fsw.spacelink.HousekeepingLayout` (the tests check both agree):
    the structure id (u16), then every point in dictionary order.
    """

    def __init__(self, structure_id: int, points: Sequence[Point]) -> None:
        self.structure_id = structure_id
        self.points = tuple(points)
        self.names = tuple(p.name for p in self.points)
        #: Runs of fixed-size points (a Struct and their converters), and strings between them.
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
                chars.append(_FORMAT_CHARS[point.type])
                converters.append(_CONVERTERS[point.type])
        if chars:
            self._segments.append((struct.Struct(">" + "".join(chars)), tuple(converters)))

    def unpack(self, data: bytes) -> dict[str, Any]:
        """Point name -> value (``None`` where missing); raises :class:`LinkRejected`."""
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


# ----------------------------------------------------------------- packets


@dataclass(slots=True)
class Packet:
    """One telemetry packet received, decoded as far as it goes.

    ``unix_s`` is the packet's own time stamp (UTC), ``received_s`` the ground's wall clock
    (UTC) when it arrived. ``kind`` is one of ``hk``, ``event``, ``verification``, ``pong``,
    ``other`` (a service the ground does not interpret) or ``invalid`` (``error`` says why;
    header fields are then ``None``). ``content`` is the decoded content:

    * ``hk``: point name -> value;
    * ``event``: ``{"name", "severity", "data"}``;
    * ``verification``: ``{"request" (hex), "stage", "ok", "code", "failure", "reason"}``;
    * otherwise empty.
    """

    raw: bytes
    received_s: float
    kind: str
    apid: int | None = None
    service: int | None = None
    subtype: int | None = None
    seq_count: int | None = None
    unix_s: float | None = None
    source: str | None = None
    name: str | None = None
    content: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    #: Row id in the archive, once written.
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The packet as JSON-able data (``raw`` as hex)."""
        return {
            "id": self.id,
            "received_s": self.received_s,
            "unix_s": self.unix_s,
            "kind": self.kind,
            "apid": self.apid,
            "service": self.service,
            "subtype": self.subtype,
            "seq_count": self.seq_count,
            "source": self.source,
            "name": self.name,
            "content": self.content,
            "error": self.error,
            "raw": self.raw.hex(),
        }


def failure_name(code: int | None) -> str:
    """The :class:`Failure` name of ``code`` (``""`` for none, the number for an unknown one)."""
    if code is None:
        return ""
    try:
        return Failure(code).name
    except ValueError:
        return str(code)


class TelemetryDecoder:
    """Decodes packets against one :class:`~ground.mission.MissionDatabase`; counts what it saw.

    ``counts`` maps kind -> packets; ``unknown_apids`` counts packets from APIDs the
    database does not have (archived with ``source = None`` and their raw content).
    """

    def __init__(self, mission: MissionDatabase) -> None:
        self.mission = mission
        self.layouts = {
            apid: CompiledLayout(apid, mission.points_of(name)) for name, apid in mission.apids.items()
        }
        self.events: dict[int, tuple[EventDef, ...]] = {
            apid: mission.dictionaries[name].events
            for name, apid in mission.apids.items()
            if name in mission.dictionaries
        }
        self.counts: dict[str, int] = dict.fromkeys((HK, EVENT, VERIFICATION, PONG, OTHER, INVALID), 0)
        self.unknown_apids = 0

    def decode(self, raw: bytes, received_s: float) -> Packet:
        """The :class:`Packet` of ``raw``; never raises."""
        try:
            tm = fast_decode_tm(raw)
        except LinkRejected as exc:
            self.counts[INVALID] += 1
            return Packet(raw, received_s, INVALID, error=f"{failure_name(exc.code)}: {exc.reason}")
        source = self.mission.names.get(tm.apid)
        packet = Packet(
            raw,
            received_s,
            OTHER,
            tm.apid,
            tm.service,
            tm.subtype,
            tm.seq_count,
            tm.unix_s,
            source,
        )
        if source is None:
            self.unknown_apids += 1
        try:
            self._content(packet, tm)
        except LinkRejected as exc:
            packet.kind = INVALID
            packet.content = {}
            packet.error = f"{failure_name(exc.code)}: {exc.reason}"
        self.counts[packet.kind] += 1
        return packet

    def _content(self, packet: Packet, tm: Telemetry) -> None:
        service, subtype = tm.service, tm.subtype
        if (service, subtype) == TM_HOUSEKEEPING:
            layout = self.layouts.get(tm.apid)
            if layout is None:
                raise LinkRejected(Failure.UNKNOWN_APID, f"TM[3,25] from APID {tm.apid:#x}, not of this base")
            packet.kind, packet.name = HK, "hk"
            packet.content = layout.unpack(tm.data)
        elif service == 5 and subtype in SUBTYPE_SEVERITIES:
            event_id, data = parse_event(tm.data)
            defs = self.events.get(tm.apid, ())
            if event_id == UNDECLARED_EVENT and isinstance(data.get("event"), str):
                name = data.pop("event")
                severity = SUBTYPE_SEVERITIES[subtype]
            elif event_id < len(defs):
                name, severity = defs[event_id].name, defs[event_id].severity.value
            else:
                name, severity = f"event_{event_id}", SUBTYPE_SEVERITIES[subtype]
            packet.kind, packet.name = EVENT, name
            packet.content = {"name": name, "severity": severity, "data": data}
        elif service == 1 and subtype in STAGES:
            request, code, reason = parse_verification(tm.data)
            stage = STAGES[subtype]
            if (code is None) != (subtype in (1, 3, 7)):
                raise LinkRejected(Failure.MALFORMED, f"TM[1,{subtype}] of {len(tm.data)} bytes")
            packet.kind, packet.name = VERIFICATION, stage
            packet.content = {
                "request": request.hex(),
                "stage": stage,
                "ok": code is None,
                "code": code,
                "failure": failure_name(code),
                "reason": reason,
            }
        elif (service, subtype) == TM_PONG:
            if tm.data:
                raise LinkRejected(Failure.MALFORMED, f"TM[17,2] carries {len(tm.data)} bytes")
            packet.kind, packet.name = PONG, "pong"


def finite_or_none(value: Any) -> Any:
    """``value``, with a float that is not finite replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
