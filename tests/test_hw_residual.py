"""Hardware residual junctions (issue 6): a junction layer's second ACCUMULATE pass over its skip source's
spike masks with its own weight memory, in Amaranth's simulator against the golden integer model — spikes,
membranes, every counter (cycles of the skip-pass formula), totals and predictions — for identity, 1×1
downsampling and dense skips, IF-zero / LIF-subtract, small membranes (saturation)."""

import numpy as np
import pytest
from test_golden_residual import residual_net
from test_hw_engine import assert_equivalent, golden_trace, run_engine

from golden.core import cycle_model
from golden.core.errors import UnsupportedLayerError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams, SkipConnection
from golden.core.register_map import SKIP_WEIGHT_BASE
from hw.config import EngineConfig
from hw.config_image import config_words


@pytest.mark.parametrize("neuron, lanes", [(NeuronParams("if", "zero"), 2),
                                           (NeuronParams("lif", "subtract", leak_shift=2), 4)])
def test_residual_engine_matches_golden(neuron, lanes):
    rng = np.random.default_rng(11 + lanes)
    net = residual_net(rng, neuron, membrane_bits=6)
    config = EngineConfig.for_network(net, lanes=lanes)
    assert config.skips and config.skip_of(3)[0] == 1 and config.skip_of(7)[1] == ()
    images = [rng.random((5, net.n_inputs)) < 0.5 for _ in range(2)]
    rtl, totals = run_engine(net, config, images, stall_rng=np.random.default_rng(2))
    golden = golden_trace(net, images, lanes=lanes)
    assert_equivalent(golden, rtl)
    np.testing.assert_array_equal(totals, golden.counters.sum(axis=(1, 2)))
    np.testing.assert_array_equal(rtl.image_cycles, golden.image_cycles)
    assert (golden.counter("saturations") > 0).any(), "the test network should saturate"
    plans = cycle_model.skip_plans(net, lanes)
    # the skip passes cost cycles: cycles of a junction exceed the main-pass formula by W_skip at least
    for target, plan in plans.items():
        assert (golden.counter("cycles")[:, :, target - 1] >= plan.words + cycle_model.C_LAYER).all()


def test_dense_mlp_skip_engine():
    rng = np.random.default_rng(21)
    layers = [DenseLayer(rng.integers(-3, 4, (7, 10)), rng.integers(-1, 2, 7), np.full(7, 3)),
              DenseLayer(rng.integers(-3, 4, (5, 7)), np.zeros(5, np.int64), np.full(5, 3)),
              DenseLayer(rng.integers(-3, 4, (3, 5)), np.zeros(3, np.int64), np.full(3, 2))]
    net = IntegerNetwork((10,), layers, weight_bits=4, membrane_bits=6,
                         skips=[SkipConnection(3, 1, rng.integers(-3, 4, (3, 7)))]).validate()
    config = EngineConfig.for_network(net, lanes=4)
    words = config_words(net, config)
    skip_words = [a for a, _ in words if a >> 24 == 8 and a & SKIP_WEIGHT_BASE]
    assert len(skip_words) == config.skip_weight_words(3) == 7 * 1
    images = [rng.random((6, net.n_inputs)) < 0.5 for _ in range(2)]
    rtl, _ = run_engine(net, config, images)
    golden = golden_trace(net, images, lanes=4)
    assert_equivalent(golden, rtl)
    # hand-computed: W_3 + S_in·G + W_skip + S_skip·G + G + C_LAYER with G = 1, W_3 = 2, W_skip = 2
    s2 = golden.spikes[1].sum(-1)
    s1 = golden.spikes[0].sum(-1)
    np.testing.assert_array_equal(golden.counter("cycles")[:, :, 2], 2 + s2 + 2 + s1 + 1 + cycle_model.C_LAYER)


def test_engine_rejects_skip_from_input_and_mismatched_skips():
    rng = np.random.default_rng(5)
    layers = [DenseLayer(rng.integers(-3, 4, (6, 10)), np.zeros(6, np.int64), np.full(6, 3)),
              DenseLayer(rng.integers(-3, 4, (4, 6)), np.zeros(4, np.int64), np.full(4, 3))]
    net = IntegerNetwork((10,), layers, weight_bits=4, membrane_bits=8,
                         skips=[SkipConnection(2, 0, rng.integers(-3, 4, (4, 10)))]).validate()
    with pytest.raises(UnsupportedLayerError, match="cannot re-read the input"):
        EngineConfig.for_network(net)
    res = residual_net(np.random.default_rng(1))
    plain = IntegerNetwork(res.input_shape, res.layers, weight_bits=4, membrane_bits=7)
    from golden.core.errors import WidthError
    with pytest.raises(WidthError, match="skip connections"):
        EngineConfig.for_network(plain, lanes=4).check_fits(res)
    assert "skips" not in EngineConfig.for_network(plain, lanes=4).as_dict()  # plain builds keep their digests
