"""Sharded co-simulation (cosim/shards.py): two simulator processes on one build, per-image digests, and a single
flipped membrane bit of one step of one image caught by its digest and named exactly by the full-trace re-run."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cosim.session import golden_reference
from cosim.shards import check_sharded, cosimulate_sharded
from golden.core.errors import TraceMismatch
from hw.config import EngineConfig

from .conftest import NEURON_VARIANTS, golden_with_flipped_membrane, random_network, random_spikes

N_IMAGES, STEPS, LANES = 24, 6, 4


@pytest.fixture(scope="module")
def case(engines):
    rng = np.random.default_rng(14)
    net = random_network(rng, [20, 13, 5], [NEURON_VARIANTS["if-subtract"], NEURON_VARIANTS["lif-floor"]])
    engine = engines(EngineConfig.for_network(net, lanes=LANES))
    return net, engine, random_spikes(rng, N_IMAGES, STEPS, 20)


def test_digest_mode_matches_full_trace_mode(case, tmp_path):
    net, engine, spikes = case
    inside, most = [0], [0]

    def golden(part):  # one IntegerSimulator run from two threads at once gave wrong membranes: never concurrent
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        try:
            return golden_reference(net, part, lanes=LANES)
        finally:
            inside[0] -= 1

    runs = {full: cosimulate_sharded(net, lambda a, b: spikes[:, a:b], N_IMAGES, engine=engine, jobs=2,
                                     chunk_images=7, work_dir=tmp_path / str(full), full_trace=full, golden=golden)
            for full in (False, True)}
    assert most[0] == 1
    digest, full = runs[False], runs[True]
    assert digest.equivalent and full.equivalent, (digest.first_difference, full.first_difference)
    assert digest.chunks == 4 and digest.jobs == 2
    # the harness's digests (digest mode) are those numpy computes from the full RTL trace of the same images
    np.testing.assert_array_equal(digest.rtl_digests, full.rtl_digests)
    np.testing.assert_array_equal(digest.predictions, full.rtl_trace.predictions)
    np.testing.assert_array_equal(digest.total_counters, full.rtl_trace.counters.sum(axis=(1, 2)))
    assert digest.totals("rtl") == digest.totals("golden") == full.rtl_trace.totals()
    assert full.rtl_trace.n_images == N_IMAGES and digest.rtl_trace is None
    assert digest.peak_rss_bytes > 0 and digest.peak_child_rss_bytes > 0
    # digest mode writes two short lines per image, no record beats
    text = (tmp_path / "False" / "shard-00001" / "trace.txt").read_text()
    assert not any(line.startswith(("R ", "S ")) for line in text.splitlines())
    assert sum(line.startswith("H ") for line in text.splitlines()) == 7


def test_one_flipped_membrane_bit_is_caught_and_named(case, tmp_path):
    """A fault in one membrane bit of one neuron at one step of image 17 (the golden side is tampered, which to the
    check is the same as an RTL fault): that image's digest differs, the re-run names the exact place."""
    net, engine, spikes = case
    target, step, layer, neuron, bit = 17, 4, 1, 6, 3
    victim = spikes[:, target]

    tampered_golden = golden_with_flipped_membrane(net, victim, LANES, layer=layer, step=step, neuron=neuron,
                                                   bit=bit)

    run = cosimulate_sharded(net, lambda a, b: spikes[:, a:b], N_IMAGES, engine=engine, jobs=2, chunk_images=7,
                             work_dir=tmp_path, golden=tampered_golden)
    assert not run.equivalent
    assert run.mismatched.tolist() == [target]
    d = run.comparison.first_difference
    assert (d.image, d.step, d.layer, d.neuron, d.quantity) == (target, step, layer, neuron, "membrane")
    assert d.golden ^ d.rtl == 1 << bit
    with pytest.raises(TraceMismatch, match=f"image {target}, step {step}, layer {layer}, neuron {neuron}"):
        check_sharded(run, tmp_path / "mismatch")
    assert (tmp_path / "mismatch" / "mismatch.txt").is_file()
