"""Lee 2016 on Verilator: random LIF/IF networks with WTA lateral inhibition (hidden and output layers) and the
per-neuron floor at −θ_j (docs/spec.md §3c) match the golden integer model bit for bit and cycle for cycle —
spikes, membranes after inhibition, all nine counters (the INHIBIT pass's MACs, state reads/writes and cycles
included), image cycles and predictions. Small membranes make the integrate and the inhibition saturate."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

from cosim.session import config_for_networks
from golden.core.network import IntegerNetwork, NeuronParams

from .conftest import random_network, random_spikes, run_and_check

SIZES = [24, 14, 6]
LANES = 4
MEMBRANE_BITS = 10
VARIANTS = {
    "lif-theta-floor": NeuronParams("lif", "subtract", leak_shift=3, floor_threshold=True),
    "if-theta-floor": NeuronParams("if", "subtract", floor_threshold=True),
    "lif-zero-floor": NeuronParams("lif", "zero", leak_shift=2, floor=-150),
}
INHIBIT = {"both": (1, 2), "output": (2,)}


def _network(variant: str, inhibit: str, seed: int = 0) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    base = random_network(rng, SIZES, [VARIANTS[variant]], membrane_bits=MEMBRANE_BITS, weight_range=(-60, 127),
                          threshold_range=(40, 300))
    layers = []
    for index, layer in enumerate(base.layers, start=1):
        # u_j = round(|κ|·θ_j) as Lee's exporter does (κ = −0.4 hidden, −1.0 output); the output's u = θ
        kappa = 1.0 if index == len(base.layers) else 0.4
        u = np.round(kappa * layer.threshold).astype(np.int64) if index in INHIBIT[inhibit] else None
        layers.append(replace(layer, inhibition=u))
    return IntegerNetwork(base.input_shape, layers, weight_bits=base.weight_bits,
                          membrane_bits=base.membrane_bits).validate()


@pytest.fixture(scope="module")
def engine(engines):
    """One build for every variant: inhibition hardware in both layers (a layer without u clears params bit 12)."""
    networks = [_network(v, i) for v in VARIANTS for i in INHIBIT]
    return engines(config_for_networks(networks, lanes=LANES, acc_bits=20, bias_bits=8,
                                       threshold_bits=MEMBRANE_BITS - 1))


@pytest.mark.parametrize("inhibit", sorted(INHIBIT))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lateral_inhibition_is_bit_and_cycle_exact(engine, variant, inhibit, tmp_path):
    net = _network(variant, inhibit)
    assert engine.config.inhibition == (1, 1)
    rng = np.random.default_rng(zlib.crc32(f"{variant}/{inhibit}".encode()))
    spikes = random_spikes(rng, 4, 16, net.n_inputs, rate=(0.1, 0.8))
    rtl, golden = run_and_check(net, spikes, engine, tmp_path, lanes=LANES)
    # the test exercises the inhibition: every inhibited layer multiplied, the others did not
    macs = rtl.trace.counter("macs").sum(axis=(0, 1))
    for l in range(len(SIZES) - 1):
        assert (macs[l] > 0) == (l + 1 in INHIBIT[inhibit]), f"layer {l + 1}: {macs[l]} MACs"
    assert all(s.any() for s in rtl.trace.spikes)


def test_inhibition_saturates_and_is_counted_once(engine, tmp_path):
    """Large strengths on the 10-bit membrane: the inhibition clips at −512 (no floor), matched by the RTL."""
    base = _network("if-theta-floor", "both", seed=5)
    layers = [replace(layer, neuron=NeuronParams("if", "zero"), inhibition=np.full(layer.n_out, 300))
              for layer in base.layers]
    net = IntegerNetwork(base.input_shape, layers, weight_bits=base.weight_bits,
                         membrane_bits=base.membrane_bits).validate()
    spikes = random_spikes(np.random.default_rng(9), 3, 16, net.n_inputs, rate=(0.3, 0.9))
    rtl, golden = run_and_check(net, spikes, engine, tmp_path, lanes=LANES)
    assert rtl.trace.counter("saturations").sum() > 0
    assert min(m.min() for m in rtl.trace.membranes) == -(1 << (MEMBRANE_BITS - 1))
