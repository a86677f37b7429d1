"""Diehl's ConvNet (28x28-12c5-2s-64c5-2s-10, bias-free, 2x2 average pooling; golden.training.ann_trainer.default_convnet, trained
on the embedded MNIST train part) converted three ways — IF rate coding with data-based normalisation (Diehl 2015),
weighted spikes (Kim 2018, K = 4) and FS-neurons (Stöckl & Maass 2021, K = 6) — on one RTL build (P = 16; the FS
hardware also runs the per-step schedule), each bit- and cycle-exact against the golden integer model on 10 test
images: every spike, membrane and counter of every (image, step, layer), cycles and predictions; the FS images
stream through the layer pipeline with one start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cosim.session import check_equivalence, config_for_networks, cosimulate, golden_reference
from golden.core import cycle_model
from golden.core.network import NeuronParams

from .test_fs import check_stream

N_IMAGES = 10
LANES = 16
RATE_STEPS = 40  # rate coding: T = 40 steps
WS_PHASES, WS_PERIODS = 4, 4  # weighted spikes: K = 4, 4 periods = 16 steps
FS_PHASES = 6  # FS: L·K = 30 local steps per image
MEMBRANE_BITS = 24
CODINGS = ("rate", "weighted", "fs")


@pytest.fixture(scope="module")
def convnet():
    from golden.conversion.convert import convert
    from golden.conversion.fs_convert import fs_convert
    from golden.data import mnist as golden_data
    from golden.simulation.encoding import rate_encode, weighted_encode
    from golden.training import ann_trainer as golden_train

    split = golden_data.default_split()
    model = golden_train.default_convnet()
    calibration = split.train_images[:1000, None]
    results = {
        "rate": convert(model, calibration, method="data", neuron=NeuronParams("if", "subtract"),
                        membrane_bits=MEMBRANE_BITS),
        "weighted": convert(model, calibration, input_coding="weighted", phases=WS_PHASES,
                            membrane_bits=MEMBRANE_BITS),
        "fs": fs_convert(model, calibration, phases=FS_PHASES, membrane_bits=MEMBRANE_BITS),
    }
    pixels = torch.as_tensor(np.asarray(split.test_images[:N_IMAGES]))
    flat = pixels.reshape(N_IMAGES, -1)
    spikes = {  # time-major [T, N, 784]
        "rate": rate_encode(flat, RATE_STEPS, max_rate=1.0, seed=0),
        "weighted": weighted_encode(results["weighted"].input_codes(flat), WS_PERIODS * WS_PHASES, WS_PHASES),
        "fs": results["fs"].input_spikes(pixels),
    }
    spikes = {k: v.numpy() for k, v in spikes.items()}
    networks = {k: r.integer for k, r in results.items()}
    return model, networks, spikes, np.asarray(split.test_labels[:N_IMAGES])


def test_convnet_has_diehls_shape(convnet):
    model, networks, _, _ = convnet
    assert model.test_accuracy >= 0.95, "the trained ConvNet should classify the test part"
    for net in networks.values():
        assert [layer.kind for layer in net.layers] == ["conv2d", "avgpool2d", "conv2d", "avgpool2d", "dense"]
        assert net.layer_sizes == [784, 12 * 24 * 24, 12 * 12 * 12, 64 * 8 * 8, 64 * 4 * 4, 10]
        if net.input_coding != "fs":  # (the FS conversion's biases are its ⌊θ/2⌋ rounding offsets)
            assert not any(np.any(layer.bias) for layer in net.layers), "Diehl's ConvNet is bias-free"
    kinds = {k: [layer.neuron.kind for layer in net.layers] for k, net in networks.items()}
    assert kinds == {"rate": ["if"] * 5, "weighted": ["ws"] * 4 + ["acc"], "fs": ["fs"] * 4 + ["acc"]}


@pytest.mark.parametrize("coding", CODINGS)
def test_convnet_is_bit_and_cycle_exact(convnet, engines, coding, tmp_path):
    _, networks, spikes, labels = convnet
    net = networks[coding]
    config = config_for_networks(networks.values(), lanes=LANES)  # one build (with FS hardware) for all three
    assert config.fs and config.spatial
    rtl = cosimulate(net, spikes[coding], engine=engines(config), work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes[coding], lanes=LANES)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert rtl.problems == []
    np.testing.assert_array_equal(rtl.trace.predictions, golden.predictions)
    if coding == "fs":
        assert rtl.fs.counts.tolist() == [N_IMAGES], "all images stream through one start"
        check_stream(net, rtl, golden)
    else:
        np.testing.assert_array_equal(rtl.hardware_totals, golden.counters.sum(axis=(1, 2)))
    # every hidden layer is active, and the converted network classifies these images
    assert all(s.any() for s in golden.spikes[:-1])
    accuracy = float((golden.predictions == labels).mean())
    assert accuracy >= 0.8, f"{coding}: golden accuracy {accuracy:.2f} on {N_IMAGES} test images"
    # conv layers: cycles beyond the fixed part are R·G_l, i.e. ACs/P up to the padding lanes of G_l·P ≥ c_out
    plans = cycle_model.network_plans(net, LANES)
    cycles, acs = golden.counter("cycles").sum(axis=(0, 1)), golden.counter("acs").sum(axis=(0, 1))
    active = golden.counter("state_reads").sum(axis=(0, 1)) // np.array([p.state_words for p in plans])
    for l, (layer, plan) in enumerate(zip(net.layers, plans)):
        if layer.kind == "conv2d":
            variable = cycles[l] - active[l] * (plan.words + plan.state_words + cycle_model.C_LAYER)
            assert variable * layer.weight.shape[0] == acs[l] * plan.groups
    print(f"\nConvNet {coding}: {rtl.summary()}; golden accuracy {accuracy:.2f}")
