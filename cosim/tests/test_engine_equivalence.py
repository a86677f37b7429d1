"""The RTL engine reproduces the golden integer model bit for bit and cycle for cycle (SPEC §6).

Random dense networks with random integer weights (negative ones included), every neuron model, saturation
(small membrane widths), several images; different lane counts P, including P at which every layer is one lane
group; state reset between images; the checker itself is tested by mutating one spike.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from cosim.session import check_equivalence, compare_files, config_for_networks, cosimulate, golden_reference
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, TraceMismatch
from golden.core.network import NeuronParams
from golden.core.trace import Trace

from .conftest import NEURON_VARIANTS, random_network, random_spikes, with_neurons

# (name, layer sizes, lanes, membrane_bits): one Verilator build each, shared by every neuron variant
SHAPES = {
    # three lane groups in layer 1, padding lanes in both layers, 10-bit membranes: saturation is common
    "p8": ([40, 20, 10], 8, 10),
    # P >= every layer: one lane group per layer, one input word per step
    "p8-one-group": ([8, 7, 5], 8, 12),
    # odd P and three layers
    "p3-three-layers": ([13, 9, 7, 4], 3, 14),
}


def _networks(shape: str, seed: int = 0) -> dict:
    sizes, lanes, membrane_bits = SHAPES[shape]
    rng = np.random.default_rng(seed)
    base = random_network(rng, sizes, [NEURON_VARIANTS["if-subtract"]], membrane_bits=membrane_bits,
                          weight_range=(-90, 127), threshold_range=(30, min(400, (1 << (membrane_bits - 1)) - 1)))
    return {name: with_neurons(base, neuron) for name, neuron in NEURON_VARIANTS.items()}


def _engine(engines, shape: str):
    """The one engine of a shape: widths generous enough for every random network of that shape, so that every
    test of the shape (any seed, any neuron variant) shares one build."""
    sizes, lanes, membrane_bits = SHAPES[shape]
    config = config_for_networks(_networks(shape).values(), lanes=lanes, acc_bits=20, bias_bits=8,
                                 threshold_bits=membrane_bits - 1)
    return engines(config)


@pytest.fixture(scope="module", params=sorted(SHAPES))
def shape(request, engines):
    """One engine per shape, built once; the networks of every neuron variant."""
    return request.param, SHAPES[request.param][1], _networks(request.param), _engine(engines, request.param)


@pytest.mark.parametrize("variant", sorted(NEURON_VARIANTS))
def test_random_network_is_bit_and_cycle_exact(shape, variant, tmp_path):
    name, lanes, networks, engine = shape
    net = networks[variant]
    spikes = random_spikes(np.random.default_rng(zlib.crc32(f"{name}/{variant}".encode())), 5, 12, net.n_inputs)
    rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes, lanes=lanes)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert "membranes" in comparison.checked
    # the test exercises something: spikes in every layer, and (in the 10-bit network) saturations
    assert all(s.any() for s in rtl.trace.spikes), "a layer never spiked: the test would prove little"
    if name == "p8" and variant.startswith("if"):
        assert rtl.trace.counter("saturations").sum() > 0
    # the hardware's own totals equal the per-step counters, and cocotb read the same totals
    assert (rtl.hardware_totals == rtl.trace.counters.sum(axis=(1, 2))).all()
    assert rtl.problems == []


def test_state_is_reset_between_images(engines, tmp_path):
    """Image B gives the same trace after image A as alone (FINN #796: state leaking between samples)."""
    networks = _networks("p8", seed=3)
    net = networks["lif-floor"]
    engine = _engine(engines, "p8")
    rng = np.random.default_rng(11)
    a = random_spikes(rng, 1, 10, net.n_inputs, rate=(0.5, 0.9))  # drives membranes far from zero
    b = random_spikes(rng, 1, 10, net.n_inputs)
    both = cosimulate(net, np.concatenate([a, b], axis=1), engine=engine, work_dir=tmp_path / "ab").trace
    alone = cosimulate(net, b, engine=engine, work_dir=tmp_path / "b").trace
    comparison = check_equivalence(alone, both.select([1]))
    assert comparison.equivalent, comparison.summary()
    assert check_equivalence(golden_reference(net, np.concatenate([a, b], axis=1), SHAPES["p8"][1]),
                             both).equivalent


def test_checker_catches_one_flipped_spike(engines, tmp_path):
    """Mutation test of the checker (hls4ml #459): one flipped RTL spike fails the comparison, which names the
    image, step, layer and neuron, saves both traces and a report that `snncosim compare` reproduces."""
    networks = _networks("p8", seed=4)
    net = networks["if-zero"]
    lanes = SHAPES["p8"][1]
    engine = _engine(engines, "p8")
    spikes = random_spikes(np.random.default_rng(5), 3, 8, net.n_inputs)
    rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / "rtl").trace
    golden = golden_reference(net, spikes, lanes)
    assert check_equivalence(golden, rtl).equivalent

    mutated = Trace(spikes=[s.copy() for s in rtl.spikes], counters=rtl.counters, image_cycles=rtl.image_cycles,
                    predictions=rtl.predictions, membranes=rtl.membranes, input_spikes=rtl.input_spikes,
                    meta=rtl.meta)
    mutated.spikes[1][2, 5, 7] ^= True  # image 2, step 6, layer 2, neuron 7
    save = tmp_path / "mismatch"
    comparison = check_equivalence(golden, mutated, save)
    assert not comparison.equivalent
    d = comparison.first_difference
    assert (d.image, d.step, d.layer, d.neuron, d.quantity) == (2, 6, 2, 7, "spike")
    assert (d.golden, d.rtl) == (int(golden.spikes[1][2, 5, 7]), int(not golden.spikes[1][2, 5, 7]))
    report = (save / "mismatch.txt").read_text()
    assert "image 2, step 6, layer 2, neuron 7" in report
    assert not compare_files(save / "golden_trace.npz", save / "rtl_trace.npz").equivalent
    with pytest.raises(TraceMismatch, match="image 2, step 6, layer 2, neuron 7"):
        check_equivalence(golden, mutated, strict=True)


def test_mutated_counter_and_membrane_are_caught(engines, tmp_path):
    networks = _networks("p8-one-group", seed=6)
    net = networks["if-subtract"]
    lanes = SHAPES["p8-one-group"][1]
    engine = _engine(engines, "p8-one-group")
    spikes = random_spikes(np.random.default_rng(7), 2, 6, net.n_inputs)
    rtl = cosimulate(net, spikes, engine=engine).trace
    golden = golden_reference(net, spikes, lanes)
    membranes = [m.copy() for m in rtl.membranes]
    membranes[0][1, 3, 2] += 1
    bad = Trace(rtl.spikes, rtl.counters, rtl.image_cycles, rtl.predictions, membranes)
    d = check_equivalence(golden, bad).first_difference
    assert (d.image, d.step, d.layer, d.neuron, d.quantity) == (1, 4, 1, 2, "membrane")
    counters = rtl.counters.copy()
    counters[0, 2, 1, COUNTER_NAMES.index("cycles")] += 1
    bad = Trace(rtl.spikes, counters, rtl.image_cycles, rtl.predictions, rtl.membranes)
    d = check_equivalence(golden, bad).first_difference
    assert (d.image, d.step, d.layer, d.quantity) == (0, 3, 2, "counter cycles")


def test_harness_reports_a_short_stimulus(engines, tmp_path):
    """A stimulus file with too few words stops the run with the harness's one-line error, not a hang."""
    from cosim import runner
    from cosim.harness import write_stimulus_file
    from hw.config_image import config_words, write_config_hex

    networks = _networks("p8-one-group", seed=8)
    net = networks["if-zero"]
    engine = _engine(engines, "p8-one-group")
    config = engine.config
    spikes = random_spikes(np.random.default_rng(9), 2, 4, net.n_inputs)
    write_config_hex(config_words(net, config), tmp_path / "config.hex", config.cfg_data_bits)
    write_stimulus_file(spikes.transpose(1, 0, 2), config.lanes, tmp_path / "stimulus.txt")  # file: image-major
    lines = (tmp_path / "stimulus.txt").read_text().splitlines()
    (tmp_path / "stimulus.txt").write_text("\n".join(lines[:-2]) + "\n")  # drop the last two words
    (tmp_path / "job.json").write_text(
        f'{{"n_images": 2, "n_counters": 9, "counter_bits": {config.counter_bits}, '
        f'"summary": "{tmp_path / "summary.json"}"}}')
    with pytest.raises(runner.SimulationError, match="stimulus file ended"):
        runner.run(engine.handle, "cosim.tb_engine", test_dir=tmp_path, plusargs=[
            f"+snn_job={tmp_path / 'job.json'}", f"+snn_cfg={tmp_path / 'config.hex'}",
            f"+snn_stim={tmp_path / 'stimulus.txt'}", f"+snn_trace={tmp_path / 'trace.txt'}"])


def test_bad_inputs_are_one_line_errors(engines):
    networks = _networks("p8-one-group", seed=10)
    net = networks["if-zero"]
    engine = _engine(engines, "p8-one-group")
    with pytest.raises(SnnCosimError, match=r"shape \[T, N, 8\] \(time-major\)"):
        cosimulate(net, np.zeros((3, 2, 7), dtype=bool), engine=engine)
    with pytest.raises(SnnCosimError, match="bool"):
        cosimulate(net, np.full((3, 1, 8), 2), engine=engine)
    other = random_network(np.random.default_rng(1), [8, 7, 6], [NeuronParams()], membrane_bits=12)
    with pytest.raises(SnnCosimError, match="layer sizes"):
        cosimulate(other, np.zeros((2, 1, 8), dtype=bool), engine=engine)
