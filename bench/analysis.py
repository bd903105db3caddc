"""Why a target was missed: sentences built from what this run measured.

Source lines are located in the framework as it is now (``hotpath.locate``),
so the references stay right while the framework changes.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path

from bases import ImportCosts
from harness import median
from hotpath import locate

import fsw.board
import fsw.broker
import fsw.bus
import fsw.clock
import fsw.deployment
import fsw.log
import fsw.messages
import fsw.process


def module_level_imports(pattern: str) -> list[str]:
    """``path:line`` of every module-level import in the ``fsw`` package matching ``pattern``."""
    package = Path(fsw.__file__).parent
    found = []
    for path in sorted(package.glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.match(pattern, line):
                found.append(f"{path.relative_to(package.parent)}:{number}")
    return found


def framework_lines() -> dict[str, str]:
    """``path:line`` of each hot spot the explanations name."""
    bus, messages, process = fsw.bus, fsw.messages, fsw.process
    return {
        "rcvmore": (
            locate(bus.Bus.receive, "getsockopt")
            if "getsockopt" in inspect.getsource(bus.Bus.receive)
            else locate(bus.receive_frames, "RCVMORE")
        ),
        "flags": locate(bus.send_frames, "SNDMORE"),
        "publish_message": locate(bus.Bus.publish, "Message("),
        "encode": locate(messages.encode, "def encode"),
        "topic": locate(messages.topic_of, "def topic_of"),
        "decode": locate(messages.decode, "def decode"),
        "decode_topic": locate(messages.decode, "message.topic"),
        "on_bus": locate(process.Process._on_bus, "def _on_bus"),
        "poll_loop": locate(process.Process.run, "poller.poll"),
        "on_tick": locate(process.FlightProcess._on_tick, "def _on_tick"),
        "report": locate(process.FlightProcess._report, "def _report"),
        "clock_reports": locate(fsw.clock.FrameClock._on_reports, "def _on_reports"),
        "router_in": locate(fsw.broker.Broker._on_frontend, "recv_multipart"),
        "router_out": locate(fsw.broker.Broker._route, "send_multipart"),
        "router_acks": locate(fsw.broker.Broker._on_backend, "recv_multipart"),
        "router_reply": locate(fsw.broker.Broker._send_client, "send_multipart"),
    }


@dataclass
class Evidence:
    """What the explanations quote: per-message costs, component costs, import footprint."""

    hot: dict[str, dict[str, float]]
    parts: dict[str, float]
    imports: ImportCosts
    lines: dict[str, str] = field(default_factory=framework_lines)

    def part(self, prefix: str) -> float:
        """µs of the component whose name starts with ``prefix``."""
        return next(v for k, v in self.parts.items() if k.startswith(prefix))

    def per_message(self, stack: str) -> float:
        """µs per message, publish plus receive side."""
        return self.hot[stack]["publish_us"] + self.hot[stack]["receive_us"]


def _uses(obj: object, needle: str) -> bool:
    """Whether ``obj``'s current source contains ``needle``."""
    return needle in inspect.getsource(obj)  # type: ignore[arg-type]


def capacity_why(ev: Evidence) -> str:
    """Lossless capacity below 0.6x raw; names only what the framework's current source does."""
    at = ev.lines
    bus, messages = fsw.bus, fsw.messages
    fsw_us, raw_us = ev.per_message("fsw"), ev.per_message("raw")
    receive_path = inspect.getsource(bus.Bus.receive)
    if "receive_frames(" in receive_path:
        receive_path += inspect.getsource(bus.receive_frames)
    costs = []
    if "getsockopt" in receive_path:
        costs.append(
            f"`Bus.receive` checks `RCVMORE` with `getsockopt` after each frame ({at['rcvmore']}; "
            f"{ev.part('socket.getsockopt'):.2f} µs per call)"
        )
    topic_check = " and rebuilds the topic to compare it" if _uses(messages.decode, "message.topic") else ""
    costs.append(
        f"`decode` ({at['decode']}) validates the envelope, builds a `Message`{topic_check}: "
        f"{ev.part('decode('):.2f} µs against {ev.part('msgpack.unpackb(envelope'):.2f} µs to unpack the "
        f"same envelope and {ev.part('msgpack.unpackb(payload'):.2f} µs for the bare payload"
    )
    if _uses(bus.Bus.publish, "Message("):
        costs.append(
            f"`Bus.publish` builds a `Message` ({at['publish_message']}, {ev.part('Message('):.2f} µs) "
            + (
                f"and `encode` ({at['encode']}, {ev.part('encode('):.2f} µs) packs it"
                if _uses(bus.Bus.publish, "encode(")
                else "before packing it"
            )
        )
    costs.append(
        f"the envelope itself: packing the 7-key map around the payload costs "
        f"{ev.part('msgpack.packb(envelope'):.2f} µs against {ev.part('msgpack.packb(payload'):.2f} µs "
        "for the bare payload"
    )
    if _uses(bus.send_frames, "zmq.SNDMORE | zmq.NOBLOCK"):
        costs.append(
            f"`send_frames` ({at['flags']}) evaluates `zmq.SNDMORE | zmq.NOBLOCK` through the IntFlag "
            f"machinery on every message ({ev.part('zmq.SNDMORE'):.2f} µs)"
        )
    return (
        "the broker forwards with the same libzmq proxy as the baseline, so the gap is the Python work per "
        f"message in the publishers and subscribers: {fsw_us:.1f} µs per message published and received "
        f"against {raw_us:.1f} µs raw ({fsw_us / raw_us:.1f}x, section 'Where the time and memory go'). "
        "With 4 publishers, 3 subscribers and the proxy on 2 cores, every 1 ms burst queues behind that "
        "work, so p99 crosses 1 ms at a proportionally lower rate. Where it goes, in the current source: "
        + "; ".join(costs)
        + "."
    )


def latency_why(fsw_p99: list[float], raw_p99: list[float], fsw_p50: float, raw_p50: float) -> str:
    """One-way p99 at 1 kHz over 1 ms."""
    rounds = f"per-round p99 framework {_us(fsw_p99)}, raw {_us(raw_p99)} µs"
    p50 = f"p50 framework {fsw_p50:.0f} µs, raw {raw_p50:.0f} µs"
    if median(raw_p99) >= 1000:
        return (
            f"the raw proxy missed it too in the same rounds ({rounds}). At 1 kHz every hop sleeps "
            "between messages, so the tail is wake-up and scheduling delay on the shared 2-vCPU host, not "
            f"per-message work ({p50})."
        )
    return (
        f"{rounds}. The framework crosses the same hops as raw (one libzmq proxy) and its per-message "
        f"work is a few µs ({p50}), so the tail is wake-up and scheduling delay of its processes on the "
        "shared host; rerun to see whether it repeats."
    )


def commands_why(ev: Evidence, fsw_p99: list[float], raw_p99: list[float]) -> str:
    """Command round trip p99 over 1 ms."""
    at = ev.lines
    noisy = (
        "the raw REQ/REP tail also jumped in the same rounds, so part of it is the host's scheduling noise. "
        if max(raw_p99) >= 1000
        else ""
    )
    return (
        f"per-round p99 framework {_us(fsw_p99)}, raw REQ/REP {_us(raw_p99)} µs; {noisy}A command crosses "
        "four hops (client -> router -> process -> router -> client) against two for REQ/REP, comes back as "
        "two acknowledgements (accepted, completed), and is decoded and validated at every hop; the router "
        f"uses `recv_multipart`/`send_multipart` ({at['router_in']}, {at['router_out']}, "
        f"{at['router_acks']}, {at['router_reply']}), which the baseline doc measured at ~4x "
        "hand-written frame calls."
    )


def lockstep_why(
    ev: Evidence,
    participants: int,
    fsw_fps: float,
    raw_fps: float,
    ratio: float,
    boardless_fps: float | None,
    awaited: float | None = None,
) -> str:
    """Frame rate under 0.5x raw or under 1,000/s."""
    at = ev.lines
    fsw_frame_us, raw_frame_us = 1e6 / fsw_fps, 1e6 / raw_fps
    chain = (
        f"{participants} participants"
        if awaited is None
        else f"the participants due in that frame ({awaited:.1f} of {participants} on average)"
    )
    parts = [
        f"a frame takes {fsw_frame_us:.0f} µs against {raw_frame_us:.0f} µs raw. Both are a chain of "
        f"wake-ups (clock -> broker -> {chain} -> clock; the raw loop waits for all {participants}), so the "
        f"{fsw_frame_us - raw_frame_us:.0f} µs difference is the framework's Python work per frame, which "
        "on 2 cores the participants and the clock partly serialise. Each participant "
        f"returns from `poller.poll` ({at['poll_loop']}), drains the subscriber in `_on_bus` "
        f"({at['on_bus']}) through `Bus.receive` (frame calls, envelope validation, a `Message`, "
        f"ending on a raised `zmq.Again`), handles the tick in `_on_tick` "
        f"({at['on_tick']}), encodes and pushes a `frame_done` envelope in `_report` ({at['report']}), "
        "publishes housekeeping every 10th frame and recomputes its poll timeout; the clock decodes and "
        f"validates every report in `_on_reports` ({at['clock_reports']}) before it "
        "can tick, where the raw loop does one `unpackb`/`packb` per hop"
    ]
    if ratio >= 0.5:
        parts = []
    if boardless_fps is not None:
        board_us = fsw_frame_us - 1e6 / boardless_fps
        parts.append(
            f"the simulated boards add {board_us:.0f} µs per frame over the boardless base: the reactor runs "
            "its control cycle every frame (rate_hz = 10) and each cycle syncs, reads and polls its board "
            "over a pseudo-terminal served by the simulator process (hil/sim.py), a round trip through "
            "another process on the frame's critical path"
        )
    if fsw_fps < 1000 and boardless_fps is None:
        parts.append("the per-frame runtime work above does not fit in 1 ms on this host")
    return "; ".join(parts) + "."


def memory_why(ev: Evidence, processes: int, fsw_mib: float, raw_mib: float) -> str:
    """Whole-base RSS over 200 MB."""
    steps = dict(ev.imports.steps)
    child_mib = steps["subsystems.power"] / 1024
    bare_mib = steps["msgpack"] / 1024
    text = (
        f"each of the {processes} processes is its own interpreter of about {fsw_mib / processes:.0f} MiB "
        f"against {raw_mib / processes:.0f} MiB for a raw pyzmq node. Most of the difference is imports: a "
        f"fresh interpreter importing what a child imports reaches {child_mib:.1f} MiB against "
        f"{bare_mib:.1f} MiB with zmq and msgpack alone"
    )
    loaded = ev.imports.loaded
    if loaded:
        text += ", and it loads " + ", ".join(loaded) + ", which no bus message needs"
    parts = []
    if "structlog" in ev.imports.alone:
        where = ", ".join(module_level_imports(r"(import structlog|from structlog)")) or "indirectly"
        parts.append(
            f"structlog (imported at module level at {where}) adds "
            f"{ev.imports.alone['structlog'] / 1024:.1f} MiB by itself (it pulls in asyncio, and rich and "
            "pygments when they are installed)"
        )
    if "importlib.metadata" in ev.imports.alone:
        where = (
            ", ".join(module_level_imports(r"(import importlib\.metadata|from importlib import metadata)"))
            or "indirectly"
        )
        parts.append(
            f"importlib.metadata (imported at module level at {where}; only entry-point lookups need it) "
            f"adds {ev.imports.alone['importlib.metadata'] / 1024:.1f} MiB"
        )
    if parts:
        total = sum(ev.imports.alone.values()) / 1024 * processes
        text += ": " + "; ".join(parts) + f"; {total:.0f} MiB over the whole base"
    return text + "."


def cpu_why(fsw_pct: float, raw_pct: float) -> str:
    """Idle CPU over 5 %."""
    return (
        f"the base used {fsw_pct:.2f} % of a core against {raw_pct:.2f} % for the raw equivalent; see the "
        "per-process table for which process spends it."
    )


def _us(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)
