"""Worked example (docs/hil.md): record an anomaly once, then assert the flight response on sim and on replay.

The anomaly: two minutes in, the power board's battery gauge reads 0.62 low. The
flight software believes the battery is at 82 % depth of discharge and sheds load
tiers, highest first, one per control cycle. The same test runs against the
simulated board with the fault injected, and against the power board replaying a
recording of that run: the flight code path is the same, so the response is too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hil.testing import HilBase, boards_layer, merge_toml, within_range
from subsystems.deployment import DEFAULT_DEPLOYMENT
from tests.hil.conftest import RUN, SCENARIO

FAULT_AT_S = 120.0


@pytest.fixture(params=["sim", "replay"])
def base(request: pytest.FixtureRequest, hil_base: Callable[..., HilBase], recording: Path) -> HilBase:
    """The default base, its power board either simulated with the fault or replaying the recording."""
    if request.param == "sim":
        return hil_base(DEFAULT_DEPLOYMENT, *RUN, "--scenario", str(SCENARIO))
    replayed = merge_toml(
        DEFAULT_DEPLOYMENT, boards_layer({"power": {"backend": "replay", "log": str(recording)}})
    )
    return hil_base(replayed, *RUN)


def test_gauge_fault_sheds_every_tier_highest_first(base: HilBase) -> None:
    mode = base.await_event("power_mode_changed", "power", {"mode": "SHEDDING"})
    assert mode.t_s == FAULT_AT_S
    shed = [base.await_event("load_shed", "power", {"tier": tier}) for tier in (4, 3, 2, 1)]
    assert [e.t_s for e in shed] == [FAULT_AT_S + n for n in range(4)]
    base.assert_telemetry("power", "battery_soc", within_range(0.15, 0.20))
    base.assert_telemetry("power", "tiers_shed", 0b1111)
    base.assert_event_count(4, "load_shed", "power")
