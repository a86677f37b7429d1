"""Your network, your data, from the command line alone (issue 13): a synthetic 8x8 data set and a 64-64-10 MLP
the project never tuned to, converted with each coding and co-simulated EQUIVALENT; bad input on these paths is one
`snncosim: error:` line, exit 2, nothing written. Runs the CLI in subprocesses (Verilator builds cached in
.snncosim/build like the other CLI tests)."""

import json

import numpy as np
import pytest
import torch
from test_bad_inputs import assert_user_error, cli, tree
from torch import nn

MODEL_FILE = '''
from torch import nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 10, bias=False))
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """digits8.npz (10 noisy 8x8 class templates, 2,000 train / 300 test), mymodel.py and its trained weights."""
    root = tmp_path_factory.mktemp("byo")
    rng = np.random.default_rng(7)
    templates = rng.integers(0, 256, (10, 8, 8))

    def part(n):
        labels = rng.integers(0, 10, n)
        return np.clip(templates[labels] + rng.normal(0, 60, (n, 8, 8)), 0, 255).astype(np.uint8), labels

    (x_train, y_train), (x_test, y_test) = part(2000), part(300)
    np.savez(root / "digits8.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (root / "mymodel.py").write_text(MODEL_FILE)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 10, bias=False))
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = torch.tensor(x_train, dtype=torch.float32) / 255, torch.tensor(y_train)
    for _ in range(30):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    torch.save(model.state_dict(), root / "mlp.pt")
    return root


@pytest.mark.parametrize("coding", ["rate", "weighted", "fs"])
def test_convert_and_cosim_your_mlp_on_your_data(workspace, coding):
    net = f"mlp_{coding}.snn"
    converted = cli(["convert", "--model", "mymodel.py:mlp", "--weights", "mlp.pt", "--data", "digits8.npz",
                     "--coding", coding, "-o", net, "-q"], workspace)
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert "ANN" in converted.stdout and "digits8.npz" in converted.stdout
    run = cli(["cosim", net, "--data", "digits8.npz", "--rtl-images", "4", "--out", f"run_{coding}",
               "--json", f"{coding}.json", "-q"], workspace)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((workspace / f"{coding}.json").read_text())
    assert summary["equivalent"] is True and summary["rtl_images"] == 4 and summary["test_images"] == 300
    assert summary["ann_accuracy"] > 0.9 and summary["snn_accuracy"] > summary["ann_accuracy"] - 0.05
    assert "verdict: EQUIVALENT" in run.stdout and f"{net} on digits8.npz" in run.stdout
    assert summary["rtl_totals"] == summary["golden_totals_rtl_images"]
    report = cli(["report", f"run_{coding}"], workspace)
    assert report.returncode == 0 and (workspace / f"run_{coding}" / "report.html").is_file()


def test_cosim_refuses_what_does_not_fit(workspace, tmp_path):
    for name in ("digits8.npz", "mymodel.py", "mlp.pt"):
        (tmp_path / name).write_bytes((workspace / name).read_bytes())
    ok = cli(["convert", "--model", "mymodel.py:mlp", "--weights", "mlp.pt", "--data", "digits8.npz", "-o", "n.snn",
              "-q"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 7, 7), dtype=np.uint8)
    np.savez(tmp_path / "seven.npz", x_train=x, y_train=np.zeros(20, np.int64), x_test=x, y_test=np.zeros(20, np.int64))
    np.savez(tmp_path / "nolabels.npz", x_train=x, y_train=np.zeros(20, np.int64), x_test=x)
    np.savez(tmp_path / "floats.npz", x_train=x / 255.0, y_train=np.zeros(20, np.int64), x_test=x / 255.0,
             y_test=np.zeros(20, np.int64))
    before = tree(tmp_path)
    cases = [
        (["cosim", "n.snn", "--data", "seven.npz", "--out", "r"], "do not fit the network's input (64,)"),
        (["cosim", "n.snn", "--data", "nolabels.npz", "--out", "r"], "lacks y_test"),
        (["cosim", "n.snn", "--data", "floats.npz", "--out", "r"], "state their range"),
        (["cosim", "n.snn", "--data", "digits8.npz", "--input-scale", "1/100", "--out", "r"], "converted for codes"),
        (["cosim", "n.snn", "--data", "missing.npz", "--out", "r"], "not found"),
        (["cosim", "mymodel.py", "--data", "digits8.npz", "--out", "r"], "not an integer-network directory"),
        (["cosim", "n.snn", "--data", "digits8.npz", "--rtl-images", "301", "--out", "r"], "more than the 300"),
        (["cosim", "n.snn", "--data", "digits8.npz", "--input-scale", "zero", "--out", "r"], None),
        (["convert", "--model", "mymodel.py:mlp", "--weights", "mlp.pt", "--data", "seven.npz", "-o", "m.snn"],
         "do not match the network input (64,)"),
        (["convert", "--model", "mymodel.py:mlp", "--data", "digits8.npz", "--coding", "fs", "--reset", "zero",
          "-o", "m.snn"], "fixes its neurons"),
    ]
    for args, message in cases:
        result = cli(args, tmp_path)
        if message is None:  # argparse's own usage error: exit 2, no traceback
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        else:
            assert_user_error(result, message)
        assert tree(tmp_path) == before, args  # nothing written, nothing touched


CONV_MODEL_FILE = '''
import torch
from torch import nn


def cifar_net():
    """A CIFAR-shaped conv net on random weights (seeded): 3x32x32 -> conv5 -> pool -> conv5 -> pool -> 10."""
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 8, 5, bias=False), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(8, 8, 5, bias=False),
                         nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 5 * 5, 10, bias=False))
'''


@pytest.fixture(scope="module")
def conv_workspace(tmp_path_factory):
    """cifarlike.npz: random 3x32x32 uint8 images (200 train / 40 test), and the random-weight conv net's file."""
    root = tmp_path_factory.mktemp("byo_conv")
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (240, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, 240)
    np.savez(root / "cifarlike.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    (root / "convnet.py").write_text(CONV_MODEL_FILE)
    return root


@pytest.mark.parametrize("coding", ["rate", "weighted", "fs"])
def test_convert_and_cosim_a_cifar_shaped_conv_net_on_random_weights(conv_workspace, coding):
    """No --weights: FUNCTION() returns the model as it is. Each coding converts, co-simulates EQUIVALENT on two
    images, and reports the SNN's accuracy beside the ANN's (random weights: the figures are whatever they are, the
    check is that both are there and that the RTL agrees with the golden model)."""
    net = f"conv_{coding}.snn"
    converted = cli(["convert", "--model", "convnet.py:cifar_net", "--data", "cifarlike.npz", "--coding", coding,
                     "-o", net, "-q"], conv_workspace)
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert "3x32x32" in converted.stdout.replace(" ", "") or "-> 10" in converted.stdout, converted.stdout
    steps = [] if coding == "fs" else ["-T", "16"]
    run = cli(["cosim", net, "--data", "cifarlike.npz", "--rtl-images", "2", *steps, "--out", f"run_{coding}",
               "--json", f"{coding}.json", "-q"], conv_workspace)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((conv_workspace / f"{coding}.json").read_text())
    assert summary["equivalent"] is True and summary["rtl_images"] == 2 and summary["test_images"] == 40
    assert 0 <= summary["ann_accuracy"] <= 1 and 0 <= summary["snn_accuracy"] <= 1
    assert "verdict: EQUIVALENT" in run.stdout and "ANN" in run.stdout
    assert summary["rtl_totals"] == summary["golden_totals_rtl_images"] and summary["rtl_totals"]["cycles"] > 0
