"""Lee 2016 in the engine (Amaranth simulator) against the golden model, bit and cycle exact: the per-neuron floor
at −θ_j in the neuron lanes, the INHIBIT pass of lateral inhibition (hidden and output layers), its counters
(MACs, state reads/writes, saturations counted once) and configuration words (docs/spec.md §3c)."""

import numpy as np
import pytest
from test_hw_engine import assert_equivalent, golden_trace, run_engine

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import UnsupportedLayerError, WidthError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams
from golden.core.register_map import INHIBIT_BASE, region_address
from hw.config import EngineConfig
from hw.config_image import config_words

K = {name: k for k, name in enumerate(COUNTER_NAMES)}


def lee_network(rng, sizes, neurons, inhibit, membrane_bits=8, weight_bits=6, u_max=40):
    """Mostly excitatory random layers (they spike a lot, so the inhibition works hard); ``inhibit`` = the
    1-based layers with WTA strengths."""
    w_lo, w_hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    v_hi = (1 << (membrane_bits - 1)) - 1
    layers = []
    for index, ((n_in, n_out), neuron) in enumerate(zip(zip(sizes[:-1], sizes[1:]), neurons), start=1):
        u = rng.integers(0, min(u_max, v_hi) + 1, n_out) if index in inhibit else None
        layers.append(DenseLayer(weight=rng.integers(w_lo // 2, w_hi + 1, (n_out, n_in)),
                                 bias=rng.integers(-8, 9, n_out),
                                 threshold=rng.integers(8, min(64, v_hi + 1), n_out), neuron=neuron,
                                 inhibition=u))
    return IntegerNetwork(input_shape=(sizes[0],), layers=layers, weight_bits=weight_bits,
                          membrane_bits=membrane_bits).validate()


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(77)


THETA_FLOOR = NeuronParams("lif", "subtract", leak_shift=2, floor_threshold=True)


def test_inhibition_hidden_and_output_with_stalls(rng):
    net = lee_network(rng, [12, 7, 5], [THETA_FLOOR, NeuronParams("if", "subtract", floor_threshold=True)], {1, 2})
    config = EngineConfig.for_network(net, lanes=4)
    assert config.inhibition == (1, 1)
    images = [rng.random((6, 12)) < 0.6 for _ in range(2)]
    rtl, totals = run_engine(net, config, images, stall_rng=np.random.default_rng(3))
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    assert golden.counter("macs").sum(axis=(0, 1)).min() > 0, "both layers should inhibit"
    assert golden.counter("saturations").sum() > 0, "the test network should saturate"
    np.testing.assert_array_equal(totals, golden.counters.sum(axis=(1, 2)))
    np.testing.assert_array_equal(rtl.image_cycles, golden.image_cycles)


@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_inhibition_one_layer_fixed_floor_and_small_membrane(rng, lanes):
    # 6-bit membrane: integrate and inhibition both clip; only the middle layer inhibits; fixed floor there
    net = lee_network(rng, [10, 9, 6, 4], [NeuronParams("if", "zero"), NeuronParams("lif", "zero", leak_shift=1,
                                                                                     floor=-25),
                                           NeuronParams("if", "subtract")], {2}, membrane_bits=6, u_max=31)
    config = EngineConfig.for_network(net, lanes=lanes)
    assert config.inhibition == (0, 1, 0)
    images = [rng.random((5, 10)) < 0.7 for _ in range(2)]
    rtl, _ = run_engine(net, config, images)
    golden = golden_trace(net, images, lanes=lanes)
    assert_equivalent(golden, rtl)
    assert golden.counter("saturations")[:, :, 1].sum() > 0
    assert golden.counter("macs")[:, :, 1].sum() > 0 and golden.counter("macs")[:, :, [0, 2]].sum() == 0


def test_cycles_and_counters_of_the_inhibit_pass(rng):
    net = lee_network(rng, [9, 6, 3], [THETA_FLOOR, THETA_FLOOR], {1, 2})
    config = EngineConfig.for_network(net, lanes=4)  # G = 2 then 1
    images = [rng.random((4, 9)) < 0.5]
    rtl, _ = run_engine(net, config, images)
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    for t in range(4):
        s_in = [int(images[0][t].sum()), int(golden.spikes[0][0, t].sum())]
        for l, n in enumerate([6, 3]):
            row, G = rtl.counters[0, t, l], config.groups(l + 1)
            n_spk = int(golden.spikes[l][0, t].sum())
            assert row[K["cycles"]] == (config.words(l + 1) + s_in[l] * G + G + cycle_model.C_LAYER
                                        + G + cycle_model.C_INHIBIT)
            assert row[K["cycles"]] == config.layer_cycles(l + 1, s_in[l])
            assert row[K["state_reads"]] == row[K["state_writes"]] == 2 * G
            assert row[K["macs"]] == (n if n_spk >= 2 else n - 1 if n_spk == 1 else 0)


def test_build_with_inhibition_runs_a_network_without_it(rng):
    """The params bit enables the pass: with bit 12 clear the schedule and counters are those of plain IF/LIF."""
    with_u = lee_network(rng, [8, 5, 3], [THETA_FLOOR, NeuronParams("if", "zero")], {1})
    plain = IntegerNetwork(with_u.input_shape, [
        DenseLayer(layer.weight, layer.bias, layer.threshold, layer.neuron) for layer in with_u.layers],
        weight_bits=with_u.weight_bits, membrane_bits=with_u.membrane_bits).validate()
    config = EngineConfig.for_network(with_u, lanes=4)
    images = [rng.random((4, 8)) < 0.6]
    rtl, _ = run_engine(plain, config, images)
    golden = golden_trace(plain, images, lanes=4)
    assert_equivalent(golden, rtl)
    assert golden.totals()["macs"] == 0


def test_config_words_and_errors(rng):
    net = lee_network(rng, [6, 5, 2], [THETA_FLOOR, NeuronParams("if", "zero")], {1})
    config = EngineConfig.for_network(net, lanes=4)
    words = dict(config_words(net, config))
    control = words[region_address(1, 3, 0)]
    assert control >> 11 & 1 and control >> 12 & 1
    assert not words[region_address(2, 3, 0)] >> 11 & 3
    u = net.layers[0].inhibition
    bits = config.threshold_bits
    lane = lambda word, p: (word >> (p * bits)) & ((1 << bits) - 1)  # noqa: E731
    got = [lane(words[region_address(1, 3, INHIBIT_BASE + g)], p) for g in range(2) for p in range(4)]
    assert got == list(u) + [0] * 3
    assert region_address(2, 3, INHIBIT_BASE) not in words
    # the network does not fit a build without inhibition hardware, nor one whose lanes are too narrow for u
    plain = EngineConfig(config.layer_sizes, lanes=4, membrane_bits=8, acc_bits=config.acc_bits)
    with pytest.raises(UnsupportedLayerError, match="inhibition hardware"):
        plain.check_fits(net)
    big = IntegerNetwork(net.input_shape, [DenseLayer(net.layers[0].weight, net.layers[0].bias,
                                                      np.full(5, 3), THETA_FLOOR, inhibition=np.full(5, 100)),
                                           net.layers[1]], weight_bits=6, membrane_bits=8).validate()
    narrow = EngineConfig(config.layer_sizes, lanes=4, membrane_bits=8, acc_bits=config.acc_bits,
                          threshold_bits=6, inhibition=(1, 0))
    with pytest.raises(WidthError, match="inhibition strength 100"):
        narrow.check_fits(big)
    assert EngineConfig.for_network(big, lanes=4).threshold_bits == 7
