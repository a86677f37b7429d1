"""ANN → FS-network conversion (Stöckl & Maass 2021; notes/004 §3, §5; docs/spec.md §3b).

    result = fs_convert(model, calibration_images, phases=10)
    result.integer            # validated IntegerNetwork: input_coding "fs", hidden layers 'fs', output 'acc'
    result.float_network      # the same schedule in float64 (ANN weights, float FS tables): accuracy studies
    spikes = result.input_spikes(pixels)          # fs_encode of the K-bit input codes, L·K steps

Every ReLU unit becomes an FS neuron with the ReLU table of K steps; connections and weights stay. The layer's
integer scale folds the table's range into the weights (notes/004 §5 "ReLU in integers"):

* Input: 8-bit pixels become K-bit codes ``x`` (:func:`golden.simulation.encoding.fs_pixel_codes`: ``pixel << (K − 8)`` for
  K ≥ 8, the upper K bits for K < 8) sent MSB first with ``d_in[t] = 2^(K−t)``; one code unit is the ANN input
  ``u_0 = 2^(8−K)/255`` (exact for K ≥ 8).
* Hidden layer l (ReLU, range ``α_l``): its output code ``n_l = clamp(round(y_l/u_l), 0, 2^K − 1)`` stands for the
  activation ``n_l·u_l``, ``u_l = α_l/2^K``. With the integer threshold scale ``θ_l`` and ``s_l = θ_l/u_l``
  membrane units per pre-activation unit: ``W_int = round(W_l·u_{l−1}·s_l)``, ``b_int = round(b_l·s_l) + ⌊θ_l/2⌋``
  (the ``+⌊θ_l/2⌋`` makes the FS floor a rounding; pooling layers have no bias and floor), tables
  ``T = h = θ_l·2^(K−t)``, ``d = 2^(K−t)`` (:func:`golden.conversion.fs_tables.relu_integer_table`). ``θ_l`` is the largest integer
  whose weights fit ``weight_bits``: ``θ_l = ⌊(2^(weight_bits−1) − 1)·u_l / max|W_l·u_{l−1}|⌋`` (≥ 1, else a
  :class:`WidthError`).
* Output layer: ``acc`` (collects in window L, never fires), ``W_int = round(W_L·u_{L−1}·s_L)`` with the largest
  ``s_L`` that fits, ``b_int = round(b_L·s_L)``; class = argmax of its membrane (a final ReLU, if any, is not
  applied: argmax of y).
* ``α_l`` comes from the calibration images (the ANN's activations of layer l): the maximum, or the
  ``percentile``-th percentile of the positive activations; or the user gives it (``alpha``).
* ``membrane_bits`` (default): the smallest width in which no membrane write can saturate, from
  ``max_j(|b_j| + Σ_i|W_ji|·(2^K − 1))`` and the tables.

A hidden layer without a ReLU (a linear activation) has no FS table and is refused, except average pooling of
ReLU outputs (non-negative, so the ReLU table is the identity on it).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from golden.conversion.ann_import import (AffineOp, forward_ops, import_network, import_residual_network,
                                          network_input_shape)
from golden.conversion.convert import guess_input_shape
from golden.conversion.fs_tables import relu_integer_table, relu_table
from golden.conversion.quantize import build_layer
from golden.core.errors import DataError, SnnCosimError, UnsupportedLayerError, WidthError
from golden.core.network import (MAX_PHASES, IntegerNetwork, Layer, NeuronParams, SkipConnection, signed_bits_for,
                                 signed_range)
from golden.simulation.encoding import fs_encode, fs_pixel_codes

__all__ = ["FsConversionResult", "fs_convert", "fs_convert_residual", "fs_input_unit", "DEFAULT_FS_PERCENTILE"]

PIXEL_BITS = 8
DEFAULT_FS_PERCENTILE = 99.99


def fs_input_unit(phases: int, pixel_bits: int = PIXEL_BITS) -> float:
    """The ANN input value of FS input code 1: ``2^(8−K)/255`` (pixels scaled to [0, 1] by 1/255)."""
    return math.ldexp(1.0, pixel_bits - phases) / ((1 << pixel_bits) - 1)


@dataclass(frozen=True)
class FsConversionResult:
    """What :func:`fs_convert` produces."""

    integer: IntegerNetwork
    float_network: IntegerNetwork
    alphas: list[float]  # α_l of the hidden layers (activation range of the K-bit code)
    thetas: list[int]  # θ_l of the hidden layers (integer table scale)
    scales: list[float]  # s_l of every layer: membrane units per ANN pre-activation unit
    input_unit: float  # u_0
    ann_ops: list[AffineOp]

    @property
    def phases(self) -> int:
        return int(self.integer.phases)

    @property
    def latency(self) -> int:
        """Steps of one image, L·K."""
        return int(self.integer.fs_latency)

    def input_codes(self, pixels):
        """K-bit input codes of 8-bit pixel codes (:func:`golden.simulation.encoding.fs_pixel_codes`)."""
        return fs_pixel_codes(pixels, self.phases)

    def input_spikes(self, pixels, *, device=None) -> torch.Tensor:
        """``bool [L·K, B, n_0]``: the input spikes of 8-bit pixels ``[B, ...]`` for one image each."""
        pixels = torch.as_tensor(pixels)
        return fs_encode(self.input_codes(pixels.reshape(pixels.shape[0], -1)), self.phases, steps=self.latency,
                         device=device)


def _unit_images(images) -> torch.Tensor:
    tensor = torch.as_tensor(images)
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float64) / 255.0
    if not torch.is_floating_point(tensor):
        raise DataError(f"calibration images have dtype {tensor.dtype}; pass uint8 pixel codes 0..255 or floats in "
                        f"[0, 1]")
    if tensor.numel() and (float(tensor.min()) < 0 or float(tensor.max()) > 1):
        raise DataError("calibration images are floats outside [0, 1]; pass uint8 codes 0..255 or divide by 255")
    return tensor.to(torch.float64)


def _input_shape(model: nn.Module, images: torch.Tensor | None, input_shape) -> tuple[int, ...] | None:
    if input_shape is not None:
        return tuple(int(s) for s in input_shape)
    return None if images is None else guess_input_shape(model, images)


def _check_activations(ops: Sequence[AffineOp]) -> None:
    for index, op in enumerate(ops[:-1], start=1):
        if op.relu_after:
            continue
        previous_relu = index > 1 and (ops[index - 2].relu_after or ops[index - 2].kind == "avgpool2d")
        if op.kind == "avgpool2d" and previous_relu and float(op.weight) >= 0:
            continue  # pooling of non-negative values: the ReLU table is the identity on them
        raise UnsupportedLayerError(
            f"layer {index} ('{op.name}', {op.kind}) has no activation; FS conversion needs a ReLU after every "
            f"hidden layer (a linear activation has no FS table)")


def _calibration_inputs(images: torch.Tensor, phases: int) -> torch.Tensor:
    """What the FS network's input codes represent: the pixels themselves for K ≥ 8, their upper K bits below."""
    if phases >= PIXEL_BITS:
        return images
    pixels = torch.round(images * 255).to(torch.int64)
    codes = fs_pixel_codes(pixels, phases).to(torch.float64)
    return codes * fs_input_unit(phases)


def _alphas(ops, images, phases, alpha, percentile, batch_size, skips=()) -> list[float]:
    n_hidden = len(ops) - 1
    if alpha is not None:
        values = [alpha] * n_hidden if isinstance(alpha, numbers.Real) else list(alpha)
        if len(values) != n_hidden:
            raise SnnCosimError(f"alpha: got {len(values)} values for {n_hidden} hidden layers")
        for value in values:
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
                raise SnnCosimError(f"alpha must be positive numbers, got {value!r}")
        return [float(v) for v in values]
    if n_hidden == 0:
        return []
    if images is None:
        raise DataError("fs_convert needs calibration images to measure the activation ranges α_l, or alpha=")
    x = _calibration_inputs(images, phases)
    in_shape = ops[0].in_shape
    maxima = [0.0] * n_hidden
    positives: list[list[np.ndarray]] = [[] for _ in range(n_hidden)]
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size]
            batch = batch.reshape(batch.shape[0], *in_shape)
            outs = forward_ops(ops, batch, return_all=True, skips=skips)
            for l in range(n_hidden):
                act = outs[l].reshape(-1)
                maxima[l] = max(maxima[l], float(act.max()) if act.numel() else 0.0)
                if percentile is not None:
                    positives[l].append(act[act > 0].numpy())
    out = []
    for l in range(n_hidden):
        value = maxima[l]
        if percentile is not None:
            pos = np.concatenate(positives[l]) if positives[l] else np.zeros(0)
            value = float(np.percentile(pos, percentile)) if pos.size else 0.0
        if not value > 0:
            raise DataError(f"layer {l + 1} ('{ops[l].name}') never activates on the calibration images; pass alpha=")
        out.append(value)
    return out


def _check_args(calibration_images, phases, weight_bits, percentile) -> torch.Tensor | None:
    if isinstance(phases, bool) or not isinstance(phases, int) or not 1 <= phases <= MAX_PHASES:
        raise WidthError(f"FS conversion needs phases K in 1..{MAX_PHASES} (input codes of K bits), got {phases!r}")
    if not isinstance(weight_bits, int) or not 2 <= weight_bits <= 32:
        raise WidthError(f"weight_bits must be in 2..32, got {weight_bits!r}")
    if percentile is not None and not 0 < float(percentile) <= 100:
        raise SnnCosimError(f"percentile must lie in (0, 100], got {percentile!r}")
    images = _unit_images(calibration_images) if calibration_images is not None else None
    if images is not None and images.ndim < 2:
        raise DataError(f"calibration images must be a batch [N, ...], got shape {tuple(images.shape)}")
    return images


def fs_convert(model: nn.Module, calibration_images=None, *, phases: int = 10, weight_bits: int = 8,
               membrane_bits: int | None = None, alpha: float | Sequence[float] | None = None,
               percentile: float | None = DEFAULT_FS_PERCENTILE, round_to_nearest: bool = True,
               input_shape: Sequence[int] | None = None, batch_size: int = 500) -> FsConversionResult:
    """Convert a trained ReLU ANN into an integer FS network with K = ``phases`` steps per layer (module
    docstring). ``percentile=None`` takes the maximum activation as ``α_l``. ``round_to_nearest=False`` keeps the
    paper's floor (no ``⌊θ/2⌋`` bias offset)."""
    images = _check_args(calibration_images, phases, weight_bits, percentile)
    ops = import_network(model, _input_shape(model, images, input_shape))
    return _convert_ops(ops, (), images, phases, weight_bits, membrane_bits, alpha, percentile, round_to_nearest,
                        batch_size)


def fs_convert_residual(model: nn.Module, calibration_images=None, *, phases: int = 10, weight_bits: int = 8,
                        membrane_bits: int | None = None, alpha: float | Sequence[float] | None = None,
                        percentile: float | None = DEFAULT_FS_PERCENTILE, round_to_nearest: bool = True,
                        input_shape: Sequence[int] | None = None, batch_size: int = 500) -> FsConversionResult:
    """:func:`fs_convert` for residual networks (``relu(main + shortcut)`` blocks,
    :func:`golden.conversion.ann_import.import_residual_network`): every junction becomes an FS layer with a
    :class:`~golden.core.network.SkipConnection` (docs/spec.md §3b, "Residual junctions in FS networks"). The shortcut
    carries the source's FS code ``n_k`` (``u_k`` per code unit, ``u_0`` for the input), so its weights are
    scaled like main weights: ``S_int = round(S·u_k·s_l)``, and ``θ_l`` is the largest integer for which both
    ``W_int`` and ``S_int`` fit ``weight_bits``. ``α_l`` are measured on the ANN with its shortcuts. Unlike the
    rate conversion (golden.conversion.residual, Sengupta's rules) no thresholds are shared and a shortcut may start at the
    input: FS codes are values, so the junction adds them exactly."""
    images = _check_args(calibration_images, phases, weight_bits, percentile)
    shape = _input_shape(model, images, input_shape)
    if shape is None:
        raise DataError("fs_convert_residual needs input_shape= or calibration images")
    ops, skips = import_residual_network(model, shape)
    return _convert_ops(ops, skips, images, phases, weight_bits, membrane_bits, alpha, percentile,
                        round_to_nearest, batch_size)


def _convert_ops(ops, skips, images, phases, weight_bits, membrane_bits, alpha, percentile, round_to_nearest,
                 batch_size) -> FsConversionResult:
    """The conversion of the imported ``ops`` (and residual ``skips``) described in the module docstring."""
    from golden.conversion.residual import _skip_weight  # the shortcut as a weight array in the junction's geometry

    _check_activations(ops)
    alphas = _alphas(ops, images, phases, alpha, percentile, batch_size, skips)
    by_target = {int(skip.target): skip for skip in skips}
    ir_skips: list[SkipConnection] = []
    float_skips: list[SkipConnection] = []
    w_max = signed_range(weight_bits)[1]
    top = (1 << phases) - 1
    input_unit = fs_input_unit(phases)
    units = [input_unit] + [a / (1 << phases) for a in alphas]  # u_0 .. u_{L−1}
    layers: list[Layer] = []
    float_layers: list[Layer] = []
    thetas: list[int] = []
    scales: list[float] = []
    bound = 0
    last = len(ops) - 1
    for index, op in enumerate(ops):
        weight_eff = np.asarray(op.weight, dtype=np.float64) * units[index]  # per input code unit
        largest = float(np.max(np.abs(weight_eff))) if weight_eff.size else 0.0
        skip = by_target.get(index + 1)
        if skip is not None:  # the shortcut carries source k's code: S per code unit u_k, like W
            skip_ann = _skip_weight(skip, ops)
            skip_eff = skip_ann * units[skip.source]
            largest = max(largest, float(np.max(np.abs(skip_eff))))
        n_ch = op.n_channels_out
        where = f"layer {index + 1} ('{op.name}')"
        if index < last:
            u_out = units[index + 1]
            theta = math.floor(w_max * u_out / largest) if largest > 0 else 1
            if theta < 1:
                raise WidthError(f"{where}: its activation range α = {alphas[index]:.3g} is smaller than one "
                                 f"weight step allows (θ = 2^(weight_bits−1)−1 · α / max|W| < 1 with "
                                 f"weight_bits={weight_bits}); use more weight_bits or a larger alpha")
            scale = theta / u_out
            table = relu_integer_table(phases, theta)
            neuron = table.neuron_params()
            threshold = np.full(n_ch, theta, dtype=np.int64)
            offset = theta // 2 if round_to_nearest else 0
            thetas.append(theta)
        else:
            scale = w_max / largest if largest > 0 else 1.0
            neuron = NeuronParams("acc")
            threshold = np.ones(n_ch, dtype=np.int64)
            offset = 0
            theta = 0
        scales.append(scale)
        if op.kind == "avgpool2d":
            w_int = int(np.rint(float(weight_eff) * scale))
            layer = build_layer(op, w_int, None, threshold, neuron)
            b_int = np.zeros(n_ch, dtype=np.int64)
        else:
            w_int = np.rint(weight_eff * scale).astype(np.int64)
            b_int = (np.rint(np.asarray(op.bias, dtype=np.float64) * scale) + offset).astype(np.int64)
            layer = build_layer(op, w_int, b_int, threshold, neuron)
        layers.append(layer)
        fan_in = layer.fan_in_abs_max()
        if skip is not None:
            geometry = (tuple(skip.op.stride), tuple(skip.op.padding)) if skip.op is not None else ((1, 1), (0, 0))
            ir_skips.append(SkipConnection(index + 1, int(skip.source), np.rint(skip_eff * scale).astype(np.int64),
                                           *geometry))
            float_skips.append(SkipConnection(index + 1, int(skip.source),
                                              skip_ann * (input_unit if skip.source == 0 else 1.0), *geometry))
            fan_in += ir_skips[-1].as_layer(layers[skip.source - 1].out_shape if skip.source else
                                            tuple(network_input_shape(ops))).fan_in_abs_max()
        bound = max(bound, fan_in * top + int(np.max(np.abs(b_int), initial=0)), theta << max(phases - 1, 0))
        # float twin: ANN weights (input layer per code unit), float ReLU tables in activation units
        float_weight = np.asarray(op.weight, dtype=np.float64) * (input_unit if index == 0 else 1.0)
        float_bias = np.asarray(op.bias, dtype=np.float64)
        if index < last:
            ftable = relu_table(phases, alphas[index])
            fneuron = NeuronParams("fs", fs_threshold=ftable.threshold, fs_reset=ftable.reset,
                                   fs_weight=ftable.weight)
            if round_to_nearest and op.kind != "avgpool2d":
                float_bias = float_bias + units[index + 1] / 2
        else:
            fneuron = NeuronParams("acc")
        ones = np.ones(n_ch, dtype=np.float64)
        if op.kind == "avgpool2d":
            float_layers.append(build_layer(op, float(float_weight), None, ones, fneuron))
        else:
            float_layers.append(build_layer(op, float_weight, float_bias, ones, fneuron))
    if membrane_bits is None:
        membrane_bits = signed_bits_for(-bound, bound)
        if membrane_bits > 62:
            raise WidthError(f"the FS network needs a {membrane_bits}-bit membrane to never saturate (more than 62); "
                             f"use fewer weight_bits or phases, or give membrane_bits to accept saturation")
    metadata = {"conversion": {
        "method": "fs", "phases": phases, "alphas": alphas, "thetas": thetas, "scales": scales,
        "input_unit": input_unit, "percentile": percentile, "round_to_nearest": bool(round_to_nearest),
        "calibration_images": int(images.shape[0]) if images is not None else 0,
        "input_codes": f"8-bit pixels << {phases - PIXEL_BITS}" if phases >= PIXEL_BITS else
        f"upper {phases} bits of 8-bit pixels", "input_shape": list(network_input_shape(ops)),
        "output_neuron": "acc"}}
    if skips:
        metadata["conversion"]["skips"] = [[int(s.source), int(s.target)] for s in ir_skips]
    common = dict(input_shape=tuple(network_input_shape(ops)), weight_bits=weight_bits, membrane_bits=membrane_bits,
                  input_coding="fs", input_bits=phases, phases=phases)
    integer = IntegerNetwork(layers=layers, metadata=metadata, skips=ir_skips, **common).validate()
    float_network = IntegerNetwork(layers=float_layers, metadata={**metadata, "float_network": True},
                                   skips=float_skips, **common)
    return FsConversionResult(integer, float_network, alphas, thetas, scales, input_unit, ops)
