"""``fsw inject``, ``fsw clear-fault`` and ``fsw faults``: fault injection from the shell.

Each sends one command to the running simulator over the bus (the router's
``command`` endpoint of the deployment, through :class:`fsw.bus.CommandClient`)
and prints the outcome; exit status 0 when it completed, 1 when it was rejected
or got no answer, 2 for a bad command line (checked here first, against the same
fault table the simulator uses)::

    fsw inject power stuck channel=battery_soc
    fsw inject power noisy channel=bus_voltage_v sigma=0.5 seed=3
    fsw inject reactor converter_failure
    fsw clear-fault power stuck channel=battery_soc
    fsw faults

Registered through the ``fsw.commands`` entry-point group (:func:`register`).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fsw.bus import CommandClient, CommandOutcome
from fsw.cli import load_deployment, outcome_report
from fsw.deployment import Deployment
from fsw.dictionary import parse_assignments
from fsw.errors import ConfigError
from hil.faults import BOARDS, KINDS, PARAM_NAMES, clear_command_args, inject_args

#: The ``entry`` of the simulator process in a deployment file.
SIMULATOR_ENTRY: Final = "hil.simulator:Simulator"

#: Default wall seconds to wait for the simulator's answer.
DEFAULT_TIMEOUT_S: Final = 5.0


def _kind_lines() -> str:
    lines = []
    for kind in KINDS.values():
        params = ", ".join(p.name for p in kind.params) or "-"
        head = f"  {kind.name:<18} {params:<12} "
        lines.append(textwrap.fill(kind.summary, 100, initial_indent=head, subsequent_indent=" " * len(head)))
    return "\n".join(lines)


INJECT_EPILOG = f"""\
fault kinds (docs/faults.md has what each one shows on the bus):
{_kind_lines()}

keys: channel=NAME or actuator=NAME (the kinds that need one), and the kind's
parameters ({", ".join(PARAM_NAMES)}).

examples:
  fsw inject power stuck channel=battery_soc
  fsw inject power offset channel=bus_voltage_v value=-6
  fsw inject thermal noisy channel=battery_temp_c sigma=0.5 seed=1
  fsw inject power stuck actuator=load_t4
  fsw inject comms silent
  fsw inject reactor converter_failure
  fsw inject thermal heater_stuck actuator=heater_battery value=1

The fault takes effect at the start of the next world step (the next frame);
the simulator publishes evt.simulator.fault_injected then.
"""


def _simulator_name(deployment: Deployment, override: str | None) -> str:
    if override:
        return override
    for spec in deployment.processes:
        if spec.entry == SIMULATOR_ENTRY:
            return spec.name
    msg = f"{deployment.source}: no process runs {SIMULATOR_ENTRY} (give --target)"
    raise ConfigError(msg)


def _call(args: argparse.Namespace, command: str, arguments: Mapping[str, Any]) -> tuple[str, CommandOutcome]:
    deployment, _ = load_deployment(args.deployment, args.run_dir)
    target = _simulator_name(deployment, args.target)
    with CommandClient(deployment.bus.command, source="fsw-faults") as client:
        return target, client.call(target, command, arguments, timeout_s=args.timeout)


def _finish(args: argparse.Namespace, name: str, target: str, outcome: CommandOutcome) -> int | None:
    """Print the JSON report, or the failure; return the exit status, or None to go on printing."""
    if args.json:
        print(json.dumps(outcome_report(outcome), indent=2))
        return 0 if outcome.ok else 1
    if not outcome.final:
        print(f"fsw {name}: no answer from {target} within {args.timeout:g} s (is the base up?)")
        return 1
    if not outcome.ok:
        print(f"fsw {name}: {outcome.status}: {outcome.reason or 'no reason given'}")
        return 1
    return None


def _describe(fault: Mapping[str, Any]) -> str:
    words = [str(fault.get("board", "")), str(fault.get("kind", ""))]
    for key in ("channel", "actuator"):
        if fault.get(key):
            words.append(f"{key}={fault[key]}")
    params = fault.get("params")
    if isinstance(params, dict):
        words.extend(f"{k}={v}" for k, v in params.items())
    return " ".join(words)


def _given(words: Sequence[str]) -> dict[str, Any]:
    given = parse_assignments(words)
    for key in ("channel", "actuator"):
        if key in given:
            given[key] = str(given[key])
    return given


def cmd_inject(args: argparse.Namespace) -> int:
    """``fsw inject``: check the fault here, send ``inject_fault``, print the outcome."""
    arguments = inject_args(args.board, args.kind, **_given(args.assignments))
    target, outcome = _call(args, "inject_fault", arguments)
    status = _finish(args, "inject", target, outcome)
    if status is not None:
        return status
    result = outcome.result
    print(
        f"queued {_describe(result)}: takes effect at frame {result.get('takes_effect_at_frame')} "
        f"(mission time {result.get('takes_effect_at_s')} s)"
    )
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """``fsw clear-fault``: send ``clear_fault``, print what it clears."""
    given = _given(args.assignments)
    unknown = sorted(set(given) - {"channel", "actuator"})
    if unknown:
        msg = f"clear-fault takes channel= and actuator= only, not {', '.join(unknown)}"
        raise ConfigError(msg)
    arguments = clear_command_args(args.board, args.kind, given.get("channel", ""), given.get("actuator", ""))
    target, outcome = _call(args, "clear_fault", arguments)
    status = _finish(args, "clear-fault", target, outcome)
    if status is not None:
        return status
    result = outcome.result
    for fault in result.get("clearing", []):
        print(f"clearing {_describe(fault)} at frame {result.get('takes_effect_at_frame')}")
    for fault in result.get("cancelled", []):
        print(f"cancelled {_describe(fault)} (it had not taken effect yet)")
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    """``fsw faults``: list active faults, queued requests and the scenario's steps to come."""
    target, outcome = _call(args, "list_faults", {})
    status = _finish(args, "faults", target, outcome)
    if status is not None:
        return status
    result = outcome.result
    active = result.get("active", [])
    print(f"world frame {result.get('frame')}: {len(active)} fault(s) active")
    for fault in active:
        until = f", until {fault['until_s']} s" if fault.get("until_s") is not None else ""
        print(f"  {_describe(fault)}  since {fault.get('since_s')} s{until}  ({fault.get('origin')})")
    for request in result.get("pending", []):
        print(f"  next step: {request.get('action')} {_describe(request)}")
    scheduled = result.get("scheduled", [])
    total = result.get("scheduled_total", len(scheduled))
    if total:
        print(f"scenario: {total} step(s) to come")
        for step in scheduled:
            what = f"{step.get('action')} {_describe(step)}"
            print(f"  at {step.get('at_s')} s: {what}  ({step.get('origin')})")
        if total > len(scheduled):
            print(f"  ... and {total - len(scheduled)} more")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployment", help="deployment file (default: the embedded default base)")
    parser.add_argument("--run-dir", help="run directory of the base (as given to fsw up)")
    parser.add_argument("--target", help="name of the simulator process (default: found in the deployment)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for the answer"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def register(subparsers: Any) -> None:
    """Add ``inject``, ``clear-fault`` and ``faults`` to the ``fsw`` command's subparsers."""
    inject = subparsers.add_parser(
        "inject",
        help="inject a fault into a simulated board of the running base",
        description="Send inject_fault to the running simulator: BOARD KIND and key=value "
        "arguments (values parse as JSON). Exit 0 once the simulator queued it.",
        epilog=INJECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inject.add_argument("board", choices=BOARDS)
    inject.add_argument("kind", choices=tuple(KINDS))
    inject.add_argument("assignments", nargs="*", metavar="key=value")
    _common(inject)
    inject.set_defaults(func=cmd_inject)

    clear = subparsers.add_parser(
        "clear-fault",
        help="clear a fault from a simulated board of the running base",
        description="Send clear_fault to the running simulator. Without channel= or actuator= "
        "every fault of KIND on BOARD is cleared.",
    )
    clear.add_argument("board", choices=BOARDS)
    clear.add_argument("kind", choices=tuple(KINDS))
    clear.add_argument("assignments", nargs="*", metavar="key=value")
    _common(clear)
    clear.set_defaults(func=cmd_clear)

    listing = subparsers.add_parser(
        "faults", help="list the faults active in the running simulator, and those to come"
    )
    _common(listing)
    listing.set_defaults(func=cmd_faults)
