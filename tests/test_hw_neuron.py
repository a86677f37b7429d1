"""NeuronLanes (combinational IF/LIF/WS/acc update) against the golden integer neuron, lane by lane, and against a
literal numpy reference of the weighted-spike formulas; the global PhaseCounter."""

import numpy as np
import pytest
import torch
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.sim import Simulator
from config_bus import write_beat

from golden.core.network import NeuronParams
from golden.simulation.neurons import IntegerNeuron
from hw.fs import FsNeuronLanes
from hw.neuron import InhibitLanes, NeuronLanes, PhaseCounter

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


@pytest.mark.parametrize("phase_bits", [0, 2])
def test_neuron_lanes_match_golden_integer_neuron(phase_bits):
    """IF/LIF lanes; with phase hardware present a random phase shift must not change them."""
    rng = np.random.default_rng(7)
    cases = [random_case(rng) for _ in range(600 if phase_bits == 0 else 200)]
    dut = NeuronLanes(P, M, ACC, BIAS, THR, phase_bits)
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
            if phase_bits:
                ctx.set(dut.shift, int(rng.integers(0, 1 << phase_bits)))
                ctx.set(dut.integrate, int(rng.integers(0, 2)))
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
    assert all(count > 10 for count in seen.values()) or phase_bits, seen


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


@pytest.mark.parametrize("make", [
    lambda: NeuronLanes(P, M, ACC, BIAS, THR, 2),
    lambda: InhibitLanes(P, M, THR, 5),
    lambda: FsNeuronLanes(P, M, ACC, BIAS, 3),
], ids=["neuron", "inhibit", "fs"])
def test_lanes_compute_only_while_enabled(make):
    """The lanes' outputs are their update while ``enable`` is 1 (its reset value) and 0 while it is 0, whatever
    the operands (hw.gated: the engine enables them in the stage-1 cycles that use them)."""
    rng = np.random.default_rng(11)
    dut = make()
    members = dut.signature.members
    operands = [Value.cast(getattr(dut, name)) for name, member in members.items()
                if member.flow == wiring.In and name != "enable"]
    outputs = [Value.cast(getattr(dut, name)) for name, member in members.items() if member.flow == wiring.Out]
    seen = {"enabled nonzero": 0}

    async def testbench(ctx):
        assert ctx.get(dut.enable) == 1
        for _ in range(50):
            for port in operands:
                ctx.set(port, int(rng.integers(0, 1 << len(port))))
            values = [ctx.get(port) for port in outputs]
            seen["enabled nonzero"] += any(values)
            ctx.set(dut.enable, 0)
            assert all(ctx.get(port) == 0 for port in outputs)
            ctx.set(dut.enable, 1)
            assert [ctx.get(port) for port in outputs] == values

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["enabled nonzero"] > 40, seen


# ------------------------------------------------------------------------------------------- weighted spikes
WM, WACC, WBIAS, WTHR, PHASE_BITS = 10, 8, 5, 6, 2  # K ≤ 4: θ << 3 and bias << 3 fit 10 bits, acc << 3 does not
WLO, WHI = -(1 << (WM - 1)), (1 << (WM - 1)) - 1


def reference_weighted(kind, v, acc, bias, theta, sh, integrate):
    """SPEC §3 WS / acc, literally, in Python integers: (v, spikes, saturated) of one step."""
    v_out, spikes, saturated = [], [], []
    for vp, ap, bp, tp in zip(v.tolist(), acc.tolist(), bias.tolist(), theta.tolist()):
        if kind == "acc" and not integrate:
            v_out.append(vp), spikes.append(False), saturated.append(False)
            continue
        exact = vp + (ap + bp) * 2 ** sh
        new = min(max(exact, WLO), WHI)
        sat = new != exact
        spike = kind == "ws" and new >= tp * 2 ** sh
        if spike:
            after = new - tp * 2 ** sh
            sat |= not WLO <= after <= WHI
            new = min(max(after, WLO), WHI)
        v_out.append(new), spikes.append(spike), saturated.append(sat)
    return np.array(v_out), np.array(spikes), np.array(saturated)


def golden_weighted(kind, v, acc, bias, theta, phases, skip_periods, step):
    params = NeuronParams(kind=kind, reset="subtract" if kind == "ws" else "zero")
    neuron = IntegerNeuron(params, torch.as_tensor(theta), torch.as_tensor(bias), WM, phases=phases,
                           skip_periods=skip_periods)
    neuron.reset_state(1)
    neuron.v = torch.as_tensor(v, dtype=torch.int64).reshape(1, -1)
    spikes = neuron(torch.as_tensor(acc, dtype=torch.int64).reshape(1, -1), step=step)
    return neuron.v[0].numpy(), spikes[0].numpy(), neuron.saturated[0].numpy()


def random_weighted_case(rng):
    kind = str(rng.choice(["ws", "acc"]))
    phases = int(rng.integers(1, (1 << PHASE_BITS) + 1))
    skip_periods = int(rng.integers(0, 3))
    step = int(rng.integers(1, 3 * phases + 1))
    v = rng.integers(WLO, WHI + 1, P)
    if rng.random() < 0.3:
        v = rng.choice([WLO, WLO + 1, -1, 0, WHI - 1, WHI], P)
    acc = rng.integers(-(1 << (WACC - 1)), 1 << (WACC - 1), P)
    if rng.random() < 0.5:
        acc = rng.integers(-12, 13, P)
    bias = rng.integers(-(1 << (WBIAS - 1)), 1 << (WBIAS - 1), P)
    theta = rng.integers(1, min(1 << WTHR, (WHI >> (phases - 1)) + 1), P)
    return kind, phases, skip_periods, step, v, acc, bias, theta


def test_weighted_lanes_match_reference_and_golden():
    rng = np.random.default_rng(11)
    cases = [random_weighted_case(rng) for _ in range(300)]
    dut = NeuronLanes(P, WM, WACC, WBIAS, WTHR, PHASE_BITS)
    seen = {"saturated": 0, "spikes": 0, "negative": 0, "gated": 0, "shifted": 0}

    async def testbench(ctx):
        ctx.set(dut.control.subtract, 1)
        for kind, phases, skip_periods, step, v, acc, bias, theta in cases:
            sh = phases - 1 - (step - 1) % phases  # sh = K − k
            integrate = step > skip_periods * phases
            for p in range(P):
                ctx.set(dut.v[p], int(v[p]))
                ctx.set(dut.acc[p], int(acc[p]))
                ctx.set(dut.bias[p], int(bias[p]))
                ctx.set(dut.threshold[p], int(theta[p]))
            ctx.set(dut.control.ws, kind == "ws")
            ctx.set(dut.control.acc, kind == "acc")
            ctx.set(dut.control.subtract, kind == "ws")
            ctx.set(dut.shift, sh)
            ctx.set(dut.integrate, integrate)
            r_v, r_s, r_sat = reference_weighted(kind, v, acc, bias, theta, sh, integrate)
            g_v, g_s, g_sat = golden_weighted(kind, v, acc, bias, theta, phases, skip_periods, step)
            np.testing.assert_array_equal(g_v, r_v)
            np.testing.assert_array_equal(g_s, r_s)
            np.testing.assert_array_equal(g_sat, r_sat)
            spikes, saturated = ctx.get(dut.spikes), ctx.get(dut.saturated)
            for p in range(P):
                where = f"{kind} K={phases} t={step} sh={sh} v={v[p]} acc={acc[p]} bias={bias[p]} θ={theta[p]}"
                assert ctx.get(dut.v_out[p]) == r_v[p], where
                assert (spikes >> p) & 1 == r_s[p], where
                assert (saturated >> p) & 1 == r_sat[p], where
            seen["saturated"] += int(r_sat.sum())
            seen["spikes"] += int(r_s.sum())
            seen["negative"] += int((r_v < 0).sum())
            seen["gated"] += int(kind == "acc" and not integrate)
            seen["shifted"] += int(sh == (1 << PHASE_BITS) - 1 and r_s.any())

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert all(count > 5 for count in seen.values()), seen


def test_weighted_shift_is_exact_at_the_extremes():
    """The most negative input shifted by the largest phase saturates low instead of wrapping around."""
    dut = NeuronLanes(1, WM, WACC, WBIAS, WTHR, PHASE_BITS)
    acc_lo, bias_lo = -(1 << (WACC - 1)), -(1 << (WBIAS - 1))
    acc_hi, bias_hi = -acc_lo - 1, -bias_lo - 1

    async def testbench(ctx):
        ctx.set(dut.control.acc, 1)
        ctx.set(dut.integrate, 1)
        ctx.set(dut.shift, 3)
        for v, a, b, expect in [(WLO, acc_lo, bias_lo, WLO), (0, acc_lo, bias_lo, WLO), (WHI, acc_hi, bias_hi, WHI),
                                (0, 63, 0, 504), (-8, -1, 0, -16)]:
            ctx.set(dut.v[0], v)
            ctx.set(dut.acc[0], a)
            ctx.set(dut.bias[0], b)
            assert ctx.get(dut.v_out[0]) == expect, (v, a, b)
            assert ctx.get(dut.saturated) == int(expect in (WLO, WHI)), (v, a, b)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()


def test_phase_counter_counts_shifts_of_one_period_per_step():
    dut = PhaseCounter(3)
    seen = {}

    async def testbench(ctx):
        for phases in (0, 1, 3, 8):
            ctx.set(dut.phases, phases)
            ctx.set(dut.restart, 1)
            await ctx.tick()
            ctx.set(dut.restart, 0)
            shifts = []
            for _ in range(2 * max(phases, 1) + 1):
                shifts.append(ctx.get(dut.shift))
                ctx.set(dut.advance, 1)
                await ctx.tick()
                ctx.set(dut.advance, 0)
                await ctx.tick()  # cycles without advance keep the phase
            seen[phases] = shifts

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    for phases, shifts in seen.items():
        expected = [phases - 1 - t % phases if phases else 0 for t in range(len(shifts))]
        assert shifts == expected, phases


def test_layer_params_registers_follow_their_writes():
    """LayerParams: the params word (index 0) and the floor (index 1) of the layer's region take the data of an
    accepted write there and keep it otherwise (no write, another region, another index); 0 after reset."""
    from golden.core.register_map import PARAM_BITS, REGION_SHIFT
    from hw.neuron import LayerParams

    rng = np.random.default_rng(12)
    region, data_bits = 7, 20
    dut = LayerParams(region, M, data_bits)
    writes = [(bool(rng.random() < 0.8), int(region if rng.random() < 0.7 else rng.integers(0, 255)) << REGION_SHIFT
               | int(rng.choice([0, 1, 2, 0x400])), int(rng.integers(0, 1 << data_bits))) for _ in range(300)]
    seen = set()

    async def testbench(ctx):
        control, floor = 0, 0
        for write, addr, value in writes:
            await write_beat(ctx, dut.cfg, write, addr, value)
            if write and addr >> REGION_SHIFT == region and addr & 0xFFFFFF in (0, 1):
                if addr & 1:
                    floor = (value & ((1 << M) - 1)) - ((value >> (M - 1) & 1) << M)
                else:
                    control = value & ((1 << PARAM_BITS) - 1)
                seen.add(addr & 1)
            assert ctx.get(dut.control.as_value()) == control and ctx.get(dut.floor) == floor
            assert ctx.get(dut.control.lif) == control & 1 and ctx.get(dut.control.inhibit) == control >> 12 & 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == {0, 1}


def test_inhibit_strengths_written_and_read_at_the_group():
    """InhibitStrengths: word 0x400 + g of the layer's params region holds the lanes' u of group g (read one cycle
    after `group`); other regions, indices past the groups and writes without `write` leave the memory alone."""
    from golden.core.register_map import INHIBIT_BASE, REGION_SHIFT
    from hw.neuron import InhibitStrengths

    rng = np.random.default_rng(13)
    region, lanes, bits, groups, data_bits = 11, 3, 5, 5, 15
    dut = InhibitStrengths(region, lanes, bits, groups, data_bits)
    writes = [(bool(rng.random() < 0.85), int(region if rng.random() < 0.8 else region - 4) << REGION_SHIFT
               | INHIBIT_BASE + int(rng.integers(0, groups + 2)) if rng.random() < 0.9 else region << REGION_SHIFT,
               int(rng.integers(0, 1 << data_bits))) for _ in range(200)]

    async def testbench(ctx):
        memory = [0] * groups
        for write, addr, value in writes:
            await write_beat(ctx, dut.cfg, write, addr, value)
            index = addr & ((1 << REGION_SHIFT) - 1)
            if write and addr >> REGION_SHIFT == region and INHIBIT_BASE <= index < INHIBIT_BASE + groups:
                memory[index - INHIBIT_BASE] = value
        ctx.set(dut.cfg.write, 0)
        for g in range(groups):
            ctx.set(dut.group, g)
            await ctx.tick()
            for p in range(lanes):
                assert ctx.get(dut.u[p]) == memory[g] >> (p * bits) & ((1 << bits) - 1)
        assert any(memory)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
