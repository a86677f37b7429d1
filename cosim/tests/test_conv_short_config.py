"""The harness waits for the engine's CLEAR before its first ``start``: after ``rst`` the engine spends ``max G_l``
cycles (busy; configuration writes accepted, ``start`` ignored, docs/hardware.md) zeroing the accumulator, which a
conv layer with many output positions makes longer than a short configuration. A harness that pulsed ``start``
right after the last configuration write lost it, and the image never started (watchdog, "the engine hangs"; the
CIFAR-shaped conv → pool → conv → pool → dense network of 699 configuration words and 784 CLEAR cycles)."""

from __future__ import annotations

import numpy as np

from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork
from hw.config import EngineConfig
from hw.config_image import config_words

from .conftest import random_spikes, run_and_check


def test_start_after_clear_longer_than_the_configuration(engines, tmp_path):
    rng = np.random.default_rng(3)
    conv = Conv2dLayer(weight=rng.integers(-2, 8, (2, 1, 3, 3)), bias=np.zeros(2, dtype=np.int64),
                       threshold=rng.integers(3, 9, 2), in_shape=(1, 16, 16))  # 14x14 positions: CLEAR 196 cycles
    pool = AvgPool2dLayer(weight=2, threshold=np.full(2, 3), in_shape=conv.out_shape, kernel=(7, 7), stride=(7, 7))
    dense = DenseLayer(weight=rng.integers(-6, 8, (3, pool.n_out)), bias=np.zeros(3, dtype=np.int64),
                       threshold=np.full(3, 4))
    net = IntegerNetwork((1, 16, 16), [conv, pool, dense], weight_bits=5, membrane_bits=8).validate()
    config = EngineConfig.for_network(net, lanes=4)
    assert len(config_words(net, config)) < config.max_groups, "the configuration should end before CLEAR"
    spikes = random_spikes(np.random.default_rng(4), 2, 3, net.n_inputs)
    _, golden = run_and_check(net, spikes, engines(config), tmp_path, lanes=4, config=config)
    assert golden.spikes[0].any()
