"""A cocotb test of an inverter, for the tests of sim/cocotb_run.py itself."""

import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def inverter_inverts(dut):
    for a in range(16):
        dut.a.value = a
        await Timer(1, unit="ns")
        assert int(dut.y.value) == (~a) & 0xF
    cocotb.log.info("inverter checked on every input")
