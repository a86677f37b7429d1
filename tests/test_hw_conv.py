"""Hardware convolution (issue 6): conv2d / avgpool2d layers on the engine's event-driven convolution schedule
in Amaranth's simulator against the golden integer model — spikes, membranes, every counter (cycles of the conv
formula), totals and predictions — for stride and zero-padding variants, random signed weights and small
membranes (saturation)."""

import numpy as np
import pytest
from test_hw_engine import assert_equivalent, golden_trace, run_engine

from golden.core import cycle_model
from golden.core.errors import UnsupportedLayerError
from golden.core.geometry import SPATIAL_FIELDS, Geometry, geometry_of
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from golden.simulation import counting
from hw.config import EngineConfig
from hw.config_image import config_words


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
    assert [len(r) for r in cycle_model.reach_table(geometry_of(conv))][:6] == [4, 6, 6, 4, 6, 9]
    inputs = np.zeros((1, 1, 16), dtype=bool)
    inputs[0, 0, [0, 5]] = True
    from golden.simulation.simulate import IntegerSimulator
    trace = IntegerSimulator(net, device="cpu").run(inputs, lanes=4)
    cycles = trace.counter("cycles")[0, 0]
    assert cycles[0] == 16 + (4 + 9) * 1 + 16 + cycle_model.C_LAYER
    assert trace.counter("acs")[0, 0, 0] == (4 + 9) * 2
    assert trace.counter("weight_reads")[0, 0, 0] == 13
    assert trace.counter("state_reads")[0, 0, 0] == 16 == trace.counter("state_writes")[0, 0, 0]
    assert cycles[1] == 16 + 1 + cycle_model.C_LAYER  # dense after conv: 16 positions × 1 group, no spikes


def test_geometry_names_the_spatial_fields():
    rng = np.random.default_rng(4)
    net = conv_pool_dense(rng, in_shape=(2, 7, 6), kernel=(3, 2), stride=(2, 1), padding=(1, 0))
    conv, pool, _ = net.layers
    config = EngineConfig.for_network(net, lanes=4)
    geo = config.geometry(1)
    assert isinstance(geo, Geometry) and Geometry._fields == SPATIAL_FIELDS
    assert geo == geometry_of(conv) and hash(geo) == hash(geometry_of(conv))
    assert (geo.in_shape, geo.out_shape) == (tuple(conv.in_shape), tuple(conv.out_shape))
    assert (geo.kernel_h, geo.kernel_w, geo.stride_y, geo.stride_x, geo.pad_y, geo.pad_x) == (3, 2, 2, 1, 1, 0)
    assert (geo.taps, geo.in_positions, geo.out_positions) == (6, 42, conv.out_shape[1] * conv.out_shape[2])
    assert not geo.is_pool and config.geometry(2).is_pool and config.geometry(3) == ()
    # a Geometry is stored, hashed and digested as the bare tuple it replaces (build caches keep their keys)
    bare = EngineConfig(config.layer_sizes, lanes=4, membrane_bits=config.membrane_bits, acc_bits=config.acc_bits,
                        bias_bits=config.bias_bits, threshold_bits=config.threshold_bits, weight_bits=5,
                        spatial=tuple(tuple(geometry_of(layer)) for layer in net.layers))  # plain tuples
    assert bare == config and hash(bare) == hash(config) and bare.digest() == config.digest()
    assert bare.as_dict()["spatial"] == [list(geometry_of(layer)) for layer in net.layers]


def test_weight_memory_scales_with_kernel():
    rng = np.random.default_rng(1)
    net = conv_pool_dense(rng, in_shape=(2, 6, 6), c_out=5, pool=(2, 2))
    config = EngineConfig.for_network(net, lanes=4)
    assert config.weight_words(1) == 2 * 9 * 2  # c_in · kh · kw · G
    assert config.weight_words(2) == 1  # pool: one word, the pool weight in every lane
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


def test_pool_events_are_word_parallel_on_the_engine():
    """A pool layer whose source words hold several spikes (5 channels in words of P = 4, pool as layer 1 and after
    a conv layer): one EVENT cycle per (non-empty word, reached window) adds the masked pool weight in every lane.
    The RTL's counters equal the literal R_w count (tests/literal_reference.py) and the golden model's."""
    from literal_reference import pool_word_events

    rng = np.random.default_rng(11)
    pool = AvgPool2dLayer(weight=2, threshold=rng.integers(2, 5, 5), in_shape=(5, 4, 4), kernel=(2, 2),
                          stride=(1, 1))
    net = IntegerNetwork((5, 4, 4), [pool, DenseLayer(weight=rng.integers(-6, 8, (3, pool.n_out)),
                                                      bias=np.zeros(3, dtype=np.int64),
                                                      threshold=np.full(3, 6))], weight_bits=5,
                         membrane_bits=6).validate()
    config = EngineConfig.for_network(net, lanes=4)
    images = [rng.random((4, net.n_inputs)) < 0.3 for _ in range(2)]
    rtl, totals = run_engine(net, config, images)
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    np.testing.assert_array_equal(totals, golden.counters.sum(axis=(1, 2)))
    k = {name: i for i, name in enumerate(counting.COUNTER_NAMES)}
    r_w = np.array([[pool_word_events(pool, x.tolist(), 4) for x in image] for image in images])
    np.testing.assert_array_equal(rtl.counters[..., 0, k["weight_reads"]], r_w)
    np.testing.assert_array_equal(rtl.counters[..., 0, k["cycles"]],
                                  16 * 2 + r_w + 9 * 2 + cycle_model.C_LAYER)
    acs = np.stack(images).astype(np.int64) @ counting.fan_out(pool)
    np.testing.assert_array_equal(rtl.counters[..., 0, k["acs"]], acs)
    assert (r_w < acs).any(), "some source words should hold several spikes"
    # after a conv layer (the "pad1-5ch" geometry): pool R_w below its ACs as well
    net = conv_pool_dense(np.random.default_rng(5), **CASES["pad1-5ch"])
    images = [np.random.default_rng(6).random((3, net.n_inputs)) < 0.5]
    rtl, _ = run_engine(net, EngineConfig.for_network(net, lanes=4), images)
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    assert (golden.counter("weight_reads")[..., 1] < golden.counter("acs")[..., 1]).any()


# ------------------------------------------------------------------------------------------- FS networks
def _fs_conv_model(seed):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(5 * 3 * 3, 4)).eval()


def test_fs_converted_conv_pool_stream_matches_golden():
    """FS-neurons (Stöckl & Maass 2021) in conv and pool layers: a conv(3x3, pad 1) → avgpool → dense ReLU model
    converted by golden.conversion.fs_convert (K = 4), three images streamed through one start with input stalls; every
    (image, step, layer) entry, the stream totals and cycles equal the golden FS model (conv/pool cycle formula in
    the collect and fire windows)."""
    import torch
    from test_hw_fs import check_stream, golden_fs_trace, run_fs_streams

    from golden.conversion.fs_convert import fs_convert

    rng = np.random.default_rng(2)
    calibration = torch.as_tensor(rng.integers(0, 256, (64, 2, 6, 6)), dtype=torch.uint8)
    net = fs_convert(_fs_conv_model(0), calibration, phases=4, weight_bits=6).integer
    assert [(layer.kind, layer.neuron.kind) for layer in net.layers] == [
        ("conv2d", "fs"), ("avgpool2d", "fs"), ("dense", "acc")]
    config = EngineConfig.for_network(net, lanes=4)
    assert config.fs and config.spatial[0] and config.spatial[1]
    codes = [rng.integers(0, 16, net.n_inputs) for _ in range(3)]
    golden = golden_fs_trace(net, np.stack(codes), lanes=4)
    [(rtl, out)] = run_fs_streams(net, config, [codes], stall_rng=np.random.default_rng(3))
    check_stream(net, config, golden, rtl, out, stalls=True)
    assert golden.spikes[0].any() and golden.spikes[1].any()
    # a collect step of the conv layer costs the conv formula, its fire steps W_l + Q·G_l + C_LAYER
    plan = cycle_model.network_plans(net, 4)[0]
    fire = golden.counter("cycles")[:, net.phases:2 * net.phases, 0]
    assert (fire == plan.words + plan.state_words + cycle_model.C_LAYER).all()


def test_fs_strided_conv_conv_dense_saturates():
    """Two FS conv layers (stride 2 with padding 2, then 2x2 kernels stride 1), random signed weights and integer
    ReLU tables, a small membrane so that COLLECT saturates; P = 3 leaves padding lanes in the channel groups."""
    from test_hw_fs import check_stream, golden_fs_trace, run_fs_streams

    from golden.conversion.fs_tables import relu_integer_table

    rng = np.random.default_rng(5)
    K = 3

    def fs(theta):
        table = relu_integer_table(K, theta)
        return NeuronParams("fs", fs_threshold=table.threshold, fs_reset=table.reset, fs_weight=table.weight)

    conv1 = Conv2dLayer(weight=rng.integers(-8, 16, (4, 1, 3, 3)), bias=rng.integers(-4, 5, 4),
                        threshold=np.full(4, 6), in_shape=(1, 7, 7), stride=(2, 2), padding=(2, 2), neuron=fs(6))
    conv2 = Conv2dLayer(weight=rng.integers(-8, 16, (5, 4, 2, 2)), bias=rng.integers(-4, 5, 5),
                        threshold=np.full(5, 9), in_shape=conv1.out_shape, neuron=fs(9))
    dense = DenseLayer(weight=rng.integers(-16, 16, (3, conv2.n_out)), bias=rng.integers(-4, 5, 3),
                       threshold=np.ones(3, dtype=np.int64), neuron=NeuronParams("acc"))
    net = IntegerNetwork((1, 7, 7), [conv1, conv2, dense], weight_bits=6, membrane_bits=9, input_coding="fs",
                         input_bits=K, phases=K).validate()
    config = EngineConfig.for_network(net, lanes=3)
    codes = [rng.integers(0, 1 << K, net.n_inputs) for _ in range(2)]
    golden = golden_fs_trace(net, np.stack(codes), lanes=3)
    [(rtl, out)] = run_fs_streams(net, config, [codes])
    check_stream(net, config, golden, rtl, out)
    assert (golden.counter("saturations") > 0).any(), "the 9-bit membranes should saturate"
    assert golden.spikes[0].any() and golden.spikes[1].any()
