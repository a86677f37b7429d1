"""Weight normalisation (Diehl et al. 2015, Rueckauer et al. 2017): scale each layer so that its threshold is 1.

Every method here produces per-layer factors λ_1..λ_L (λ_0 = 1 for the input) and the normalised layers

    W'_l = W_l · λ_{l−1} / λ_l,      b'_l = b_l / λ_l,      threshold 1,

so that, because ReLU is positively homogeneous, the normalised ANN's activations are exactly ``a_l / λ_l``
(notes/000 §2.7, derived). ``λ_{l−1}/λ_l`` is the *multiplier applied to the weights*, the figure Diehl's Table in
§IV-B reports (e.g. FCN data-based 0.37, 1.25, 0.8).

* **model-based** — Diehl Alg. 1: ``M_l = max_i Σ_j max(0, W_ij)``, ``W_l ← W_l / M_l``, every layer on its own,
  **not** the output layer (Diehl §IV-B). In λ form: ``λ_l = λ_{l−1} · M_l`` and ``M_L = 1``. With biases (only
  from folded batch norm; Diehl's nets have none) the positive bias joins the sum,
  ``M_l = max_i (Σ_j max(0, W_ij) + max(0, b_i)/λ_{l−1})``, so the guarantee "per-step positive input ≤ 1"
  still holds for every hidden neuron.
* **data-based** — Diehl Alg. 2: ``λ_l = max(max_ij W_ij, max a_l)`` where ``a_l`` are the layer's ReLU
  activations on the calibration images (the original, un-normalised ANN; for the output layer its positive
  outputs).
* **percentile** — Rueckauer et al. 2017: ``λ_l`` = the p-th percentile (default 99.9, linear interpolation as
  ``numpy.percentile``) of the layer's *strictly positive* activations on the calibration images. The max-weight
  term of Alg. 2 is **not** included: its purpose (no single spike worth more than a threshold) is defeated by a
  percentile anyway, and with reset by subtraction the excess is carried over rather than lost.

**Weighted spikes** (Kim 2018 §4.1, :func:`for_weighted_spikes`): a period of K phases carries at most
``Σ_k 2^-k = 1 − 2^-K``, so every λ is divided by that ceiling, ``λ'_l = λ_l / (1 − 2^-K)``, and the normalised
activations lie in [0, 1 − 2^-K]. The input value of a K-bit code is ``u = code/2^K`` while the ANN saw
``x = (code·2^(8−K))/255 = u · 256/255`` (the upper K bits of the pixel), so layer 1's weights carry the exact
input factor ``λ_0 = 256/255`` (``2^p/(2^p − 1)`` for p-bit pixels).

Average-pool layers are spiking layers too (Diehl §II-B: pool units are IF neurons with weights 1/k²), so each
method gives them their own λ; their weight stays a single number ``(1/k²)·λ_{l−1}/λ_l``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch

from golden.conversion.ann_import import AffineOp, apply_op
from golden.core.errors import DataError, SnnCosimError

Method = Literal["model", "data", "percentile"]
METHODS = ("model", "data", "percentile")
DEFAULT_PERCENTILE = 99.9
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class Normalization:
    """The normalised layers (threshold 1) and the factors that made them."""

    ops: list[AffineOp]
    lambdas: list[float]  # λ_1..λ_L
    method: str
    percentile: float | None = None
    max_activations: list[float] | None = None  # max a_l on the calibration data (data/percentile methods)
    percentile_activations: list[float] | None = None  # p-th percentile of positive a_l (percentile method)
    details: dict = field(default_factory=dict)
    input_lambda: float = 1.0  # λ_0: the ANN input is λ_0 times the SNN input value (256/255 for weighted spikes)

    @property
    def weight_factors(self) -> list[float]:
        """Multipliers applied to each layer's weights, ``λ_{l−1}/λ_l`` (Diehl §IV-B reports these)."""
        previous = [float(self.input_lambda)] + list(self.lambdas[:-1])
        return [p / lam for p, lam in zip(previous, self.lambdas)]

    def summary(self) -> dict:
        """Plain-Python record for ``IntegerNetwork.metadata``."""
        record = {"method": self.method, "lambdas": list(map(float, self.lambdas)),
                  "weight_factors": list(map(float, self.weight_factors))}
        if self.percentile is not None:
            record["percentile"] = float(self.percentile)
        if self.max_activations is not None:
            record["max_activations"] = list(map(float, self.max_activations))
        if self.percentile_activations is not None:
            record["percentile_activations"] = list(map(float, self.percentile_activations))
        if self.input_lambda != 1.0:
            record["input_lambda"] = float(self.input_lambda)
        if "weighted" in self.details:
            weighted = self.details["weighted"]
            record["weighted"] = {"phases": int(weighted["phases"]), "ceiling": float(weighted["ceiling"]),
                                  "lambdas_before": list(map(float, weighted["lambdas_before"]))}
        return record


def apply_lambdas(ops: Sequence[AffineOp], lambdas: Sequence[float]) -> list[AffineOp]:
    """``W'_l = W_l·λ_{l−1}/λ_l``, ``b'_l = b_l/λ_l`` (λ_0 = 1): the ReLU network's activations become
    a_l/λ_l."""
    if len(lambdas) != len(ops):
        raise SnnCosimError(f"got {len(lambdas)} normalisation factors for {len(ops)} layers; give one per layer")
    if min(lambdas) <= 0:
        raise SnnCosimError(f"normalisation factors must be positive, got {list(lambdas)}")
    previous = [1.0] + [float(lam) for lam in lambdas[:-1]]
    return [op.scaled(prev / float(lam), 1.0 / float(lam)) for op, prev, lam in zip(ops, previous, lambdas)]


# ------------------------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class ActivationStats:
    """Per-layer statistics of the ANN's activations on calibration images."""

    maximum: list[float]
    percentile: list[float] | None


def _as_input_batch(images: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    images = torch.as_tensor(images)
    if not torch.is_floating_point(images):
        raise DataError(f"calibration images must be floats in [0, 1] here, got {images.dtype}; convert uint8 codes "
                        f"with golden.data.mnist.to_unit")
    n_values = int(np.prod(in_shape))
    if images.ndim < 1 or images.shape[0] == 0 or images[0].numel() != n_values:
        raise DataError(f"calibration images of shape {tuple(images.shape)} do not match the network input "
                        f"{tuple(in_shape)}; pass a batch [N, {', '.join(map(str, in_shape))}]")
    return images.reshape(images.shape[0], *in_shape)


def activation_stats(ops: Sequence[AffineOp], images: torch.Tensor, *, percentile: float | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> ActivationStats:
    """Run ``images`` (floats in [0, 1]) through the float ops in batches (float64) and collect per layer the
    maximum activation and, if ``percentile`` is given, that percentile of the strictly positive activations.

    The percentile is exact: the positive activations of every layer are kept (as float32) until the end, so the
    calibration set should be a few thousand images for large conv nets (Rueckauer 2017 used a subset as well).
    """
    x_all = _as_input_batch(images, ops[0].in_shape)
    maxima = np.full(len(ops), -np.inf)
    positives: list[list[np.ndarray]] = [[] for _ in ops]
    with torch.no_grad():
        for start in range(0, x_all.shape[0], batch_size):
            x = x_all[start:start + batch_size].to(torch.float64)
            for index, op in enumerate(ops):
                x = apply_op(op, x)
                maxima[index] = max(maxima[index], float(x.max()))
                if percentile is not None:
                    flat = x.reshape(-1)
                    positives[index].append(flat[flat > 0].to(torch.float32).numpy())
    quantiles = None
    if percentile is not None:
        quantiles = []
        for op, chunks in zip(ops, positives):
            values = np.concatenate(chunks) if chunks else np.empty(0, np.float32)
            if values.size == 0:
                raise DataError(f"layer '{op.name}' is never active on the calibration images, so no percentile "
                                f"exists; pass more or more typical calibration images")
            quantiles.append(float(np.percentile(values.astype(np.float64), percentile)))
    return ActivationStats([float(m) for m in maxima], quantiles)


# ------------------------------------------------------------------------------------------------ methods
def model_based(ops: Sequence[AffineOp]) -> Normalization:
    """Diehl 2015 Alg. 1 (model-based): hidden layers divided by their largest per-step positive input M_l."""
    lambdas: list[float] = []
    previous = 1.0
    max_inputs: list[float] = []
    for index, op in enumerate(ops):
        positive_bias = np.clip(op.bias, 0.0, None) / previous
        if op.kind == "avgpool2d":
            per_neuron = np.full(op.n_channels_out, op.max_positive_input())
        else:
            per_neuron = np.clip(op.weight, 0.0, None).reshape(op.weight.shape[0], -1).sum(axis=1)
        m_l = float((per_neuron + positive_bias).max(initial=0.0))
        max_inputs.append(m_l)
        is_output = index == len(ops) - 1
        if is_output:
            m_l = 1.0  # Alg. 1 is not applied to the output layer (Diehl §IV-B)
        elif m_l <= 0:
            raise SnnCosimError(f"layer '{op.name}' has no positive weight, so it can never fire; model-based "
                                f"normalisation is undefined (check the trained weights)")
        previous = previous * m_l
        lambdas.append(previous)
    return Normalization(apply_lambdas(ops, lambdas), lambdas, "model",
                         details={"max_positive_inputs": max_inputs})


def data_based(ops: Sequence[AffineOp], images: torch.Tensor, *,
               batch_size: int = DEFAULT_BATCH_SIZE) -> Normalization:
    """Diehl 2015 Alg. 2 (data-based): ``λ_l = max(max_ij W_ij, max a_l)`` over the calibration images."""
    stats = activation_stats(ops, images, batch_size=batch_size)
    lambdas = []
    for op, max_act in zip(ops, stats.maximum):
        lam = max(op.max_weight(), max_act)
        if lam <= 0:
            raise DataError(f"layer '{op.name}' has no positive weight and no positive activation on the "
                            f"calibration images; data-based normalisation is undefined")
        lambdas.append(lam)
    return Normalization(apply_lambdas(ops, lambdas), lambdas, "data", max_activations=stats.maximum)


def percentile_based(ops: Sequence[AffineOp], images: torch.Tensor, *, percentile: float = DEFAULT_PERCENTILE,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> Normalization:
    """Rueckauer 2017: ``λ_l`` = p-th percentile of the layer's positive activations (no max-weight term)."""
    if not 0 < percentile <= 100:
        raise SnnCosimError(f"percentile={percentile} must lie in (0, 100]; Rueckauer 2017 uses 99.9")
    stats = activation_stats(ops, images, percentile=percentile, batch_size=batch_size)
    return Normalization(apply_lambdas(ops, stats.percentile), list(stats.percentile), "percentile",
                         percentile=percentile, max_activations=stats.maximum,
                         percentile_activations=stats.percentile)


def normalize(ops: Sequence[AffineOp], images: torch.Tensor | None = None, *, method: Method = "data",
              percentile: float = DEFAULT_PERCENTILE, batch_size: int = DEFAULT_BATCH_SIZE) -> Normalization:
    """Dispatch to :func:`model_based`, :func:`data_based` or :func:`percentile_based`.

    ``images`` are calibration inputs as floats in [0, 1], shape ``[N, *input_shape]`` (not needed for "model").
    """
    if method == "model":
        return model_based(ops)
    if method not in METHODS:
        raise SnnCosimError(f"normalisation method {method!r} is not one of {', '.join(map(repr, METHODS))}")
    if images is None:
        raise DataError(f"method={method!r} needs calibration images; pass some training images or use "
                        f"method='model'")
    if method == "data":
        return data_based(ops, images, batch_size=batch_size)
    return percentile_based(ops, images, percentile=percentile, batch_size=batch_size)


def scale_biases_for_rate(ops: Sequence[AffineOp], max_rate: float) -> list[AffineOp]:
    """Biases for inputs coded at ``max_rate`` spikes per step: the network then sees ``max_rate·x`` instead of
    ``x``, so every activation scales by ``max_rate`` (zero-bias ReLU is homogeneous) and every bias must too."""
    if not 0 < max_rate <= 1:
        raise SnnCosimError(f"max_rate={max_rate} must lie in (0, 1] (spike probability per step at code 255)")
    return [op.scaled(1.0, max_rate) for op in ops]


def weighted_ceiling(phases: int) -> float:
    """Largest value one period of K weighted spikes carries, ``Σ_{k=1..K} 2^-k = 1 − 2^-K`` (Kim 2018 §4.1)."""
    return 1.0 - 2.0 ** -int(phases)


def for_weighted_spikes(normalization: Normalization, phases: int, input_scale: float) -> Normalization:
    """Kim 2018 §4.1: the same normalisation with every activation mapped into [0, 1 − 2^-K].

    ``λ'_l = λ_l / (1 − 2^-K)`` for every layer and the input factor ``λ_0 = input_scale`` (the ANN input is
    ``input_scale · u`` for the SNN input value u = code/2^K). In terms of the normalised ops: layer 1's weights
    are multiplied by ``(1 − 2^-K)·input_scale``, every bias by ``1 − 2^-K``; deeper weights keep their ratio
    λ_{l−1}/λ_l. The result still computes the ANN's activations exactly: ``a'_l = a_l / λ'_l`` for input u.
    Kim's bias ``β = b'/(1 − 2^-K)`` is applied at quantisation (``golden.conversion.quantize``)."""
    if isinstance(phases, bool) or not isinstance(phases, (int, np.integer)) or not 1 <= phases <= 16:
        raise SnnCosimError(f"phases K must be an integer in 1..16, got {phases!r}")
    if not input_scale > 0:
        raise SnnCosimError(f"input_scale must be positive, got {input_scale!r}")
    ceiling = weighted_ceiling(phases)
    ops = [op.scaled(ceiling * input_scale if index == 0 else 1.0, ceiling)
           for index, op in enumerate(normalization.ops)]
    details = dict(normalization.details)
    details.update(weighted={"phases": int(phases), "ceiling": ceiling, "input_scale": float(input_scale),
                             "lambdas_before": list(map(float, normalization.lambdas))})
    return Normalization(ops, [lam / ceiling for lam in normalization.lambdas], normalization.method,
                         percentile=normalization.percentile, max_activations=normalization.max_activations,
                         percentile_activations=normalization.percentile_activations, details=details,
                         input_lambda=float(input_scale) * float(normalization.input_lambda))
