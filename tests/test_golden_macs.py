"""The ANN's MACs of one inference (golden.core.macs), the one count behind the counters, the energy model's ANN
baseline, the report and the job summary — residual shortcuts included (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosim.app.report_html import RunData
from golden.core import macs
from golden.core.errors import SnnCosimError
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, SkipConnection, identity_skip
from golden.energy import estimate as E


def _dense(n_out, n_in):
    return DenseLayer(np.ones((n_out, n_in), dtype=np.int64), np.zeros(n_out, dtype=np.int64),
                      np.ones(n_out, dtype=np.int64))


def _conv(c_in, c_out, h, stride=1):
    return Conv2dLayer(np.ones((c_out, c_in, 3, 3), dtype=np.int64), np.zeros(c_out, dtype=np.int64),
                       np.ones(c_out, dtype=np.int64), (c_in, h, h), (stride, stride), (1, 1))


def test_ann_macs():
    conv = Conv2dLayer(np.ones((4, 1, 3, 3), dtype=np.int64), np.zeros(4, dtype=np.int64),
                       np.ones(4, dtype=np.int64), in_shape=(1, 8, 8))  # → 4x6x6
    pool = AvgPool2dLayer(1, np.ones(4, dtype=np.int64), in_shape=(4, 6, 6))  # → 4x3x3
    dense = _dense(10, 36)
    network = IntegerNetwork((1, 8, 8), [conv, pool, dense]).validate()
    assert macs.ann_macs_per_layer(network) == [4 * 36 * 9, 4 * 9 * 4, 360]
    assert macs.ann_macs(network) == 1296 + 144 + 360
    assert macs.ann_macs(IntegerNetwork((784,), [_dense(100, 784), _dense(10, 100)])) == 78400 + 1000


def residual_network() -> IntegerNetwork:
    """conv 1→2 (6×6) → conv 2→2 → conv 2→2 (+identity skip from layer 1) → conv 2→3 stride 2 (3×3) →
    conv 3→3 (+1×1 stride-2 projection from layer 3, one channel pair all zero) → avg pool 2×2 stride 1 (3×2×2)
    → dense 12→4 (+dense skip from layer 5, 27 inputs, one synapse zero)."""
    projection = np.ones((3, 2, 1, 1), dtype=np.int64)
    projection[1, 0] = 0
    dense_skip = np.ones((4, 27), dtype=np.int64)
    dense_skip[2, 5] = 0
    layers = [_conv(1, 2, 6), _conv(2, 2, 6), _conv(2, 2, 6), _conv(2, 3, 6, 2), _conv(3, 3, 3),
              AvgPool2dLayer(1, np.ones(3, dtype=np.int64), (3, 3, 3), (2, 2), (1, 1)), _dense(4, 12)]
    skips = [identity_skip(3, 1, 2), SkipConnection(5, 3, projection, (2, 2)), SkipConnection(7, 5, dense_skip)]
    return IntegerNetwork((1, 6, 6), layers, weight_bits=4, membrane_bits=16, skips=skips).validate()


# by hand: conv c_out·h_out·w_out·c_in·kh·kw, pool c·h_out·w_out·kh·kw, dense n_out·n_in; a shortcut adds its
# own synapses: identity c·h·w, projection (non-zero channel pairs)·h_out·w_out·1·1, dense its non-zero weights
RESIDUAL_MACS = [2 * 6 * 6 * 1 * 3 * 3,
                 2 * 6 * 6 * 2 * 3 * 3,
                 2 * 6 * 6 * 2 * 3 * 3 + 2 * 6 * 6,
                 3 * 3 * 3 * 2 * 3 * 3,
                 3 * 3 * 3 * 3 * 3 * 3 + (3 * 2 - 1) * 3 * 3,
                 3 * 2 * 2 * 2 * 2,
                 4 * 12 + (4 * 27 - 1)]


def test_ann_macs_of_a_residual_network_by_hand():
    net = residual_network()
    assert macs.ann_macs_per_layer(net) == RESIDUAL_MACS
    assert macs.ann_macs(net) == sum(RESIDUAL_MACS)
    plain = IntegerNetwork(net.input_shape, net.layers, weight_bits=4, membrane_bits=16)
    assert [a - b for a, b in zip(macs.ann_macs_per_layer(net), macs.ann_macs_per_layer(plain))] == \
        [0, 0, 72, 0, 45, 0, 107]


def test_energy_baseline_and_report_count_the_shortcuts():
    """The bug of issue 12: the energy model's own copy of the count left the shortcut MACs out."""
    net = residual_network()
    run = RunData(Path("."), {}, network=net)
    assert run.ann_macs_per_layer() == RESIDUAL_MACS
    chip = E.load_chip("cmos45nm")
    ann = E.ann_energy(run.ann_macs_per_layer(), chip, net.weight_bits)
    price = chip.price_pj("mac", 1)
    assert [row["mac"] for row in ann.per_layer] == [m * price for m in RESIDUAL_MACS]


def test_unknown_layer_kind_is_refused():
    class Strange:
        kind = "strange"

    with pytest.raises(SnnCosimError, match="strange"):
        macs.layer_ann_macs(Strange())
