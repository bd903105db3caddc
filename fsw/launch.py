"""Entry point of every child process: ``python -m fsw.launch RUN_DIR NAME``.

The supervisor has written the deployment and run options into ``RUN_DIR``.
``NAME`` is ``bus`` (the broker), ``clock``, or a process of the deployment.
The class is imported from the process's ``entry`` (``module:Class``) in the
child itself, so a broken subsystem module fails its own process only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":
    # A child logs JSON lines and draws nothing: keep structlog from loading rich,
    # which would cost every process of the base about 4 MiB for nothing.
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]

from fsw import run as run_module
from fsw.deployment import Deployment, ProcessSpec
from fsw.dictionary import Dictionary
from fsw.errors import ConfigError, FswError
from fsw.process import Process, main_for

#: The framework's own processes, which every deployment runs.
BROKER = ProcessSpec(name="bus", entry="fsw.broker:Broker", lockstep=False)
CLOCK = ProcessSpec(name="clock", entry="fsw.clock:FrameClock", lockstep=False)


def framework_spec(deployment: Deployment, name: str) -> ProcessSpec:
    """Return the spec of ``name``: the broker, the clock, or a deployment process."""
    if name == BROKER.name:
        return ProcessSpec(name=BROKER.name, entry=BROKER.entry, lockstep=False, restart=deployment.restart)
    if name == CLOCK.name:
        return ProcessSpec(
            name=CLOCK.name,
            entry=CLOCK.entry,
            lockstep=False,
            restart=deployment.restart,
            housekeeping_period_s=deployment.clock.housekeeping_period_s,
        )
    return deployment.process(name)


def load_class(entry: str) -> type[Process]:
    """Import ``module:Class`` and check it is a :class:`Process`. Raises :class:`ConfigError`."""
    module_name, _, class_name = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        msg = f"cannot load process class {entry!r}: {exc}"
        raise ConfigError(msg) from exc
    if not (isinstance(cls, type) and issubclass(cls, Process)):
        msg = f"{entry!r} is not a Process subclass"
        raise ConfigError(msg)
    return cls


def deployment_dictionaries(
    deployment: Deployment, *, unloadable: Callable[[str, ConfigError], None] | None = None
) -> dict[str, Dictionary]:
    """Every process's full dictionary (the broker's and the clock's included), by process name.

    Imports each process's class, as its child does. A class that does not import raises
    :class:`ConfigError` naming its entry, or, with ``unloadable``, is reported to it and left out.
    """
    found: dict[str, Dictionary] = {}
    for name in (BROKER.name, CLOCK.name, *(spec.name for spec in deployment.processes)):
        try:
            found[name] = load_class(framework_spec(deployment, name).entry).full_dictionary()
        except ConfigError as exc:
            if unloadable is None:
                raise
            unloadable(name, exc)
    return found


def main(argv: list[str] | None = None) -> int:
    """Run one child of the supervisor; return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m fsw.launch")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    args = parser.parse_args(argv)
    try:
        deployment, options = run_module.read(args.run_dir)
        spec = framework_spec(deployment, args.name)
        cls = load_class(spec.entry)
    except FswError as exc:
        print(f"fsw.launch: {exc}", file=sys.stderr)
        return 2
    return main_for(cls, deployment, spec, options)


if __name__ == "__main__":
    sys.exit(main())
