"""Waveforms on request: a traced build writes a VCD/FST of the engine run, and tracing changes no result."""

from __future__ import annotations

import numpy as np

from cosim.session import check_equivalence, cosimulate, golden_reference
from golden.core.network import NeuronParams

from .conftest import random_network, random_spikes


def test_waves_are_written_and_the_run_stays_equivalent(tmp_path, build_dir, toolchain):
    rng = np.random.default_rng(5)
    net = random_network(rng, [10, 6, 3], [NeuronParams("if", "subtract")])
    spikes = random_spikes(rng, 2, 5, net.n_inputs)
    run = cosimulate(net, spikes, lanes=4, waves=True, work_dir=tmp_path / "rtl", build_dir=build_dir)
    assert run.waves_file is not None and run.waves_file.is_file()
    assert run.waves_file.suffix in (".vcd", ".fst")
    if run.waves_file.suffix == ".vcd":
        header = run.waves_file.read_text(errors="replace")[:200_000]
        assert "$enddefinitions" in header and "rec_valid" in header and "spike_in_data" in header
    else:
        assert run.waves_file.stat().st_size > 0
    comparison = check_equivalence(golden_reference(net, spikes, lanes=4), run.trace)
    assert comparison.equivalent, comparison.summary()
