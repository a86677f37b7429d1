"""Conversion of residual ANNs (golden.ann.import_residual_network, golden.residual): torch.fx import of
``relu(main + shortcut)`` blocks, Sengupta 2019 §6 rules (ReLU at each junction, equal thresholds of the fan-in
layers, plain input layers) with clear errors, and the converted integer network tracking the ANN."""

import numpy as np
import pytest
import torch
from torch import nn

from golden.ann import forward_ops, import_network, import_residual_network
from golden.errors import UnsupportedLayerError
from golden.residual import BasicBlock, convert_residual
from golden.encoding import rate_encode
from golden.simulate import IntegerSimulator


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
