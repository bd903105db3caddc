"""Monitors declared as data: loading with clear errors, safe expressions, and the state
machine of each kind (persistence, rearm and one-shot, enable/disable, NaN)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.errors import ConfigError
from fsw.monitors import MonitorBank, parse_expression, parse_monitors

MONITORS = """
[[monitor]]
name = "soc"
kind = "limit"
point = "power.battery_soc"
yellow_low = 0.30
red_low = 0.20
persistence = 2
response = { sequence = "shed_science", mode = "DEGRADED" }

[[monitor]]
name = "fuel_rate"
kind = "rate"
point = "reactor.fuel_temp_c"
yellow_high = 0.5
red_high = 1.0

[[monitor]]
name = "fuel_fresh"
kind = "stale"
point = "reactor.fuel_temp_c"
max_age_s = 5.0
policy = "one_shot"
response = { mode = "SAFE" }

[[monitor]]
name = "dark_and_cold"
kind = "expression"
expression = "power.battery_soc < 0.5 and not reactor.converter_ok"
level = "yellow"
"""


#: The start of a monitor table named "a".
A = "[[monitor]]\nname = 'a'\n"


def bank() -> MonitorBank:
    return MonitorBank(parse_monitors(MONITORS, source="m.toml"))


def test_limit_goes_yellow_then_red_after_its_persistence_and_responds_once() -> None:
    b = bank()
    assert b.observe("power.battery_soc", 0.25, 1.0) == []  # one sample is not enough
    (yellow,) = b.observe("power.battery_soc", 0.25, 2.0)
    assert (yellow.previous, yellow.state, yellow.respond) == ("green", "yellow", False)
    b.observe("power.battery_soc", 0.1, 3.0)
    (red,) = b.observe("power.battery_soc", 0.1, 4.0)
    assert (red.state, red.respond, red.response.sequence, red.response.mode) == (
        "red",
        True,
        "shed_science",
        "DEGRADED",
    )
    assert b.observe("power.battery_soc", 0.1, 5.0) == []  # stays red, no second response
    b.observe("power.battery_soc", 0.9, 6.0)
    (green,) = b.observe("power.battery_soc", 0.9, 7.0)
    assert green.state == "green"


def test_a_reading_that_is_not_a_number_is_red() -> None:
    b = bank()
    b.observe("power.battery_soc", math.nan, 1.0)
    (red,) = b.observe("power.battery_soc", math.nan, 2.0)
    assert red.state == "red"


def test_rate_of_change_per_second() -> None:
    b = bank()
    assert b.observe("reactor.fuel_temp_c", 800.0, 0.0) == []
    assert b.observe("reactor.fuel_temp_c", 800.4, 1.0) == []
    (yellow,) = b.observe("reactor.fuel_temp_c", 801.2, 2.0)
    assert yellow.state == "yellow"
    assert yellow.cause["rate_per_s"] == pytest.approx(0.8)
    (red,) = b.observe("reactor.fuel_temp_c", 803.6, 4.0)
    assert red.state == "red"


def test_stale_point_is_red_one_shot_latches_until_rearmed() -> None:
    b = bank()
    b.observe("reactor.fuel_temp_c", 800.0, 0.0)
    assert [t.monitor for t in b.check(5.0)] == []
    (stale,) = [t for t in b.check(5.5) if t.monitor == "fuel_fresh"]
    assert (stale.state, stale.respond, stale.response.mode) == ("red", True, "SAFE")
    b.observe("reactor.fuel_temp_c", 800.0, 6.0)  # fresh again, but one-shot: latched
    assert b.state("fuel_fresh") == "red"
    rearmed = b.rearm("fuel_fresh", 7.0)
    assert rearmed is not None
    assert b.state("fuel_fresh") == "green"


def test_expression_over_several_points_waits_for_all_of_them() -> None:
    b = bank()
    b.observe("power.battery_soc", 0.4, 1.0)
    assert [t for t in b.check(1.0) if t.monitor == "dark_and_cold"] == []  # converter_ok unknown
    b.observe("reactor.converter_ok", False, 2.0)
    (yellow,) = [t for t in b.check(2.0) if t.monitor == "dark_and_cold"]
    assert yellow.state == "yellow"
    assert not yellow.respond  # only red responds


def test_disabled_monitor_says_so_and_does_nothing() -> None:
    b = bank()
    change = b.set_enabled("soc", False, 1.0)
    assert change is not None
    assert change.state == "disabled"
    assert b.observe("power.battery_soc", 0.0, 2.0) == []
    assert b.observe("power.battery_soc", 0.0, 3.0) == []
    b.set_enabled("soc", True, 4.0)
    assert b.state("soc") == "green"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (A + "kind = 'limit'\npoint = 'power.x'\n", "needs at least one of"),
        (A + "kind = 'limit'\npoint = 'x'\nred_low = 1\n", "point must be <source>.<point>"),
        (A + "kind = 'odd'\n", "kind must be one of"),
        (A + "kind = 'limit'\npoint = 'p.x'\nred_low = 2\nyellow_low = 1\n", "must rise"),
        (A + "kind = 'stale'\npoint = 'p.x'\nmax_age_s = 0\n", "max_age_s must be"),
        (A + "kind = 'expression'\nexpression = '__import__(\"os\")'\n", "not allowed"),
        (A + "kind = 'limit'\npoint = 'p.x'\nred_low = 1\ncolour = 1\n", "colour"),
        (A + "kind = 'limit'\npoint = 'p.x'\nred_low = 1\npersistence = 0\n", "persistence"),
        ("[[monitor]]\nname='a'\nkind='limit'\npoint='p.x'\nred_low=1\n[[monitor]]\nname='a'\nkind='limit'\n"
         "point='p.y'\nred_low=1\n", "two monitors are named 'a'"),
    ],
)  # fmt: skip
def test_bad_monitors_are_config_errors_naming_file_and_monitor(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"m\.toml") as info:
        parse_monitors(text, source="m.toml")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["p.x.__class__", "open('f')", "[1, 2]", "p.x if p.y else 1", "lambda: 1", "p.x ** 2", "x"],
)
def test_expressions_allow_only_arithmetic_comparisons_and_logic(text: str) -> None:
    with pytest.raises(ConfigError, match="expression"):
        parse_expression(text)


def test_expression_values() -> None:
    e = parse_expression(
        "(power.load_power_w - power.solar_power_w) / 1000 > 2.5 or power.mode == 'HARD_CUT'"
    )
    assert e.points == {"power.load_power_w", "power.solar_power_w", "power.mode"}
    assert e.value({"power.load_power_w": 5000, "power.solar_power_w": 1000, "power.mode": "NOMINAL"}) is True
    assert (
        e.value({"power.load_power_w": 2000, "power.solar_power_w": 1000, "power.mode": "NOMINAL"}) is False
    )
    assert e.value({"power.load_power_w": 2000}) is None  # not all points known yet
    assert parse_expression("p.x / p.y > 1").value({"p.x": 1, "p.y": 0}) is None  # no crash on 1/0


@given(st.text(max_size=200))
def test_any_text_parses_or_is_a_config_error(text: str) -> None:
    try:
        expression = parse_expression(text)
    except ConfigError:
        return
    expression.value(dict.fromkeys(expression.points, 1.0))


@given(
    st.lists(st.one_of(st.floats(allow_nan=True), st.none(), st.booleans(), st.text(max_size=3)), max_size=40)
)
def test_any_samples_keep_every_monitor_in_a_defined_state(values: list[object]) -> None:
    b = bank()
    for i, value in enumerate(values):
        b.observe("power.battery_soc", value, float(i))
        b.observe("reactor.fuel_temp_c", value, float(i))
        b.check(float(i))
        assert {b.state(n) for n in b.specs} <= {"green", "yellow", "red", "disabled"}


# --- event monitors ------------------------------------------------------------------------

EVENTS = """
[[monitor]]
name = "crashing"
kind = "event"
event = "supervisor.process_restarted"
count = 2
window_s = 600.0
clear_after_s = 300.0
response = { mode = "SAFE" }

[[monitor]]
name = "thermal_link"
kind = "event"
event = "thermal.board_link_lost"
clear_event = "thermal.board_link_restored"
response = { mode = "SAFE" }

[[monitor]]
name = "comms_restarts"
kind = "event"
event = "supervisor.process_restarted"
match = { process = "comms" }
level = "yellow"

[[monitor]]
name = "trip"
kind = "event"
event = "reactor.reactor_trip"
policy = "one_shot"
response = { mode = "EMERGENCY" }
"""


def event_bank() -> MonitorBank:
    return MonitorBank(parse_monitors(EVENTS, source="e.toml"))


def changes(transitions: list, monitor: str) -> list[tuple[str, str, bool]]:
    return [(t.previous, t.state, t.respond) for t in transitions if t.monitor == monitor]


def test_event_monitor_goes_red_on_count_events_within_the_window() -> None:
    b = event_bank()
    assert b.events == {
        "supervisor.process_restarted",
        "thermal.board_link_lost",
        "thermal.board_link_restored",
        "reactor.reactor_trip",
    }
    restarted = {"process": "power"}
    assert changes(b.observe_event("supervisor.process_restarted", restarted, 0.0), "crashing") == []
    # 700 s later the first restart has left the 600 s window: still one.
    assert changes(b.observe_event("supervisor.process_restarted", restarted, 700.0), "crashing") == []
    out = b.observe_event("supervisor.process_restarted", restarted, 1000.0)
    assert changes(out, "crashing") == [("green", "red", True)]
    (red,) = [t for t in out if t.monitor == "crashing"]
    assert red.response.mode == "SAFE"
    assert red.cause["count"] == 2
    assert red.cause["process"] == "power"  # the event's plain fields say why


def test_event_monitor_match_filters_on_the_events_fields() -> None:
    b = event_bank()
    assert (
        changes(b.observe_event("supervisor.process_restarted", {"process": "power"}, 1.0), "comms_restarts")
        == []
    )
    assert b.state("comms_restarts") == "green"
    out = b.observe_event("supervisor.process_restarted", {"process": "comms"}, 2.0)
    assert changes(out, "comms_restarts") == [("green", "yellow", False)]  # yellow never responds


def test_event_monitor_clears_on_its_clear_event() -> None:
    b = event_bank()
    assert (
        changes(b.observe_event("thermal.board_link_restored", {}, 1.0), "thermal_link") == []
    )  # green already
    out = b.observe_event("thermal.board_link_lost", {"error": "3 requests"}, 2.0)
    assert changes(out, "thermal_link") == [("green", "red", True)]
    assert changes(b.check(10_000.0), "thermal_link") == []  # a clear_event alone: no clearing by time
    out = b.observe_event("thermal.board_link_restored", {}, 10_001.0)
    assert changes(out, "thermal_link") == [("red", "green", False)]
    # Lost again: it responds again (rearm).
    assert changes(b.observe_event("thermal.board_link_lost", {}, 10_002.0), "thermal_link") == [
        ("green", "red", True)
    ]


def test_event_monitor_clears_after_quiet_time_counted_from_the_last_event() -> None:
    b = event_bank()
    b.observe_event("supervisor.process_restarted", {"process": "power"}, 0.0)
    b.observe_event("supervisor.process_restarted", {"process": "power"}, 10.0)
    assert b.state("crashing") == "red"
    b.observe_event("supervisor.process_restarted", {"process": "power"}, 100.0)  # a third, still red
    assert changes(b.check(399.0), "crashing") == []  # 299 s since the last one
    out = b.check(400.0)
    assert changes(out, "crashing") == [("red", "green", False)]
    (green,) = [t for t in out if t.monitor == "crashing"]
    assert green.cause["quiet_s"] == 300.0
    # The window starts over: one restart is not two.
    assert (
        changes(b.observe_event("supervisor.process_restarted", {"process": "power"}, 401.0), "crashing")
        == []
    )


def test_event_monitor_without_clearing_clears_after_600_s_and_one_shot_latches() -> None:
    b = event_bank()
    (spec,) = [s for s in parse_monitors(EVENTS, source="e.toml") if s.name == "comms_restarts"]
    assert (spec.clear_after_s, spec.clear_event) == (600.0, "")
    b.observe_event("supervisor.process_restarted", {"process": "comms"}, 0.0)
    assert changes(b.check(599.0), "comms_restarts") == []
    assert changes(b.check(600.0), "comms_restarts") == [("yellow", "green", False)]
    assert changes(b.observe_event("reactor.reactor_trip", {}, 1.0), "trip") == [("green", "red", True)]
    assert changes(b.check(10_000.0), "trip") == []  # one-shot: latched red until rearmed
    assert b.state("trip") == "red"
    rearmed = b.rearm("trip", 10_001.0)
    assert rearmed is not None
    assert b.state("trip") == "green"


def test_disabled_event_monitor_ignores_its_events() -> None:
    b = event_bank()
    b.set_enabled("thermal_link", False, 0.0)
    assert changes(b.observe_event("thermal.board_link_lost", {}, 1.0), "thermal_link") == []
    assert b.state("thermal_link") == "disabled"
    b.set_enabled("thermal_link", True, 2.0)
    assert b.state("thermal_link") == "green"


E = "[[monitor]]\nname = 'e'\nkind = 'event'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (E, "event must be <source>.<event>, got None"),
        (E + "event = 'lost'\n", "event must be <source>.<event>, got 'lost'"),
        (E + "event = 'a.b'\nclear_event = 'back'\n", "clear_event must be <source>.<event>"),
        (E + "event = 'a.b'\nmatch = 'x'\n", "match must be a table"),
        (E + "event = 'a.b'\nmatch = { x = [1] }\n", "match must be a table"),
        (E + "event = 'a.b'\ncount = 0\n", "count must be a whole number from 1 to 1000"),
        (E + "event = 'a.b'\ncount = true\n", "count must be a whole number"),
        (E + "event = 'a.b'\ncount = 3\n", "count > 1 needs window_s"),
        (E + "event = 'a.b'\nwindow_s = 'long'\n", "window_s must be a finite number"),
        (E + "event = 'a.b'\nclear_after_s = -1\n", "clear_after_s must not be negative"),
        (E + "event = 'a.b'\npoint = 'a.c'\n", "names its event in `event`, not `point`"),
        (E + "event = 'a.b'\nred_high = 1\n", "apply to limit and rate monitors only"),
        (A + "kind = 'limit'\npoint = 'p.x'\nred_low = 1\nevent = 'a.b'\ncount = 2\n",
         "event, count apply to event monitors only"),
        (E + "event = 'a.b'\nlevel = 'orange'\n", "level must be yellow or red"),
    ],
)  # fmt: skip
def test_bad_event_monitors_are_config_errors_naming_file_monitor_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"e\.toml: monitor 'e'|e\.toml: monitor 'a'") as info:
        parse_monitors(text, source="e.toml")
    assert message in str(info.value)
