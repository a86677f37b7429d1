"""The integer golden model against a literal, slow pure-Python reference written from docs/spec.md §3/§5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from literal_reference import connections, per_neuron_value, pool_word_events

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, WidthError
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, signed_range
from golden.core.trace import Trace, compare
from golden.simulation.neurons import FloatNeuron, IntegerNeuron
from golden.simulation.simulate import FloatSimulator, IntegerSimulator, accuracy_curve, predict


# ----------------------------------------------------------------------------------------------- reference
def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def reference(network: IntegerNetwork, inputs, lanes: int):
    """Per image, per step, per layer, per neuron loops. ``inputs`` [T, B, n_0] (0/1 or codes). Includes the
    floor at −θ and the lateral-inhibition pass of docs/spec.md §3c (dense layers)."""
    inputs = np.asarray(inputs).astype(np.int64).tolist()
    steps, n_images = len(inputs), len(inputs[0])
    lo, hi = signed_range(network.membrane_bits)
    sat = lambda x: min(max(x, lo), hi)  # noqa: E731
    conns = [[connections(layer, j) for j in range(layer.n_out)] for layer in network.layers]
    n_layers = len(network.layers)
    spikes = [np.zeros((n_images, steps, layer.n_out), dtype=bool) for layer in network.layers]
    membranes = [np.zeros((n_images, steps, layer.n_out), dtype=np.int64) for layer in network.layers]
    counters = np.zeros((n_images, steps, n_layers, 9), dtype=np.int64)
    for b in range(n_images):
        v = [[0] * layer.n_out for layer in network.layers]
        for t in range(steps):
            x = inputs[t][b]
            for l, layer in enumerate(network.layers):
                direct = l == 0 and network.input_coding == "direct"
                p = layer.neuron
                out, saturated = [], []
                acs = macs = reach = 0

                def floor(value, theta, p=p):
                    if p.floor is not None:
                        return max(value, p.floor)
                    return max(value, -theta) if p.floor_threshold else value

                positions = layer.n_out // layer.out_shape[0] if layer.kind != "dense" else 0
                for j in range(layer.n_out):
                    current = 0
                    for i, wgt in conns[l][j]:
                        if direct:
                            macs += 1  # every tap is a multiply, padded ones included (as the ANN counts)
                        if i is None:
                            continue
                        current += wgt * x[i]
                        if not direct and x[i]:
                            acs += 1
                            if j < positions:  # output channel 0: one (spike, reached position) pair
                                reach += 1
                    bias = 0 if layer.kind == "avgpool2d" else per_neuron_value(layer, layer.bias, j)
                    theta = per_neuron_value(layer, layer.threshold, j)
                    prev = v[l][j]
                    exact = prev + current + bias
                    if p.kind == "lif":
                        exact -= prev >> p.leak_shift  # Python >> is an arithmetic shift
                    new = sat(exact)
                    new_sat = new != exact
                    new = floor(new, theta)
                    fire = new >= theta
                    if fire:
                        new = 0 if p.reset == "zero" else sat(new - theta)
                    v[l][j] = new
                    out.append(1 if fire else 0)
                    saturated.append(new_sat)
                inhibition = layer.inhibition if layer.kind == "dense" else None
                if inhibition is not None:  # WTA: every other spike of the layer pulls v down by u_j, then the floor
                    n = sum(out)
                    for j in range(layer.n_out):
                        m = n - out[j]
                        if m > 0:
                            macs += 1
                            exact = v[l][j] - int(inhibition[j]) * m
                            new = sat(exact)
                            saturated[j] = saturated[j] or new != exact
                            v[l][j] = floor(new, per_neuron_value(layer, layer.threshold, j))
                for j in range(layer.n_out):
                    spikes[l][b, t, j] = out[j]
                    membranes[l][b, t, j] = v[l][j]
                sats = sum(saturated)
                n_prev = len(x)
                s_in = n_prev if direct else sum(x)
                # source words: hardware order (position-major, channel groups) for a spatial source
                words = _ceil(n_prev, lanes)
                src = layer if layer.kind != "dense" else (network.layers[l - 1] if l else None)
                if layer.kind != "dense":
                    words = layer.in_shape[1] * layer.in_shape[2] * _ceil(layer.in_shape[0], lanes)
                elif src is not None and src.kind != "dense":
                    words = src.out_shape[1] * src.out_shape[2] * _ceil(src.out_shape[0], lanes)
                if layer.kind == "dense":
                    groups = state = per_event = _ceil(layer.n_out, lanes)
                    events = s_in
                else:
                    groups = _ceil(layer.out_shape[0], lanes)
                    state = positions * groups
                    per_event = 1 if layer.kind == "avgpool2d" else groups
                    # pool: (non-empty source word, reached position) pairs, all P lanes at once
                    events = (pool_word_events(layer, x, lanes) if layer.kind == "avgpool2d" else reach
                              ) if not direct else None
                    if direct:  # every input visited: all (input, reached position) pairs
                        events = sum(1 for j in range(positions) for i, _ in conns[l][j] if i is not None)
                        if layer.kind == "avgpool2d":  # every source word visited
                            events = pool_word_events(layer, [1] * len(x), lanes)
                inhibit = groups + cycle_model.C_INHIBIT if inhibition is not None else 0
                inhibit_state = groups if inhibition is not None else 0
                counters[b, t, l] = [
                    words + events * per_event + state + cycle_model.C_LAYER + inhibit,
                    acs, macs, sum(out), layer.n_out, events * per_event, state + inhibit_state,
                    state + inhibit_state, sats]
                x = out
    image_cycles = counters[..., 0].sum(axis=(1, 2)) + cycle_model.C_IMAGE
    totals = spikes[-1].sum(axis=1)
    predictions = np.array([max(range(totals.shape[1]), key=lambda k: (totals[b, k], -k)) for b in range(n_images)])
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
NEURONS = {
    "if-zero": NeuronParams("if", "zero"),
    "if-subtract": NeuronParams("if", "subtract"),
    "lif-zero": NeuronParams("lif", "zero", leak_shift=2),
    "lif-subtract-floor": NeuronParams("lif", "subtract", leak_shift=3, floor=-20),
    "if-subtract-floor": NeuronParams("if", "subtract", floor=-5),
}


def dense_network(rng, sizes, neuron, membrane_bits=7, weight_bits=5, wmin=None):
    w_lo, w_hi = signed_range(weight_bits)
    v_lo, v_hi = signed_range(membrane_bits)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers.append(DenseLayer(
            weight=rng.integers(w_lo if wmin is None else wmin, w_hi + 1, (n_out, n_in)).astype(np.int64),
            bias=rng.integers(-8, 9, n_out).astype(np.int64),
            threshold=rng.integers(1, min(v_hi, 40) + 1, n_out).astype(np.int64),
            neuron=neuron))
    return IntegerNetwork((sizes[0],), layers, weight_bits=weight_bits, membrane_bits=membrane_bits).validate()


def rate_inputs(rng, steps, batch, n, p=0.5):
    return torch.from_numpy(rng.random((steps, batch, n)) < p)


@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_matches_reference(name, seed):
    rng = np.random.default_rng(100 * seed + len(name))
    network = dense_network(rng, [13, 9, 7, 5], NEURONS[name])
    inputs = rate_inputs(rng, 6, 3, 13)
    lanes = 4
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=lanes, record_membranes=True)
    assert_matches_reference(network, inputs, lanes, trace)


def test_saturation_is_exercised_and_counted():
    rng = np.random.default_rng(7)
    # mostly positive weights, 6-bit membrane (−32..31): the integrate step saturates high; negative → low
    network = dense_network(rng, [16, 6, 4], NeuronParams("if", "subtract"), membrane_bits=6, wmin=-4)
    network.layers[0].threshold[:] = 31
    inputs = rate_inputs(rng, 5, 2, 16, p=0.9)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=3, record_membranes=True)
    counters = assert_matches_reference(network, inputs, 3, trace)
    assert counters[..., COUNTER_NAMES.index("saturations")].sum() > 0
    assert trace.membranes[0].max() <= 31 and trace.membranes[0].min() >= -32

    low = dense_network(rng, [16, 5], NeuronParams("lif", "zero", leak_shift=5), membrane_bits=6, wmin=-16)
    low.layers[0].weight[:] = -16
    trace = IntegerSimulator(low, device="cpu").run(inputs, lanes=2, record_membranes=True)
    counters = assert_matches_reference(low, inputs, 2, trace)
    assert counters[..., COUNTER_NAMES.index("saturations")].sum() > 0
    assert trace.membranes[0].min() == -32


def conv_network(rng, neuron, membrane_bits=8):
    conv1 = Conv2dLayer(weight=rng.integers(-8, 8, (3, 2, 3, 3)).astype(np.int64),
                        bias=rng.integers(-3, 4, 3).astype(np.int64),
                        threshold=rng.integers(1, 20, 3).astype(np.int64),
                        in_shape=(2, 6, 5), stride=(2, 1), padding=(1, 1), neuron=neuron)
    pool = AvgPool2dLayer(weight=3, threshold=rng.integers(1, 8, 3).astype(np.int64), in_shape=conv1.out_shape,
                          kernel=(2, 2), stride=(1, 2), neuron=neuron)
    conv2 = Conv2dLayer(weight=rng.integers(-8, 8, (2, 3, 2, 1)).astype(np.int64),
                        bias=rng.integers(-3, 4, 2).astype(np.int64),
                        threshold=rng.integers(1, 12, 2).astype(np.int64),
                        in_shape=pool.out_shape, stride=(1, 1), padding=(0, 0), neuron=neuron)
    dense = DenseLayer(weight=rng.integers(-8, 8, (4, conv2.n_out)).astype(np.int64),
                       bias=rng.integers(-3, 4, 4).astype(np.int64),
                       threshold=rng.integers(1, 12, 4).astype(np.int64), neuron=neuron)
    return IntegerNetwork((2, 6, 5), [conv1, pool, conv2, dense], weight_bits=4,
                          membrane_bits=membrane_bits).validate()


@pytest.mark.parametrize("name", ["if-zero", "lif-subtract-floor"])
def test_conv_and_pool_match_reference(name):
    rng = np.random.default_rng(3)
    network = conv_network(rng, NEURONS[name])
    inputs = rate_inputs(rng, 5, 2, network.n_inputs, p=0.6)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4, record_membranes=True)
    counters = assert_matches_reference(network, inputs, 4, trace)
    assert counters[..., COUNTER_NAMES.index("spikes")][..., 1:].sum() > 0  # deeper layers were exercised


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_direct_input_matches_reference(kind):
    rng = np.random.default_rng(11)
    if kind == "dense":
        network = dense_network(rng, [6, 5, 3], NeuronParams("if", "subtract"), membrane_bits=12)
    else:
        network = conv_network(rng, NeuronParams("if", "zero"), membrane_bits=12)
    network.input_coding, network.input_bits = "direct", 4
    codes = torch.from_numpy(rng.integers(0, 16, (2, network.n_inputs)))
    inputs = codes.unsqueeze(0).expand(4, *codes.shape)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4, record_membranes=True)
    counters = assert_matches_reference(network, inputs, 4, trace)
    assert counters[:, :, 0, COUNTER_NAMES.index("acs")].sum() == 0
    assert (counters[:, :, 0, COUNTER_NAMES.index("macs")] > 0).all()
    assert trace.input_spikes is None


# ----------------------------------------------------------------------------------------------- properties
def test_layer_uses_spikes_of_the_same_step():
    one = lambda w, th: DenseLayer(np.array([[w]]), np.array([0]), np.array([th]))  # noqa: E731
    network = IntegerNetwork((1,), [one(5, 5), one(7, 7), one(3, 3)], membrane_bits=8).validate()
    inputs = torch.zeros((6, 1, 1), dtype=torch.bool)
    inputs[2, 0, 0] = True  # one input spike at step 3
    trace = IntegerSimulator(network, device="cpu").run(inputs, record_membranes=True)
    for l in range(3):
        assert trace.spikes[l][0, :, 0].tolist() == [False, False, True, False, False, False]
    assert trace.predictions.tolist() == [0]


def test_batch_independence_and_batching():
    rng = np.random.default_rng(5)
    network = dense_network(rng, [10, 8, 4], NeuronParams("lif", "subtract", leak_shift=2, floor=-10))
    inputs = rate_inputs(rng, 7, 5, 10)
    simulator = IntegerSimulator(network, device="cpu")
    together = simulator.run(inputs, lanes=3, record_membranes=True)
    for b in range(5):
        alone = simulator.run(inputs[:, b:b + 1], lanes=3, record_membranes=True)
        assert compare(together.select([b]), alone).equivalent
    batched = simulator.run(inputs, lanes=3, record_membranes=True, batch_size=2)
    assert compare(together, batched).equivalent
    np.testing.assert_array_equal(together.input_spikes, inputs.permute(1, 0, 2).numpy())


def test_predictions_tie_to_lowest_index():
    assert predict(np.array([[3, 5, 5, 1], [0, 0, 0, 0], [1, 2, 0, 2]])).tolist() == [1, 0, 1]
    # three output neurons that all fire every step: tie → neuron 0
    network = IntegerNetwork((2,), [DenseLayer(np.ones((3, 2), dtype=np.int64), np.zeros(3, dtype=np.int64),
                                               np.ones(3, dtype=np.int64))]).validate()
    trace = IntegerSimulator(network, device="cpu").run(torch.ones((4, 2, 2), dtype=torch.bool))
    assert trace.predictions.tolist() == [0, 0]


def test_float32_and_float64_paths_agree():
    rng = np.random.default_rng(9)
    network = conv_network(rng, NEURONS["if-subtract"])
    inputs = rate_inputs(rng, 6, 3, network.n_inputs)
    simulator = IntegerSimulator(network, device="cpu")
    assert simulator.dtype == torch.float32
    a = simulator.run(inputs, record_membranes=True)
    simulator.dtype = torch.float64
    for syn in simulator.synapses:
        syn.to(torch.float64)
    b = simulator.run(inputs, record_membranes=True)
    assert compare(a, b).equivalent


def test_trace_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    network = dense_network(rng, [9, 6, 3], NEURONS["if-zero"])
    trace = IntegerSimulator(network, device="cpu").run(rate_inputs(rng, 4, 2, 9), record_membranes=True)
    loaded = Trace.load(trace.save(tmp_path / "t.npz"))
    assert compare(trace, loaded).equivalent
    assert loaded.meta["lanes"] == 8 and loaded.input_spikes is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(4)
    for network in (dense_network(rng, [13, 9, 5], NEURONS["lif-subtract-floor"]),
                    conv_network(rng, NEURONS["if-zero"])):
        inputs = rate_inputs(rng, 6, 4, network.n_inputs)
        cpu = IntegerSimulator(network, device="cpu").run(inputs, record_membranes=True)
        gpu = IntegerSimulator(network, device="cuda").run(inputs, record_membranes=True)
        assert compare(cpu, gpu).equivalent


# ----------------------------------------------------------------------------------------------- float model
def test_float_simulator_equals_integer_without_saturation():
    rng = np.random.default_rng(6)
    network = dense_network(rng, [12, 8, 4], NEURONS["if-subtract"], membrane_bits=24)
    inputs = rate_inputs(rng, 8, 3, 12)
    trace = IntegerSimulator(network, device="cpu").run(inputs)
    assert trace.totals()["saturations"] == 0
    result = FloatSimulator(network, device="cpu").run(inputs)
    assert result.meta["source"] == "float" and result.membranes is None  # no 'acc' output: none recorded
    for l in range(2):
        np.testing.assert_array_equal(result.spikes[l].sum(axis=1), trace.spikes[l].sum(axis=1))
    np.testing.assert_array_equal(result.spikes[-1], trace.spikes[-1])
    np.testing.assert_array_equal(result.predictions, trace.predictions)
    np.testing.assert_array_equal(result.counter("acs"), trace.counter("acs"))
    np.testing.assert_array_equal(result.counters, trace.counters)  # every counter: the integer definitions
    np.testing.assert_array_equal(result.image_cycles, trace.image_cycles)


def test_float_network_with_float_arrays():
    rng = np.random.default_rng(8)
    network = dense_network(rng, [10, 6, 3], NEURONS["if-zero"], membrane_bits=24)
    float_layers = [DenseLayer(layer.weight / layer.threshold[:, None], layer.bias / layer.threshold,
                               np.ones(layer.n_out), layer.neuron) for layer in network.layers]
    float_net = IntegerNetwork(network.input_shape, float_layers)
    inputs = rate_inputs(rng, 5, 2, 10)
    result = FloatSimulator(float_net, device="cpu").run(inputs, batch_size=1)
    assert result.spikes[-1].shape == (2, 5, 3)
    assert result.counter("spikes").shape == (2, 5, 2)


def test_float_lif_neuron_equations():
    neuron = FloatNeuron(NeuronParams("lif", "subtract", leak_shift=1, floor=-2), [1.0], [0.0])
    neuron.reset_state(1, 1, "cpu")
    assert neuron(torch.tensor([[0.6]], dtype=torch.float64)).item() is False
    assert neuron(torch.tensor([[0.8]], dtype=torch.float64)).item() is True  # 0.6 − 0.3 + 0.8 = 1.1
    assert neuron.v.item() == pytest.approx(0.1)
    neuron(torch.tensor([[-9.0]], dtype=torch.float64))
    assert neuron.v.item() == -2.0


def test_integer_neuron_arithmetic_shift_of_negative_membrane():
    neuron = IntegerNeuron(NeuronParams("lif", "zero", leak_shift=2), [100], [0], membrane_bits=16)
    neuron.reset_state(1, 1, "cpu")
    neuron(torch.tensor([[-7]]))
    neuron(torch.tensor([[0]]))
    assert neuron.v.item() == -7 - (-7 >> 2) == -5  # −7 >>> 2 = −2 (floor), not −1


def test_accuracy_curve_from_one_run():
    rng = np.random.default_rng(12)
    network = dense_network(rng, [10, 8, 4], NEURONS["if-subtract"], membrane_bits=16)
    inputs = rate_inputs(rng, 9, 6, 10)
    labels = rng.integers(0, 4, 6)
    simulator = IntegerSimulator(network, device="cpu")
    curve = accuracy_curve(simulator, inputs, labels, [3, 9, 5], batch_size=4)
    assert list(curve) == [3, 5, 9]
    for steps, accuracy in curve.items():
        assert accuracy == float((simulator.run(inputs[:steps]).predictions == labels).mean())
    with pytest.raises(SnnCosimError):
        accuracy_curve(simulator, inputs, labels, [10])


# ----------------------------------------------------------------------------------------------- errors
def test_input_errors():
    rng = np.random.default_rng(1)
    simulator = IntegerSimulator(dense_network(rng, [5, 3], NEURONS["if-zero"]), device="cpu")
    with pytest.raises(SnnCosimError, match="shape"):
        simulator.run(torch.zeros((4, 2, 6), dtype=torch.bool))
    with pytest.raises(SnnCosimError):
        simulator.run(torch.zeros((4, 2, 5)))
    with pytest.raises(SnnCosimError):
        simulator.run(torch.full((4, 2, 5), 3))
    with pytest.raises(SnnCosimError, match="lanes"):
        simulator.run(torch.zeros((4, 2, 5), dtype=torch.bool), lanes=0)
    with pytest.raises(SnnCosimError, match="batch_size"):
        simulator.run(torch.zeros((4, 2, 5), dtype=torch.bool), batch_size=0)


def test_exactness_bound_is_enforced():
    n_in = 80
    layer = DenseLayer(np.full((1, n_in), 2 ** 31 - 1, dtype=np.int64), np.zeros(1, dtype=np.int64),
                       np.ones(1, dtype=np.int64))
    network = IntegerNetwork((n_in,), [layer], weight_bits=32, membrane_bits=62, input_coding="direct",
                             input_bits=16)
    with pytest.raises(WidthError, match="2\\^53"):
        IntegerSimulator(network, device="cpu")
