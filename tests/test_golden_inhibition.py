"""Lee 2016 extensions of the IF/LIF path (docs/spec.md §3c): the per-neuron floor at −θ_j (``floor_threshold``)
and WTA lateral inhibition within a layer (``DenseLayer.inhibition``), against hand-computed values and a
literal, slow pure-Python reference; counters and cycles of the INHIBIT pass; file format version 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from test_golden_sim import assert_matches_reference as assert_matches_sim_reference

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import NetworkFileError, WidthError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams, signed_range
from golden.simulation.simulate import FloatSimulator, IntegerSimulator

K = {name: k for k, name in enumerate(COUNTER_NAMES)}


def assert_matches_reference(network, inputs, lanes):
    """The simulator against the per-neuron loops of tests/test_golden_sim.py (§3 + §3c)."""
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=lanes, record_membranes=True)
    assert_matches_sim_reference(network, inputs, lanes, trace)
    return trace


def lee_network(rng, sizes, neuron, *, membrane_bits=7, weight_bits=5, inhibit=None, u_max=None):
    """Random dense network; ``inhibit`` = the 0-based layers with WTA strengths (default: all)."""
    w_lo, w_hi = signed_range(weight_bits)
    v_hi = signed_range(membrane_bits)[1]
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        threshold = rng.integers(1, min(v_hi, 40) + 1, n_out).astype(np.int64)
        u = None
        if inhibit is None or index in inhibit:
            u = rng.integers(0, (u_max or v_hi) + 1, n_out).astype(np.int64)
        layers.append(DenseLayer(rng.integers(w_lo, w_hi + 1, (n_out, n_in)).astype(np.int64),
                                 rng.integers(-8, 9, n_out).astype(np.int64), threshold, neuron, inhibition=u))
    return IntegerNetwork((sizes[0],), layers, weight_bits=weight_bits, membrane_bits=membrane_bits).validate()


def rate_inputs(rng, steps, batch, n, p=0.5):
    return torch.from_numpy(rng.random((steps, batch, n)) < p)


# ----------------------------------------------------------------------------------------------- hand-computed
def test_hand_computed_inhibition_and_threshold_floor():
    # IF, reset by subtraction, floor at −θ_j; θ = (4, 6, 10), u = (2, 3, 5); W = diag(5, 7, 1), no bias
    layer = DenseLayer(np.diag([5, 7, 1]).astype(np.int64), np.zeros(3, np.int64), np.array([4, 6, 10]),
                       NeuronParams("if", "subtract", floor_threshold=True), inhibition=np.array([2, 3, 5]))
    network = IntegerNetwork((3,), [layer], membrane_bits=8).validate()
    inputs = torch.tensor([[[1, 1, 1]], [[1, 1, 1]], [[0, 0, 0]]], dtype=torch.bool)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=2, record_membranes=True)
    # t=1: v = (5, 7, 1) → spikes (1, 1, 0), reset → (1, 1, 1); n = 2, m = (1, 1, 2) → (−1, −2, −9)
    # t=2: v = (4, 5, −8) → spikes (1, 0, 0), reset → (0, 5, −8); n = 1, m = (0, 1, 1) → (0, 2, −13 → floor −10)
    # t=3: no input, no spikes, no inhibition
    np.testing.assert_array_equal(trace.spikes[0][0], [[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(trace.membranes[0][0], [[-1, -2, -9], [0, 2, -10], [0, 2, -10]])
    # P = 2: W = G = 2; cycles = W + S_in·G + G + C_LAYER + G + C_INHIBIT
    c = trace.counters[0, :, 0]
    fixed = 2 + 2 + cycle_model.C_LAYER + 2 + cycle_model.C_INHIBIT
    np.testing.assert_array_equal(c[:, K["cycles"]], [fixed + 6, fixed + 6, fixed])
    np.testing.assert_array_equal(c[:, K["macs"]], [3, 2, 0])  # n ≥ 2: every neuron; n = 1: all but the spiker
    np.testing.assert_array_equal(c[:, K["state_reads"]], [4, 4, 4])
    np.testing.assert_array_equal(c[:, K["state_writes"]], [4, 4, 4])
    np.testing.assert_array_equal(c[:, K["saturations"]], [0, 0, 0])


def test_floor_threshold_without_inhibition():
    layer = DenseLayer(np.array([[-9], [-9]]), np.zeros(2, np.int64), np.array([3, 20]),
                       NeuronParams("lif", "zero", leak_shift=1, floor_threshold=True))
    network = IntegerNetwork((1,), [layer], membrane_bits=8).validate()
    inputs = torch.ones((2, 1, 1), dtype=torch.bool)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4, record_membranes=True)
    # t=1: −9 → max(−9, −θ) = (−3, −9); t=2: (−3 − (−2) − 9, −9 − (−5) − 9) = (−10, −13) → (−3, −13)
    np.testing.assert_array_equal(trace.membranes[0][0], [[-3, -9], [-3, -13]])
    assert trace.totals()["macs"] == 0
    assert trace.counter("cycles")[0, 0, 0] == 1 + 1 + 1 + cycle_model.C_LAYER  # no INHIBIT pass


def test_inhibition_saturation_counts_once_per_neuron():
    # 6-bit membrane [−32, 31]; neuron 0 spikes every step and pushes neuron 1 down by 31 per step
    layer = DenseLayer(np.array([[1], [-40]]), np.zeros(2, np.int64), np.array([1, 20]),
                       NeuronParams("if", "zero"), inhibition=np.array([0, 31]))
    network = IntegerNetwork((1,), [layer], weight_bits=8, membrane_bits=6).validate()
    inputs = torch.tensor([[[1]], [[0]], [[1]]], dtype=torch.bool)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=2, record_membranes=True)
    # t=1: v1 = −40 → sat −32 (saturation), then −32 − 31 → sat again: still one saturation
    # t=2: no input: neither spikes; t=3: v1 = −32 − 40 → −32 (saturated), neuron 0 spikes → still −32
    np.testing.assert_array_equal(trace.spikes[0][0, :, 0], [1, 0, 1])
    np.testing.assert_array_equal(trace.membranes[0][0, :, 1], [-32, -32, -32])
    np.testing.assert_array_equal(trace.counter("saturations")[0, :, 0], [1, 0, 1])
    # saturation by the inhibition alone
    layer = DenseLayer(np.array([[1], [0]]), np.zeros(2, np.int64), np.array([1, 20]),
                       NeuronParams("if", "zero"), inhibition=np.array([0, 20]))
    network = IntegerNetwork((1,), [layer], weight_bits=8, membrane_bits=6).validate()
    trace = IntegerSimulator(network, device="cpu").run(torch.ones((2, 1, 1), dtype=torch.bool), lanes=2,
                                                        record_membranes=True)
    np.testing.assert_array_equal(trace.membranes[0][0, :, 1], [-20, -32])
    np.testing.assert_array_equal(trace.counter("saturations")[0, :, 0], [0, 1])


def test_large_strengths_do_not_overflow_int64():
    # membrane_bits = 62: u·m would exceed int64 for m = 3; the result is exactly lo
    lo, hi = signed_range(62)
    layer = DenseLayer(np.array([[1], [1], [1], [0]]), np.zeros(4, np.int64), np.ones(4, np.int64),
                       NeuronParams("if", "zero"), inhibition=np.full(4, hi, dtype=np.int64))
    network = IntegerNetwork((1,), [layer], membrane_bits=62).validate()
    trace = IntegerSimulator(network, device="cpu").run(torch.ones((1, 1, 1), dtype=torch.bool),
                                                        record_membranes=True)
    np.testing.assert_array_equal(trace.membranes[0][0, 0], [lo, lo, lo, lo])
    assert trace.counter("saturations")[0, 0, 0] == 4


# ----------------------------------------------------------------------------------------------- random networks
NEURONS = {
    "if-subtract-thetafloor": NeuronParams("if", "subtract", floor_threshold=True),
    "lif-subtract-thetafloor": NeuronParams("lif", "subtract", leak_shift=2, floor_threshold=True),
    "lif-zero-floor": NeuronParams("lif", "zero", leak_shift=3, floor=-20),
    "if-zero": NeuronParams("if", "zero"),
}


@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_networks_match_reference(name, seed):
    rng = np.random.default_rng(1000 * seed + len(name))
    inhibit = [None, {0, 2}, {1}][seed]  # all layers / hidden and output / the middle layer only
    network = lee_network(rng, [13, 9, 7, 5], NEURONS[name], inhibit=inhibit, u_max=[12, 40, 63][seed])
    inputs = rate_inputs(rng, 8, 3, 13, p=0.6)
    assert_matches_reference(network, inputs, lanes=[4, 3, 8][seed])


def test_random_networks_exercise_inhibition_and_saturation():
    """The random family above really inhibits and saturates (else the comparison would prove little)."""
    rng = np.random.default_rng(5)
    network = lee_network(rng, [16, 12, 6], NEURONS["lif-subtract-thetafloor"], membrane_bits=6)
    inputs = rate_inputs(rng, 10, 4, 16, p=0.7)
    trace = assert_matches_reference(network, inputs, lanes=4)
    assert trace.counter("macs").sum(axis=(0, 1)).min() > 0
    plain = IntegerSimulator(network.__class__(network.input_shape, [
        DenseLayer(layer.weight, layer.bias, layer.threshold, layer.neuron) for layer in network.layers],
        weight_bits=network.weight_bits, membrane_bits=network.membrane_bits), device="cpu").run(
        inputs, record_membranes=True)
    assert trace.totals()["saturations"] > plain.totals()["saturations"]
    assert any((a != b).any() for a, b in zip(trace.membranes, plain.membranes))


def test_float_simulator_equals_integer_without_saturation():
    rng = np.random.default_rng(8)
    network = lee_network(rng, [12, 10, 4], NEURONS["lif-subtract-thetafloor"], membrane_bits=24, u_max=15)
    for layer in network.layers:  # IF: the float model's leak v·2^-k differs from the integer shift
        object.__setattr__(layer, "neuron", NeuronParams("if", "subtract", floor_threshold=True))
    inputs = rate_inputs(rng, 10, 3, 12)
    trace = IntegerSimulator(network, device="cpu").run(inputs)
    assert trace.totals()["saturations"] == 0 and trace.totals()["macs"] > 0
    result = FloatSimulator(network, device="cpu").run(inputs)
    for l in range(2):
        np.testing.assert_array_equal(result.spikes[l].sum(axis=1), trace.spikes[l].sum(axis=1))
    np.testing.assert_array_equal(result.predictions, trace.predictions)


# ----------------------------------------------------------------------------------------------- IR and file
def test_file_round_trip_and_versions(tmp_path):
    rng = np.random.default_rng(3)
    network = lee_network(rng, [6, 5, 3], NEURONS["lif-subtract-thetafloor"], inhibit={1})
    path = network.save(tmp_path / "lee.snn")
    manifest = yaml.safe_load((path / "network.yaml").read_text())
    assert manifest["version"] == 2
    assert manifest["layers"][0]["neuron"]["floor_threshold"] is True
    loaded = IntegerNetwork.load(path)
    assert loaded.layers[0].inhibition is None
    np.testing.assert_array_equal(loaded.layers[1].inhibition, network.layers[1].inhibition)
    assert loaded.layers[1].neuron.floor_threshold
    inputs = rate_inputs(rng, 5, 2, 6)
    a = IntegerSimulator(network, device="cpu").run(inputs, record_membranes=True)
    b = IntegerSimulator(loaded, device="cpu").run(inputs, record_membranes=True)
    for x, y in zip(a.membranes, b.membranes):
        np.testing.assert_array_equal(x, y)
    # a network without the new features is still written (and read) as version 1
    plain = lee_network(rng, [6, 3], NeuronParams("if", "zero"), inhibit=set())
    path = plain.save(tmp_path / "plain.snn")
    assert yaml.safe_load((path / "network.yaml").read_text())["version"] == 1
    assert "floor_threshold" not in (path / "network.yaml").read_text()
    assert IntegerNetwork.load(path).layers[0].inhibition is None


@pytest.mark.parametrize("change, error, match", [
    (dict(neuron=NeuronParams("if", "zero", floor=-3, floor_threshold=True)), NetworkFileError, "exclude"),
    (dict(inhibition=np.array([1, -1, 0])), WidthError, "inhibition strengths"),
    (dict(inhibition=np.array([1, 64, 0])), WidthError, "membrane_bits=8"),
    (dict(inhibition=np.array([1, 2])), NetworkFileError, "inhibition shape"),
    (dict(inhibition=np.array([1.0, 2.0, 0.0])), NetworkFileError, "integers"),
])
def test_validation_errors(change, error, match):
    fields = dict(weight=np.ones((3, 2), np.int64), bias=np.zeros(3, np.int64), threshold=np.full(3, 5),
                  neuron=NeuronParams("if", "zero"))
    fields.update(change)
    with pytest.raises(error, match=match):
        IntegerNetwork((2,), [DenseLayer(**fields)], membrane_bits=7).validate()


def test_floor_threshold_needs_if_or_lif():
    with pytest.raises(NetworkFileError, match="IF/LIF"):
        NeuronParams("ws", "subtract", floor_threshold=True).validate(16, "layer 1")
