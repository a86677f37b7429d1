"""Digests of FS streams (docs/spec.md "Per-image digest", FS streams; golden/core/digest.py fs_stream_digests): the
harness's H line of every start is the digest numpy computes from the golden trace (and from the RTL's own), and
whole FS test sets run in digest mode (cosim/shards.py) with the verdict, predictions and stream figures of
full-trace mode; a single flipped membrane bit in one image of one stream is caught by that stream's digest and
named exactly by the stream's full-trace re-run.

The SiLU networks and their build are those of test_fs.py (one Verilator build for both files)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim import harness
from cosim.session import check_digests, check_equivalence, cosimulate, golden_reference
from cosim.shards import check_sharded, cosimulate_sharded
from golden.core import cycle_model
from golden.core.digest import fs_stream_digests
from golden.core.errors import TraceMismatch
from golden.simulation.encoding import fs_encode

from .conftest import golden_with_flipped_membrane
from .test_fs import SILU_LANES, random_codes, silu_setup  # noqa: F401 - silu_setup is a fixture

N_IMAGES = 10


def stream_digests(net, engine, trace, bases, counts) -> np.ndarray:
    config = engine.config
    return fs_stream_digests(trace, bases, counts, net.phases, int(config.lanes), int(config.membrane_bits),
                             int(config.counter_bits), layer_sizes=config.layer_sizes)


@pytest.fixture(scope="module")
def fs_case(silu_setup):  # noqa: F811 - the fixture of test_fs.py
    networks, _, engine = silu_setup
    net = networks[1]
    codes = random_codes(np.random.default_rng(21), N_IMAGES, net.n_inputs, net.phases)
    return net, engine, fs_encode(codes, net.phases, steps=net.fs_latency).numpy()


def test_harness_stream_digests_are_those_of_the_golden_trace(fs_case, tmp_path):
    """Seven images in starts of three: the H line of each start is fs_stream_digests of the golden trace and of
    the RTL's own trace (cosimulate's check_digests held them to each other: no problems)."""
    net, engine, spikes = fs_case
    spikes = spikes[:, :7]
    rtl = cosimulate(net, spikes, engine=engine, work_dir=tmp_path / "rtl", images_per_start=3)
    golden = golden_reference(net, spikes, lanes=SILU_LANES)
    assert check_equivalence(golden, rtl.trace).equivalent and rtl.problems == []
    bases, counts = rtl.fs.bases, rtl.fs.counts
    assert bases.tolist() == [0, 3, 6] and counts.tolist() == [3, 3, 1]
    text = rtl.trace_text.read_text().splitlines()
    assert [line.split()[1] for line in text if line.startswith("H ")] == ["0", "3", "6"]
    ours = stream_digests(net, engine, golden, bases, counts)
    np.testing.assert_array_equal(rtl.fs.digests, ours)
    np.testing.assert_array_equal(stream_digests(net, engine, rtl.trace, bases, counts), ours)
    # the stream's done beat carries fs_stream_cycles of its images, one C_IMAGE
    for k, (b, c) in enumerate(zip(bases.tolist(), counts.tolist())):
        assert rtl.fs.cycles[k] == cycle_model.fs_stream_cycles(golden.counter("cycles")[b:b + c], net.phases).\
            total_cycles
    # the digests see the streams' layout (global steps) and every active beat, but no idle entry
    assert (stream_digests(net, engine, golden, [0, 2, 5], [2, 3, 2]) != ours).all()
    active = cycle_model.fs_active(len(net.layers), net.phases)
    tampered = golden_reference(net, spikes, lanes=SILU_LANES)
    step, layer = np.argwhere(active)[len(np.argwhere(active)) // 2]
    tampered.membranes[layer][4, step, 1] ^= 1
    changed = stream_digests(net, engine, tampered, bases, counts) != ours
    assert changed.tolist() == [False, True, False]
    # check_digests (run on every full co-simulation) names a stream whose H line is not its beats' digest
    edited = tmp_path / "edited.txt"
    edited.write_text("".join(line[:-1] + ("0" if line[-1] != "0" else "1") + "\n" if line.startswith("H 3 ")
                              else line + "\n" for line in text))
    parsed = harness.parse_fs_trace_file(edited, engine.params, engine.config.layer_sizes, net.phases, bases, counts)
    assert parsed.problems == []
    found = check_digests(rtl.trace, parsed, engine.config)
    assert len(found) == 1 and found[0].startswith("stream of image 3: the harness's digest"), found


def sharded(net, engine, spikes, work, **kwargs):
    return cosimulate_sharded(net, lambda a, b: spikes[:, a:b], N_IMAGES, engine=engine, jobs=2, chunk_images=6,
                              images_per_start=4, work_dir=work, **kwargs)


def test_fs_digest_mode_matches_full_trace_mode(fs_case, tmp_path):
    """Ten images in chunks of six, starts of four (streams 0-3, 4-5 | 6-9): digest mode gives full-trace mode's
    verdict, predictions, per-stream digests, cycles and totals; its trace files hold no R/S lines."""
    net, engine, spikes = fs_case
    runs = {full: sharded(net, engine, spikes, tmp_path / str(full), full_trace=full) for full in (False, True)}
    digest, full = runs[False], runs[True]
    assert digest.equivalent and full.equivalent, (digest.first_difference, full.first_difference)
    assert not digest.full_trace and digest.chunks == 2 and digest.rtl_trace is None
    assert digest.streams.bases.tolist() == full.streams.bases.tolist() == [0, 4, 6]
    assert digest.streams.counts.tolist() == [4, 2, 4]
    np.testing.assert_array_equal(digest.predictions, full.rtl_trace.predictions)
    np.testing.assert_array_equal(digest.predictions, digest.golden_predictions)
    np.testing.assert_array_equal(digest.rtl_digests, full.rtl_digests)
    np.testing.assert_array_equal(digest.image_cycles, full.image_cycles)
    np.testing.assert_array_equal(digest.total_counters, full.total_counters)
    np.testing.assert_array_equal(digest.streams.pred_cycles, full.streams.pred_cycles)
    assert digest.totals("rtl") == digest.totals("golden") == full.rtl_trace.totals()
    # per stream: the engine's cycles (one C_IMAGE per start), not the images' sequential sum
    golden = golden_reference(net, spikes, lanes=SILU_LANES)
    expected = [cycle_model.fs_stream_cycles(golden.counter("cycles")[b:b + c], net.phases).total_cycles
                for b, c in zip([0, 4, 6], [4, 2, 4])]
    assert digest.image_cycles.tolist() == expected
    assert digest.image_cycles.sum() < golden.image_cycles.sum()
    text = (tmp_path / "False" / "shard-00000" / "trace.txt").read_text().splitlines()
    assert not any(line.startswith(("R ", "S ")) for line in text)
    assert [line.split()[1] for line in text if line.startswith("H ")] == ["0", "4"]
    assert sum(line.startswith("P ") for line in text) == 6
    digest.save_digests(tmp_path / "digests.npz")
    with np.load(tmp_path / "digests.npz") as saved:
        assert saved["stream_bases"].tolist() == [0, 4, 6] and saved["rtl_digests"].shape == (3,)


def test_one_flipped_membrane_bit_in_a_stream_is_caught_and_named(fs_case, tmp_path):
    """A fault in one membrane bit of one neuron at one active step of image 5 (the second image of the stream of
    images 4-5; the golden side is tampered, which to the check is the same as an RTL fault): that stream's digest
    differs, and its full-trace re-run names the exact image, step, layer and neuron."""
    net, engine, spikes = fs_case
    target, step, layer, neuron, bit = 5, 2 * net.phases - 3, 2, 7, 4
    assert cycle_model.fs_active(len(net.layers), net.phases)[step - 1, layer - 1]
    victim = spikes[:, target]

    tampered_golden = golden_with_flipped_membrane(net, victim, SILU_LANES, layer=layer, step=step, neuron=neuron,
                                                   bit=bit)

    run = sharded(net, engine, spikes, tmp_path, golden=tampered_golden)
    assert not run.equivalent
    assert (run.rtl_digests != run.golden_digests).tolist() == [False, True, False]
    assert run.mismatched.tolist() == [4, 5]  # the stream's images: its digest cannot say which
    d = run.comparison.first_difference
    assert (d.image, d.step, d.layer, d.neuron, d.quantity) == (target, step, layer, neuron, "membrane")
    assert d.golden ^ d.rtl == 1 << bit
    assert run.rerun_images.tolist() == run.rtl_trace.meta["images"] == [4, 5]  # only that stream ran again
    with pytest.raises(TraceMismatch, match=f"image {target}, step {step}, layer {layer}, neuron {neuron}"):
        check_sharded(run, tmp_path / "mismatch")
    assert (tmp_path / "mismatch" / "mismatch.txt").is_file()


def test_a_prediction_beat_outside_the_digest_is_still_checked(fs_case, tmp_path):
    """Prediction beats are not in a stream's digest (only the last image's prediction is, in the done beat): the
    digest run compares every image's prediction beat with the golden prediction, and the re-run names it."""
    net, engine, spikes = fs_case
    target = 6  # the first image of the stream of images 6-9
    victim = spikes[:, target]

    def tampered_golden(part):
        trace = golden_reference(net, part, lanes=SILU_LANES)
        for k in range(part.shape[1]):
            if np.array_equal(part[:, k], victim):
                trace.predictions[k] = (trace.predictions[k] + 1) % net.layers[-1].n_out
        return trace

    run = sharded(net, engine, spikes, tmp_path, golden=tampered_golden)
    assert (run.rtl_digests == run.golden_digests).all() and not run.equivalent
    assert run.mismatched.tolist() == [6] and run.rerun_images.tolist() == [6, 7, 8, 9]  # its stream, again
    d = run.comparison.first_difference
    assert (d.image, d.quantity) == (target, "prediction"), d
