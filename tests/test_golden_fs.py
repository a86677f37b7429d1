"""FS-neurons (Stöckl & Maass 2021; docs/spec.md §3b): IR fields and validation, ReLU tables (integer exactness,
float error bound), the FS simulator against a literal per-neuron reference (negative d from a SiLU table,
saturation, MACs for general d), counters and the per-image/stream cycle model, table fitting and quantisation,
ANN → FS conversion and the user errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from literal_reference import connections

from golden.conversion.fs_convert import fs_convert
from golden.conversion.fs_tables import (FIT_SPECS, FsTable, fit_table, fs_integer_response, input_weights,
                                         is_signed_power_of_two, load_tables, quantize_table, relu_integer_table,
                                         relu_table, signed_power_of_two, table_for)
from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import NetworkFileError, SnnCosimError, UnsupportedLayerError, WidthError
from golden.core.network import Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, SkipConnection, signed_range
from golden.core.trace import compare
from golden.data.mnist import default_split
from golden.simulation import counting
from golden.simulation.encoding import fs_encode, fs_pixel_codes
from golden.simulation.simulate import FloatSimulator, IntegerSimulator, accuracy_curve
from golden.training.ann_trainer import make_convnet, make_mlp
from golden.training.ann_trainer import predict as ann_predict
from golden.training.ann_trainer import train

ACC = NeuronParams("acc")
C = {name: k for k, name in enumerate(COUNTER_NAMES)}


def fs_network(layers, phases, membrane_bits=24, weight_bits=8, n_inputs=None) -> IntegerNetwork:
    n_inputs = layers[0].n_in if n_inputs is None else n_inputs
    return IntegerNetwork((n_inputs,), layers, weight_bits=weight_bits, membrane_bits=membrane_bits,
                          input_coding="fs", input_bits=phases, phases=phases).validate()


def dense(rng, n_out, n_in, params, w=20, b=10, theta=1):
    return DenseLayer(rng.integers(-w, w + 1, (n_out, n_in)), rng.integers(-b, b + 1, n_out),
                      np.full(n_out, theta, dtype=np.int64), params)


# ----------------------------------------------------------------------------------------------- reference
def reference(network: IntegerNetwork, spikes_in, lanes: int):
    """Literal per-image, per-step, per-layer, per-neuron FS semantics of docs/spec.md §3b in Python ints (dense
    layers). Residual junctions: a literal delay line per skip ("Residual junctions in FS networks") holds every
    step's output of the skip source k (the input or layer k, all-False while it does not fire) and hands the
    junction l the one of (l−k−1)·K steps earlier, weighted by d_k[t]."""
    spikes_in = np.asarray(spikes_in).astype(bool).tolist()
    big_k, n_layers = network.phases, len(network.layers)
    steps, n_images = n_layers * big_k, len(spikes_in[0])
    lo, hi = signed_range(network.membrane_bits)
    sat = lambda x: min(max(x, lo), hi)  # noqa: E731
    sizes = network.layer_sizes
    groups = lambda n: -(-n // lanes)  # noqa: E731
    spikes = [np.zeros((n_images, steps, n), dtype=bool) for n in sizes[1:]]
    membranes = [np.zeros((n_images, steps, n), dtype=np.int64) for n in sizes[1:]]
    counters = np.zeros((n_images, steps, n_layers, 9), dtype=np.int64)
    predictions = []
    weights = [layer.weight.tolist() for layer in network.layers]
    biases = [layer.bias.tolist() for layer in network.layers]
    skips = {skip.target: skip for skip in network.skips}
    skip_conn = {l: [connections(network.skip_layer(skip), j) for j in range(sizes[l])] for l, skip in skips.items()}
    is_shift = lambda d: d != 0 and abs(d) & (abs(d) - 1) == 0  # noqa: E731
    weight_of = lambda k, t: 2 ** (big_k - t) if k == 0 else network.layers[k - 1].neuron.fs_weight[t - 1]  # noqa
    for b in range(n_images):
        v = [[0] * n for n in sizes[1:]]
        history = {skip.source: [] for skip in network.skips}  # every step's output of each skip source
        for s in range(1, steps + 1):
            w = math.ceil(s / big_k)
            t = s - (w - 1) * big_k
            src = spikes_in[s - 1][b] if s <= len(spikes_in) else [False] * sizes[0]
            if 0 in history:
                history[0].append(src)
            for l in range(1, n_layers + 1):
                layer = network.layers[l - 1]
                n = sizes[l]
                out = [False] * n
                row = counters[b, s - 1, l - 1]
                skip = skips.get(l)
                if l == w:  # COLLECT
                    d = weight_of(l - 1, t)
                    s_in, sats = sum(src), 0
                    if skip is not None:  # the delay line's output: the source's spikes (l−k−1)·K steps ago
                        delay = (l - skip.source - 1) * big_k
                        line = history[skip.source]
                        late = line[s - 1 - delay] if s - 1 - delay >= 0 else [False] * sizes[skip.source]
                        d_k = weight_of(skip.source, t)
                    for j in range(n):
                        current = sum(weights[l - 1][j][i] for i in range(sizes[l - 1]) if src[i])
                        base = biases[l - 1][j] if t == 1 else v[l - 1][j]
                        exact = base + d * current
                        if skip is not None:
                            exact += d_k * sum(wt for i, wt in skip_conn[l][j] if i is not None and late[i])
                        v[l - 1][j] = sat(exact)
                        sats += v[l - 1][j] != exact
                    row[C["acs"]] = s_in * n if is_shift(d) else 0
                    row[C["macs"]] = 0 if is_shift(d) else s_in * n
                    if skip is not None:
                        skip_in = sum(late)
                        row[C["acs" if is_shift(d_k) else "macs"]] += skip_in * n
                        row[C["cycles"]] = groups(sizes[skip.source]) + skip_in * groups(n)
                        row[C["weight_reads"]] = skip_in * groups(n)
                elif l == w - 1 and l < n_layers:  # FIRE
                    s_in, sats = 0, 0
                    thr, rst = layer.neuron.fs_threshold[t - 1], layer.neuron.fs_reset[t - 1]
                    for j in range(n):
                        out[j] = v[l - 1][j] >= thr
                        exact = v[l - 1][j] - rst * out[j]
                        v[l - 1][j] = sat(exact)
                        sats += v[l - 1][j] != exact
                    if skip is not None:  # the skip pass reads the (empty) delay-line words
                        row[C["cycles"]] = groups(sizes[skip.source])
                else:  # idle
                    src = out
                    if l in history:
                        history[l].append(out)
                    continue
                if l in history:
                    history[l].append(out)
                spikes[l - 1][b, s - 1] = out
                membranes[l - 1][b, s - 1] = v[l - 1]
                g = groups(n)
                row[C["cycles"]] += groups(sizes[l - 1]) + s_in * g + g + cycle_model.C_LAYER
                row[C["spikes"]] = sum(out)
                row[C["neuron_updates"]] = n
                row[C["weight_reads"]] += s_in * g
                row[C["state_reads"]] = g
                row[C["state_writes"]] = g
                row[C["saturations"]] = sats
                src = out
        final = v[-1]
        predictions.append(final.index(max(final)))
    image_cycles = counters[..., C["cycles"]].sum(axis=(1, 2)) + cycle_model.C_IMAGE
    return spikes, membranes, counters, image_cycles, np.array(predictions)


def assert_matches_reference(network, x, lanes):
    trace = IntegerSimulator(network, device="cpu").run(x, lanes=lanes, record_membranes=True)
    spikes, membranes, counters, image_cycles, predictions = reference(network, x, lanes)
    for l in range(len(network.layers)):
        np.testing.assert_array_equal(trace.spikes[l], spikes[l], err_msg=f"spikes of layer {l + 1}")
        np.testing.assert_array_equal(trace.membranes[l], membranes[l], err_msg=f"membranes of layer {l + 1}")
    np.testing.assert_array_equal(trace.counters, counters)
    np.testing.assert_array_equal(trace.image_cycles, image_cycles)
    np.testing.assert_array_equal(trace.predictions, predictions)
    return trace


def silu_layer_params(scale=16, weight_scale=8, shift_only=False) -> NeuronParams:
    return quantize_table(table_for("silu", shift_only=shift_only), scale, weight_scale,
                          shift_only=shift_only).neuron_params()


# ----------------------------------------------------------------------------------------------- IR
def test_neuron_params_tables_become_tuples_and_round_trip(tmp_path):
    p = NeuronParams("fs", fs_threshold=[4, 2, 1], fs_reset=np.array([4, 2, 1]), fs_weight=[np.int64(4), 2, 1])
    assert p.fs_threshold == (4, 2, 1) and p.fs_reset == (4, 2, 1) and p.fs_weight == (4, 2, 1)
    assert all(type(v) is int for v in p.fs_weight)
    assert p == NeuronParams("fs", fs_threshold=(4, 2, 1), fs_reset=(4, 2, 1), fs_weight=(4, 2, 1))
    assert "fs_threshold" not in NeuronParams().to_dict()  # non-FS files are unchanged
    rng = np.random.default_rng(0)
    net = fs_network([dense(rng, 5, 6, relu_integer_table(3, 2).neuron_params(), theta=2),
                      dense(rng, 4, 5, ACC)], 3, membrane_bits=12)
    net.save(tmp_path / "net")
    again = IntegerNetwork.load(tmp_path / "net")
    assert again.layers[0].neuron == net.layers[0].neuron and again.is_fs and again.fs_latency == 6
    codes = rng.integers(0, 8, (3, 6))
    x = fs_encode(codes, 3, steps=6)
    assert compare(IntegerSimulator(net, device="cpu").run(x), IntegerSimulator(again, device="cpu").run(x)).equivalent


@pytest.mark.parametrize("mutate, error, pattern", [
    (lambda n: (setattr(n, "phases", 4), setattr(n, "input_bits", 4)), NetworkFileError,
     "3 entries but phases K = 4"),
    (lambda n: setattr(n, "input_bits", 4), WidthError, "input_bits"),
    (lambda n: setattr(n, "input_coding", "rate"), NetworkFileError, "input_coding 'fs'"),
    (lambda n: setattr(n, "skip_periods", 1), NetworkFileError, "skip_periods"),
    (lambda n: setattr(n, "phases", 17), WidthError, "1..16"),
    (lambda n: setattr(n, "membrane_bits", 5), WidthError, "use membrane_bits=6"),
    (lambda n: n.layers.__setitem__(1, DenseLayer(np.zeros((2, 3), np.int64), np.zeros(2, np.int64),
                                                  np.ones(2, np.int64), NeuronParams())),
     NetworkFileError, "'acc' output layer"),
    (lambda n: n.layers.__setitem__(1, DenseLayer(np.zeros((2, 3), np.int64), np.zeros(2, np.int64),
                                                  np.ones(2, np.int64), NeuronParams("acc", fs_weight=(1,)))),
     NetworkFileError, "belong to FS neurons"),
    (lambda n: n.layers.__setitem__(0, DenseLayer(np.zeros((3, 2), np.int64), np.zeros(3, np.int64),
                                                  np.ones(3, np.int64),
                                                  NeuronParams("fs", fs_threshold=(1, 2), fs_reset=(1, 2, 3),
                                                               fs_weight=(1, 2, 3)))),
     NetworkFileError, "same length"),
    (lambda n: n.layers.__setitem__(0, DenseLayer(np.zeros((3, 2), np.int64), np.zeros(3, np.int64),
                                                  np.ones(3, np.int64),
                                                  NeuronParams("fs", fs_threshold=(1.5, 2, 3), fs_reset=(1, 2, 3),
                                                               fs_weight=(1, 2, 3)))),
     NetworkFileError, "integers"),
])
def test_fs_network_validation(mutate, error, pattern):
    net = IntegerNetwork((2,), [DenseLayer(np.zeros((3, 2), np.int64), np.zeros(3, np.int64), np.ones(3, np.int64),
                                           NeuronParams("fs", fs_threshold=(16, 8, 4), fs_reset=(16, 8, 4),
                                                        fs_weight=(4, 2, 1))),
                                DenseLayer(np.zeros((2, 3), np.int64), np.zeros(2, np.int64), np.ones(2, np.int64),
                                           ACC)],
                         membrane_bits=8, input_coding="fs", input_bits=3, phases=3).validate()
    mutate(net)
    with pytest.raises(error, match=pattern):
        net.validate()


# ----------------------------------------------------------------------------------------------- ReLU tables
@pytest.mark.parametrize("phases", [8, 10])
def test_integer_relu_is_exact_through_the_simulator(phases):
    """f̂(x) = ReLU(x) for every integer x in [−20, 2^K − 1] (notes/004 §6 check 1): FS layer θ = 1 with biases
    x, the acc layer reading each neuron with weight 1; a second image adds the input code 5 to every x."""
    x = np.arange(-20, 2 ** phases)
    n = x.size
    ident = np.eye(n, dtype=np.int64)
    hidden = DenseLayer(np.ones((n, 1), np.int64), x.astype(np.int64), np.ones(n, np.int64),
                        relu_integer_table(phases).neuron_params())
    out = DenseLayer(ident, np.zeros(n, np.int64), np.ones(n, np.int64), ACC)
    net = fs_network([hidden, out], phases, membrane_bits=phases + 3, weight_bits=2)
    trace = IntegerSimulator(net, device="cpu").run(fs_encode(np.array([[0], [5]]), phases, steps=2 * phases))
    final = trace.membranes[1][:, -1]
    np.testing.assert_array_equal(final[0], np.maximum(x, 0))
    np.testing.assert_array_equal(final[1], np.clip(x + 5, 0, 2 ** phases - 1))
    spikes = trace.spikes[0][0].sum(axis=0)  # spike count = popcount of the code
    np.testing.assert_array_equal(spikes, [bin(max(int(v), 0)).count("1") for v in x])
    assert trace.totals()["saturations"] == 0


def test_integer_relu_table_with_scale_and_strict_comparison():
    table = relu_integer_table(6, theta=7)
    v = np.arange(-50, 7 * 70)
    out, spikes, _, _ = table.response(v)
    d = np.array(input_weights(6))
    np.testing.assert_array_equal(out, np.clip(v // 7, 0, 63))  # the code n = clamp(⌊v/θ⌋, 0, 2^K−1)
    assert table.shift_only and table.weight == tuple(d.tolist())
    # the reference code's strict '>' is one LSB low on every exact multiple (why SPEC uses ≥)
    strict, _ = relu_table(6, 64.0).response(np.arange(1, 64, dtype=np.float64), strict=True)
    np.testing.assert_array_equal(strict, np.arange(0, 63))


@pytest.mark.parametrize("phases, alpha", [(10, 25.0), (6, 10.0), (8, 3.0)])
def test_float_relu_error_bound(phases, alpha):
    table = relu_table(phases, alpha)
    x = np.linspace(-30.0, alpha, 100_001)[:-1]
    out, spikes = table.response(x)
    lsb = alpha * 2.0 ** -phases
    assert np.max(np.abs(out - np.maximum(x, 0))) <= lsb + 1e-12
    np.testing.assert_allclose(out, np.clip(np.floor(x / lsb), 0, 2 ** phases - 1) * lsb, atol=1e-9)
    above, spikes_above = table.response(np.array([alpha, 2 * alpha]))
    np.testing.assert_allclose(above, alpha * (1 - 2.0 ** -phases))  # saturates: every step spikes
    assert (spikes_above == phases).all()


# ----------------------------------------------------------------------------------------------- simulator
def test_encoder_sends_codes_once_msb_first():
    codes = torch.tensor([[5, 0, 7], [2, 6, 1]])
    x = fs_encode(codes, 3, steps=7)
    assert x.shape == (7, 2, 3) and x.dtype == torch.bool
    assert x[3:].sum() == 0
    weights = torch.tensor(input_weights(3)).view(3, 1, 1)
    np.testing.assert_array_equal((x[:3].long() * weights).sum(0), codes)
    assert torch.equal(fs_encode(codes, 3), x[:3])
    assert np.array_equal(fs_pixel_codes(np.array([255, 1]), 10), [1020, 4])
    assert np.array_equal(fs_pixel_codes(np.array([255, 17]), 4), [15, 1])
    with pytest.raises(SnnCosimError, match="allow"):
        fs_encode([[8]], 3)
    with pytest.raises(SnnCosimError, match="at least K"):
        fs_encode([[1]], 3, steps=2)


@pytest.mark.parametrize("seed", range(4))
def test_simulator_matches_literal_reference(seed):
    """Random 3-layer FS networks: a SiLU hidden layer with negative (general) d entries, a ReLU layer, an
    acc output; small membranes so that collect and fire writes saturate."""
    rng = np.random.default_rng(seed)
    phases = 4 + seed % 2
    silu = silu_layer_params(scale=int(rng.integers(4, 12)), weight_scale=8, shift_only=bool(seed % 2))
    silu = NeuronParams("fs", fs_threshold=silu.fs_threshold[:phases], fs_reset=silu.fs_reset[:phases],
                        fs_weight=silu.fs_weight[:phases])
    layers = [dense(rng, 7, 9, silu, w=8, b=8), dense(rng, 5, 7, relu_integer_table(phases, 3).neuron_params(),
                                                      w=5, b=6, theta=3),
              dense(rng, 4, 5, ACC, w=7, b=5)]
    membrane_bits = 9 + seed % 2
    net = fs_network(layers, phases, membrane_bits=membrane_bits)
    codes = rng.integers(0, 2 ** phases, (6, 9))
    trace = assert_matches_reference(net, fs_encode(codes, phases, steps=3 * phases), lanes=int(rng.integers(2, 5)))
    assert trace.totals()["saturations"] > 0, "the test should exercise saturation"
    if any(d < 0 for d in silu.fs_weight):
        assert trace.counter("spikes")[:, :, 0].sum() > 0
    if not all(is_signed_power_of_two(d) for d in silu.fs_weight):
        assert trace.totals()["macs"] > 0  # general d: (spike, synapse) pairs are multiplies


def test_no_saturation_float_equals_integer_and_batches_are_independent():
    rng = np.random.default_rng(7)
    net = fs_network([dense(rng, 6, 8, silu_layer_params(8, 4)), dense(rng, 5, 6, ACC)], 16, membrane_bits=40)
    codes = rng.integers(0, 2 ** 16, (5, 8))
    x = fs_encode(codes, 16, steps=32)
    trace = IntegerSimulator(net, device="cpu").run(x, batch_size=2)
    assert trace.totals()["saturations"] == 0
    run = FloatSimulator(net, device="cpu").run(x)
    np.testing.assert_array_equal(run.membranes[1], trace.membranes[1].astype(np.float64))
    np.testing.assert_array_equal(run.predictions, trace.predictions)
    alone = IntegerSimulator(net, device="cpu").run(x[:, 3:4])
    np.testing.assert_array_equal(alone.membranes[1][0], trace.membranes[1][3])
    # K-step inputs are padded to L·K; spikes after window 1 are refused
    short = IntegerSimulator(net, device="cpu").run(x[:16])
    assert compare(trace, short).equivalent
    bad = x.clone()
    bad[20, 0, 0] = True
    with pytest.raises(SnnCosimError, match="after window 1"):
        IntegerSimulator(net, device="cpu").run(bad)
    with pytest.raises(SnnCosimError, match="L·K = 32"):
        IntegerSimulator(net, device="cpu").run(torch.zeros((33, 1, 8), dtype=torch.bool))


def test_conv_fs_layer_equals_its_dense_unfolding():
    rng = np.random.default_rng(3)
    phases = 4
    conv_w = rng.integers(-5, 6, (2, 1, 3, 3))
    conv = Conv2dLayer(conv_w, rng.integers(-4, 5, 2), np.full(2, 2), (1, 5, 5), (1, 1), (1, 1),
                       relu_integer_table(phases, 2).neuron_params())
    # the same map as a dense matrix
    n_out = int(np.prod(conv.out_shape))
    mat = np.zeros((n_out, 25), dtype=np.int64)
    for co in range(2):
        for oy in range(5):
            for ox in range(5):
                for ky in range(3):
                    for kx in range(3):
                        iy, ix = oy - 1 + ky, ox - 1 + kx
                        if 0 <= iy < 5 and 0 <= ix < 5:
                            mat[(co * 5 + oy) * 5 + ox, iy * 5 + ix] = conv_w[co, 0, ky, kx]
    head = dense(rng, 3, n_out, ACC, w=4, b=3)
    as_conv = IntegerNetwork((1, 5, 5), [conv, head], membrane_bits=16, input_coding="fs", input_bits=phases,
                             phases=phases).validate()
    as_dense = fs_network([DenseLayer(mat, np.repeat(conv.bias, 25), np.full(n_out, 2),
                                      relu_integer_table(phases, 2).neuron_params()), head], phases,
                          membrane_bits=16)
    x = fs_encode(rng.integers(0, 16, (4, 25)), phases, steps=2 * phases)
    a = IntegerSimulator(as_conv, device="cpu").run(x, record_membranes=True)
    b = IntegerSimulator(as_dense, device="cpu").run(x, record_membranes=True)
    for l in range(2):
        np.testing.assert_array_equal(a.spikes[l], b.spikes[l])
        np.testing.assert_array_equal(a.membranes[l], b.membranes[l])
    # ACs of the conv layer count only the synapses that exist (fan-out with padding), dense ones all n_out
    assert a.counter("acs")[:, :, 0].sum() < b.counter("acs")[:, :, 0].sum()


# ----------------------------------------------------------------------------------------------- residual junctions
def test_residual_junction_hand_computed():
    """K = 2, one input x = 3 (spikes at steps 1, 2). Layer 1 (d = (4, 2), so its code 3 is worth 6) → layer 2
    (W = −1, skip from the input S = 3) → acc layer 3 (W = [1, 2], skip from layer 1 S = [−1, 1]). Layer 2
    collects in window 2: −1·6 + 3·(2·1 + 1·1) = 3 (the input's spikes of window 1, delayed K steps, weighted by
    2^(K−t)); layer 3 in window 3: W·3 + S·6 (layer 1's spikes of window 2, delayed K steps, weighted by its d)
    = [3 − 6, 6 + 6] = [−3, 12]. A same-step skip would see no spikes ([0, 0]); the wrong d, [0, 9]."""
    layer1 = DenseLayer(np.array([[1]]), np.array([0]), np.array([1]),
                        NeuronParams("fs", fs_threshold=(2, 1), fs_reset=(2, 1), fs_weight=(4, 2)))
    layer2 = DenseLayer(np.array([[-1]]), np.array([0]), np.array([1]), relu_integer_table(2).neuron_params())
    layer3 = DenseLayer(np.array([[1], [2]]), np.array([0, 0]), np.array([1, 1]), ACC)
    net = IntegerNetwork((1,), [layer1, layer2, layer3], weight_bits=4, membrane_bits=8, input_coding="fs",
                         input_bits=2, phases=2,
                         skips=[SkipConnection(2, 0, np.array([[3]])),
                                SkipConnection(3, 1, np.array([[-1], [1]]))]).validate()
    assert [counting.fs_skip_delay(skip, 2) for skip in net.skips] == [2, 2]
    trace = IntegerSimulator(net, device="cpu").run(fs_encode(np.array([[3]]), 2, steps=6), lanes=1)
    np.testing.assert_array_equal(trace.membranes[1][0, :, 0], [0, 0, -4 + 6, 3, 1, 0])  # collect, then fire
    np.testing.assert_array_equal(trace.spikes[1][0, :, 0], [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(trace.membranes[2][0, -1], [-3, 12])
    assert trace.predictions[0] == 1
    # skip pass: layer 2 reads 2 delayed input spikes (steps 3, 4: one each), layer 3 two of layer 1 (steps 5, 6)
    skip_cycles = 1 + 1  # W_skip + E_skip·G_l with one lane, one spike
    main = trace.counter("cycles")
    assert main[0, 2, 1] == 1 + 1 + 1 + cycle_model.C_LAYER + skip_cycles  # step 3: one main, one skip spike
    assert main[0, 4, 1] == 1 + 1 + cycle_model.C_LAYER + 1  # fire step: W_l + G_l + C_LAYER + W_skip
    np.testing.assert_array_equal(trace.counter("acs")[0, :, 2], [0, 0, 0, 0, 2 + 2, 2 + 2])


def residual_fs_network(rng, phases, membrane_bits, shift_only):
    """Five dense layers: SiLU (general or shift-only d) → ReLU → ReLU → ReLU → acc, skips 0→2, 1→3 (from the SiLU
    layer: its d weights the skip) and 2→5 (delay 2K)."""
    silu = silu_layer_params(scale=int(rng.integers(4, 12)), weight_scale=8, shift_only=shift_only)
    silu = NeuronParams("fs", fs_threshold=silu.fs_threshold[:phases], fs_reset=silu.fs_reset[:phases],
                        fs_weight=silu.fs_weight[:phases])
    relu = relu_integer_table(phases, 3).neuron_params()
    layers = [dense(rng, 7, 9, silu, w=8, b=8), dense(rng, 6, 7, relu, w=5, b=6, theta=3),
              dense(rng, 5, 6, relu, w=5, b=6, theta=3), dense(rng, 6, 5, relu, w=5, b=6, theta=3),
              dense(rng, 4, 6, ACC, w=7, b=5)]
    skips = [SkipConnection(2, 0, rng.integers(-4, 5, (6, 9))), SkipConnection(3, 1, rng.integers(-4, 5, (5, 7))),
             SkipConnection(5, 2, rng.integers(-4, 5, (4, 6)))]
    return IntegerNetwork((9,), layers, weight_bits=8, membrane_bits=membrane_bits, input_coding="fs",
                          input_bits=phases, phases=phases, skips=skips).validate()


@pytest.mark.parametrize("seed", range(3))
def test_residual_fs_matches_literal_reference(seed):
    """Skips from the input, from a SiLU layer with negative / general d (MACs) and over two blocks (delay 2K)
    against the literal delay line of the reference; small membranes so that writes saturate; the counters
    rebuilt from the recorded spikes agree."""
    rng = np.random.default_rng(100 + seed)
    phases = 3 + seed % 2
    net = residual_fs_network(rng, phases, membrane_bits=9 + seed % 2, shift_only=bool(seed % 2))
    x = fs_encode(rng.integers(0, 2 ** phases, (6, 9)), phases, steps=5 * phases)
    lanes = int(rng.integers(2, 5))
    trace = assert_matches_reference(net, x, lanes=lanes)
    assert trace.totals()["saturations"] > 0, "the test should exercise saturation"
    skip_spikes = trace.counter("spikes")[:, phases:2 * phases, 0].sum()
    assert skip_spikes > 0, "the SiLU skip source should fire"
    again = counting.counters_from_spikes(net, trace.input_spikes, trace.spikes, trace.counter("saturations"), lanes)
    np.testing.assert_array_equal(again.numpy(), trace.counters)
    # the skips change the result: without them the junctions' membranes differ
    plain = IntegerNetwork((9,), net.layers, weight_bits=8, membrane_bits=net.membrane_bits, input_coding="fs",
                           input_bits=phases, phases=phases).validate()
    alone = IntegerSimulator(plain, device="cpu").run(x, record_membranes=True)
    assert not np.array_equal(alone.membranes[1], trace.membranes[1])


def test_residual_fs_float_equals_integer_without_saturation():
    rng = np.random.default_rng(9)
    net = residual_fs_network(rng, 4, membrane_bits=40, shift_only=False)
    x = fs_encode(rng.integers(0, 16, (5, 9)), 4, steps=20)
    trace = IntegerSimulator(net, device="cpu").run(x, batch_size=2)
    assert trace.totals()["saturations"] == 0 and trace.totals()["macs"] > 0
    run = FloatSimulator(net, device="cpu").run(x)
    np.testing.assert_array_equal(run.membranes[-1], trace.membranes[-1].astype(np.float64))
    # the skip source's spikes are kept per image: one image alone gives the same
    alone = IntegerSimulator(net, device="cpu").run(x[:, 3:4])
    np.testing.assert_array_equal(alone.membranes[-1][0], trace.membranes[-1][3])


# ----------------------------------------------------------------------------------------------- counters, cycles
def test_counters_idle_entries_and_cycle_model():
    rng = np.random.default_rng(11)
    phases, lanes = 3, 4
    net = fs_network([dense(rng, 9, 10, relu_integer_table(phases, 2).neuron_params(), theta=2),
                      dense(rng, 6, 9, relu_integer_table(phases, 3).neuron_params(), theta=3),
                      dense(rng, 5, 6, ACC)], phases, membrane_bits=16)
    x = fs_encode(rng.integers(0, 8, (5, 10)), phases, steps=9)
    trace = IntegerSimulator(net, device="cpu").run(x, lanes=lanes)
    active = cycle_model.fs_active(3, phases)
    assert active.sum() == 3 * phases + 2 * phases  # every layer collects; hidden layers also fire
    assert not trace.counters[:, ~active].any()  # idle entries: every counter 0, cycles included
    assert (trace.counter("neuron_updates")[:, active] > 0).all()
    np.testing.assert_array_equal(trace.image_cycles, trace.counter("cycles").sum(axis=(1, 2)) + cycle_model.C_IMAGE)
    again = counting.counters_from_spikes(net, trace.input_spikes, trace.spikes, trace.counter("saturations"), lanes)
    np.testing.assert_array_equal(again.numpy(), trace.counters)
    assert counting.fs_multiplies(net).sum() == 0 and trace.totals()["macs"] == 0
    per_neuron = counting.fs_spikes_per_neuron(trace)
    assert per_neuron[-1] == 0.0 and per_neuron[0] > 0
    # streaming: one image every 2K steps, latency L·K, the sum of the per-image cycles
    stream = cycle_model.fs_stream_cycles(trace.counter("cycles"), phases)
    assert stream.latency_steps == 9 and stream.period_steps == 6
    assert stream.global_steps == 6 * 4 + 9 < stream.unstreamed_steps == 45
    assert stream.total_cycles == int(trace.image_cycles.sum()) - 4 * cycle_model.C_IMAGE
    assert stream.pipelined_cycles < stream.total_cycles
    occupant = cycle_model.fs_stream_schedule(3, phases, 5)
    for l in range(3):  # each layer works on one image at a time, 2K steps each (K for the output layer)
        worked = occupant[:, l][occupant[:, l] >= 0]
        assert np.array_equal(np.unique(worked), np.arange(5))
        assert (np.bincount(worked) == (2 * phases if l < 2 else phases)).all()
    with pytest.raises(SnnCosimError, match="idle"):
        bad = trace.counter("cycles").copy()
        bad[0, -1, 0] = 1
        cycle_model.fs_stream_cycles(bad, phases)


def test_accuracy_curve_reads_the_acc_membrane():
    rng = np.random.default_rng(5)
    net = fs_network([dense(rng, 6, 5, relu_integer_table(4, 2).neuron_params(), theta=2), dense(rng, 3, 6, ACC)],
                     4, membrane_bits=16)
    x = fs_encode(rng.integers(0, 16, (8, 5)), 4, steps=8)
    sim = IntegerSimulator(net, device="cpu")
    trace = sim.run(x)
    labels = trace.predictions
    curve = accuracy_curve(sim, x, labels, [8])
    assert curve[8] == 1.0


# ----------------------------------------------------------------------------------------------- tables
def test_quick_silu_fit_quality():
    """A short fit (the full one is scripts/fit_fs_tables.py): the paper reports MSE 0.0023 on [−2, 2]."""
    result = fit_table("silu", iterations=500, restarts=1, points=1001)
    assert result.table.phases == 16
    assert result.mse_inside < 0.005 and result.mse_outside < 0.015  # (this run: 0.0025, 0.0074)
    assert min(result.table.weight) < 0 or min(result.table.threshold) < 0  # negative inputs need signed tables


def test_shipped_tables():
    tables = load_tables()
    kinds = {(t.activation, t.phases, t.shift_only) for t in tables}
    assert {("silu", 16, False), ("silu", 16, True), ("sigmoid", 12, False), ("sigmoid", 12, True)} <= kinds
    silu = table_for("silu")
    assert silu.mse(-2, 2, points=20_001) < 0.0025  # paper: 0.0023 inside [−2, 2]
    lo, hi = FIT_SPECS["silu"].interval
    outside = np.concatenate([np.linspace(lo, -2, 6001)[:-1], np.linspace(2, hi, 10001)[1:]])
    out, _ = silu.response(outside)
    assert np.mean((out - outside / (1 + np.exp(-outside))) ** 2) < 0.0065  # paper: 0.0064 outside
    assert table_for("sigmoid").mse(-10, 10, points=20_001) < 5e-4
    assert table_for("silu", shift_only=True).shift_only and not silu.shift_only
    assert any(d < 0 for d in silu.weight)


def test_quantize_table():
    silu = table_for("silu")
    q = quantize_table(silu, 256, 256)
    v = np.arange(-8 * 256, 12 * 256)
    out, _, _, _ = q.response(v)
    exact, _ = silu.response(v / 256.0)
    assert np.mean((out / 256.0 - exact) ** 2) < 1e-3
    shift = quantize_table(table_for("silu", shift_only=True), 256, 256, shift_only=True)
    assert shift.shift_only and all(is_signed_power_of_two(d) for d in shift.weight)
    forced = quantize_table(silu, 16, 16, shift_only=True)
    assert forced.shift_only
    np.testing.assert_array_equal(signed_power_of_two([3.1, -0.3, 1.0]), [4.0, -0.25, 1.0])
    assert not is_signed_power_of_two(0) and is_signed_power_of_two(-8) and not is_signed_power_of_two(6)
    with pytest.raises(SnnCosimError, match="signed power of two"):
        signed_power_of_two([0.0])
    with pytest.raises(SnnCosimError, match="positive"):
        quantize_table(silu, 0, 1)
    np.testing.assert_array_equal(fs_integer_response([5], (4,), (4,), (1,), membrane_bits=4)[3], [0])
    assert fs_integer_response([-8], (-9,), (9,), (1,), membrane_bits=4)[3][0] == 1  # −8 − 9 saturates


def test_table_errors():
    with pytest.raises(UnsupportedLayerError, match="no FS table for activation 'tanh'"):
        table_for("tanh")
    with pytest.raises(UnsupportedLayerError, match="no shipped silu table with K=10"):
        table_for("silu", 10)
    with pytest.raises(WidthError, match="1..16"):
        relu_integer_table(17)
    with pytest.raises(WidthError, match="1..16"):
        fit_table("silu", 20)
    with pytest.raises(SnnCosimError, match="needs no fit"):
        fit_table("relu", 8)
    with pytest.raises(SnnCosimError, match="same length"):
        FsTable("silu", [1.0], [1.0, 2.0], [1.0])
    with pytest.raises(SnnCosimError, match="positive integer"):
        relu_integer_table(4, 0)
    # integer tables that do not fit the membrane
    with pytest.raises(WidthError, match="use membrane_bits=15"):
        fs_network([dense(np.random.default_rng(0), 3, 2, relu_integer_table(8, 64).neuron_params(), theta=64),
                    dense(np.random.default_rng(0), 2, 3, ACC)], 8, membrane_bits=12)


# ----------------------------------------------------------------------------------------------- conversion
@pytest.fixture(scope="module")
def mnist():
    split = default_split()
    return split.train_images[:2000], split.train_labels[:2000], split.test_images[:300], split.test_labels[:300]


@pytest.fixture(scope="module")
def small_mlp(mnist):
    images, labels, _, _ = mnist
    torch.manual_seed(0)
    model = make_mlp((48,), dropout=0.0)
    return train(model, images, labels, epochs=2, batch_size=100, lr=3e-3, seed=0, max_shift=0, progress=False)


@pytest.mark.parametrize("phases", [8, 10])
def test_convert_mlp_agrees_with_the_ann(small_mlp, mnist, phases):
    images, _, test_images, test_labels = mnist
    result = fs_convert(small_mlp, images[:500], phases=phases)
    net = result.integer
    assert net.is_fs and net.input_coding == "fs" and net.phases == phases and net.fs_latency == 2 * phases
    assert [layer.neuron.kind for layer in net.layers] == ["fs", "acc"]
    assert net.layers[0].neuron.fs_weight == input_weights(phases)
    x = result.input_spikes(test_images)
    assert x.shape == (2 * phases, 300, 784)
    trace = IntegerSimulator(net, device="cpu").run(x)
    ann = ann_predict(small_mlp, test_images).numpy()
    assert np.mean(trace.predictions == ann) >= 0.97
    assert trace.totals()["saturations"] == 0  # the default membrane width never saturates
    float_run = FloatSimulator(result.float_network, device="cpu").run(x)
    assert np.mean(float_run.predictions == trace.predictions) >= 0.98
    assert counting.fs_spikes_per_neuron(trace)[0] < phases / 2  # fewer spikes than half the K bits


def test_convert_convnet_runs(mnist):
    images, _, test_images, _ = mnist
    torch.manual_seed(0)
    model = make_convnet((2, 4), kernel=5, dropout=0.0).eval()
    result = fs_convert(model, images[:100], phases=6)
    kinds = [layer.kind for layer in result.integer.layers]
    assert kinds[-1] == "dense" and "conv2d" in kinds and "avgpool2d" in kinds
    trace = IntegerSimulator(result.integer, device="cpu").run(result.input_spikes(test_images[:20]))
    ann = ann_predict(model, test_images[:20].unsqueeze(1)).numpy()
    assert np.mean(trace.predictions == ann) >= 0.8


def test_convert_errors(small_mlp, mnist):
    images = mnist[0][:50]
    with pytest.raises(WidthError, match="1..16"):
        fs_convert(small_mlp, images, phases=17)
    linear_hidden = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.Linear(8, 10))
    with pytest.raises(UnsupportedLayerError, match="ReLU"):
        fs_convert(linear_hidden, images)
    with pytest.raises(UnsupportedLayerError):
        fs_convert(nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.Tanh(), nn.Linear(8, 10)), images)
    with pytest.raises(SnnCosimError, match="calibration images"):
        fs_convert(small_mlp, None)
    with pytest.raises(WidthError, match="use more weight_bits or a larger alpha"):
        fs_convert(small_mlp, images, alpha=1e-4, weight_bits=2)
    ok = fs_convert(small_mlp, None, alpha=4.0, phases=4)
    assert ok.alphas == [4.0]


def test_convert_residual_tracks_the_ann_logits(mnist):
    """A residual ANN with a projection shortcut from the input (source 0), an identity-free strided block and a
    linear head: the FS network's output membrane, divided by the output scale, equals the ANN's logits up to the
    K-bit codes' rounding; the skip weights are the ANN's shortcut per source code unit, times the junction's
    scale; no membrane saturates."""
    from golden.conversion.fs_convert import fs_convert_residual
    from golden.conversion.residual import BasicBlock
    images, labels, test_images, _ = mnist
    torch.manual_seed(0)
    model = nn.Sequential(BasicBlock(1, 4), BasicBlock(4, 8, 2), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 7 * 7, 10))
    train(model, images.unsqueeze(1), labels, epochs=1, batch_size=100, lr=3e-3, seed=0, progress=False)
    result = fs_convert_residual(model, images[:500].unsqueeze(1), phases=8)
    net = result.integer
    assert [(s.source, s.target) for s in net.skips] == [(0, 2), (2, 4)]
    units = [result.input_unit] + [a / 2 ** 8 for a in result.alphas]
    for skip in net.skips:
        ann_weight = model[skip.target // 2 - 1].down.weight.detach().double().numpy()
        np.testing.assert_array_equal(skip.weight, np.rint(ann_weight * units[skip.source]
                                                           * result.scales[skip.target - 1]))
    test = test_images[:100]
    trace = IntegerSimulator(net, device="cpu").run(result.input_spikes(test))
    assert trace.totals()["saturations"] == 0
    with torch.no_grad():
        logits = model.double()(test.unsqueeze(1).double() / 255).numpy()
    out = trace.membranes[-1][:, -1] / result.scales[-1]
    assert np.max(np.abs(out - logits)) < 0.05 * np.max(np.abs(logits))
    assert np.mean(trace.predictions == logits.argmax(1)) >= 0.9
    with pytest.raises(UnsupportedLayerError, match="residual"):
        fs_convert(model, images[:10].unsqueeze(1), phases=8)
