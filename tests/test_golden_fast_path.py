"""The golden model's fast paths (issue 14) against straightforward references on random networks: the IF/LIF
step loop against :meth:`IntegerNeuron.forward` step by step, the complement-sparse synaptic sum against the matrix
product, and whole runs against the per-neuron literal reference with any time chunk, batch split, recording
choice, synapse path and thread count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_golden_residual import literal_run, residual_net
from test_golden_sim import NEURONS, assert_matches_reference, dense_network

from golden.core.network import IntegerNetwork, NeuronParams
from golden.core.trace import compare
from golden.simulation import fastops, simulate
from golden.simulation.neurons import IntegerNeuron
from golden.simulation.simulate import IntegerSimulator

STEP_NEURONS = {**NEURONS, "if-floor-threshold": NeuronParams("if", "subtract", floor_threshold=True)}


def spikes_with_density(rng, steps, batch, n, low=0.05, high=0.95):
    """Spikes whose inputs are mostly silent, mostly on, always on or never on (every path of the complement)."""
    p = rng.choice([0.0, low, 0.5, high, 1.0], size=(1, batch, n))
    return torch.from_numpy(rng.random((steps, batch, n)) < p)


def forward_loop(neuron: IntegerNeuron, currents: torch.Tensor):
    spikes, membranes, saturations = [], [], []
    for s in range(currents.shape[0]):
        spikes.append(neuron(currents[s], s + 1))
        membranes.append(neuron.v.clone())
        saturations.append(neuron.saturated.sum(-1))
    return torch.stack(spikes), torch.stack(membranes), torch.stack(saturations)


@pytest.mark.parametrize("name", sorted(STEP_NEURONS))
@pytest.mark.parametrize("membrane_bits", [6, 12, 40])  # 6: saturates often; 40: the int64 state path
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("numpy_loop", [True, False], ids=["numpy", "torch"])  # torch: the GPU's loop, on the CPU
@pytest.mark.parametrize("bounded", [False, True], ids=["no-bounds", "input-bounds"])
def test_step_loop_equals_forward(name, membrane_bits, uniform, numpy_loop, bounded, monkeypatch):
    monkeypatch.setattr(fastops, "NUMPY_ON_CPU", numpy_loop)
    rng = np.random.default_rng(membrane_bits + 7 * len(name) + uniform)
    params = STEP_NEURONS[name]
    hi = 2 ** (membrane_bits - 1) - 1
    n, batch, steps = 9, 4, 12
    threshold = np.full(n, min(hi, 20)) if uniform else rng.integers(1, min(hi, 40) + 1, n)
    bias = rng.integers(-3, 4, n)
    scale = 2 ** (membrane_bits - 2)  # currents up to half the range, drifting up: saturation at 6 bits
    currents = torch.as_tensor(rng.integers(-scale, 2 * scale + 1, (steps, batch, n)), dtype=torch.float32)
    fast, slow = (IntegerNeuron(params, threshold, bias, membrane_bits) for _ in range(2))
    if bounded:  # the input range the simulator would give (the numpy loop then skips provably safe tests)
        fast.input_bounds = (int(currents.min()), int(currents.max()))
    for neuron in (fast, slow):
        neuron.reset_state(batch)
    spikes = torch.empty((steps, batch, n), dtype=torch.bool)
    membranes = torch.empty((steps, batch, n), dtype=torch.int64)
    saturations = torch.empty((steps, batch), dtype=torch.int64)
    fast.run_steps(currents, 1, spikes, membranes, saturations)
    ref_spikes, ref_membranes, ref_saturations = forward_loop(slow, currents)
    assert torch.equal(spikes, ref_spikes) and torch.equal(membranes, ref_membranes)
    assert torch.equal(saturations, ref_saturations)
    assert torch.equal(fast.v, slow.v) and fast.v.dtype == torch.int64
    if membrane_bits == 6:
        assert int(saturations.sum()) > 0  # the saturating branch was taken
    assert int(spikes.sum()) > 0


@pytest.mark.parametrize("name", sorted(STEP_NEURONS))
def test_saturation_after_steps_the_input_bounds_skipped(name, monkeypatch):
    """Small inputs that drift up: the first steps provably cannot saturate (their min/max test is skipped), later
    ones do; every step still equals the reference. Bounds that lie (inputs claimed to be 0) make the loop skip
    tests it needed, and the results differ: the skip is real."""
    monkeypatch.setattr(fastops, "NUMPY_ON_CPU", True)
    rng = np.random.default_rng(len(name))
    membrane_bits, n, batch, steps = 8, 7, 3, 60
    threshold = np.full(n, 127)  # = hi: v − θ after a spike stays small, v_exact can pass hi
    currents = torch.as_tensor(rng.integers(-1, 7, (steps, batch, n)), dtype=torch.float32)
    slow = IntegerNeuron(STEP_NEURONS[name], threshold, np.zeros(n, dtype=np.int64), membrane_bits)
    slow.reset_state(batch)
    ref_spikes, ref_membranes, ref_saturations = forward_loop(slow, currents)
    if STEP_NEURONS[name].kind == "if":
        assert int(ref_saturations.sum()) > 0  # IF passes hi here (LIF's leak may hold it below)

    def fast_run(bounds):
        fast = IntegerNeuron(STEP_NEURONS[name], threshold, np.zeros(n, dtype=np.int64), membrane_bits)
        fast.input_bounds = bounds
        fast.reset_state(batch)
        out = (torch.empty((steps, batch, n), dtype=torch.bool), torch.empty((steps, batch, n), dtype=torch.int64),
               torch.empty((steps, batch), dtype=torch.int64))
        fast.run_steps(currents, 1, *out)
        return out

    spikes, membranes, saturations = fast_run((-1, 6))
    assert torch.equal(spikes, ref_spikes) and torch.equal(membranes, ref_membranes)
    assert torch.equal(saturations, ref_saturations)
    if int(ref_saturations.sum()) > 0:
        _, wrong_membranes, wrong_saturations = fast_run((0, 0))
        assert not torch.equal(wrong_saturations, ref_saturations) or not torch.equal(wrong_membranes, ref_membranes)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_complement_sum_equals_the_matrix_product(dtype):
    rng = np.random.default_rng(3)
    for steps, batch, n, n_out in [(1, 1, 5, 3), (7, 5, 37, 11), (20, 3, 64, 9), (6, 4, 8, 2)]:
        spikes = spikes_with_density(rng, steps, batch, n)
        weight_t = torch.as_tensor(rng.integers(-127, 128, (n, n_out)), dtype=dtype)
        plan = fastops.ComplementPlan(spikes)
        on = spikes.to(torch.int64).sum(0) * 2 > steps
        assert torch.equal(plan.mostly_on, on)
        assert plan.events == int(torch.minimum(spikes.sum(0), steps - spikes.sum(0)).sum())
        got, counts = fastops.complement_synaptic_sum(spikes, weight_t, plan)
        assert got.dtype == dtype and torch.equal(got, spikes.to(dtype) @ weight_t)
        assert torch.equal(counts, spikes.sum(-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pattern_sum_equals_the_matrix_product(dtype):
    rng = np.random.default_rng(5)
    for steps, batch, n, n_out in [(1, 1, 5, 3), (7, 5, 37, 11), (20, 3, 64, 9), (6, 4, 8, 1), (3, 2, 1, 4)]:
        spikes = spikes_with_density(rng, steps, batch, n)
        weight_t = torch.as_tensor(rng.integers(-127, 128, (n, n_out)), dtype=dtype)
        table = fastops.PatternTable(weight_t)
        assert table.rows.shape == (-(-n // 8) * 256, n_out + 1)
        assert table.rows.numel() * table.rows.element_size() == fastops.PatternTable.size_bytes(n, n_out, dtype)
        got, counts = fastops.pattern_synaptic_sum(spikes, table)
        assert got.dtype == dtype and torch.equal(got, spikes.to(dtype) @ weight_t)
        assert counts.dtype == torch.int64 and torch.equal(counts, spikes.sum(-1))
    # every pattern of one group: row g·256 + byte is the sum of the rows of the byte's set bits, top bit first
    weight_t = torch.as_tensor(rng.integers(-127, 128, (8, 2)), dtype=dtype)
    bits = torch.as_tensor(np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1), dtype=dtype)
    assert torch.equal(fastops.PatternTable(weight_t).rows, torch.cat([bits @ weight_t, bits.sum(1, keepdim=True)], 1))


def test_count_true():
    rng = np.random.default_rng(4)
    rows = torch.from_numpy(rng.random((13, 21)) < 0.3)
    rows[5] = False
    assert torch.equal(fastops.count_true(rows), rows.sum(-1))
    assert torch.equal(fastops.count_true(rows.t()), rows.t().sum(-1))  # strided input
    assert fastops.count_true(rows).dtype == torch.int64


def random_networks(rng):
    yield "dense-if", dense_network(rng, [60, 40, 30, 10], NEURONS["if-subtract"])
    yield "dense-lif-floor", dense_network(rng, [60, 40, 10], NEURONS["lif-subtract-floor"], membrane_bits=9)
    yield "dense-if-zero-saturating", dense_network(rng, [60, 20, 5], NEURONS["if-zero"], membrane_bits=6, wmin=-4)
    yield "residual-conv", residual_net(rng)


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(11)
    return [(name, net, spikes_with_density(rng, 14, 6, net.n_inputs)) for name, net in random_networks(rng)]


def test_runs_match_the_literal_reference(cases):
    for name, network, inputs in cases:
        trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=3, record_membranes=True)
        if not network.skips:
            assert_matches_reference(network, inputs, 3, trace)
            continue
        for b in range(inputs.shape[1]):  # residual junctions: the per-neuron reference of test_golden_residual
            spikes, membranes, _ = literal_run(network, inputs[:, b].numpy())
            for l in range(len(network.layers)):
                np.testing.assert_array_equal(trace.spikes[l][b], spikes[l], err_msg=f"{name} image {b} layer {l}")
                np.testing.assert_array_equal(trace.membranes[l][b], membranes[l], err_msg=f"{name} image {b} v {l}")


def test_chunks_batches_paths_and_threads_do_not_change_results(cases, monkeypatch):
    for name, network, inputs in cases:
        simulator = IntegerSimulator(network, device="cpu")
        reference = simulator.run(inputs, lanes=3, record_membranes=True)
        variants = {"batch 1": dict(batch_size=1), "batch 4": dict(batch_size=4)}
        for label, kwargs in variants.items():
            assert compare(reference, simulator.run(inputs, lanes=3, record_membranes=True, **kwargs)).equivalent, \
                (name, label)
        for chunk in (1, 3):  # time chunks of 1 and 3 steps (one per call, and one that does not divide T)
            monkeypatch.setattr(simulate, "_CHUNK_ELEMENTS", chunk * inputs.shape[1] * simulator._widest())
            monkeypatch.setattr(simulate, "_IM2COL_ELEMENTS", 2 ** 40)
            assert simulator._time_chunk(inputs.shape[1], inputs.shape[0]) == chunk
            assert compare(reference, simulator.run(inputs, lanes=3, record_membranes=True)).equivalent, (name, chunk)
        monkeypatch.undo()
        monkeypatch.setattr(fastops, "NUMPY_ON_CPU", False)  # the torch step loop (a GPU's) on the CPU
        assert compare(reference, simulator.run(inputs, lanes=3, record_membranes=True)).equivalent, name
        monkeypatch.undo()
        # matrix products only, complement sums wherever possible, pattern tables wherever possible
        for density, table_bytes in ((0.0, 0), (2.0, 0), (0.0, 2 ** 40)):
            monkeypatch.setattr(fastops, "SPARSE_DENSITY", density)
            monkeypatch.setattr(fastops, "PATTERN_TABLE_BYTES", table_bytes)
            simulator = IntegerSimulator(network, device="cpu")  # tables are made once per simulator
            assert compare(reference, simulator.run(inputs, lanes=3, record_membranes=True)).equivalent, \
                (name, density, table_bytes)
        monkeypatch.undo()
        before = torch.get_num_threads()
        monkeypatch.setattr(fastops, "ELEMENTS_PER_THREAD", 1)  # as many threads as the caller allows
        assert compare(reference, simulator.run(inputs, lanes=3, record_membranes=True)).equivalent, name
        monkeypatch.undo()
        assert torch.get_num_threads() == before


def test_recording_choices_give_the_same_spikes_and_counters(cases):
    for name, network, inputs in cases:
        simulator = IntegerSimulator(network, device="cpu")
        full = simulator.run(inputs, lanes=3, record_membranes=True)
        light = simulator.run(inputs, lanes=3, record_membranes=False)
        assert light.membranes is None
        for a, b in zip(full.spikes, light.spikes):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(full.counters, light.counters)
        np.testing.assert_array_equal(full.image_cycles, light.image_cycles)
        np.testing.assert_array_equal(full.predictions, light.predictions)
        np.testing.assert_array_equal(simulator.output_spikes(inputs, batch_size=4), full.spikes[-1])
        np.testing.assert_array_equal(simulator.output_trajectory(inputs),
                                      np.cumsum(full.spikes[-1], axis=1, dtype=np.int64))


def test_limited_threads_restores_the_callers_setting():
    before = torch.get_num_threads()
    with fastops.limited_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with fastops.limited_threads(10 ** 12) as used:
        assert used == before  # never more than the caller's setting
    with pytest.raises(RuntimeError), fastops.limited_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_int32_state_only_when_it_cannot_overflow():
    params = NeuronParams("if", "subtract")
    small = IntegerNeuron(params, np.full(3, 5), np.zeros(3), 24)
    big = IntegerNeuron(params, np.full(3, 5), np.zeros(3), 31)
    currents = torch.full((2, 1, 3), 1000.0)
    assert small._state_dtype(currents) == torch.int32
    assert big._state_dtype(currents) == torch.int64  # 2^31 of membrane range alone does not fit int32
    assert small._state_dtype(torch.full((2, 1, 3), 2.0 ** 31)) == torch.int64


def test_direct_input_network_takes_the_dense_path():
    rng = np.random.default_rng(5)
    base = dense_network(rng, [10, 8, 4], NeuronParams("if", "subtract"), membrane_bits=12)
    network = IntegerNetwork((10,), base.layers, weight_bits=5, membrane_bits=12, input_coding="direct",
                             input_bits=3).validate()
    codes = torch.as_tensor(rng.integers(0, 8, (1, 5, 10))).expand(9, 5, 10)
    trace = IntegerSimulator(network, device="cpu").run(codes, lanes=3, record_membranes=True)
    chunked = IntegerSimulator(network, device="cpu").run(codes, lanes=3, record_membranes=True, batch_size=2)
    assert compare(trace, chunked).equivalent
    assert int(trace.counters[..., 0].sum()) > 0
