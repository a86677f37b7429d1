"""Quantisation: normalised float layers (threshold 1) → the integer network of SPEC §1.

Per layer l an **integer** scale ``s_l ≥ 1`` multiplies the whole layer — weights, bias and threshold — which
leaves the IF dynamics unchanged (Diehl 2015 §II-C: "only the ratio of spiking threshold to input weights" matters;
notes/000 §2.7 threshold balancing):

    s_l     = floor((2^(weight_bits−1) − 1) / max|W'_l|)      (the largest integer scale whose weights fit)
    W_int   = round(W'_l · s_l)          bias_int = round(b'_l · s_l)          θ_l = s_l

so ``max|W_int| ≈ 2^(weight_bits−1) − 1`` and the threshold is exactly the scale (no second rounding of θ).
A user may fix ``s_l`` instead (``scale=``). Rounding is half-to-even (``numpy.rint``).

Input coding (IntegerNetwork docstring): with ``"rate"`` layer 1 sees binary spikes standing for x = code/255, so
nothing changes. With ``"direct"`` layer 1 receives the code c = 255·x itself every step, so its threshold and
bias are multiplied by ``2^input_bits − 1 = 255``: ``θ_1 = 255·s_1``, ``bias_1 = round(255·b'_1·s_1)``.

Average pooling keeps one integer ``weight = round(w'·s_l)`` and per-channel thresholds ``s_l``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .ann import AffineOp, ann_mac_count, network_input_shape
from .errors import SnnCosimError, WidthError
from .ir import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, Layer, NeuronParams, signed_bits_for,
                 signed_range)
from .normalize import Normalization

INPUT_CODINGS = ("rate", "direct")


def _max_abs_weight(op: AffineOp) -> float:
    return float(np.max(np.abs(op.weight))) if np.size(op.weight) else 0.0


def choose_scale(op: AffineOp, weight_bits: int) -> int:
    """The largest integer s with ``max|W'·s| ≤ 2^(weight_bits−1) − 1`` (1 for an all-zero layer).

    Raises :class:`WidthError` when even s = 1 does not fit: a single weight is then worth more thresholds than
    ``weight_bits`` can express.
    """
    w_max = signed_range(weight_bits)[1]
    largest = _max_abs_weight(op)
    if largest == 0:
        return 1
    scale = math.floor(w_max / largest)
    if scale < 1:
        need = signed_bits_for(-int(round(largest)), int(round(largest)))
        raise WidthError(f"layer '{op.name}': a single weight is worth {largest:.3g} thresholds, more than "
                         f"weight_bits={weight_bits} can hold (max {w_max}); use weight_bits={need} or a "
                         f"normalisation with larger factors")
    return scale


def build_layer(op: AffineOp, weight, bias, threshold, neuron: NeuronParams) -> Layer:
    """Wrap arrays (integer or float) in the IR layer class that matches ``op.kind``."""
    if op.kind == "linear":
        return DenseLayer(weight, bias, threshold, neuron, op.name)
    if op.kind == "conv2d":
        return Conv2dLayer(weight, bias, threshold, tuple(op.in_shape), tuple(op.stride), tuple(op.padding), neuron,
                           op.name)
    return AvgPool2dLayer(weight, threshold, tuple(op.in_shape), tuple(op.kernel), tuple(op.stride), neuron, op.name)


def _per_layer(value, n_layers: int, what: str) -> list:
    if value is None or np.isscalar(value):
        return [value] * n_layers
    values = list(value)
    if len(values) != n_layers:
        raise SnnCosimError(f"{what}: got {len(values)} values for {n_layers} layers; give one or one per layer")
    return values


def quantize(normalization: Normalization, *, weight_bits: int = 8, membrane_bits: int = 24,
             neuron: NeuronParams = NeuronParams(), input_coding: str = "rate", input_bits: int = 8,
             scale: int | Sequence[int] | None = None, metadata: dict | None = None) -> IntegerNetwork:
    """Turn normalised float layers into a validated :class:`IntegerNetwork` (see the module docstring).

    ``neuron`` is applied to every layer. ``scale`` fixes s_l (one integer for all layers or one per layer) instead
    of choosing it from ``weight_bits``. Raises :class:`WidthError` naming a width that would work when weights,
    thresholds or biases do not fit.
    """
    ops = normalization.ops
    if input_coding not in INPUT_CODINGS:
        raise SnnCosimError(f"input_coding={input_coding!r} is not one of 'rate', 'direct'")
    if not 2 <= weight_bits <= 32:
        raise WidthError(f"weight_bits={weight_bits} must lie in 2..32")
    if not 4 <= membrane_bits <= 62:
        raise WidthError(f"membrane_bits={membrane_bits} must lie in 4..62")
    neuron.validate(membrane_bits, "neuron parameters")
    input_max = (1 << input_bits) - 1
    w_lo, w_hi = signed_range(weight_bits)
    v_lo, v_hi = signed_range(membrane_bits)
    fixed_scales = _per_layer(scale, len(ops), "scale")

    layers: list[Layer] = []
    scales: list[int] = []
    thresholds: list[int] = []
    for index, (op, fixed) in enumerate(zip(ops, fixed_scales)):
        if fixed is None:
            s_l = choose_scale(op, weight_bits)
        else:
            if int(fixed) != fixed or fixed < 1:
                raise SnnCosimError(f"scale={fixed} for layer '{op.name}' must be a positive integer")
            s_l = int(fixed)
        weight = np.rint(op.weight * s_l).astype(np.int64)
        if weight.size and (weight.min() < w_lo or weight.max() > w_hi):
            need = signed_bits_for(int(weight.min()), int(weight.max()))
            raise WidthError(f"layer '{op.name}': scale {s_l} gives weights in [{weight.min()}, {weight.max()}], "
                             f"outside weight_bits={weight_bits}; use weight_bits={need} or a smaller scale")
        input_factor = input_max if (index == 0 and input_coding == "direct") else 1
        threshold = s_l * input_factor
        bias = np.rint(op.bias * s_l * input_factor).astype(np.int64)
        if threshold > v_hi:
            raise WidthError(f"layer '{op.name}': threshold {threshold} does not fit membrane_bits={membrane_bits} "
                             f"(max {v_hi}); use membrane_bits={signed_bits_for(0, threshold)} or a smaller "
                             f"weight_bits")
        if bias.size and (bias.min() < v_lo or bias.max() > v_hi):
            need = signed_bits_for(int(bias.min()), int(bias.max()))
            raise WidthError(f"layer '{op.name}': biases span [{bias.min()}, {bias.max()}], outside "
                             f"membrane_bits={membrane_bits}; use membrane_bits={need}")
        threshold_array = np.full(op.n_channels_out, threshold, dtype=np.int64)
        if op.kind == "avgpool2d":
            layers.append(build_layer(op, int(weight), None, threshold_array, neuron))
        else:
            layers.append(build_layer(op, weight, bias, threshold_array, neuron))
        scales.append(s_l)
        thresholds.append(threshold)

    record = {
        "source": "golden.convert",
        "normalization": normalization.summary(),
        "quantization": {"scales": scales, "thresholds": thresholds, "weight_bits": weight_bits,
                         "rounding": "half-to-even", "input_coding": input_coding},
        "ann": {"layers": [op.describe() for op in ops], "mac_count": ann_mac_count(ops)},
    }
    record.update(metadata or {})
    network = IntegerNetwork(input_shape=network_input_shape(ops), layers=layers, weight_bits=weight_bits,
                             membrane_bits=membrane_bits, input_coding=input_coding, input_bits=input_bits,
                             metadata=record)
    return network.validate()
