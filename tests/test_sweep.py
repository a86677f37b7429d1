"""`snncosim sweep` on Dask (issue 14): a 4-point sweep of a 64-16-10 MLP on a synthetic 8x8 data set on a 2-worker
LocalCluster, with a fifth point that fails (a membrane too narrow for the conversion) and is reported with its
parameters and traceback; data shards that add up to the unsharded golden figures, through --scheduler; bad grids
refused with one line, exit 2, nothing written."""

import csv
import json
import re
import sys

import numpy as np
import pytest
import torch
from test_bad_inputs import assert_user_error, cli, tree
from torch import nn

pytest.importorskip("distributed", reason="snncosim sweep needs the 'sweep' extra (dask[distributed])")

MODEL_FILE = '''
from torch import nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16, bias=False), nn.ReLU(), nn.Linear(16, 10, bias=False))
'''

# four points sharing one engine (T and the seed do not change the build) and a fifth whose conversion fails
GRID_FILE = """
- {T: [4, 8], seed: [0, 1]}
- {membrane_bits: [4]}
"""


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16, bias=False), nn.ReLU(), nn.Linear(16, 10, bias=False))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """digits8.npz (10 noisy 8x8 class templates, 600 train / 120 test), mlp.py and its trained weights."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(7)
    templates = rng.integers(0, 256, (10, 8, 8))

    def part(n):
        labels = rng.integers(0, 10, n)
        return np.clip(templates[labels] + rng.normal(0, 90, (n, 8, 8)), 0, 255).astype(np.uint8), labels

    (x_train, y_train), (x_test, y_test) = part(600), part(120)
    np.savez(root / "digits8.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (root / "mlp.py").write_text(MODEL_FILE)
    (root / "grid.yaml").write_text(GRID_FILE)
    torch.manual_seed(0)
    model = _mlp()
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = torch.tensor(x_train, dtype=torch.float32) / 255, torch.tensor(y_train)
    for _ in range(40):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    torch.save(model.state_dict(), root / "mlp.pt")
    return root


def _golden(workspace, steps: int, seed: int, images=None):
    """The golden model of the sweep's first conversion, here in this process (cosim.api)."""
    from cosim import api

    data = api.load_data(workspace / "digits8.npz")
    model = _mlp()
    model.load_state_dict(torch.load(workspace / "mlp.pt", weights_only=True))
    network = api.convert(model.eval(), data, coding="rate")
    return api.simulate(network, data, steps=steps, images=images, seed=seed)


def test_four_point_sweep_on_two_workers_reports_the_failing_point(workspace):
    """A fresh build directory: the two workers start on the same engine at once; the build lock lets one build
    it and the other reuse it (never both into one directory)."""
    run = cli(["sweep", "--model", "mlp.py:mlp", "--weights", "mlp.pt", "--data", "digits8.npz", "--grid-file",
               "grid.yaml", "--workers", "2", "--rtl-images", "2", "--build-dir", "build", "--out", "sw", "-q"],
              workspace, timeout=400)
    assert run.returncode == 3, run.stderr[-3000:]  # a point failed, none disagreed
    assert "5 points, 5 tasks on local cluster of 2 worker processes" in run.stdout, run.stdout
    assert "4 ok, 0 mismatch, 1 failed" in run.stdout
    out = workspace / "sw"
    with open(out / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    document = json.loads((out / "results.json").read_text())
    assert [row["point"] for row in table] == ["0", "1", "2", "3", "4"]
    assert document["counts"] == {"ok": 4, "mismatch": 0, "failed": 1} and document["exit_status"] == 3
    assert document["swept"] == ["T", "membrane_bits", "seed"] and document["workers"] == 2

    done, failed = table[:4], table[4]
    assert [(row["T"], row["seed"]) for row in done] == [("4", "0"), ("4", "1"), ("8", "0"), ("8", "1")]
    for row in done:
        assert row["status"] == "ok" and row["verdict"] == "EQUIVALENT" and row["rtl_images"] == "2", row
        assert row["coding"] == "rate" and row["P"] == "8" and row["layers"] == "64-16-10"
        assert row["test_images"] == "120" and 0.0 <= float(row["golden_accuracy"]) <= 1.0
        assert float(row["cycles_per_image"]) > 0 and float(row["acs_per_image"]) > 0
        assert float(row["energy_pj_cmos45nm"]) > 0 and row["worker"] and not row["error"]
    rows = {(int(r["T"]), int(r["seed"])): r for r in done}
    assert float(rows[8, 0]["cycles_per_image"]) > float(rows[4, 0]["cycles_per_image"])
    assert float(rows[8, 0]["acs_per_image"]) > float(rows[4, 0]["acs_per_image"])
    assert sorted(row["build_cached"] for row in done) == ["False", "True", "True", "True"]  # one build, shared
    for steps, seed in ((4, 1), (8, 0)):  # the table's figures are the golden model's
        golden = _golden(workspace, steps, seed)
        assert float(rows[steps, seed]["golden_accuracy"]) == pytest.approx(golden.accuracy)
        acs = golden.trace.counters[..., 1].sum() / 120
        assert float(rows[steps, seed]["acs_per_image"]) == pytest.approx(acs)

    assert failed["status"] == "failed" and failed["membrane_bits"] == "4" and not failed["verdict"]
    assert "WidthError" in failed["error"] and "membrane_bits=4" in failed["error"]
    assert failed["traceback"].startswith("Traceback") and "quantize.py" in failed["traceback"]
    failed_json = document["results"][4]
    assert failed_json["params"] == {"membrane_bits": 4} and failed_json["traceback"] == failed["traceback"]

    report = (out / "report.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', report)) == 3
    assert "against T" in report and "against seed" in report
    assert "4 ok, 0 mismatch, 1 failed" in report and "WidthError" in report and "quantize.py" in report
    assert json.loads((out / ".snncosim-output.json").read_text())["kind"] == "sweep"


def test_shards_add_up_to_the_unsharded_figures_through_a_scheduler(workspace, tmp_path, monkeypatch, capsys):
    """--shards 3 on a running Dask scheduler (--scheduler ADDRESS), golden model only: every image gets the spikes
    it gets unsharded, so the shards' correct predictions and ACs add up to one unsharded run's."""
    from distributed import LocalCluster

    from cosim.app.cli import main

    for name in ("digits8.npz", "mlp.py", "mlp.pt"):
        (tmp_path / name).write_bytes((workspace / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        status = main(["sweep", "--model", "mlp.py:mlp", "--weights", "mlp.pt", "--data", "digits8.npz",
                       "--grid", "T=4,8", "--shards", "3", "--no-rtl", "--scheduler", cluster.scheduler_address,
                       "--out", "sw", "-q"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    document = json.loads((tmp_path / "sw" / "results.json").read_text())
    assert document["tasks"] == 6 and document["counts"]["ok"] == 6
    assert [(r["point"], r["shard"], r["first_test_image"], r["test_images"]) for r in document["results"][:3]] == \
        [(0, 0, 0, 40), (0, 1, 40, 40), (0, 2, 80, 40)]
    for point, steps in enumerate((4, 8)):
        golden = _golden(tmp_path, steps, 0)
        shards = [r for r in document["results"] if r["point"] == point]
        correct = sum(round(r["golden_accuracy"] * r["test_images"]) for r in shards)
        assert correct == round(golden.accuracy * 120)
        assert sum(r["acs_per_image"] * r["test_images"] for r in shards) == pytest.approx(
            float(golden.trace.counters[..., 1].sum()))
        merged = document["points"][point]
        assert merged["shards"] == 3 and merged["golden_accuracy"] == pytest.approx(golden.accuracy)


def test_a_sweep_over_saved_networks_takes_their_coding_and_widths(workspace, tmp_path, monkeypatch, capsys):
    """network=rate.snn,weighted.snn (golden only, one worker): each point runs the saved network as it is, with
    the coding, K and widths it records; an FS network refuses a T other than its L·K."""
    from cosim import api
    from cosim.app.cli import main

    data = api.load_data(workspace / "digits8.npz")
    model = _mlp()
    model.load_state_dict(torch.load(workspace / "mlp.pt", weights_only=True))
    networks = {}
    for coding in ("rate", "weighted", "fs"):
        networks[coding] = api.convert(model.eval(), data, coding=coding, weight_bits=6)
        networks[coding].save(tmp_path / f"{coding}.snn")
    (tmp_path / "digits8.npz").write_bytes((workspace / "digits8.npz").read_bytes())
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    assert main(["sweep", "--data", "digits8.npz", "--grid", "network=fs.snn", "--grid", "T=8", "--out", "sw"]) == 2
    assert "an FS network takes exactly L·K = 16 steps per image" in capsys.readouterr().err
    assert tree(tmp_path) == before
    status = main(["sweep", "--data", "digits8.npz", "--grid", "network=rate.snn,weighted.snn", "--grid", "T=8,16",
                   "--no-rtl", "--workers", "1", "--out", "sw", "-q"])
    assert status == 0, capsys.readouterr().err
    document = json.loads((tmp_path / "sw" / "results.json").read_text())
    assert document["swept"] == ["network", "T"]
    for row in document["results"]:
        coding = row["network"].removesuffix(".snn")
        assert (row["coding"], row["K"], row["weight_bits"], row["ann_accuracy"]) == \
            (coding, 4 if coding == "weighted" else None, 6, networks[coding].metadata["ann"]["accuracy"]["value"])
        golden = api.simulate(networks[coding], data, steps=row["T"])
        assert row["golden_accuracy"] == pytest.approx(golden.accuracy)


DYING_MODEL_FILE = '''
import multiprocessing
import os

from torch import nn


def mlp():
    if multiprocessing.parent_process() is not None:  # on a worker process: the first one to get here dies
        try:
            os.close(os.open("died-once", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(9)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16, bias=False), nn.ReLU(), nn.Linear(16, 10, bias=False))
'''


def test_a_point_whose_worker_dies_is_reported_and_the_others_run(workspace, tmp_path):
    """A worker process that dies (here: the user's model calls os._exit on the first worker that builds it) takes
    its point with it: Dask's KilledWorker comes back as a failed row with the point's parameters, the other point
    runs on the other worker, exit status 3."""
    for name in ("digits8.npz", "mlp.pt"):
        (tmp_path / name).write_bytes((workspace / name).read_bytes())
    (tmp_path / "dying.py").write_text(DYING_MODEL_FILE)
    run = cli(["sweep", "--model", "dying.py:mlp", "--weights", "mlp.pt", "--data", "digits8.npz", "--grid",
               "norm=data,model", "--no-rtl", "--test-images", "20", "--workers", "2", "--out", "sw", "-q"],
              tmp_path, env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}, timeout=300)
    assert run.returncode == 3, run.stderr[-3000:]
    rows = json.loads((tmp_path / "sw" / "results.json").read_text())["results"]
    assert sorted(row["status"] for row in rows) == ["failed", "ok"]
    lost = next(row for row in rows if row["status"] == "failed")
    assert lost["error"].startswith("KilledWorker") and f"snncosim-point-{lost['point']}-shard-0" in lost["error"]
    assert lost["params"] == {"norm": ["data", "model"][lost["point"]]} and lost["worker"] == "(dask)"
    assert "KilledWorker" in lost["traceback"]


@pytest.fixture()
def user_dir(workspace, tmp_path):
    for name in ("digits8.npz", "mlp.py", "mlp.pt"):
        (tmp_path / name).write_bytes((workspace / name).read_bytes())
    (tmp_path / "net.snn").mkdir()
    (tmp_path / "bad.yaml").write_text("T: [32, 64\n")
    (tmp_path / "list.yaml").write_text("- T: [4]\n- 7\n")
    (tmp_path / "twice.yaml").write_text("- {T: [4]}\n- {T: [4]}\n")
    return tmp_path


MODEL = ["--model", "mlp.py:mlp", "--weights", "mlp.pt", "--data", "digits8.npz"]


@pytest.mark.parametrize("args, message", [
    (["--grid", "X=1"], "unknown key 'X'; the keys are network, coding, T"),
    (["--grid", "T=0"], "T=0 is outside 1..65535"),
    (["--grid", "T=4,4"], "T=4 appears twice"),
    (["--grid", "T=4,,8"], "an empty value"),
    (["--grid", "T"], "expected KEY=VALUE"),
    (["--grid", "P=4.5"], "is not an integer"),
    (["--grid", "coding=rate,spiky"], "'spiky' is not one of rate, weighted, fs"),
    (["--grid", "T=4", "--grid", "steps=8"], "T is given twice"),
    (["--grid", "coding=rate,fs", "--grid", "T=4"], "coding=fs, T=4 cannot run: T does not apply to fs coding"),
    (["--grid", "K=2,4"], "K and S belong to weighted coding"),
    (["--grid", "coding=weighted", "--grid", "T=4", "--grid", "S=1"], "S·K < T"),
    (["--grid", "network=net.snn", "--grid", "weight_bits=4,8"], "conversion parameters apply to a torch model"),
    (["--grid-file", "bad.yaml"], "not valid YAML at line 2"),
    (["--grid-file", "list.yaml"], "grid 2: expected a mapping KEY: [VALUES]"),
    (["--grid-file", "twice.yaml"], "the point T=4 appears in two grids"),
    (["--grid-file", "none.yaml"], "none.yaml: no such file"),
    (["--grid-file", "list.yaml", "--grid", "T=8"], "grid 2: expected a mapping"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--shards", "121"], "more shards than the 120 test images"),
    (["--shards", "60", "--rtl-images", "3"], "--rtl-images 3 is more than the 2 test images of the smallest shard"),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers sizes the local cluster"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_grids_are_refused_with_one_line_and_nothing_written(user_dir, args, message, monkeypatch, capsys):
    from cosim.app.cli import main

    monkeypatch.chdir(user_dir)
    before = tree(user_dir)
    assert main(["sweep", *MODEL, *args, "--out", "sw"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("snncosim: error: ") and message in err[0], err
    assert tree(user_dir) == before


def test_a_bad_grid_from_the_command_line(user_dir):
    """The same refusal from the real command line (a process of its own): one line, exit 2, no traceback."""
    before = tree(user_dir)
    assert_user_error(cli(["sweep", *MODEL, "--grid", "lanes=0", "--out", "sw"], user_dir), "P=0 is outside 1..64")
    assert tree(user_dir) == before


def test_network_sweeps_refuse_model_options_and_missing_dask_is_named(user_dir, monkeypatch, capsys):
    from cosim.app.cli import main

    monkeypatch.chdir(user_dir)
    before = tree(user_dir)
    cases = [
        (["--model", "mlp.py:mlp", "--grid", "network=net.snn"], "--model/--weights and the grid key network"),
        (["--weights", "mlp.pt"], "--weights belongs to --model"),
        (["--data", "digits8.npz", "--grid", "network=net.snn"], "net.snn: not an integer-network directory"),
    ]
    for args, message in cases:
        assert main(["sweep", *args, "--out", "sw"]) == 2
        assert message in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    assert main(["sweep", *MODEL, "--out", "sw"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "snncosim sweep runs on Dask" in err[0] and "pip install 'snncosim[sweep]'" in err[0]
    assert tree(user_dir) == before


def test_exit_status_and_report_of_a_mismatch(tmp_path):
    """A mismatch wins over a failure (exit 1), a failure alone is exit 3; the report names the mismatching point
    and where golden and RTL first differ."""
    from cosim.app.sweep_report import write_report
    from cosim.app.sweep_results import exit_status, write_results

    def row(point, status, **figures):
        base = {"point": point, "shard": 0, "params": {"T": 4 * (point + 1)}, "T": 4 * (point + 1), "status": status,
                "verdict": None, "energy_pj_per_image": {}}
        return {**base, **figures}

    ok = row(0, "ok", verdict="EQUIVALENT", golden_accuracy=0.5, test_images=10, cycles_per_image=100.0,
             energy_pj_per_image={"chip": 2.0})
    bad = row(1, "mismatch", verdict="MISMATCH", golden_accuracy=0.6, test_images=10, cycles_per_image=200.0,
              first_difference="image 0 step 3 layer 1: membrane of neuron 5 differs",
              energy_pj_per_image={"chip": 3.0})
    failed = row(2, "failed", error="WidthError: too narrow", traceback="Traceback (most recent call last): ...")
    assert exit_status([ok]) == 0 and exit_status([ok, failed]) == 3 and exit_status([ok, bad, failed]) == 1
    write_results(tmp_path, [ok, bad, failed], ("T",), ["chip"], {"points": 3})
    report = write_report(tmp_path, [ok, bad, failed], ("T",), ["chip"], {"points": 3}).read_text()
    assert "1 ok, 1 mismatch, 1 failed" in report and "membrane of neuron 5 differs" in report
    assert report.count("data:image/png;base64,") == 1
    with open(tmp_path / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["status"] for r in table] == ["ok", "mismatch", "failed"] and table[1]["energy_pj_chip"] == "3.0"
    assert json.loads((tmp_path / "results.json").read_text())["exit_status"] == 1
