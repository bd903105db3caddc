"""Check the base's power, then shed the comfort loads (tier 4) and bring them back.

    fsw ground run examples/procedures/check_power.py

``fsw ground run`` connects to the station and puts ``cmd``, ``tlm``, ``wait_check``,
``check``, ``wait`` and ``ping`` in a procedure's globals; importing them, as here, works
the same and lets editors and linters know them. Each command waits for its
verification; each check that fails ends the procedure (exit status 1) with the values
it saw.
"""

from ground.procedure import check, cmd, ping, tlm, wait_check

round_trip_s = ping()
print(f"the base answers in {round_trip_s:.2f} s")

check("comms.link_up == true")
wait_check("power.bus_voltage_v > 110 and power.battery_soc > 0.3", timeout_s=30)
print(f"battery {tlm('power.battery_soc'):.1%}, loads {tlm('power.load_power_w'):.0f} W")

cmd("power switch_load tier=4 on=false")
wait_check("power.tiers_on < 8", timeout_s=15)  # bit 3 of tiers_on is tier 4

cmd("power", "switch_load", tier=4, on=True)
wait_check("power.tiers_on >= 8", timeout_s=15)
