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

Weighted spikes (Kim 2018, ``input_coding="weighted"``, docs/spec.md §3a): the same scale per layer; hidden layers
are ``NeuronParams("ws", "subtract")``, the output layer ``NeuronParams("acc")`` (its threshold s_L is unused by
the dynamics; ``2^K·s_L`` turns its membrane into activation units for early decision), and the bias is Kim's
``β = b'/(1 − 2^-K)`` (Eq. 8), ``bias_int = round(β·s_l)``, so that over one period
``Σ_k bias_int·2^-k ≈ b'·s_l``.
The integer membrane is in units of 2^-K and needs K−1 bits of headroom above ``max(θ, Σ|W| + |b|)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from golden.conversion import DEFAULT_NEURON
from golden.conversion.ann_import import AffineOp, network_input_shape
from golden.conversion.normalize import Normalization, weighted_ceiling
from golden.core.errors import SnnCosimError, WidthError
from golden.core.macs import layer_ann_macs
from golden.core.network import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, Layer, NeuronParams,
                                 signed_bits_for, signed_range)

INPUT_CODINGS = ("rate", "direct", "weighted")


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


WS_HIDDEN = NeuronParams("ws", "subtract")  # Kim 2018 Eq. 8-10: reset by subtracting the phase threshold
WS_OUTPUT = NeuronParams("acc")  # Kim 2018 Eq. 16-17: the output layer integrates and never spikes


def check_phases(phases, skip_periods) -> tuple[int, int]:
    """K in 1..16 (:class:`WidthError` otherwise) and S ≥ 0 for weighted spikes."""
    if isinstance(phases, bool) or not isinstance(phases, (int, np.integer)) or not 1 <= phases <= 16:
        raise WidthError(f"phases K = {phases!r} is not possible: weighted spikes need K in 1..16 (K-bit codes, "
                         f"a 4-bit phase counter); use phases=4 (Kim 2018 for MNIST) or phases=8 (CIFAR)")
    if isinstance(skip_periods, bool) or not isinstance(skip_periods, (int, np.integer)) or skip_periods < 0:
        raise SnnCosimError(f"skip_periods S = {skip_periods!r} must be an integer >= 0 (output integration "
                            f"starts after S·K steps; Kim 2018 uses 1..4 for MNIST)")
    return int(phases), int(skip_periods)


def weighted_neurons(n_layers: int) -> list[NeuronParams]:
    """Neuron parameters of a weighted-spike network: 'ws' hidden layers, the 'acc' output layer."""
    return [WS_HIDDEN] * (n_layers - 1) + [WS_OUTPUT]


def weighted_membrane_bits(layers: Sequence[Layer], phases: int) -> int:
    """Smallest ``membrane_bits`` whose phase-1 headroom (docs/spec.md §3a) holds every layer:
    ``max(θ, Σ_i |W[j,i]| + |b_j|) << (K−1)``."""
    need = 0
    for layer in layers:
        need = max(need, int(np.max(layer.threshold)),
                   layer.fan_in_abs_max() + int(np.max(np.abs(np.asarray(layer.bias)), initial=0)))
    need <<= phases - 1
    return max(4, signed_bits_for(-need, need))


def quantize(normalization: Normalization, *, weight_bits: int = 8, membrane_bits: int = 24,
             neuron: NeuronParams | None = None, input_coding: str = "rate", input_bits: int = 8,
             scale: int | Sequence[int] | None = None, metadata: dict | None = None, phases: int = 0,
             skip_periods: int = 0) -> IntegerNetwork:
    """Turn normalised float layers into a validated :class:`IntegerNetwork` (see the module docstring).

    ``neuron`` (default IF, reset to zero) applies to every layer of a rate/direct network. With
    ``input_coding="weighted"`` (Kim 2018; ``normalization`` from :func:`golden.conversion.normalize.for_weighted_spikes`)
    the neurons are fixed — 'ws' hidden layers and the 'acc' output layer — the biases are Kim's
    ``β = b'/(1 − 2^-K)``, ``input_bits = phases`` = K and ``skip_periods`` = S.

    Raises :class:`WidthError` (naming the width that works) when the weights, thresholds or biases, or for
    weighted spikes the phase-1 headroom ``<< (K−1)``, do not fit.
    """
    ops = normalization.ops
    if input_coding not in INPUT_CODINGS:
        raise SnnCosimError(f"input_coding={input_coding!r} is not one of {', '.join(map(repr, INPUT_CODINGS))}")
    weighted = input_coding == "weighted"
    if weighted:
        phases, skip_periods = check_phases(phases, skip_periods)
        if neuron is not None and neuron != WS_HIDDEN:
            raise SnnCosimError(f"weighted spikes fix the neurons ('ws' reset subtract, the output 'acc'); leave "
                                f"neuron unset instead of {neuron}")
        input_bits = phases
        neurons = weighted_neurons(len(ops))
    else:
        if phases or skip_periods:
            raise SnnCosimError(f"phases/skip_periods belong to input_coding='weighted', not {input_coding!r}; "
                                f"leave them at 0")
        neuron = DEFAULT_NEURON if neuron is None else neuron
        neurons = [neuron] * len(ops)
    if not 2 <= weight_bits <= 32:
        raise WidthError(f"weight_bits={weight_bits} must lie in 2..32")
    if not 4 <= membrane_bits <= 62:
        raise WidthError(f"membrane_bits={membrane_bits} must lie in 4..62")
    for params in set(neurons):
        params.validate(membrane_bits, "neuron parameters")
    bias_factor = 1.0 / weighted_ceiling(phases) if weighted else 1.0  # Kim's β = b/(1 − 2^-K)
    input_max = (1 << input_bits) - 1
    w_lo, w_hi = signed_range(weight_bits)
    v_lo, v_hi = signed_range(membrane_bits)
    fixed_scales = _per_layer(scale, len(ops), "scale")

    layers: list[Layer] = []
    scales: list[int] = []
    thresholds: list[int] = []
    for index, (op, fixed, layer_neuron) in enumerate(zip(ops, fixed_scales, neurons)):
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
        bias = np.rint(op.bias * (s_l * input_factor * bias_factor)).astype(np.int64)
        if not weighted:  # weighted networks: one check of the phase headroom below covers θ and the biases
            if threshold > v_hi:
                raise WidthError(f"layer '{op.name}': threshold {threshold} does not fit membrane_bits="
                                 f"{membrane_bits} (max {v_hi}); use membrane_bits={signed_bits_for(0, threshold)} "
                                 f"or a smaller weight_bits")
            if bias.size and (bias.min() < v_lo or bias.max() > v_hi):
                need = signed_bits_for(int(bias.min()), int(bias.max()))
                raise WidthError(f"layer '{op.name}': biases span [{bias.min()}, {bias.max()}], outside "
                                 f"membrane_bits={membrane_bits}; use membrane_bits={need}")
        threshold_array = np.full(op.n_channels_out, threshold, dtype=np.int64)
        if op.kind == "avgpool2d":
            layers.append(build_layer(op, int(weight), None, threshold_array, layer_neuron))
        else:
            layers.append(build_layer(op, weight, bias, threshold_array, layer_neuron))
        scales.append(s_l)
        thresholds.append(threshold)
    if weighted:
        need = weighted_membrane_bits(layers, phases)
        if need > membrane_bits:
            raise WidthError(f"with K = {phases} phases the membrane needs {phases - 1} extra bits (phase-1 "
                             f"threshold and input << {phases - 1}): membrane_bits={membrane_bits} is too small; "
                             f"use membrane_bits={need} or more (or a smaller K or weight_bits)")

    quant = {"scales": scales, "thresholds": thresholds, "weight_bits": weight_bits, "rounding": "half-to-even",
             "input_coding": input_coding}
    if weighted:
        quant.update(phases=phases, skip_periods=skip_periods, bias_factor=bias_factor,
                     input_lambda=float(normalization.input_lambda), min_membrane_bits=need)
    record = {
        "source": "golden.conversion.convert",
        "normalization": normalization.summary(),
        "quantization": quant,
        "ann": {"layers": [op.describe() for op in ops], "mac_count": sum(layer_ann_macs(layer) for layer in layers)},
    }
    record.update(metadata or {})
    network = IntegerNetwork(input_shape=network_input_shape(ops), layers=layers, weight_bits=weight_bits,
                             membrane_bits=membrane_bits, input_coding=input_coding, input_bits=input_bits,
                             metadata=record, phases=phases if weighted else 0,
                             skip_periods=skip_periods if weighted else 0)
    return network.validate()
