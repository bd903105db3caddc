"""The thermal board: lumped nodes, conductances, radiators and heaters.

Four lumped nodes (battery 750 kJ/K, avionics 50 kJ/K, habitat 2 MJ/K, radiator
100 kJ/K, 20 m2, emissivity 0.9) joined by conductances (battery-radiator 3 W/K,
battery-avionics 2, avionics-radiator 8, habitat-radiator 60, habitat leak to the
sink 5), the radiator radiating to a sink at 230 K in sunlight and 150 K in the
dark. Avionics dissipate 400 W; life support (T1) puts 70 % of its power and T4 all
of its power into the habitat; the battery warms by its I2R loss. Heaters (battery
400 W, avionics 200 W, habitat 2 kW) are bus loads at ``duty * rating``. A hardware
survival thermostat independent of flight software switches 400 W onto the battery
below 0 C and off above 5 C. With no heaters commanded the battery settles near
0-5 C and the avionics near 35 C in sunlight (-25 C in a long dark spell): flight
software is expected to run the heaters.

"""

from __future__ import annotations

from typing import Final

from fsw.board import Value
from hil.physics.environment import Environment
from hil.physics.model import (
    KELVIN,
    STEFAN_BOLTZMANN,
    BoardModel,
    Coupling,
    description,
    duty,
    number,
    substeps,
)


class ThermalModel(BoardModel):
    """Four lumped thermal nodes with heaters (see the module docstring)."""

    CAPACITY_J_PER_K: Final = {
        "battery": 750_000.0,
        "avionics": 50_000.0,
        "habitat": 2_000_000.0,
        "radiator": 100_000.0,
    }
    #: Conductances between nodes (W/K).
    CONDUCTANCE_W_PER_K: Final = (
        ("battery", "radiator", 3.0),
        ("battery", "avionics", 2.0),
        ("avionics", "radiator", 8.0),
        ("habitat", "radiator", 60.0),
    )
    HABITAT_LEAK_W_PER_K: Final = 5.0
    RADIATOR_AREA_M2: Final = 20.0
    RADIATOR_EMISSIVITY: Final = 0.9
    AVIONICS_DISSIPATION_W: Final = 400.0
    HEATER_RATING_W: Final = {
        "heater_battery": 400.0,
        "heater_avionics": 200.0,
        "heater_habitat": 2000.0,
    }
    SURVIVAL_HEATER_W: Final = 400.0
    SURVIVAL_ON_C: Final = 0.0
    SURVIVAL_OFF_C: Final = 5.0
    MAX_SUBSTEP_S: Final = 60.0  # the fastest node (radiator) has a time constant of ~750 s
    LIMITS_C: Final = {"battery": (0.0, 40.0), "avionics": (-20.0, 50.0)}

    def __init__(self) -> None:
        super().__init__(
            description(
                "thermal",
                (
                    number("battery_temp_c", "C", -150.0, 150.0, "battery pack"),
                    number("avionics_temp_c", "C", -150.0, 150.0, "avionics box"),
                    number("radiator_temp_c", "C", -200.0, 150.0, "main radiator"),
                    number("habitat_temp_c", "C", -150.0, 150.0, "habitat air"),
                ),
                (
                    duty("heater_battery", "battery heater, 400 W at duty 1"),
                    duty("heater_avionics", "avionics heater, 200 W at duty 1"),
                    duty("heater_habitat", "habitat heater, 2 kW at duty 1"),
                ),
            )
        )
        self._temp_c = {"battery": 20.0, "avionics": 15.0, "habitat": 21.0, "radiator": -20.0}
        self._duty = dict.fromkeys(self.HEATER_RATING_W, 0.0)
        self._survival_on = False

    def read(self) -> dict[str, Value]:
        """Every node temperature (C)."""
        return {f"{node}_temp_c": temp for node, temp in self._temp_c.items()}

    def faults(self) -> frozenset[str]:
        """``<node>_temp_out_of_limits`` for the battery and avionics outside operating limits."""
        return frozenset(
            f"{node}_temp_out_of_limits"
            for node, (low, high) in self.LIMITS_C.items()
            if not low <= self._temp_c[node] <= high
        )

    @property
    def heater_power_w(self) -> float:
        """Electric power the heaters draw now (W), survival heater included."""
        commanded = sum(self.HEATER_RATING_W[n] * d for n, d in self._duty.items())
        return commanded + (self.SURVIVAL_HEATER_W if self._survival_on else 0.0)

    def step(self, dt_s: float, env: Environment, coupling: Coupling) -> None:
        """Integrate the node temperatures over ``dt_s`` (explicit Euler, <= 60 s substeps)."""
        for name, value in self._take_pending().items():
            self._duty[name] = float(value)
        self._thermostat(env.time_s)
        count, h = substeps(dt_s, self.MAX_SUBSTEP_S)
        gains = {
            "battery": coupling.battery_heat_w
            + self.HEATER_RATING_W["heater_battery"] * self._duty["heater_battery"]
            + (self.SURVIVAL_HEATER_W if self._survival_on else 0.0),
            "avionics": self.AVIONICS_DISSIPATION_W
            + self.HEATER_RATING_W["heater_avionics"] * self._duty["heater_avionics"],
            "habitat": coupling.habitat_gain_w
            + self.HEATER_RATING_W["heater_habitat"] * self._duty["heater_habitat"],
            "radiator": 0.0,
        }
        sink_k = env.sink_temp_k
        for _ in range(count):
            temps = self._temp_c
            flow = dict(gains)
            for a, b, g in self.CONDUCTANCE_W_PER_K:
                q = g * (temps[a] - temps[b])
                flow[a] -= q
                flow[b] += q
            flow["habitat"] -= self.HABITAT_LEAK_W_PER_K * (temps["habitat"] + KELVIN - sink_k)
            rad_k = temps["radiator"] + KELVIN
            flow["radiator"] -= (
                self.RADIATOR_EMISSIVITY * STEFAN_BOLTZMANN * self.RADIATOR_AREA_M2 * (rad_k**4 - sink_k**4)
            )
            for node, q in flow.items():
                temps[node] = max(-KELVIN + 3.0, temps[node] + h * q / self.CAPACITY_J_PER_K[node])
        coupling.heater_power_w = self.heater_power_w
        self._time_s = env.time_s

    def _thermostat(self, time_s: float) -> None:
        battery_c = self._temp_c["battery"]
        if not self._survival_on and battery_c < self.SURVIVAL_ON_C:
            self._survival_on = True
            self._emit("survival_heater", "warning", time_s, on=True, battery_temp_c=battery_c)
        elif self._survival_on and battery_c > self.SURVIVAL_OFF_C:
            self._survival_on = False
            self._emit("survival_heater", "info", time_s, on=False, battery_temp_c=battery_c)
