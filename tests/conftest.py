"""Shared fixtures: a real base in real processes, and leak checks.

Every test fails if it leaves a child process behind. Integration tests start
``fsw up`` as a real OS process and wait for handshakes (every process's
heartbeat, state ``running``, seen through the broker), never for a sleep.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from fsw.bus import Bus, CommandClient
from fsw.deployment import Deployment, parse, tomllib
from fsw.messages import Kind, Message
from fsw.supervisor import query_status
from subsystems.deployment import DEFAULT_DEPLOYMENT

settings.register_profile("ci", deadline=None, max_examples=100)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: Upper bound on any wait in a test (wall seconds); a handshake that takes longer is a failure.
WAIT_S = 30.0

#: Deployment additions that make tests quick: fast heartbeats, quick restarts.
TEST_OVERRIDES = """
[bus]
heartbeat_period_s = 0.2
command_timeout_s = 0.5

[restart]
backoff_initial_s = 0.1
backoff_max_s = 1.0
max_restarts = 5
window_s = 60.0
grace_s = 3.0
heartbeat_timeout_s = 5.0
"""


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    result: set[int] = set()
    frontier = {pid}
    while frontier:
        children = set().union(*(_children_of(p) for p in frontier))
        frontier = children - result
        result |= children
    return result


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def open_fds() -> set[str]:
    """What this process has open: sockets, pipes, ttys and files (by target)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue
    return found


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail a test that leaves child processes or open descriptors (sockets, boards) behind."""
    before = descendants(os.getpid())
    fds_before = open_fds()
    yield
    leaked = descendants(os.getpid()) - before
    assert not leaked, f"test left processes behind: {sorted(leaked)}"
    leaked_fds = open_fds() - fds_before
    assert not leaked_fds, f"test left descriptors open: {sorted(leaked_fds)}"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short directory for sockets (ipc paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fsw-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def deployment_text(extra: str = "", *, base: str = DEFAULT_DEPLOYMENT) -> str:
    """The default base with test overrides; later tables in ``extra`` win.

    TOML forbids a table twice, so overridden tables are merged by key here.
    """
    merged: dict[str, Any] = tomllib.loads(base)
    for layer in (TEST_OVERRIDES, extra):
        _merge(merged, tomllib.loads(layer))
    return _to_toml(merged)


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def _to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not _is_table(v)}
    tables = {k: v for k, v in data.items() if _is_table(v)}
    if prefix and (scalars or not tables):
        lines.append(f"[{prefix}]")
    lines.extend(f"{k} = {_value(v)}" for k, v in scalars.items())
    for key, table in tables.items():
        lines.append(_to_toml(table, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def _is_table(value: Any) -> bool:
    # Boards stay inline tables; everything else nested is a section.
    return isinstance(value, dict) and not {"backend"} & set(value)


class RunningBase:
    """``fsw up`` in a real process, with a test-side bus connection."""

    def __init__(self, run_dir: Path, text: str, args: tuple[str, ...] = ()) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "test-base.toml"
        self.path.write_text(text, encoding="utf-8")
        self.deployment: Deployment = parse(text, source=str(self.path), run_dir=run_dir)
        self.bus = Bus(
            "tester",
            self.deployment.bus.publish,
            self.deployment.bus.subscribe,
            subscribe=(b"hb.", b"evt.", b"tlm."),
        )
        self.client = CommandClient(self.deployment.bus.command, source="tester")
        self.history: list[Message] = []
        self.output = run_dir / "fsw-up.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fsw.cli", "up", str(self.path), "--run-dir", str(run_dir), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def names(self) -> list[str]:
        """Every process the supervisor runs."""
        return ["bus", "clock", *(p.name for p in self.deployment.processes)]

    def wait_for(self, predicate: Any, timeout_s: float = WAIT_S, what: str = "message") -> Message:
        """Return the first message (new or already seen) matching ``predicate``."""
        for message in self.history:
            if predicate(message):
                return message
        return self.next_matching(predicate, timeout_s, what)

    def next_matching(self, predicate: Any, timeout_s: float = WAIT_S, what: str = "message") -> Message:
        """Return the next message arriving that matches ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"fsw up exited ({self.process.returncode}):\n{self.log()}")
            if not self.bus.subscriber.poll(100):
                continue
            while (message := self.bus.receive()) is not None:
                self.history.append(message)
                if predicate(message):
                    return message
        raise AssertionError(f"no {what} within {timeout_s} s")

    def wait_ready(self, timeout_s: float = WAIT_S) -> dict[str, int]:
        """Wait until every process heartbeats as running; return their pids."""
        pids: dict[str, int] = {}

        def all_running(message: Message) -> bool:
            if message.kind is Kind.HEARTBEAT and message.data.get("state") == "running":
                pids[message.source] = int(message.data["pid"])
            return set(self.names) <= set(pids)

        self.next_matching(all_running, timeout_s, "heartbeat from every process")
        return pids

    def event(self, name: str, source: str | None = None, timeout_s: float = WAIT_S) -> Message:
        """Wait for event ``name`` (from ``source``)."""
        return self.wait_for(
            lambda m: m.kind is Kind.EVENT and m.name == name and (source is None or m.source == source),
            timeout_s,
            f"event {name}",
        )

    def status(self) -> dict[str, Any]:
        """The supervisor's status reply."""
        return query_status(self.deployment.bus.status, timeout_s=5.0)

    def log(self) -> str:
        """What ``fsw up`` printed, plus the tail of every child's log."""
        text = self.output.read_text(errors="replace")
        for path in sorted((self.run_dir / "logs").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-15:]
            text += f"\n--- {path.name}\n" + "\n".join(tail)
        return text

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM the supervisor and wait for it; return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        """Kill what is left and close the test-side sockets. Idempotent."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in descendants(self.process.pid):
            os.kill(pid, signal.SIGKILL)
        self.client.close()
        self.bus.close()


@pytest.fixture
def start_base(run_dir: Path) -> Iterator[Any]:
    """Start a base: ``start_base(extra_toml="", *args)``; it is stopped after the test."""
    bases: list[RunningBase] = []

    def start(extra: str = "", *args: str) -> RunningBase:
        base = RunningBase(run_dir, deployment_text(extra), args)
        bases.append(base)
        return base

    yield start
    for base in bases:
        base.stop()
