"""Hardware convolution (issue 6) on the RTL: conv2d → avgpool2d → dense networks (stride and zero padding,
random signed weights, small membranes so that saturation occurs) bit- and cycle-exact against the golden model
under Verilator; record beats of conv/pool layers (position-major, channel groups) are mapped back to torch
neuron order by the harness."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.session import check_equivalence, cosimulate, golden_reference
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from hw.config import EngineConfig

from .conftest import random_spikes, run_and_check


def _network(seed: int, padding, stride, neuron) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    conv = Conv2dLayer(weight=rng.integers(-6, 8, (5, 2, 3, 3)), bias=rng.integers(-2, 3, 5),
                       threshold=rng.integers(3, 12, 5), in_shape=(2, 8, 8), stride=stride, padding=padding,
                       neuron=neuron)
    pool = AvgPool2dLayer(weight=2, threshold=rng.integers(2, 6, 5), in_shape=conv.out_shape, neuron=neuron)
    dense = DenseLayer(weight=rng.integers(-6, 8, (4, pool.n_out)), bias=rng.integers(-2, 3, 4),
                       threshold=rng.integers(3, 12, 4), neuron=neuron)
    return IntegerNetwork((2, 8, 8), [conv, pool, dense], weight_bits=5, membrane_bits=6).validate()


@pytest.mark.parametrize("padding,stride", [((1, 1), (1, 1)), ((0, 0), (2, 2))])
@pytest.mark.parametrize("neuron", [NeuronParams("if", "zero"), NeuronParams("lif", "subtract", leak_shift=2)],
                         ids=["if-zero", "lif-subtract"])
def test_conv_pool_dense_is_bit_and_cycle_exact(engines, padding, stride, neuron, tmp_path):
    net = _network(11, padding, stride, neuron)
    config = EngineConfig.for_network(net, lanes=4, acc_bits=16, bias_bits=4, threshold_bits=5)
    spikes = random_spikes(np.random.default_rng(5), 3, 6, net.n_inputs)
    rtl, golden = run_and_check(net, spikes, engines(config), tmp_path, lanes=4, config=config)
    assert (golden.counter("saturations") > 0).any()
    assert golden.spikes[0].any() and golden.spikes[1].any()



# ------------------------------------------------------------------------------------------- random geometries
# Seeded random conv networks (kernel 1–5, stride 1–3, zero padding 0–2, 1–3 input and 2–6 output channels, one or
# two conv layers, an optional 2x2 average pool, a dense head); each geometry is one build that runs the same
# shape as IF-zero and LIF-subtract (rate coding), weighted spikes (Kim 2018, 'ws' + 'acc') and FS-neurons
# (Stöckl & Maass 2021, integer ReLU tables + 'acc').
GEOMETRY_SEEDS = (2, 13, 33)
GEO_LANES = 4
GEO_PHASES = 4


def random_geometry(seed: int) -> dict:
    """``in_shape``, ``convs`` (c_out, kernel, stride, padding each), ``pool`` and ``n_out`` of one network."""
    rng = np.random.default_rng(seed)
    in_shape = (int(rng.integers(1, 4)), int(rng.integers(5, 10)), int(rng.integers(5, 10)))
    shape, convs = in_shape, []
    for _ in range(int(rng.integers(1, 3))):
        _, h, w = shape
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        kernel = tuple(int(rng.integers(1, min(5, d + 2 * p) + 1)) for d, p in zip((h, w), padding))
        c_out = int(rng.integers(2, 7))
        convs.append(dict(c_out=c_out, kernel=kernel, stride=stride, padding=padding))
        shape = (c_out,) + tuple((d + 2 * p - k) // s + 1 for d, p, k, s in zip((h, w), padding, kernel, stride))
    pool = bool(rng.integers(0, 2)) and min(shape[1:]) >= 2
    return dict(in_shape=in_shape, convs=convs, pool=pool, n_out=int(rng.integers(3, 6)))


def geometry_network(geometry: dict, seed: int, coding: str, membrane_bits: int = 16) -> IntegerNetwork:
    """The network of ``geometry`` with random signed weights for ``coding``: 'if-zero', 'lif-subtract' (rate),
    'weighted' (ws hidden layers, acc output, K = 4, S = 1) or 'fs' (integer ReLU tables, acc output, K = 4)."""
    from golden.conversion.fs_tables import relu_integer_table

    rng = np.random.default_rng(seed)
    K = GEO_PHASES

    def hidden():
        if coding == "if-zero":
            return NeuronParams("if", "zero")
        if coding == "lif-subtract":
            return NeuronParams("lif", "subtract", leak_shift=2)
        if coding == "weighted":
            return NeuronParams("ws", "subtract")
        table = relu_integer_table(K, int(rng.integers(3, 9)))
        return NeuronParams("fs", fs_threshold=table.threshold, fs_reset=table.reset, fs_weight=table.weight)

    def threshold(n, neuron):
        return (np.full(n, neuron.fs_threshold[-1]) if neuron.kind == "fs" else rng.integers(3, 12, n))

    layers, shape = [], geometry["in_shape"]
    for conv in geometry["convs"]:
        neuron = hidden()
        c_out, kernel = conv["c_out"], conv["kernel"]
        layers.append(Conv2dLayer(weight=rng.integers(-6, 8, (c_out, shape[0]) + kernel),
                                  bias=rng.integers(-2, 3, c_out), threshold=threshold(c_out, neuron),
                                  in_shape=shape, stride=conv["stride"], padding=conv["padding"], neuron=neuron))
        shape = layers[-1].out_shape
    if geometry["pool"]:
        neuron = hidden()
        layers.append(AvgPool2dLayer(weight=int(rng.integers(1, 4)), threshold=threshold(shape[0], neuron),
                                     in_shape=shape, neuron=neuron))
        shape = layers[-1].out_shape
    n_out = geometry["n_out"]
    output = NeuronParams("acc") if coding in ("weighted", "fs") else hidden()
    layers.append(DenseLayer(weight=rng.integers(-6, 8, (n_out, int(np.prod(shape)))), bias=rng.integers(-2, 3, n_out),
                             threshold=rng.integers(3, 12, n_out), neuron=output))
    extra = {}
    if coding == "weighted":
        extra = dict(input_coding="weighted", input_bits=K, phases=K, skip_periods=1)
    elif coding == "fs":
        extra = dict(input_coding="fs", input_bits=K, phases=K)
    return IntegerNetwork(geometry["in_shape"], layers, weight_bits=5, membrane_bits=membrane_bits,
                          **extra).validate()


def geometry_inputs(net: IntegerNetwork, seed: int) -> np.ndarray:
    """Time-major input spikes ``[T, N, n_0]`` for ``net``'s coding."""
    import torch

    from golden.simulation.encoding import fs_encode, weighted_encode

    rng = np.random.default_rng(seed)
    if net.input_coding == "rate":
        return random_spikes(rng, 3, 6, net.n_inputs)
    codes = torch.as_tensor(rng.integers(0, 1 << net.phases, (3, net.n_inputs)))
    if net.input_coding == "weighted":
        return weighted_encode(codes, 3 * net.phases, net.phases).numpy()
    return fs_encode(codes, net.phases, steps=net.fs_latency).numpy()


GEO_CODINGS = ("if-zero", "lif-subtract", "weighted", "fs")


def test_random_geometries_cover_padding_stride_and_kernels():
    geometries = [random_geometry(seed) for seed in GEOMETRY_SEEDS]
    convs = [conv for g in geometries for conv in g["convs"]]
    assert any(max(conv["stride"]) > 1 for conv in convs) and any(max(conv["padding"]) > 0 for conv in convs)
    assert len({conv["kernel"] for conv in convs}) >= 3
    assert any(len(g["convs"]) == 2 for g in geometries) and any(g["pool"] for g in geometries)
    assert any(g["in_shape"][0] > 1 for g in geometries)


@pytest.mark.parametrize("seed", GEOMETRY_SEEDS)
def test_random_conv_geometry_is_bit_and_cycle_exact(engines, seed, tmp_path):
    from cosim.session import config_for_networks

    geometry = random_geometry(seed)
    networks = {coding: geometry_network(geometry, seed + index, coding) for index, coding in enumerate(GEO_CODINGS)}
    config = config_for_networks(networks.values(), lanes=GEO_LANES)  # one build for the four codings
    engine = engines(config)
    for index, (coding, net) in enumerate(networks.items()):
        spikes = geometry_inputs(net, seed * 10 + index)
        rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / coding)
        golden = golden_reference(net, spikes, lanes=GEO_LANES)
        comparison = check_equivalence(golden, rtl.trace, tmp_path / f"mismatch-{coding}")
        assert comparison.equivalent, f"{coding} {geometry}: {comparison.summary()}"
        assert rtl.problems == []
        assert golden.spikes[0].any(), f"{coding} {geometry}: the first layer never fired"
