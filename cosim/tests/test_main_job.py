"""The main job (``snncosim run``) end to end on a small budget: train/reuse, convert, golden, RTL, energy, report."""

from __future__ import annotations

import json

from cosim.app.cli import main


def test_snncosim_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["run", "-q", "--test-images", "100", "--rtl-images", "3", "-T", "16", "--other-codings", "40",
                   "--out", str(out), "--json", str(tmp_path / "figures.json")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "verdict: EQUIVALENT" in printed
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["equivalent"] is True and figures["rtl_images"] == 3
    # the RTL counters are the golden counters of the same images, and the figures are consistent
    assert figures["rtl_totals"] == figures["golden_totals_rtl_images"]
    assert 0.5 < figures["snn_accuracy"] <= 1.0 and 0.9 < figures["ann_accuracy"] <= 1.0
    assert figures["energy_lines"] and "truenorth" in "".join(figures["energy_lines"])
    # the run directory holds everything `snncosim compare` and `snncosim report` need
    for name in ("network.snn", "golden_trace.npz", "rtl_trace.npz", "curves.json", "summary.json", "report.html",
                 "traces/weighted_golden.npz", "traces/fs_golden.npz"):
        assert (out / name).exists(), name
    curves = json.loads((out / "curves.json").read_text())
    assert set(curves) >= {"rate", "weighted", "fs", "ann_accuracy"}
    assert main(["compare", str(out / "golden_trace.npz"), str(out / "rtl_trace.npz")]) == 0
    html = (out / "report.html").read_text()
    assert "EQUIVALENT" in html and html.count("data:image/png;base64,") >= 3
