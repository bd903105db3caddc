"""The state store: values and events survive a kill -9 of the writer; a damaged file is
refused by name and moved aside whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.errors import StorageError
from fsw.store import StateStore, quarantine

WRITER = """
import sys
from fsw.store import StateStore
store = StateStore(sys.argv[1])
i = 0
while True:
    i += 1
    store.put("counter", {"i": i, "mode": "SAFE"}, float(i))
    store.append_event(float(i), "tick", {"i": i})
    if i == 200:
        print("ready", flush=True)
"""


def test_values_and_events_survive_a_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "fp.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"  # a handshake, not a sleep
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()
    with StateStore(path) as store:
        value = store.get("counter")
        assert value["mode"] == "SAFE"
        assert value["i"] >= 200
        events = list(store.events(limit=1_000_000))
        # Each put and append is its own transaction: the log is whole up to the kill.
        assert [e.data["i"] for e in events] == list(range(1, len(events) + 1))
        assert len(events) in (value["i"] - 1, value["i"])  # killed between the put and the append, or not


def test_the_event_log_is_bounded_and_counts_what_went(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", max_events=10) as store:
        for i in range(25):
            store.append_event(float(i), "e", {"i": i})
        kept = [e.data["i"] for e in store.events()]
        assert kept == list(range(15, 25))
        assert store.events_dropped == 15


def test_a_file_that_is_not_a_store_is_refused_and_moved_aside_whole(tmp_path: Path) -> None:
    path = tmp_path / "fp.sqlite"
    garbage = b"not a database at all " * 100
    path.write_bytes(garbage)
    with pytest.raises(StorageError, match=r"fp\.sqlite"):
        StateStore(path)
    moved = quarantine(path)
    assert moved.read_bytes() == garbage
    assert not path.exists()
    with StateStore(path) as fresh:
        assert fresh.get("anything", "default") == "default"


def test_closed_store_and_unstorable_values_are_storage_errors(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    with pytest.raises(StorageError, match="cannot be stored"):
        store.put("k", object(), 0.0)
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.get("k")


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=50)
@given(st.text(max_size=20), _values)
def test_what_is_put_is_what_is_got(
    tmp_path_factory: pytest.TempPathFactory, key: str, value: object
) -> None:
    with StateStore(tmp_path_factory.mktemp("kv") / "s.sqlite") as store:
        store.put(key, value, 1.0)
        assert store.get(key) == value
