"""Where the clock lives (issue 14, "a cheaper clock than --timing"): the simulation's C++ main toggling the input
``clk`` (cosim/hdl/clock_main.cpp, the default), the harness's own Verilog clock (built with ``--timing``) and
cocotb's GPI clock (a harness without a clock, built without ``--timing``) give the same trace, bit for bit and
cycle for cycle. scripts/bench_scale.py --clocks measures them (C++ main ~1.5x faster than --timing, GPI ~3x
slower)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.harness import HarnessParams, harness_clock_style, harness_verilog
from cosim.session import check_equivalence, cosimulate, golden_reference, prepare_engine
from golden.core.errors import SnnCosimError
from golden.core.network import NeuronParams
from hw.config import EngineConfig

from .conftest import random_network, random_spikes

CLOCKS = ("cpp", "verilog", "gpi")


def test_every_clock_gives_the_same_trace(tmp_path, build_dir, toolchain):
    rng = np.random.default_rng(11)
    net = random_network(rng, [12, 7, 3], [NeuronParams("if", "subtract")])
    spikes = random_spikes(rng, 3, 6, net.n_inputs)
    config = EngineConfig.for_network(net, lanes=4)
    runs = {clock: cosimulate(net, spikes, engine=prepare_engine(config, build_dir=build_dir, clock=clock),
                              work_dir=tmp_path / clock)
            for clock in CLOCKS}
    golden = golden_reference(net, spikes, lanes=4)
    traces = {clock: (tmp_path / clock).rglob("trace.txt") for clock in CLOCKS}
    for clock, run in runs.items():
        comparison = check_equivalence(golden, run.trace)
        assert comparison.equivalent, f"{clock}: {comparison.summary()}"
        np.testing.assert_array_equal(run.trace.image_cycles, runs["verilog"].trace.image_cycles)
        assert run.simulated_cycles == runs["verilog"].simulated_cycles
    texts = {clock: sorted(path.read_text() for path in paths) for clock, paths in traces.items()}
    assert texts["cpp"] and texts["cpp"] == texts["verilog"] == texts["gpi"]


def test_harness_clock_text_and_bad_clock_is_refused():
    params = HarnessParams.from_engine_config(EngineConfig(layer_sizes=(8, 4), lanes=4))
    cpp = harness_verilog(params)
    assert "module tb_top(input logic clk);" in cpp and "#10" not in cpp and cpp.count("logic clk") == 1
    verilog = harness_verilog(params, clock="verilog")
    assert "module tb_top;" in verilog and "always begin #10 clk" in verilog
    gpi = harness_verilog(params, clock="gpi")
    assert "#10" not in gpi and "#5" not in gpi and "clk is driven from outside" in gpi
    # waveforms take the 50 % duty-cycle Verilog clock, wherever the clock would live otherwise
    assert harness_clock_style("cpp", waves=True) == "waves" and "always #5 clk" in harness_verilog(params, waves=True)
    with pytest.raises(SnnCosimError, match="clock must be one of"):
        harness_verilog(params, clock="python")
