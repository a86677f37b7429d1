"""Hardware convolution (issue 6): conv2d / avgpool2d layers on the engine's event-driven convolution schedule
in Amaranth's simulator against the golden integer model — spikes, membranes, every counter (cycles of the conv
formula), totals and predictions — for stride and zero-padding variants, random signed weights and small
membranes (saturation)."""

import numpy as np
import pytest

from golden import counting, cycle_model
from golden.errors import UnsupportedLayerError
from golden.ir import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from hw.config import EngineConfig
from hw.config_image import config_words
from test_hw_engine import assert_equivalent, golden_trace, run_engine


def conv_pool_dense(rng, in_shape=(2, 6, 6), c_out=3, kernel=(3, 3), stride=(1, 1), padding=(0, 0),
                    pool=(2, 2), n_out=4, neuron=NeuronParams("if", "zero"), membrane_bits=6):
    conv = Conv2dLayer(weight=rng.integers(-6, 8, (c_out, in_shape[0]) + kernel).astype(np.int64),
                       bias=rng.integers(-2, 3, c_out).astype(np.int64),
                       threshold=rng.integers(3, 12, c_out).astype(np.int64), in_shape=in_shape,
                       stride=stride, padding=padding, neuron=neuron)
    layers = [conv]
    shape = conv.out_shape
    if pool:
        layers.append(AvgPool2dLayer(weight=int(rng.integers(1, 4)), threshold=rng.integers(2, 6, c_out),
                                     in_shape=shape, kernel=pool, stride=pool, neuron=neuron))
        shape = layers[-1].out_shape
    n_in = int(np.prod(shape))
    layers.append(DenseLayer(weight=rng.integers(-6, 8, (n_out, n_in)).astype(np.int64),
                             bias=rng.integers(-2, 3, n_out).astype(np.int64),
                             threshold=rng.integers(3, 12, n_out).astype(np.int64), neuron=neuron))
    return IntegerNetwork(input_shape=in_shape, layers=layers, weight_bits=5,
                          membrane_bits=membrane_bits).validate()


CASES = {
    "plain": dict(),
    "stride2-pad1": dict(stride=(2, 2), padding=(1, 1), pool=None, in_shape=(2, 7, 6)),
    "pad1-5ch": dict(padding=(1, 1), c_out=5, in_shape=(1, 5, 5), pool=(2, 2)),
    "kernel2x1-stride(1,2)": dict(kernel=(2, 1), stride=(1, 2), in_shape=(3, 5, 7), pool=None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_engine_matches_golden(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    net = conv_pool_dense(rng, **CASES[name])
    config = EngineConfig.for_network(net, lanes=4)
    images = [rng.random((4, net.n_inputs)) < 0.4 for _ in range(2)]
    rtl, totals = run_engine(net, config, images, stall_rng=np.random.default_rng(3))
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    np.testing.assert_array_equal(totals, golden.counters.sum(axis=(1, 2)))
    np.testing.assert_array_equal(rtl.image_cycles, golden.image_cycles)
    assert (golden.counter("saturations") > 0).any() or name != "plain", "the test network should saturate"
    assert golden.spikes[0].any() and golden.spikes[1].any()


def test_lif_subtract_conv():
    rng = np.random.default_rng(7)
    net = conv_pool_dense(rng, neuron=NeuronParams("lif", "subtract", leak_shift=2), padding=(1, 1))
    config = EngineConfig.for_network(net, lanes=2)
    images = [rng.random((5, net.n_inputs)) < 0.5]
    rtl, _ = run_engine(net, config, images)
    assert_equivalent(golden_trace(net, images, lanes=2), rtl)


def test_conv_cycle_formula_hand_computed():
    # 1x4x4 input, 2 output channels, 3x3 kernel, padding 1 → 2x4x4; P = 4: G = 1, W = 16 words, Q = 16
    conv = Conv2dLayer(np.ones((2, 1, 3, 3), dtype=np.int64), np.zeros(2, dtype=np.int64), np.full(2, 100),
                       in_shape=(1, 4, 4), padding=(1, 1))
    dense = DenseLayer(np.ones((3, 32), dtype=np.int64), np.zeros(3, dtype=np.int64), np.full(3, 100))
    net = IntegerNetwork((1, 4, 4), [conv, dense]).validate()
    plans = cycle_model.network_plans(net, 4)
    assert [(p.words, p.groups, p.state_words, p.per_event) for p in plans] == [(16, 1, 16, 1), (16, 1, 1, 1)]
    # a corner spike reaches 4 output positions, a centre spike 9
    assert [len(r) for r in cycle_model.reach_table(cycle_model.spatial_of(conv))][:6] == [4, 6, 6, 4, 6, 9]
    inputs = np.zeros((1, 1, 16), dtype=bool)
    inputs[0, 0, [0, 5]] = True
    from golden.simulate import IntegerSimulator
    trace = IntegerSimulator(net, device="cpu").run(inputs, lanes=4)
    cycles = trace.counter("cycles")[0, 0]
    assert cycles[0] == 16 + (4 + 9) * 1 + 16 + cycle_model.C_LAYER
    assert trace.counter("acs")[0, 0, 0] == (4 + 9) * 2
    assert trace.counter("weight_reads")[0, 0, 0] == 13
    assert trace.counter("state_reads")[0, 0, 0] == 16 == trace.counter("state_writes")[0, 0, 0]
    assert cycles[1] == 16 + 1 + cycle_model.C_LAYER  # dense after conv: 16 positions × 1 group, no spikes


def test_weight_memory_scales_with_kernel():
    rng = np.random.default_rng(1)
    net = conv_pool_dense(rng, in_shape=(2, 6, 6), c_out=5, pool=(2, 2))
    config = EngineConfig.for_network(net, lanes=4)
    assert config.weight_words(1) == 2 * 9 * 2  # c_in · kh · kw · G
    assert config.weight_words(2) == 4  # pool: P one-hot words
    assert config.state_words(1) == 16 * 2 and config.state_words(2) == 4 * 2
    assert config.words(3) == 4 * 2  # dense reads the pool's masks: positions · G
    words = config_words(net, config)
    assert len([a for a, _ in words if a >> 24 == 0]) == config.weight_words(1)
    order = config.hardware_order(1)
    assert sorted(order[order >= 0].tolist()) == list(range(net.layers[0].n_out))


def test_conv_output_layer_rejected():
    conv = Conv2dLayer(np.ones((2, 1, 3, 3), dtype=np.int64), np.zeros(2, dtype=np.int64), np.full(2, 3),
                       in_shape=(1, 4, 4))
    with pytest.raises(UnsupportedLayerError, match="output layer must be dense"):
        EngineConfig.for_network(IntegerNetwork((1, 4, 4), [conv]).validate())
