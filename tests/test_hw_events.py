"""LowestSetBit (the EVENT pass's spike picker) in Amaranth's simulator: every mask of a few lane counts."""

import pytest
from amaranth.sim import Simulator

from hw.events import LowestSetBit


@pytest.mark.parametrize("lanes", [1, 2, 5, 8])
def test_lowest_set_bit_of_every_mask(lanes):
    dut = LowestSetBit(lanes)

    async def testbench(ctx):
        for mask in range(1 << lanes):
            ctx.set(dut.mask, mask)
            lowest = (mask & -mask).bit_length() - 1 if mask else 0
            assert ctx.get(dut.bit) == lowest
            assert ctx.get(dut.rest) == mask & (mask - 1)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
