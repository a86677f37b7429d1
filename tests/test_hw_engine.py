"""The network engine in Amaranth's simulator against the golden integer model (SPEC §6: spikes, membranes,
every counter, cycles and prediction), including state reset between images, spike_in stalls and weighted spikes
(Kim 2018: ws hidden layers, the gated 'acc' output and its membrane argmax)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from cosim.beats import RecordBeats, SummaryBeats, decode_beats, unpack_words
from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, UnsupportedLayerError, WidthError
from golden.core.network import Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from golden.core.trace import Trace, compare
from golden.simulation.simulate import IntegerSimulator
from hw.config import EngineConfig
from hw.config_image import config_words
from hw.engine import NetworkEngine


def random_network(rng, sizes, neurons, membrane_bits=8, weight_bits=6):
    w_lo, w_hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    v_hi = (1 << (membrane_bits - 1)) - 1
    layers = []
    for (n_in, n_out), neuron in zip(zip(sizes[:-1], sizes[1:]), neurons):
        # mostly excitatory weights and small thresholds: every layer spikes, large sums saturate the membrane
        layers.append(DenseLayer(weight=rng.integers(w_lo // 2, w_hi + 1, (n_out, n_in)),
                                 bias=rng.integers(-8, 9, n_out),
                                 threshold=rng.integers(8, min(64, v_hi + 1), n_out), neuron=neuron))
    return IntegerNetwork(input_shape=(sizes[0],), layers=layers, weight_bits=weight_bits,
                          membrane_bits=membrane_bits).validate()


def run_engine(net, config, images, stall_rng=None, configure=True):
    """Drive ``images`` (list of ``bool [T, n_0]``) through one engine, back to back; returns an RTL Trace (the
    record and summary beats decoded by :func:`cosim.beats.decode_beats`, as the Verilator harness's are; every beat
    present exactly once) plus the per-image hardware totals."""
    dut = NetworkEngine(config)
    P, M, W, L = config.lanes, config.membrane_bits, config.counter_bits, config.n_layers
    sizes = config.layer_sizes
    n_img, T = len(images), images[0].shape[0]
    records, summaries = [], []  # (image, step, layer, group, rec_spikes, rec_membranes) / (image, step, layer, sum)
    image_cycles = np.zeros(n_img, dtype=np.int64)
    predictions = np.zeros(n_img, dtype=np.int64)
    totals = []
    words = config_words(net, config)

    async def testbench(ctx):
        while ctx.get(dut.busy):  # CLEAR after reset
            await ctx.tick()
        if configure:
            for addr, value in words:
                ctx.set(dut.cfg_valid, 1)
                ctx.set(dut.cfg_addr, addr)
                ctx.set(dut.cfg_data, value)
                await ctx.tick()
            ctx.set(dut.cfg_valid, 0)
        for k, image in enumerate(images):
            padded = np.ones((T, config.groups(0) * P), dtype=bool)  # bits beyond n_0 set: the engine masks them
            padded[:, :sizes[0]] = image
            queue = [int(sum(int(b) << p for p, b in enumerate(padded[t, w * P:(w + 1) * P])))
                     for t in range(T) for w in range(config.groups(0))]
            if config.spatial:  # conv/pool layer 1: input words in hardware order (position-major)
                queue = [int(v) for row in config.input_words(image) for v in row]
            ctx.set(dut.start, 1)
            ctx.set(dut.n_steps, T)
            await ctx.tick()
            ctx.set(dut.start, 0)
            while True:
                stall = stall_rng is not None and stall_rng.random() < 0.3
                ctx.set(dut.spike_in_valid, bool(queue) and not stall)
                ctx.set(dut.spike_in_data, queue[0] if queue else 0)
                if ctx.get(dut.rec_valid):
                    records.append((k, ctx.get(dut.rec_step), ctx.get(dut.rec_layer), ctx.get(dut.rec_group),
                                    ctx.get(dut.rec_spikes), ctx.get(dut.rec_membranes)))
                if ctx.get(dut.sum_valid):
                    summaries.append((k, ctx.get(dut.sum_step), ctx.get(dut.sum_layer), ctx.get(dut.sum_counters)))
                if ctx.get(dut.done):
                    image_cycles[k] = ctx.get(dut.image_cycles)
                    predictions[k] = ctx.get(dut.prediction)
                    totals.append(ctx.get(dut.total_counters))
                    assert not ctx.get(dut.busy)
                    break
                took = ctx.get(dut.spike_in_valid) and ctx.get(dut.spike_in_ready)
                await ctx.tick()
                if took:
                    queue.pop(0)
            assert not queue

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    orders = [config.hardware_order(l) for l in range(1, L + 1)]  # rec lane → torch neuron index
    beats = decode_beats(RecordBeats.from_words(records, P, M), SummaryBeats.from_words(summaries, W), sizes, P,
                         n_img, T, orders)
    assert beats.problems == [], beats.problems
    trace = Trace(spikes=beats.spikes, counters=beats.counters, image_cycles=image_cycles, predictions=predictions,
                  membranes=beats.membranes)
    return trace, unpack_words(totals, W, len(COUNTER_NAMES), False)


def golden_trace(net, images, lanes):
    inputs = np.stack(images, axis=1)  # [T, N, n_0]
    return IntegerSimulator(net, device="cpu").run(inputs, lanes=lanes, record_membranes=True)


def assert_equivalent(golden, rtl):
    result = compare(golden, rtl)
    assert result.equivalent, result.summary()


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(2024)


SIZES = [12, 7, 3]


def test_engine_matches_golden_if_zero_with_stalls(rng):
    net = random_network(rng, SIZES, [NeuronParams("if", "zero"), NeuronParams("if", "zero")])
    config = EngineConfig.for_network(net, lanes=4)
    images = [rng.random((6, SIZES[0])) < 0.5 for _ in range(2)]
    rtl, totals = run_engine(net, config, images, stall_rng=np.random.default_rng(1))
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    assert (golden.counter("saturations") > 0).any(), "the test network should saturate"
    assert golden.spikes[-1].any(), "the output layer should spike"
    np.testing.assert_array_equal(totals, golden.counters.sum(axis=(1, 2)))
    np.testing.assert_array_equal(rtl.image_cycles, golden.image_cycles)


def test_engine_lif_subtract_floor_and_reset_between_images(rng):
    net = random_network(rng, SIZES, [NeuronParams("lif", "subtract", leak_shift=2, floor=-20),
                                      NeuronParams("lif", "zero", leak_shift=1)])
    config = EngineConfig.for_network(net, lanes=4)
    first, second = (rng.random((5, SIZES[0])) < 0.6 for _ in range(2))
    both, _ = run_engine(net, config, [first, second])
    alone, _ = run_engine(net, config, [second])
    golden = golden_trace(net, [first, second], lanes=4)
    assert_equivalent(golden, both)
    assert_equivalent(golden.select([1]), alone)  # the second image does not see the first one's state
    assert (golden.counter("saturations") > 0).any()
    assert golden.membranes[0].min() < 0


def test_engine_cycle_formula_and_counter_values(rng):
    net = random_network(rng, [9, 5, 4], [NeuronParams("if", "subtract"), NeuronParams("if", "subtract")])
    config = EngineConfig.for_network(net, lanes=4)  # 3 input words (3 padding bits), G = 2 then 1
    images = [rng.random((3, 9)) < 0.4]
    rtl, _ = run_engine(net, config, images)
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    k = COUNTER_NAMES.index
    for t in range(3):
        s_in = [int(images[0][t].sum()), int(golden.spikes[0][0, t].sum())]
        for l, (n_prev, n) in enumerate(zip([9, 5], [5, 4])):
            row = rtl.counters[0, t, l]
            assert row[k("cycles")] == cycle_model.layer_cycles(s_in[l], n_prev, n, 4)
            assert row[k("cycles")] == config.words(l + 1) + (s_in[l] + 1) * config.groups(l + 1) + 2
            assert row[k("acs")] == s_in[l] * n
            assert row[k("weight_reads")] == s_in[l] * config.groups(l + 1)
    assert rtl.image_cycles[0] == rtl.counter("cycles").sum() + cycle_model.C_IMAGE


def test_engine_zero_steps_and_ignored_start_while_busy(rng):
    net = random_network(rng, [6, 4], [NeuronParams("if", "zero")])
    dut = NetworkEngine(EngineConfig.for_network(net, lanes=4))
    seen = {}

    async def testbench(ctx):
        while ctx.get(dut.busy):
            await ctx.tick()
        ctx.set(dut.start, 1)
        ctx.set(dut.n_steps, 0)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 1  # the start cycle; done comes C_IMAGE cycles after it
        while not ctx.get(dut.done):
            await ctx.tick()
            cycles += 1
        seen["zero"] = (cycles, ctx.get(dut.image_cycles), ctx.get(dut.total_counters), ctx.get(dut.prediction))
        ctx.set(dut.start, 1)  # accepted in the DONE cycle
        ctx.set(dut.n_steps, 1)
        await ctx.tick()
        ctx.set(dut.n_steps, 7)  # a second start while busy is ignored
        assert ctx.get(dut.busy)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.spike_in_valid, 1)
        ctx.set(dut.spike_in_data, 0)
        sums = 0
        while not ctx.get(dut.done):
            sums += ctx.get(dut.sum_valid)
            await ctx.tick()
        seen["one"] = sums

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["zero"] == (cycle_model.C_IMAGE, cycle_model.C_IMAGE, 0, 0)
    assert seen["one"] == 1  # one step of one layer


def test_engine_pads_to_larger_cycle_constants(rng):
    net = random_network(rng, [6, 4], [NeuronParams("if", "zero")])
    config = EngineConfig.for_network(net, lanes=4, c_layer=5, c_image=3)
    images = [rng.random((2, 6)) < 0.5]
    rtl, _ = run_engine(net, config, images)
    s_in = images[0].sum(axis=1)
    expected = [2 + int(s) * 1 + 1 + 5 for s in s_in]
    np.testing.assert_array_equal(rtl.counter("cycles")[0, :, 0], expected)
    assert rtl.image_cycles[0] == sum(expected) + 3


def test_config_rejects_what_the_engine_cannot_run(rng):
    net = random_network(rng, [6, 4], [NeuronParams("if", "zero")])
    with pytest.raises(WidthError, match="membrane_bits"):
        EngineConfig.for_network(net, lanes=4, membrane_bits=12)
    with pytest.raises(WidthError, match="acc_bits"):
        EngineConfig.for_network(net, lanes=4, acc_bits=4)
    with pytest.raises(WidthError, match="layer sizes"):
        EngineConfig((6, 5), lanes=4, membrane_bits=8).check_fits(net)
    with pytest.raises(SnnCosimError, match="no field"):
        EngineConfig.for_network(net, lanes=4, acc_width=4)
    conv = IntegerNetwork(input_shape=(1, 4, 4), layers=[Conv2dLayer(
        weight=np.ones((2, 1, 3, 3), dtype=np.int64), bias=np.zeros(2, dtype=np.int64),
        threshold=np.ones(2, dtype=np.int64), in_shape=(1, 4, 4))])
    with pytest.raises(UnsupportedLayerError, match="conv2d layer 1: the output layer must be dense"):
        EngineConfig.for_network(conv)
    direct = IntegerNetwork(input_shape=(6,), layers=net.layers, membrane_bits=8, input_coding="direct")
    with pytest.raises(UnsupportedLayerError, match="not yet in hardware"):
        EngineConfig.for_network(direct)


def test_config_hash_and_digest_are_stable(rng):
    a = EngineConfig((12, 7, 3), lanes=4)
    b = EngineConfig([12, 7, 3], lanes=4)
    assert a == b and hash(a) == hash(b) and a.digest() == b.digest()
    assert a.digest() != EngineConfig((12, 7, 3), lanes=8).digest()
    assert a.groups(1) == 2 and a.words(1) == 3 and a.groups(2) == 1


@pytest.mark.parametrize("lanes", [1, 8])
def test_engine_lane_extremes(rng, lanes):
    """P = 1 (one group per neuron) and P = 8 (one group for the whole layer, G = W = 1)."""
    net = random_network(rng, [5, 4, 2], [NeuronParams("lif", "subtract", leak_shift=1), NeuronParams("if")])
    config = EngineConfig.for_network(net, lanes=lanes)
    images = [rng.random((3, 5)) < 0.7]
    rtl, _ = run_engine(net, config, images)
    assert_equivalent(golden_trace(net, images, lanes=lanes), rtl)


# ------------------------------------------------------------------------------------------- weighted spikes
def weighted_network(rng, sizes, phases=4, skip_periods=1, membrane_bits=12, weight_bits=5):
    """ws hidden layers (excitatory and inhibitory weights) + an 'acc' output; the membrane has just the headroom
    the IR asks for (θ << (K−1), one step's input << (K−1)), so membranes saturate over a few steps."""
    w_lo, w_hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        output = index == len(sizes) - 1
        weight = rng.integers(w_lo // 2, w_hi + 1, (n_out, n_in))
        weight[0] = -np.abs(weight[0])  # one inhibited neuron per layer: saturates low
        if output:
            weight[0], weight[1:3] = w_lo, w_hi  # outputs that saturate both ways; 1 and 2 tie at the top
        layers.append(DenseLayer(weight=weight, bias=rng.integers(-6, 7, n_out),
                                 threshold=rng.integers(2, 24, n_out),
                                 neuron=NeuronParams("acc") if output else NeuronParams("ws", "subtract")))
    return IntegerNetwork(input_shape=(sizes[0],), layers=layers, weight_bits=weight_bits,
                          membrane_bits=membrane_bits, input_coding="weighted", input_bits=phases, phases=phases,
                          skip_periods=skip_periods).validate()


def weighted_images(rng, net, n_images, steps):
    from golden.simulation.encoding import weighted_encode

    codes = rng.integers(0, 1 << net.phases, (n_images, net.n_inputs))
    spikes = weighted_encode(codes, steps, net.phases).numpy()  # [T, N, n_0]
    return [spikes[:, k] for k in range(n_images)]


def test_engine_matches_golden_weighted_spikes_back_to_back(rng):
    """WS hidden layer + gated 'acc' output, K = 4, S = 1, 3¾ periods; two images back to back (the
    phase counter restarts with every image), stalls on spike_in; prediction = argmax of the final membranes."""
    net = weighted_network(rng, [10, 9, 4])
    config = EngineConfig.for_network(net, lanes=4)
    assert config.phase_bits == 2 and config.cfg_data_bits >= 16
    images = weighted_images(rng, net, 2, 15)
    rtl, totals = run_engine(net, config, images, stall_rng=np.random.default_rng(3))
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    np.testing.assert_array_equal(totals, golden.counters.sum(axis=(1, 2)))
    out = golden.membranes[-1]
    np.testing.assert_array_equal(rtl.predictions, np.argmax(out[:, -1], axis=-1))
    assert (out[:, -1, 1] == out[:, -1, 2]).all() and (rtl.predictions == 1).all(), "ties go to the lowest index"
    assert (out[:, :4] == 0).all() and (out[:, 4:] != 0).any(), "the output integrates only for t > S·K"
    assert not golden.spikes[-1].any() and golden.spikes[0].any()
    sat = golden.counter("saturations")
    assert (sat[:, :, 0] > 0).any() and (sat[:, :, 1] > 0).any(), "both layers should saturate"
    assert golden.membranes[0].min() < 0 and out.min() < 0


@pytest.mark.parametrize("lanes", [1, 8])
def test_engine_weighted_spikes_k1_and_k8(rng, lanes):
    """K = 1 (no shifts, phase_bits 1) with P = 1, and K = 8 (phase_bits 3, the widest shifts) with one group."""
    phases = 1 if lanes == 1 else 8
    net = weighted_network(rng, [5, 4, 3], phases=phases, skip_periods=0 if lanes == 1 else 1,
                           membrane_bits=16 if phases == 8 else 10)
    config = EngineConfig.for_network(net, lanes=lanes)
    assert config.phase_bits == (1 if phases == 1 else 3)
    images = weighted_images(rng, net, 1, 10)
    rtl, _ = run_engine(net, config, images)
    assert_equivalent(golden_trace(net, images, lanes=lanes), rtl)


def test_weighted_build_still_runs_rate_networks(rng):
    """A build with phase hardware runs IF/LIF networks (their params words clear ws/acc, K = 0)."""
    rate = random_network(rng, [6, 5, 3], [NeuronParams("if", "subtract"), NeuronParams("lif", "zero", 2)],
                          membrane_bits=12, weight_bits=5)
    config = EngineConfig.for_network(rate, lanes=4, phase_bits=2)
    images = [rng.random((4, 6)) < 0.6]
    rtl, _ = run_engine(rate, config, images)
    assert_equivalent(golden_trace(rate, images, lanes=4), rtl)


def test_config_rejects_weighted_networks_that_do_not_fit(rng):
    net = weighted_network(rng, [6, 5, 3])
    with pytest.raises(UnsupportedLayerError, match="without weighted-spike hardware"):
        EngineConfig.for_network(net, lanes=4, phase_bits=0)
    with pytest.raises(WidthError, match="K = 4 phases need phase_bits=2"):
        EngineConfig.for_network(net, lanes=4, phase_bits=1)
    with pytest.raises(WidthError, match="phase_bits must lie in"):
        EngineConfig((6, 5, 3), lanes=4, membrane_bits=12, phase_bits=5)
    long_skip = IntegerNetwork(input_shape=(6,), layers=net.layers, weight_bits=5, membrane_bits=12,
                               input_coding="weighted", input_bits=4, phases=4, skip_periods=20000)
    with pytest.raises(WidthError, match="S·K"):
        EngineConfig.for_network(long_skip, lanes=4)
    assert EngineConfig.for_network(net, lanes=4, phase_bits=4).max_phases == 16
    with pytest.raises(SnnCosimError, match="at most 63 layers"):  # region 0xFF is global, not layer 64's
        EngineConfig((2,) * 65, lanes=4)
