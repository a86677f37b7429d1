"""The command line: user mistakes give one clear line and a non-zero exit, and write nothing partial."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cosim.app.cli import main
from golden.core.network import Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from golden.core.trace import Trace


def _small_network(seed: int = 0) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    return IntegerNetwork(
        input_shape=(6,),
        layers=[DenseLayer(rng.integers(-100, 100, (5, 6)), np.zeros(5, np.int64), np.full(5, 90), NeuronParams()),
                DenseLayer(rng.integers(-100, 100, (3, 5)), np.zeros(3, np.int64), np.full(3, 90), NeuronParams())],
    )


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # exactly one line, no traceback
    assert err[0].startswith("snncosim: error: ")
    return err[0]


def test_verilog_rejects_missing_network_file(tmp_path, capsys):
    assert main(["verilog", str(tmp_path / "nope.snn"), "-o", str(tmp_path / "out")]) == 2
    assert "not an integer-network directory" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_verilog_rejects_corrupted_network_file(tmp_path, capsys):
    path = _small_network().save(tmp_path / "net.snn")
    blob = bytearray((path / "arrays.npz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(blob))
    assert main(["verilog", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "checksum mismatch" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_verilog_rejects_wrong_version(tmp_path, capsys):
    path = _small_network().save(tmp_path / "net.snn")
    manifest = (path / "network.yaml").read_text().replace("version: 1", "version: 99")
    (path / "network.yaml").write_text(manifest)
    assert main(["verilog", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "version 99 is not supported" in _error_line(capsys)


def test_verilog_conv_network_and_rejects_conv_output_layer(tmp_path, capsys):
    rng = np.random.default_rng(1)
    conv = Conv2dLayer(rng.integers(-5, 5, (2, 1, 3, 3)), np.zeros(2, np.int64), np.full(2, 9), (1, 6, 6))
    dense = DenseLayer(rng.integers(-5, 5, (3, 32)), np.zeros(3, np.int64), np.full(3, 9))
    path = IntegerNetwork((1, 6, 6), [conv, dense]).save(tmp_path / "conv.snn")
    assert main(["verilog", str(path), "-o", str(tmp_path / "out"), "-P", "4"]) == 0  # hardware convolution
    assert "module snn_engine" in (tmp_path / "out" / "snn_engine.v").read_text()
    capsys.readouterr()
    path = IntegerNetwork((1, 6, 6), [conv]).save(tmp_path / "conv_only.snn")
    assert main(["verilog", str(path), "-o", str(tmp_path / "out2")]) == 2
    assert "output layer must be dense" in _error_line(capsys)
    assert not (tmp_path / "out2").exists()


def test_verilog_writes_files_for_a_valid_network(tmp_path, capsys):
    path = _small_network().save(tmp_path / "net.snn")
    assert main(["verilog", str(path), "-o", str(tmp_path / "out"), "-P", "4"]) == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"snn_engine.v", "snn_top.v", "config.hex"} <= written
    assert "module snn_engine" in (tmp_path / "out" / "snn_engine.v").read_text()


def test_compare_reports_first_difference_and_exit_status(tmp_path, capsys):
    rng = np.random.default_rng(2)
    spikes = [rng.random((2, 4, 5)) < 0.3, rng.random((2, 4, 3)) < 0.3]
    counters = rng.integers(0, 50, (2, 4, 2, 9))
    golden = Trace(spikes, counters, np.array([10, 11]), np.array([1, 2]))
    golden.save(tmp_path / "g.npz")
    golden.save(tmp_path / "same.npz")
    assert main(["compare", str(tmp_path / "g.npz"), str(tmp_path / "same.npz")]) == 0
    assert "EQUIVALENT" in capsys.readouterr().out
    spikes_bad = [s.copy() for s in spikes]
    spikes_bad[1][1, 2, 0] = not spikes_bad[1][1, 2, 0]
    Trace(spikes_bad, counters, np.array([10, 11]), np.array([1, 2])).save(tmp_path / "r.npz")
    assert main(["compare", str(tmp_path / "g.npz"), str(tmp_path / "r.npz")]) == 1
    out = capsys.readouterr().out
    assert "image 1, step 3, layer 2, neuron 0: spike" in out


def test_compare_rejects_a_file_that_is_not_a_trace(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    assert main(["compare", str(tmp_path / "junk.npz"), str(tmp_path / "junk.npz")]) == 2
    assert "not a readable snncosim trace" in _error_line(capsys)


@pytest.mark.parametrize("argv, message", [
    (["run", "--steps", "0"], "--steps must be in"),
    (["run", "--max-rate", "1.5"], "--max-rate must be in"),
    (["run", "--lanes", "0"], "--lanes must be in"),
])
def test_run_rejects_bad_options_before_doing_work(argv, message, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "run")]) == 2
    assert message in _error_line(capsys)


def test_console_script_entry_point_prints_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cosim.app", "compare", str(tmp_path / "a"), str(tmp_path / "b")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such trace file" in result.stderr


MODEL_FILE = '''
import torch.nn as nn

def good():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32, bias=False), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, 10, bias=False))

def maxpool():
    return nn.Sequential(nn.Conv2d(1, 4, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 12 * 12, 10, bias=False))
'''


def test_convert_user_model_from_file(tmp_path, capsys):
    import torch

    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    torch.manual_seed(0)
    namespace: dict = {}
    exec(MODEL_FILE, namespace)
    torch.save(namespace["good"]().state_dict(), tmp_path / "w.pt")
    out = tmp_path / "net.snn"
    assert main(["convert", "--model", f"{tmp_path / 'mymodel.py'}:good", "--weights", str(tmp_path / "w.pt"),
                 "-o", str(out), "-q"]) == 0
    net = IntegerNetwork.load(out)
    assert net.layer_sizes == [784, 32, 10]
    assert "784 -> 32 -> 10" in capsys.readouterr().out


def test_convert_user_model_with_maxpool_names_the_layer(tmp_path, capsys):
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    out = tmp_path / "net.snn"
    assert main(["convert", "--model", f"{tmp_path / 'mymodel.py'}:maxpool", "-o", str(out), "-q"]) == 2
    line = _error_line(capsys)
    assert "MaxPool2d" in line and "AvgPool2d" in line
    assert not out.exists()


def test_convert_user_model_with_mismatched_weights(tmp_path, capsys):
    import torch

    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    torch.save({"1.weight": torch.zeros(3, 3)}, tmp_path / "w.pt")
    assert main(["convert", "--model", f"{tmp_path / 'mymodel.py'}:good", "--weights", str(tmp_path / "w.pt"),
                 "-o", str(tmp_path / "net.snn"), "-q"]) == 2
    assert "cannot be loaded into good()" in _error_line(capsys)


RESNET_FILE = """
from golden.conversion.residual import make_resnet


def resnet():
    return make_resnet(width=4, blocks=2)
"""


def test_convert_routes_a_residual_model_to_the_residual_conversion(tmp_path, capsys):
    (tmp_path / "res.py").write_text(RESNET_FILE)
    out = tmp_path / "res.snn"
    assert main(["convert", "--model", f"{tmp_path / 'res.py'}:resnet", "--reset", "zero", "-o", str(out),
                 "-q"]) == 0
    net = IntegerNetwork.load(out)
    assert net.skips and all(skip.source >= 1 for skip in net.skips)
    assert "residual junctions" in capsys.readouterr().out


def test_convert_refuses_percentile_for_a_residual_model(tmp_path, capsys):
    (tmp_path / "res.py").write_text(RESNET_FILE)
    out = tmp_path / "res.snn"
    assert main(["convert", "--model", f"{tmp_path / 'res.py'}:resnet", "--norm", "percentile", "-o", str(out),
                 "-q"]) == 2
    assert "percentile is not available for residual networks" in _error_line(capsys)
    assert not out.exists()


def test_convert_with_spikenorm_writes_a_network(tmp_path, capsys):
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    out = tmp_path / "net.snn"
    assert main(["convert", "--model", f"{tmp_path / 'mymodel.py'}:good", "--norm", "spikenorm", "--reset", "zero",
                 "--spikenorm-steps", "10", "--spikenorm-images", "16", "-o", str(out), "-q"]) == 0
    assert IntegerNetwork.load(out).layer_sizes == [784, 32, 10]
    assert "spikenorm normalisation" in capsys.readouterr().out


def test_written_network_and_config_image_are_readable_by_others(tmp_path):
    """Files written through a private temporary (mkstemp/mkdtemp) get the umask's permissions, not 0600/0700."""
    import os
    import stat

    net = IntegerNetwork((4,), [DenseLayer(np.ones((2, 4), dtype=np.int64), np.zeros(2, dtype=np.int64),
                                           np.full(2, 3, dtype=np.int64))]).validate()
    umask = os.umask(0o022)
    try:
        assert main(["verilog", str(net.save(tmp_path / "net.snn")), "-o", str(tmp_path / "v")]) == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "net.snn").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "v" / "config.hex").stat().st_mode) == 0o644
