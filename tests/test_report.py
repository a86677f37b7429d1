"""The HTML report (cosim/app/report_html.py) from a synthetic run directory, and the `chips` / `report` commands."""

from __future__ import annotations

import json
import re
import time
from fractions import Fraction

import numpy as np
import pytest

from cosim.app.cli import main
from cosim.app.report_html import load_run, write_report
from golden.core.counters import COUNTER_NAMES
from golden.core.cycle_model import C_IMAGE, step_cycles
from golden.core.errors import SnnCosimError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams
from golden.core.trace import Trace
from golden.energy import estimate as E

LANES = 4


def _network() -> IntegerNetwork:
    rng = np.random.default_rng(0)
    return IntegerNetwork(
        input_shape=(12,),
        layers=[DenseLayer(rng.integers(-50, 50, (6, 12)), np.zeros(6, np.int64), np.full(6, 60), NeuronParams()),
                DenseLayer(rng.integers(-50, 50, (3, 6)), np.zeros(3, np.int64), np.full(3, 60), NeuronParams())])


def _trace(net: IntegerNetwork, seed: int, n_images: int = 2, steps: int = 6, source: str = "golden") -> Trace:
    """Random spikes with the counters SPEC §5 gives for them (dense layers), so the files are self-consistent."""
    rng = np.random.default_rng(seed)
    sizes = net.layer_sizes
    inputs = rng.random((n_images, steps, sizes[0])) < 0.3
    spikes = [rng.random((n_images, steps, n)) < 0.4 for n in sizes[1:]]
    sources = [inputs] + spikes[:-1]
    s_in = np.stack([src.sum(-1) for src in sources], -1).astype(np.int64)  # [N, T, L]
    counters = np.zeros((n_images, steps, len(sizes) - 1, len(COUNTER_NAMES)), np.int64)
    k = {n: i for i, n in enumerate(COUNTER_NAMES)}
    groups = np.array([-(-n // LANES) for n in sizes[1:]])
    counters[..., k["cycles"]] = step_cycles(s_in, sizes, LANES)
    counters[..., k["acs"]] = s_in * np.array(sizes[1:])
    counters[..., k["spikes"]] = np.stack([s.sum(-1) for s in spikes], -1)
    counters[..., k["neuron_updates"]] = np.array(sizes[1:])
    counters[..., k["weight_reads"]] = s_in * groups
    counters[..., k["state_reads"]] = groups
    counters[..., k["state_writes"]] = groups
    return Trace(spikes=spikes, counters=counters,
                 image_cycles=counters[..., k["cycles"]].sum(axis=(1, 2)) + C_IMAGE,
                 predictions=spikes[-1].sum(1).argmax(-1), input_spikes=inputs,
                 meta={"source": source, "lanes": LANES, "input_coding": "rate"})


def _run_dir(tmp_path, *, diverge: bool = False, extras: bool = True):
    run = tmp_path / "run"
    run.mkdir()
    net = _network()
    net.save(run / "network.snn")
    golden = _trace(net, seed=1)
    rtl = _trace(net, seed=1, source="rtl")
    if diverge:
        rtl.spikes[0][1, 2, 3] = not rtl.spikes[0][1, 2, 3]
    golden.save(run / "golden_trace.npz")
    rtl.save(run / "rtl_trace.npz")
    summary = {
        "options": {"lanes": LANES, "neuron": "if", "reset": "subtract", "norm": "data", "weight_bits": 8,
                    "membrane_bits": 24},
        "ann_accuracy": 0.9, "snn_accuracy": 0.85, "test_images": 2, "steps": 6, "rtl_images": 2,
        "equivalent": not diverge, "first_difference": None,
        "golden_totals": golden.totals(), "rtl_totals": rtl.totals(), "golden_totals_rtl_images": golden.totals(),
        "rtl_accuracy": 0.5, "spikes_per_neuron": [1.0, 1.0], "ann_macs_per_image": 12 * 6 + 6 * 3,
        "cycles_per_image": float(golden.image_cycles.mean()), "cycle_bound_ratio": 1.1,
        "rtl_cycles_per_second": 1000.0, "rtl_images_per_second": 1.0, "phase_seconds": {"golden": 0.1},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    if extras:
        (run / "curves.json").write_text(json.dumps({
            "rate": {"steps": [1, 2, 4, 6], "accuracy": [0.2, 0.5, 0.8, 0.85], "spikes_per_image": [2, 4, 8, 12],
                     "acs_per_image": [20, 40, 80, 120]},
            "weighted": {"steps": [2, 4, 6], "accuracy": [0.6, 0.8, 0.9], "spikes_per_image": [1, 2, 3],
                         "acs_per_image": [10, 20, 30]},
            "ann_accuracy": 0.9}))
        (run / "traces").mkdir()
        _trace(net, seed=2, steps=4).save(run / "traces" / "weighted_golden.npz")
    return run, golden, rtl


def _images(text: str) -> list[str]:
    return re.findall(r'src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', text)


@pytest.fixture(scope="module")
def equivalent_report(tmp_path_factory):
    """One report of an equivalent run, shared by the tests that only read it."""
    run, golden, rtl = _run_dir(tmp_path_factory.mktemp("equivalent"))
    t0 = time.perf_counter()
    path = write_report(run)
    return run, golden, rtl, path, time.perf_counter() - t0


def test_report_of_equivalent_run(equivalent_report):
    run, golden, rtl, path, seconds = equivalent_report
    assert seconds < 10
    assert path == run / "report.html"
    text = path.read_text()
    assert "EQUIVALENT" in text and "MISMATCH" not in text
    assert len(_images(text)) == 4  # curves, raster, per-layer, energy
    assert not re.search(r'(src|href)="(?!data:)', text)  # self-contained: nothing external
    for name in E.shipped_chip_names():
        assert name in text
    assert "no curves.json" not in text
    assert "weighted: golden trace (2 images)" in text


def test_report_marks_the_first_divergence(tmp_path):
    run, _, _ = _run_dir(tmp_path, diverge=True)
    text = write_report(run).read_text()
    assert "MISMATCH" in text
    assert "image 1, step 3, layer 1, neuron 3: spike" in text


def test_energy_json_matches_an_independent_recomputation(equivalent_report):
    run, golden, rtl, _, _ = equivalent_report
    data = json.loads((run / "energy.json").read_text())
    rtl_set = next(s for s in data["sets"] if s["key"] == "cosim_rtl")
    tot = rtl.totals()
    loihi = next(c for c in rtl_set["chips"] if c["chip"] == "loihi")
    expected = tot["acs"] * Fraction("23.6") + tot["neuron_updates"] * 81 + tot["spikes"] * Fraction("1.7")
    assert Fraction(loihi["snn"]["total_pj_exact"]) == expected
    assert loihi["snn"]["total_pj"] == float(expected)
    assert loihi["ann"] is None and "not applicable" in loihi["ann_unavailable"]
    cmos = next(c for c in rtl_set["chips"] if c["chip"] == "cmos45nm")
    macs = [12 * 6, 6 * 3]
    ann = sum(macs) * Fraction("0.3") + sum(-(-m * 8 // 64) for m in macs) * 10
    assert Fraction(cmos["ann"]["per_image_pj_exact"]) == ann
    assert Fraction(rtl_set["ac_per_mac_exact"]) == Fraction(tot["acs"], 2 * sum(macs))


def test_report_tolerates_a_bare_run_directory(tmp_path):
    run, _, _ = _run_dir(tmp_path, extras=False)
    for name in ("golden_trace.npz", "rtl_trace.npz"):
        (run / name).unlink()
    summary = json.loads((run / "summary.json").read_text())
    summary.update(equivalent=None, rtl_images=0, rtl_totals={}, golden_totals_rtl_images={})
    (run / "summary.json").write_text(json.dumps(summary))
    text = write_report(run).read_text()
    assert "Not co-simulated" in text
    assert "no curves.json" in text and "no golden trace in this run" in text
    assert len(_images(text)) == 1  # only the energy chart: the test part's totals are still priced
    assert "test part, golden (2 images)" in text


def test_report_survives_a_damaged_optional_file(tmp_path):
    run, _, _ = _run_dir(tmp_path)
    (run / "rtl_trace.npz").write_bytes(b"not a zip")
    (run / "curves.json").write_text("{broken")
    text = write_report(run).read_text()
    assert "rtl_trace.npz: not read" in text and "curves.json: not read" in text


def test_report_rejects_a_directory_without_summary(tmp_path):
    with pytest.raises(SnnCosimError, match="not a snncosim run directory"):
        load_run(tmp_path)
    with pytest.raises(SnnCosimError, match="no such run directory"):
        load_run(tmp_path / "missing")


# --------------------------------------------------------------------------------------------- CLI
def test_cli_chips_lists_every_shipped_model(capsys):
    assert main(["chips"]) == 0
    out = capsys.readouterr().out
    for name in E.shipped_chip_names():
        assert re.search(rf"^{re.escape(name)} — ", out, re.M), name
    assert "scope: all_in" in out and "doi:10.1109/ISSCC.2014.6757323" in out


def test_cli_chips_reports_a_bad_user_model_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: snncosim-chip-model\nversion: 1\nname: x\n")
    assert main(["chips", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("snncosim: error: ") and "bad.yaml: title: missing" in err[0]


def test_cli_report_writes_and_prints_the_path(tmp_path, capsys):
    run, _, _ = _run_dir(tmp_path)
    assert main(["report", str(run), "--chip", "truenorth"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert (run / "report.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_raster_of_a_long_run_draws_a_window_around_the_divergence(tmp_path):
    from cosim.app.report_html import RASTER_MAX_STEPS, plot_raster

    net = _network()
    golden = _trace(net, seed=3, n_images=1, steps=RASTER_MAX_STEPS + 44)
    rtl = _trace(net, seed=3, n_images=1, steps=RASTER_MAX_STEPS + 44)
    rtl.spikes[1][0, -10, 0] = not rtl.spikes[1][0, -10, 0]
    uri = plot_raster(golden, rtl, 0, RASTER_MAX_STEPS + 35)
    assert uri.startswith("data:image/png;base64,")
