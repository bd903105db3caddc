"""A deterministic, seeded simulated world behind four boards: power, thermal, comms, reactor.

One module per domain: :mod:`~hil.physics.environment` (sun, horizon, sink),
:mod:`~hil.physics.model` (what a board model is, and how models couple),
:mod:`~hil.physics.power`, :mod:`~hil.physics.thermal`, :mod:`~hil.physics.comms`,
:mod:`~hil.physics.reactor` (the four boards) and :mod:`~hil.physics.world` (all of them,
stepped frame by frame). Each module's docstring gives its equations and figures;
docs/subsystems.md gives them with their sources. Nothing here reads a wall clock or an
unseeded random generator.
"""

from hil.physics.comms import CommsModel
from hil.physics.environment import Environment, HorizonMask, Illumination
from hil.physics.model import BoardModel, Coupling
from hil.physics.power import PowerModel
from hil.physics.reactor import ReactorModel
from hil.physics.thermal import ThermalModel
from hil.physics.world import World

__all__ = [
    "BoardModel",
    "CommsModel",
    "Coupling",
    "Environment",
    "HorizonMask",
    "Illumination",
    "PowerModel",
    "ReactorModel",
    "ThermalModel",
    "World",
]
