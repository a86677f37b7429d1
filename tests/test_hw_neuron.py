"""NeuronLanes (combinational IF/LIF update) against the golden integer neuron, lane by lane."""

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

from golden.ir import NeuronParams
from golden.neurons import IntegerNeuron
from hw.neuron import NeuronLanes

P, M, ACC, BIAS, THR = 4, 8, 11, 6, 7
LO, HI = -(1 << (M - 1)), (1 << (M - 1)) - 1


def random_params(rng):
    kind = rng.choice(["if", "lif"])
    return NeuronParams(kind=kind, reset=rng.choice(["zero", "subtract"]),
                        leak_shift=int(rng.integers(1, M)) if kind == "lif" else 0,
                        floor=None if rng.random() < 0.4 else int(rng.integers(LO, 1)))


def random_case(rng):
    params = random_params(rng)
    v = rng.integers(LO, HI + 1, P)
    # extremes of every operand: saturation both ways, negative membranes, the largest inputs
    if rng.random() < 0.3:
        v = rng.choice([LO, LO + 1, -1, 0, HI - 1, HI], P)
    acc = rng.integers(-(1 << (ACC - 1)), 1 << (ACC - 1), P)
    if rng.random() < 0.5:
        acc = rng.integers(-40, 41, P)  # mostly in range: no saturation, spikes decided by θ
    bias = rng.integers(-(1 << (BIAS - 1)), 1 << (BIAS - 1), P)
    theta = rng.integers(1, HI + 1, P)
    return params, v, acc, bias, theta


def golden_update(params, v, acc, bias, theta):
    neuron = IntegerNeuron(params, torch.as_tensor(theta), torch.as_tensor(bias), M)
    neuron.reset_state(1)
    neuron.v = torch.as_tensor(v, dtype=torch.int64).reshape(1, -1)
    spikes = neuron(torch.as_tensor(acc, dtype=torch.int64).reshape(1, -1))
    return neuron.v[0].numpy(), spikes[0].numpy(), neuron.saturated[0].numpy()


def test_neuron_lanes_match_golden_integer_neuron():
    rng = np.random.default_rng(7)
    cases = [random_case(rng) for _ in range(600)]
    dut = NeuronLanes(P, M, ACC, BIAS, THR)
    seen = {"saturated": 0, "spikes": 0, "negative": 0, "floored": 0}

    async def testbench(ctx):
        for params, v, acc, bias, theta in cases:
            for p in range(P):
                ctx.set(dut.v[p], int(v[p]))
                ctx.set(dut.acc[p], int(acc[p]))
                ctx.set(dut.bias[p], int(bias[p]))
                ctx.set(dut.threshold[p], int(theta[p]))
            ctx.set(dut.control.lif, params.kind == "lif")
            ctx.set(dut.control.subtract, params.reset == "subtract")
            ctx.set(dut.control.leak_shift, params.leak_shift)
            ctx.set(dut.control.floor_en, params.floor is not None)
            ctx.set(dut.floor, params.floor or 0)
            g_v, g_s, g_sat = golden_update(params, v, acc, bias, theta)
            spikes, saturated = ctx.get(dut.spikes), ctx.get(dut.saturated)
            for p in range(P):
                where = f"{params} v={v[p]} acc={acc[p]} bias={bias[p]} θ={theta[p]}"
                assert ctx.get(dut.v_out[p]) == g_v[p], where
                assert (spikes >> p) & 1 == g_s[p], where
                assert (saturated >> p) & 1 == g_sat[p], where
            seen["saturated"] += int(g_sat.sum())
            seen["spikes"] += int(g_s.sum())
            seen["negative"] += int((g_v < 0).sum())
            seen["floored"] += int(params.floor is not None and (g_v == params.floor).sum())

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert all(count > 10 for count in seen.values()), seen


@pytest.mark.parametrize("shift", [1, 3, M - 1])
def test_leak_is_an_arithmetic_shift(shift):
    """v − (v >>> s) of negative membranes rounds towards −∞ in the shift (so the leak moves v towards 0)."""
    dut = NeuronLanes(1, M, ACC, BIAS, THR)

    async def testbench(ctx):
        ctx.set(dut.control.lif, 1)
        ctx.set(dut.control.leak_shift, shift)
        ctx.set(dut.threshold[0], HI)
        for v in (LO, -5, -1, 0, 1, 5, HI - 1):
            ctx.set(dut.v[0], v)
            assert ctx.get(dut.v_out[0]) == v - (v >> shift), v

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
