"""Weighted spikes (Kim et al. 2018) on the RTL: the bit-shift scaled ws neuron, the gated acc output layer and the
membrane-argmax prediction, bit- and cycle-exact against the golden model.

* the project's trained MNIST MLP converted to weighted spikes with K = 4 and K = 8, 20 test images, 4 periods;
* random weighted-spike networks with negative weights and biases and small membranes (saturation), K = 4, S = 1.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from cosim.session import check_equivalence, config_for_networks, cosimulate, golden_reference
from golden.core.cycle_model import image_cycles
from golden.core.network import IntegerNetwork, NeuronParams
from golden.simulation.encoding import weighted_encode

from .conftest import random_network

N_IMAGES = 20
PERIODS = 4
LANES = 8


@pytest.fixture(scope="module")
def mnist_weighted():
    from golden.conversion import convert as golden_convert
    from golden.data import mnist as golden_data
    from golden.training import ann_trainer as golden_train

    split = golden_data.default_split()
    model = golden_train.default_mlp(progress=False)
    results = {k: golden_convert.convert(model, split.train_images[:500], input_coding="weighted", phases=k,
                                         skip_periods=1 if k == 4 else 0)
               for k in (4, 8)}
    pixels = torch.as_tensor(np.asarray(split.test_images[:N_IMAGES])).reshape(N_IMAGES, -1)
    spikes = {k: weighted_encode(r.input_codes(pixels), PERIODS * k, k).numpy()  # time-major [T, N, 784]
              for k, r in results.items()}
    return {k: r.integer for k, r in results.items()}, spikes, np.asarray(split.test_labels[:N_IMAGES])


@pytest.mark.parametrize("phases", [4, 8])
def test_trained_mnist_network_weighted_is_bit_and_cycle_exact(mnist_weighted, engines, phases, tmp_path):
    networks, spikes, labels = mnist_weighted
    net = networks[phases]
    assert net.phases == phases and net.input_coding == "weighted"
    assert [layer.neuron.kind for layer in net.layers] == ["ws", "acc"]
    engine = engines(config_for_networks(networks.values(), lanes=LANES))  # one build serves K = 4 and K = 8
    rtl = cosimulate(net, spikes[phases], engine=engine, work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes[phases], lanes=LANES)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert rtl.problems == []
    assert rtl.trace.n_steps == PERIODS * phases
    # the membrane argmax classifies: weighted spikes reach ANN accuracy within a few periods
    assert (rtl.trace.predictions == labels).mean() >= 0.85
    # no extra cycles for the shifts: the RTL's cycles are the rate-coded cycle formula's
    s_in = np.stack([np.asarray(spikes[phases]).sum(axis=-1).T]
                    + [rtl.trace.spikes[l].sum(axis=-1) for l in range(len(net.layers) - 1)], axis=-1)
    assert (rtl.trace.image_cycles == image_cycles(s_in, net.layer_sizes, LANES)).all()


def _random_weighted(seed: int, membrane_bits: int = 15) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    base = random_network(rng, [20, 12, 5], [NeuronParams("if", "subtract")], membrane_bits=24,
                          weight_range=(-100, 100), bias_range=(-15, 15), threshold_range=(60, 200))
    layers = [replace(layer, neuron=NeuronParams("ws", "subtract")) for layer in base.layers[:-1]]
    layers.append(replace(base.layers[-1], neuron=NeuronParams("acc")))
    return IntegerNetwork(input_shape=base.input_shape, layers=layers, membrane_bits=membrane_bits,
                          input_coding="weighted", input_bits=4, phases=4, skip_periods=1).validate()


def test_random_weighted_networks_with_negative_weights_and_saturation(engines, tmp_path):
    networks = [_random_weighted(seed) for seed in range(3)]
    engine = engines(config_for_networks(networks, lanes=4))
    rng = np.random.default_rng(7)
    saturations = 0
    for index, net in enumerate(networks):
        codes = torch.as_tensor(rng.integers(0, 16, (4, net.n_inputs)))
        spikes = weighted_encode(codes, 6 * net.phases, net.phases).numpy()
        rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / f"rtl{index}")
        golden = golden_reference(net, spikes, lanes=4)
        comparison = check_equivalence(golden, rtl.trace, tmp_path / f"mismatch{index}")
        assert comparison.equivalent, comparison.summary()
        assert (rtl.hardware_totals == rtl.trace.counters.sum(axis=(1, 2))).all()
        # the acc layer is gated for the skipped period: its membranes stay 0 for t <= S*K
        assert (rtl.trace.membranes[-1][:, :net.skip_periods * net.phases] == 0).all()
        saturations += int(rtl.trace.counter("saturations").sum())
    assert saturations > 0, "no saturation happened: the 15-bit membranes were meant to saturate"
