"""Counters and the cycle model on hand-computed cases (the ANN MACs: test_golden_macs.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from literal_reference import pool_word_events

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.cycle_model import C_IMAGE, C_LAYER
from golden.core.errors import SnnCosimError
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork
from golden.simulation import counting
from golden.simulation.simulate import IntegerSimulator


def _dense(n_out, n_in):
    return DenseLayer(np.ones((n_out, n_in), dtype=np.int64), np.zeros(n_out, dtype=np.int64),
                      np.ones(n_out, dtype=np.int64))


# ----------------------------------------------------------------------------------------------- cycle model
def test_constants_are_integers():
    assert isinstance(C_LAYER, int) and C_LAYER >= 0 and isinstance(C_IMAGE, int) and C_IMAGE >= 0


def test_lane_groups():
    assert [cycle_model.lane_groups(n, 4) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    np.testing.assert_array_equal(cycle_model.lane_groups(np.array([7, 8, 9]), 8), [1, 1, 2])
    with pytest.raises(SnnCosimError):
        cycle_model.lane_groups(3, 0)


def test_layer_cycles_hand_computed():
    # n_prev = 10, n_l = 5, P = 4: W = 3 mask words, G = 2 groups; 4 input spikes → 3 + 4·2 + 2 + C_LAYER
    assert cycle_model.layer_cycles(4, 10, 5, 4) == 13 + C_LAYER
    assert cycle_model.layer_cycles(0, 10, 5, 4) == 5 + C_LAYER
    # P = 8, 784 → 100: W = 98, G = 13; 30 spikes → 98 + 390 + 13
    assert cycle_model.layer_cycles(30, 784, 100, 8) == 501 + C_LAYER
    s_in = torch.tensor([0, 1, 2])
    assert cycle_model.layer_cycles(s_in, 10, 5, 4).tolist() == [5 + C_LAYER, 7 + C_LAYER, 9 + C_LAYER]


def test_image_cycles_and_fixed_overhead():
    sizes = [10, 5, 3]  # P = 4: layer 1 W=3 G=2, layer 2 W=2 G=1
    s_in = np.array([[[2, 1], [0, 3]]])  # [1 image, 2 steps, 2 layers]
    per_step = [[3 + 4 + 2, 2 + 1 + 1], [3 + 0 + 2, 2 + 3 + 1]]
    np.testing.assert_array_equal(cycle_model.step_cycles(s_in, sizes, 4)[0], np.array(per_step) + C_LAYER)
    assert cycle_model.image_cycles(s_in, sizes, 4).tolist() == [9 + 4 + 5 + 6 + 4 * C_LAYER + C_IMAGE]
    assert cycle_model.fixed_overhead_per_step(sizes, 4) == (3 + 2 + C_LAYER) + (2 + 1 + C_LAYER)
    assert cycle_model.fixed_overhead(sizes, 4, steps=2, images=3) == 3 * (2 * (8 + 2 * C_LAYER) + C_IMAGE)


def test_ac_bound_ratio():
    # a layer of 6 neurons on P = 4 lanes: 2 groups = 8 lane slots for 6 ACs per spike → ratio 8/6
    sizes, lanes, steps = [4, 6], 4, 3
    s_in = np.array([[[2], [4], [1]]])
    total = int(cycle_model.image_cycles(s_in, sizes, lanes)[0])
    acs = int(s_in.sum()) * 6
    fixed = cycle_model.fixed_overhead(sizes, lanes, steps)
    assert cycle_model.ac_bound_ratio(total, acs, lanes, fixed) == pytest.approx(8 / 6)
    assert cycle_model.ac_bound_ratio(fixed, 0, lanes, fixed) == 0.0
    assert cycle_model.ac_bound_ratio(fixed + 1, 0, lanes, fixed) == float("inf")


# ----------------------------------------------------------------------------------------------- fan-out, MACs
def test_conv_fan_out_hand_computed():
    # 1 input channel 3x3, 2 output channels, kernel 3, stride 1, padding 1 → 3x3 output.
    # Along one axis, positions 0, 1, 2 are read by 2, 3, 2 (output, tap) pairs.
    conv = Conv2dLayer(np.ones((2, 1, 3, 3), dtype=np.int64), np.zeros(2, dtype=np.int64),
                       np.ones(2, dtype=np.int64), in_shape=(1, 3, 3), padding=(1, 1))
    cover = np.array([2, 3, 2])
    np.testing.assert_array_equal(counting.fan_out(conv), (2 * np.outer(cover, cover)).reshape(-1))
    # stride 2, no padding, 5 wide, kernel 3: outputs at 0 and 2 → positions 0..4 read 1, 1, 2, 1, 1 times
    conv2 = Conv2dLayer(np.ones((1, 1, 1, 3), dtype=np.int64), np.zeros(1, dtype=np.int64),
                        np.ones(1, dtype=np.int64), in_shape=(1, 1, 5), stride=(1, 2))
    np.testing.assert_array_equal(counting.fan_out(conv2), [1, 1, 2, 1, 1])


def test_pool_fan_out_skips_uncovered_inputs():
    pool = AvgPool2dLayer(1, np.ones(2, dtype=np.int64), in_shape=(2, 5, 4), kernel=(2, 2), stride=(2, 2))
    fo = counting.fan_out(pool).reshape(2, 5, 4)
    assert (fo[:, :4] == 1).all() and (fo[:, 4] == 0).all()  # row 4 is outside every window


# ----------------------------------------------------------------------------------------------- counters
def test_dense_counters_hand_computed():
    network = IntegerNetwork((10,), [_dense(5, 10), _dense(3, 5)]).validate()  # every neuron fires on any input
    inputs = torch.zeros((2, 1, 10), dtype=torch.bool)
    inputs[0, 0, :4] = True  # step 1: 4 input spikes; step 2: none
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4)
    c = {name: trace.counter(name)[0] for name in COUNTER_NAMES}
    assert c["acs"].tolist() == [[20, 15], [0, 0]]
    assert c["spikes"].tolist() == [[5, 3], [0, 0]]
    assert c["weight_reads"].tolist() == [[8, 5], [0, 0]]
    assert c["state_reads"].tolist() == [[2, 1], [2, 1]] == c["state_writes"].tolist()
    assert c["neuron_updates"].tolist() == [[5, 3], [5, 3]]
    assert c["macs"].sum() == 0 and c["saturations"].sum() == 0
    assert c["cycles"].tolist() == [[3 + 8 + 2 + C_LAYER, 2 + 5 + 1 + C_LAYER], [5 + C_LAYER, 3 + C_LAYER]]
    assert trace.image_cycles.tolist() == [int(c["cycles"].sum()) + C_IMAGE]


def test_counters_from_spikes_equal_simulator_counters():
    rng = np.random.default_rng(0)
    conv = Conv2dLayer(rng.integers(-3, 4, (3, 2, 3, 3)), rng.integers(-2, 3, 3), np.full(3, 4),
                       in_shape=(2, 5, 5), stride=(2, 2), padding=(1, 1))
    dense = DenseLayer(rng.integers(-3, 4, (4, conv.n_out)), np.zeros(4, dtype=np.int64), np.full(4, 3))
    network = IntegerNetwork((2, 5, 5), [conv, dense], membrane_bits=6).validate()
    inputs = torch.from_numpy(rng.random((6, 3, 50)) < 0.5)
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=4)
    again = counting.counters_from_spikes(network, trace.input_spikes, trace.spikes, trace.counter("saturations"), 4)
    np.testing.assert_array_equal(again.numpy(), trace.counters)
    # ACs of the conv layer = Σ input spikes × fan-out
    expected = trace.input_spikes.astype(np.int64) @ counting.fan_out(conv)
    np.testing.assert_array_equal(trace.counter("acs")[..., 0], expected)


def test_helpers():
    network = IntegerNetwork((4,), [_dense(3, 4), _dense(2, 3)]).validate()
    trace = IntegerSimulator(network, device="cpu").run(torch.ones((5, 2, 4), dtype=torch.bool), lanes=2)
    per_layer = counting.totals_per_layer(trace)
    assert per_layer["spikes"].tolist() == [2 * 5 * 3, 2 * 5 * 2]
    assert per_layer["acs"].tolist() == [2 * 5 * 4 * 3, 2 * 5 * 3 * 2]
    assert [s.tolist() for s in counting.spikes_per_neuron(trace)] == [[5, 5, 5], [5, 5]]
    assert counting.spike_counts(trace.spikes[1]).tolist() == [[5, 5], [5, 5]]
    assert counting.COUNTER_NAMES == COUNTER_NAMES


def test_pool_cycles_are_word_parallel_hand_computed():
    # 3x4x4 input, 2x2 pool with stride 1 → 3x3x3; P = 2: channel groups {0, 1} and {2}
    pool = AvgPool2dLayer(1, np.full(3, 9, dtype=np.int64), in_shape=(3, 4, 4), kernel=(2, 2), stride=(1, 1))
    network = IntegerNetwork((3, 4, 4), [pool, _dense(2, pool.n_out)]).validate()
    inputs = torch.zeros((2, 1, 48), dtype=torch.bool)
    # channels 0 and 1 at (1, 1): one word reaching 4 windows; channel 2 at (0, 0): 1 window; channel 1 at (3, 3): 1
    inputs[0, 0, [5, 21, 32, 31]] = True
    trace = IntegerSimulator(network, device="cpu").run(inputs, lanes=2)
    assert trace.counter("acs")[0, 0, 0] == 4 + 4 + 1 + 1  # every (spike, reached window) pair is an addition
    assert trace.counter("weight_reads")[0, 0, 0] == 4 + 1 + 1  # R_w: one masked pool word per (word, window)
    assert trace.counter("cycles")[0, 0, 0] == 16 * 2 + (4 + 1 + 1) + 9 * 2 + C_LAYER
    assert trace.counter("cycles")[0, 1, 0] == 16 * 2 + 9 * 2 + C_LAYER  # no spikes at step 2
    np.testing.assert_array_equal(counting.pool_word_events(pool, inputs[:, 0].numpy(), 2), [6, 0])
    # + channel 2 at (1, 1): with P = 4 all channels share one word per position, so it adds no cycle; with P = 2
    # it opens the word (group 1, (1, 1)) that reaches 4 windows
    both = inputs[0, 0].clone()
    both[37] = True
    assert int(counting.pool_word_events(pool, both, 4)) == 6
    assert int(counting.pool_word_events(pool, both, 2)) == 6 + 4


def test_pool_word_events_match_literal_reference():
    rng = np.random.default_rng(3)
    pool = AvgPool2dLayer(1, np.ones(5, dtype=np.int64), in_shape=(5, 5, 6), kernel=(2, 3), stride=(2, 1))
    x = rng.random((4, pool.n_in)) < 0.1
    for lanes in (1, 2, 4, 8):
        expected = [pool_word_events(pool, row.tolist(), lanes) for row in x]
        np.testing.assert_array_equal(counting.pool_word_events(pool, x, lanes), expected)
        np.testing.assert_array_equal(counting.pool_word_events(pool, torch.from_numpy(x), lanes).numpy(), expected)
    # R_w ≤ R = ACs (a word holds ≥ 1 spike), equal at P = 1
    acs = x.astype(np.int64) @ counting.fan_out(pool)
    assert (counting.pool_word_events(pool, x, 4) <= acs).all()
    np.testing.assert_array_equal(counting.pool_word_events(pool, x, 1), acs)


def test_assemble_counters_needs_pool_words():
    pool = AvgPool2dLayer(1, np.ones(2, dtype=np.int64), in_shape=(2, 4, 4))
    network = IntegerNetwork((2, 4, 4), [pool, _dense(2, pool.n_out)]).validate()
    zeros = np.zeros((1, 1, 2), dtype=np.int64)
    with pytest.raises(SnnCosimError, match="pool_words"):
        counting.assemble_counters(zeros, zeros, zeros, zeros, network, 2)
