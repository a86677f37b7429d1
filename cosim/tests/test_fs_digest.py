"""Digests of FS streams (docs/spec.md "Per-image digest", FS streams; golden/core/digest.py fs_stream_digests): the
harness's H line of every start is the digest numpy computes from the golden trace (and from the RTL's own).

The SiLU networks and their build are those of test_fs.py (one Verilator build for both files)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim import harness
from cosim.session import check_digests, check_equivalence, cosimulate, golden_reference
from golden.core import cycle_model
from golden.core.digest import fs_stream_digests
from golden.simulation.encoding import fs_encode

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
