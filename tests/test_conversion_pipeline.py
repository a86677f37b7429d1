"""golden.conversion.pipeline: one entry point that picks the conversion route; each route gives the network its
own function gives (equal digests), and the encoder matches the route's coding."""

import numpy as np
import pytest
import torch
from test_golden_residual_convert import small_resnet

from golden.conversion import DEFAULT_NEURON
from golden.conversion.convert import convert
from golden.conversion.fs_convert import fs_convert
from golden.conversion.pipeline import Recipe, convert_model, has_residual_additions
from golden.conversion.residual import convert_residual
from golden.conversion.spikenorm import spike_norm_convert
from golden.core.errors import SnnCosimError
from golden.core.network import NeuronParams
from golden.simulation.encoding import rate_encode, weighted_encode
from golden.training.ann_trainer import make_mlp


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return make_mlp((24, 12), dropout=0.0, n_inputs=64).eval()


@pytest.fixture(scope="module")
def images():
    return torch.as_tensor(np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))


def test_rate_route_is_convert_with_the_default_neuron(mlp, images):
    converted = convert_model(mlp, images, Recipe())
    assert converted.route == "rate" and converted.steps is None
    assert converted.integer.digest() == convert(mlp, images).integer.digest()
    assert all(layer.neuron == DEFAULT_NEURON for layer in converted.integer.layers)
    spikes = converted.encode(images[:3].reshape(3, -1), 5, seed=7, first_index=2)
    assert torch.equal(spikes, rate_encode(images[:3].reshape(3, -1), 5, seed=7, first_index=2))
    lif = NeuronParams("lif", "zero", 3)
    rate = convert_model(mlp, images, Recipe(norm="percentile", percentile=99.0, neuron=lif, max_rate=0.5))
    assert rate.integer.digest() == convert(mlp, images, method="percentile", percentile=99.0, neuron=lif,
                                            max_rate=0.5).integer.digest()


def test_weighted_spikenorm_and_fs_routes(mlp, images):
    weighted = convert_model(mlp, images, Recipe(coding="weighted", phases=3, skip_periods=1, norm="model"))
    direct = convert(mlp, images, input_coding="weighted", phases=3, skip_periods=1, method="model")
    assert weighted.route == "weighted" and weighted.integer.digest() == direct.integer.digest()
    codes = images[:2].reshape(2, -1)
    assert torch.equal(weighted.encode(codes, 6), weighted_encode(direct.input_codes(codes), 6, 3))
    spike = convert_model(mlp, images, Recipe(norm="spikenorm", spikenorm_steps=8, spikenorm_images=10))
    assert spike.route == "spikenorm"
    assert spike.integer.digest() == spike_norm_convert(mlp, images[:10], steps=8).integer.digest()
    fs = convert_model(mlp, images, Recipe(coding="fs", phases=4))
    assert fs.route == "fs" and fs.integer.digest() == fs_convert(mlp, images, phases=4, membrane_bits=24).integer.digest()
    assert fs.steps == 3 * 4 and fs.encode(codes).shape == (12, 2, 64)
    with pytest.raises(SnnCosimError, match="exactly L·K = 12 steps"):
        fs.encode(codes, 10)


def test_residual_models_take_the_residual_route():
    model = small_resnet()
    images = torch.rand(16, 1, 8, 8, dtype=torch.float64)
    assert has_residual_additions(model, (1, 8, 8)) and not has_residual_additions(make_mlp((4,), n_inputs=64), None)
    converted = convert_model(model, images, Recipe(input_shape=(1, 8, 8)))
    assert converted.route == "residual" and len(converted.integer.skips) == 2
    assert converted.integer.digest() == convert_residual(model, images, input_shape=(1, 8, 8),
                                                          neuron=DEFAULT_NEURON).integer.digest()
    with pytest.raises(SnnCosimError, match="percentile is not available for residual networks"):
        convert_model(model, images, Recipe(norm="percentile", input_shape=(1, 8, 8)))


@pytest.mark.parametrize("recipe, message", [
    (Recipe(coding="spikes"), "coding 'spikes' is not one of"),
    (Recipe(norm="max"), "normalisation 'max' is not one of"),
    (Recipe(coding="fs", norm="model"), "does not apply"),
    (Recipe(coding="weighted", norm="spikenorm"), "rate-coding method"),
    (Recipe(coding="weighted", neuron=NeuronParams("if", "zero")), "fixes its neurons"),
    (Recipe(phases=4), "phases"),
])
def test_bad_recipes_are_refused(mlp, images, recipe, message):
    with pytest.raises(SnnCosimError, match=message):
        convert_model(mlp, images, recipe)
