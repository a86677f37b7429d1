"""golden.conversion.spikenorm: Sengupta 2019 Spike-Norm thresholds (checked against a literal loop) and the converted network."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from golden.conversion.spikenorm import spike_norm_convert
from golden.core.errors import DataError, SnnCosimError, WidthError
from golden.core.network import NeuronParams
from golden.simulation.encoding import rate_encode
from golden.simulation.simulate import IntegerSimulator, accuracy_curve
from golden.training.ann_trainer import evaluate, make_convnet
from golden.training.ann_trainer import predict as ann_predict
from golden.training.ann_trainer import train


def seeded(builder, seed=0):
    torch.manual_seed(seed)
    return builder().eval()


def tiny_mlp():
    return nn.Sequential(nn.Linear(12, 7, bias=False), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))


def tiny_convnet():
    return make_convnet((2, 3), kernel=3, dropout=0.0, image_size=12, n_classes=4)


@torch.no_grad()
def literal_thresholds(modules, spikes, reset):
    """Algorithm 1 written out: one image, one step, one neuron at a time (torch modules for each step)."""
    steps, n_images = spikes.shape[0], spikes.shape[1]
    x = [[spikes[t, b].to(torch.float64) for b in range(n_images)] for t in range(steps)]
    thresholds = []
    for module in modules:
        inputs = [[module(x[t][b][None])[0].reshape(-1) for b in range(n_images)] for t in range(steps)]
        theta = max(float(inputs[t][b][j]) for t in range(steps) for b in range(n_images)
                    for j in range(inputs[0][0].numel()))
        thresholds.append(theta)
        out = [[None] * n_images for _ in range(steps)]
        for b in range(n_images):
            v = [0.0] * inputs[0][0].numel()
            for t in range(steps):
                fired = []
                for j in range(len(v)):
                    v[j] += float(inputs[t][b][j])
                    spike = v[j] >= theta
                    if spike:
                        v[j] = v[j] - theta if reset == "subtract" else 0.0
                    fired.append(1.0 if spike else 0.0)
                out[t][b] = torch.tensor(fired, dtype=torch.float64)
        x = out
    return thresholds


def linear_steps(model, in_shapes=None):
    """Each spiking layer of ``model`` as a per-step function of its flat input spikes (bias included);
    ``in_shapes`` gives the input shape (c, h, w) of each conv/pool module in order."""
    model = model.double()
    shapes = iter(in_shapes or [])
    steps = []
    for module in model:
        if isinstance(module, nn.Linear):
            steps.append(lambda x, m=module: m(x.reshape(x.shape[0], -1)))
        elif isinstance(module, (nn.Conv2d, nn.AvgPool2d)):
            steps.append(lambda x, m=module, shape=next(shapes): m(x.reshape(x.shape[0], *shape)))
    return steps


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_mlp_thresholds_match_literal_loop(reset):
    model = seeded(tiny_mlp, 3)
    codes = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 12), dtype=np.uint8))
    result = spike_norm_convert(model, codes, steps=9, seed=4, neuron=NeuronParams("if", reset), chunk=2)
    spikes = rate_encode(codes, 9, seed=4)
    expected = literal_thresholds(linear_steps(model), spikes, reset)
    assert result.thresholds == pytest.approx(expected, rel=1e-12)
    # thresholds balance the raw weights: layer i's weights are W_i/θ_i times its integer scale
    for layer, op, theta, scale in zip(result.integer.layers, result.ann_ops, result.thresholds, result.scales):
        assert np.array_equal(layer.weight, np.rint(op.weight / theta * scale).astype(np.int64))
        assert np.all(layer.threshold == scale)
        assert 64 <= np.abs(layer.weight).max() <= 127  # the largest integer scale that fits 8 bits
    assert result.lambdas == pytest.approx(np.cumprod(result.thresholds))
    assert result.integer.metadata["spike_norm"]["thresholds"] == pytest.approx(expected)
    assert result.integer.metadata["normalization"]["method"] == "spike-norm"


def test_conv_thresholds_match_literal_loop():
    model = seeded(tiny_convnet, 1).double()
    codes = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 12, 12), dtype=np.uint8))
    result = spike_norm_convert(model, codes, steps=6, seed=2)
    expected = literal_thresholds(linear_steps(model, [(1, 12, 12), (2, 10, 10), (2, 5, 5), (3, 3, 3)]),
                                  rate_encode(codes, 6, seed=2), "subtract")
    assert len(expected) == 5 == len(result.integer.layers)
    assert result.thresholds == pytest.approx(expected, rel=1e-12)
    result.integer.validate()


def synthetic_set(n, seed):
    """Three noisy prototypes in 16 pixels (uint8 codes)."""
    rng = np.random.default_rng(seed)
    prototypes = np.array([[230] * 6 + [10] * 10, [10] * 5 + [230] * 6 + [10] * 5, [10] * 10 + [230] * 6])
    labels = rng.integers(0, 3, n)
    images = np.clip(prototypes[labels] + rng.normal(0, 40, (n, 16)), 0, 255).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(labels).to(torch.int64)


def test_converted_network_classifies_like_the_ann():
    images, labels = synthetic_set(600, 0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 20, bias=False), nn.ReLU(), nn.Linear(20, 3, bias=False))
    train(model, images, labels, epochs=15, batch_size=50, lr=1e-2, progress=False)
    test_images, test_labels = synthetic_set(200, 1)
    assert evaluate(model, test_images, test_labels) > 0.95
    result = spike_norm_convert(model, images[:100], steps=60, seed=0)
    network = result.integer.validate()
    simulator = IntegerSimulator(network, device="cpu")
    spikes = rate_encode(test_images, 60, seed=7)
    curve = accuracy_curve(simulator, spikes, test_labels, [60])
    assert curve[60] > 0.9
    snn = simulator.run(spikes).predictions
    agreement = float((snn == ann_predict(model, test_images).numpy()).mean())
    assert agreement > 0.9
    # calibration inputs never need more than one spike per step: θ ≥ every single-step input
    assert all(0 < rate <= 1 for rate in result.spike_rates)


def test_float_images_and_max_rate():
    model = seeded(tiny_mlp, 5)
    codes = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (4, 12), dtype=np.uint8))
    from_codes = spike_norm_convert(model, codes, steps=5, max_rate=0.5)
    from_floats = spike_norm_convert(model, codes.to(torch.float64) / 255, steps=5, max_rate=0.5)
    assert from_codes.thresholds == from_floats.thresholds
    assert from_codes.integer.metadata["conversion"]["max_rate"] == 0.5


def test_user_errors():
    model = seeded(tiny_mlp)
    codes = torch.zeros((3, 12), dtype=torch.uint8) + 200
    with pytest.raises(SnnCosimError, match="non-leaky IF"):
        spike_norm_convert(model, codes, steps=5, neuron=NeuronParams("lif", "zero", leak_shift=3))
    with pytest.raises(SnnCosimError, match="positive integer"):
        spike_norm_convert(model, codes, steps=0)
    with pytest.raises(DataError, match="needs calibration images"):
        spike_norm_convert(model, None, steps=5)
    with pytest.raises(DataError, match="not in \\[0, 1\\]"):
        spike_norm_convert(model, torch.full((3, 12), 3.0), steps=5)
    with pytest.raises(DataError, match="do not match"):
        spike_norm_convert(model, torch.zeros((3, 13), dtype=torch.uint8), steps=5)
    with pytest.raises(SnnCosimError, match="max_rate"):
        spike_norm_convert(model, codes, steps=5, max_rate=1.5)
    dead = seeded(tiny_mlp)
    with torch.no_grad():
        dead[0].weight.copy_(-dead[0].weight.abs())
    with pytest.raises(DataError, match="never receives a positive input"):
        spike_norm_convert(dead, codes, steps=5)
    with pytest.raises(WidthError, match="membrane_bits"):
        spike_norm_convert(model, codes, steps=5, weight_bits=16, membrane_bits=8)
