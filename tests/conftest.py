"""Shared fixtures: a real base in real processes, and leak checks.

Every test fails if it leaves a child process behind. Integration tests start
``fsw up`` as a real OS process and wait for handshakes (every process's
heartbeat, state ``running``, seen through the broker), never for a sleep.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from fsw.messages import Message
from hil.testing import HilBase, merge_toml
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
    """The default base with test overrides; tables in ``extra`` merge key by key."""
    return merge_toml(base, TEST_OVERRIDES, extra)


class RunningBase(HilBase):
    """A started :class:`~hil.testing.HilBase` with the short names these tests use."""

    def wait_ready(self) -> dict[str, int]:
        """Pids of every process (the base is already up: ``start`` waited for it)."""
        return dict(self.pids)

    def next_matching(self, predicate: Any, timeout_s: float = WAIT_S, what: str = "message") -> Message:
        """The next message arriving that matches ``predicate``."""
        return self.await_message(predicate, timeout_s, what=what)

    def wait_for(self, predicate: Any, timeout_s: float = WAIT_S, what: str = "message") -> Message:
        """The first message, heard already or arriving, that matches ``predicate``."""
        return self.await_message(predicate, timeout_s, include_history=True, what=what)

    def event(self, name: str, source: str | None = None, timeout_s: float = WAIT_S) -> Message:
        """Event ``name`` (from ``source``), heard already or arriving."""
        return self.await_event(name, source, timeout_s=timeout_s)


@pytest.fixture
def start_base(run_dir: Path) -> Iterator[Any]:
    """Start a base: ``start_base(extra_toml="", *args)``; it is stopped after the test."""
    bases: list[RunningBase] = []

    def start(extra: str = "", *args: str) -> RunningBase:
        base = RunningBase(deployment_text(extra), run_dir, args)
        bases.append(base)
        base.start()
        return base

    yield start
    for base in bases:
        base.stop()
