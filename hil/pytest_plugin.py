"""pytest plugin of the HIL harness (registered as the ``pytest11`` entry point ``lunar_fsw_hil``).

Fixtures:

* ``hil_run_dir``: a short fresh directory for a base's sockets and logs
  (ipc paths must stay under about 100 bytes), removed after the test.
* ``hil_base``: a factory ``hil_base(deployment_text, *fsw_up_args)`` that starts
  a :class:`~hil.testing.HilBase` in ``hil_run_dir``, waits until it is up, and
  stops it after the test.
* ``hil_device``: the device path of real hardware, from ``$FSW_HIL_DEVICE``.

Marker ``hil``: a test that needs real hardware. It is skipped unless
``FSW_HIL_DEVICE`` names the device, so hardware tests are opt-in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.testing import HilBase

DEVICE_VARIABLE = "FSW_HIL_DEVICE"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``hil`` marker."""
    config.addinivalue_line(
        "markers", f"hil: needs real flight hardware; runs only when {DEVICE_VARIABLE} names the device"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``hil``-marked tests unless a device is named."""
    del config
    if os.environ.get(DEVICE_VARIABLE):
        return
    skip = pytest.mark.skip(reason=f"real hardware test: set {DEVICE_VARIABLE} to the device to run it")
    for item in items:
        if item.get_closest_marker("hil") is not None:
            item.add_marker(skip)


@pytest.fixture
def hil_run_dir() -> Iterator[Path]:
    """A short, fresh run directory, removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="fsw-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hil_base(hil_run_dir: Path) -> Iterator[Callable[..., HilBase]]:
    """Start bases with ``hil_base(deployment_text, *fsw_up_args)``; each is stopped after the test."""
    bases: list[HilBase] = []

    def start(deployment_text: str, *args: str, run_dir: Path | None = None) -> HilBase:
        base = HilBase(deployment_text, run_dir or hil_run_dir / f"base{len(bases)}", args)
        bases.append(base)
        return base.start()

    yield start
    for base in bases:
        base.stop()


@pytest.fixture
def hil_device() -> str:
    """The device named by ``$FSW_HIL_DEVICE`` (the test is skipped without it)."""
    device = os.environ.get(DEVICE_VARIABLE)
    if not device:
        pytest.skip(f"set {DEVICE_VARIABLE} to run against real hardware")
    return device
