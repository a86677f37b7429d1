"""Conversion of residual ANNs (golden.conversion.ann_import.import_residual_network, golden.conversion.residual): torch.fx import of
``relu(main + shortcut)`` blocks, Sengupta 2019 §6 rules (ReLU at each junction, equal thresholds of the fan-in
layers, plain input layers) with clear errors, and the converted integer network tracking the ANN."""

import numpy as np
import pytest
import torch
from torch import nn

from golden.conversion.ann_import import forward_ops, import_network, import_residual_network
from golden.conversion.residual import BasicBlock, convert_residual
from golden.core.errors import UnsupportedLayerError
from golden.core.network import NeuronParams
from golden.simulation.encoding import rate_encode
from golden.simulation.simulate import IntegerSimulator


def small_resnet():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1, bias=False), nn.ReLU(), nn.Conv2d(4, 4, 3, 1, 1, bias=False),
                         nn.ReLU(), BasicBlock(4, 4), BasicBlock(4, 8, 2), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 2 * 2, 3, bias=False))


def test_import_finds_identity_and_projection_shortcuts():
    model = small_resnet()
    ops, skips = import_residual_network(model, (1, 8, 8))
    assert [op.kind for op in ops] == ["conv2d"] * 6 + ["avgpool2d", "linear"]
    assert [(s.target, s.source, s.op is None) for s in skips] == [(4, 2, True), (6, 4, False)]
    assert skips[1].op.stride == (2, 2) and skips[1].op.kernel == (1, 1)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    expected = model.double()(x)
    np.testing.assert_allclose(forward_ops(ops, x, skips=skips).numpy(), expected.detach().numpy(), rtol=1e-9)
    with pytest.raises(UnsupportedLayerError, match="residual additions"):
        import_network(model, (1, 8, 8))


class NoJunctionRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.r0 = nn.Conv2d(1, 2, 3, 1, 1), nn.ReLU()
        self.c1, self.r1, self.c2 = nn.Conv2d(2, 2, 3, 1, 1), nn.ReLU(), nn.Conv2d(2, 2, 3, 1, 1)
        self.fc = nn.Linear(2 * 4 * 4, 2)

    def forward(self, x):
        x = self.r0(self.c0(x))
        return self.fc((self.c2(self.r1(self.c1(x))) + x).flatten(1))


class InputShortcut(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.r1, self.c2, self.r2 = nn.Conv2d(1, 1, 3, 1, 1), nn.ReLU(), nn.Conv2d(1, 1, 3, 1, 1), nn.ReLU()
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.r2(self.c2(self.r1(self.c1(x))) + x).flatten(1))


def test_rule_violations_are_clear_errors():
    with pytest.raises(UnsupportedLayerError, match="ReLU at each junction"):
        import_residual_network(NoJunctionRelu(), (1, 4, 4))
    with pytest.raises(UnsupportedLayerError, match="plain .*input layers"):
        convert_residual(InputShortcut(), torch.rand(4, 1, 4, 4), input_shape=(1, 4, 4))


@pytest.mark.parametrize("method", ["data", "model", "spikenorm"])
def test_converted_network_shares_thresholds_and_tracks_the_ann(method):
    model = small_resnet()
    images = torch.rand(32, 1, 8, 8, dtype=torch.float64)
    conv = convert_residual(model, images, input_shape=(1, 8, 8), method=method, spikenorm_steps=30)
    net = conv.integer
    assert [(s.target, s.source, s.kind) for s in net.skips] == [(4, 2, "conv2d"), (6, 4, "conv2d")]
    assert conv.groups == [[2, 3, 4, 5, 6]]
    assert len({conv.lambdas[m - 1] for m in conv.groups[0]}) == 1  # rule 2: one λ per group
    identity = net.skips[0].weight[:, :, 0, 0]
    assert np.count_nonzero(identity - np.diag(np.diag(identity))) == 0  # identity stays diagonal
    # every normalised junction weight fits: θ = the layer's scale, |W|, |S| ≤ 127
    assert max(int(np.abs(s.weight).max()) for s in net.skips) <= 127
    if method != "model":  # the SNN's output spike counts follow the ANN's class on most images
        x = rate_encode(torch.round(images.reshape(32, -1) * 255).to(torch.int64), 200, seed=3)
        trace = IntegerSimulator(net, device="cpu").run(x)
        ann = model.double()(images).argmax(1).numpy()
        assert (trace.predictions == ann).mean() >= 0.6


# ----------------------------------------------------------------------------------------- weighted spikes (Kim 2018)
def test_weighted_spike_conversion_reuses_the_plain_normalisation():
    from golden.conversion.convert import _quantise_calibration
    from golden.conversion.residual import residual_lambdas
    from golden.core.errors import SnnCosimError
    from golden.simulation.encoding import weighted_encode

    model = small_resnet()
    images = torch.rand(32, 1, 8, 8, dtype=torch.float64)
    K = 4
    conv = convert_residual(model, images, input_shape=(1, 8, 8), method="data", input_coding="weighted", phases=K,
                            skip_periods=1)
    net = conv.integer
    assert (net.input_coding, net.phases, net.skip_periods, net.input_bits) == ("weighted", K, 1, K)
    assert [layer.neuron.kind for layer in net.layers] == ["ws"] * 7 + ["acc"]
    assert all(layer.neuron.reset == "subtract" for layer in net.layers[:-1])
    # λ' = λ/(1 − 2^-K) of the rate path's λ measured on the images reduced to their upper K bits
    rate_lambdas, groups = residual_lambdas(conv.ops, conv.skips, "data", _quantise_calibration(images, K))
    np.testing.assert_allclose(conv.lambdas, np.array(rate_lambdas) / (1 - 2.0 ** -K), rtol=1e-12)
    assert groups == conv.groups == [[2, 3, 4, 5, 6]]
    # layer 1 folds the input factor 256/255 · (1 − 2^-K)/λ_1 (before rounding)
    w1 = conv.ops[0].weight * (256 / 255) / conv.lambdas[0] * conv.scales[0]
    np.testing.assert_array_equal(net.layers[0].weight, np.rint(w1).astype(np.int64))
    pixels = torch.round(images.reshape(32, -1) * 255).to(torch.int64)
    codes = conv.input_codes(pixels)
    assert int(codes.max()) < 1 << K and torch.equal(codes, pixels >> (8 - K))
    trace = IntegerSimulator(net, device="cpu").run(weighted_encode(codes, 12 * K, K))
    ann = model.double()(_quantise_calibration(images, K)).argmax(1).numpy()
    assert (trace.predictions == ann).mean() >= 0.6
    with pytest.raises(SnnCosimError, match="Spike-Norm"):
        convert_residual(model, images, input_shape=(1, 8, 8), method="spikenorm", input_coding="weighted", phases=K)
    with pytest.raises(SnnCosimError, match="needs phases"):
        convert_residual(model, images, input_shape=(1, 8, 8), input_coding="weighted")
    with pytest.raises(SnnCosimError, match="fix the neurons"):
        convert_residual(model, images, input_shape=(1, 8, 8), input_coding="weighted", phases=K,
                         neuron=NeuronParams("if", "zero"))


def test_default_resnet_with_weighted_spikes_reaches_the_ann():
    """The trained ResNet (10 weight layers) with K = 4, percentile normalisation and Sengupta's rules: on 100 test
    images the 'acc' output after 12 periods is within 3 pp of the ANN (1 pp at ~12 periods when measured)."""
    from golden.conversion.residual import default_resnet
    from golden.data.mnist import default_split
    from golden.simulation.encoding import weighted_encode
    from golden.simulation.simulate import accuracy_curve
    from golden.training.ann_trainer import evaluate

    split = default_split()
    model = default_resnet()
    n, K = 100, 4
    conv = convert_residual(model, split.train_images[:256], input_shape=(1, 28, 28), method="percentile",
                            input_coding="weighted", phases=K)
    assert len(conv.integer.skips) == 3 and conv.groups == [[2, 3, 4, 5, 6, 7, 8]]
    ann = evaluate(model, split.test_images[:n].unsqueeze(1), split.test_labels[:n])
    codes = conv.input_codes(split.test_images[:n].reshape(n, -1).to(torch.int64))
    curve = accuracy_curve(IntegerSimulator(conv.integer, device="cpu"), weighted_encode(codes, 12 * K, K),
                           split.test_labels[:n], [2 * K, 12 * K], batch_size=50)
    assert curve[12 * K] >= ann - 0.03, f"SNN {curve[12 * K]:.2f} after 12 periods, ANN {ann:.2f}"
    assert curve[2 * K] < curve[12 * K]  # the deep residual stream needs a few periods (latency of shared λ)
