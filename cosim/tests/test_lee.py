"""The project's directly trained Lee 2016 network (``golden.training.lee_trainer.default_lee_network``: LIF with the floor
at −θ_j and WTA lateral inhibition, exported as integers) runs on the RTL engine and matches the golden integer
model bit for bit and cycle for cycle on 20 embedded MNIST test images, with the same rate-coded spikes the golden
model and the trainer's evaluation use (``golden.simulation.encoding.rate_encode``, seed 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hw.config import EngineConfig

from .conftest import run_and_check

N_IMAGES = 20
LANES = 8


@pytest.fixture(scope="module")
def lee():
    from golden.data import DEFAULT_TRAIN_SIZE
    from golden.data.mnist import DEFAULT_SPLIT_SEED, default_split
    from golden.simulation.encoding import rate_encode
    from golden.training.lee_trainer import default_lee_network

    network, info = default_lee_network(progress=None)
    training = network.metadata["direct_training"]
    steps, max_rate = int(training["test_steps"]), float(training["max_rate"])
    split = default_split(DEFAULT_TRAIN_SIZE, DEFAULT_SPLIT_SEED)
    codes = torch.as_tensor(np.asarray(split.test_images[:N_IMAGES])).reshape(N_IMAGES, -1)
    spikes = rate_encode(codes, steps, max_rate=max_rate, seed=0).numpy()  # time-major [T, N, n_0]
    labels = np.asarray(split.test_labels[:N_IMAGES])
    return network, info, spikes, labels


def test_trained_lee_network_is_bit_and_cycle_exact(lee, engines, tmp_path):
    network, info, spikes, labels = lee
    inhibited = [l for l, layer in enumerate(network.layers, start=1)
                 if layer.kind == "dense" and layer.inhibition is not None]
    assert inhibited, "the trained network should use lateral inhibition"
    assert all(layer.neuron.floor_threshold for layer in network.layers)
    config = EngineConfig.for_network(network, lanes=LANES)
    assert [l for l in range(1, config.n_layers + 1) if config.inhibits(l)] == inhibited
    rtl, golden = run_and_check(network, spikes, engines(config), tmp_path, lanes=LANES, config=config)
    # the inhibition really acts in hardware: MACs in every inhibited layer
    macs = rtl.trace.counter("macs").sum(axis=(0, 1))
    assert all(macs[l - 1] > 0 for l in inhibited), macs
    # a trained network classifies: most of these 20 images are right
    accuracy = float((rtl.trace.predictions == labels).mean())
    assert accuracy >= 0.6, f"accuracy {accuracy:.2f} on {N_IMAGES} images (trainer: {info.get('integer_accuracy')})"
    print(f"\nlee: {rtl.summary()}; accuracy {accuracy:.2f}")
