"""The ANN's multiply-accumulates of one inference of an :class:`~golden.core.network.IntegerNetwork` (SPEC §5's comparison
figure, docs/spec.md §5): the one count that the counters (:mod:`golden.simulation.counting`), the energy model
(:mod:`golden.energy.estimate`), the conversion record (:mod:`golden.conversion.quantize`) and the job summary use. Torch-free, so that
reports can use it.

Per layer: dense ``n_in·n_out``; conv ``c_out·h_out·w_out·c_in·kh·kw`` (padded taps included, as an ANN computes
them); average pool ``c·h_out·w_out·kh·kw`` (one accumulate per window element). A residual junction adds its
shortcut's own MACs (:func:`skip_ann_macs`).
"""

from __future__ import annotations

import numpy as np

from golden.core.errors import SnnCosimError
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, SkipConnection

__all__ = ["layer_ann_macs", "skip_ann_macs", "ann_macs_per_layer", "ann_macs"]


def layer_ann_macs(layer) -> int:
    """The ANN's MACs of one layer's own synapses (without a residual shortcut into it)."""
    if isinstance(layer, DenseLayer):
        return layer.n_in * layer.n_out
    if isinstance(layer, Conv2dLayer):
        c_out, c_in, kh, kw = (int(s) for s in layer.weight.shape)
        _, ho, wo = layer.out_shape
        return c_out * ho * wo * c_in * kh * kw
    if isinstance(layer, AvgPool2dLayer):
        c, ho, wo = layer.out_shape
        return c * ho * wo * int(layer.kernel[0]) * int(layer.kernel[1])
    raise SnnCosimError(f"cannot count the MACs of layer kind {getattr(layer, 'kind', '?')!r}")


def skip_ann_macs(network: IntegerNetwork, skip: SkipConnection) -> int:
    """The ANN's operations of a residual shortcut: per output position, one MAC per (output, input) channel
    pair (dense: neuron pair) whose kernel is not all zero, times the kernel taps. An identity shortcut (a diagonal
    1×1 kernel) thus costs ``c·h·w``, the ANN's element-wise addition; a 1×1 downsampling conv its full MACs."""
    weight = np.asarray(skip.weight)
    if weight.ndim == 2:
        return int(np.count_nonzero(weight))
    _, ho, wo = network.layers[skip.target - 1].out_shape
    pairs = int(np.count_nonzero(np.abs(weight).sum(axis=(2, 3))))
    return pairs * ho * wo * int(weight.shape[2] * weight.shape[3])


def ann_macs_per_layer(network: IntegerNetwork) -> list[int]:
    """The ANN's MACs of one inference, layer by layer; a residual junction's entry includes its shortcut's."""
    out = [layer_ann_macs(layer) for layer in network.layers]
    for skip in network.skips:
        out[skip.target - 1] += skip_ann_macs(network, skip)
    return out


def ann_macs(network: IntegerNetwork) -> int:
    """The ANN's MAC count of one inference of the same network (the sum of :func:`ann_macs_per_layer`)."""
    return int(sum(ann_macs_per_layer(network)))
