"""Board round trip over a pseudo-terminal: the board link against a raw pty echo.

    python bench/board.py [--exchanges N] [--rounds R]

A child process serves the simulated reactor board (hil.board_server.BoardServer on a
pty, as the simulator does); this process opens the tty with the ``sim`` backend and
times, with ``perf_counter_ns``, a READ exchange (request, COBS/CRC/msgpack both ways,
reply) and a SYNC exchange (the world stepped one frame; the sample rides on the
acknowledgement). The baseline, in the same run and interleaved, is a raw echo of a
frame of the same size through a pty served by a child that reads and writes bytes back
with no protocol. Target: p99 of the board round trip under 2 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import select
import statistics
import time
from pathlib import Path

import report

from fsw.board import open_board
from hil.board_server import BoardServer, open_pty, serve_once
from hil.physics import World


def _serve_board(
    path_out: multiprocessing.connection.Connection, stop: multiprocessing.synchronize.Event
) -> None:
    world = World(seed=0, frame_period_s=0.1)
    master_fd, slave_path = open_pty()
    server = BoardServer(
        world.boards["reactor"], master_fd, on_sync=lambda frame, _t: world.advance_to(frame)
    )
    path_out.send(slave_path)
    with server:
        while not stop.is_set():
            serve_once([server], timeout_s=0.2)


def _serve_echo(
    path_out: multiprocessing.connection.Connection, stop: multiprocessing.synchronize.Event
) -> None:
    master_fd, slave_fd = os.openpty()
    import tty  # noqa: PLC0415

    tty.setraw(slave_fd)
    path_out.send(os.ttyname(slave_fd))
    while not stop.is_set():
        ready, _, _ = select.select([master_fd], [], [], 0.2)
        if ready:
            os.write(master_fd, os.read(master_fd, 65536))
    os.close(master_fd)
    os.close(slave_fd)


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2] / 1000.0
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000.0
    return p50, p99


def _time_board(path: str, exchanges: int) -> tuple[list[int], list[int]]:
    reads, syncs = [], []
    with open_board("sim", path=path) as board:
        for _ in range(100):
            board.read()
        for frame in range(1, exchanges + 1):
            start = time.perf_counter_ns()
            board.sync(frame, frame * 0.1)
            syncs.append(time.perf_counter_ns() - start)
            board.read()  # the sample that came with the SYNC_ACK: no round trip
            start = time.perf_counter_ns()
            board.read()  # a real READ exchange
            reads.append(time.perf_counter_ns() - start)
    return reads, syncs


def _time_echo(path: str, exchanges: int, size: int) -> list[int]:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    import tty  # noqa: PLC0415

    tty.setraw(fd)
    payload = bytes(range(1, 256))[: size - 1] + b"\x00"
    samples = []
    try:
        for index in range(exchanges + 100):
            start = time.perf_counter_ns()
            os.write(fd, payload)
            got = 0
            while got < len(payload):
                select.select([fd], [], [], 1.0)
                got += len(os.read(fd, 65536))
            if index >= 100:
                samples.append(time.perf_counter_ns() - start)
    finally:
        os.close(fd)
    return samples


def _run_child(target: object) -> tuple[multiprocessing.Process, str, multiprocessing.synchronize.Event]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    child = context.Process(target=target, args=(send, stop), daemon=True)
    child.start()
    if not receive.poll(10.0):
        child.kill()
        raise RuntimeError("server child did not start")
    return child, str(receive.recv()), stop


SECTION = "## Board round trip over a pseudo-terminal"


def main() -> int:
    """Run the rounds, print the table, optionally append it to docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"raw echo": [], "board READ": [], "board SYNC": []}
    for _ in range(args.rounds):
        child, path, stop = _run_child(_serve_echo)
        try:
            rows["raw echo"].append(_percentiles(_time_echo(path, args.exchanges, 48)))
        finally:
            stop.set()
            child.join(5.0)
        child, path, stop = _run_child(_serve_board)
        try:
            reads, syncs = _time_board(path, args.exchanges)
            rows["board READ"].append(_percentiles(reads))
            rows["board SYNC"].append(_percentiles(syncs))
        finally:
            stop.set()
            child.join(5.0)
    raw_p99 = statistics.median(p99 for _, p99 in rows["raw echo"])
    lines = [
        "| exchange over a pty | p50 (µs) | p99 (µs) | p99 / raw echo p99 | target p99 < 2,000 µs |",
        "|---|---|---|---|---|",
    ]
    for name, values in rows.items():
        p50 = statistics.median(v[0] for v in values)
        p99 = statistics.median(v[1] for v in values)
        met = "-" if name == "raw echo" else ("**yes**" if p99 < 2000 else "**NO**")
        lines.append(f"| {name} | {p50:,.0f} | {p99:,.0f} | {p99 / raw_p99:.2f}x | {met} |")
    table = "\n".join(lines)
    print(table)
    if args.write is not None:
        report.replace_section(
            args.write,
            SECTION,
            SECTION + "\n\n"
            f"`python bench/board.py --rounds {args.rounds} --exchanges {args.exchanges} "
            f"--write {args.write}`: "
            "medians over the rounds of each round's percentiles; the raw echo (48 bytes, no "
            "protocol, a child echoing a pty) was measured in the same run, interleaved. The "
            "SYNC exchange includes stepping the simulated world one frame.\n\n"
            f"{table}\n",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
