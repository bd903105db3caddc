"""The physics fault kinds of each board: injected through the fault injector, seen in the
readings the flight side gets, and undone by clearing."""

from __future__ import annotations

import pytest

from hil.faults import FaultInjector, FaultSpec, default_board_descriptions, make_fault
from hil.physics import World

BOARD_DESCRIPTIONS = default_board_descriptions()


def fault(board: str, kind: str, **params: object) -> FaultSpec:
    return make_fault(BOARD_DESCRIPTIONS, board, kind, params=params)


def rig(seed: int = 3) -> FaultInjector:
    injector = FaultInjector(World(seed=seed, frame_period_s=1.0), None, run_seed=seed)
    injector.boards["reactor"].heartbeat()
    return injector


def step(injector: FaultInjector, frames: int = 1) -> None:
    for _ in range(frames):
        injector.boards["reactor"].heartbeat()
        injector.advance_to(injector.world.frame + 1)


def reading(injector: FaultInjector, board: str, channel: str) -> float:
    return float(injector.boards[board].read()[channel])


def test_cell_loss_drops_cells_and_voltage_then_clears() -> None:
    injector = rig()
    step(injector, 5)
    volts = reading(injector, "power", "battery_voltage_v")
    injector.request_inject(fault("power", "cell_loss", count=3))
    step(injector)
    assert reading(injector, "power", "battery_cells") == 28
    assert reading(injector, "power", "battery_voltage_v") < volts - 3 * 3.0
    injector.request_clear("power", "cell_loss")
    step(injector)
    assert reading(injector, "power", "battery_cells") == 31


def test_dust_blocks_its_fraction_of_the_light_until_cleaned() -> None:
    clean, dusty = rig(seed=5), rig(seed=5)
    dusty.request_inject(fault("power", "dust", fraction=0.4))
    step(clean, 10)
    step(dusty, 10)
    solar_w = reading(clean, "power", "solar_power_w")
    assert solar_w > 1000.0
    assert reading(dusty, "power", "solar_power_w") == pytest.approx(0.6 * solar_w, rel=1e-3)
    dusty.request_clear("power", "dust")
    step(clean)
    step(dusty)
    assert reading(dusty, "power", "solar_power_w") == pytest.approx(reading(clean, "power", "solar_power_w"))


@pytest.mark.parametrize(
    ("kind", "params"), [("radiator_damage", {"fraction": 0.5}), ("radiator_heat_pipe_failure", {"count": 8})]
)
def test_reactor_radiator_faults_shrink_its_area_and_clear(kind: str, params: dict[str, object]) -> None:
    injector = rig()
    thermal = injector.world.thermal
    area_m2 = thermal.effective_area_m2("reactor_radiator")
    injector.request_inject(fault("thermal", kind, **params))
    step(injector)
    assert thermal.effective_area_m2("reactor_radiator") == pytest.approx(0.5 * area_m2)
    injector.request_clear("thermal", kind)
    step(injector)
    assert thermal.effective_area_m2("reactor_radiator") == pytest.approx(area_m2)


def test_link_loss_closes_no_link_whatever_is_in_view() -> None:
    injector = rig()
    comms = injector.world.comms
    while not (comms.read()["dte_visible"] or comms.read()["relay_visible"]):
        step(injector, 600)
        assert injector.world.frame < 30 * 86_400
    assert reading(injector, "comms", "downlink_rate_bps") > 0
    injector.request_inject(fault("comms", "link_loss"))
    step(injector)
    assert reading(injector, "comms", "downlink_rate_bps") == 0
    assert "link_loss" in injector.boards["comms"].faults()
    injector.request_clear("comms", "link_loss")
    step(injector)
    assert reading(injector, "comms", "downlink_rate_bps") > 0


def test_converter_loss_and_heat_pipe_failure_show_on_the_reactor_board() -> None:
    injector = FaultInjector(World(seed=3, frame_period_s=1.0, params={"reactor": {"start": "power"}}), None)
    step(injector, 5)
    assert reading(injector, "reactor", "converters_running") == 4
    injector.request_inject(fault("reactor", "converter_loss", count=1))
    injector.request_inject(fault("reactor", "heat_pipe_failure", count=2))
    step(injector)
    assert reading(injector, "reactor", "converters_running") == 3
    assert reading(injector, "reactor", "heat_pipes_ok") == 6
    injector.request_clear("reactor", "converter_loss")
    injector.request_clear("reactor", "heat_pipe_failure")
    step(injector)
    assert reading(injector, "reactor", "converters_running") == 4
    assert reading(injector, "reactor", "heat_pipes_ok") == 8


def test_stuck_rod_ignores_a_scram_and_positive_reactivity_raises_power() -> None:
    injector = FaultInjector(World(seed=3, frame_period_s=1.0, params={"reactor": {"start": "power"}}), None)
    step(injector, 5)
    rod = reading(injector, "reactor", "rod_position")
    power_w = reading(injector, "reactor", "fission_power_w")
    injector.request_inject(fault("reactor", "rod_stuck"))
    injector.request_inject(fault("reactor", "reactivity_insertion", value=0.02))
    step(injector)
    assert reading(injector, "reactor", "fission_power_w") > power_w
    injector.boards["reactor"].command("scram", True)
    step(injector, 3)
    assert injector.boards["reactor"].read()["tripped"] is True
    assert reading(injector, "reactor", "rod_position") == rod  # the trip could not insert it
