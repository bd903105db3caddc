"""What the ground knows of the base: dictionaries, APIDs, the link's defaults.

A :class:`MissionDatabase` is built from the same deployment file the base runs (as
``fsw dict`` does): every process's full dictionary, the APID of each process (the
comms process's ``apids`` overrides, then :data:`fsw.spacelink.DEFAULT_APIDS`, then the
next free one), the housekeeping layout of each APID, and where the base's link and key
file are by default, so one host needs no flags.

Point names are ``<source>.<point>`` (``power.battery_soc``), as everywhere in lunar-fsw.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import CommandDef, Dictionary, Point
from fsw.errors import CommandRejected, ConfigError
from fsw.security import DEFAULT_KEY_FILE, resolve_key_path
from fsw.spacelink import link_apids

#: The comms process's UDP link port when its deployment does not name one.
DEFAULT_BASE_UDP: Final = "127.0.0.1:10025"
#: The simulated space link's ground port when its deployment does not name one.
DEFAULT_SPACELINK_UDP: Final = "127.0.0.1:10015"
#: Entry of the simulated space link process (a process whose entry this is relays the link).
SPACELINK_ENTRY: Final = "hil.spacelink:"
#: Entry of the comms process (the one that owns the ground link).
COMMS_ENTRY: Final = "subsystems.comms:"


def _comms_spec(deployment: Deployment) -> ProcessSpec | None:
    for spec in deployment.processes:
        if spec.entry.startswith(COMMS_ENTRY):
            return spec
    for spec in deployment.processes:
        if spec.name == "comms":
            return spec
    return None


def _spacelink_spec(deployment: Deployment) -> ProcessSpec | None:
    for spec in deployment.processes:
        if spec.entry.startswith(SPACELINK_ENTRY):
            return spec
    return None


def deployment_apids(deployment: Deployment) -> dict[str, int]:
    """APIDs of the base's processes, as its comms process numbers them (:func:`link_apids`).

    Raises :class:`ConfigError` for a malformed ``apids`` table or a clash.
    """
    comms = _comms_spec(deployment)
    overrides = comms.params.get("apids", {}) if comms is not None else {}
    if not isinstance(overrides, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in overrides.values()
    ):
        msg = f"{deployment.source}: [processes.comms.params] apids must be a table of process = APID"
        raise ConfigError(msg)
    names = [spec.name for spec in deployment.processes]
    return link_apids(names, {str(k): int(v) for k, v in overrides.items()})


@dataclass(frozen=True)
class LinkDefaults:
    """Where a station on the base's own host finds the link and the key file."""

    #: ``udp://host:port`` of the simulated space link if the deployment runs one, else of comms.
    link: str
    #: The base's key file (the station signs with the same keys).
    keys: Path


def _address_param(spec: ProcessSpec | None, key: str, default: str) -> str:
    if spec is None:
        return default
    value = spec.params.get(key, default)
    if not isinstance(value, str) or not value:
        return default
    return value


def link_defaults(deployment: Deployment) -> LinkDefaults:
    """The link URL and key file a station uses when given no flags (see :class:`LinkDefaults`)."""
    spacelink = _spacelink_spec(deployment)
    comms = _comms_spec(deployment)
    if spacelink is not None:
        address = _address_param(spacelink, "ground_udp", DEFAULT_SPACELINK_UDP)
    else:
        address = _address_param(comms, "link_udp", DEFAULT_BASE_UDP)
    keys_text = _address_param(comms, "keys", DEFAULT_KEY_FILE)
    keys = resolve_key_path(keys_text, state_dir=deployment.state_dir, run_dir=deployment.run_dir)
    return LinkDefaults(link=f"udp://{address}", keys=keys)


def default_archive_path(base_name: str) -> Path:
    """``$XDG_DATA_HOME/lunar-fsw/ground/<base>.db`` (``~/.local/share`` when unset)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "lunar-fsw" / "ground" / f"{base_name}.db"


class MissionDatabase:
    """Dictionaries and APIDs of one base; the ground's reference for every packet and command.

    ``dictionaries`` maps process name -> full dictionary; ``apids`` process name -> APID
    (every process of ``apids`` that has a dictionary can be commanded).
    """

    def __init__(
        self,
        dictionaries: Mapping[str, Dictionary],
        apids: Mapping[str, int],
        *,
        base: str = "lunar-base",
        link_process: str = "comms",
    ) -> None:
        self.base = base
        #: The process that owns the ground link (answers TC[17,1], rotates keys).
        self.link_process = link_process
        self.dictionaries = dict(dictionaries)
        self.apids = dict(apids)
        self.names = {apid: name for name, apid in self.apids.items()}
        self._points = {
            f"{source}.{point.name}": point
            for source, dictionary in self.dictionaries.items()
            for point in dictionary.telemetry
        }

    @classmethod
    def from_deployment(cls, deployment: Deployment) -> MissionDatabase:
        """The database of ``deployment`` (imports every process class; :class:`ConfigError`)."""
        from fsw.launch import deployment_dictionaries  # noqa: PLC0415 - imports every process class

        dictionaries = deployment_dictionaries(deployment)
        apids = deployment_apids(deployment)
        comms = _comms_spec(deployment)
        return cls(dictionaries, apids, base=deployment.name, link_process=comms.name if comms else "comms")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> MissionDatabase:
        """Rebuild from :meth:`to_json` (telemetry points and commands; events by name and severity).

        Raises :class:`ConfigError` for a malformed document.
        """
        from fsw.dictionary import ArgType, EventDef, Limits, Severity, command_from_json  # noqa: PLC0415

        try:
            dictionaries = {}
            for name, entry in raw["dictionary"].items():
                telemetry = tuple(
                    Point(
                        p["name"],
                        ArgType(p["type"]),
                        p.get("unit", ""),
                        p.get("description", ""),
                        Limits(**p["limits"]) if p.get("limits") else None,
                    )
                    for p in entry.get("telemetry", ())
                )
                events = tuple(
                    EventDef(e["name"], Severity(e["severity"]), e.get("description", ""))
                    for e in entry.get("events", ())
                )
                commands = tuple(command_from_json(c) for c in entry.get("commands", ()))
                dictionaries[str(name)] = Dictionary(telemetry, events, commands)
            apids = {str(k): int(v) for k, v in raw["apids"].items()}
            return cls(
                dictionaries,
                apids,
                base=str(raw.get("base", "lunar-base")),
                link_process=str(raw.get("link_process", "comms")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"not a mission database document: {type(exc).__name__}: {exc}"
            raise ConfigError(msg) from exc

    def to_json(self) -> dict[str, Any]:
        """``{"base", "link_process", "apids": {process: apid}, "dictionary": {process: JSON}}``."""
        return {
            "base": self.base,
            "link_process": self.link_process,
            "apids": dict(self.apids),
            "dictionary": {name: d.to_json() for name, d in self.dictionaries.items()},
        }

    def apid_of(self, target: str) -> int:
        """APID of process ``target``; :class:`CommandRejected` naming the known ones."""
        if target not in self.apids or target not in self.dictionaries:
            known = ", ".join(sorted(n for n in self.apids if n in self.dictionaries))
            msg = f"unknown target {target!r} (targets: {known})"
            raise CommandRejected(msg)
        return self.apids[target]

    def command(self, target: str, command: str) -> CommandDef:
        """The dictionary entry of ``target``'s ``command``; :class:`CommandRejected` if none."""
        self.apid_of(target)
        try:
            return self.dictionaries[target].command(command)
        except CommandRejected:
            known = ", ".join(c.name for c in self.dictionaries[target].commands)
            msg = f"unknown command {command!r} of {target} (commands: {known})"
            raise CommandRejected(msg) from None

    def check_command(self, target: str, command: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` checked against the dictionary (defaults filled in); :class:`CommandRejected`
        naming ``target.command`` and the argument otherwise."""
        definition = self.command(target, command)
        try:
            return dict(definition.check(args))
        except CommandRejected as exc:
            msg = f"{target}.{command}: {exc.reason}"
            raise CommandRejected(msg) from exc

    def point(self, name: str) -> Point:
        """The telemetry point ``<source>.<point>``; :class:`ConfigError` naming what exists."""
        found = self._points.get(name)
        if found is not None:
            return found
        source, dot, point_name = name.partition(".")
        if not dot or not source or not point_name:
            msg = f"point {name!r} must be <source>.<point>, e.g. power.battery_soc"
            raise ConfigError(msg)
        if source not in self.dictionaries:
            msg = f"no source {source!r} (sources: {', '.join(sorted(self.dictionaries))})"
            raise ConfigError(msg)
        names = ", ".join(p.name for p in self.dictionaries[source].telemetry)
        msg = f"{source} has no telemetry point {point_name!r} (points: {names})"
        raise ConfigError(msg)

    def has_point(self, name: str) -> bool:
        """Whether ``<source>.<point>`` is a telemetry point of the dictionary."""
        return name in self._points

    def points_of(self, source: str) -> tuple[Point, ...]:
        """Every telemetry point of ``source`` (empty if unknown)."""
        dictionary = self.dictionaries.get(source)
        return dictionary.telemetry if dictionary is not None else ()
