"""ANN import, normalisation (Diehl 2015 Alg. 1/2, Rueckauer 2017 percentile), quantisation and convert()."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from golden.conversion.ann_import import forward_ops, import_network
from golden.conversion.convert import convert
from golden.conversion.normalize import activation_stats, data_based, model_based, normalize, percentile_based
from golden.conversion.quantize import quantize
from golden.core.errors import DataError, SnnCosimError, UnsupportedLayerError, WidthError
from golden.core.macs import ann_macs
from golden.core.network import IntegerNetwork, NeuronParams
from golden.data.mnist import default_split, to_unit
from golden.training.ann_trainer import make_convnet, make_mlp


@pytest.fixture(scope="module")
def codes():
    """300 uint8 MNIST images (calibration data)."""
    return default_split().train_images[:300]


def seeded(builder, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    return builder(*args, **kwargs).eval()


@pytest.fixture(scope="module")
def mlp():
    return seeded(make_mlp, (32, 16), dropout=0.5)


@pytest.fixture(scope="module")
def convnet():
    return seeded(make_convnet, (4, 6), dropout=0.5)


def randomise_bn(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


# ------------------------------------------------------------------------------------------------ import
def test_bn_folding_is_exact():
    torch.manual_seed(1)
    dense = randomise_bn(nn.Sequential(nn.Flatten(), nn.Linear(784, 20, bias=False), nn.BatchNorm1d(20), nn.ReLU(),
                                       nn.Linear(20, 10), nn.BatchNorm1d(10)))
    conv = randomise_bn(nn.Sequential(nn.Conv2d(1, 3, 5), nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2),
                                      nn.Flatten(), nn.Linear(3 * 12 * 12, 10)))
    x = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    for model, shape, n_ops in ((dense, None, 2), (conv, (1, 28, 28), 3)):
        ops = import_network(model, shape)
        assert len(ops) == n_ops  # every BatchNorm merged into its Linear/Conv2d
        with torch.no_grad():
            expected = copy.deepcopy(model).double()(x)  # eval-mode statistics
        assert torch.allclose(forward_ops(ops, x), expected, rtol=1e-10, atol=1e-12)
    assert import_network(dense)[0].name == "1+2"


def test_dropout_is_dropped(mlp):
    ops = import_network(mlp, (28, 28))
    assert [(op.kind, op.name, op.relu_after) for op in ops] == [
        ("linear", "1", True), ("linear", "4", True), ("linear", "7", False)]
    x = torch.rand(3, 784, dtype=torch.float64)
    mlp.train()  # import uses eval semantics whatever the model's mode; the model's mode is restored
    try:
        ops_train_mode = import_network(mlp)
        assert mlp.training
    finally:
        mlp.eval()
    with torch.no_grad():
        assert torch.allclose(forward_ops(ops_train_mode, x), copy.deepcopy(mlp).double()(x))


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act, self.out = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.act(self.fc(x)) + x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


@pytest.mark.parametrize("layer, name, hint", [
    (nn.Sigmoid(), "Sigmoid", "use nn.ReLU"), (nn.Tanh(), "Tanh", "use nn.ReLU"), (nn.GELU(), "GELU", "use nn.ReLU"),
    (nn.SiLU(), "SiLU", "use nn.ReLU"), (nn.LeakyReLU(), "LeakyReLU", "use nn.ReLU"),
])
def test_rejected_activations_name_the_module(layer, name, hint):
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Identity(), layer), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match=f"'1.1' \\({name}\\).*{hint}"):
        import_network(model)


def test_maxpool_rejected():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 13 * 13, 2))
    with pytest.raises(UnsupportedLayerError, match=r"'2' \(MaxPool2d\).*use AvgPool2d \(Diehl 2015 §3"):
        import_network(model, (1, 28, 28))


@pytest.mark.parametrize("model, pattern", [
    (FunctionalRelu(), "FunctionalRelu.forward calls relu.*use nn.ReLU modules so the converter can see them"),
    (nn.Sequential(Block(), nn.Linear(4, 2)), r"'0' \(Block\).forward calls relu.*use nn.ReLU modules"),
    (Residual(), r"Residual.forward: a residual addition must add a shortcut.*before its ReLU"),
    (nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), "hidden layer '0'.*not followed by nn.ReLU"),
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Softmax(dim=1)), r"'2' \(Softmax\)"),
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2)), r"'2' \(BatchNorm1d\)"),
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.LSTM(4, 4)), r"'2' \(LSTM\) is not supported"),
])
def test_rejected_structures(model, pattern):
    with pytest.raises(UnsupportedLayerError, match=pattern):
        import_network(model, (4,))


def test_input_shape_must_match(mlp, convnet):
    with pytest.raises(UnsupportedLayerError, match=r"'1' \(Linear\) expects 784 inputs but receives 400"):
        import_network(mlp, (1, 20, 20))
    with pytest.raises(UnsupportedLayerError, match="pass input_shape"):
        import_network(convnet)
    with pytest.raises(UnsupportedLayerError, match=r"'0' \(Conv2d\) expects input \(channels=1"):
        import_network(convnet, (3, 28, 28))


def test_conv_padding_stride_and_view(codes):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.fc = nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False), nn.ReLU(), \
                nn.Linear(2 * 14 * 14, 10, bias=False)

        def forward(self, x):
            return self.fc(self.act(self.conv(x)).view(x.size(0), -1))

    torch.manual_seed(0)
    net = Net().eval()
    ops = import_network(net, (1, 28, 28))
    assert ops[0].out_shape == (2, 14, 14) and ops[0].padding == (1, 1) and ops[0].stride == (2, 2)
    x = to_unit(codes[:5]).double().reshape(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(forward_ops(ops, x), net.double()(x))


# ------------------------------------------------------------------------------------------------ normalisation
def test_model_based_guarantee(mlp):
    ops = import_network(mlp)
    result = model_based(ops)
    for op in result.ops[:-1]:  # every hidden neuron's per-step positive input is at most 1 (Diehl Alg. 1)
        assert op.max_positive_input() <= 1 + 1e-12
        assert op.max_positive_input() == pytest.approx(1.0)
    assert np.array_equal(result.ops[-1].weight, ops[-1].weight)  # output layer not normalised
    assert result.weight_factors[:2] == pytest.approx([1 / ops[0].max_positive_input(),
                                                       1 / ops[1].max_positive_input()])


def test_data_based_activations_are_a_over_lambda(mlp, codes):
    ops = import_network(mlp)
    x = to_unit(codes).double()
    result = data_based(ops, x)
    original = forward_ops(ops, x, return_all=True)
    normalised = forward_ops(result.ops, x, return_all=True)
    for op, lam, a, a_norm in zip(ops, result.lambdas, original, normalised):
        assert lam == pytest.approx(max(op.max_weight(), float(a.max())))
        assert torch.allclose(a_norm, a / lam, rtol=1e-10, atol=1e-12)
    for a_norm in normalised:
        assert float(a_norm.max()) <= 1 + 1e-12


def test_percentile_lambdas(mlp, codes):
    ops = import_network(mlp)
    x = to_unit(codes).double()
    result = percentile_based(ops, x, percentile=99.0)
    for a, lam in zip(forward_ops(ops, x, return_all=True), result.lambdas):
        positive = a[a > 0].numpy()
        assert lam == pytest.approx(np.percentile(positive, 99.0), rel=1e-6)
    assert result.lambdas[0] < data_based(ops, x).lambdas[0]
    with pytest.raises(SnnCosimError, match="percentile"):
        percentile_based(ops, x, percentile=0)


def test_normalize_errors(mlp, codes):
    ops = import_network(mlp)
    with pytest.raises(DataError, match="calibration images"):
        normalize(ops, None, method="data")
    with pytest.raises(SnnCosimError, match="'max'"):
        normalize(ops, to_unit(codes), method="max")
    with pytest.raises(DataError, match="do not match"):
        activation_stats(ops, torch.rand(3, 10))


def test_avgpool_is_a_normalised_layer(convnet, codes):
    ops = import_network(convnet, (1, 28, 28))
    x = to_unit(codes[:50]).double().reshape(-1, 1, 28, 28)
    result = data_based(ops, x)
    pool = result.ops[1]
    assert pool.kind == "avgpool2d"
    assert float(pool.weight) == pytest.approx(0.25 * result.lambdas[0] / result.lambdas[1])
    assert model_based(ops).lambdas[1] == pytest.approx(model_based(ops).lambdas[0])  # M = 4·(1/4) = 1


# ------------------------------------------------------------------------------------------------ quantisation
@pytest.mark.parametrize("method", ["data", "model", "percentile"])
def test_quantised_network_validates_and_round_trips(mlp, codes, method, tmp_path):
    result = convert(mlp, codes, method=method, neuron=NeuronParams(reset="subtract"))
    net = result.integer
    assert net.validate() is net
    assert net.input_shape == (784,) and net.layer_sizes == [784, 32, 16, 10]
    for layer, op, s in zip(net.layers, result.normalization.ops, result.scales):
        assert layer.weight.dtype == np.int64 and np.abs(layer.weight).max() <= 127
        assert np.abs(layer.weight).max() >= 120  # the scale uses the weight range
        assert np.all(layer.threshold == s) and layer.neuron.reset == "subtract"
        assert np.abs(layer.weight / s - op.weight).max() <= 0.5 / s + 1e-12  # W_int/θ ≈ W'
    meta = net.metadata
    assert meta["normalization"]["method"] == method and meta["normalization"]["lambdas"] == pytest.approx(
        result.lambdas)
    assert meta["quantization"]["scales"] == result.scales
    loaded = IntegerNetwork.load(net.save(tmp_path / "net"))
    for a, b in zip(net.layers, loaded.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.threshold, b.threshold)
        assert np.array_equal(a.bias, b.bias) and a.neuron == b.neuron
    assert loaded.metadata["normalization"]["lambdas"] == pytest.approx(result.lambdas)


def test_float_network(mlp, codes):
    result = convert(mlp, codes)
    fnet = result.float_network
    assert [layer.kind for layer in fnet.layers] == ["dense"] * 3
    for layer, op in zip(fnet.layers, result.normalization.ops):
        assert layer.weight.dtype == np.float64 and np.array_equal(layer.weight, op.weight)
        assert np.all(layer.threshold == 1.0)
    assert result.lambdas == result.normalization.lambdas


def test_width_errors(mlp, codes):
    with pytest.raises(WidthError, match="membrane_bits=(1[2-9]|2[0-9])"):
        convert(mlp, codes, weight_bits=8, membrane_bits=10)
    with pytest.raises(WidthError, match=r"weight_bits=\d+ or a smaller scale"):
        convert(mlp, codes, scale=100000)
    # percentile 1: λ_1 far below the weights, so one weight is worth several thresholds — more than 2 bits hold
    with pytest.raises(WidthError, match=r"thresholds, more than weight_bits=2 can hold.*use weight_bits=\d"):
        convert(mlp, codes, method="percentile", percentile=1.0, weight_bits=2)


def test_fixed_scale(mlp, codes):
    result = convert(mlp, codes, scale=[50, 60, 70], weight_bits=16)
    assert result.scales == [50, 60, 70]
    assert [int(layer.threshold[0]) for layer in result.integer.layers] == [50, 60, 70]


def test_conv_and_avgpool_conversion(convnet, codes):
    result = convert(convnet, codes[:100])  # [N, 28, 28] images: the channel axis is added for a conv net
    net = result.integer
    assert [layer.kind for layer in net.layers] == ["conv2d", "avgpool2d", "conv2d", "avgpool2d", "dense"]
    assert [layer.out_shape for layer in net.layers] == [(4, 24, 24), (4, 12, 12), (6, 8, 8), (6, 4, 4), (10,)]
    assert net.input_shape == (1, 28, 28)
    pool = net.layers[1]
    assert isinstance(pool.weight, int) and 1 <= pool.weight <= 127
    assert pool.threshold.shape == (4,) and np.all(pool.threshold == result.scales[1])
    assert net.layers[2].threshold.shape == (6,) and net.layers[2].bias.shape == (6,)
    assert result.float_network.layers[1].weight == pytest.approx(float(result.normalization.ops[1].weight))
    # the conversion record's ANN MACs: conv 5×5, pool 2×2, conv 5×5, pool 2×2, dense
    assert net.metadata["ann"]["mac_count"] == ann_macs(net) == (4 * 24 * 24 * 1 * 25 + 4 * 12 * 12 * 4
                                                                 + 6 * 8 * 8 * 4 * 25 + 6 * 4 * 4 * 4 + 10 * 96)


def test_direct_coding(mlp, codes):
    rate = convert(mlp, codes)
    direct = convert(mlp, codes, input_coding="direct")
    assert direct.integer.input_coding == "direct"
    assert np.all(direct.integer.layers[0].threshold == 255 * rate.integer.layers[0].threshold)
    assert np.array_equal(direct.integer.layers[0].weight, rate.integer.layers[0].weight)
    assert np.all(direct.integer.layers[1].threshold == rate.integer.layers[1].threshold)
    assert np.allclose(direct.float_network.layers[0].weight * 255, rate.float_network.layers[0].weight)
    with pytest.raises(SnnCosimError, match="max_rate"):
        convert(mlp, codes, input_coding="direct", max_rate=0.5)


def test_biases_from_batch_norm(codes):
    torch.manual_seed(3)
    model = randomise_bn(nn.Sequential(nn.Flatten(), nn.Linear(784, 12, bias=False), nn.BatchNorm1d(12), nn.ReLU(),
                                       nn.Linear(12, 10, bias=False)))
    result = convert(model, codes, input_coding="direct")
    op, layer, s = result.normalization.ops[0], result.integer.layers[0], result.scales[0]
    assert np.array_equal(layer.bias, np.rint(op.bias * s * 255).astype(np.int64))
    assert np.abs(layer.bias).max() > 0
    half = convert(model, codes, max_rate=0.5)
    assert np.allclose(half.normalization.ops[0].bias, result.normalization.ops[0].bias * 0.5)


def test_calibration_images(mlp, codes):
    from_codes = convert(mlp, codes).lambdas
    from_floats = convert(mlp, to_unit(codes)).lambdas
    assert from_codes == pytest.approx(from_floats, rel=1e-6)
    with pytest.raises(DataError, match=r"not in \[0, 1\]"):
        convert(mlp, codes.float())
    with pytest.raises(DataError, match="dtype"):
        convert(mlp, codes.long())
    with pytest.raises(DataError, match="do not match"):
        convert(mlp, torch.rand(5, 100))


def test_integer_network_runs_in_the_simulator(mlp, codes):
    simulate = pytest.importorskip("golden.simulation.simulate")
    encoding = pytest.importorskip("golden.simulation.encoding")
    result = convert(mlp, codes)
    spikes = encoding.rate_encode(codes[:4], 8, max_rate=1.0, seed=0)
    trace = simulate.IntegerSimulator(result.integer, device="cpu").run(spikes)
    assert trace.predictions.shape == (4,)


def test_model_based_needs_no_images(mlp):
    result = convert(mlp, None, method="model")
    assert result.integer.metadata["conversion"]["calibration_images"] == 0
    assert result.lambdas[-1] == result.lambdas[-2]  # the output layer is not normalised (Diehl §IV-B)
    with pytest.raises(DataError, match="calibration images"):
        convert(mlp, None, method="data")


def test_quantize_applies_neuron_params_to_every_layer(mlp, codes):
    normalization = data_based(import_network(mlp), to_unit(codes).double())
    lif = NeuronParams(kind="lif", reset="zero", leak_shift=4, floor=-1000)
    net = quantize(normalization, weight_bits=6, membrane_bits=20, neuron=lif)
    assert all(layer.neuron == lif for layer in net.layers) and net.weight_bits == 6
    assert max(int(np.abs(layer.weight).max()) for layer in net.layers) == 31
    with pytest.raises(SnnCosimError, match="input_coding"):
        quantize(normalization, input_coding="temporal")
