"""Coverage-directed random co-simulation (issue 11): seeded random integer networks (weights, biases, thresholds,
neuron models, codings, FS tables, WTA strengths, inputs), drawn cheaply on the golden model and kept when they
hit a coverage bin that fewer than two kept networks hit (``cosim.fuzz.directed_cases``); every kept network is
co-simulated bit- and cycle-exact on Verilator, and every bin of ``cosim.fuzz.BINS`` must be hit, measured on the
RTL traces of those runs (spikes, membranes, counters; never what the generator intended). Two engine shapes
(``cosim.fuzz.CI_SHAPES``), one build each: a dense FS/weighted-spike build and a conv/residual/WTA build.

The table of bins and hits appears in pytest's terminal summary (``cosim/tests/conftest.py``).
``SNNCOSIM_FUZZ_SEED`` picks another seed (default 0); ``scripts/fuzz_cosim.py`` is the long, unbounded run.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from cosim import fuzz

from .conftest import COVERAGE_REPORT


def cosimulate_and_check(case, engine, work_dir):
    """Co-simulate ``case`` and assert equivalence with the golden model: spikes, membranes, the nine counters
    per (image, step, layer), image cycles, predictions, no harness problems, and the hardware totals (per image;
    for an FS stream per start: the sum of its images' counters). Returns the RTL run."""
    import numpy as np

    from cosim.session import check_equivalence, cosimulate

    rtl = cosimulate(case.net, case.spikes, engine=engine, work_dir=work_dir / "rtl")
    golden = fuzz.golden_run(case)
    comparison = check_equivalence(golden, rtl.trace, work_dir / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert "membranes" in comparison.checked
    assert rtl.problems == []
    np.testing.assert_array_equal(rtl.trace.predictions, golden.predictions)
    if rtl.fs is None:
        np.testing.assert_array_equal(rtl.hardware_totals, golden.counters.sum(axis=(1, 2)))
    else:
        for k, (base, count) in enumerate(zip(rtl.fs.bases.tolist(), rtl.fs.counts.tolist())):
            np.testing.assert_array_equal(rtl.hardware_totals[k],
                                          golden.counters[base:base + count].sum(axis=(0, 1, 2)))
    return rtl

SEED = int(os.environ.get("SNNCOSIM_FUZZ_SEED", "0"))
PER_BIN = 2  # kept networks per bin: each bin is exercised by two different random networks


@pytest.fixture(scope="module")
def directed():
    """The kept cases of the directed search (golden model only, ~1–3 s)."""
    t0 = time.perf_counter()
    kept, covered, drawn = fuzz.directed_cases(per_bin=PER_BIN, seed=SEED)
    return kept, covered, drawn, time.perf_counter() - t0


@pytest.fixture(scope="module")
def rtl_runs(directed, engines, tmp_path_factory):
    """``get(shape) -> [(case, rtl_run or None, error or None)]``: the kept cases of one shape co-simulated on
    that shape's one build (once per session; failures are recorded, not raised, so that the coverage test still
    sees the other runs)."""
    kept = directed[0]
    root = tmp_path_factory.mktemp("coverage")
    cache: dict = {}

    def get(shape: str):
        if shape not in cache:
            config = fuzz.engine_config(shape)
            engine = engines(config)
            results = []
            for case in (c for c in kept if c.shape == shape):
                try:
                    with fuzz.single_thread():
                        rtl = cosimulate_and_check(case, engine, root / f"{shape}-{case.seed}")
                    results.append((case, rtl, None))
                except Exception as error:  # noqa: BLE001 - reported by the test of this shape
                    results.append((case, None, f"{case.description}: {type(error).__name__}: {error}"))
            cache[shape] = results
        return cache[shape]

    return get


def test_directed_search_keeps_networks_of_every_shape(directed):
    kept, covered, drawn, seconds = directed
    assert {case.shape for case in kept} == set(fuzz.CI_SHAPES)
    assert len(kept) <= drawn
    missing = [name for name in fuzz.BINS if not covered[name]]
    assert not missing, f"the golden search ({drawn} candidates) never hit {missing}"


@pytest.mark.parametrize("shape", fuzz.CI_SHAPES)
def test_directed_networks_are_bit_and_cycle_exact(rtl_runs, shape):
    results = rtl_runs(shape)
    assert results, f"no network of shape {shape} was kept"
    errors = [error for _, _, error in results if error]
    assert not errors, "\n".join(errors)


def test_every_bin_is_hit_on_the_rtl(directed, rtl_runs, request):
    """Every bin hit by the co-simulated, equivalent runs, measured on the RTL's own traces."""
    kept, _, drawn, seconds = directed
    covered: Counter = Counter()
    networks = 0
    for shape in fuzz.CI_SHAPES:
        for case, rtl, error in rtl_runs(shape):
            if rtl is not None and error is None:
                covered.update(fuzz.measure(case.net, rtl.trace, case.lanes))
                networks += 1
    request.config.stash[COVERAGE_REPORT] = (
        [f"coverage-directed random co-simulation (seed {SEED}): {networks} of {drawn} candidate networks "
         f"co-simulated on {len(fuzz.CI_SHAPES)} builds, search {seconds:.1f} s"] + fuzz.format_table(covered))
    missing = [name for name in fuzz.BINS if not covered[name]]
    assert not missing, f"bins never hit on the RTL: {missing}"


def test_bins_are_measured_from_what_happened():
    """``cosim.fuzz.measure`` on hand-made runs (golden model only), counted by hand."""
    import numpy as np

    from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams

    # P = 4, 6 inputs in two source words (0..3, 4..5), a layer of exactly one group (n = 4 = P, G = 1)
    net = IntegerNetwork((6,), [DenseLayer(np.ones((4, 6), np.int64), np.zeros(4, np.int64),
                                           np.full(4, 100, np.int64), NeuronParams("if", "zero"))],
                         membrane_bits=12).validate()
    spikes = np.zeros((3, 1, 6), bool)  # time-major [T, N, n_0]
    spikes[0, 0, [0, 2, 3, 5]] = True  # word 0: 3 spikes → 2 back-to-back adds; word 1 (last): 1 spike
    spikes[1, 0, [4, 5]] = True  # word 1: 2 spikes → 1 back-to-back add; last word non-empty
    spikes[2, 0, [1]] = True  # one spike in word 0, the last word empty: its FETCH separates add and UPDATE
    hits = fuzz.measure(net, fuzz.golden_run_for(net, spikes, 4), 4)
    assert hits["acc-raw-add-add"] == 3 and hits["acc-raw-add-update"] == 2
    assert hits["layer-n-eq-P"] == 3 and "layer-P-not-dividing" not in hits and "reset-zero" not in hits

    # WTA: three neurons spike at step 1 and each is inhibited by the other two, u·m = 300·2 = 600 from v = 0:
    # clipped at lo = −512 (10 bits), or held at the floor −θ = −5; the input word is the last one (add → UPDATE)
    def wta(neuron):
        layer = DenseLayer(np.full((3, 1), 10, np.int64), np.zeros(3, np.int64), np.full(3, 5, np.int64), neuron,
                           inhibition=np.full(3, 300, np.int64))
        return IntegerNetwork((1,), [layer], membrane_bits=10).validate()

    one = np.ones((1, 1, 1), bool)
    common = {"layer-P-not-dividing": 1, "acc-raw-add-update": 1}
    plain = wta(NeuronParams("if", "zero"))
    hits = fuzz.measure(plain, fuzz.golden_run_for(plain, one, 4), 4)
    assert hits == {"inhibit-clip-lo": 3, "sat-lo": 1, "reset-zero": 3} | common
    floored = wta(NeuronParams("if", "subtract", floor_threshold=True))
    hits = fuzz.measure(floored, fuzz.golden_run_for(floored, one, 4), 4)
    assert hits == {"inhibit-floor": 3, "floor-hit": 3} | common  # v − θ = 5, then inhibited: not a reset bin
