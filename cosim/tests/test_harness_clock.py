"""Where the clock lives (issue 14, "a cheaper clock than --timing"): the harness's own Verilog clock (built with
``--timing``, the default) and cocotb's GPI clock (a harness without a clock, built without ``--timing``) give the
same trace, bit for bit and cycle for cycle. scripts/bench_scale.py --clocks measures them (the GPI clock is ~3x
slower here, so the default stays)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.harness import HarnessParams, harness_verilog
from cosim.session import check_equivalence, cosimulate, golden_reference, prepare_engine
from golden.core.errors import SnnCosimError
from golden.core.network import NeuronParams
from hw.config import EngineConfig

from .conftest import random_network, random_spikes


def test_gpi_clock_gives_the_same_trace(tmp_path, build_dir, toolchain):
    rng = np.random.default_rng(11)
    net = random_network(rng, [12, 7, 3], [NeuronParams("if", "subtract")])
    spikes = random_spikes(rng, 3, 6, net.n_inputs)
    config = EngineConfig.for_network(net, lanes=4)
    runs = {clock: cosimulate(net, spikes, engine=prepare_engine(config, build_dir=build_dir, clock=clock),
                              work_dir=tmp_path / clock)
            for clock in ("verilog", "gpi")}
    golden = golden_reference(net, spikes, lanes=4)
    for clock, run in runs.items():
        comparison = check_equivalence(golden, run.trace)
        assert comparison.equivalent, f"{clock}: {comparison.summary()}"
    np.testing.assert_array_equal(runs["gpi"].trace.image_cycles, runs["verilog"].trace.image_cycles)
    assert runs["gpi"].simulated_cycles == runs["verilog"].simulated_cycles


def test_gpi_harness_has_no_clock_and_bad_clock_is_refused():
    params = HarnessParams.from_engine_config(EngineConfig(layer_sizes=(8, 4), lanes=4))
    assert "always begin #10 clk" in harness_verilog(params)
    gpi = harness_verilog(params, clock="gpi")
    assert "#10" not in gpi and "#5" not in gpi and "clk is driven from outside" in gpi
    with pytest.raises(SnnCosimError, match="clock must be one of"):
        harness_verilog(params, clock="python")
