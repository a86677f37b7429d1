"""Bad input, as a user gives it: every row runs the command line in a subprocess and must end with exit status 2,
exactly one ``snncosim: error:`` line on stderr, no traceback, and the working directory exactly as it was —
nothing partial written, no user file touched (issue 11). Interruptions (SIGTERM, SIGHUP, SIGINT) and two runs
into one directory are checked below the table."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams
from golden.core.trace import Trace

REPO = Path(__file__).resolve().parents[1]
# the co-simulation tests' build directory: runs here reuse their Verilator builds (and leave theirs for them)
BUILD_DIR = REPO / ".snncosim" / "build"
FAST_RUN = ["--test-images", "40", "--other-codings", "0", "-T", "8", "-q", "--no-report"]


def cli(args, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = dict(os.environ, SNNCOSIM_BUILD_DIR=str(BUILD_DIR), PYTHONPATH=str(REPO))
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "cosim.app", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def tree(root: Path) -> dict[str, str]:
    """Every path below ``root`` with a digest of its contents (directories: 'dir')."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_user_error(result: subprocess.CompletedProcess, expected: str) -> str:
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(err) == 1 and err[0].startswith("snncosim: error: "), err
    assert expected in err[0], err[0]
    return err[0]


def small_network(seed: int = 0, **neuron) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    params = NeuronParams(**neuron) if neuron else NeuronParams()
    return IntegerNetwork(
        input_shape=(6,),
        layers=[DenseLayer(rng.integers(-100, 100, (5, 6)), np.zeros(5, np.int64), np.full(5, 90), params),
                DenseLayer(rng.integers(-100, 100, (3, 5)), np.zeros(3, np.int64), np.full(3, 90), NeuronParams())],
    )


def trace_for(network: IntegerNetwork, seed: int) -> Trace:
    import torch

    from golden.simulation.simulate import IntegerSimulator

    spikes = torch.from_numpy(np.random.default_rng(seed).random((6, 2, 6)) < 0.5)
    return IntegerSimulator(network).run(spikes, lanes=4, record_membranes=True)


# ---------------------------------------------------------------------------------------------- setups
def user_directory(tmp: Path) -> Path:
    """A directory of the user's (the data-loss report of issue 11)."""
    (tmp / "d" / "sub").mkdir(parents=True)
    (tmp / "d" / "thesis.txt").write_text("x")
    return tmp / "d"


def user_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("my notes")
    return tmp / "notes.txt"


def network_file(tmp: Path) -> Path:
    return small_network().save(tmp / "net.snn")


def model_file(tmp: Path, body: str) -> Path:
    (tmp / "model.py").write_text("import torch\nfrom torch import nn\n\n" + body)
    return tmp / "model.py"


def nan_weights(tmp: Path) -> list:
    import torch

    model_file(tmp, "def build():\n    return nn.Sequential(nn.Linear(784, 10, bias=False))\n")
    weight = torch.zeros(10, 784)
    weight[3, 5] = float("nan")
    torch.save({"0.weight": weight}, tmp / "w.pt")
    return ["convert", "-q", "--model", "model.py:build", "--weights", "w.pt", "-o", "out.snn"]


def incomplete_run(tmp: Path) -> Path:
    """A run directory as a failed run leaves it: published, marked incomplete."""
    run = tmp / "run"
    run.mkdir()
    (run / ".snncosim-output.json").write_text(json.dumps({"kind": "run", "complete": False,
                                                           "error": "SimulationError: simulator died"}))
    (run / "summary.json").write_text("{}")
    network = small_network()
    trace_for(network, 0).save(run / "golden_trace.npz")
    trace_for(network, 0).save(run / "rtl_trace.npz")
    return run


def traces_of_different_inputs(tmp: Path) -> list:
    network = small_network()
    trace_for(network, 0).save(tmp / "a.npz")
    trace_for(network, 1).save(tmp / "b.npz")
    return ["compare", "a.npz", "b.npz"]


ROWS = {
    # data loss: an existing directory or file that snncosim did not write is never replaced
    "convert into a user directory": (lambda t: ["convert", "-q", "-o", user_directory(t)], "never removes it"),
    "train into a user directory": (lambda t: ["train", "-q", "-o", user_directory(t), "--epochs", "1"],
                                    "never removes it"),
    "run into a user directory": (lambda t: ["run", "-q", "--out", user_directory(t)], "never removes it"),
    "verilog into a user directory": (lambda t: ["verilog", network_file(t), "-o", user_directory(t)],
                                      "never removes it"),
    "convert onto a user file": (lambda t: ["convert", "-q", "-o", user_file(t)], "never replaces it"),
    "train onto a user file": (lambda t: ["train", "-q", "-o", user_file(t)], "never replaces it"),
    "run onto a user file": (lambda t: ["run", "-q", "--out", user_file(t)], "never replaces it"),
    "verilog onto a user file": (lambda t: ["verilog", network_file(t), "-o", user_file(t)], "never replaces it"),
    "verilog over a network without --force": (lambda t: ["verilog", network_file(t), "-o", t / "net.snn"],
                                               "use --force"),
    "convert under a file": (lambda t: ["convert", "-q", "-o", user_file(t) / "x.snn"], "is a file"),
    # unwritable places (as root too: /proc takes no new files)
    "convert into /proc": (lambda t: ["convert", "-q", "-o", "/proc/snncosim.snn"], "not writable"),
    "run into /proc": (lambda t: ["run", "-q", "--out", "/proc/snncosim-run"], "not writable"),
    "train into /proc": (lambda t: ["train", "-q", "-o", "/proc/snncosim.snn"], "not writable"),
    "verilog into /proc": (lambda t: ["verilog", network_file(t), "-o", "/proc/snncosim-v"], "not writable"),
    "run --json into /proc (before the job)": (lambda t: ["run", "-q", "--json", "/proc/x.json", "--out", "r"],
                                               "--json /proc/x.json"),
    "run --json names a directory": (lambda t: ["run", "-q", "--json", user_directory(t), "--out", "r"],
                                     "is a directory"),
    # options, each checked before anything is written
    "run --lanes 0": (lambda t: ["run", "--out", "r", "--lanes", "0"], "--lanes must be in 1..64"),
    "run --jobs 0": (lambda t: ["run", "--out", "r", "--jobs", "0"], "--jobs must be an integer in 1..1024"),
    "cosim --jobs -2": (lambda t: ["cosim", network_file(t), "--out", "r", "-j", "-2"],
                        "--jobs must be an integer in 1..1024"),
    "run --rtl-images beyond the test images": (lambda t: ["run", "--out", "r", "--rtl-images", "41",
                                                           "--test-images", "40"], "more than the 40 test images"),
    "run --test-images beyond the test part": (lambda t: ["run", "--out", "r", "--test-images", "2001"],
                                               "--test-images must be in 1..2000"),
    "run --phases 17": (lambda t: ["run", "--out", "r", "--coding", "weighted", "-K", "17"], "--phases"),
    "run --skip-periods with rate coding": (lambda t: ["run", "--out", "r", "-S", "1"], "--skip-periods"),
    "run --skip-periods past T": (lambda t: ["run", "--out", "r", "--coding", "weighted", "-S", "8", "-T", "32"],
                                  "S·K < T"),
    "run --weight-bits 1": (lambda t: ["run", "--out", "r", "--weight-bits", "1"], "--weight-bits"),
    "run --membrane-bits 80": (lambda t: ["run", "--out", "r", "--membrane-bits", "80"], "--membrane-bits"),
    "run --leak-shift 0 with LIF": (lambda t: ["run", "--out", "r", "--neuron", "lif", "--leak-shift", "0"],
                                    "--leak-shift"),
    "run --percentile 0": (lambda t: ["run", "--out", "r", "--norm", "percentile", "--percentile", "0"],
                           "--percentile"),
    "run --max-rate 2": (lambda t: ["run", "--out", "r", "--max-rate", "2"], "--max-rate"),
    "run --seed -1": (lambda t: ["run", "--out", "r", "--seed", "-1"], "--seed"),
    "run --steps with FS": (lambda t: ["run", "--out", "r", "--coding", "fs", "-T", "10"], "--steps"),
    "convert --leak-shift 0 with LIF": (lambda t: ["convert", "-o", "n.snn", "--neuron", "lif", "--leak-shift", "0"],
                                        "--leak-shift"),
    "convert --spikenorm-steps 0": (lambda t: ["convert", "-o", "n.snn", "--norm", "spikenorm",
                                               "--spikenorm-steps", "0"], "--spikenorm-steps"),
    "train --test-images 0": (lambda t: ["train", "-o", "n.snn", "--test-images", "0"], "--test-images"),
    "train --threads 0": (lambda t: ["train", "-o", "n.snn", "--threads", "0"], "--threads"),
    "verilog --lanes 65": (lambda t: ["verilog", network_file(t), "-o", "v", "--lanes", "65"], "--lanes"),
    # the user's model code
    "model with a syntax error": (lambda t: ["convert", "-q", "--model", str(model_file(t, "def build(:\n")) + ":build",
                                             "-o", "out.snn"], "syntax error at line"),
    "model module raises on import": (lambda t: ["convert", "-q", "--model",
                                                 str(model_file(t, "raise ImportError('no such thing')\n")) + ":build",
                                                 "-o", "out.snn"], "ImportError: no such thing"),
    "model function raises": (lambda t: ["convert", "-q", "--model", str(model_file(
        t, "def build():\n    raise ValueError('bad width')\n")) + ":build", "-o", "out.snn"],
                              "build() raised ValueError: bad width"),
    "model weights hold NaN": (nan_weights, "NaN or infinite"),
    # runs that did not finish, and traces that cannot be compared
    "report of an incomplete run": (lambda t: ["report", incomplete_run(t)], "incomplete (it failed"),
    "compare traces made from different inputs": (traces_of_different_inputs, "different input spikes"),
    "report of a network directory": (lambda t: ["report", network_file(t)], "not a snncosim run directory"),
    "compare traces of an incomplete run": (lambda t: ["compare", incomplete_run(t) / "golden_trace.npz",
                                                       t / "run" / "rtl_trace.npz"], "incomplete run"),
}


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(row, tmp_path):
    setup, expected = ROWS[row]
    argv = setup(tmp_path)
    before = tree(tmp_path)
    result = cli(argv, tmp_path)
    assert_user_error(result, expected)
    assert tree(tmp_path) == before  # nothing partial, no lock or staging directory left, user files intact


# Network-file defects (floor: -5.5, leak_shift: 2.5 or "2", input_shape: six, a missing neuron kind, a 0-neuron
# layer, damaged arrays re-checksummed, a hand-edited manifest) are rows of tests/test_network_file_schema.py,
# through `snncosim verilog` in a subprocess like the rows above.


def test_messages_that_advised_the_wrong_fix():
    """A threshold below 1 is not a width problem (it used to advise membrane_bits=2); K = 1 needs no extra bits
    (the message said "needs 0 extra bits")."""
    from golden.core.errors import SnnCosimError

    bad = small_network()
    bad.layers[0] = DenseLayer(bad.layers[0].weight, bad.layers[0].bias, np.full(5, -3), NeuronParams())
    with pytest.raises(SnnCosimError) as caught:
        bad.validate()
    assert "thresholds must be at least 1" in str(caught.value) and "membrane_bits" not in str(caught.value)
    ws = IntegerNetwork((6,), [DenseLayer(np.full((3, 6), 100), np.zeros(3, np.int64), np.full(3, 100),
                                          NeuronParams("acc", "subtract"))],
                        membrane_bits=8, input_coding="weighted", input_bits=1, phases=1)
    with pytest.raises(SnnCosimError) as caught:
        ws.validate()
    message = str(caught.value)
    assert "K = 1 phase " in message and "extra bit" not in message and "use membrane_bits=" in message


def test_the_data_loss_report_of_issue_11_is_refused_and_the_files_survive(tmp_path):
    user_directory(tmp_path)
    assert_user_error(cli(["convert", "-q", "-o", "d"], tmp_path), "never removes it")
    assert (tmp_path / "d" / "thesis.txt").read_text() == "x" and (tmp_path / "d" / "sub").is_dir()


# ---------------------------------------------------------------------------------------------- replacing outputs
def test_an_earlier_output_of_the_same_kind_is_replaced_and_of_another_kind_only_with_force(tmp_path):
    network_file(tmp_path)
    first = cli(["verilog", "net.snn", "-o", "v", "-P", "4"], tmp_path)
    assert first.returncode == 0, first.stderr
    engine = (tmp_path / "v" / "snn_engine.v").read_text()
    again = cli(["verilog", "net.snn", "-o", "v", "-P", "2"], tmp_path)  # same kind: replaced
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "v" / "snn_engine.v").read_text() != engine
    assert_user_error(cli(["verilog", "net.snn", "-o", "net.snn"], tmp_path), "use --force")
    assert (tmp_path / "net.snn" / "network.yaml").is_file()
    forced = cli(["verilog", "net.snn", "-o", "copy", "-P", "4"], tmp_path)
    assert forced.returncode == 0
    forced = cli(["verilog", "copy", "-o", "copy", "--force"], tmp_path)  # a Verilog dir is not a network
    assert forced.returncode == 2
    small_network().save(tmp_path / "other.snn")
    forced = cli(["verilog", "other.snn", "-o", "net.snn", "--force"], tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "net.snn" / "snn_engine.v").is_file() and not (tmp_path / "net.snn" / "network.yaml").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock, no staging


# ---------------------------------------------------------------------------------------------- interruptions
def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _simulators_of(folder: Path) -> list[int]:
    """PIDs of processes whose command line names ``folder`` (the simulator gets its job files from there)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline and "tb_top" in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_the_rtl_phase_stops_the_simulator_and_leaves_nothing(sig, tmp_path):
    environment = dict(os.environ, SNNCOSIM_BUILD_DIR=str(BUILD_DIR), PYTHONPATH=str(REPO))
    # 400 images of T = 64: an RTL phase of several seconds even on a fast simulator (40 images could end before the
    # signal arrived), cut short by the signal
    process = subprocess.Popen(
        [sys.executable, "-m", "cosim.app", "run", "--out", "r", "--rtl-images", "400", "--test-images", "400",
         "--other-codings", "0", "-q", "-T", "64"],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = _wait_for(lambda: bool(_simulators_of(tmp_path)) or process.poll() is not None, 300)
        assert started and process.poll() is None, "the simulator never started"
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr and f"interrupted ({sig.name})" in stderr
    assert _wait_for(lambda: not _simulators_of(tmp_path), 5), "a simulator outlived snncosim"
    assert list(tmp_path.iterdir()) == []  # no run directory, no staging directory, no lock


def test_a_second_run_into_the_same_directory_is_refused_while_the_first_gives_the_true_verdict(tmp_path):
    environment = dict(os.environ, SNNCOSIM_BUILD_DIR=str(BUILD_DIR), PYTHONPATH=str(REPO))
    first = subprocess.Popen(
        [sys.executable, "-m", "cosim.app", "run", "--out", "x", "--seed", "0", "--rtl-images", "10",
         *FAST_RUN[:-1], "-T", "32", "--full-trace", "--json", "first.json"],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: any(tmp_path.glob(".x.lock")) or first.poll() is not None, 120)
        second = cli(["run", "--out", "x", "--seed", "1", "--rtl-images", "10", *FAST_RUN], tmp_path)
        _, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert_user_error(second, "another snncosim process")
    assert first.returncode == 0, stderr
    summary = json.loads((tmp_path / "first.json").read_text())
    assert summary["equivalent"] is True and summary["options"]["seed"] == 0
    assert json.loads((tmp_path / "x" / ".snncosim-output.json").read_text())["complete"] is True
    # the run directory's traces compare as the verdict said
    compared = cli(["compare", "x/golden_trace.npz", "x/rtl_trace.npz"], tmp_path)
    assert compared.returncode == 0 and compared.stdout.startswith("EQUIVALENT")


def test_rtl_images_beyond_one_golden_chunk_are_all_cosimulated(tmp_path):
    """--rtl-images used to stop silently at 250 (the golden model's chunk)."""
    result = cli(["run", "--out", "r", "--rtl-images", "260", "--test-images", "260", "--other-codings", "0",
                  "-T", "4", "-q", "--no-report", "--json", "s.json"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rtl_images"] == 260 and summary["equivalent"] is True
    with np.load(tmp_path / "r" / "digests.npz") as saved:  # every image checked, by its digest
        assert saved["rtl_digests"].shape == (260,) and (saved["rtl_digests"] == saved["golden_digests"]).all()


def test_the_compiler_is_checked_before_the_golden_phase_and_only_when_a_build_is_needed(tmp_path):
    fresh = tmp_path / "fresh-build"
    result = cli(["run", "--out", "r", "--rtl-images", "2", *FAST_RUN], tmp_path,
                 env={"CXX": "/nonexistent/g++", "SNNCOSIM_BUILD_DIR": str(fresh)})
    assert_user_error(result, "CXX='/nonexistent/g++' is not an executable")
    assert not (tmp_path / "r").exists()
    assert "golden" not in result.stdout
    # with the build cached, no compiler is needed
    built = cli(["run", "--out", "r", "--rtl-images", "2", *FAST_RUN], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    cached = cli(["run", "--out", "r", "--rtl-images", "2", *FAST_RUN], tmp_path, env={"CXX": "/nonexistent/g++"})
    assert cached.returncode == 0, cached.stderr[-2000:]
    assert "EQUIVALENT" in cached.stdout


def test_the_published_run_names_its_own_directory_not_the_staging_one(tmp_path):
    result = cli(["run", "--out", "myrun", "--no-rtl", "--test-images", "20", "-T", "4", "--other-codings", "0",
                  "-q", "--json", "s.json"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["out_dir"] == "myrun" and summary["report"] == str(Path("myrun") / "report.html")
    report = (tmp_path / "myrun" / "report.html").read_text()
    assert "snncosim report — myrun" in report and ".part-" not in report
    assert ".part-" not in (tmp_path / "myrun" / "summary.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myrun", "s.json"]
