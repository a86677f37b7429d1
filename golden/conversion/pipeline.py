"""One conversion pipeline: a trained ReLU ANN and calibration images in, the integer network and the encoder of its
input out, whichever route the recipe and the model call for. The command line (``snncosim convert``, ``run``) and
scripts use this; the routes stay callable on their own:

=================  =========================================================================================
route              when
=================  =========================================================================================
``rate``           rate coding, data/model/percentile normalisation (:func:`golden.conversion.convert.convert`)
``spikenorm``      rate coding, Sengupta 2019 Spike-Norm (:func:`golden.conversion.spikenorm.spike_norm_convert`)
``residual``       rate coding of a model with residual additions (:func:`golden.conversion.residual.convert_residual`)
``weighted``       Kim 2018 weighted spikes (``convert(input_coding="weighted")``; residual models through
                   ``convert_residual(input_coding="weighted")``)
``fs``             Stöckl & Maass 2021 FS neurons (:func:`golden.conversion.fs_convert.fs_convert`, residual models
                   :func:`~golden.conversion.fs_convert.fs_convert_residual`)
=================  =========================================================================================
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from golden.conversion import DEFAULT_NEURON
from golden.conversion.ann_import import import_residual_network
from golden.conversion.convert import calibration_to_unit, convert, first_weighted_module, guess_input_shape
from golden.conversion.fs_convert import fs_convert, fs_convert_residual
from golden.conversion.normalize import DEFAULT_PERCENTILE
from golden.conversion.residual import convert_residual
from golden.conversion.spikenorm import spike_norm_convert
from golden.core.errors import SnnCosimError
from golden.core.network import IntegerNetwork, NeuronParams
from golden.simulation.inputs import encode_inputs

__all__ = ["CODINGS", "NORMS", "Recipe", "Converted", "convert_model", "has_residual_additions"]

CODINGS = ("rate", "weighted", "fs")
NORMS = ("data", "model", "percentile", "spikenorm")


@dataclass(frozen=True)
class Recipe:
    """How to convert: ``coding`` (rate | weighted | fs), ``norm`` (data | model | percentile | spikenorm; FS fits
    its own per-layer scale and takes "data" only), the ``neuron`` of rate-coded layers, widths, Kim's ``phases``
    K and ``skip_periods`` S (weighted; FS: K, default 8), Spike-Norm's calibration length and image count, and the
    rate encoder's ``max_rate`` (the conversion rescales biases by it)."""

    coding: str = "rate"
    norm: str = "data"
    neuron: NeuronParams = DEFAULT_NEURON
    percentile: float = DEFAULT_PERCENTILE
    weight_bits: int = 8
    membrane_bits: int = 24
    max_rate: float = 1.0
    phases: int | None = None
    skip_periods: int = 0
    spikenorm_steps: int = 100
    spikenorm_images: int | None = None  # None: every calibration image
    input_shape: tuple[int, ...] | None = None  # None: guessed from the model and the images
    input_scale: float = 1 / 255  # the float value of data code 1 (golden.data.dataset.Dataset.scale)

    def check(self) -> None:
        if self.coding not in CODINGS:
            raise SnnCosimError(f"coding {self.coding!r} is not one of {', '.join(CODINGS)}")
        if self.norm not in NORMS:
            raise SnnCosimError(f"normalisation {self.norm!r} is not one of {', '.join(NORMS)}")
        if self.coding == "fs" and self.norm != "data":
            raise SnnCosimError(f"FS conversion fits each layer's scale to its activations (a percentile of the "
                                f"calibration set); normalisation {self.norm!r} does not apply to it")
        if self.coding != "rate" and self.norm == "spikenorm":
            raise SnnCosimError("Spike-Norm (Sengupta 2019) is a rate-coding method; use data, model or percentile "
                                f"normalisation with {self.coding} coding")
        if self.coding != "rate" and self.neuron != DEFAULT_NEURON:
            raise SnnCosimError(f"{self.coding} coding fixes its neurons; the neuron {self.neuron} applies to rate "
                                f"coding only")
        if self.coding == "rate" and self.phases is not None:
            raise SnnCosimError("phases (K) belong to weighted or FS coding, not rate coding")
        if not (math.isfinite(self.input_scale) and self.input_scale > 0):
            raise SnnCosimError(f"the input scale must be a positive number, got {self.input_scale}")


@dataclass
class Converted:
    """The result of :func:`convert_model`: the validated ``integer`` network, the ``route`` taken, the route's own
    result object (``details``: lambdas, scales, the float network…) and :meth:`encode` for its input."""

    integer: IntegerNetwork
    route: str
    recipe: Recipe
    details: object

    @property
    def steps(self) -> int | None:
        """The steps one image takes when the coding fixes them (FS: L·K), else None (the caller's T)."""
        return self.details.latency if self.recipe.coding == "fs" else None

    def encode(self, pixels, steps: int | None = None, *, seed: int = 0, first_index: int = 0) -> torch.Tensor:
        """Input spikes ``bool [T, B, n_0]`` (time-major) of 8-bit codes ``[B, ...]``: Bernoulli rate coding
        (``seed``, ``first_index``: image ``first_index + b`` draws the same spikes in any batch), Kim's weighted
        spikes of the upper K bits, or the FS code (T = L·K; ``steps`` must be None or L·K)
        (:func:`golden.simulation.inputs.encode_inputs`)."""
        if steps is None and self.recipe.coding != "fs":
            raise SnnCosimError(f"{self.recipe.coding} coding needs the number of steps T")
        return encode_inputs(self.integer, torch.as_tensor(pixels), steps, seed=seed, first_index=first_index,
                             max_rate=self.recipe.max_rate)


def has_residual_additions(model: nn.Module, input_shape) -> bool:
    """True when the model adds a shortcut to a layer's output (Sengupta 2019 §6 residual blocks)."""
    if input_shape is None:  # a dense-first model: guess_input_shape needs no help, and it has no conv blocks
        return False
    return bool(import_residual_network(model, input_shape)[1])


def _fold_input_range(model: nn.Module, value_max: float) -> nn.Module:
    """A copy of ``model`` whose first layer takes inputs in [0, 1] instead of [0, value_max]: the spikes of a
    code c stand for c/255 of the largest value, so the first weights are scaled by ``value_max`` (exact)."""
    model = copy.deepcopy(model)
    first = first_weighted_module(model)
    if first is None:
        raise SnnCosimError("the model has no Linear or Conv2d layer")
    with torch.no_grad():
        first.weight.mul_(value_max)
    return model


def convert_model(model: nn.Module, calibration_images, recipe: Recipe = Recipe()) -> Converted:
    """Convert ``model`` with ``calibration_images`` (8-bit codes ``[N, ...]``, or floats in [0, 1]) by
    ``recipe``, choosing the route (module docstring). A data scale other than 1/255 (codes worth
    ``input_scale`` each) is folded into the first layer. The network records the input it expects in
    ``metadata["input"]`` (``scale``: the value of code 1, ``bits``: 8)."""
    recipe.check()
    converted = _route(model, calibration_images, recipe)
    converted.integer.metadata["input"] = {"scale": float(recipe.input_scale), "bits": 8}
    return converted


def _route(model: nn.Module, calibration_images, recipe: Recipe) -> Converted:
    value_max = 255 * recipe.input_scale
    if not math.isclose(value_max, 1.0, rel_tol=1e-12):
        model = _fold_input_range(model, value_max)
    shape = recipe.input_shape
    if shape is None and calibration_images is not None:
        shape = guess_input_shape(model, calibration_to_unit(calibration_images))
    residual = has_residual_additions(model, shape)
    if recipe.coding == "fs":
        route = fs_convert_residual if residual else fs_convert
        details = route(model, calibration_images, phases=recipe.phases or 8, weight_bits=recipe.weight_bits,
                        membrane_bits=recipe.membrane_bits, input_shape=shape)
        return Converted(details.integer, "fs", recipe, details)
    weighted = recipe.coding == "weighted"
    coding_args = {"input_coding": "weighted", "phases": recipe.phases or 4,
                   "skip_periods": recipe.skip_periods} if weighted else {}
    if residual:
        if recipe.norm == "percentile" and not weighted:
            raise SnnCosimError("--norm percentile is not available for residual networks with rate coding; use "
                                "data, model or spikenorm")
        if recipe.neuron.kind != "if":
            raise SnnCosimError("residual networks convert to IF neurons (Sengupta 2019); use --neuron if")
        images = calibration_images
        if recipe.norm == "spikenorm" and recipe.spikenorm_images is not None:
            images = calibration_images[:recipe.spikenorm_images]
        details = convert_residual(model, images, input_shape=shape, method=recipe.norm,
                                   weight_bits=recipe.weight_bits, membrane_bits=recipe.membrane_bits,
                                   neuron=None if weighted else recipe.neuron, spikenorm_steps=recipe.spikenorm_steps,
                                   **({"percentile": recipe.percentile} if weighted else {}), **coding_args)
        return Converted(details.integer, "weighted" if weighted else "residual", recipe, details)
    if recipe.norm == "spikenorm":
        if recipe.neuron.kind != "if":
            raise SnnCosimError("--norm spikenorm needs --neuron if (Sengupta 2019 balances non-leaky IF neurons)")
        images = calibration_images if recipe.spikenorm_images is None else calibration_images[:recipe.spikenorm_images]
        details = spike_norm_convert(model, images, steps=recipe.spikenorm_steps, max_rate=recipe.max_rate,
                                     weight_bits=recipe.weight_bits, membrane_bits=recipe.membrane_bits,
                                     neuron=recipe.neuron, input_shape=shape)
        return Converted(details.integer, "spikenorm", recipe, details)
    details = convert(model, calibration_images, method=recipe.norm, percentile=recipe.percentile,
                      weight_bits=recipe.weight_bits, membrane_bits=recipe.membrane_bits,
                      neuron=None if weighted else recipe.neuron, input_shape=shape,
                      max_rate=recipe.max_rate, **coding_args)
    return Converted(details.integer, "weighted" if weighted else "rate", recipe, details)
