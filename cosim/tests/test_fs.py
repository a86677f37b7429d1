"""FS neurons (Stöckl & Maass 2021) on the RTL: images streamed back to back through the layer pipeline with one
``start`` (a new image every 2K global steps), beats mapped back to per-image traces of the golden form, bit- and
cycle-exact against the golden integer model, the stream's hardware totals and cycles cross-checked.

* the project's trained MNIST MLP (784-256-10) converted to FS with K = 8 and K = 10 (one build for both), 20 test
  images in one start; the same images in several starts;
* random networks with SiLU hidden layers (the shipped shift-only SiLU table quantised with ``shift_only``: some
  d are negative, so the receiving layer subtracts the shifted sum), saturating membranes, random input codes; a
  rate-coded IF network on the same FS build; the trace checker catches a lost prediction beat and a duplicated
  summary beat.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cosim import harness
from cosim.session import check_equivalence, config_for_networks, cosimulate, golden_reference
from golden.core import cycle_model
from golden.core.errors import SnnCosimError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams
from golden.simulation.encoding import fs_encode

from .conftest import random_network, random_spikes

N_IMAGES = 20
LANES = 8
PHASES = (8, 10)


# ------------------------------------------------------------------------------------------- helpers
def check_stream(net: IntegerNetwork, rtl, golden) -> None:
    """The RTL's own stream reports against the golden per-image traces: every start's hardware totals are the sum
    of its images' counters, its cycles are ``fs_stream_cycles`` of their cycles (one C_IMAGE per start), and the
    prediction beats come one period apart: between two of them the engine spends exactly the cycles of the 2K
    global steps in between, as the golden stream schedule lays them out."""
    streams, K, latency = rtl.fs, net.phases, net.fs_latency
    for k, (base, count) in enumerate(zip(streams.bases.tolist(), streams.counts.tolist())):
        part = golden.select(np.arange(base, base + count))
        np.testing.assert_array_equal(rtl.hardware_totals[k], part.counters.sum(axis=(0, 1, 2)))
        stream = cycle_model.fs_stream_cycles(part.counter("cycles"), K)
        assert streams.cycles[k] == stream.total_cycles
        assert streams.cycles[k] == part.image_cycles.sum() - (count - 1) * cycle_model.C_IMAGE
        assert streams.predictions[k] == golden.predictions[base + count - 1]
        per_step = np.cumsum(stream.step_cycles.sum(axis=1))
        beat_steps = 2 * K * np.arange(count) + latency  # global step of each image's prediction beat
        np.testing.assert_array_equal(np.diff(streams.pred_cycles[base:base + count]),
                                      np.diff(per_step[beat_steps - 1]))


# ------------------------------------------------------------------------------------------- MNIST
@pytest.fixture(scope="module")
def mnist_fs():
    from golden.conversion.fs_convert import fs_convert
    from golden.data import mnist as golden_data
    from golden.training import ann_trainer as golden_train

    split = golden_data.default_split()
    model = golden_train.default_mlp(progress=False)
    calibration = split.train_images[:500]
    # one membrane width for both (K = 10 needs the wider one), so K = 8 and K = 10 share one build
    bits = max(fs_convert(model, calibration, phases=k).integer.membrane_bits for k in PHASES)
    results = {k: fs_convert(model, calibration, phases=k, membrane_bits=bits) for k in PHASES}
    pixels = torch.as_tensor(np.asarray(split.test_images[:N_IMAGES]))
    spikes = {k: r.input_spikes(pixels).numpy() for k, r in results.items()}  # time-major [L·K, N, 784]
    networks = {k: r.integer for k, r in results.items()}
    return networks, spikes, np.asarray(split.test_labels[:N_IMAGES])


@pytest.mark.parametrize("phases", PHASES)
def test_trained_mnist_fs_stream_is_bit_and_cycle_exact(mnist_fs, engines, phases, tmp_path):
    networks, spikes, labels = mnist_fs
    net = networks[phases]
    assert net.input_coding == "fs" and [layer.neuron.kind for layer in net.layers] == ["fs", "acc"]
    engine = engines(config_for_networks(networks.values(), lanes=LANES))  # one build for K = 8 and K = 10
    rtl = cosimulate(net, spikes[phases], engine=engine, work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes[phases], lanes=LANES)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert rtl.problems == []
    assert rtl.trace.n_steps == net.fs_latency == 2 * phases
    assert rtl.fs.counts.tolist() == [N_IMAGES], "all images stream through one start"
    check_stream(net, rtl, golden)
    assert (rtl.trace.predictions == labels).mean() >= 0.85
    f = rtl.fs_figures()
    assert f["stream_cycles"] == golden.image_cycles.sum() - (N_IMAGES - 1) * cycle_model.C_IMAGE
    print(f"\nFS K={phases}: {rtl.summary()}\n  steady state {f['steady_cycles_per_image']:,.0f} cycles/image "
          f"(a new image every {f['period_steps']} steps; per-image work {f['sequential_cycles_per_image']:,.0f}, "
          f"layer-parallel bound {f['pipelined_cycles_per_image']:,.0f}); accuracy "
          f"{(rtl.trace.predictions == labels).mean():.2f}")


def test_mnist_fs_in_several_starts(mnist_fs, engines, tmp_path):
    """The same 20 images in starts of at most 7 (each start refills and drains the pipeline): per-image traces
    unchanged, one done and C_IMAGE per start."""
    networks, spikes, _ = mnist_fs
    net = networks[8]
    engine = engines(config_for_networks(networks.values(), lanes=LANES))
    rtl = cosimulate(net, spikes[8], engine=engine, work_dir=tmp_path / "rtl", images_per_start=7)
    golden = golden_reference(net, spikes[8], lanes=LANES)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert rtl.fs.bases.tolist() == [0, 7, 14] and rtl.fs.counts.tolist() == [7, 7, 6]
    check_stream(net, rtl, golden)


# ------------------------------------------------------------------------------------------- SiLU tables
SILU_SIZES = [16, 12, 8, 5]
SILU_LANES = 4
SILU_MEMBRANE_BITS = 15


def silu_params(scale: float, weight_scale: float) -> NeuronParams:
    """The shipped shift-only SiLU table (golden/conversion/fs_tables.py, K = 16) in integers: T, h ×scale, d the nearest signed
    power of two of d·weight_scale."""
    from golden.conversion.fs_tables import quantize_table, table_for

    return quantize_table(table_for("silu", shift_only=True), scale, weight_scale, shift_only=True).neuron_params()


def silu_network(seed: int) -> IntegerNetwork:
    """Two SiLU layers (membrane scales 16 and 12 per activation unit, d ×8 and ×4) and an 'acc' output layer;
    small random weights so that most membranes stay in the table's range and the 15-bit membrane saturates only
    for large input codes."""
    rng = np.random.default_rng(seed)
    neurons = [silu_params(16, 8), silu_params(12, 4), NeuronParams("acc")]
    weight_ranges = [(-3, 3), (-4, 4), (-6, 6)]
    layers = []
    for index, (n_in, n_out) in enumerate(zip(SILU_SIZES[:-1], SILU_SIZES[1:])):
        lo, hi = weight_ranges[index]
        layers.append(DenseLayer(weight=rng.integers(lo, hi + 1, (n_out, n_in)), bias=rng.integers(-40, 61, n_out),
                                 threshold=np.ones(n_out, dtype=np.int64), neuron=neurons[index],
                                 name=f"fc{index + 1}"))
    phases = len(neurons[0].fs_weight)
    return IntegerNetwork(input_shape=(SILU_SIZES[0],), layers=layers, weight_bits=6,
                          membrane_bits=SILU_MEMBRANE_BITS, input_coding="fs", input_bits=phases,
                          phases=phases).validate()


def random_codes(rng: np.random.Generator, n_images: int, n_inputs: int, phases: int) -> np.ndarray:
    """K-bit input codes: mostly small (each input keeps a random number of the low bits of a random code), and
    the first image at full range, which saturates the membranes."""
    codes = rng.integers(0, 1 << phases, (n_images, n_inputs))
    codes[1:] >>= rng.integers(phases - 8, phases, (n_images - 1, n_inputs))
    return codes


@pytest.fixture(scope="module")
def silu_setup(engines):
    networks = [silu_network(seed) for seed in range(2)]
    assert all(any(d < 0 for d in layer.neuron.fs_weight) for net in networks for layer in net.layers[:-1]), \
        "the shift-only SiLU tables should have negative d entries"
    rate = random_network(np.random.default_rng(5), SILU_SIZES, [NeuronParams("if", "subtract")],
                          membrane_bits=SILU_MEMBRANE_BITS, weight_bits=6, weight_range=(-12, 16),
                          bias_range=(-40, 60), threshold_range=(40, 200))
    config = config_for_networks([*networks, rate], lanes=SILU_LANES)  # one build: the widest of the three
    return networks, rate, engines(config)


def test_silu_tables_with_negative_weights_stream_exactly(silu_setup, tmp_path):
    networks, _, engine = silu_setup
    rng = np.random.default_rng(11)
    saturations = negative_phase_spikes = 0
    for index, net in enumerate(networks):
        codes = random_codes(rng, 6, net.n_inputs, net.phases)
        spikes = fs_encode(codes, net.phases, steps=net.fs_latency).numpy()
        rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / f"rtl{index}")
        golden = golden_reference(net, spikes, lanes=SILU_LANES)
        comparison = check_equivalence(golden, rtl.trace, tmp_path / f"mismatch{index}")
        assert comparison.equivalent, comparison.summary()
        assert rtl.problems == []
        check_stream(net, rtl, golden)
        saturations += int(rtl.trace.counter("saturations").sum())
        # spikes of layer l at phases whose d < 0: layer l+1 subtracts them
        K = net.phases
        for l in range(len(net.layers) - 1):
            negative = [t for t, d in enumerate(net.layers[l].neuron.fs_weight) if d < 0]
            fire = rtl.trace.spikes[l][:, (l + 1) * K:(l + 2) * K]  # layer l+1 (1-based) fires in window l+2
            negative_phase_spikes += int(fire[:, negative].sum())
        assert rtl.trace.spikes[0].any() and rtl.trace.spikes[1].any(), "the SiLU layers should fire"
    assert saturations > 0, "the 15-bit membranes were meant to saturate"
    assert negative_phase_spikes > 0, "no spike ever carried a negative weight"


def test_fs_build_runs_rate_coded_networks_and_catches_bad_beats(silu_setup, tmp_path):
    networks, rate, engine = silu_setup
    # a rate-coded IF network on the FS build: one image per start, as on any build
    spikes = random_spikes(np.random.default_rng(2), 3, 10, rate.n_inputs)
    rtl = cosimulate(rate, spikes, engine=engine)
    comparison = check_equivalence(golden_reference(rate, spikes, lanes=SILU_LANES), rtl.trace)
    assert comparison.equivalent, comparison.summary()
    assert rtl.fs is None and rtl.problems == []
    # an FS trace with a lost prediction beat / a duplicated summary beat is an RTL bug the parser names
    net = networks[0]
    codes = random_codes(np.random.default_rng(3), 3, net.n_inputs, net.phases)
    fs_spikes = fs_encode(codes, net.phases, steps=net.fs_latency).numpy()
    run = cosimulate(net, fs_spikes, engine=engine, work_dir=tmp_path / "rtl")
    lines = run.trace_text.read_text().splitlines(keepends=True)
    bases, counts = harness.fs_stream_layout(3, 3)

    def problems(edited) -> list[str]:
        path = tmp_path / "edited.txt"
        path.write_text("".join(edited))
        return harness.parse_fs_trace_file(path, engine.params, net.layer_sizes, net.phases, bases, counts).problems

    assert problems(lines) == []
    second_pred = [i for i, line in enumerate(lines) if line.startswith("P ")][1]
    assert any("image 1 has no prediction beat" in p for p in problems(lines[:second_pred] + lines[second_pred + 1:]))
    first_sum = next(i for i, line in enumerate(lines) if line.startswith("S "))
    found = problems(lines[:first_sum + 1] + lines[first_sum:])
    assert any("2 copies of the summary beat at image 0 step 1 layer 1" in p for p in found), found


def test_fs_input_errors_are_one_line(silu_setup):
    networks, rate, engine = silu_setup
    net = networks[0]
    codes = random_codes(np.random.default_rng(4), 2, net.n_inputs, net.phases)
    spikes = fs_encode(codes, net.phases, steps=net.fs_latency).numpy()
    with pytest.raises(SnnCosimError, match="K = 16 to L·K = 48 steps"):
        cosimulate(net, spikes[:8], config=engine.config)
    late = spikes.copy()
    late[20, :, 0] = True
    with pytest.raises(SnnCosimError, match="after window 1"):
        cosimulate(net, late, config=engine.config)
    with pytest.raises(SnnCosimError, match="images_per_start must be an integer in 1.."):
        cosimulate(net, spikes, config=engine.config, images_per_start=0)
    with pytest.raises(SnnCosimError, match="FS networks only"):
        cosimulate(rate, random_spikes(np.random.default_rng(0), 1, 4, rate.n_inputs), config=engine.config,
                   images_per_start=2)
