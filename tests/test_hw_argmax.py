"""RunningArgmax (the engine's prediction) in Amaranth's simulator against a numpy running argmax: strictly greater
wins, ties keep the lowest index, invalid lanes never win, clear restarts below every candidate, update wins over
clear in the same cycle; signed ranks (membranes of an 'acc' output layer) and unsigned spike counts. The inputs are
registered: a cycle's inputs show in ``index`` two clock edges later."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from hw.argmax import RunningArgmax

INDEX_BITS = 16


@pytest.mark.parametrize("P", [3, 4, 8])  # the group's leader is found by a tree of matches: odd and deep trees
@pytest.mark.parametrize("shape", [unsigned(5), signed(7)])
def test_running_argmax_matches_numpy(shape, P):
    rng = np.random.default_rng(shape.width + 10 * P)
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
    floor = lo
    dut = RunningArgmax(P, shape, INDEX_BITS, floor)
    cycles = []
    for _ in range(400):
        ranks = rng.integers(lo, hi, P) if rng.random() < 0.7 else rng.choice([lo, lo + 1, hi - 1, 0], P)
        cycles.append((ranks, rng.random(P) < 0.8, int(rng.integers(0, 1 << INDEX_BITS - 1)) & ~(P - 1),
                       rng.random() < 0.7, rng.random() < 0.3))
    seen = {"lead": 0, "clear": 0}

    async def testbench(ctx):
        best_rank, best_index = 0, 0  # the registers after reset
        shown = [0]  # model index after each cycle's inputs acted; new inputs every cycle
        for ranks, valid, base, update, clear in cycles:
            for p in range(P):
                ctx.set(dut.ranks[p], int(ranks[p]))
            ctx.set(dut.valid, sum(int(v) << p for p, v in enumerate(valid)))
            ctx.set(dut.base, base)
            ctx.set(dut.update, int(update))
            ctx.set(dut.clear, int(clear))
            await ctx.tick()
            if update:
                for p in range(P):
                    if valid[p] and ranks[p] > best_rank:
                        best_rank, best_index = int(ranks[p]), base + p
                        seen["lead"] += 1
            elif clear:
                best_rank, best_index = floor, 0
                seen["clear"] += 1
            shown.append(best_index)
            # after this edge the inputs of the cycle before have acted (they were registered one edge earlier)
            assert ctx.get(dut.index) == shown[-2]
        ctx.set(dut.update, 0)
        ctx.set(dut.clear, 0)
        await ctx.tick()
        assert ctx.get(dut.index) == shown[-1]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["lead"] > 40 and seen["clear"] > 15
