"""cocotb test module for cosim/tests/test_runner.py: a free-running counter clocked inside its Verilog top."""

import cocotb
from cocotb.triggers import RisingEdge


@cocotb.test()
async def counts_to_target(dut) -> None:
    """Wait for ``done`` (Python does not see the clock) and check the count; ``+expect=N`` sets the target."""
    expected = int(cocotb.plusargs.get("expect", 1000))
    if not int(dut.done.value):
        await RisingEdge(dut.done)
    count = int(dut.count.value.to_unsigned())
    assert count == expected, f"counter stopped at {count}, expected {expected}"
