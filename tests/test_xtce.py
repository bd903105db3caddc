"""The XTCE export, checked by decoding the base's real packets with the document alone.

A small XTCE interpreter below walks the document as a ground system would (container
inheritance with restriction criteria, parameter types and their encodings, meta-command
inheritance with argument assignments); it knows nothing of :mod:`fsw.spacelink`. Real
packets built by the flight code's encoders must decode to the values they carry, every
bit accounted for, and telecommands built from the document must pass the base's own
parser, MAC check and service decoder.
"""

from __future__ import annotations

import binascii
import math
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import msgpack
import pytest

from fsw.cli import main
from fsw.deployment import load_default
from fsw.dictionary import ArgType, CommandDef
from fsw.spacelink import (
    MAC_LEN,
    MISSING_INT,
    UNDECLARED_EVENT,
    Failure,
    HousekeepingLayout,
    decode_service,
    encode_tm,
    event_data,
    mac,
    parse_tc,
    verification_data,
    verify_mac,
)
from ground.mission import MissionDatabase
from ground.xtce import XTCE_NAMESPACE, export_xtce

NS = f"{{{XTCE_NAMESPACE}}}"
ROOT = "/lunar-base"
T0 = 1_900_000_000.25
KEY = bytes(range(32))


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def entries(container: ET.Element) -> list[ET.Element]:
    entry_list = container.find(NS + "EntryList")
    return [] if entry_list is None else list(entry_list)


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.number = int.from_bytes(data, "big")
        self.size = 8 * len(data)
        self.pos = 0

    def uint(self, bits: int) -> int:
        if self.pos + bits > self.size:
            raise ValueError(f"read of {bits} bits at {self.pos} runs past {self.size}")
        value = (self.number >> (self.size - self.pos - bits)) & ((1 << bits) - 1)
        self.pos += bits
        return value

    def raw(self, bits: int) -> bytes:
        if bits % 8 or self.pos % 8:
            raise ValueError("unaligned byte field")
        start = self.pos // 8
        if self.pos + bits > self.size:
            raise ValueError(f"read of {bits} bits at {self.pos} runs past {self.size}")
        self.pos += bits
        return self.data[start : start + bits // 8]


class BitWriter:
    def __init__(self) -> None:
        self.number = 0
        self.bits = 0

    def uint(self, value: int, bits: int) -> None:
        if not 0 <= value < (1 << bits):
            raise ValueError(f"{value} does not fit {bits} bits")
        self.number = (self.number << bits) | value
        self.bits += bits

    def raw(self, data: bytes) -> None:
        self.uint(int.from_bytes(data, "big"), 8 * len(data))

    def value(self) -> bytes:
        if self.bits % 8:
            raise ValueError(f"{self.bits} bits is not whole bytes")
        return self.number.to_bytes(self.bits // 8, "big")


class Xtce:
    """Just enough XTCE to decode telemetry and encode telecommands from a document."""

    KINDS = (
        ("ptype", "TelemetryMetaData/ParameterTypeSet/*"),
        ("param", "TelemetryMetaData/ParameterSet/Parameter"),
        ("container", "TelemetryMetaData/ContainerSet/SequenceContainer"),
        ("atype", "CommandMetaData/ArgumentTypeSet/*"),
        ("command", "CommandMetaData/MetaCommandSet/MetaCommand"),
    )

    def __init__(self, root: ET.Element) -> None:
        self.root = root
        self.items: dict[tuple[str, str], tuple[ET.Element, str]] = {}
        self.systems: dict[str, ET.Element] = {}
        self._walk(root, "")

    def _walk(self, system: ET.Element, parent: str) -> None:
        path = f"{parent}/{system.get('name')}"
        self.systems[path] = system
        for kind, where in self.KINDS:
            for element in system.findall(
                "/".join(NS + part for part in where.split("/")).replace(NS + "*", "*")
            ):
                key = (kind, f"{path}/{element.get('name')}")
                assert key not in self.items, f"{kind} {key[1]} declared twice"
                self.items[key] = (element, path)
        for child in system.findall(NS + "SpaceSystem"):
            self._walk(child, path)

    def path(self, ref: str, where: str) -> str:
        return ref if ref.startswith("/") else f"{where}/{ref}"

    def get(self, kind: str, ref: str, where: str) -> tuple[ET.Element, str, str]:
        path = self.path(ref, where)
        element, system = self.items[(kind, path)]
        return element, system, path

    # --------------------------------------------------------- telemetry

    def decode(self, packet: bytes) -> tuple[list[str], dict[str, Any], int]:
        """Containers matched (root first), parameter values by path, bits consumed."""
        reader = BitReader(packet)
        values: dict[str, Any] = {}
        current = f"{ROOT}/CCSDS_TM"
        chain = []
        while True:
            container, where, _ = self.get("container", current, "")
            for entry in entries(container):
                assert local(entry.tag) == "ParameterRefEntry"
                param, param_where, param_path = self.get("param", entry.get("parameterRef", ""), where)
                kind, kind_where, _ = self.get("ptype", param.get("parameterTypeRef", ""), param_where)
                values[param_path] = self._read(kind, kind_where, reader, values)
            chain.append(current)
            children = [
                path
                for (kind_name, path), (element, system) in self.items.items()
                if kind_name == "container" and self._extends(element, system, current, values)
            ]
            if not children:
                return chain, values, reader.pos
            assert len(children) == 1, f"{children} all match"
            current = children[0]

    def _extends(self, element: ET.Element, where: str, base: str, values: dict[str, Any]) -> bool:
        base_element = element.find(NS + "BaseContainer")
        if base_element is None or self.path(base_element.get("containerRef", ""), where) != base:
            return False
        for comparison in base_element.iter(NS + "Comparison"):
            assert comparison.get("comparisonOperator", "==") == "=="
            value = values.get(self.path(comparison.get("parameterRef", ""), where))
            if str(value) != comparison.get("value"):
                return False
        return True

    def _size(self, dynamic: ET.Element, where: str, values: dict[str, Any]) -> int:
        ref = dynamic.find(NS + "ParameterInstanceRef")
        if ref is not None:
            base = values[self.path(ref.get("parameterRef", ""), where)]
        else:
            arg_ref = dynamic.find(NS + "ArgumentInstanceRef")
            assert arg_ref is not None
            base = values[arg_ref.get("argumentRef", "")]
        adjustment = dynamic.find(NS + "LinearAdjustment")
        assert adjustment is not None
        return int(base) * int(adjustment.get("slope", "1")) + int(adjustment.get("intercept", "0"))

    def _read(self, kind: ET.Element, where: str, reader: BitReader, values: dict[str, Any]) -> Any:
        name = local(kind.tag)
        integer = kind.find(NS + "IntegerDataEncoding")
        if integer is not None:
            bits = int(integer.get("sizeInBits", "0"))
            assert integer.get("byteOrder", "mostSignificantByteFirst") == "mostSignificantByteFirst"
            raw = reader.uint(bits)
            if integer.get("encoding") == "twosComplement" and raw >= 1 << (bits - 1):
                raw -= 1 << bits
            if name.startswith("Enumerated"):
                labels = {int(e.get("value", "")): e.get("label") for e in kind.iter(NS + "Enumeration")}
                return labels[raw]
            return raw
        floating = kind.find(NS + "FloatDataEncoding")
        if floating is not None:
            assert floating.get("sizeInBits") == "64"
            assert floating.get("encoding") == "IEEE754_1985"
            return struct.unpack(">d", reader.raw(64))[0]
        string = kind.find(NS + "StringDataEncoding")
        if string is not None:
            variable = string.find(NS + "Variable")
            assert variable is not None
            dynamic = variable.find(NS + "DynamicValue")
            assert dynamic is not None
            bits = self._size(dynamic, where, values)
            assert 0 <= bits <= int(variable.get("maxSizeInBits", "0"))
            return reader.raw(bits).decode(string.get("encoding", "UTF-8"))
        binary = kind.find(NS + "BinaryDataEncoding")
        assert binary is not None, f"no encoding in {kind.get('name')}"
        size = binary.find(NS + "SizeInBits")
        assert size is not None
        fixed = size.find(NS + "FixedValue")
        if fixed is not None:
            return reader.raw(int(fixed.text or "0"))
        dynamic = size.find(NS + "DynamicValue")
        assert dynamic is not None
        return reader.raw(self._size(dynamic, where, values))

    # --------------------------------------------------------- telecommands

    def encode(self, command_path: str, given: dict[str, Any]) -> bytes:
        """The telecommand of ``command_path`` with argument values ``given`` (others: initial values)."""
        chain: list[tuple[ET.Element, str, str]] = []
        path = command_path
        while True:
            command, where, path = self.get("command", path, "")
            chain.append((command, where, path))
            base = command.find(NS + "BaseMetaCommand")
            if base is None:
                break
            path = self.path(base.get("metaCommandRef", ""), where)
        chain.reverse()
        types: dict[str, tuple[ET.Element, str]] = {}
        values: dict[str, Any] = {}
        for command, where, _ in chain:
            for argument in command.iter(NS + "Argument"):
                name = argument.get("name", "")
                kind, kind_where, _ = self.get("atype", argument.get("argumentTypeRef", ""), where)
                types[name] = (kind, kind_where)
                if argument.get("initialValue") is not None:
                    values[name] = argument.get("initialValue")
        for command, _, _ in chain:
            for assignment in command.iter(NS + "ArgumentAssignment"):
                values[assignment.get("argumentName", "")] = assignment.get("argumentValue")
        unknown = set(given) - set(types)
        assert not unknown, f"no arguments {unknown} in {command_path}"
        values.update(given)
        writer = BitWriter()
        previous = ""
        for command, where, _ in chain:
            container = command.find(NS + "CommandContainer")
            assert container is not None
            base_container = container.find(NS + "BaseContainer")
            if previous:
                assert base_container is not None
                assert self.path(base_container.get("containerRef", ""), where) == previous
            previous = f"{where}/{container.get('name')}"
            for entry in entries(container):
                if local(entry.tag) == "FixedValueEntry":
                    bits = int(entry.get("sizeInBits", "0"))
                    writer.uint(int(entry.get("binaryValue", ""), 16), bits)
                    continue
                assert local(entry.tag) == "ArgumentRefEntry"
                name = entry.get("argumentRef", "")
                kind, kind_where = types[name]
                self._write(kind, values[name], writer, values)
        return writer.value()

    def _write(self, kind: ET.Element, value: Any, writer: BitWriter, values: dict[str, Any]) -> None:
        name = local(kind.tag)
        integer = kind.find(NS + "IntegerDataEncoding")
        if integer is not None:
            bits = int(integer.get("sizeInBits", "0"))
            if name.startswith("Enumerated"):
                codes = {e.get("label"): int(e.get("value", "")) for e in kind.iter(NS + "Enumeration")}
                number = codes[str(value).lower() if isinstance(value, bool) else str(value)]
            else:
                number = int(value)
                valid = kind.find(f"{NS}ValidRangeSet/{NS}ValidRange")
                if valid is not None:
                    assert (
                        float(valid.get("minInclusive", "-inf"))
                        <= number
                        <= float(valid.get("maxInclusive", "inf"))
                    )
            if integer.get("encoding") == "twosComplement" and number < 0:
                number += 1 << bits
            writer.uint(number, bits)
            return
        if kind.find(NS + "FloatDataEncoding") is not None:
            writer.raw(struct.pack(">d", float(value)))
            return
        string = kind.find(NS + "StringDataEncoding")
        if string is not None:
            data = str(value).encode("utf-8")
            dynamic = string.find(f"{NS}Variable/{NS}DynamicValue")
            assert dynamic is not None
            assert self._size(dynamic, "", values) == 8 * len(data), "length argument disagrees"
            writer.raw(data)
            return
        fixed = kind.find(f"{NS}BinaryDataEncoding/{NS}SizeInBits/{NS}FixedValue")
        assert fixed is not None
        data = bytes.fromhex(str(value))
        assert 8 * len(data) == int(fixed.text or "0")
        writer.raw(data)


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mission() -> MissionDatabase:
    return MissionDatabase.from_deployment(load_default())


@pytest.fixture(scope="module")
def document(mission: MissionDatabase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("xtce") / "base.xml"
    export_xtce(mission.dictionaries, mission.apids, path)
    return path


@pytest.fixture(scope="module")
def xtce(document: Path) -> Xtce:
    return Xtce(ET.parse(document).getroot())


def on_link(mission: MissionDatabase) -> list[str]:
    return [name for name in mission.dictionaries if name in mission.apids]


def sample_values(layout: HousekeepingLayout, seed: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for index, point in enumerate(layout.points):
        pick = (index + seed) % 4
        if pick == 3:
            continue  # missing
        if point.type is ArgType.FLOAT:
            values[point.name] = -1.5e3 + 17.25 * index * (seed + 1)
        elif point.type is ArgType.INT:
            values[point.name] = (-1) ** index * (2**40 + index * 1001 + seed)
        elif point.type is ArgType.BOOL:
            values[point.name] = bool(pick % 2)
        else:
            values[point.name] = "état" * (index % 5 + seed)
    return values


def normalised(point_type: ArgType, value: Any) -> Any:
    """An XTCE-decoded raw value as HousekeepingLayout.unpack reports it (missing -> None)."""
    if point_type is ArgType.FLOAT:
        return None if math.isnan(value) else value
    if point_type is ArgType.INT:
        return None if value == MISSING_INT else value
    if point_type is ArgType.BOOL:
        return {"true": True, "false": False, "missing": None}[value]
    return value


# ----------------------------------------------------------------- the document


class TestDocument:
    def test_well_formed_xtce_namespace(self, document: Path) -> None:
        root = ET.parse(document).getroot()
        assert root.tag == f"{NS}SpaceSystem"
        assert root.get("name") == "lunar-base"
        assert all(element.tag.startswith(NS) for element in root.iter())
        assert document.read_text(encoding="utf-8").startswith('<?xml version="1.0" encoding="UTF-8"?>')

    def test_every_point_and_command_of_the_base(self, xtce: Xtce, mission: MissionDatabase) -> None:
        processes = on_link(mission)
        assert {"power", "thermal", "reactor", "comms", "protection"} <= set(processes)
        for process in processes:
            dictionary = mission.dictionaries[process]
            for point in dictionary.telemetry:
                assert ("param", f"{ROOT}/{process}/{point.name}") in xtce.items
            for command in dictionary.commands:
                element, _, _ = xtce.get("command", f"{ROOT}/{process}/{command.name}", "")
                significance = element.find(NS + "DefaultSignificance")
                if command.critical:
                    assert significance is not None
                    assert significance.get("consequenceLevel") == "critical"
                else:
                    assert significance is None
        for process in mission.apids:  # processes without a dictionary still have their events
            assert ("container", f"{ROOT}/{process}/Events") in xtce.items

    def test_limits_become_alarm_ranges(self, xtce: Xtce, mission: MissionDatabase) -> None:
        param, where, _ = xtce.get("param", f"{ROOT}/power/bus_voltage_v", "")
        kind, _, _ = xtce.get("ptype", param.get("parameterTypeRef", ""), where)
        limits = mission.point("power.bus_voltage_v").limits
        assert limits is not None
        warning = kind.find(f"{NS}DefaultAlarm/{NS}StaticAlarmRanges/{NS}WarningRange")
        critical = kind.find(f"{NS}DefaultAlarm/{NS}StaticAlarmRanges/{NS}CriticalRange")
        assert warning is not None
        assert critical is not None
        assert float(warning.get("minInclusive", "")) == limits.yellow_low
        assert float(warning.get("maxInclusive", "")) == limits.yellow_high
        assert float(critical.get("minInclusive", "")) == limits.red_low
        assert float(critical.get("maxInclusive", "")) == limits.red_high
        assert kind.findtext(f"{NS}UnitSet/{NS}Unit") == "V"
        soc, where, _ = xtce.get("param", f"{ROOT}/power/battery_soc", "")
        soc_type, _, _ = xtce.get("ptype", soc.get("parameterTypeRef", ""), where)
        soc_warning = soc_type.find(f"{NS}DefaultAlarm/{NS}StaticAlarmRanges/{NS}WarningRange")
        assert soc_warning is not None
        assert soc_warning.get("maxInclusive") is None  # no upper limit on that side

    def test_cli_export(self, tmp_path: Path, document: Path) -> None:
        out = tmp_path / "cli.xml"
        assert main(["ground", "export", "--xtce", str(out)]) == 0
        assert out.read_bytes() == document.read_bytes()


# ----------------------------------------------------------------- telemetry


class TestTelemetry:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_housekeeping_decodes_bit_exact(self, xtce: Xtce, mission: MissionDatabase, seed: int) -> None:
        for process in on_link(mission):
            apid = mission.apids[process]
            layout = HousekeepingLayout(apid, mission.points_of(process))
            data = layout.pack(sample_values(layout, seed) if seed else {})
            packet = encode_tm(apid, (3, 25), data, unix_s=T0 + seed, seq_count=100 + seed, message_counter=3)
            chain, values, bits = xtce.decode(packet)
            assert chain[-1] == f"{ROOT}/{process}/Housekeeping"
            assert bits == 8 * len(packet), f"{process}: the document's fields cover {bits // 8} bytes"
            assert values[f"{ROOT}/CCSDS_APID"] == apid
            assert values[f"{ROOT}/CCSDS_SeqCount"] == 100 + seed
            assert values[f"{ROOT}/CCSDS_PacketLength"] == len(packet) - 7
            assert values[f"{ROOT}/HK_StructureId"] == apid
            assert values[f"{ROOT}/CDS_PField"] == packet[13]
            assert values[f"{ROOT}/PacketErrorControl"] == int.from_bytes(packet[-2:], "big")
            days, millis = values[f"{ROOT}/CDS_Days"], values[f"{ROOT}/CDS_Milliseconds"]
            assert (days - 4383) * 86400 + millis / 1000 == pytest.approx(T0 + seed, abs=0.001)
            expected = layout.unpack(data)
            for point in layout.points:
                got = normalised(point.type, values[f"{ROOT}/{process}/{point.name}"])
                assert got == expected[point.name], f"{process}.{point.name}"

    def test_events_declared_and_not(self, xtce: Xtce, mission: MissionDatabase) -> None:
        reactor = mission.apids["reactor"]
        events = mission.dictionaries["reactor"].events
        for index, event in enumerate(events):
            packet = encode_tm(reactor, (5, 3), event_data(index, {"value": index}), unix_s=T0)
            chain, values, bits = xtce.decode(packet)
            assert chain[-1] == f"{ROOT}/reactor/Events"
            assert bits == 8 * len(packet)
            assert values[f"{ROOT}/reactor/EventId"] == event.name
            assert msgpack.unpackb(values[f"{ROOT}/reactor/EventData"]) == {"value": index}
        supervisor = mission.apids["supervisor"]
        packet = encode_tm(supervisor, (5, 2), event_data(UNDECLARED_EVENT, {"event": "restart"}), unix_s=T0)
        chain, values, bits = xtce.decode(packet)
        assert chain[-1] == f"{ROOT}/supervisor/Events"
        assert values[f"{ROOT}/supervisor/EventId"] == "undeclared"
        assert bits == 8 * len(packet)

    def test_verification_and_pong(self, xtce: Xtce, mission: MissionDatabase) -> None:
        request = bytes.fromhex("1813c005")
        comms = mission.apids["comms"]
        failed = encode_tm(
            comms, (1, 2), verification_data(request, Failure.BAD_MAC, "clé fausse"), unix_s=T0
        )
        chain, values, bits = xtce.decode(failed)
        assert chain[-1] == f"{ROOT}/TM_1_2_AcceptanceFailure"
        assert bits == 8 * len(failed)
        assert values[f"{ROOT}/Verification_FailureCode"] == "BAD_MAC"
        assert values[f"{ROOT}/Verification_Reason"] == "clé fausse"
        assert values[f"{ROOT}/Verification_PacketId"] == 0x1813
        done = encode_tm(comms, (1, 7), verification_data(request), unix_s=T0)
        chain, values, bits = xtce.decode(done)
        assert chain[-1] == f"{ROOT}/TM_1_7_CompletionSuccess"
        assert bits == 8 * len(done)
        pong = encode_tm(comms, (17, 2), b"", unix_s=T0)
        chain, _, bits = xtce.decode(pong)
        assert chain[-1] == f"{ROOT}/TM_17_2_AreYouAliveReport"
        assert bits == 8 * len(pong)


# ----------------------------------------------------------------- telecommands


def sample_args(command: CommandDef) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for arg in command.args:
        if arg.choices:
            args[arg.name] = arg.choices[-1]
        elif arg.type is ArgType.BOOL:
            args[arg.name] = True
        elif arg.type is ArgType.STR:
            args[arg.name] = "démarrage"
        else:
            low = arg.low if arg.low is not None else -7.0
            high = arg.high if arg.high is not None else low + 20.0
            middle = (low + high) / 2
            args[arg.name] = int(middle) if arg.type is ArgType.INT else middle + 0.125
    return args


def authenticated(xtce: Xtce, path: str, given: dict[str, Any]) -> bytes:
    """Fill in what XTCE leaves to the sender: length, MAC, CRC (as a ground system's hooks do)."""
    packet = xtce.encode(path, given)
    given = {**given, "CCSDS_PacketLength": len(packet) - 7}
    packet = xtce.encode(path, given)
    given["SDLS_MAC"] = mac(KEY, packet[: -(MAC_LEN + 2)]).hex()
    packet = xtce.encode(path, given)
    given["PacketErrorControl"] = f"{binascii.crc_hqx(packet[:-2], 0xFFFF):04x}"
    return xtce.encode(path, given)


class TestTelecommands:
    def test_every_command_built_from_the_document_passes_the_base(
        self, xtce: Xtce, mission: MissionDatabase
    ) -> None:
        sequence = 1000
        for process in on_link(mission):
            for command in mission.dictionaries[process].commands:
                sequence += 1
                args = sample_args(command)
                given: dict[str, Any] = {"CCSDS_SeqCount": sequence % 16384, "SDLS_KeyId": 2}
                given["SDLS_Sequence"] = sequence
                for arg in command.args:
                    given[arg.name] = args[arg.name]
                    if arg.type is ArgType.STR:
                        given[f"{arg.name}_length"] = len(str(args[arg.name]).encode("utf-8"))
                packet = authenticated(xtce, f"{ROOT}/{process}/{command.name}", given)
                raw = parse_tc(packet)
                verify_mac(raw, KEY)
                tc = decode_service(raw)
                assert raw.apid == mission.apids[process]
                assert (raw.service, raw.subtype) == (8, 1)
                assert (raw.security.key_id, raw.security.sequence) == (2, sequence)
                assert tc.command == command.name
                assert command.check(tc.args) == command.check(args), f"{process}.{command.name}"

    def test_defaults_are_initial_values(self, xtce: Xtce, mission: MissionDatabase) -> None:
        command = mission.command("simulator", "inject_fault")
        given = {
            "board": "power",
            "board_length": 5,
            "kind": "dust",
            "kind_length": 4,
            "SDLS_KeyId": 1,
            "SDLS_Sequence": 1,
        }
        tc = decode_service(parse_tc(authenticated(xtce, f"{ROOT}/simulator/inject_fault", given)))
        assert command.check(tc.args) == command.check({"board": "power", "kind": "dust"})

    def test_are_you_alive(self, xtce: Xtce, mission: MissionDatabase) -> None:
        apid = mission.apids["comms"]
        packet = authenticated(
            xtce, f"{ROOT}/TC_17_1", {"CCSDS_APID": apid, "SDLS_KeyId": 1, "SDLS_Sequence": 9}
        )
        raw = parse_tc(packet)
        verify_mac(raw, KEY)
        tc = decode_service(raw)
        assert (tc.service, tc.subtype, tc.command, tc.apid) == (17, 1, None, apid)
