"""Hardware convolution (issue 6) on the RTL: conv2d → avgpool2d → dense networks (stride and zero padding,
random signed weights, small membranes so that saturation occurs) bit- and cycle-exact against the golden model
under Verilator; record beats of conv/pool layers (position-major, channel groups) are mapped back to torch
neuron order by the harness."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.session import check_equivalence, cosimulate, golden_reference
from golden.ir import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from hw.config import EngineConfig

from .conftest import random_spikes


def _network(seed: int, padding, stride, neuron) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    conv = Conv2dLayer(weight=rng.integers(-6, 8, (5, 2, 3, 3)), bias=rng.integers(-2, 3, 5),
                       threshold=rng.integers(3, 12, 5), in_shape=(2, 8, 8), stride=stride, padding=padding,
                       neuron=neuron)
    pool = AvgPool2dLayer(weight=2, threshold=rng.integers(2, 6, 5), in_shape=conv.out_shape, neuron=neuron)
    dense = DenseLayer(weight=rng.integers(-6, 8, (4, pool.n_out)), bias=rng.integers(-2, 3, 4),
                       threshold=rng.integers(3, 12, 4), neuron=neuron)
    return IntegerNetwork((2, 8, 8), [conv, pool, dense], weight_bits=5, membrane_bits=6).validate()


@pytest.mark.parametrize("padding,stride", [((1, 1), (1, 1)), ((0, 0), (2, 2))])
@pytest.mark.parametrize("neuron", [NeuronParams("if", "zero"), NeuronParams("lif", "subtract", leak_shift=2)],
                         ids=["if-zero", "lif-subtract"])
def test_conv_pool_dense_is_bit_and_cycle_exact(engines, padding, stride, neuron, tmp_path):
    net = _network(11, padding, stride, neuron)
    config = EngineConfig.for_network(net, lanes=4, acc_bits=16, bias_bits=4, threshold_bits=5)
    spikes = random_spikes(np.random.default_rng(5), 3, 6, net.n_inputs)
    rtl = cosimulate(net, spikes, engine=engines(config), config=config, work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes, lanes=4)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert rtl.problems == []
    assert (golden.counter("saturations") > 0).any()
    assert golden.spikes[0].any() and golden.spikes[1].any()
