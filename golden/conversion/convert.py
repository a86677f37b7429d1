"""ANN → SNN conversion in one call: import (``ann``), normalise (``normalize``), quantise (``quantize``).

    result = convert(model, calibration_images, method="data")                      # rate coding (Diehl 2015)
    result = convert(model, calibration_images, input_coding="weighted", phases=4)  # weighted spikes (Kim 2018)
    result.integer          # validated IntegerNetwork: what golden.simulation.simulate (integer) and the RTL run
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

from golden.conversion import DEFAULT_NEURON
from golden.conversion.ann_import import AffineOp, import_network, network_input_shape
from golden.conversion.normalize import (DEFAULT_PERCENTILE, Method, Normalization, for_weighted_spikes, normalize,
                                         scale_biases_for_rate, weighted_ceiling)
from golden.conversion.quantize import build_layer, check_phases, quantize, weighted_neurons
from golden.core.errors import DataError, SnnCosimError
from golden.core.network import IntegerNetwork, NeuronParams
from golden.data.mnist import to_unit
from golden.simulation.encoding import pixel_codes_to_phases

PIXEL_BITS = 8  # calibration and test images are 8-bit pixel codes (or floats code/255)


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

    @property
    def decision_scale(self) -> int:
        """Divisor that turns the integer network's output values into activation units (the ``scale`` of
        :func:`golden.simulation.early_decision.early_decision`): ``2^K · s_L`` for weighted spikes (the 'acc' membrane is
        in units of 2^-K of the output layer, whose weights are s_L times the float ones), else ``s_L``. The
        float network needs ``scale = 1``."""
        return int(self.scales[-1]) << int(self.integer.phases)

    def input_codes(self, pixels):
        """The integer network's input codes for 8-bit pixel codes: the pixels themselves for rate/direct coding,
        their upper K bits for weighted spikes (:func:`weighted_codes`)."""
        if self.integer.input_coding == "weighted":
            return weighted_codes(pixels, self.integer.phases)
        return pixels


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
                        f"not in [0, 1]; pass uint8 codes 0..255 or divide by 255 (golden.data.mnist.to_unit)")
    return tensor.to(torch.float64)


def weighted_codes(pixels, phases: int, *, pixel_bits: int = PIXEL_BITS):
    """K-bit weighted-spike input codes of pixel codes: the upper K bits (``pixel >> (8 − K)``, Kim 2018:
    "only the upper 4 bits of input pixel values are used"; :func:`golden.simulation.encoding.pixel_codes_to_phases`); for
    K > 8 the pixel with K − 8 zero bits appended. Either way the input value ``code/2^K`` is the pixel's
    upper bits over 2^8, the value that :func:`convert` folds into layer 1."""
    phases, _ = check_phases(phases, 0)
    if phases <= pixel_bits:
        return pixel_codes_to_phases(pixels, phases, pixel_bits=pixel_bits)
    codes = pixel_codes_to_phases(pixels, pixel_bits, pixel_bits=pixel_bits)
    return codes << (phases - pixel_bits)


def _quantise_calibration(images: torch.Tensor, phases: int) -> torch.Tensor:
    """What the ANN sees of weighted-spike inputs: pixels reduced to their upper K bits, as floats in [0, 1]."""
    pixels = torch.round(images * ((1 << PIXEL_BITS) - 1)).to(torch.int64)
    codes = weighted_codes(pixels, phases).to(torch.float64)
    return codes * (2.0 ** (PIXEL_BITS - phases) / ((1 << PIXEL_BITS) - 1))


def first_weighted_module(model: nn.Module) -> nn.Module | None:
    """The first Linear or Conv2d module of ``model`` (None if it has none)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            return module
    return None


def guess_input_shape(model: nn.Module, images: torch.Tensor) -> tuple[int, ...] | None:
    """A conv-first network takes (c, h, w): taken from the images, a channel axis added to [N, h, w] batches."""
    first = first_weighted_module(model)
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
    (floor / θ_l), so both networks clip at the same point relative to their thresholds. For ``"weighted"``
    coding the layers are Kim's Eq. 8-10 in float: the same 'ws'/'acc' neurons, ``phases`` and ``skip_periods``,
    the weights W' and Kim's bias ``β = b'/(1 − 2^-K)``.
    """
    input_max = (1 << integer.input_bits) - 1
    weighted = integer.input_coding == "weighted"
    bias_factor = 1.0 / weighted_ceiling(integer.phases) if weighted else 1.0
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
            layers.append(build_layer(op, op.weight / divisor, op.bias.astype(np.float64) * bias_factor, ones,
                                      neuron))
    metadata = dict(integer.metadata)
    metadata["float_network"] = True
    return IntegerNetwork(input_shape=integer.input_shape, layers=layers, weight_bits=integer.weight_bits,
                          membrane_bits=integer.membrane_bits, input_coding=integer.input_coding,
                          input_bits=integer.input_bits, metadata=metadata, phases=integer.phases,
                          skip_periods=integer.skip_periods)


def convert(model: nn.Module, calibration_images=None, *, method: Method = "data",
            percentile: float = DEFAULT_PERCENTILE, weight_bits: int = 8, membrane_bits: int = 24,
            neuron: NeuronParams | None = None, input_coding: str = "rate", input_shape: Sequence[int] | None = None,
            max_rate: float = 1.0, scale: int | Sequence[int] | None = None, phases: int | None = None,
            skip_periods: int = 0, batch_size: int = 500) -> ConversionResult:
    """Convert a trained ReLU ANN into an integer SNN (Diehl 2015 recipe; SPEC §1).

    ``method``: "data" (Diehl Alg. 2, default), "model" (Alg. 1, needs no images) or "percentile" (Rueckauer
    2017, ``percentile`` of the positive activations). ``neuron`` (kind, reset, leak_shift, floor; default
    :data:`golden.conversion.DEFAULT_NEURON`, IF with reset by subtraction, as the command line) applies to every
    layer. ``input_coding``: "rate" (Bernoulli spikes, p = max_rate·code/255), "direct" (codes fed to layer 1) or
    "weighted" (Kim 2018 weighted spikes). ``max_rate`` only rescales biases (every rate scales by it); it must be
    the max_rate the simulation uses. ``input_shape`` is needed only for conv networks whose images do not show the
    channel axis.

    Weighted spikes (``input_coding="weighted"``, ``phases`` = K in 1..16, ``skip_periods`` = S ≥ 0; Kim 2018
    §4.1-4.2): activations normalised into [0, 1 − 2^-K]; inputs are the upper K bits of the pixels
    (:meth:`ConversionResult.input_codes`), whose value code/2^K is folded into layer 1 exactly (factor 256/255;
    the calibration activations are measured on those quantised inputs); biases ``β = b/(1 − 2^-K)``; hidden
    layers 'ws' (reset subtract), the output layer 'acc'. The membrane needs K−1 bits of headroom: a
    ``membrane_bits`` too small is a :class:`WidthError` naming the width that works.
    """
    weighted = input_coding == "weighted"
    if weighted:
        if phases is None:
            raise SnnCosimError("input_coding='weighted' needs phases=K, the bits per period (Kim 2018: 4 for "
                                "MNIST, 8 for CIFAR)")
        phases, skip_periods = check_phases(phases, skip_periods)
        if max_rate != 1.0:
            raise SnnCosimError("max_rate applies to rate coding only; leave it at 1.0 with input_coding='weighted'")
        if neuron is not None and neuron != NeuronParams("ws", "subtract"):
            raise SnnCosimError(f"weighted spikes fix the neurons ('ws' reset subtract, the output 'acc'); leave "
                                f"neuron unset instead of {neuron}")
    elif phases is not None or skip_periods:
        raise SnnCosimError(f"phases/skip_periods belong to input_coding='weighted', not {input_coding!r}; "
                            f"leave them unset")
    if input_coding == "direct" and max_rate != 1.0:
        raise SnnCosimError("max_rate applies to rate coding only; leave it at 1.0 with input_coding='direct'")
    images = calibration_to_unit(calibration_images) if calibration_images is not None else None
    if images is not None and images.ndim < 2:
        raise DataError(f"calibration images must be a batch [N, ...], got shape {tuple(images.shape)}")
    if input_shape is None and images is not None:
        input_shape = guess_input_shape(model, images)
    ops = import_network(model, input_shape)
    if weighted and images is not None:
        images = _quantise_calibration(images, phases)
    normalization = normalize(ops, images, method=method, percentile=percentile, batch_size=batch_size)
    if weighted:
        input_lambda = (1 << PIXEL_BITS) / ((1 << PIXEL_BITS) - 1)  # ANN input = 256/255 · code/2^K
        normalization = for_weighted_spikes(normalization, phases, input_lambda)
        neurons = weighted_neurons(len(ops))
    else:
        neuron = DEFAULT_NEURON if neuron is None else neuron
        neurons = [neuron]
    if max_rate != 1.0:
        normalization = replace(normalization, ops=scale_biases_for_rate(normalization.ops, max_rate))
    conversion = {"max_rate": float(max_rate), "neuron": {
        "kind": neurons[0].kind, "reset": neurons[0].reset, "leak_shift": neurons[0].leak_shift,
        "floor": neurons[0].floor},
        "calibration_images": int(images.shape[0]) if images is not None else 0,
        "input_shape": list(network_input_shape(ops))}
    if weighted:
        conversion.update(output_neuron="acc", phases=phases, skip_periods=skip_periods,
                          input_codes=f"upper {phases} bits of 8-bit pixels" if phases <= PIXEL_BITS else
                          f"8-bit pixels << {phases - PIXEL_BITS}")
    integer = quantize(normalization, weight_bits=weight_bits, membrane_bits=membrane_bits,
                       neuron=None if weighted else neuron, input_coding=input_coding, scale=scale,
                       metadata={"conversion": conversion}, phases=phases if weighted else 0,
                       skip_periods=skip_periods if weighted else 0)
    return ConversionResult(integer=integer, float_network=build_float_network(normalization, integer),
                            lambdas=list(normalization.lambdas), normalization=normalization, ann_ops=ops)
