"""Weighted spikes (Kim 2018; docs/spec.md §3a): encoder, ws/acc neurons against a literal per-neuron reference,
Kim's Fig. 3 noise-spike example, skip gating, accuracy curves and the early decision (Algorithm 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from literal_reference import connections, per_neuron_value, pool_word_events

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError
from golden.core.network import Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, signed_range
from golden.core.trace import compare
from golden.simulation.early_decision import early_decision, period_average, spikes_until
from golden.simulation.encoding import phase_of_step, pixel_codes_to_phases, weighted_encode
from golden.simulation.neurons import FloatNeuron, IntegerNeuron
from golden.simulation.simulate import (FloatSimulator, IntegerSimulator, accuracy_and_spikes_curve, accuracy_curve,
                                        predict)

WS = NeuronParams("ws", "subtract")
ACC = NeuronParams("acc")


# ----------------------------------------------------------------------------------------------- reference
def reference(network: IntegerNetwork, inputs, lanes: int):
    """Per image, step, layer and neuron, in plain Python ints, from docs/architecture.md "Weighted spikes"."""
    inputs = np.asarray(inputs).astype(np.int64).tolist()
    steps, n_images = len(inputs), len(inputs[0])
    big_k, skip = network.phases, network.skip_periods * network.phases
    lo, hi = signed_range(network.membrane_bits)
    sat = lambda x: min(max(x, lo), hi)  # noqa: E731
    taps = [[connections(layer, j) for j in range(layer.n_out)] for layer in network.layers]
    n_layers = len(network.layers)
    spikes = [np.zeros((n_images, steps, layer.n_out), dtype=bool) for layer in network.layers]
    membranes = [np.zeros((n_images, steps, layer.n_out), dtype=np.int64) for layer in network.layers]
    counters = np.zeros((n_images, steps, n_layers, 9), dtype=np.int64)
    final = []
    for b in range(n_images):
        v = [[0] * layer.n_out for layer in network.layers]
        for t in range(1, steps + 1):
            k = 1 + (t - 1) % big_k
            sh = big_k - k
            x = inputs[t - 1][b]
            for l, layer in enumerate(network.layers):
                kind = layer.neuron.kind
                out, acs, sats = [], 0, 0
                for j in range(layer.n_out):
                    current = 0
                    for i, wgt in taps[l][j]:
                        if i is not None and x[i]:
                            current += wgt
                            acs += 1
                    bias = per_neuron_value(layer, layer.bias, j)
                    theta = per_neuron_value(layer, layer.threshold, j)
                    fire = False
                    if kind == "acc" and t <= skip:
                        new = v[l][j]  # gated: unchanged, nothing written
                    else:
                        exact = v[l][j] + ((current + bias) << sh)
                        new = sat(exact)
                        saturated = new != exact
                        if kind == "ws":
                            theta_k = theta << sh
                            fire = new >= theta_k
                            if fire:
                                after = new - theta_k
                                new = sat(after)
                                saturated = saturated or new != after
                        sats += saturated
                    v[l][j] = new
                    out.append(1 if fire else 0)
                    spikes[l][b, t - 1, j] = fire
                    membranes[l][b, t - 1, j] = new
                s_in, n_prev = sum(x), len(x)
                words, groups = -(-n_prev // lanes), -(-layer.n_out // lanes)
                state, events, per_event = groups, s_in, groups
                if layer.kind != "dense":  # conv schedule: (spike, reached position) events, spatial source
                    c_in, h, w = layer.in_shape
                    c_out, ho, wo = layer.out_shape
                    words, groups = h * w * -(-c_in // lanes), -(-c_out // lanes)
                    state, events = ho * wo * groups, acs // c_out
                    per_event = 1 if layer.kind == "avgpool2d" else groups
                    if layer.kind == "avgpool2d":  # (non-empty source word, reached position) pairs
                        events = pool_word_events(layer, x, lanes)
                elif l and network.layers[l - 1].kind != "dense":
                    c, ho, wo = network.layers[l - 1].out_shape
                    words = ho * wo * -(-c // lanes)
                counters[b, t - 1, l] = [words + events * per_event + state + cycle_model.C_LAYER,
                                         acs, 0, sum(out), layer.n_out, events * per_event, state, state, sats]
                x = out
        final.append(list(v[-1]))
    image_cycles = counters[..., 0].sum(axis=(1, 2)) + cycle_model.C_IMAGE
    scores = np.array(final) if network.layers[-1].neuron.kind == "acc" else spikes[-1].sum(axis=1)
    predictions = np.array([max(range(scores.shape[1]), key=lambda c: (scores[b][c], -c)) for b in range(n_images)])
    return spikes, membranes, counters, image_cycles, predictions


def assert_matches_reference(network, inputs, lanes, trace):
    spikes, membranes, counters, image_cycles, predictions = reference(network, inputs, lanes)
    for l in range(len(network.layers)):
        np.testing.assert_array_equal(trace.spikes[l], spikes[l], err_msg=f"spikes of layer {l + 1}")
        np.testing.assert_array_equal(trace.membranes[l], membranes[l], err_msg=f"membranes of layer {l + 1}")
    for k, name in enumerate(COUNTER_NAMES):
        np.testing.assert_array_equal(trace.counters[..., k], counters[..., k], err_msg=f"counter {name}")
    np.testing.assert_array_equal(trace.image_cycles, image_cycles)
    np.testing.assert_array_equal(trace.predictions, predictions)
    return counters


# ----------------------------------------------------------------------------------------------- networks
def ws_network(rng, sizes, *, phases=3, skip=1, membrane_bits=12, output=ACC, wlo=-8, whi=7, blo=-4, bhi=4):
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = index == len(sizes) - 2
        layers.append(DenseLayer(
            weight=rng.integers(wlo, whi + 1, (n_out, n_in)).astype(np.int64),
            bias=rng.integers(blo, bhi + 1, n_out).astype(np.int64),
            threshold=rng.integers(1, 12, n_out).astype(np.int64),
            neuron=output if last else WS))
    return IntegerNetwork((sizes[0],), layers, weight_bits=5, membrane_bits=membrane_bits, input_coding="weighted",
                          input_bits=phases, phases=phases, skip_periods=skip).validate()


def codes_for(rng, batch, n, phases):
    return rng.integers(0, 2 ** phases, (batch, n))


# ----------------------------------------------------------------------------------------------- encoding
def test_weighted_encode_msb_first_and_periodic():
    spikes = weighted_encode([[0b1011, 0b0110, 0, 15]], 9, 4)
    assert spikes.shape == (9, 1, 4) and spikes.dtype == torch.bool
    assert spikes[:, 0, 0].tolist() == [True, False, True, True] * 2 + [True]
    assert spikes[:, 0, 1].tolist() == [False, True, True, False] * 2 + [False]
    assert not spikes[:, 0, 2].any() and spikes[:, 0, 3].all()
    assert [phase_of_step(t, 4) for t in range(1, 10)] == [1, 2, 3, 4, 1, 2, 3, 4, 1]


@pytest.mark.parametrize("phases", [1, 4, 8])
def test_encoding_identity_kim_eq11(phases):
    """Σ over any period of ω(t)·s(t) = code / 2^K, i.e. Σ s(t) << (K − k) = code exactly."""
    rng = np.random.default_rng(phases)
    codes = rng.integers(0, 2 ** phases, (5, 2, 3))
    periods = 3
    spikes = weighted_encode(codes, periods * phases, phases).numpy().astype(np.int64)
    weights = np.array([1 << (phases - 1 - (t % phases)) for t in range(periods * phases)])  # 2^K · ω(t)
    for n in range(periods):
        window = slice(n * phases, (n + 1) * phases)
        total = np.einsum("tbi,t->bi", spikes[window], weights[window])
        np.testing.assert_array_equal(total, codes.reshape(5, -1))
        omega_sum = np.einsum("tbi,t->bi", spikes[window], weights[window] / 2.0 ** phases)
        np.testing.assert_array_equal(omega_sum, codes.reshape(5, -1) / 2.0 ** phases)


def test_weighted_encode_errors_and_pixels():
    with pytest.raises(SnnCosimError, match=r"\[0, 15\]"):
        weighted_encode([[16]], 4, 4)
    with pytest.raises(SnnCosimError, match="span"):
        weighted_encode(np.array([[-1]]), 4, 4)
    with pytest.raises(SnnCosimError, match="integers"):
        weighted_encode(torch.zeros((1, 3)), 4, 4)
    with pytest.raises(SnnCosimError, match="phases"):
        weighted_encode([[1]], 4, 0)
    with pytest.raises(SnnCosimError, match="steps"):
        weighted_encode([[1]], 0, 4)
    pixels = np.array([[0, 15, 16, 127, 128, 255]], dtype=np.uint8)
    upper = pixel_codes_to_phases(pixels, 4)
    assert isinstance(upper, np.ndarray) and upper.tolist() == [[0, 0, 1, 7, 8, 15]]
    assert pixel_codes_to_phases(torch.as_tensor(pixels), 8).tolist() == pixels.tolist()
    with pytest.raises(SnnCosimError, match="upper 9 bits"):
        pixel_codes_to_phases(pixels, 9)
    with pytest.raises(SnnCosimError, match="pixel codes span"):
        pixel_codes_to_phases(np.array([[256]]), 4)


# ----------------------------------------------------------------------------------------------- reference
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ws_network_matches_reference(seed):
    rng = np.random.default_rng(seed)
    phases = [3, 4, 1][seed]
    network = ws_network(rng, [9, 7, 5, 4], phases=phases, skip=seed % 3)
    inputs = weighted_encode(codes_for(rng, 3, 9, phases), 11, phases)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=3)
    assert trace.membranes is not None  # acc output: membranes are recorded by default
    counters = assert_matches_reference(network, inputs, 3, trace)
    assert counters[..., 1, COUNTER_NAMES.index("spikes")].sum() > 0  # the second ws layer was exercised
    assert not trace.spikes[-1].any()


def test_ws_spiking_output_and_conv_match_reference():
    rng = np.random.default_rng(5)
    conv = Conv2dLayer(weight=rng.integers(-6, 7, (3, 2, 3, 3)).astype(np.int64),
                       bias=rng.integers(-3, 4, 3).astype(np.int64),
                       threshold=rng.integers(1, 8, 3).astype(np.int64),
                       in_shape=(2, 5, 4), stride=(2, 1), padding=(1, 1), neuron=WS)
    dense = DenseLayer(weight=rng.integers(-6, 7, (4, conv.n_out)).astype(np.int64),
                       bias=rng.integers(-3, 4, 4).astype(np.int64),
                       threshold=rng.integers(1, 8, 4).astype(np.int64), neuron=WS)
    network = IntegerNetwork((2, 5, 4), [conv, dense], weight_bits=4, membrane_bits=14, input_coding="weighted",
                             input_bits=4, phases=4).validate()
    inputs = weighted_encode(codes_for(rng, 2, 40, 4), 9, 4)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4, record_membranes=True)
    assert_matches_reference(network, inputs, 4, trace)
    assert trace.spikes[-1].any()  # spiking ws output: predictions from spike counts


def test_saturation_in_ws_and_acc_is_counted():
    rng = np.random.default_rng(8)
    # K = 3, 9-bit membrane (−256..255): the acc layer saturates high, a negatively driven ws layer low.
    network = ws_network(rng, [8, 6, 3], phases=3, skip=0, membrane_bits=9, wlo=-1, whi=3)
    network.layers[0].threshold[:] = 2
    network.layers[1].weight[:] = rng.integers(3, 8, network.layers[1].weight.shape)
    network.layers[1].bias[:] = 4
    inputs = weighted_encode(np.array([[7] * 8, [5, 6, 7, 1, 2, 3, 4, 0]]), 12, 3)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4)
    counters = assert_matches_reference(network, inputs, 4, trace)
    sats = counters[..., COUNTER_NAMES.index("saturations")]
    assert sats[..., 1].sum() > 0 and trace.membranes[1].max() == 255
    low = ws_network(rng, [8, 5, 2], phases=3, skip=0, membrane_bits=9, wlo=-7, whi=-1)
    trace = IntegerSimulator(low, device="cpu").run(inputs, lanes=4)
    counters = assert_matches_reference(low, inputs, 4, trace)
    assert counters[..., 0, COUNTER_NAMES.index("saturations")].sum() > 0 and trace.membranes[0].min() == -256


# ----------------------------------------------------------------------------------------------- Kim Fig. 3
def fig3_network(periods_skip=0):
    layer = DenseLayer(np.array([[1, -1]]), np.array([0]), np.array([1]), WS)
    return IntegerNetwork((2,), [layer], membrane_bits=16, input_coding="weighted", input_bits=8, phases=8,
                          skip_periods=periods_skip).validate()


def test_kim_fig3_noise_spike():
    """N1 sends 10000000 (128/256) through +1, N2 sends 01111111 (127/256) through −1, θ = 1: after one period
    the output is 10000000 and the membrane is −127/256 (−127 in units of 2^-8)."""
    network = fig3_network()
    inputs = weighted_encode([[128, 127]], 8, 8)
    trace = IntegerSimulator(network, device="cpu").run(inputs, record_membranes=True)
    assert trace.spikes[0][0, :, 0].astype(int).tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert trace.membranes[0][0, -1, 0] == -127
    assert trace.membranes[0][0, 0, 0] == 0  # 128 − θ<<7 = 0 after the phase-1 spike
    float_neuron = FloatNeuron(WS, [1.0], [0.0], phases=8)
    float_neuron.reset_state(1, 1, "cpu")
    out = [bool(float_neuron(torch.tensor([[float(a) - float(b)]], dtype=torch.float64), t))
           for t, (a, b) in enumerate(inputs[:, 0].tolist(), start=1)]
    assert out == [True] + [False] * 7 and float_neuron.v.item() == -127 / 256


def test_kim_eq12_residual_identity():
    """Σ_t (I+b) << sh − θ·Σ_t s << sh = v(T) for every ws neuron without saturation (Eq. 12 in units of 2^-K)."""
    rng = np.random.default_rng(4)
    phases = 4
    network = ws_network(rng, [6, 5, 3], phases=phases, membrane_bits=20)
    inputs = weighted_encode(codes_for(rng, 2, 6, phases), 3 * phases, phases)
    trace = IntegerSimulator(network, device="cpu").run(inputs, record_membranes=True)
    assert trace.totals()["saturations"] == 0
    layer = network.layers[0]
    shifts = np.array([1 << (phases - 1 - t % phases) for t in range(3 * phases)])
    currents = inputs.numpy().astype(np.int64) @ layer.weight.T + layer.bias  # [T, B, n]
    lhs = np.einsum("tbn,t->bn", currents, shifts) - layer.threshold * np.einsum(
        "btn,t->bn", trace.spikes[0].astype(np.int64), shifts)
    np.testing.assert_array_equal(lhs, trace.membranes[0][:, -1])


# ----------------------------------------------------------------------------------------------- skip gating
def test_acc_is_gated_for_the_skipped_periods():
    rng = np.random.default_rng(6)
    network = ws_network(rng, [5, 4, 3], phases=2, skip=2)
    network.layers[1].bias[:] = 3  # the acc layer moves at every integrated step
    inputs = weighted_encode(codes_for(rng, 2, 5, 2), 9, 2)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=2)
    acc = trace.membranes[1]
    assert (acc[:, :4] == 0).all() and (acc[:, 4:] != 0).any()
    counters = assert_matches_reference(network, inputs, 2, trace)
    np.testing.assert_array_equal(counters[:, :4, 1, COUNTER_NAMES.index("neuron_updates")], 3)
    s_in = trace.spikes[0][:, :4].sum(-1)
    np.testing.assert_array_equal(counters[:, :4, 1, COUNTER_NAMES.index("acs")], s_in * 3)  # crossbar still adds
    no_skip = ws_network(np.random.default_rng(6), [5, 4, 3], phases=2, skip=0)
    no_skip.layers[1].bias[:] = 3
    assert (IntegerSimulator(no_skip, device="cpu").run(inputs).membranes[1][:, 0] != 0).any()


def test_neuron_errors():
    with pytest.raises(SnnCosimError, match="phases"):
        IntegerNeuron(WS, [1], [0], 16)
    with pytest.raises(SnnCosimError, match="subtraction"):
        IntegerNeuron(NeuronParams("ws", "zero"), [1], [0], 16, phases=4)
    neuron = IntegerNeuron(ACC, [1], [0], 16, phases=4, skip_periods=1)
    neuron.reset_state(1)
    with pytest.raises(SnnCosimError, match="step"):
        neuron(torch.tensor([[1]]))
    neuron(torch.tensor([[5]]), 4)
    assert neuron.v.item() == 0
    neuron(torch.tensor([[5]]), 5)  # phase 1 of period 2: 5 << 3
    assert neuron.v.item() == 40


# ----------------------------------------------------------------------------------------------- float model
def test_float_model_equals_integer_scaled_by_2_pow_k():
    rng = np.random.default_rng(10)
    phases = 4
    network = ws_network(rng, [8, 6, 5, 3], phases=phases, skip=1, membrane_bits=24)
    inputs = weighted_encode(codes_for(rng, 4, 8, phases), 14, phases)
    trace = IntegerSimulator(network, device="cpu").run(inputs)
    assert trace.totals()["saturations"] == 0
    result = FloatSimulator(network, device="cpu").run(inputs, batch_size=3)
    for l in range(3):
        np.testing.assert_array_equal(result.spikes[l].sum(axis=1), trace.spikes[l].sum(axis=1))
    np.testing.assert_array_equal(result.counter("spikes"), trace.counter("spikes"))
    assert result.membranes[-1].dtype == np.float64
    np.testing.assert_array_equal(result.membranes[-1] * 2 ** phases, trace.membranes[-1])
    np.testing.assert_array_equal(result.predictions, trace.predictions)


# ----------------------------------------------------------------------------------------------- simulator
def test_batching_trajectory_and_predictions():
    rng = np.random.default_rng(11)
    network = ws_network(rng, [7, 6, 4], phases=3, skip=1)
    inputs = weighted_encode(codes_for(rng, 5, 7, 3), 10, 3)
    simulator = IntegerSimulator(network, device="cpu")
    together = simulator.run(inputs, lanes=2)
    assert compare(together, simulator.run(inputs, lanes=2, batch_size=2)).equivalent
    for b in range(5):
        assert compare(together.select([b]), simulator.run(inputs[:, b:b + 1], lanes=2)).equivalent
    trajectory = simulator.output_trajectory(inputs, batch_size=3)
    assert trajectory.dtype == np.int64
    np.testing.assert_array_equal(trajectory, together.membranes[-1])
    np.testing.assert_array_equal(together.predictions, predict(together.membranes[-1][:, -1]))
    assert together.meta["phases"] == 3 and together.meta["skip_periods"] == 1
    light = simulator.run(inputs, lanes=2, record_membranes=False)
    assert light.membranes is None
    np.testing.assert_array_equal(light.predictions, together.predictions)


def test_acc_prediction_ties_to_lowest_index():
    layer = DenseLayer(np.ones((3, 2), dtype=np.int64), np.zeros(3, dtype=np.int64), np.ones(3, dtype=np.int64), ACC)
    network = IntegerNetwork((2,), [layer], membrane_bits=16, input_coding="weighted", input_bits=2,
                             phases=2).validate()
    trace = IntegerSimulator(network, device="cpu").run(weighted_encode([[3, 1], [0, 0]], 4, 2))
    assert trace.predictions.tolist() == [0, 0] and trace.membranes[0][0, -1].tolist() == [8, 8, 8]


@pytest.mark.parametrize("output", ["acc", "ws"])
def test_accuracy_curves(output):
    rng = np.random.default_rng(13)
    network = ws_network(rng, [8, 6, 4], phases=3, skip=1, output=ACC if output == "acc" else WS)
    inputs = weighted_encode(codes_for(rng, 7, 8, 3), 12, 3)
    labels = rng.integers(0, 4, 7)
    simulator = IntegerSimulator(network, device="cpu")
    curve = accuracy_curve(simulator, inputs, labels, [12, 4, 7], batch_size=3)
    points = accuracy_and_spikes_curve(simulator, inputs, labels, [4, 7, 12], batch_size=5)
    assert list(curve) == [4, 7, 12] == list(points)
    for steps in curve:
        trace = simulator.run(inputs[:steps], lanes=2)
        assert curve[steps] == points[steps].accuracy == float((trace.predictions == labels).mean())
        spikes = trace.counter("spikes")
        assert points[steps].spikes == pytest.approx(spikes.sum() / 7)
        assert points[steps].layer_spikes == pytest.approx(tuple(spikes.sum(axis=(0, 1)) / 7))
        assert points[steps].input_spikes == pytest.approx(inputs[:steps].sum().item() / 7)
        assert points[steps].acs == pytest.approx(trace.counter("acs").sum() / 7)


def test_accuracy_and_spikes_curve_rate_network():
    rng = np.random.default_rng(14)
    layers = [DenseLayer(rng.integers(-5, 8, (6, 8)), rng.integers(-2, 3, 6), rng.integers(1, 9, 6)),
              DenseLayer(rng.integers(-5, 8, (3, 6)), rng.integers(-2, 3, 3), rng.integers(1, 9, 3))]
    network = IntegerNetwork((8,), layers, membrane_bits=12).validate()
    inputs = torch.from_numpy(rng.random((9, 5, 8)) < 0.5)
    labels = rng.integers(0, 3, 5)
    simulator = IntegerSimulator(network, device="cpu")
    points = accuracy_and_spikes_curve(simulator, inputs, labels, [3, 9])
    for steps, point in points.items():
        trace = simulator.run(inputs[:steps])
        assert point.accuracy == float((trace.predictions == labels).mean())
        assert point.spikes == pytest.approx(trace.counter("spikes").sum() / 5)
    float_points = accuracy_and_spikes_curve(FloatSimulator(network, device="cpu"), inputs, labels, [9])
    assert float_points[9].spikes == pytest.approx(points[9].spikes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu_weighted():
    rng = np.random.default_rng(15)
    network = ws_network(rng, [9, 7, 4], phases=4, skip=1, membrane_bits=10)
    inputs = weighted_encode(codes_for(rng, 6, 9, 4), 13, 4)
    cpu = IntegerSimulator(network, device="cpu").run(inputs)
    gpu = IntegerSimulator(network, device="cuda").run(inputs)
    assert compare(cpu, gpu).equivalent
    codes = codes_for(rng, 2, 9, 4)
    assert torch.equal(weighted_encode(codes, 5, 4, device="cuda").cpu(), weighted_encode(codes, 5, 4))
    f_cpu = FloatSimulator(network, device="cpu").run(inputs)
    f_gpu = FloatSimulator(network, device="cuda").run(inputs)
    np.testing.assert_array_equal(f_cpu.membranes[-1], f_gpu.membranes[-1])


# ----------------------------------------------------------------------------------------------- early decision
def hand_trajectory():
    return np.array([
        [[0, 3, 1], [0, 5, 1], [0, 6, 1], [0, 7, 1]],  # stops at t = 2 (count 1 · EMA 2.5 ≥ 2)
        [[2, 1, 0], [2, 3, 0], [2, 4, 0], [2, 5, 0]],  # D changes at t = 2; stops at t = 4 (2 · 2.1875 ≥ 2)
        [[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 1, 0]],  # tie every step: δ = 0, never stops
    ])


def test_early_decision_raw_on_hand_made_trajectory():
    result = early_decision(hand_trajectory(), 2.0, values="raw")
    assert result.step.tolist() == [2, 4, 4]
    assert result.prediction.tolist() == [1, 1, 0]
    assert result.decided.tolist() == [True, True, False]
    assert result.accuracy([1, 0, 0]) == pytest.approx(2 / 3) and result.mean_step == pytest.approx(10 / 3)
    # image 1 with θ = 4.5: 2 · 2.1875 < 4.5 at t = 4 → undecided, D(T2) = 1
    late = early_decision(hand_trajectory(), 4.5, values="raw")
    assert late.step.tolist() == [3, 4, 4] and late.decided.tolist() == [True, False, False]
    # t1 = 2: D(1) is "none", so the count restarts there
    shifted = early_decision(hand_trajectory(), 2.0, values="raw", t1=2)
    # image 0: t=2 δ=4 EMA=2, count 0; t=3 δ=5 EMA=3.5, count 1 → 3.5 ≥ 2: stop at 3
    assert shifted.step[0] == 3 and shifted.prediction[0] == 1
    assert early_decision(hand_trajectory(), 2.0, values="raw", t2=2).step.tolist() == [2, 2, 2]


def test_period_average_and_average_mode():
    trajectory = np.arange(1, 7, dtype=np.float64).reshape(1, 6, 1) * np.array([1.0, 2.0])  # [1, 6, 2]
    trajectory[:, :2] = 0
    avg = period_average(trajectory, phases=2, skip_periods=1)
    np.testing.assert_allclose(avg[0, :, 0], [0, 0, 3, 4, 5 / 2, 6 / 2])
    result = early_decision(trajectory, 0.5, values="average", phases=2, skip_periods=1)
    # t1 = S·K + 1 = 3: δ = 3 → EMA 1.5 (count 0); t = 4: δ = 4, EMA 2.75, count 1 → stop at 4
    assert result.step.tolist() == [4] and result.prediction.tolist() == [1]
    scaled = early_decision(trajectory, 0.5, values="average", phases=2, skip_periods=1, scale=8.0)
    # δ/8: t=3 EMA 0.1875; t=4 EMA 0.34375 (count 1); t=5 δ .3125 EMA .328 (count 2 → .656 ≥ .5): stop at 5
    assert scaled.step.tolist() == [5]


def test_early_decision_on_simulated_network_and_spikes_until():
    rng = np.random.default_rng(16)
    network = ws_network(rng, [8, 6, 4], phases=3, skip=1)
    inputs = weighted_encode(codes_for(rng, 6, 8, 3), 15, 3)
    simulator = IntegerSimulator(network, device="cpu")
    trace = simulator.run(inputs)
    trajectory = simulator.output_trajectory(inputs)
    result = early_decision(trajectory, 0.5, phases=3, skip_periods=1, scale=2 ** 3)
    assert ((result.step >= 4) & (result.step <= 15)).all()
    decided_at = trajectory[np.arange(6), result.step - 1]
    np.testing.assert_array_equal(result.prediction, predict(decided_at))
    per_step = trace.counter("spikes")
    until = spikes_until(per_step, result.step)
    assert until.shape == (6, 2)
    for b in range(6):
        assert until[b].tolist() == per_step[b, :result.step[b]].sum(axis=0).tolist()
    assert spikes_until(per_step.sum(-1), result.step).tolist() == until.sum(-1).tolist()


def test_early_decision_errors():
    with pytest.raises(SnnCosimError, match="phases"):
        early_decision(hand_trajectory(), 1.0)
    with pytest.raises(SnnCosimError, match="theta"):
        early_decision(hand_trajectory(), 0.0, values="raw")
    with pytest.raises(SnnCosimError, match="t1"):
        early_decision(hand_trajectory(), 1.0, values="raw", t1=5)
    with pytest.raises(SnnCosimError, match=">= 2 neurons"):
        early_decision(np.zeros((2, 3, 1)), 1.0, values="raw")
    with pytest.raises(SnnCosimError, match="shape"):
        early_decision(np.zeros((2, 3)), 1.0, values="raw")
