"""ANN → SNN conversion in one call: import (``ann``), normalise (``normalize``), quantise (``quantize``).

    result = convert(model, calibration_images, method="data")
    result.integer          # validated IntegerNetwork: what golden.simulate (integer) and the RTL run
    result.float_network    # same structure in float64, thresholds 1.0: for accuracy studies only
    result.lambdas          # λ_1..λ_L of the normalisation (Diehl 2015 Alg. 1/2, Rueckauer 2017)

Calibration images are the ANN's training inputs used to measure activations (Diehl Alg. 2: "propagate the training
set"). They may be ``uint8`` pixel codes 0..255 (divided by 255) or floats already in [0, 1]; anything else is a
:class:`DataError`. Their shape is ``[N, *input_shape]`` or anything with the same number of values per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from .ann import AffineOp, import_network, network_input_shape
from .data import to_unit
from .errors import DataError, SnnCosimError
from .ir import IntegerNetwork, NeuronParams
from .normalize import DEFAULT_PERCENTILE, Method, Normalization, normalize, scale_biases_for_rate
from .quantize import build_layer, quantize


@dataclass(frozen=True)
class ConversionResult:
    """What :func:`convert` produces."""

    integer: IntegerNetwork  # validated; simulate it, save it, build hardware from it
    float_network: IntegerNetwork  # float64 arrays, thresholds 1.0; never validated or saved
    lambdas: list[float]  # λ_1..λ_L
    normalization: Normalization  # the normalised float ops and the statistics behind λ
    ann_ops: list[AffineOp]  # the imported ANN (BN folded, dropout dropped)

    @property
    def scales(self) -> list[int]:
        """Integer scale s_l of every layer (θ_l = s_l, times 255 for a direct-coded first layer)."""
        return list(self.integer.metadata["quantization"]["scales"])


def calibration_to_unit(images) -> torch.Tensor:
    """Calibration images as ``float64`` in [0, 1]: ``uint8`` codes are divided by 255, floats must lie in [0, 1]."""
    tensor = torch.as_tensor(images)
    if tensor.dtype == torch.uint8:
        return to_unit(tensor).to(torch.float64)
    if not torch.is_floating_point(tensor):
        raise DataError(f"calibration images have dtype {tensor.dtype}; pass uint8 pixel codes 0..255 or floats in "
                        f"[0, 1]")
    if tensor.numel() and (float(tensor.min()) < 0 or float(tensor.max()) > 1):
        raise DataError(f"calibration images are floats in [{float(tensor.min()):.3g}, {float(tensor.max()):.3g}], "
                        f"not in [0, 1]; pass uint8 codes 0..255 or divide by 255 (golden.data.to_unit)")
    return tensor.to(torch.float64)


def _first_weighted_module(model: nn.Module) -> nn.Module | None:
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            return module
    return None


def _guess_input_shape(model: nn.Module, images: torch.Tensor) -> tuple[int, ...] | None:
    """A conv-first network takes (c, h, w): taken from the images, a channel axis added to [N, h, w] batches."""
    first = _first_weighted_module(model)
    if not isinstance(first, nn.Conv2d):
        return None  # a Linear fixes its input size itself
    sample = tuple(images.shape[1:])
    if len(sample) == 2 and first.in_channels == 1:
        return (1, *sample)
    if len(sample) == 3:
        return sample
    raise DataError(f"cannot tell the input shape of the conv network from images of shape {tuple(images.shape)}; "
                    f"pass input_shape=(channels, height, width)")


def build_float_network(normalization: Normalization, integer: IntegerNetwork) -> IntegerNetwork:
    """The normalised float network in IR form (float64 arrays, threshold 1.0), never validated or saved.

    It consumes the same inputs as ``integer``: for ``"direct"`` coding layer 1 receives codes 0..255, so its
    weights are W'/255 (threshold stays 1). A membrane ``floor`` is converted to threshold units per layer
    (floor / θ_l), so both networks clip at the same point relative to their thresholds.
    """
    input_max = (1 << integer.input_bits) - 1
    layers = []
    for index, (op, int_layer) in enumerate(zip(normalization.ops, integer.layers)):
        divisor = float(input_max) if (index == 0 and integer.input_coding == "direct") else 1.0
        neuron = int_layer.neuron
        if neuron.floor is not None:
            neuron = replace(neuron, floor=neuron.floor / float(int_layer.threshold[0]))
        ones = np.ones(op.n_channels_out, dtype=np.float64)
        if op.kind == "avgpool2d":
            layers.append(build_layer(op, float(op.weight) / divisor, None, ones, neuron))
        else:
            layers.append(build_layer(op, op.weight / divisor, op.bias.astype(np.float64), ones, neuron))
    metadata = dict(integer.metadata)
    metadata["float_network"] = True
    return IntegerNetwork(input_shape=integer.input_shape, layers=layers, weight_bits=integer.weight_bits,
                          membrane_bits=integer.membrane_bits, input_coding=integer.input_coding,
                          input_bits=integer.input_bits, metadata=metadata)


def convert(model: nn.Module, calibration_images=None, *, method: Method = "data",
            percentile: float = DEFAULT_PERCENTILE, weight_bits: int = 8, membrane_bits: int = 24,
            neuron: NeuronParams = NeuronParams(), input_coding: str = "rate", input_shape: Sequence[int] | None = None,
            max_rate: float = 1.0, scale: int | Sequence[int] | None = None,
            batch_size: int = 500) -> ConversionResult:
    """Convert a trained ReLU ANN into an integer SNN (Diehl 2015 recipe; SPEC §1).

    ``method``: "data" (Diehl Alg. 2, default), "model" (Alg. 1, needs no images) or "percentile" (Rueckauer
    2017, ``percentile`` of the positive activations). ``neuron`` (kind, reset, leak_shift, floor) applies to every
    layer. ``input_coding``: "rate" (Bernoulli spikes, p = max_rate·code/255) or "direct" (codes fed to layer 1).
    ``max_rate`` only rescales biases (every rate scales by it); it must be the max_rate the simulation uses.
    ``input_shape`` is needed only for conv networks whose images do not show the channel axis.
    """
    if input_coding == "direct" and max_rate != 1.0:
        raise SnnCosimError("max_rate applies to rate coding only; leave it at 1.0 with input_coding='direct'")
    images = calibration_to_unit(calibration_images) if calibration_images is not None else None
    if images is not None and images.ndim < 2:
        raise DataError(f"calibration images must be a batch [N, ...], got shape {tuple(images.shape)}")
    if input_shape is None and images is not None:
        input_shape = _guess_input_shape(model, images)
    ops = import_network(model, input_shape)
    normalization = normalize(ops, images, method=method, percentile=percentile, batch_size=batch_size)
    if max_rate != 1.0:
        normalization = replace(normalization, ops=scale_biases_for_rate(normalization.ops, max_rate))
    extra = {"conversion": {"max_rate": float(max_rate), "neuron": {
        "kind": neuron.kind, "reset": neuron.reset, "leak_shift": neuron.leak_shift, "floor": neuron.floor},
        "calibration_images": int(images.shape[0]) if images is not None else 0,
        "input_shape": list(network_input_shape(ops))}}
    integer = quantize(normalization, weight_bits=weight_bits, membrane_bits=membrane_bits, neuron=neuron,
                       input_coding=input_coding, scale=scale, metadata=extra)
    return ConversionResult(integer=integer, float_network=build_float_network(normalization, integer),
                            lambdas=list(normalization.lambdas), normalization=normalization, ann_ops=ops)
