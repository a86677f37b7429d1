"""GlobalRegisters (configuration region 0xFF) in Amaranth's simulator: K, S·K and the FS mode take the data of an
accepted write to their index, keep it otherwise (no write, another region, another index), and are 0 after reset."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from config_bus import write_beat

from golden.core.register_map import GLOBAL_FS_MODE, GLOBAL_PHASES, GLOBAL_REGION, GLOBAL_SKIP_LAST, REGION_SHIFT
from hw.global_registers import GlobalRegisters

PHASE_BITS, DATA_BITS = 3, 24


@pytest.mark.parametrize("fs", [False, True])
def test_global_registers_follow_their_writes(fs):
    rng = np.random.default_rng(int(fs))
    dut = GlobalRegisters(PHASE_BITS, DATA_BITS, fs)
    writes = []
    for _ in range(300):
        region = GLOBAL_REGION if rng.random() < 0.7 else int(rng.integers(0, GLOBAL_REGION))
        index = int(rng.choice([GLOBAL_PHASES, GLOBAL_SKIP_LAST, GLOBAL_FS_MODE, 3, 1 << 20]))
        writes.append((bool(rng.random() < 0.8), region << REGION_SHIFT | index, int(rng.integers(0, 1 << DATA_BITS))))
    seen = set()

    async def testbench(ctx):
        state = {"phases": 0, "skip_last": 0, "fs_mode": 0}
        assert ctx.get(dut.phases) == 0 and ctx.get(dut.skip_last) == 0
        for write, addr, data in writes:
            await write_beat(ctx, dut.cfg, write, addr, data)
            if write and addr >> REGION_SHIFT == GLOBAL_REGION:
                index = addr & ((1 << REGION_SHIFT) - 1)
                name, bits = {GLOBAL_PHASES: ("phases", PHASE_BITS + 1), GLOBAL_SKIP_LAST: ("skip_last", 16),
                              GLOBAL_FS_MODE: ("fs_mode", 1)}.get(index, (None, 0))
                if name is not None and (fs or name != "fs_mode"):
                    state[name] = data & ((1 << bits) - 1)
                    seen.add(name)
            assert ctx.get(dut.phases) == state["phases"] and ctx.get(dut.skip_last) == state["skip_last"]
            if fs:
                assert ctx.get(dut.fs_mode) == state["fs_mode"]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == ({"phases", "skip_last", "fs_mode"} if fs else {"phases", "skip_last"})
    assert fs or not hasattr(dut, "fs_mode")
