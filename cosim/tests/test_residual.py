"""Residual junctions (issue 6) on the RTL: a small residual network — conv → conv → conv (+ identity skip) →
conv stride 2 → conv (+ 1×1 stride-2 downsampling skip) → avgpool → dense (+ dense skip) — with random signed
integer weights and small membranes (saturation), IF-zero and LIF-subtract on one build, bit- and cycle-exact
against the golden model under Verilator; and a ResNet converted from a small trained ANN."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.session import config_for_networks
from golden.core.network import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, SkipConnection,
                                 identity_skip)
from hw.config import EngineConfig

from .conftest import random_spikes, run_and_check


def _network(seed: int, neuron: NeuronParams, *, output: NeuronParams | None = None, membrane_bits: int = 7,
             **coding) -> IntegerNetwork:
    rng = np.random.default_rng(seed)

    def conv(c_in, c_out, h, stride=1):
        return Conv2dLayer(rng.integers(-5, 7, (c_out, c_in, 3, 3)), rng.integers(-2, 3, c_out),
                           rng.integers(4, 12, c_out), (c_in, h, h), (stride, stride), (1, 1), neuron)

    layers = [conv(2, 4, 8), conv(4, 4, 8), conv(4, 4, 8), conv(4, 6, 8, 2), conv(6, 6, 4),
              AvgPool2dLayer(2, rng.integers(2, 6, 6), (6, 4, 4), (2, 2), (2, 2), neuron),
              DenseLayer(rng.integers(-6, 8, (5, 24)), rng.integers(-2, 3, 5), rng.integers(3, 10, 5),
                         output or neuron)]
    skips = [identity_skip(3, 1, 4, scale=3), SkipConnection(5, 3, rng.integers(-5, 7, (6, 4, 1, 1)), (2, 2)),
             SkipConnection(7, 5, rng.integers(-4, 5, (5, 96)))]
    return IntegerNetwork((2, 8, 8), layers, weight_bits=5, membrane_bits=membrane_bits, skips=skips,
                          **coding).validate()


@pytest.mark.parametrize("neuron", [NeuronParams("if", "zero"), NeuronParams("lif", "subtract", leak_shift=2)],
                         ids=["if-zero", "lif-subtract"])
def test_random_residual_network_is_bit_and_cycle_exact(engines, neuron, tmp_path):
    net = _network(17, neuron)
    config = EngineConfig.for_network(net, lanes=4, acc_bits=16, bias_bits=4, threshold_bits=6)
    spikes = random_spikes(np.random.default_rng(6), 3, 6, net.n_inputs)
    rtl, golden = run_and_check(net, spikes, engines(config), tmp_path, lanes=4, config=config)
    assert (golden.counter("saturations") > 0).any()
    for skip in net.skips:  # every skip source and junction is active
        assert golden.spikes[skip.source - 1].any() and golden.spikes[skip.target - 1].any()


WS_K = 3  # the random weighted-spike residual network: K = 3 phases, S = 1 skipped period


def test_random_weighted_spike_residual_network_is_bit_and_cycle_exact(engines, tmp_path):
    """Kim 2018 'ws' hidden layers and an 'acc' output on the same residual shape: the skip pass adds into the
    accumulator and the UPDATE shifts main + skip + bias by K−k. The membrane is the smallest width the IR's
    headroom check (every layer and junction, << (K−1)) accepts, so the 'acc' output saturates."""
    from golden.core.errors import WidthError
    from golden.simulation.encoding import weighted_encode

    coding = dict(input_coding="weighted", input_bits=WS_K, phases=WS_K, skip_periods=1)
    for bits in range(8, 16):  # smallest membrane the IR accepts
        try:
            net = _network(17, NeuronParams("ws", "subtract"), output=NeuronParams("acc"), membrane_bits=bits,
                           **coding)
            break
        except WidthError:
            continue
    config = EngineConfig.for_network(net, lanes=4)
    codes = np.random.default_rng(7).integers(0, 1 << WS_K, (3, net.n_inputs))
    spikes = weighted_encode(codes, 8 * WS_K, WS_K).numpy()  # 8 periods, time-major
    rtl, golden = run_and_check(net, spikes, engines(config), tmp_path, lanes=4, config=config)
    assert (golden.counter("saturations") > 0).any()
    for skip in net.skips[:-1]:  # every hidden junction and its skip source fire
        assert golden.spikes[skip.source - 1].any() and golden.spikes[skip.target - 1].any()


# ----------------------------------------------------------------------------- the converted trained ResNet
N_IMAGES = 10
RESNET_STEPS = 30  # rate coding, T = 30 steps
RESNET_LANES = 8  # P: the 8-channel layers fill one group, the 16-channel ones take two


@pytest.fixture(scope="module")
def converted_resnet():
    """``default_resnet`` (10 weight layers, cached) converted with Sengupta's rules: Spike-Norm on a small
    calibration set (32 training images x 30 steps keeps the conversion near 10 s), IF reset by subtraction."""
    import torch

    from golden.conversion.residual import convert_residual, default_resnet
    from golden.data.mnist import default_split
    from golden.simulation.encoding import rate_encode

    split = default_split()
    model = default_resnet()
    conversion = convert_residual(model, split.train_images[:32], input_shape=(1, 28, 28), method="spikenorm",
                                  neuron=NeuronParams("if", "subtract"), spikenorm_steps=30)
    pixels = torch.as_tensor(np.asarray(split.test_images[:N_IMAGES])).reshape(N_IMAGES, -1)
    spikes = rate_encode(pixels, RESNET_STEPS, seed=0).numpy()  # time-major [T, N, 784]
    return model, conversion, spikes, np.asarray(split.test_labels[:N_IMAGES])


WS_RESNET_K, WS_RESNET_PERIODS = 4, 10  # weighted spikes: K = 4, 10 periods = 40 steps


@pytest.fixture(scope="module")
def converted_resnet_weighted():
    """The same ResNet converted for weighted spikes (Kim 2018, K = 4): percentile normalisation on 64 training
    images (quantised to their upper 4 bits), 'ws' hidden layers, 'acc' output, Sengupta's rules."""
    from golden.conversion.residual import convert_residual, default_resnet
    from golden.data.mnist import default_split
    from golden.simulation.encoding import weighted_encode

    split = default_split()
    conversion = convert_residual(default_resnet(), split.train_images[:64], input_shape=(1, 28, 28),
                                  method="percentile", input_coding="weighted", phases=WS_RESNET_K)
    pixels = np.asarray(split.test_images[:N_IMAGES]).reshape(N_IMAGES, -1).astype(np.int64)
    codes = conversion.input_codes(pixels)
    spikes = weighted_encode(codes, WS_RESNET_PERIODS * WS_RESNET_K, WS_RESNET_K).numpy()
    return conversion, spikes, np.asarray(split.test_labels[:N_IMAGES])


@pytest.fixture(scope="module")
def resnet_config(converted_resnet, converted_resnet_weighted):
    """One build for the rate and the weighted-spike ResNet (widths: the maxima of both)."""
    return config_for_networks([converted_resnet[1].integer, converted_resnet_weighted[0].integer],
                               lanes=RESNET_LANES)


def test_converted_resnet_is_bit_and_cycle_exact(engines, converted_resnet, resnet_config, tmp_path):
    model, conversion, spikes, labels = converted_resnet
    net = conversion.integer
    assert len(net.layers) == 10 and len(net.skips) == 3
    assert conversion.groups == [[2, 3, 4, 5, 6, 7, 8]], "the three blocks chain into one threshold group"
    config = resnet_config
    rtl, golden = run_and_check(net, spikes, engines(config), tmp_path, lanes=RESNET_LANES, config=config)
    for skip in net.skips:  # every shortcut carries spikes into an active junction
        assert golden.spikes[skip.source - 1].any() and golden.spikes[skip.target - 1].any()
    assert model.test_accuracy >= 0.9, "the trained ResNet should classify the test part"
    accuracy = float((golden.predictions == labels).mean())
    assert accuracy >= 0.8, f"golden accuracy {accuracy:.2f} on {N_IMAGES} test images after {RESNET_STEPS} steps"
    print(f"\nconverted ResNet: {rtl.summary()}; golden accuracy {accuracy:.2f}")


def test_converted_resnet_with_weighted_spikes_is_bit_and_cycle_exact(engines, converted_resnet_weighted,
                                                                       resnet_config, tmp_path):
    conversion, spikes, labels = converted_resnet_weighted
    net = conversion.integer
    assert [layer.neuron.kind for layer in net.layers] == ["ws"] * 9 + ["acc"] and len(net.skips) == 3
    rtl, golden = run_and_check(net, spikes, engines(resnet_config), tmp_path, lanes=RESNET_LANES,
                                config=resnet_config)
    for skip in net.skips:  # every shortcut carries spikes into an active junction
        assert golden.spikes[skip.source - 1].any() and golden.spikes[skip.target - 1].any()
    accuracy = float((golden.predictions == labels).mean())
    assert accuracy >= 0.8, (f"golden accuracy {accuracy:.2f} on {N_IMAGES} test images after "
                             f"{WS_RESNET_PERIODS} periods of K = {WS_RESNET_K}")
    print(f"\nconverted ResNet, weighted spikes K = {WS_RESNET_K}: {rtl.summary()}; golden accuracy {accuracy:.2f}")
