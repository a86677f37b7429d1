"""ANN → weighted-spike SNN conversion (Kim 2018 §4.1–4.2; docs/conversion.md "Weighted spikes")."""

import numpy as np
import pytest
import torch

from cosim.app.options import JobOptions
from golden.conversion.ann_import import forward_ops
from golden.conversion.convert import convert, weighted_codes
from golden.core.errors import SnnCosimError, WidthError
from golden.core.network import IntegerNetwork, NeuronParams
from golden.data.mnist import default_split, to_unit
from golden.simulation.encoding import pixel_codes_to_phases, weighted_encode
from golden.simulation.neurons import FloatNeuron, IntegerNeuron
from golden.simulation.simulate import FloatSimulator, IntegerSimulator
from golden.training.ann_trainer import make_convnet, make_mlp, train

WS = NeuronParams("ws", "subtract")
ACC = NeuronParams("acc")


@pytest.fixture(scope="module")
def split():
    return default_split()


@pytest.fixture(scope="module")
def codes(split):
    """300 uint8 MNIST training images (calibration data)."""
    return split.train_images[:300]


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return make_mlp((32, 16), dropout=0.5).eval()


@pytest.fixture(scope="module")
def trained(split):
    """A small MLP trained for a few seconds (~85 % test accuracy): predictions that are not mostly ties."""
    torch.manual_seed(0)
    model = make_mlp((48,), dropout=0.0)
    return train(model, split.train_images[:2000], split.train_labels[:2000], epochs=2, lr=5e-3, seed=0,
                 progress=False)


# ------------------------------------------------------------------------------------------------ structure
def test_weighted_network_validates_and_round_trips(mlp, codes, tmp_path):
    result = convert(mlp, codes, input_coding="weighted", phases=4, skip_periods=2)
    net = result.integer
    assert net.validate() is net
    assert net.input_coding == "weighted" and net.input_bits == 4
    assert net.phases == 4 and net.skip_periods == 2
    assert [layer.neuron for layer in net.layers] == [WS, WS, ACC]
    assert [int(layer.threshold[0]) for layer in net.layers] == result.scales  # the acc threshold = s_L
    assert result.decision_scale == result.scales[-1] << 4
    for layer in net.layers:
        assert layer.weight.dtype == np.int64 and 120 <= np.abs(layer.weight).max() <= 127
    quant = net.metadata["quantization"]
    assert quant["phases"] == 4 and quant["skip_periods"] == 2 and quant["input_coding"] == "weighted"
    assert quant["bias_factor"] == pytest.approx(16 / 15)
    assert net.metadata["conversion"]["neuron"]["kind"] == "ws"
    assert net.metadata["conversion"]["output_neuron"] == "acc"
    loaded = IntegerNetwork.load(net.save(tmp_path / "net"))
    assert (loaded.phases, loaded.skip_periods, loaded.input_coding, loaded.input_bits) == (4, 2, "weighted", 4)
    for a, b in zip(net.layers, loaded.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
        assert np.array_equal(a.threshold, b.threshold) and a.neuron == b.neuron


def test_float_network_is_kims_model(mlp, codes):
    result = convert(mlp, codes, input_coding="weighted", phases=8, skip_periods=1)
    fnet = result.float_network
    assert (fnet.phases, fnet.skip_periods, fnet.input_coding, fnet.input_bits) == (8, 1, "weighted", 8)
    assert [layer.neuron for layer in fnet.layers] == [WS, WS, ACC]
    for layer, op in zip(fnet.layers, result.normalization.ops):
        assert np.array_equal(layer.weight, op.weight) and np.all(layer.threshold == 1.0)
        assert np.allclose(layer.bias, op.bias / (1 - 2 ** -8), rtol=1e-12, atol=0)  # Kim's β


def test_normalisation_into_ceiling_and_input_fold(mlp, codes):
    """Activations of the normalised network on u = code/2^K are a_l/λ'_l ≤ 1 − 2^-K, a_l being the ANN's on
    the quantised pixels x = u·256/255 (Kim 2018 §4.1)."""
    k = 4
    result = convert(mlp, codes, input_coding="weighted", phases=k)
    rate = convert(mlp, codes)
    quantised = torch.as_tensor(pixel_codes_to_phases(np.asarray(codes), k)).reshape(len(codes), -1)
    u = quantised.to(torch.float64) / 2 ** k
    x = u * 256 / 255
    assert torch.all(x <= 1) and torch.equal(x, quantised.double() * 16 / 255)
    ann = forward_ops(result.ann_ops, x, return_all=True)
    snn = forward_ops(result.normalization.ops, u, return_all=True)
    ceiling = 1 - 2 ** -k
    for a, a_norm, lam in zip(ann, snn, result.lambdas):
        assert torch.allclose(a_norm, a / lam, rtol=1e-10, atol=1e-12)
    for a_norm in snn[:-1]:
        assert float(a_norm.max()) <= ceiling + 1e-12
    assert result.normalization.weight_factors[0] == pytest.approx(256 / 255 / result.lambdas[0])
    # λ' = λ/(1 − 2^-K), λ measured on the quantised pixels: close to the rate-coded λ, never equal by chance
    before = result.integer.metadata["normalization"]["weighted"]["lambdas_before"]
    assert result.lambdas == pytest.approx([lam / ceiling for lam in before])
    assert before == pytest.approx(rate.lambdas, rel=0.1)


def test_beta_identity(mlp, codes):
    """Σ over one period of ω·β = b (Kim Eq. 8): float exactly; the integer bias to within rounding."""
    for k in (1, 4, 8):
        result = convert(mlp, codes, input_coding="weighted", phases=k)
        for index, (op, f_layer, i_layer, s) in enumerate(zip(result.normalization.ops, result.float_network.layers,
                                                              result.integer.layers, result.scales)):
            beta = f_layer.bias
            period = sum(2.0 ** -phase * beta for phase in range(1, k + 1))
            assert np.allclose(period, op.bias, rtol=1e-12, atol=1e-15)
            assert np.array_equal(i_layer.bias, np.rint(beta * s).astype(np.int64))
            int_period = sum(i_layer.bias << (k - phase) for phase in range(1, k + 1))  # units of 2^-K
            assert np.all(np.abs(int_period - op.bias * s * 2 ** k) <= 2 ** k / 2)
    # the simulator's neurons: one period with no input leaves exactly b in the accumulator
    beta = np.array([0.75, -0.3, 0.0])
    neuron = FloatNeuron(ACC, np.ones(3), beta, phases=4)
    neuron.reset_state(1)
    for t in range(1, 5):
        neuron(torch.zeros(1, 3, dtype=torch.float64), t)
    assert torch.allclose(neuron.v[0], torch.as_tensor(beta * (1 - 2 ** -4)), rtol=0, atol=1e-15)
    integer = IntegerNeuron(ACC, np.ones(3, dtype=np.int64), np.array([16, -5, 0]), 24, phases=4)
    integer.reset_state(1)
    for t in range(1, 5):
        integer(torch.zeros(1, 3, dtype=torch.int64), t)
    assert integer.v[0].tolist() == [16 * 15, -5 * 15, 0]


# ------------------------------------------------------------------------------------------------ behaviour
def test_float_and_integer_networks_agree(trained, split):
    images, labels = split.test_images[:300], np.asarray(split.test_labels[:300])
    result = convert(trained, split.train_images[:500], input_coding="weighted", phases=4, skip_periods=1)
    inputs = weighted_encode(torch.as_tensor(result.input_codes(images)).reshape(300, -1), 16, 4)
    integer_traj = IntegerSimulator(result.integer, device="cpu").output_trajectory(inputs)
    float_traj = FloatSimulator(result.float_network, device="cpu").output_trajectory(inputs)
    integer_pred, float_pred = integer_traj[:, -1].argmax(-1), float_traj[:, -1].argmax(-1)
    assert (integer_pred == float_pred).mean() >= 0.99
    # both are the ANN: after 3 integrated periods within 2 pp of the ANN on the same (quantised) inputs
    x = torch.as_tensor(result.input_codes(images)).reshape(300, -1).double() * 16 / 255
    with torch.no_grad():
        ann_accuracy = (forward_ops(result.ann_ops, x).argmax(-1).numpy() == labels).mean()
    assert (integer_pred == labels).mean() >= ann_accuracy - 0.02
    # decision_scale turns the integer accumulator into activation units (the float trajectory, Eq. 16)
    assert np.abs(integer_traj / result.decision_scale - float_traj).max() < 0.05 * np.abs(float_traj).max()
    assert np.all(integer_traj[:, :4] == 0)  # S = 1: the accumulator is gated during the first period


def test_conv_network_converts_to_weighted_spikes(codes):
    torch.manual_seed(0)
    convnet = make_convnet((4, 6), dropout=0.5).eval()
    result = convert(convnet, codes[:100], input_coding="weighted", phases=3, membrane_bits=28)
    net = result.integer
    assert [layer.kind for layer in net.layers] == ["conv2d", "avgpool2d", "conv2d", "avgpool2d", "dense"]
    assert [layer.neuron.kind for layer in net.layers] == ["ws"] * 4 + ["acc"]
    inputs = weighted_encode(torch.as_tensor(result.input_codes(codes[:3])).reshape(3, -1), 6, 3)
    assert IntegerSimulator(net, device="cpu").run(inputs).predictions.shape == (3,)


def test_input_codes():
    pixels = np.array([[0, 15, 16, 127, 128, 255]], dtype=np.uint8)
    assert weighted_codes(pixels, 4).tolist() == [[0, 0, 1, 7, 8, 15]]
    assert weighted_codes(pixels, 8).tolist() == pixels.tolist()
    assert weighted_codes(torch.as_tensor(pixels), 10).tolist() == [[0, 60, 64, 508, 512, 1020]]
    with pytest.raises(WidthError, match="phases=4"):
        weighted_codes(pixels, 0)


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("phases", [0, 17, -3])
def test_bad_phases(mlp, codes, phases):
    with pytest.raises(WidthError, match=r"K in 1\.\.16.*use phases=4"):
        convert(mlp, codes, input_coding="weighted", phases=phases)


def test_weighted_argument_errors(mlp, codes):
    with pytest.raises(SnnCosimError, match="needs phases=K"):
        convert(mlp, codes, input_coding="weighted")
    with pytest.raises(SnnCosimError, match="skip_periods S = -1"):
        convert(mlp, codes, input_coding="weighted", phases=4, skip_periods=-1)
    with pytest.raises(SnnCosimError, match="max_rate"):
        convert(mlp, codes, input_coding="weighted", phases=4, max_rate=0.5)
    with pytest.raises(SnnCosimError, match="leave neuron unset"):
        convert(mlp, codes, input_coding="weighted", phases=4, neuron=NeuronParams("if", "subtract"))
    assert convert(mlp, codes, input_coding="weighted", phases=4, neuron=WS).integer.layers[0].neuron == WS
    for coding in ("rate", "direct"):
        with pytest.raises(SnnCosimError, match="belong to input_coding='weighted'"):
            convert(mlp, codes, input_coding=coding, phases=4)
        with pytest.raises(SnnCosimError, match="belong to input_coding='weighted'"):
            convert(mlp, codes, input_coding=coding, skip_periods=1)


def test_membrane_too_small_names_the_width_that_works(mlp, codes):
    with pytest.raises(WidthError, match=r"K = 8 phases.*membrane_bits=12 is too small; use membrane_bits=(\d+)") \
            as info:
        convert(mlp, codes, input_coding="weighted", phases=8, membrane_bits=12)
    need = int(info.value.args[0].split("use membrane_bits=")[1].split()[0])
    assert need > 12
    net = convert(mlp, codes, input_coding="weighted", phases=8, membrane_bits=need).integer  # it does work
    assert net.metadata["quantization"]["min_membrane_bits"] == need
    with pytest.raises(WidthError):
        convert(mlp, codes, input_coding="weighted", phases=8, membrane_bits=need - 1)
    # the same weights with K = 1 need 7 bits less headroom
    assert convert(mlp, codes, input_coding="weighted", phases=1, membrane_bits=need - 7).integer.phases == 1


def test_rate_conversion_unchanged(mlp, codes):
    """Without input_coding='weighted' nothing of the weighted path applies (Diehl 2015 formulas, IF neurons)."""
    result = convert(mlp, codes, neuron=NeuronParams(reset="subtract"))
    net = result.integer
    assert (net.phases, net.skip_periods, net.input_coding, net.input_bits) == (0, 0, "rate", 8)
    assert result.normalization.input_lambda == 1.0 and "weighted" not in net.metadata["normalization"]
    x = to_unit(codes).double().reshape(len(codes), -1)
    previous = 1.0
    for layer, op, a, lam in zip(net.layers, result.ann_ops, forward_ops(result.ann_ops, x, return_all=True),
                                 result.lambdas):
        assert lam == pytest.approx(max(op.max_weight(), float(a.max())))
        w_norm = op.weight * previous / lam
        s = int(np.floor(127 / np.abs(w_norm).max()))
        assert layer.neuron == NeuronParams(reset="subtract") and np.all(layer.threshold == s)
        assert np.array_equal(layer.weight, np.rint(w_norm * s).astype(np.int64))
        assert np.array_equal(layer.bias, np.rint(op.bias / lam * s).astype(np.int64))
        previous = lam
    # the API's default neuron is the command line's: IF, reset by subtraction (golden.conversion.DEFAULT_NEURON)
    assert convert(mlp, codes).integer.layers[0].neuron == NeuronParams("if", "subtract") == JobOptions().neuron_params()
    assert result.decision_scale == result.scales[-1]
