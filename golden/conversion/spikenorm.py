"""Spike-Norm (Sengupta et al. 2019, Algorithm 1): layer-by-layer threshold balancing with the SNN in the loop.

    result = spike_norm_convert(model, calibration_images, steps=100)
    result.integer          # validated IntegerNetwork (integer weights of weight_bits, per-layer thresholds)
    result.thresholds       # θ_1..θ_L in units of the ANN's own weights (the paper's v_th,norm)

For layer i = 1..L (notes/002 §2.8):

1. the calibration images are rate coded (Bernoulli, p = max_rate·code/255, :func:`golden.simulation.encoding.rate_encode`
   with ``seed``) into spike trains ``X^0[t]``, t = 1..T;
2. ``θ_i = max over t, images and neurons of the single-step weighted input W_i ⊛ X^{i−1}[t] + b_i·max_rate``
   (the paper's "vmem.input", **not** the membrane potential; biases, absent in the paper's nets, are included as
   a per-step input scaled like :func:`golden.conversion.normalize.scale_biases_for_rate`);
3. layer i is simulated (IF, no leak, the reset of ``neuron``, threshold θ_i, from zero state per image) on
   ``X^{i−1}`` to give ``X^i``, the input of layer i+1.

Every spiking layer gets its own factor: average-pool layers (spiking layers in this project, Diehl §II-B) and the
output layer included (the paper leaves this open). Time order is SPEC §2: layer i consumes the spikes layer i−1
emitted in the same step.

Threshold balancing with θ_i on the raw weights is the weight normalisation ``W'_i = W_i/θ_i`` with threshold 1
(exactly equivalent: notes/002 §2.5). Because layer i's inputs are real spikes (0/1), the factors do **not** chain
as Diehl's λ_{l−1}/λ_l: the multiplier applied to layer i's weights is ``1/θ_i``, i.e. the equivalent
``λ_i = θ_1·…·θ_i`` of :mod:`golden.conversion.normalize`. Quantisation is :func:`golden.conversion.quantize.quantize` unchanged
(``s_i = floor((2^(wb−1)−1)/max|W'_i|)``, ``W_int = rint(W'_i·s_i)``, threshold ``s_i``).

The calibration simulation runs in float64 on the CPU (the thresholds are measurements, the integer network is
what is simulated exactly afterwards). Memory: the spike trains of one layer are kept as ``bool [T, N, n_l]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from golden.conversion import DEFAULT_NEURON
from golden.conversion.ann_import import AffineOp, apply_op, import_network, network_input_shape
from golden.conversion.convert import build_float_network, calibration_to_unit, guess_input_shape
from golden.conversion.normalize import Normalization, apply_lambdas, scale_biases_for_rate
from golden.conversion.quantize import quantize
from golden.core.errors import DataError, SnnCosimError
from golden.core.network import IntegerNetwork, NeuronParams
from golden.simulation.encoding import rate_encode

DEFAULT_CHUNK = 64  # images per calibration chunk (results never depend on it)


@dataclass(frozen=True)
class SpikeNormResult:
    """What :func:`spike_norm_convert` produces (the fields of :class:`golden.conversion.convert.ConversionResult` plus the
    measured thresholds)."""

    integer: IntegerNetwork  # validated; simulate it, save it, build hardware from it
    float_network: IntegerNetwork  # W_i/θ_i in float64, thresholds 1.0; never validated or saved
    thresholds: list[float]  # θ_i: max single-step weighted input of layer i (ANN weight units)
    lambdas: list[float]  # equivalent λ_i = θ_1·…·θ_i (weight factor of layer i = 1/θ_i)
    normalization: Normalization
    ann_ops: list[AffineOp]
    spike_rates: list[float]  # mean spikes per neuron per step of every layer on the calibration set

    @property
    def scales(self) -> list[int]:
        return list(self.integer.metadata["quantization"]["scales"])


def _pixel_codes(images: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] → the 8-bit codes the rate encoder takes (uint8 codes pass through exactly)."""
    return torch.round(images * 255.0).to(torch.int64)


def _layer_input(op: AffineOp, spikes: torch.Tensor) -> torch.Tensor:
    """Single-step weighted inputs ``W ⊛ X[t] + b`` of ``spikes [T, B, n_in]`` → float64 ``[T, B, n_out]``."""
    steps, batch = spikes.shape[0], spikes.shape[1]
    linear = replace(op, relu_after=False)
    flat = spikes.reshape(steps * batch, *op.in_shape).to(torch.float64)
    return apply_op(linear, flat).reshape(steps, batch, -1)


def integrate_if(current: torch.Tensor, threshold: float, reset: str) -> torch.Tensor:
    """IF without leak over ``current [T, B, n]`` from zero state: ``v += I``; spike when ``v ≥ θ``; reset."""
    v = torch.zeros(current.shape[1:], dtype=torch.float64)
    out = torch.empty(current.shape, dtype=torch.bool)
    for t in range(current.shape[0]):
        v += current[t]
        fired = v >= threshold
        out[t] = fired
        if reset == "subtract":
            v -= fired.to(torch.float64) * threshold
        else:
            v.masked_fill_(fired, 0.0)
    return out


def spike_norm_thresholds(ops: Sequence[AffineOp], input_spikes: torch.Tensor, *, reset: str = "subtract",
                          chunk: int = DEFAULT_CHUNK) -> tuple[list[float], list[float]]:
    """Sengupta Algorithm 1 on imported ops: ``input_spikes`` bool ``[T, N, n_0]`` → (θ_1..θ_L, spike rates).

    θ_i is the largest single-step weighted input of layer i over all steps, images and neurons, with layers
    1..i−1 already balanced; layer i is then simulated with θ_i (IF, ``reset``) to give layer i+1's input."""
    if reset not in ("subtract", "zero"):
        raise SnnCosimError(f"reset={reset!r} must be 'subtract' or 'zero'")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise SnnCosimError(f"chunk must be a positive integer, got {chunk!r}")
    spikes = torch.as_tensor(input_spikes).to(torch.bool)
    n_images = spikes.shape[1]
    thresholds: list[float] = []
    rates: list[float] = []
    with torch.no_grad():
        for op in ops:
            theta = -np.inf
            for start in range(0, n_images, chunk):  # pass 1: the max needs every image before any spike
                theta = max(theta, float(_layer_input(op, spikes[:, start:start + chunk]).max()))
            if not theta > 0:
                raise DataError(f"layer '{op.name}' never receives a positive input from the calibration spike "
                                f"trains, so Spike-Norm has no threshold for it; pass more or more typical "
                                f"calibration images, or more steps")
            thresholds.append(theta)
            out = torch.empty((spikes.shape[0], n_images, op.n_out), dtype=torch.bool)
            for start in range(0, n_images, chunk):  # pass 2: run layer i with its threshold
                stop = min(n_images, start + chunk)
                out[:, start:stop] = integrate_if(_layer_input(op, spikes[:, start:stop]), theta, reset)
            rates.append(float(out.to(torch.float32).mean()))
            spikes = out
    return thresholds, rates


def spike_norm_convert(model: torch.nn.Module, calibration_images, *, steps: int, max_rate: float = 1.0,
                       seed: int = 0, weight_bits: int = 8, membrane_bits: int = 24,
                       neuron: NeuronParams = DEFAULT_NEURON, input_shape: Sequence[int] | None = None,
                       chunk: int = DEFAULT_CHUNK) -> SpikeNormResult:
    """Convert a trained ReLU ANN into a rate-coded integer SNN with Spike-Norm thresholds (Sengupta 2019).

    ``calibration_images``: ``uint8`` codes 0..255 or floats in [0, 1] (rounded to codes), shape ``[N, ...]``;
    the paper uses a random mini-batch of 256 training images and ``steps`` = 2500. The spike trains are
    :func:`golden.simulation.encoding.rate_encode` ``(codes, steps, max_rate=max_rate, seed=seed)``. ``neuron`` must be a
    non-leaky IF neuron (``NeuronParams("if", reset)``); its reset is used both in the calibration run and in the
    integer network. Widths as :func:`golden.conversion.quantize.quantize` (a :class:`WidthError` names the width that works).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise SnnCosimError(f"steps={steps!r} must be a positive integer (Sengupta 2019 uses 2500)")
    if not isinstance(neuron, NeuronParams) or neuron.kind != "if" or neuron.leak_shift or neuron.floor is not None:
        raise SnnCosimError(f"Spike-Norm balances non-leaky IF neurons; pass neuron=NeuronParams('if', 'subtract') "
                            f"or NeuronParams('if', 'zero'), not {neuron!r}")
    if calibration_images is None:
        raise DataError("Spike-Norm needs calibration images (Sengupta 2019: 256 training images)")
    images = calibration_to_unit(calibration_images)
    if images.ndim < 2 or images.shape[0] == 0:
        raise DataError(f"calibration images must be a non-empty batch [N, ...], got shape {tuple(images.shape)}")
    if input_shape is None:
        input_shape = guess_input_shape(model, images)
    ops = import_network(model, input_shape)
    n_inputs = int(np.prod(network_input_shape(ops)))
    if images[0].numel() != n_inputs:
        raise DataError(f"calibration images of shape {tuple(images.shape)} do not match the network input "
                        f"{tuple(network_input_shape(ops))}")
    rate_ops = scale_biases_for_rate(ops, max_rate)  # checks max_rate; the per-step bias is b·max_rate
    spikes = rate_encode(_pixel_codes(images.reshape(images.shape[0], -1)), int(steps), max_rate=max_rate,
                         seed=seed)
    thresholds, rates = spike_norm_thresholds(rate_ops, spikes, reset=neuron.reset, chunk=chunk)
    lambdas = list(np.cumprod(thresholds).astype(float))
    details = {"thresholds": thresholds, "steps": int(steps), "seed": int(seed), "spike_rates": rates}
    normalization = Normalization(apply_lambdas(rate_ops, lambdas), lambdas, "spike-norm", details=details)
    record = {"source": "golden.conversion.spikenorm",
              "spike_norm": {"thresholds": [float(t) for t in thresholds], "steps": int(steps), "seed": int(seed),
                             "calibration_images": int(images.shape[0]), "reset": neuron.reset,
                             "spike_rates": rates},
              "conversion": {"max_rate": float(max_rate), "neuron": {
                  "kind": neuron.kind, "reset": neuron.reset, "leak_shift": neuron.leak_shift, "floor": neuron.floor},
                  "calibration_images": int(images.shape[0]), "input_shape": list(network_input_shape(ops))}}
    integer = quantize(normalization, weight_bits=weight_bits, membrane_bits=membrane_bits, neuron=neuron,
                       input_coding="rate", metadata=record)
    return SpikeNormResult(integer=integer, float_network=build_float_network(normalization, integer),
                           thresholds=thresholds, lambdas=lambdas, normalization=normalization, ann_ops=ops,
                           spike_rates=rates)
