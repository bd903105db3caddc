"""XTCE 1.2 export of the ground link: packets, parameters and commands of the base.

``fsw ground export --xtce base.xml`` writes one document (OMG XTCE 1.2, namespace
:data:`XTCE_NAMESPACE`) that a ground system such as Yamcs or OpenC3 COSMOS can load to
decode the base's telemetry and encode its telecommands without lunar-fsw. The layouts are
those of :mod:`fsw.spacelink`; the document describes, it never invents:

* The root space system (the base's name) holds the packet headers shared by every APID:
  the CCSDS primary header and the PUS-C TM secondary header with its 7-byte CDS short time
  code (abstract containers ``CCSDS_TM`` and ``PUS_TM``), the verification reports TM[1,x]
  (request id, failure code as an enumeration of :class:`~fsw.spacelink.Failure`, reason),
  TM[17,2], and the abstract telecommands ``CCSDS_TC``, ``PUS_TC`` (with the security
  header: key id and sequence number) and ``TC_8_1``; the concrete ``TC_17_1``.
* One child space system per process with an APID, in APID order: a parameter (and its
  type, units and alarm ranges) per telemetry point, the ``Housekeeping`` container
  (TM[3,25] restricted on the APID, service, subtype and structure id = APID, then every
  point in dictionary order, exactly as :class:`~fsw.spacelink.HousekeepingLayout` packs
  them), the ``Events`` container (TM[5,x]: event id as an enumeration of the process's
  events, then the event's msgpack data as binary), and a meta-command per dictionary
  command (TC[8,1] to the process's APID).

Encodings, all big-endian: float points as IEEE-754 binary64, int points as 64-bit two's
complement, bool points as one byte enumerated ``false`` (0), ``true`` (1), ``missing``
(255); a str point is a one-byte length parameter ``<point>_length`` followed by that many
bytes of UTF-8. Missing values: NaN, -2**63, 255, an empty string. The dictionary's limits
become static alarm ranges: yellow limits the ``WarningRange``, red limits the
``CriticalRange`` (a value outside a range is in alarm, as the dictionary's ``Limits.state``
says).

A command's arguments travel as one msgpack map, spelled out here as fixed fields the
base's decoder accepts: the map header, then per argument (every argument is sent, a
dictionary default is its initial value) its name as a msgpack string, then its value:
float ``0xcb`` + binary64, int ``0xd3`` + int64, bool the byte ``0xc2`` (false) or
``0xc3`` (true), str ``0xd9`` + the length argument ``<arg>_length`` + UTF-8. Choices are
listed in each argument type's ancillary data ``choices``; ranges are valid ranges.
Critical commands have ``DefaultSignificance`` ``critical``: the base executes them only
after ``arm command=<name>`` to the same process within the arm window.

What XTCE cannot compute is left to the sender, as ground systems do for CCSDS: the packet
length (``CCSDS_PacketLength`` = bytes - 7), the sequence count, the security header
(``SDLS_KeyId``, ``SDLS_Sequence``: above every sequence number the base accepted under
that key), the ``SDLS_MAC`` trailer (HMAC-SHA256 of every byte before it, truncated to 16
bytes, with the key ``SDLS_KeyId`` of the deployment's key file) and the
``PacketErrorControl`` (CRC-16-CCITT, initial value 0xFFFF, of every byte before it).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import msgpack

from fsw.dictionary import Arg, ArgType, CommandDef, Dictionary, Limits, Point
from fsw.errors import ConfigError
from fsw.spacelink import (
    MAC_LEN,
    MISSING_BOOL,
    SECURITY_HEADER_LEN,
    TC_FUNCTION,
    TC_PING,
    TM_HOUSEKEEPING,
    TM_PONG,
    UNDECLARED_EVENT,
    Failure,
)

#: Namespace of XTCE 1.2 (OMG formal/18-10-04).
XTCE_NAMESPACE: Final = "http://www.omg.org/spec/XTCE/20180204"
#: Where the XTCE 1.2 schema is published (the document's ``xsi:schemaLocation``).
XTCE_SCHEMA: Final = "https://www.omg.org/spec/XTCE/20180204/SpaceSystem.xsd"
_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

#: Longest string a str point or argument carries (bytes of UTF-8, one length byte).
MAX_STRING_BYTES: Final = 255

#: Bytes of a TM packet before its source data: primary header, PUS-C TM secondary header, time.
_TM_HEADER_BYTES: Final = 6 + 7 + 7
#: Bytes of the packet error control at the end of every packet.
_CRC_BYTES: Final = 2

#: msgpack type tags of the fixed-width forms the command encoding uses.
MSGPACK_FLOAT64: Final = 0xCB
MSGPACK_INT64: Final = 0xD3
MSGPACK_FALSE: Final = 0xC2
MSGPACK_TRUE: Final = 0xC3
MSGPACK_STR8: Final = 0xD9

#: Verification reports: subtype -> (container name, failure report?).
_VERIFICATION: Final = {
    1: ("TM_1_1_AcceptanceSuccess", False),
    2: ("TM_1_2_AcceptanceFailure", True),
    3: ("TM_1_3_StartSuccess", False),
    4: ("TM_1_4_StartFailure", True),
    7: ("TM_1_7_CompletionSuccess", False),
    8: ("TM_1_8_CompletionFailure", True),
}


def _tag(name: str) -> str:
    """Elements are built unqualified; the root declares XTCE as the default namespace."""
    return name


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    """A child ``tag`` of ``parent`` with ``attrs`` (empty ones left out) and ``text``."""
    element = ET.SubElement(parent, _tag(tag), {k: v for k, v in attrs.items() if v != ""})
    if text is not None:
        element.text = text
    return element


def _number(value: float) -> str:
    """A limit or range as XML text: integral values without a fraction."""
    if float(value).is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(float(value))


def _hex(data: bytes) -> str:
    return data.hex() if data else "00"


class _Names:
    """Names of one space system's parameters (or arguments and types), each unique."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)

    def unique(self, wanted: str) -> str:
        name = wanted
        while name in self._taken:
            name += "_"
        self._taken.add(name)
        return name


# ----------------------------------------------------------------- types


def _integer_encoding(parent: ET.Element, bits: int, *, signed: bool = False) -> ET.Element:
    return _sub(
        parent,
        "IntegerDataEncoding",
        sizeInBits=str(bits),
        encoding="twosComplement" if signed else "unsigned",
        byteOrder="mostSignificantByteFirst",
    )


def _unsigned_type(type_set: ET.Element, name: str, bits: int, description: str = "") -> None:
    kind = _sub(type_set, "IntegerParameterType", name=name, signed="false", sizeInBits=str(bits))
    if description:
        kind.set("shortDescription", description)
    _integer_encoding(kind, bits)


def _unsigned_arg_type(type_set: ET.Element, name: str, bits: int) -> None:
    kind = _sub(type_set, "IntegerArgumentType", name=name, signed="false", sizeInBits=str(bits))
    _integer_encoding(kind, bits)
    ranges = _sub(kind, "ValidRangeSet")
    _sub(ranges, "ValidRange", minInclusive="0", maxInclusive=str(2**bits - 1))


def _unit_set(parent: ET.Element, unit: str) -> None:
    units = _sub(parent, "UnitSet")
    if unit:
        _sub(units, "Unit", unit, description=unit)


def _enumeration(parent: ET.Element, labels: Iterable[tuple[int, str]]) -> None:
    listing = _sub(parent, "EnumerationList")
    for value, label in labels:
        _sub(listing, "Enumeration", value=str(value), label=label)


def _alarm(parent: ET.Element, limits: Limits | None) -> None:
    """Static alarm ranges of ``limits``: in range is nominal, outside is in alarm."""
    if limits is None:
        return
    ranges: list[tuple[str, float | None, float | None]] = [
        ("WarningRange", limits.yellow_low, limits.yellow_high),
        ("CriticalRange", limits.red_low, limits.red_high),
    ]
    present = [(tag, low, high) for tag, low, high in ranges if low is not None or high is not None]
    if not present:
        return
    static = _sub(_sub(parent, "DefaultAlarm"), "StaticAlarmRanges")
    for tag, low, high in present:
        attrs = {}
        if low is not None:
            attrs["minInclusive"] = _number(low)
        if high is not None:
            attrs["maxInclusive"] = _number(high)
        _sub(static, tag, **attrs)


def _point_type(type_set: ET.Element, name: str, point: Point, length_ref: str) -> None:
    """The parameter type of one housekeeping point, as :class:`HousekeepingLayout` packs it."""
    description = point.description
    if point.type is ArgType.FLOAT:
        kind = _sub(type_set, "FloatParameterType", name=name, sizeInBits="64", shortDescription=description)
        _unit_set(kind, point.unit)
        _sub(kind, "FloatDataEncoding", sizeInBits="64", encoding="IEEE754_1985")
        _alarm(kind, point.limits)
    elif point.type is ArgType.INT:
        kind = _sub(
            type_set,
            "IntegerParameterType",
            name=name,
            signed="true",
            sizeInBits="64",
            shortDescription=description,
        )
        _unit_set(kind, point.unit)
        _integer_encoding(kind, 64, signed=True)
        _alarm(kind, point.limits)
    elif point.type is ArgType.BOOL:
        kind = _sub(type_set, "EnumeratedParameterType", name=name, shortDescription=description)
        _unit_set(kind, point.unit)
        _integer_encoding(kind, 8)
        _enumeration(kind, [(0, "false"), (1, "true"), (MISSING_BOOL, "missing")])
    else:
        kind = _sub(type_set, "StringParameterType", name=name, shortDescription=description)
        _unit_set(kind, point.unit)
        encoding = _sub(kind, "StringDataEncoding", encoding="UTF-8")
        _dynamic_size(
            _sub(encoding, "Variable", maxSizeInBits=str(8 * MAX_STRING_BYTES)),
            "ParameterInstanceRef",
            length_ref,
            slope=8,
        )


def _dynamic_size(parent: ET.Element, ref_tag: str, ref: str, *, slope: int, intercept: int = 0) -> None:
    dynamic = _sub(parent, "DynamicValue")
    if ref_tag == "ParameterInstanceRef":
        _sub(dynamic, ref_tag, parameterRef=ref, useCalibratedValue="false")
    else:
        _sub(dynamic, ref_tag, argumentRef=ref, useCalibratedValue="false")
    _sub(dynamic, "LinearAdjustment", slope=str(slope), intercept=str(intercept))


def _remaining_binary(type_set: ET.Element, name: str, length_ref: str, bytes_before: int, what: str) -> None:
    """A binary type filling the rest of a TM packet up to its CRC (size from the length field)."""
    kind = _sub(type_set, "BinaryParameterType", name=name, shortDescription=what)
    _unit_set(kind, "")
    encoding = _sub(kind, "BinaryDataEncoding")
    # bytes of the packet = CCSDS length field + 7
    _dynamic_size(
        _sub(encoding, "SizeInBits"),
        "ParameterInstanceRef",
        length_ref,
        slope=8,
        intercept=8 * (7 - bytes_before - _CRC_BYTES),
    )


# ----------------------------------------------------------------- containers


def _container(
    container_set: ET.Element,
    name: str,
    entries: Iterable[str],
    *,
    base: str = "",
    restriction: Iterable[tuple[str, int]] = (),
    abstract: bool = False,
    description: str = "",
) -> None:
    container = _sub(container_set, "SequenceContainer", name=name, shortDescription=description)
    if abstract:
        container.set("abstract", "true")
    entry_list = _sub(container, "EntryList")
    for ref in entries:
        _sub(entry_list, "ParameterRefEntry", parameterRef=ref)
    if base:
        base_element = _sub(container, "BaseContainer", containerRef=base)
        comparisons = list(restriction)
        if comparisons:
            listing = _sub(_sub(base_element, "RestrictionCriteria"), "ComparisonList")
            for ref, value in comparisons:
                _sub(listing, "Comparison", parameterRef=ref, value=str(value), comparisonOperator="==")


class _Root:
    """Absolute references into the root space system."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, item: str) -> str:
        return f"/{self.name}/{item}"


_TM_HEADER: Final = (
    ("CCSDS_Version", 3, "Packet version number (0)."),
    ("CCSDS_Type", 1, "Packet type: 0 telemetry, 1 telecommand."),
    ("CCSDS_SecHdrFlag", 1, "Secondary header flag (1: present)."),
    ("CCSDS_APID", 11, "Application process identifier: the process the packet is about."),
    ("CCSDS_SeqFlags", 2, "Sequence flags (3: unsegmented)."),
    ("CCSDS_SeqCount", 14, "Sequence count, per APID, as packets leave the base."),
    ("CCSDS_PacketLength", 16, "Bytes of the packet minus 7."),
)
_PUS_TM_HEADER: Final = (
    ("PUS_Version", 4, "PUS version number (2: PUS-C)."),
    ("PUS_TimeRefStatus", 4, "Spacecraft time reference status (0)."),
    ("PUS_Service", 8, "Service type."),
    ("PUS_Subtype", 8, "Message subtype."),
    ("PUS_MessageCounter", 16, "Message type counter (0)."),
    ("PUS_DestinationId", 16, "Destination id (0)."),
    ("CDS_PField", 8, "CDS short time code preamble (0x40: days since 1958-01-01, 16 bits, ms)."),
    ("CDS_Days", 16, "CDS day segment: days since 1958-01-01 (UTC)."),
    ("CDS_Milliseconds", 32, "CDS milliseconds of the day."),
)


def _root_telemetry(system: ET.Element, root: _Root) -> None:
    telemetry = _sub(system, "TelemetryMetaData")
    types = _sub(telemetry, "ParameterTypeSet")
    params = _sub(telemetry, "ParameterSet")
    containers = _sub(telemetry, "ContainerSet")
    headers = (*_TM_HEADER, *_PUS_TM_HEADER)
    for bits in sorted({bits for _, bits, _ in headers} | {16}):
        _unsigned_type(types, f"uint{bits}", bits)
    for name, bits, description in headers:
        _sub(params, "Parameter", name=name, parameterTypeRef=f"uint{bits}", shortDescription=description)
    for name, description in (
        ("PacketErrorControl", "CRC-16-CCITT (initial 0xFFFF) of every byte before it."),
        ("HK_StructureId", "Housekeeping structure id: the APID of the process."),
        ("Verification_PacketId", "Request id: packet id of the telecommand."),
        ("Verification_SequenceControl", "Request id: sequence control of the telecommand."),
    ):
        _sub(params, "Parameter", name=name, parameterTypeRef="uint16", shortDescription=description)
    failure_type = _sub(
        types, "EnumeratedParameterType", name="FailureCode", shortDescription="Why a telecommand failed."
    )
    _unit_set(failure_type, "")
    _integer_encoding(failure_type, 16)
    _enumeration(failure_type, [(int(code), code.name) for code in Failure])
    _sub(params, "Parameter", name="Verification_FailureCode", parameterTypeRef="FailureCode")
    reason = _sub(types, "StringParameterType", name="FailureReason", shortDescription="Failure reason.")
    _unit_set(reason, "")
    encoding = _sub(reason, "StringDataEncoding", encoding="UTF-8")
    _dynamic_size(
        _sub(encoding, "Variable", maxSizeInBits=str(8 * 200)),
        "ParameterInstanceRef",
        root("CCSDS_PacketLength"),
        slope=8,
        intercept=8 * (7 - _TM_HEADER_BYTES - 6 - _CRC_BYTES),
    )
    _sub(params, "Parameter", name="Verification_Reason", parameterTypeRef="FailureReason")

    _container(
        containers,
        "CCSDS_TM",
        [name for name, _, _ in _TM_HEADER],
        abstract=True,
        description="CCSDS space packet primary header.",
    )
    _container(
        containers,
        "PUS_TM",
        [name for name, _, _ in _PUS_TM_HEADER],
        base=root("CCSDS_TM"),
        restriction=[(root("CCSDS_Type"), 0), (root("CCSDS_SecHdrFlag"), 1)],
        abstract=True,
        description="PUS-C telemetry secondary header with a CDS short time code.",
    )
    _container(
        containers,
        "TM_3_25",
        ["HK_StructureId"],
        base=root("PUS_TM"),
        restriction=[(root("PUS_Service"), TM_HOUSEKEEPING[0]), (root("PUS_Subtype"), TM_HOUSEKEEPING[1])],
        abstract=True,
        description="Housekeeping parameter report (each process's own follows).",
    )
    for subtype, (name, failure) in _VERIFICATION.items():
        entries = ["Verification_PacketId", "Verification_SequenceControl"]
        if failure:
            entries += ["Verification_FailureCode", "Verification_Reason"]
        _container(
            containers,
            name,
            [*entries, "PacketErrorControl"],
            base=root("PUS_TM"),
            restriction=[(root("PUS_Service"), 1), (root("PUS_Subtype"), subtype)],
            description=f"TM[1,{subtype}] request verification.",
        )
    _container(
        containers,
        "TM_17_2_AreYouAliveReport",
        ["PacketErrorControl"],
        base=root("PUS_TM"),
        restriction=[(root("PUS_Service"), TM_PONG[0]), (root("PUS_Subtype"), TM_PONG[1])],
        description="TM[17,2] are-you-alive connection test report.",
    )


# ----------------------------------------------------------------- telecommands


def _meta_command(
    command_set: ET.Element,
    name: str,
    *,
    base: str = "",
    assignments: Iterable[tuple[str, str]] = (),
    arguments: Iterable[tuple[str, str, str | None]] = (),
    entries: Iterable[tuple[str, ...]] = (),
    base_container: str = "",
    abstract: bool = False,
    description: str = "",
    critical_reason: str = "",
) -> None:
    """One meta-command. ``entries``: ("arg", name) or ("fixed", name, hex, bits)."""
    command = _sub(command_set, "MetaCommand", name=name, shortDescription=description)
    if abstract:
        command.set("abstract", "true")
    if base:
        base_element = _sub(command, "BaseMetaCommand", metaCommandRef=base)
        assigned = list(assignments)
        if assigned:
            listing = _sub(base_element, "ArgumentAssignmentList")
            for arg, value in assigned:
                _sub(listing, "ArgumentAssignment", argumentName=arg, argumentValue=value)
    declared = list(arguments)
    if declared:
        listing = _sub(command, "ArgumentList")
        for arg, type_ref, initial in declared:
            element = _sub(listing, "Argument", name=arg, argumentTypeRef=type_ref)
            if initial is not None:
                element.set("initialValue", initial)
    container = _sub(command, "CommandContainer", name=f"{name}_Packet")
    entry_list = _sub(container, "EntryList")
    for entry in entries:
        if entry[0] == "arg":
            _sub(entry_list, "ArgumentRefEntry", argumentRef=entry[1])
        else:
            _, label, value, bits = entry
            _sub(entry_list, "FixedValueEntry", name=label, binaryValue=value, sizeInBits=bits)
    if base_container:
        _sub(container, "BaseContainer", containerRef=base_container)
    if critical_reason:
        _sub(command, "DefaultSignificance", consequenceLevel="critical", reasonForWarning=critical_reason)


def _root_commands(system: ET.Element, root: _Root) -> ET.Element:
    commands = _sub(system, "CommandMetaData")
    types = _sub(commands, "ArgumentTypeSet")
    for bits in (4, 8, 11, 14, 16, 32):
        _unsigned_arg_type(types, f"uint{bits}_arg", bits)
    for name, bits, what in (
        ("MAC", 8 * MAC_LEN, "HMAC-SHA256 of every byte before it, truncated to 16 bytes."),
        ("CRC", 16, "CRC-16-CCITT (initial 0xFFFF) of every byte before it."),
    ):
        kind = _sub(types, "BinaryArgumentType", name=f"{name}_arg", shortDescription=what)
        _unit_set(kind, "")
        _sub(_sub(_sub(kind, "BinaryDataEncoding"), "SizeInBits"), "FixedValue", str(bits))
    meta = _sub(commands, "MetaCommandSet")
    zero_mac = "00" * MAC_LEN
    _meta_command(
        meta,
        "CCSDS_TC",
        abstract=True,
        description="CCSDS space packet primary header of a telecommand.",
        arguments=[
            ("CCSDS_APID", "uint11_arg", None),
            ("CCSDS_SeqCount", "uint14_arg", "0"),
            ("CCSDS_PacketLength", "uint16_arg", "0"),
        ],
        entries=[
            ("fixed", "CCSDS_Version", "00", "3"),
            ("fixed", "CCSDS_Type", "01", "1"),
            ("fixed", "CCSDS_SecHdrFlag", "01", "1"),
            ("arg", "CCSDS_APID"),
            ("fixed", "CCSDS_SeqFlags", "03", "2"),
            ("arg", "CCSDS_SeqCount"),
            ("arg", "CCSDS_PacketLength"),
        ],
    )
    _meta_command(
        meta,
        "PUS_TC",
        base=root("CCSDS_TC"),
        abstract=True,
        description=(
            "PUS-C telecommand secondary header, then the security header (key id, sequence "
            f"number: {SECURITY_HEADER_LEN} bytes); the MAC and CRC trailers end every concrete command."
        ),
        arguments=[
            ("PUS_AckFlags", "uint4_arg", "15"),
            ("PUS_Service", "uint8_arg", None),
            ("PUS_Subtype", "uint8_arg", None),
            ("PUS_SourceId", "uint16_arg", "0"),
            ("SDLS_KeyId", "uint16_arg", None),
            ("SDLS_Sequence", "uint32_arg", None),
            ("SDLS_MAC", "MAC_arg", zero_mac),
            ("PacketErrorControl", "CRC_arg", "0000"),
        ],
        entries=[
            ("fixed", "PUS_Version", "02", "4"),
            ("arg", "PUS_AckFlags"),
            ("arg", "PUS_Service"),
            ("arg", "PUS_Subtype"),
            ("arg", "PUS_SourceId"),
            ("arg", "SDLS_KeyId"),
            ("arg", "SDLS_Sequence"),
        ],
        base_container=root("CCSDS_TC_Packet"),
    )
    _meta_command(
        meta,
        "TC_17_1",
        base=root("PUS_TC"),
        assignments=[("PUS_Service", str(TC_PING[0])), ("PUS_Subtype", str(TC_PING[1]))],
        description="TC[17,1] are-you-alive connection test (answered by TM[17,2]); any APID of the base.",
        entries=[("arg", "SDLS_MAC"), ("arg", "PacketErrorControl")],
        base_container=root("PUS_TC_Packet"),
    )
    _meta_command(
        meta,
        "TC_8_1",
        base=root("PUS_TC"),
        assignments=[("PUS_Service", str(TC_FUNCTION[0])), ("PUS_Subtype", str(TC_FUNCTION[1]))],
        abstract=True,
        description="TC[8,1] perform a function: flags (0), the command's name, its arguments as msgpack.",
        entries=[("fixed", "TC81_Flags", "00", "8")],
        base_container=root("PUS_TC_Packet"),
    )
    return meta


def _argument_type(types: ET.Element, name: str, arg: Arg, length_ref: str) -> None:
    description = arg.description
    if arg.type is ArgType.FLOAT:
        kind = _sub(types, "FloatArgumentType", name=name, sizeInBits="64", shortDescription=description)
        _choices(kind, arg)
        _unit_set(kind, arg.unit)
        _sub(kind, "FloatDataEncoding", sizeInBits="64", encoding="IEEE754_1985")
        _valid_range(kind, arg)
    elif arg.type is ArgType.INT:
        kind = _sub(
            types,
            "IntegerArgumentType",
            name=name,
            signed="true",
            sizeInBits="64",
            shortDescription=description,
        )
        _choices(kind, arg)
        _unit_set(kind, arg.unit)
        _integer_encoding(kind, 64, signed=True)
        _valid_range(kind, arg)
    elif arg.type is ArgType.BOOL:
        kind = _sub(types, "EnumeratedArgumentType", name=name, shortDescription=description)
        _unit_set(kind, arg.unit)
        _integer_encoding(kind, 8)
        _enumeration(kind, [(MSGPACK_FALSE, "false"), (MSGPACK_TRUE, "true")])
    else:
        kind = _sub(types, "StringArgumentType", name=name, shortDescription=description)
        _choices(kind, arg)
        _unit_set(kind, arg.unit)
        encoding = _sub(kind, "StringDataEncoding", encoding="UTF-8")
        _dynamic_size(
            _sub(encoding, "Variable", maxSizeInBits=str(8 * MAX_STRING_BYTES)),
            "ArgumentInstanceRef",
            length_ref,
            slope=8,
        )


def _choices(kind: ET.Element, arg: Arg) -> None:
    if arg.choices is None:
        return
    ancillary = _sub(kind, "AncillaryDataSet")
    _sub(ancillary, "AncillaryData", "|".join(str(c) for c in arg.choices), name="choices")


def _valid_range(kind: ET.Element, arg: Arg) -> None:
    if arg.low is None and arg.high is None:
        return
    attrs = {}
    if arg.low is not None:
        attrs["minInclusive"] = _number(arg.low)
    if arg.high is not None:
        attrs["maxInclusive"] = _number(arg.high)
    _sub(_sub(kind, "ValidRangeSet"), "ValidRange", **attrs)


def _initial(arg: Arg) -> str | None:
    """The argument's initial value (its dictionary default) as XTCE text; ``None`` if required."""
    if arg.required:
        return None
    value = arg.default
    if arg.type is ArgType.BOOL:
        return "true" if value else "false"
    if arg.type is ArgType.FLOAT:
        return _number(float(value))
    return str(value)


def _function_command(
    meta: ET.Element, types: ET.Element, type_names: _Names, root: _Root, apid: int, command: CommandDef
) -> None:
    """The meta-command of one dictionary command: TC[8,1] to ``apid``."""
    name = command.name.encode("ascii")
    entries: list[tuple[str, ...]] = [
        ("fixed", "TC81_NameLength", f"{len(name):02x}", "8"),
        ("fixed", "TC81_Name", _hex(name), str(8 * len(name))),
    ]
    header: bytes = msgpack.Packer().pack_map_header(len(command.args))
    entries.append(("fixed", "TC81_ArgumentMap", _hex(header), str(8 * len(header))))
    arg_names = _Names(a.name for a in command.args)
    arguments: list[tuple[str, str, str | None]] = []
    for arg in command.args:
        key: bytes = msgpack.packb(arg.name, use_bin_type=True)
        entries.append(("fixed", f"{arg.name}_key", _hex(key), str(8 * len(key))))
        type_name = type_names.unique(f"{command.name}_{arg.name}_Type")
        length_arg = arg_names.unique(f"{arg.name}_length") if arg.type is ArgType.STR else ""
        _argument_type(types, type_name, arg, length_arg)
        if arg.type is ArgType.FLOAT:
            entries.append(("fixed", f"{arg.name}_tag", f"{MSGPACK_FLOAT64:02x}", "8"))
        elif arg.type is ArgType.INT:
            entries.append(("fixed", f"{arg.name}_tag", f"{MSGPACK_INT64:02x}", "8"))
        elif arg.type is ArgType.STR:
            entries.append(("fixed", f"{arg.name}_tag", f"{MSGPACK_STR8:02x}", "8"))
            initial = _initial(arg)
            length_initial = None if initial is None else str(len(initial.encode("utf-8")))
            arguments.append((length_arg, root("uint8_arg"), length_initial))
            entries.append(("arg", length_arg))
        arguments.append((arg.name, type_name, _initial(arg)))
        entries.append(("arg", arg.name))
    entries += [("arg", "SDLS_MAC"), ("arg", "PacketErrorControl")]
    critical = (
        f"critical: send 'arm command={command.name}' to this process first; it executes only within "
        "the arm window, once"
        if command.critical
        else ""
    )
    _meta_command(
        meta,
        command.name,
        base=root("TC_8_1"),
        assignments=[("CCSDS_APID", str(apid))],
        arguments=arguments,
        entries=entries,
        base_container=root("TC_8_1_Packet"),
        description=command.description,
        critical_reason=critical,
    )


# ----------------------------------------------------------------- processes


def _process_system(
    parent: ET.Element, root: _Root, process: str, apid: int, dictionary: Dictionary | None
) -> None:
    system = _sub(parent, "SpaceSystem", name=process, shortDescription=f"Process {process}, APID {apid}.")
    telemetry = _sub(system, "TelemetryMetaData")
    types = _sub(telemetry, "ParameterTypeSet")
    params = _sub(telemetry, "ParameterSet")
    containers = _sub(telemetry, "ContainerSet")
    points = dictionary.telemetry if dictionary is not None else ()
    events = dictionary.events if dictionary is not None else ()
    names = _Names(p.name for p in points)
    type_names = _Names()
    entries: list[str] = []
    for point in points:
        type_name = type_names.unique(f"{point.name}_Type")
        length = ""
        if point.type is ArgType.STR:
            length = names.unique(f"{point.name}_length")
            length_type = type_names.unique(f"{point.name}_length_Type")
            _unsigned_type(types, length_type, 8, f"Bytes of {point.name} (UTF-8).")
            _sub(params, "Parameter", name=length, parameterTypeRef=length_type)
            entries.append(length)
        _point_type(types, type_name, point, length)
        _sub(
            params,
            "Parameter",
            name=point.name,
            parameterTypeRef=type_name,
            shortDescription=point.description,
        )
        entries.append(point.name)
    if dictionary is not None:
        _container(
            containers,
            "Housekeeping",
            [*entries, root("PacketErrorControl")],
            base=root("TM_3_25"),
            restriction=[(root("CCSDS_APID"), apid), (root("HK_StructureId"), apid)],
            description=f"TM[3,25] housekeeping of {process}: every point in dictionary order.",
        )
    event_type = type_names.unique("EventId_Type")
    kind = _sub(types, "EnumeratedParameterType", name=event_type, shortDescription="Event id.")
    _unit_set(kind, "")
    _integer_encoding(kind, 16)
    _enumeration(kind, [*((i, e.name) for i, e in enumerate(events)), (UNDECLARED_EVENT, "undeclared")])
    event_id = names.unique("EventId")
    _sub(params, "Parameter", name=event_id, parameterTypeRef=event_type)
    data_type = type_names.unique("EventData_Type")
    _remaining_binary(
        types,
        data_type,
        root("CCSDS_PacketLength"),
        _TM_HEADER_BYTES + 2,
        "The event's data: one msgpack map (an undeclared event has its name in 'event').",
    )
    event_data = names.unique("EventData")
    _sub(params, "Parameter", name=event_data, parameterTypeRef=data_type)
    _container(
        containers,
        "Events",
        [event_id, event_data, root("PacketErrorControl")],
        base=root("PUS_TM"),
        restriction=[(root("CCSDS_APID"), apid), (root("PUS_Service"), 5)],
        description=(
            f"TM[5,x] events of {process}; the subtype is the severity "
            "(1 debug and info, 2 warning, 3 error, 4 critical)."
        ),
    )
    if dictionary is None or not dictionary.commands:
        return
    commands = _sub(system, "CommandMetaData")
    arg_types = _sub(commands, "ArgumentTypeSet")
    meta = _sub(commands, "MetaCommandSet")
    arg_type_names = _Names()
    for command in dictionary.commands:
        _function_command(meta, arg_types, arg_type_names, root, apid, command)


def _document(
    dictionaries: Mapping[str, Dictionary], apids: Mapping[str, int], *, name: str = "lunar-base"
) -> ET.Element:
    """The root ``SpaceSystem`` of a base's XTCE document (unqualified names, see :func:`_tag`).

    Every process of ``apids`` gets a space system (events only for one without a
    dictionary); a process with a dictionary but no APID is not on the link and is left
    out. Raises :class:`ConfigError` for a name XTCE does not allow.
    """
    for text in (name, *apids):
        if not text or any(c in text for c in "./:[] "):
            msg = f"{text!r} cannot be an XTCE name (no '.', '/', ':', '[', ']' or spaces)"
            raise ConfigError(msg)
    root = _Root(name)
    system = ET.Element(_tag("SpaceSystem"), {"name": name})
    system.set("xmlns", XTCE_NAMESPACE)
    system.set("xmlns:xsi", _XSI)
    system.set("xsi:schemaLocation", f"{XTCE_NAMESPACE} {XTCE_SCHEMA}")
    system.set(
        "shortDescription",
        f"Ground link of {name}: CCSDS space packets, PUS-C services, authenticated telecommands.",
    )
    _sub(system, "Header", validationStatus="Working", version="1")
    _root_telemetry(system, root)
    _root_commands(system, root)
    for process, apid in sorted(apids.items(), key=lambda item: item[1]):
        _process_system(system, root, process, apid, dictionaries.get(process))
    return system


def xtce_text(
    dictionaries: Mapping[str, Dictionary], apids: Mapping[str, int], *, name: str = "lunar-base"
) -> str:
    """The XTCE document of a base as indented XML text (see :func:`_document`).

    Raises :class:`ConfigError` for a name XTCE does not allow.
    """
    element = _document(dictionaries, apids, name=name)
    ET.indent(element)
    body = ET.tostring(element, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def export_xtce(
    dictionaries: Mapping[str, Dictionary],
    apids: Mapping[str, int],
    path: str | Path,
    *,
    name: str = "lunar-base",
) -> None:
    """Write the XTCE document of a base to ``path`` (replaced whole: written aside, then renamed).

    Raises :class:`ConfigError` if it cannot be written or a name is not allowed in XTCE.
    """
    target = Path(path)
    text = xtce_text(dictionaries, apids, name=name)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        msg = f"cannot write {target}: {exc.strerror}"
        raise ConfigError(msg) from exc


__all__ = [
    "MAX_STRING_BYTES",
    "XTCE_NAMESPACE",
    "export_xtce",
    "xtce_text",
]
