"""Per-message CPU of the telemetry hot path, in one thread: ``python bench/hotpath.py [--profile]``.

Publishes batches of the 10-field payload into an in-process XSUB/XPUB proxy
(libzmq, its own thread) and receives them back on the same thread, timing the
publish side and the receive side separately:

* ``raw``: ``packb`` + ``send(topic, SNDMORE)`` + ``send(body)`` / ``recv`` + ``recv`` + ``unpackb``;
* ``fsw``: ``Bus.publish`` / ``Bus.receive``.

With ``--profile`` it also runs the ``fsw`` loop under cProfile and prints the
functions that cost the most (own time), which is where the framework's
overhead over raw pyzmq goes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import inspect
import io
import pstats
import statistics
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import zmq
from common import telemetry_payload

from fsw.bus import Bus
from fsw.messages import Kind, Message, decode, encode

BATCH = 2000


class InprocProxy:
    """An XSUB/XPUB proxy on inproc endpoints, in a thread of this process."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], tag: str) -> None:
        self.publish = f"inproc://{tag}-pub"
        self.subscribe = f"inproc://{tag}-sub"
        self._xsub = context.socket(zmq.XSUB)
        self._xsub.bind(self.publish)
        self._xpub = context.socket(zmq.XPUB)
        self._xpub.bind(self.subscribe)
        for socket in (self._xsub, self._xpub):
            socket.setsockopt(zmq.SNDHWM, 100000)
            socket.setsockopt(zmq.RCVHWM, 100000)
            socket.setsockopt(zmq.LINGER, 0)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            zmq.proxy(self._xsub, self._xpub)
        except zmq.ContextTerminated:
            pass
        finally:
            self._xsub.close(linger=0)
            self._xpub.close(linger=0)


def _timed_batches(
    publish: Callable[[], None], receive: Callable[[], int], rounds: int
) -> tuple[float, float]:
    """Median µs per message of the publish side and of the receive side."""
    publish_us: list[float] = []
    receive_us: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(BATCH):
            publish()
        published = time.perf_counter()
        got = 0
        while got < BATCH:
            got += receive()
        received = time.perf_counter()
        publish_us.append((published - started) / BATCH * 1e6)
        receive_us.append((received - published) / BATCH * 1e6)
    return statistics.median(publish_us), statistics.median(receive_us)


def measure(rounds: int = 30, *, profile: bool = False) -> dict[str, dict[str, float]]:
    """µs per message, publish side and receive side, raw vs fsw (median of ``rounds`` batches)."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    results: dict[str, dict[str, float]] = {}
    try:
        raw_proxy = InprocProxy(context, "raw")
        pub = context.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 100000)
        pub.connect(raw_proxy.publish)
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 100000)
        sub.connect(raw_proxy.subscribe)
        sub.setsockopt(zmq.SUBSCRIBE, b"tlm.")
        payload = telemetry_payload("pub0")
        topic = b"tlm.pub0.hk"

        def raw_publish() -> None:
            payload["seq"] += 1
            payload["t"] = time.monotonic_ns()
            pub.send(topic, zmq.SNDMORE)
            pub.send(msgpack.packb(payload))

        def raw_receive() -> int:
            if not sub.poll(1000):
                raise RuntimeError("raw hot path: nothing arrived")
            count = 0
            while True:
                try:
                    sub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    return count
                msgpack.unpackb(sub.recv())
                count += 1

        fsw_proxy = InprocProxy(context, "fsw")
        bus_out = Bus("pub0", fsw_proxy.publish, fsw_proxy.subscribe, high_water_mark=100000, context=context)
        bus_in = Bus(
            "sub0",
            fsw_proxy.publish,
            fsw_proxy.subscribe,
            subscribe=(b"tlm.",),
            high_water_mark=100000,
            context=context,
        )
        fsw_payload = telemetry_payload("pub0")

        def fsw_publish() -> None:
            fsw_payload["seq"] += 1
            fsw_payload["t"] = time.monotonic_ns()
            bus_out.publish(Kind.TELEMETRY, "hk", fsw_payload)

        def fsw_receive() -> int:
            if not bus_in.subscriber.poll(1000):
                raise RuntimeError("fsw hot path: nothing arrived")
            count = 0
            while bus_in.receive() is not None:
                count += 1
            return count

        time.sleep(0.2)  # subscriptions reach the proxies
        for publish, receive in ((raw_publish, raw_receive), (fsw_publish, fsw_receive)):
            _timed_batches(publish, receive, 3)  # warm-up
        # Interleave the two stacks batch-set by batch-set.
        samples: dict[str, list[tuple[float, float]]] = {"raw": [], "fsw": []}
        for _ in range(max(1, rounds // 5)):
            samples["raw"].append(_timed_batches(raw_publish, raw_receive, 5))
            samples["fsw"].append(_timed_batches(fsw_publish, fsw_receive, 5))
        for name, pairs in samples.items():
            publish_us = statistics.median(p for p, _ in pairs)
            receive_us = statistics.median(r for _, r in pairs)
            results[name] = {"publish_us": publish_us, "receive_us": receive_us}
        if profile:
            print(_profile(fsw_publish, fsw_receive))
        pub.close(linger=0)
        sub.close(linger=0)
        bus_out.close()
        bus_in.close()
    finally:
        context.term()
    return results


def _profile(publish: Callable[[], None], receive: Callable[[], int]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    _timed_batches(publish, receive, 20)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the fsw loop")
    args = parser.parse_args()
    results: dict[str, Any] = measure(profile=args.profile)
    for name, row in results.items():
        total = row["publish_us"] + row["receive_us"]
        side = f"publish {row['publish_us']:.2f} µs, receive {row['receive_us']:.2f} µs"
        print(f"{name}: {side}, total {total:.2f} µs")


if __name__ == "__main__":
    main()


def components(number: int = 100_000) -> dict[str, float]:
    """µs per call of the pieces of the framework's hot path, and of their raw counterparts (best of 5)."""
    payload = telemetry_payload("pub0")
    message = Message(Kind.TELEMETRY, "pub0", "hk", 0.0, 5, dict(payload))
    topic, body = encode(message)
    raw_body = msgpack.packb(payload)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.bind("inproc://components")
    envelope = {"v": 1, "kind": "tlm", "src": "pub0", "name": "hk", "t": 0.0, "seq": 5, "data": payload}
    statements: dict[str, Callable[[], object]] = {
        "msgpack.packb(payload) [raw]": lambda: msgpack.packb(payload),
        "msgpack.unpackb(payload) [raw]": lambda: msgpack.unpackb(raw_body),
        "msgpack.packb(envelope) [wire format]": lambda: msgpack.packb(envelope, use_bin_type=True),
        "msgpack.unpackb(envelope) [wire format]": lambda: msgpack.unpackb(body, raw=False),
        "encode(Message) [fsw]": lambda: encode(message),
        "decode(topic, body) [fsw]": lambda: decode(topic, body),
        "Message(...) [fsw]": lambda: Message(Kind.TELEMETRY, "pub0", "hk", 0.0, 5, payload),
        "Kind.TELEMETRY.value [fsw]": lambda: Kind.TELEMETRY.value,
        "zmq.SNDMORE | zmq.NOBLOCK (IntFlag)": lambda: zmq.SNDMORE | zmq.NOBLOCK,
        "socket.getsockopt(zmq.RCVMORE)": lambda: socket.getsockopt(zmq.RCVMORE),
    }
    try:
        return {
            name: min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6
            for name, statement in statements.items()
        }
    finally:
        socket.close(linger=0)
        context.term()


def locate(obj: object, needle: str) -> str:
    """``path:line`` of the first line of ``obj``'s source that contains ``needle``."""
    lines, start = inspect.getsourcelines(obj)  # type: ignore[arg-type]
    start = max(start, 1)  # a module's source starts at 0
    path = Path(inspect.getsourcefile(obj) or "?")  # type: ignore[arg-type]
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path(__file__).resolve().parent.parent)
    for offset, line in enumerate(lines):
        if needle in line:
            return f"{path}:{start + offset}"
    return f"{path}:{start}"
