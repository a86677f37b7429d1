"""The pytest plugin (``cosim.pytest_plugin``, fixture ``rtl_equivalence``) used the way a user uses it: a small
network of the user's own, saved as a ``.snn`` directory, checked against the RTL in a few lines. No helper of
this project's test suite is used; tests/test_pytest_plugin.py runs a user's test file that fails."""

from __future__ import annotations

import numpy as np

from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams


def small_network(seed: int = 0) -> IntegerNetwork:
    """A 12-6-4 LIF/IF network with random integer weights (negative ones included) and 12-bit membranes. The
    same network (and so the same Verilator build) serves tests/test_pytest_plugin.py."""
    rng = np.random.default_rng(seed)
    return IntegerNetwork(
        input_shape=(12,),
        layers=[DenseLayer(rng.integers(-60, 100, (6, 12)), rng.integers(-10, 10, 6), rng.integers(60, 200, 6),
                           NeuronParams("lif", "subtract", leak_shift=3)),
                DenseLayer(rng.integers(-60, 100, (4, 6)), np.zeros(4, np.int64), rng.integers(60, 200, 4),
                           NeuronParams("if", "zero"))],
        membrane_bits=12).validate()


def test_my_network_matches_the_rtl(rtl_equivalence, tmp_path):
    network_dir = small_network().save(tmp_path / "my_net.snn")
    spikes = np.random.default_rng(1).random((10, 3, 12)) < 0.4  # bool [T, N, n_in], time-major
    result = rtl_equivalence.check(network_dir, spikes)
    assert result.equivalent and "membranes" in result.comparison.checked
    assert all(s.any() for s in result.rtl.trace.spikes), "a layer never spiked: the check would prove little"


def test_pixel_codes_are_rate_encoded(rtl_equivalence):
    codes = np.random.default_rng(2).integers(0, 256, (2, 12))  # [N, n_in] 8-bit codes
    result = rtl_equivalence.check_codes(small_network(), codes, steps=8, seed=3)
    assert result.rtl.trace.n_images == 2 and result.rtl.trace.n_steps == 8
