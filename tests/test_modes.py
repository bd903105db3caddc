"""The base mode machine: the table's rules (dangers and impairments), and a rule-based
property test of its invariants."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fsw.modes import (
    BOOT,
    DEGRADED,
    EMERGENCY,
    MODES,
    NOMINAL,
    SAFE,
    SURVIVAL,
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


def test_boot_with_only_impairments_goes_degraded_then_nominal_after_the_hold() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.set_red({"converter_lost"}, 0.0, {"converter_lost"})
    change = modes.step(0.0)
    assert change is not None
    assert (change.previous, change.mode) == (BOOT, DEGRADED)
    modes.set_red(set(), 50.0, set())
    assert modes.step(149.0) is None  # the impairment cleared 99 s ago
    change = modes.step(150.0)
    assert change is not None
    assert (change.previous, change.mode, change.by) == (DEGRADED, NOMINAL, "auto")


def test_safe_recovers_to_degraded_while_an_impairment_stands() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.step(0.0)
    modes.set_red({"fuel_hot", "converter_lost"}, 10.0, {"converter_lost"})
    modes.request(SAFE, "monitor fuel_hot")
    modes.set_red({"converter_lost"}, 20.0, {"converter_lost"})  # the danger clears
    assert modes.step(119.0) is None
    change = modes.step(120.0)
    assert change is not None
    assert (change.previous, change.mode) == (SAFE, DEGRADED)  # never NOMINAL over the impairment
    assert modes.step(10_000.0) is None
    refused = modes.request(NOMINAL, "ground", by="ground")
    assert isinstance(refused, Refusal)
    assert "converter_lost" in refused.reason


def test_a_mode_ground_asked_for_holds_before_any_autonomous_recovery() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.step(0.0)
    modes.now_s = 5_000.0  # nothing red for a long time
    change = modes.request(SAFE, "ground command", by="ground")
    assert isinstance(change, ModeChange)
    assert modes.step(5_001.0) is None  # not undone at the next frame
    change = modes.step(5_100.0)
    assert change is not None
    assert (change.previous, change.mode) == (SAFE, NOMINAL)


def test_survival_recovers_in_stages_each_after_the_hold() -> None:
    modes = BaseModes(recovery_hold_s=HOLD_S)
    modes.step(0.0)
    modes.set_red({"battery_soc"}, 10.0)
    modes.request(SURVIVAL, "monitor battery_soc")
    modes.set_red(set(), 20.0)
    first = modes.step(120.0)
    assert first is not None
    assert (first.previous, first.mode) == (SURVIVAL, SAFE)
    assert modes.step(121.0) is None  # SAFE holds in turn
    second = modes.step(220.0)
    assert second is not None
    assert (second.previous, second.mode) == (SAFE, NOMINAL)


#: Monitors the property test draws from: dangers, and impairments (response DEGRADED).
DANGERS = ("a", "b", "c")
IMPAIRMENTS = ("i", "j")
RECOVERIES = {(DEGRADED, NOMINAL), (SAFE, NOMINAL), (SAFE, DEGRADED), (SURVIVAL, SAFE), (EMERGENCY, SAFE)}


class ModeMachine(RuleBasedStateMachine):
    """Any sequence of monitor changes (dangers and impairments), time, and requests by fault
    protection or ground, with the autonomous exit from EMERGENCY off or on; the test keeps its
    own account of when each kind of red monitor last stood."""

    def __init__(self) -> None:
        super().__init__()
        self.modes = BaseModes(recovery_hold_s=HOLD_S)
        self.now_s = 0.0
        self.red: set[str] = set()
        self.danger_clear_since_s: float | None = 0.0
        self.red_clear_since_s: float | None = 0.0
        self.entered_s = 0.0
        self.left_emergency_by: list[str] = []

    @initialize(emergency_exit=st.booleans())
    def configure(self, emergency_exit: bool) -> None:
        self.modes = BaseModes(recovery_hold_s=HOLD_S, emergency_exit=emergency_exit)

    @rule(red=st.sets(st.sampled_from(DANGERS + IMPAIRMENTS), max_size=5), dt_s=st.floats(0.0, 300.0))
    def monitors_change(self, red: set[str], dt_s: float) -> None:
        self.now_s += dt_s
        danger_before, danger_now = bool(self.red - set(IMPAIRMENTS)), bool(red - set(IMPAIRMENTS))
        if danger_now and not danger_before:
            self.danger_clear_since_s = None
        elif danger_before and not danger_now:
            self.danger_clear_since_s = self.now_s
        if red and not self.red:
            self.red_clear_since_s = None
        elif self.red and not red:
            self.red_clear_since_s = self.now_s
        self.red = set(red)
        self.modes.set_red(red, self.now_s, red & set(IMPAIRMENTS))

    @rule(dt_s=st.one_of(st.just(0.0), st.floats(0.0, 300.0)))
    def time_passes(self, dt_s: float) -> None:
        self.now_s += dt_s
        self._note(self.modes.step(self.now_s))

    @rule(mode=st.sampled_from(MODES), by=st.sampled_from(["auto", "ground"]))
    def request(self, mode: str, by: str) -> None:
        self.modes.now_s = self.now_s
        self._note(self.modes.request(mode, "test", by=by))

    def _note(self, outcome: ModeChange | Refusal | None) -> None:
        if not isinstance(outcome, ModeChange):
            return
        if outcome.previous == EMERGENCY:
            self.left_emergency_by.append(outcome.by if outcome.by == "ground" else outcome.mode)
        if outcome.by == "auto":
            if outcome.mode == NOMINAL:
                assert not self.red, f"autonomous NOMINAL while {sorted(self.red)} stand"
            if outcome.previous != BOOT and (outcome.previous, outcome.mode) in RECOVERIES:
                self._check_hold(outcome)
        self.entered_s = self.now_s

    def _check_hold(self, change: ModeChange) -> None:
        held_s = self.now_s - self.entered_s
        assert held_s >= HOLD_S, f"{change.previous} -> {change.mode} after {held_s} s in {change.previous}"
        assert self.danger_clear_since_s is not None, "recovery while a danger stands"
        assert self.now_s - self.danger_clear_since_s >= HOLD_S, (
            "recovery before the danger was clear for the hold"
        )
        if change.mode == NOMINAL:  # EMERGENCY -> SAFE waits only for the danger (impairments may stand)
            assert self.red_clear_since_s is not None
            assert self.now_s - self.red_clear_since_s >= HOLD_S, (
                "NOMINAL before every monitor was clear for the hold"
            )

    @invariant()
    def exactly_one_defined_mode(self) -> None:
        assert isinstance(self.modes.state, str)
        assert self.modes.mode in MODES
        assert [m for m in MODES if self.modes.machine.is_state(m, self.modes)] == [self.modes.mode]

    @invariant()
    def emergency_left_only_by_ground_or_its_own_recovery(self) -> None:
        # By ground; on its own only with emergency_exit on, to SAFE, after the hold (_check_hold).
        allowed = {"ground", SAFE} if self.modes.emergency_exit else {"ground"}
        assert set(self.left_emergency_by) <= allowed, self.left_emergency_by


TestModeMachine = ModeMachine.TestCase
TestModeMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
