"""Direct training after Lee, Delbruck & Pfeiffer 2016 (golden/training/lee_trainer.py): transfer function, Lee's
backward formulas, regularisers, a tiny training run, export, and the trainer's simulation vs the golden
integer simulation of the exported network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.core.errors import DataError, SnnCosimError
from golden.core.network import IntegerNetwork
from golden.data.mnist import default_split
from golden.simulation.simulate import IntegerSimulator
from golden.training import lee_trainer as dt


@pytest.fixture(scope="module")
def split():
    return default_split()


def _tiny_config(**kw) -> dt.LeeConfig:
    base = dict(hidden=(32,), steps=16, epochs=2, batch_size=20, lr=0.004, seed=3)
    base.update(kw)
    return dt.LeeConfig(**base)


@pytest.fixture(scope="module")
def tiny_run(split):
    """A 784-32-10 network with WTA in both layers, trained on 400 images (about a second)."""
    return dt.train_lee(split.train_images[:400], split.train_labels[:400], _tiny_config(),
                        test_images=split.test_images[:200], test_labels=split.test_labels[:200],
                        progress=False, device="cpu")


# ------------------------------------------------------------------------------------------------ forward
def _single_layer(weight, theta, kappa=0.0, leak_shift=4):
    n_out, n_in = weight.shape
    spec = dt.LayerSpec("dense", (n_in,), (n_out,), kappa=kappa)
    theta_t = torch.as_tensor(theta, dtype=torch.float32)
    q = dt.QuantLayer(torch.as_tensor(weight, dtype=torch.float32), theta_t,
                      torch.round(abs(kappa) * theta_t) if kappa else None, 1.0)
    return spec, q


def test_transfer_function_rate_is_drive_over_threshold():
    """Eq. 6 without WTA: the output trace a ≈ Σ_k w_k x_k / θ (slope 1/θ, offset below the leak factor 2^-k
    from the residual membrane), and 0 for a negative drive."""
    gen = torch.Generator().manual_seed(0)
    steps, batch, n_in = 400, 6, 50
    probs = torch.linspace(0.1, 0.6, batch)[:, None].expand(batch, n_in)
    x = (torch.rand((steps, batch, n_in), generator=gen) < probs).to(torch.float32)
    weight = np.full((2, n_in), 10.0)
    weight[1] = -10.0
    spec, q = _single_layer(weight, [300.0, 300.0])
    _, record = dt._run_layer(spec, q, x, leak_shift=4, membrane_bits=24, want_trace=True)
    x_trace = dt._input_trace(x, 4)
    drive = (x_trace @ q.weight.t())[:, 0] / 300.0
    a = record.trace[:, 0]
    assert torch.all(drive > 0.15) and torch.all(drive < 1.0)
    # Eq. 5 summed over the sample: a = drive − mean(V)/θ·2^-k, and the residual V lies in [−θ, θ)
    assert torch.all((drive - a).abs() <= 1 / 16 + 1e-3), (a, drive)
    slope = float(((a - a.mean()) * (drive - drive.mean())).sum() / ((drive - drive.mean()) ** 2).sum())
    assert slope == pytest.approx(1.0, abs=0.05)
    assert float(record.counts[:, 1].sum()) == 0  # negative drive: silent (floor at −θ, no negative rates)


def test_floor_and_inhibition_follow_the_contract():
    """Two steps by hand. θ = [100, 100, 200], u = round(0.5·θ) = [50, 50, 100], leak v >>> 3.
    Step 1 (input A): v = [500, −900, 150] → floor → [500, −100, 150]; neuron 0 fires → [400, −100, 150];
    the others lose u·1 → [400, −150 → floor −100, 50].
    Step 2 (input B): [400 − 50 + 0, −100 + 13 + 190, 50 − 6 + 150] = [350, 103, 194]: neurons 0 and 1 fire.
    Without the floor neuron 1 would sit at −950 and stay silent; without inhibition neuron 2 would reach 282."""
    weight = np.array([[500.0, 0.0], [-900.0, 190.0], [150.0, 150.0]])
    spec, q = _single_layer(weight, [100.0, 100.0, 200.0], kappa=-0.5)
    x = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    spikes, _ = dt._run_layer(spec, q, x, leak_shift=3, membrane_bits=24, want_trace=False)
    assert spikes[:, 0].tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    no_wta = dt.QuantLayer(q.weight, q.threshold, None, 1.0)
    spikes, _ = dt._run_layer(spec, no_wta, x, leak_shift=3, membrane_bits=24, want_trace=False)
    assert spikes[1, 0].tolist() == [1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------------------------ backward
def test_wta_error_is_the_jacobian_of_the_lateral_transfer_function():
    """Eq. 9 equals the exact derivative of a = s/θ − σ|κ| Σ_{j≠i} a_j (Eq. 6 solved for a)."""
    torch.manual_seed(1)
    n, m, mu = 5, 7, 0.5 * 0.4
    w = torch.randn(n, m, dtype=torch.float64)
    theta = torch.rand(n, dtype=torch.float64) + 0.5
    x = torch.rand(m, dtype=torch.float64, requires_grad=True)
    matrix = (1 - mu) * torch.eye(n, dtype=torch.float64) + mu * torch.ones(n, n, dtype=torch.float64)
    a = torch.linalg.solve(matrix, (w @ x) / theta)
    e = torch.randn(n, dtype=torch.float64)
    exact, = torch.autograd.grad((a * e).sum(), x)
    delta = dt.wta_error((e / theta)[None], theta[None], torch.ones(1, n, dtype=torch.float64), mu)
    assert torch.allclose(delta[0] @ w, exact, atol=1e-12)


def test_exponential_weight_regulariser_is_the_gradient_of_eq14():
    beta, lam = 10.0, 0.01
    w = torch.tensor([[0.9, 0.6], [0.2, 0.1]], dtype=torch.float64, requires_grad=True)
    loss = (0.5 * lam * torch.exp(beta * ((w ** 2).sum(1) - 1.0))).sum()
    exact, = torch.autograd.grad(loss, w)
    grad = dt.weight_regulariser_grad(w.detach(), beta, lam)
    assert torch.allclose(grad, exact)
    # it acts on neurons whose Σw² exceeds 1 and leaves the small ones almost alone (Lee Sec. 2.3.1)
    assert float(grad[0].abs().max()) > 50 * float(grad[1].abs().max())


def test_threshold_regularisation_is_competitive_and_floored():
    trainer = dt.LeeTrainer(dt.LeeConfig(hidden=(4,), rho=0.01, theta_min=1.0, alpha=3.0), device="cpu")
    theta_before = trainer.thresholds[0].clone()
    weights_before = trainer.weights[0].clone()
    counts = torch.tensor([[6.0, 2.0, 0.0, 0.0]])
    records = [None, dt.LayerRecord(counts, None), dt.LayerRecord(torch.zeros(1, 10), None)]
    trainer._regularise_thresholds(records)
    change = trainer.thresholds[0] - theta_before
    # ρN(count − mean): +0.16, 0, −0.08, −0.08, summing to zero; the busiest neuron's threshold rises most
    assert torch.allclose(change, torch.tensor([0.16, 0.0, -0.08, -0.08]), atol=1e-6)
    assert torch.equal(trainer.weights[0], weights_before)
    # push a silent neuron below its floor: the threshold stops there and its weights rise instead
    floor = trainer.theta_floor[0]
    trainer.thresholds[0][3] = floor + 0.01
    trainer._regularise_thresholds(records)
    assert float(trainer.thresholds[0][3]) == pytest.approx(floor)
    raised = trainer.weights[0][3] - weights_before[3]
    assert float(raised.min()) > 0 and float(raised.sum()) == pytest.approx(0.07, rel=1e-3)


# ------------------------------------------------------------------------------------------------ training
def test_tiny_training_reduces_loss_and_beats_chance(tiny_run):
    history = tiny_run.history
    assert history[-1].loss < history[0].loss
    assert tiny_run.info["float_accuracy"] > 0.4  # chance is 0.1
    assert tiny_run.info["dead_fraction"] < 0.5


def test_wide_hidden_layer_trains_above_chance(split):
    """784-300-10 with the default recipe (16 steps, 500 images, 2 epochs): with the first maximum taking all of
    d max/d count (saturation_aware=False) the outputs saturated, tied and the accuracy fell to chance (10 %)."""
    config = dt.LeeConfig(hidden=(300,), steps=16, epochs=2, seed=0)
    result = dt.train_lee(split.train_images[:500], split.train_labels[:500], config,
                          test_images=split.test_images[:300], test_labels=split.test_labels[:300],
                          progress=False, device="cpu", agreement_images=0)
    assert result.info["float_accuracy"] > 0.6  # chance is 0.1
    assert result.history[-1].loss < result.history[0].loss
    counts = dt.network_counts(result.network, dt.encode(split.test_images[:300], 16))
    peak = counts.max(1)
    assert ((counts == peak[:, None]).sum(1) > 1).mean() < 0.2  # not every output at the ceiling
    assert (counts == 16).mean() < 0.3


def test_float_and_integer_simulation_agree(tiny_run):
    info = tiny_run.info
    assert info["agreement_images"] == 200
    assert info["agreement"] >= 0.99
    assert info["saturations"] == 0
    assert abs(info["float_accuracy"] - info["integer_accuracy"]) <= 0.01


def test_exported_network_uses_the_lee_contract(tiny_run):
    net = tiny_run.network
    assert net.input_coding == "rate" and net.weight_bits == 8 and net.layer_sizes == [784, 32, 10]
    for layer in net.layers:
        assert layer.neuron.kind == "lif" and layer.neuron.reset == "subtract" and layer.neuron.floor_threshold
        assert layer.neuron.leak_shift == 5 and not layer.bias.any()
        kappa = 0.4 if layer is net.layers[0] else 1.0
        assert np.array_equal(layer.inhibition, np.round(kappa * layer.threshold).astype(np.int64))
        assert np.abs(layer.weight).max() == 127


def test_export_round_trips_through_save_and_load(tiny_run, tmp_path):
    net = tiny_run.network
    loaded = IntegerNetwork.load(net.save(tmp_path / "lee.snn"))
    for a, b in zip(net.layers, loaded.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.threshold, b.threshold)
        assert np.array_equal(a.inhibition, b.inhibition) and a.neuron == b.neuron
    assert loaded.metadata["direct_training"]["agreement"] == tiny_run.info["agreement"]


def test_conv_network_trains_and_agrees_with_the_integer_simulation(split):
    config = _tiny_config(hidden=("4c5s2", 16), epochs=1, steps=12)
    result = dt.train_lee(split.train_images[:200], split.train_labels[:200], config,
                          test_images=split.test_images[:100], test_labels=split.test_labels[:100],
                          progress=False, device="cpu")
    net = result.network
    assert net.input_shape == (1, 28, 28) and net.layers[0].kind == "conv2d"
    assert net.layers[0].out_shape == (4, 12, 12) and net.layers[0].threshold.shape == (4,)
    assert result.info["agreement"] >= 0.99


def test_trainer_simulation_is_bit_exact_to_golden(tiny_run, split):
    """Stronger than prediction agreement: the same output spike counts image by image (fresh spikes)."""
    trainer = dt.LeeTrainer(tiny_run.config, device="cpu")
    spikes = dt.encode(split.test_images[:50], 20, seed=9)
    counts = dt.simulate_counts(trainer, spikes)
    trace = IntegerSimulator(dt.export(trainer), device="cpu").run(spikes)
    assert np.array_equal(trace.spikes[-1].sum(axis=1), counts)


# ------------------------------------------------------------------------------------------------ cache, errors
def test_default_network_is_cached(tmp_path):
    config = _tiny_config(epochs=1, steps=8)
    net, info = dt.default_lee_network(tmp_path, progress=False, config=config, train_subset=100)
    assert {"float_accuracy", "integer_accuracy", "agreement", "steps"} <= set(info)
    assert list(tmp_path.glob("lee-*.snn"))
    again, info2 = dt.default_lee_network(tmp_path, progress=False, config=config, train_subset=100)
    assert info2["float_accuracy"] == info["float_accuracy"]
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(net.layers, again.layers))


@pytest.mark.parametrize("kwargs, message", [
    (dict(kappa_hidden=0.3), "kappa hidden must lie in"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(hidden=("8x5",)), "expected a dense size"),
    (dict(hidden=(100, "8c5")), "convolutions must come before"),
    (dict(leak_shift=0), "leak shift"),
])
def test_bad_configuration_is_a_clear_error(kwargs, message):
    with pytest.raises(SnnCosimError, match=message):
        dt.LeeConfig(**kwargs).validate()


def test_bad_data_is_a_clear_error(split):
    with pytest.raises(DataError, match="labels"):
        dt.train_lee(split.train_images[:10], split.train_labels[:9], _tiny_config(), progress=False)
    with pytest.raises(DataError, match="uint8"):
        dt.train_lee(np.zeros((4, 784), np.float32), np.zeros(4, np.int64), _tiny_config(), progress=False)


# ------------------------------------------------------------------------------------------------ command line
def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # exactly one line, no traceback
    assert err[0].startswith("snncosim: error: ")
    return err[0]


def test_cli_train_tiny_run(tmp_path, capsys):
    from cosim.app.cli import main

    out = tmp_path / "lee.snn"
    assert main(["train", "-o", str(out), "--hidden", "16", "--steps", "8", "--epochs", "1", "--train-images", "100",
                 "--test-images", "50", "--device", "cpu", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "agreement" in printed and "float" in printed and "integer" in printed and str(out) in printed
    net = IntegerNetwork.load(out)
    assert net.layer_sizes == [784, 16, 10] and net.layers[0].neuron.floor_threshold


@pytest.mark.parametrize("argv, message", [
    (["--kappa-hidden", "0.5"], "kappa hidden must lie in [-1, 0]"),
    (["--hidden", "abc"], "expected a dense size"),
    (["--hidden", ","], "give layer sizes"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--train-images", "0"], "--train-images must be in 1..8000"),
    (["--device", "nonsense"], "not a torch device"),
])
def test_cli_train_bad_arguments(tmp_path, capsys, argv, message):
    from cosim.app.cli import main

    assert main(["train", "-o", str(tmp_path / "x.snn"), "-q"] + argv) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "x.snn").exists()
