"""The per-image digest (golden/core/digest.py, docs/spec.md "Per-image digest"): every field of every beat is in
it, and the digest-only trace file parses. numpy only, no simulator (the SystemVerilog side is held to this one
on every full co-simulation: cosim.session.check_digests)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.harness import HarnessParams, parse_digest_file
from golden.core.counters import COUNTER_NAMES
from golden.core.digest import image_digests, pack_fields
from golden.core.trace import Trace

LANES, M, W = 2, 10, 12


def small_trace(seed: int = 3) -> Trace:
    """Two images, three steps, layers of 5 and 3 neurons (padding lanes in both), random contents."""
    rng = np.random.default_rng(seed)
    sizes = (5, 3)
    spikes = [rng.random((2, 3, n)) < 0.5 for n in sizes]
    membranes = [rng.integers(-(1 << (M - 1)), 1 << (M - 1), (2, 3, n)) for n in sizes]
    counters = rng.integers(0, 1 << 8, (2, 3, 2, len(COUNTER_NAMES)))
    return Trace(spikes=spikes, counters=counters, image_cycles=counters[..., 0].sum(axis=(1, 2)) + 40,
                 predictions=np.array([1, 2]), membranes=membranes)


def digests(trace: Trace) -> np.ndarray:
    return image_digests(trace, LANES, M, W)


def test_known_value():
    """Pins the function of docs/spec.md: a change to the fold or its constants must be a deliberate one."""
    assert [f"{int(d):016x}" for d in digests(small_trace())] == KNOWN


KNOWN = ["44431fcf0cbfb8b6", "89467597aab93ebc"]


@pytest.mark.parametrize("field", ["spike", "membrane-lsb", "membrane-sign", *COUNTER_NAMES, "image_cycles",
                                   "prediction", "swap-neurons", "swap-steps"])
def test_every_field_changes_the_digest(field):
    base = small_trace()
    before = digests(base)
    t = small_trace()
    if field == "spike":
        t.spikes[1][1, 2, 2] ^= True
    elif field == "membrane-lsb":
        t.membranes[0][1, 0, 4] ^= 1
    elif field == "membrane-sign":
        t.membranes[1][1, 2, 0] = -t.membranes[1][1, 2, 0] - 1  # flips every bit, the sign bit among them
    elif field in COUNTER_NAMES:
        t.counters[1, 1, 0, COUNTER_NAMES.index(field)] += 1 << 5
    elif field == "image_cycles":
        t.image_cycles[1] += 1
    elif field == "prediction":
        t.predictions[1] = 0
    elif field == "swap-neurons":  # the same values in other places: beats carry their place
        t.membranes[0][1, 1, [0, 1]] = t.membranes[0][1, 1, [1, 0]]
        assert t.membranes[0][1, 1, 0] != t.membranes[0][1, 1, 1]
    elif field == "swap-steps":
        t.counters[1, [0, 2]] = t.counters[1, [2, 0]]
        t.image_cycles[1] = base.image_cycles[1]
    after = digests(t)
    assert after[0] == before[0]  # the other image is untouched
    assert after[1] != before[1]


def test_pack_fields_is_little_end_first_twos_complement():
    words = pack_fields(np.array([[-1, 1, 0, 5]]), 24)  # 96 bits: two words
    assert words.shape == (1, 2)
    assert int(words[0, 0]) == 0xFFFFFF | (1 << 24)
    assert int(words[0, 1]) == 5 << 8  # field 3 starts at bit 72 = word 1 bit 8


def test_digest_file_parses_and_names_a_missing_line(tmp_path):
    params = HarnessParams(lanes=LANES, membrane_bits=M, counter_bits=W, cfg_data_bits=16)
    counters = "0" * 27
    path = tmp_path / "trace.txt"
    path.write_text(f"D 0 100 3 101 {counters}\nH 0 00000000000000ff\nD 1 90 7 91 {counters}\n")
    parsed = parse_digest_file(path, params, 2)
    assert parsed.digests.tolist() == [255, 0] and parsed.predictions.tolist() == [3, 7]
    assert parsed.seen.tolist() == [True, False]
    assert parsed.problems == ["image 1 has 0 digest lines (expected 1)"]
