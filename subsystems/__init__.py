"""Flight subsystems of the lunar base: power, thermal, comms and reactor supervision."""
