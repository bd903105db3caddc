"""The base mode machine: the table's rules, and a rule-based property test of its invariants."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fsw.modes import (
    BOOT,
    EMERGENCY,
    MODES,
    NOMINAL,
    SAFE,
    TRANSITIONS,
    BaseModes,
    ModeChange,
    Refusal,
)

HOLD_S = 100.0


def test_boot_goes_nominal_only_with_no_red_monitor() -> None:
    clear = BaseModes(recovery_hold_s=HOLD_S)
    change = clear.step(0.0)
    assert isinstance(change, ModeChange)
    assert (change.previous, change.mode) == (BOOT, NOMINAL)
    red = BaseModes(recovery_hold_s=HOLD_S)
    red.set_red({"battery_soc_low"}, 0.0)
    assert red.step(0.0) is not None
    assert red.mode == SAFE  # never boots blind into NOMINAL


def test_safe_recovers_on_its_own_only_after_the_hold() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.step(0.0)
    modes.set_red({"m"}, 10.0)
    change = modes.request(SAFE, "monitor m red")
    assert isinstance(change, ModeChange)
    assert change.cause == "monitor m red"
    assert modes.step(50.0) is None  # still red
    modes.set_red(set(), 60.0)
    assert modes.step(159.0) is None  # clear for 99 s of 100
    change = modes.step(160.0)
    assert change is not None
    assert (change.previous, change.mode, change.by) == (SAFE, NOMINAL, "auto")


def test_emergency_is_left_only_by_ground() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.step(0.0)
    modes.request(EMERGENCY, "reactor trip confirmed")
    assert modes.mode == EMERGENCY
    assert modes.step(10_000.0) is None
    refused = modes.request(SAFE, "auto tries")
    assert isinstance(refused, Refusal)
    change = modes.request(SAFE, "ground: make safe", by="ground")
    assert isinstance(change, ModeChange)
    assert modes.mode == SAFE


def test_ground_cannot_command_nominal_over_a_red_monitor() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.step(0.0)
    modes.request(SAFE, "x")
    modes.set_red({"fuel_hot"}, 1.0)
    refused = modes.request(NOMINAL, "ground", by="ground")
    assert isinstance(refused, Refusal)
    assert "fuel_hot" in refused.reason


def test_every_row_names_real_modes_and_a_guard_that_exists() -> None:
    for row in TRANSITIONS:
        assert row.dest in MODES
        assert set(row.sources) <= set(MODES)
        assert callable(getattr(BaseModes, row.guard))
        assert row.who in ("auto", "ground")


class ModeMachine(RuleBasedStateMachine):
    """Any sequence of monitor changes, time, and requests by fault protection or ground."""

    def __init__(self) -> None:
        super().__init__()
        self.modes = BaseModes(recovery_hold_s=HOLD_S)
        self.now_s = 0.0
        self.left_emergency_by: list[str] = []

    @rule(red=st.sets(st.sampled_from(["a", "b", "c"]), max_size=3), dt_s=st.floats(0.0, 300.0))
    def monitors_change(self, red: set[str], dt_s: float) -> None:
        self.now_s += dt_s
        self.modes.set_red(red, self.now_s)

    @rule(dt_s=st.floats(0.0, 300.0))
    def time_passes(self, dt_s: float) -> None:
        self.now_s += dt_s
        self._note(self.modes.step(self.now_s))

    @rule(mode=st.sampled_from(MODES), by=st.sampled_from(["auto", "ground"]))
    def request(self, mode: str, by: str) -> None:
        self._note(self.modes.request(mode, "test", by=by))

    def _note(self, outcome: ModeChange | Refusal | None) -> None:
        if not isinstance(outcome, ModeChange):
            return
        if outcome.previous == EMERGENCY:
            self.left_emergency_by.append(outcome.by)
        if outcome.mode == NOMINAL and outcome.by == "auto":
            assert not self.modes.red_monitors, "autonomous NOMINAL while a red monitor stands"

    @invariant()
    def exactly_one_defined_mode(self) -> None:
        assert self.modes.mode in MODES

    @invariant()
    def emergency_left_only_by_ground(self) -> None:
        assert all(by == "ground" for by in self.left_emergency_by)


TestModeMachine = ModeMachine.TestCase
