"""The base's mode machine: modes, who may move between them, and on what condition.

Built with ``transitions`` from a table beside the model (:data:`TRANSITIONS`): each row
is a trigger, the modes it leaves, the mode it enters, the named guard (a method of
:class:`BaseModes` over what fault protection knows), and who may pull it: ``auto``
(fault protection on its own) or ``ground`` (a command). docs/fault-protection.md has
the same table.

Modes
    ``BOOT`` (start, until the first look at the monitors), ``NOMINAL``, ``DEGRADED``
    (a subsystem impaired, the base working), ``SAFE`` (essential functions only,
    awaiting ground or an autonomous recovery), ``SURVIVAL`` (energy-starved: minimum
    loads, survival heaters), ``EMERGENCY`` (reactor trip confirmed: loads shed, the base
    made safe).

Red monitors come in two sorts. An *impairment* is a red monitor whose response asks for
``DEGRADED`` (a lost converter, a damaged radiator): the base works on, degraded, for as
long as it stands. Every other red monitor is a *danger*. Recovery waits until no danger
has stood for ``recovery_hold_s`` of mission time, and goes to ``NOMINAL`` only when no
monitor at all has been red for ``recovery_hold_s`` (to ``DEGRADED`` while an impairment
stands). Every autonomous recovery also waits ``recovery_hold_s`` after the mode it leaves
was entered: a mode ground asked for is not undone at the next frame, and each step of a
staged recovery (``SURVIVAL`` -> ``SAFE`` -> ``NOMINAL``) holds in turn.

Rules the table keeps: the base never boots blind into ``NOMINAL`` while a red monitor
stands; it never returns to ``NOMINAL`` on its own while a red monitor stands, nor before
every monitor has been clear for ``recovery_hold_s`` of mission time; ``EMERGENCY`` is
left by a ground command, or, with ``emergency_exit`` on, to ``SAFE`` once no danger has
stood for the hold (which needs the reactor's trip reset first). Every change is a
:class:`ModeChange` with its cause.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from transitions import Machine

BOOT: Final = "BOOT"
NOMINAL: Final = "NOMINAL"
DEGRADED: Final = "DEGRADED"
SAFE: Final = "SAFE"
SURVIVAL: Final = "SURVIVAL"
EMERGENCY: Final = "EMERGENCY"
MODES: Final = (BOOT, NOMINAL, DEGRADED, SAFE, SURVIVAL, EMERGENCY)

AUTO: Final = "auto"
GROUND: Final = "ground"

#: Mode changes kept in memory by :class:`BaseModes`.
MAX_CHANGES_KEPT: Final = 1000

#: Default mission time every monitor must be clear before an autonomous return to NOMINAL.
RECOVERY_HOLD_S: Final = 600.0


@dataclass(frozen=True)
class Rule:
    """One row of the mode table."""

    trigger: str
    sources: tuple[str, ...]
    dest: str
    guard: str
    who: str
    text: str


_ANY_BUT_EMERGENCY: Final = (BOOT, NOMINAL, DEGRADED, SAFE, SURVIVAL)

#: The mode table. Order matters where one trigger has several rows: the first whose guard holds wins.
TRANSITIONS: Final = (
    Rule("boot_complete", (BOOT,), NOMINAL, "no_red", AUTO, "first look at the monitors: none red"),
    Rule("boot_complete", (BOOT,), DEGRADED, "only_impaired", AUTO, "first look: impairments only"),
    Rule("boot_complete", (BOOT,), SAFE, "any_red", AUTO, "first look at the monitors: a danger stands"),
    Rule("degrade", (NOMINAL,), DEGRADED, "always", AUTO, "a monitor's response asks for DEGRADED"),
    Rule("safe", (NOMINAL, DEGRADED), SAFE, "always", AUTO, "a monitor's response or health escalation"),
    Rule("survival", (NOMINAL, DEGRADED, SAFE), SURVIVAL, "always", AUTO, "energy-starved"),
    Rule("emergency", _ANY_BUT_EMERGENCY, EMERGENCY, "always", AUTO, "reactor trip confirmed"),
    Rule("recover", (DEGRADED, SAFE), NOMINAL, "clear_for_hold", AUTO, "every monitor clear for the hold"),
    Rule("recover", (SAFE,), DEGRADED, "impaired_for_hold", AUTO, "no danger for the hold, impaired"),
    Rule("recover", (SURVIVAL,), SAFE, "safe_for_hold", AUTO, "energy back: no danger for the hold"),
    Rule(
        "recover",
        (EMERGENCY,),
        SAFE,
        "emergency_cleared",
        AUTO,
        "only if emergency_exit: the trip reset and every monitor clear for the hold",
    ),
    Rule("ground_nominal", (DEGRADED, SAFE, SURVIVAL, EMERGENCY), NOMINAL, "no_red", GROUND, "ground"),
    Rule("ground_safe", (NOMINAL, DEGRADED, SURVIVAL, EMERGENCY), SAFE, "always", GROUND, "ground"),
    Rule("ground_degraded", (NOMINAL, SAFE), DEGRADED, "always", GROUND, "ground"),
)

#: Which trigger a mode request leads to, by who asks.
_REQUESTS: Final = {
    (AUTO, DEGRADED): "degrade",
    (AUTO, SAFE): "safe",
    (AUTO, SURVIVAL): "survival",
    (AUTO, EMERGENCY): "emergency",
    (GROUND, NOMINAL): "ground_nominal",
    (GROUND, SAFE): "ground_safe",
    (GROUND, DEGRADED): "ground_degraded",
}


@dataclass(frozen=True)
class ModeChange:
    """A change of base mode: from, to, when (mission s), why and by whom."""

    previous: str
    mode: str
    t_s: float
    cause: str
    by: str


@dataclass(frozen=True)
class Refusal:
    """A mode request the table does not allow now, and why."""

    request: str
    reason: str


@dataclass
class BaseModes:
    """The model the machine drives: the mode, and what the guards look at.

    ``red_monitors`` is kept by fault protection (names of monitors now red), and
    ``impaired`` (those of them whose response asks for DEGRADED); ``clear_since_s`` is
    the mission time since which no danger (a red monitor not an impairment) has stood
    (None while one does), ``quiet_since_s`` the mission time since which no monitor at
    all has been red (None while one is), ``entered_s`` when the mode was entered.
    Methods with the guards' names are the guards. Pure: no I/O, no wall clock.
    """

    recovery_hold_s: float = RECOVERY_HOLD_S
    initial: str = BOOT
    #: Whether EMERGENCY may be left without ground: to SAFE once no monitor has been red
    #: for the hold (the reactor's trip reset, by a stored sequence). Off: ground only.
    emergency_exit: bool = False
    red_monitors: set[str] = field(default_factory=set)
    impaired: set[str] = field(default_factory=set)
    clear_since_s: float | None = 0.0
    quiet_since_s: float | None = 0.0
    now_s: float = 0.0
    entered_s: float = 0.0
    #: The latest changes, newest last (bounded: the event log keeps the history).
    changes: deque[ModeChange] = field(default_factory=lambda: deque(maxlen=MAX_CHANGES_KEPT))
    state: str = field(init=False, default=BOOT)

    def __post_init__(self) -> None:
        self.machine = Machine(
            model=self,
            states=list(MODES),
            initial=self.initial if self.initial in MODES else BOOT,
            auto_transitions=False,
            ignore_invalid_triggers=True,
            send_event=True,
            after_state_change="_record",
        )
        for rule in TRANSITIONS:
            self.machine.add_transition(rule.trigger, list(rule.sources), rule.dest, conditions=rule.guard)
        self._cause = ""
        self._by = AUTO

    @property
    def mode(self) -> str:
        """The current mode."""
        return str(self.state)

    # guards ------------------------------------------------------------------------

    def always(self, _event: Any = None) -> bool:
        """No condition."""
        return True

    def no_red(self, _event: Any = None) -> bool:
        """No monitor is red."""
        return not self.red_monitors

    def any_red(self, _event: Any = None) -> bool:
        """A monitor is red."""
        return bool(self.red_monitors)

    def only_impaired(self, _event: Any = None) -> bool:
        """Monitors are red, and every one of them is an impairment."""
        return bool(self.red_monitors) and self.red_monitors <= self.impaired

    def safe_for_hold(self, _event: Any = None) -> bool:
        """No danger has stood for ``recovery_hold_s`` (impairments may stand), and the mode
        has held that long."""
        return (
            not (self.red_monitors - self.impaired)
            and self.clear_since_s is not None
            and self.now_s - self.clear_since_s >= self.recovery_hold_s
            and self.now_s - self.entered_s >= self.recovery_hold_s
        )

    def clear_for_hold(self, _event: Any = None) -> bool:
        """No monitor red for ``recovery_hold_s``, and the mode has held that long."""
        return (
            not self.red_monitors
            and self.quiet_since_s is not None
            and self.now_s - self.quiet_since_s >= self.recovery_hold_s
            and self.safe_for_hold()
        )

    def impaired_for_hold(self, _event: Any = None) -> bool:
        """Impairments stand, and :meth:`safe_for_hold`."""
        return bool(self.impaired) and self.safe_for_hold()

    def emergency_cleared(self, _event: Any = None) -> bool:
        """``emergency_exit`` is on, the trip is reset (no danger), and :meth:`safe_for_hold`.

        Impairments may stand: SAFE then recovers to DEGRADED (a lasting impairment, a radio
        fault say, must not hold the base in EMERGENCY once its reactor runs again).
        """
        return self.emergency_exit and self.safe_for_hold()

    # inputs ------------------------------------------------------------------------

    def set_red(self, red_monitors: set[str], now_s: float, impaired: set[str] | None = None) -> None:
        """Update which monitors are red at mission time ``now_s`` (``impaired``: which are impairments)."""
        impaired = set(impaired or ()) & set(red_monitors)
        danger_before = bool(self.red_monitors - self.impaired)
        danger_now = bool(set(red_monitors) - impaired)
        if danger_now and not danger_before:
            self.clear_since_s = None
        elif danger_before and not danger_now:
            self.clear_since_s = now_s
        if red_monitors and not self.red_monitors:
            self.quiet_since_s = None
        elif self.red_monitors and not red_monitors:
            self.quiet_since_s = now_s
        self.red_monitors = set(red_monitors)
        self.impaired = impaired
        self.now_s = now_s

    def hold_from(self, now_s: float) -> None:
        """Count the current mode as entered at ``now_s`` (a mode resumed after a restart
        holds ``recovery_hold_s`` from there before any autonomous recovery)."""
        self.entered_s = now_s

    def step(self, now_s: float) -> ModeChange | None:
        """Autonomous moves due at ``now_s``: finish booting, or recover after the hold."""
        self.now_s = now_s
        trigger = "boot_complete" if self.mode == BOOT else "recover"
        return self._pull(trigger, "monitors clear for the hold" if trigger == "recover" else "boot", AUTO)

    def request(self, mode: str, cause: str, by: str = AUTO) -> ModeChange | Refusal | None:
        """Ask for ``mode`` (by fault protection, ``auto``, or by ``ground``).

        Returns the change, a :class:`Refusal` saying why the table does not allow it,
        or None when the base is in ``mode`` already.
        """
        if mode == self.mode:
            return None
        trigger = _REQUESTS.get((by, mode))
        if trigger is None:
            allowed = sorted(m for (who, m) in _REQUESTS if who == by)
            return Refusal(mode, f"{by} may not ask for {mode} (may ask for: {', '.join(allowed)})")
        change = self._pull(trigger, cause, by)
        if change is not None:
            return change
        if self.mode == EMERGENCY and by == AUTO:
            return Refusal(mode, "EMERGENCY is left by a ground command or its own recovery only")
        if not self.no_red() and mode == NOMINAL:
            return Refusal(mode, f"red monitors stand: {', '.join(sorted(self.red_monitors))}")
        return Refusal(mode, f"no transition from {self.mode} to {mode}")

    def _pull(self, trigger: str, cause: str, by: str) -> ModeChange | None:
        mode = self.mode
        self._cause, self._by = cause, by
        getattr(self, trigger)()
        return self.changes[-1] if self.mode != mode else None

    def _record(self, event: Any) -> None:
        self.entered_s = self.now_s
        self.changes.append(
            ModeChange(event.transition.source, event.transition.dest, self.now_s, self._cause, self._by)
        )


__all__ = [
    "MODES",
    "TRANSITIONS",
    "BaseModes",
    "ModeChange",
    "Refusal",
    "Rule",
]
