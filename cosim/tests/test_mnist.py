"""The project's trained MNIST network (golden.training.ann_trainer.default_mlp, 784-256-10) converted three ways — IF reset to
zero, IF reset by subtraction, LIF — runs on one RTL build and matches the golden integer model bit for bit and
cycle for cycle on 20 test images of 32 steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cosim.session import check_equivalence, config_for_networks, cosimulate, golden_reference
from golden.core.network import NeuronParams

N_IMAGES = 20
STEPS = 32
LANES = 8
VARIANTS = {
    "if-zero": NeuronParams("if", "zero"),
    "if-subtract": NeuronParams("if", "subtract"),
    "lif": NeuronParams("lif", "subtract", leak_shift=4),
}


@pytest.fixture(scope="module")
def mnist():
    from golden.conversion import convert as golden_convert
    from golden.data import mnist as golden_data
    from golden.simulation.encoding import rate_encode
    from golden.training import ann_trainer as golden_train

    split = golden_data.default_split()
    model = golden_train.default_mlp(progress=False)
    networks = {name: golden_convert.convert(model, split.train_images[:500], method="data", neuron=neuron,
                                             input_coding="rate").integer
                for name, neuron in VARIANTS.items()}
    codes = torch.as_tensor(np.asarray(split.test_images[:N_IMAGES])).reshape(N_IMAGES, -1)
    spikes = rate_encode(codes, STEPS, max_rate=1.0, seed=0).numpy()  # time-major [T, N, 784]
    labels = np.asarray(split.test_labels[:N_IMAGES])
    return networks, spikes, labels


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_trained_mnist_network_is_bit_and_cycle_exact(mnist, engines, variant, tmp_path):
    networks, spikes, labels = mnist
    net = networks[variant]
    assert len(net.layers) >= 2 and net.layer_sizes[0] == 784
    engine = engines(config_for_networks(networks.values(), lanes=LANES))  # one build for the three variants
    rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes, lanes=LANES)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert rtl.problems == []
    # a trained network classifies: most of these 20 images are right after 32 steps
    assert (rtl.trace.predictions == labels).mean() >= 0.6
    print(f"\n{variant}: {rtl.summary()}; accuracy {(rtl.trace.predictions == labels).mean():.2f}")
