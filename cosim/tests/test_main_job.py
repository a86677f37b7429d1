"""The main job (``snncosim run``) end to end on a small budget: train/reuse, convert, golden, RTL, energy, report."""

from __future__ import annotations

import json

import numpy as np

from cosim.app.cli import main


def test_snncosim_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["run", "-q", "--test-images", "100", "--rtl-images", "3", "-T", "16", "--other-codings", "40",
                   "--full-trace", "--out", str(out), "--json", str(tmp_path / "figures.json")])
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


def test_snncosim_run_digest_mode_two_jobs(tmp_path, capsys):
    """The digest check (the default above 100 RTL images): images over two simulator processes; the same figures as a
    full-trace run of the same images, and no full traces written when every digest matches."""
    out = tmp_path / "run"
    status = main(["run", "-q", "--test-images", "100", "--rtl-images", "7", "-T", "16", "--other-codings", "0",
                   "--no-report", "--jobs", "2", "--digest", "--out", str(out), "--json", str(tmp_path / "figures.json")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "verdict: EQUIVALENT" in printed and "2, digest" in printed and "peak memory" in printed
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["rtl_jobs"] == 2 and figures["rtl_check"] == "digest" and figures["rtl_mismatched_images"] == 0
    assert figures["rtl_totals"] == figures["golden_totals_rtl_images"] and figures["rtl_totals"]["acs"] > 0
    assert figures["peak_rss_mb"] > 0
    assert not (out / "golden_trace.npz").exists() and not (out / "rtl_trace.npz").exists()
    with np.load(out / "digests.npz") as saved:
        assert saved["rtl_digests"].shape == (7,)
        assert (saved["rtl_digests"] == saved["golden_digests"]).all()
        assert len(set(saved["rtl_digests"].tolist())) == 7  # one digest per image, not a constant
