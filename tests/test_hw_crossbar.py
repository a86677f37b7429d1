"""The event-driven accumulator against numpy: random event streams, back-to-back updates of one word (G = 1),
read-and-clear, and an update followed at once by a read of the same word."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.crossbar import Crossbar

P, WB, ACC = 4, 6, 12


def run_ops(depth, ops, weights):
    """``ops``: list of (kind, group) with kind in {"add", "clear", "idle"}, issued one per cycle; ``weights[k]``
    is the weight word of op k (used when it is an add). Returns the ACC word seen by each clear."""
    dut = Crossbar(P, WB, ACC, depth)
    reads = []

    async def testbench(ctx):
        pending = None  # (kind, weights) of the op issued in the previous cycle: its stage 1 is now
        for k, (kind, group) in enumerate(ops + [("idle", 0)]):
            ctx.set(dut.op_valid, kind != "idle")
            ctx.set(dut.op_clear, kind == "clear")
            ctx.set(dut.op_group, group)
            if pending is not None:
                p_kind, p_weights = pending
                for p in range(P):
                    ctx.set(dut.weights[p], int(p_weights[p]))
                if p_kind == "clear":
                    reads.append([ctx.get(dut.acc[p]) for p in range(P)])
            pending = (kind, weights[k] if k < len(weights) else np.zeros(P, dtype=int))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(reads, dtype=np.int64).reshape(-1, P)


def reference(depth, ops, weights):
    acc = np.zeros((depth, P), dtype=np.int64)
    reads = []
    for (kind, group), w in zip(ops, weights):
        if kind == "add":
            acc[group] += w
        elif kind == "clear":
            reads.append(acc[group].copy())
            acc[group] = 0
    return np.array(reads, dtype=np.int64).reshape(-1, P)


@pytest.mark.parametrize("depth", [1, 3])
def test_random_events_then_read_and_clear(depth):
    rng = np.random.default_rng(depth)
    ops, weights = [], []
    for _ in range(4):  # four (step, layer) passes: ACCUMULATE then UPDATE, no gap between them
        n_events = int(rng.integers(0, 12))
        for _ in range(n_events):  # one event walks every group; G = 1 gives back-to-back updates of ACC[0]
            for g in range(depth):
                ops.append(("add", g))
                weights.append(rng.integers(-(1 << (WB - 1)), 1 << (WB - 1), P))
        for g in range(depth):
            ops.append(("clear", g))
            weights.append(np.zeros(P, dtype=int))
    got = run_ops(depth, ops, weights)
    np.testing.assert_array_equal(got, reference(depth, ops, weights))


def test_arbitrary_order_with_idle_cycles():
    rng = np.random.default_rng(11)
    depth = 5
    ops, weights = [], []
    for _ in range(120):
        kind = rng.choice(["add", "add", "add", "clear", "idle"])
        ops.append((str(kind), int(rng.integers(0, depth))))
        weights.append(rng.integers(-(1 << (WB - 1)), 1 << (WB - 1), P))
    ops += [("clear", g) for g in range(depth)]
    weights += [np.zeros(P, dtype=int)] * depth
    got = run_ops(depth, ops, weights)
    np.testing.assert_array_equal(got, reference(depth, ops, weights))
