"""Fixtures of the co-simulation tests (``pytest cosim``).

Verilator builds are the expensive part (tens of seconds each on two cores), so

* every engine configuration is built at most once per test session: :func:`engines` hands out one prepared
  engine per :class:`hw.config.EngineConfig`, and the tests of one network shape share one configuration
  (neuron kind, reset, leak, floor, weights and thresholds are loaded at run time);
* builds are cached across sessions under ``$SNNCOSIM_BUILD_DIR`` (default ``<repo>/.snncosim/build``), keyed
  by the generated Verilog, the harness and the flags, so an unchanged engine is never rebuilt.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams

REPO = Path(__file__).resolve().parents[2]

# lines of the coverage table that test_coverage_random.py records; printed in pytest's terminal summary
COVERAGE_REPORT = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(COVERAGE_REPORT, None)
    if lines:
        terminalreporter.section("coverage bins (cosim/tests/test_coverage_random.py)")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def build_dir() -> Path:
    path = Path(os.environ.get("SNNCOSIM_BUILD_DIR") or REPO / ".snncosim" / "build")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def toolchain():
    from cosim.toolchain import ensure_verilator

    return ensure_verilator()


@pytest.fixture(scope="session")
def engines(build_dir, toolchain):
    """``engines(config) -> cosim.session.Engine``: built once per configuration per session."""
    from cosim.session import prepare_engine

    cache: dict = {}

    def get(config, waves=False):
        key = (config, waves)
        if key not in cache:
            cache[key] = prepare_engine(config, waves=waves, build_dir=build_dir)
        return cache[key]

    return get


def random_network(rng: np.random.Generator, sizes, neurons, *, membrane_bits: int = 16, weight_bits: int = 8,
                   weight_range=(-60, 100), bias_range=(-20, 20), threshold_range=(40, 300)) -> IntegerNetwork:
    """A dense integer network with random weights (negative ones included), biases and thresholds."""
    w_lo, w_hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = np.clip(rng.integers(weight_range[0], weight_range[1] + 1, (n_out, n_in)), w_lo, w_hi)
        layers.append(DenseLayer(
            weight=weight.astype(np.int64),
            bias=rng.integers(bias_range[0], bias_range[1] + 1, n_out).astype(np.int64),
            threshold=rng.integers(threshold_range[0], threshold_range[1] + 1, n_out).astype(np.int64),
            neuron=neurons[index % len(neurons)], name=f"fc{index + 1}"))
    return IntegerNetwork(input_shape=(sizes[0],), layers=layers, weight_bits=weight_bits,
                          membrane_bits=membrane_bits).validate()


def with_neurons(net: IntegerNetwork, neuron: NeuronParams) -> IntegerNetwork:
    """The same weights with another neuron model in every layer."""
    from dataclasses import replace

    return IntegerNetwork(input_shape=net.input_shape, layers=[replace(layer, neuron=neuron) for layer in net.layers],
                          weight_bits=net.weight_bits, membrane_bits=net.membrane_bits,
                          input_coding=net.input_coding, input_bits=net.input_bits).validate()


def random_spikes(rng: np.random.Generator, n_images: int, steps: int, n_inputs: int, rate=(0.05, 0.6)) -> np.ndarray:
    """Time-major ``bool [T, N, n]`` (what the backends take) with a different firing rate per input (some silent,
    some busy)."""
    p = rng.uniform(rate[0], rate[1], size=(n_images, 1, n_inputs))
    return (rng.random((n_images, steps, n_inputs)) < p).transpose(1, 0, 2)  # drawn image-major, as always


NEURON_VARIANTS = {
    "if-zero": NeuronParams("if", "zero"),
    "if-subtract": NeuronParams("if", "subtract"),
    "lif-floor": NeuronParams("lif", "subtract", leak_shift=3, floor=-100),
    "lif-zero": NeuronParams("lif", "zero", leak_shift=2),
}


def run_and_check(net: IntegerNetwork, spikes: np.ndarray, engine, work_dir: Path, *, lanes: int, config=None):
    """Co-simulate ``net`` on ``engine`` with time-major ``spikes`` [T, N, n_0] and run the golden model on the same
    spikes; assert bit- and cycle-exact equivalence (the first difference in the message), no harness problems,
    equal predictions and hardware totals equal to the golden counters. Returns ``(rtl_run, golden_trace)``."""
    from cosim.session import check_equivalence, cosimulate, golden_reference

    rtl = cosimulate(net, spikes, engine=engine, config=config, work_dir=work_dir / "rtl")
    golden = golden_reference(net, spikes, lanes=lanes)
    comparison = check_equivalence(golden, rtl.trace, work_dir / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert "membranes" in comparison.checked
    assert rtl.problems == []
    np.testing.assert_array_equal(rtl.trace.predictions, golden.predictions)
    np.testing.assert_array_equal(rtl.hardware_totals, golden.counters.sum(axis=(1, 2)))
    return rtl, golden


def golden_with_flipped_membrane(net: IntegerNetwork, victim: np.ndarray, lanes: int, *, layer: int, step: int,
                                 neuron: int, bit: int):
    """A golden callable (``spikes [T, n, n_in] -> Trace``) that flips one membrane bit of ``neuron`` at ``step`` of
    ``layer`` in the image whose input spikes are ``victim`` ``[T, n_in]``, wherever that image falls in a chunk:
    to the check, the same as an RTL fault there."""
    from cosim.session import golden_reference

    def golden(part):
        trace = golden_reference(net, part, lanes=lanes)
        for k in range(part.shape[1]):
            if np.array_equal(part[:, k], victim):
                trace.membranes[layer - 1][k, step - 1, neuron] ^= 1 << bit
        return trace
    return golden
