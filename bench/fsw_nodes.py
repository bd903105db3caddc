"""Telemetry workers on the framework: ``python bench/fsw_nodes.py ROLE RUN_DIR INDEX``.

They read the deployment the benchmark wrote into ``RUN_DIR`` (as every child
of ``fsw up`` does) and talk to the project's broker through :class:`fsw.bus.Bus`:
publishers call ``Bus.publish``, subscribers ``Bus.receive`` (which decodes,
validates the envelope and counts sequence gaps). The measurement loops are
the same as the raw workers' (``bench/common.py``).

Roles: ``pub`` (paced publisher ``pub<INDEX>``), ``sub`` (subscriber to ``tlm.pub``: every
publisher, not the broker's own housekeeping).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from common import WindowCounter, commands, die_with_parent, publish_paced, reply, telemetry_payload

from fsw import run as run_module
from fsw.bus import Bus
from fsw.messages import Kind


def _bus(run_dir: Path, source: str, subscribe: tuple[bytes, ...] = ()) -> Bus:
    deployment, _ = run_module.read(run_dir)
    config = deployment.bus
    return Bus(
        source,
        config.publish,
        config.subscribe,
        subscribe=subscribe,
        high_water_mark=config.high_water_mark,
    )


def pub(args: argparse.Namespace) -> None:
    source = f"pub{args.index}"
    bus = _bus(args.run_dir, source)
    publish = bus.publish
    telemetry = Kind.TELEMETRY

    def send(payload: dict[str, Any]) -> None:
        publish(telemetry, "hk", payload)

    payload = telemetry_payload(source)
    reply({"ready": True})
    try:
        for command in commands():
            result = publish_paced(send, payload, command)
            reply({**result, "bus_sent": bus.stats.sent})
    finally:
        bus.close()


def sub(args: argparse.Namespace) -> None:
    bus = _bus(args.run_dir, f"sub{args.index}", (b"tlm.pub",))
    receive = bus.receive
    socket = bus.subscriber
    monotonic_ns = time.monotonic_ns
    reply({"ready": True})
    try:
        for command in commands():
            tally = WindowCounter(command)
            start, end, latencies, counts = (
                tally.window_start,
                tally.window_end,
                tally.latencies_ns,
                tally.counts,
            )
            while True:
                remaining_ms = (tally.stop_ns - monotonic_ns()) // 1_000_000
                if remaining_ms <= 0:
                    break
                if not socket.poll(min(100, remaining_ms)):
                    continue
                while (message := receive()) is not None:
                    data = message.data
                    stamp = data["t"]
                    if start <= stamp < end:
                        latencies.append(monotonic_ns() - stamp)
                        counts[data["src"]] += 1
            stats = bus.stats
            reply({**tally.result(), "bus_lost": stats.lost, "bus_malformed": stats.malformed})
    finally:
        bus.close()


def main() -> None:
    die_with_parent()
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("pub", "sub"))
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("index", type=int)
    args = parser.parse_args()
    {"pub": pub, "sub": sub}[args.role](args)


if __name__ == "__main__":
    main()
