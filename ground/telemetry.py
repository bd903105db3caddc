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
from dataclasses import dataclass, field
from typing import Any, Final

from fsw.dictionary import EventDef
from fsw.errors import LinkRejected
from fsw.spacelink import (
    TIMESTAMP_LEN,
    TM_HOUSEKEEPING,
    TM_PONG,
    UNDECLARED_EVENT,
    Failure,
    HousekeepingLayout,
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
            apid: HousekeepingLayout(apid, mission.points_of(name)) for name, apid in mission.apids.items()
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
