"""The raw pyzmq + msgpack baselines, one role per process: ``python bench/raw_nodes.py ROLE ...``.

These are what a careful engineer would write by hand with the same sockets
and the same 2-frame ``[topic, msgpack]`` envelope as the framework: topic and
body sent with hand-written ``SNDMORE`` calls (not ``send_multipart``), no
validation beyond decoding, blocking calls where a hand-written loop would use
them. They import nothing from ``fsw``.

Roles:

* ``proxy PUB SUB``: libzmq XSUB/XPUB proxy (the broker's telemetry half).
* ``pub SUB_OR_PUB_ENDPOINT INDEX``: paced telemetry publisher (stdin protocol).
* ``sub ENDPOINT``: decoding telemetry subscriber (stdin protocol).
* ``rep ENDPOINT``: REQ/REP command server, msgpack both ways.
* ``clock PUB FRAMES N``: lockstep tick-and-acknowledge clock for N participants (stdin protocol).
* ``participant SUB FRAMES NAME``: answers every tick with an acknowledgement.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import msgpack
import zmq
from common import WindowCounter, commands, die_with_parent, publish_paced, reply, telemetry_payload


def _socket(context: zmq.Context[zmq.Socket[bytes]], kind: int, hwm: int) -> zmq.Socket[bytes]:
    socket = context.socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, hwm)
    socket.setsockopt(zmq.RCVHWM, hwm)
    return socket


def proxy(args: argparse.Namespace) -> None:
    context = zmq.Context()
    xsub = _socket(context, zmq.XSUB, args.hwm)
    xsub.bind(args.pub)
    xpub = _socket(context, zmq.XPUB, args.hwm)
    xpub.bind(args.sub)
    reply({"ready": True})
    zmq.proxy(xsub, xpub)


def pub(args: argparse.Namespace) -> None:
    context = zmq.Context()
    socket = _socket(context, zmq.PUB, args.hwm)
    socket.connect(args.endpoint)
    source = f"pub{args.index}"
    topic = f"tlm.{source}.hk".encode()
    packb = msgpack.packb
    more = zmq.SNDMORE

    def send(payload: dict[str, Any]) -> None:
        socket.send(topic, more)
        socket.send(packb(payload))

    payload = telemetry_payload(source)
    reply({"ready": True})
    for command in commands():
        reply(publish_paced(send, payload, command))


def sub(args: argparse.Namespace) -> None:
    context = zmq.Context()
    socket = _socket(context, zmq.SUB, args.hwm)
    socket.connect(args.endpoint)
    socket.setsockopt(zmq.SUBSCRIBE, b"tlm.pub")
    unpackb = msgpack.unpackb
    monotonic_ns = time.monotonic_ns
    noblock = zmq.NOBLOCK
    reply({"ready": True})
    for command in commands():
        tally = WindowCounter(command)
        start, end, latencies, counts = tally.window_start, tally.window_end, tally.latencies_ns, tally.counts
        while True:
            remaining_ms = (tally.stop_ns - monotonic_ns()) // 1_000_000
            if remaining_ms <= 0:
                break
            if not socket.poll(min(100, remaining_ms)):
                continue
            while True:
                try:
                    socket.recv(noblock)
                except zmq.Again:
                    break
                data = unpackb(socket.recv())
                stamp = data["t"]
                if start <= stamp < end:
                    latencies.append(monotonic_ns() - stamp)
                    counts[data["src"]] += 1
        reply(tally.result())


def rep(args: argparse.Namespace) -> None:
    context = zmq.Context()
    socket = _socket(context, zmq.REP, 1000)
    socket.bind(args.endpoint)
    reply({"ready": True})
    while True:
        request = msgpack.unpackb(socket.recv())
        socket.send(msgpack.packb({"id": request["id"], "status": "completed"}))


def clock(args: argparse.Namespace) -> None:
    """Tick, wait for every participant's acknowledgement, tick again.

    Before frame 0 it sends probe ticks (frame -1) every 20 ms until every
    participant has answered one, so no participant misses frame 0.
    """
    context = zmq.Context()
    publisher = _socket(context, zmq.PUB, 10000)
    publisher.connect(args.pub)
    acks = _socket(context, zmq.PULL, 10000)
    acks.setsockopt(zmq.RCVTIMEO, 5000)  # a dead participant ends the run instead of hanging it
    acks.bind(args.frames)
    topic = b"tick.clock.frame"
    reply({"ready": True})
    for command in commands():
        frames = int(command["frames"])
        period_s = float(command.get("period_s", 0.0))
        joined: set[str] = set()
        while len(joined) < args.participants:
            publisher.send(topic, zmq.SNDMORE)
            publisher.send(msgpack.packb({"frame": -1, "period_s": 0.1, "t": 0.0}))
            deadline = time.monotonic() + 0.02
            while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0 and acks.poll(left_ms):
                ack = msgpack.unpackb(acks.recv())
                if ack["frame"] == -1:
                    joined.add(ack["src"])
        started = time.monotonic()
        for frame in range(frames):
            if period_s > 0:
                time.sleep(max(0.0, started + frame * period_s - time.monotonic()))
            publisher.send(topic, zmq.SNDMORE)
            publisher.send(msgpack.packb({"frame": frame, "period_s": 0.1, "t": frame * 0.1}))
            waiting = args.participants
            while waiting:
                if msgpack.unpackb(acks.recv())["frame"] == frame:
                    waiting -= 1
        elapsed = time.monotonic() - started
        reply({"frames": frames, "wall_s": elapsed, "frames_per_s": frames / elapsed})


def participant(args: argparse.Namespace) -> None:
    context = zmq.Context()
    ticks = _socket(context, zmq.SUB, 10000)
    ticks.connect(args.sub)
    ticks.setsockopt(zmq.SUBSCRIBE, b"tick.")
    acks = _socket(context, zmq.PUSH, 10000)
    acks.connect(args.frames)
    reply({"ready": True})
    while True:
        ticks.recv()
        tick = msgpack.unpackb(ticks.recv())
        acks.send(msgpack.packb({"src": args.name, "frame": tick["frame"]}))


def main() -> None:
    die_with_parent()
    parser = argparse.ArgumentParser()
    roles = parser.add_subparsers(dest="role", required=True)
    p = roles.add_parser("proxy")
    p.add_argument("pub")
    p.add_argument("sub")
    p.add_argument("--hwm", type=int, default=10000)
    p.set_defaults(func=proxy)
    p = roles.add_parser("pub")
    p.add_argument("endpoint")
    p.add_argument("index", type=int)
    p.add_argument("--hwm", type=int, default=10000)
    p.set_defaults(func=pub)
    p = roles.add_parser("sub")
    p.add_argument("endpoint")
    p.add_argument("--hwm", type=int, default=10000)
    p.set_defaults(func=sub)
    p = roles.add_parser("rep")
    p.add_argument("endpoint")
    p.set_defaults(func=rep)
    p = roles.add_parser("clock")
    p.add_argument("pub")
    p.add_argument("frames")
    p.add_argument("participants", type=int)
    p.set_defaults(func=clock)
    p = roles.add_parser("participant")
    p.add_argument("sub")
    p.add_argument("frames")
    p.add_argument("name")
    p.set_defaults(func=participant)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
