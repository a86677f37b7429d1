"""Conversion of residual networks (Sengupta et al. 2019 §6) into integer SNNs with skip connections.

``relu(main + shortcut)`` blocks (``golden.conversion.ann_import.import_residual_network``) become junction layers with
:class:`~golden.core.network.SkipConnection` s. Sengupta's three rules, enforced here (``UnsupportedLayerError`` otherwise):

1. **ReLU at each junction** — checked by the importer (an addition must be followed by a ReLU).
2. **Equal thresholds of the fan-in layers** of a junction: layer l−1 (the non-identity path), the shortcut's
   source k and the junction l share one normalisation factor λ (chained blocks form one group, so every residual
   layer shares it: Sengupta's "unity threshold for the residual layers" in threshold-balanced units).
3. **Plain input layers**: no shortcut may start at the network input (layer 1 is plain); the first shortcut source
   is balanced by the method like any plain layer.

In λ form (docs/conversion.md) the normalised junction has ``W'_l = W_l·λ_{l−1}/λ_l``, ``S'_l = S_l·λ_k/λ_l``
(an identity shortcut: ``S = I``, ``S' = 1`` inside a group) and ``b'_l = b_l/λ_l``; the integer scale of a layer
covers both weight arrays: ``s_l = floor((2^(B−1) − 1)/max(|W'_l|, |S'_l|))``, θ_l = s_l.

Methods: ``"data"`` — λ_l = max ReLU activation of the ANN on the calibration images (Diehl Alg. 2 without the
max-weight term), a group takes the max over its members; ``"percentile"`` — the same with λ_l = the 99.9th
percentile of the layer's positive activations (Rueckauer 2017; ``percentile=``); ``"model"`` — Diehl Alg. 1
with the shortcut's positive weights added to the fan-in; ``"spikenorm"`` — Sengupta Alg. 1 with the SNN in the loop: layer by layer, λ_l = the
largest single-step input ``W_l(λ_{l−1}·X_{l−1}[t]) + S_l(λ_k·X_k[t]) + b_l`` over the calibration spike trains; a
group's later members take the λ of its first member (Sengupta: Spike-Norm for the plain layers, unity thresholds
for the residual layers after them).

Weighted spikes (Kim 2018, ``input_coding="weighted"``, ``phases`` = K, ``skip_periods`` = S; data/percentile/model):
the same rules with the plain path's weighted-spike normalisation (``golden.conversion.convert.convert``): the calibration
activations are measured on the images reduced to their upper K bits, every λ is divided by the period ceiling
``1 − 2^-K`` (so the activations lie in [0, 1 − 2^-K]), the input factor is ``λ_0 = 256/255``, biases are Kim's
``β = b'/(1 − 2^-K)``; hidden layers are 'ws' (reset subtract), the output layer 'acc'. A junction's skip synapses
add into the same phase-shifted input ``(I_main + I_skip + b) << (K−k)`` (docs/spec.md §4a), so the λ form carries
over unchanged: ``S'_l = S_l·λ'_k/λ'_l = S_l·λ_k/λ_l``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from golden.conversion import DEFAULT_NEURON
from golden.conversion.ann_import import AffineOp, ResidualSkip, apply_op, forward_ops, import_residual_network
from golden.conversion.convert import PIXEL_BITS, _quantise_calibration, calibration_to_unit, weighted_codes
from golden.conversion.normalize import weighted_ceiling
from golden.conversion.quantize import build_layer, check_phases, weighted_neurons
from golden.conversion.spikenorm import integrate_if
from golden.core.errors import DataError, SnnCosimError, UnsupportedLayerError
from golden.core.network import IntegerNetwork, NeuronParams, SkipConnection, signed_range
from golden.simulation.encoding import rate_encode

__all__ = ["ResidualConversion", "residual_groups", "residual_lambdas", "convert_residual"]

METHODS = ("data", "percentile", "model", "spikenorm")
DEFAULT_PERCENTILE = 99.9  # Rueckauer et al. 2017


@dataclass
class ResidualConversion:
    integer: IntegerNetwork
    lambdas: list[float]
    groups: list[list[int]]
    ops: list[AffineOp]
    skips: list[ResidualSkip]

    @property
    def scales(self) -> list[int]:
        """Integer scale s_l of every layer (θ_l = s_l)."""
        return list(self.integer.metadata["scales"])

    @property
    def decision_scale(self) -> int:
        """Divisor that turns the output values into activation units: ``2^K·s_L`` for weighted spikes (the 'acc'
        membrane), else ``s_L`` (as :attr:`golden.conversion.convert.ConversionResult.decision_scale`)."""
        return int(self.scales[-1]) << int(self.integer.phases)

    def input_codes(self, pixels):
        """The integer network's input codes for 8-bit pixel codes: the pixels for rate coding, their upper K bits
        for weighted spikes (:func:`golden.conversion.convert.weighted_codes`)."""
        if self.integer.input_coding == "weighted":
            return weighted_codes(pixels, self.integer.phases)
        return pixels


def residual_groups(n_layers: int, skips: Sequence[ResidualSkip]) -> list[list[int]]:
    """The layers (1-based) that must share one threshold (rule 2): union of {k, l−1, l} over the junctions."""
    parent = list(range(n_layers + 1))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for s in skips:
        if s.source == 0:
            raise UnsupportedLayerError(f"the shortcut into layer {s.target} starts at the network input; Sengupta "
                                        f"2019 §6 needs plain (non-residual) input layers before the first block")
        for member in (s.source, s.target - 1):
            parent[find(member)] = find(s.target)
    groups: dict[int, list[int]] = {}
    for layer in {m for s in skips for m in (s.source, s.target - 1, s.target)}:
        groups.setdefault(find(layer), []).append(layer)
    return [sorted(g) for g in sorted(groups.values(), key=min)]


def _skip_weight(skip: ResidualSkip, ops: Sequence[AffineOp]) -> np.ndarray:
    """The shortcut as a weight array in the target's geometry (identity: a diagonal 1×1 kernel or eye)."""
    if skip.op is not None:
        return np.asarray(skip.op.weight, dtype=np.float64)
    target = ops[skip.target - 1]
    if target.kind == "linear":
        return np.eye(target.n_out)
    c = target.out_shape[0]
    weight = np.zeros((c, c, 1, 1))
    weight[np.arange(c), np.arange(c), 0, 0] = 1.0
    return weight


def _shortcut_op(skip: ResidualSkip, ops: Sequence[AffineOp], shape) -> AffineOp:
    if skip.op is not None:
        return skip.op
    target = ops[skip.target - 1]
    weight = _skip_weight(skip, ops)
    kind = "linear" if target.kind == "linear" else "conv2d"
    return AffineOp(kind, f"identity->{skip.target}", weight, np.zeros(weight.shape[0]), tuple(shape),
                    tuple(target.out_shape))


def _activations_max(ops, skips, images) -> list[float]:
    outs = forward_ops(ops, images, return_all=True, skips=skips)
    return [float(o.max()) for o in outs]


def _activations_percentile(ops, skips, images, percentile: float) -> list[float]:
    """The ``percentile``-th percentile of each layer's strictly positive activations (Rueckauer 2017; as
    ``golden.conversion.normalize.percentile_based``, linear interpolation like ``numpy.percentile``)."""
    if not 0 < percentile <= 100:
        raise SnnCosimError(f"percentile={percentile} must lie in (0, 100]; Rueckauer 2017 uses 99.9")
    lambdas = []
    for op, out in zip(ops, forward_ops(ops, images, return_all=True, skips=skips)):
        positive = out[out > 0]
        if positive.numel() == 0:
            raise DataError(f"layer '{op.name}' is never active on the calibration images, so no percentile")
        lambdas.append(float(np.percentile(positive.numpy(), percentile)))
    return lambdas


def _model_based(ops, skips) -> list[float]:
    lambdas = []
    by_target = {s.target: s for s in skips}
    for index, op in enumerate(ops, start=1):
        prev = lambdas[-1] if lambdas else 1.0
        pos = np.clip(op.weight, 0, None).reshape(op.weight.shape[0], -1).sum(1) * prev if op.kind != "avgpool2d" \
            else np.full(op.n_channels_out, float(op.weight) * op.kernel[0] * op.kernel[1] * prev)
        if index in by_target:
            s = by_target[index]
            sw = _skip_weight(s, ops)
            pos = pos + np.clip(sw, 0, None).reshape(sw.shape[0], -1).sum(1) * (lambdas[s.source - 1])
        pos = pos + np.clip(np.asarray(op.bias, dtype=np.float64), 0, None)
        lambdas.append(float(max(pos.max(initial=0.0), 1e-12)))
    return lambdas


def _step_input(op, x_prev, lam_prev, skip_op=None, x_skip=None, lam_skip=1.0):
    steps, batch = x_prev.shape[0], x_prev.shape[1]
    y = apply_op(replace(op, relu_after=False), (x_prev.reshape(steps * batch, *op.in_shape).double() * lam_prev))
    if skip_op is not None:
        y = y + apply_op(replace(skip_op, bias=np.zeros_like(skip_op.bias)),
                         x_skip.reshape(steps * batch, *skip_op.in_shape).double() * lam_skip).reshape(y.shape)
    return y.reshape(steps, batch, -1)


def _spike_norm(ops, skips, groups, input_spikes, reset, shared: bool = True) -> list[float]:
    """Sengupta Alg. 1 in λ form with shortcuts; a group's later members reuse its first member's λ."""
    by_target = {s.target: s for s in skips}
    group_of = {m: tuple(g) for g in groups for m in g}
    spikes = [input_spikes.to(torch.bool)]
    lambdas: list[float] = []
    with torch.no_grad():
        for index, op in enumerate(ops, start=1):
            lam_prev = lambdas[-1] if lambdas else 1.0
            skip = by_target.get(index)
            args = {}
            if skip is not None:
                args = dict(skip_op=_shortcut_op(skip, ops, ops[skip.source - 1].out_shape), x_skip=spikes[skip.source],
                            lam_skip=lambdas[skip.source - 1])
            current = _step_input(op, spikes[-1], lam_prev, **args)
            group = group_of.get(index)
            if shared and group is not None and group[0] != index:
                lam = lambdas[group[0] - 1]
            else:
                lam = float(current.max())
                if not lam > 0:
                    raise DataError(f"layer '{op.name}' never receives a positive input from the calibration spikes")
            lambdas.append(lam)
            spikes.append(integrate_if(current, lam, reset))
    return lambdas


def residual_lambdas(ops, skips, method: str, images=None, *, steps: int = 100, reset: str = "zero",
                     seed: int = 0, percentile: float = DEFAULT_PERCENTILE, shared_thresholds: bool = True
                     ) -> tuple[list[float], list[list[int]]]:
    """λ_1..λ_L of every layer under ``method`` with Sengupta's rules (module docstring) and the groups.

    ``shared_thresholds=False`` drops rule 2 (every layer keeps its own λ; a diagnostic: in λ form the skip
    weights ``S' = S·λ_k/λ_l`` keep the conversion exact for any λ, Sengupta's unweighted identity shortcuts with
    unity thresholds need the rule)."""
    if method not in METHODS:
        raise SnnCosimError(f"method={method!r} is not one of {', '.join(map(repr, METHODS))}")
    groups = residual_groups(len(ops), skips)
    if method == "model":
        lambdas = _model_based(ops, skips)
    elif method == "data":
        lambdas = _activations_max(ops, skips, images.double().reshape(-1, *ops[0].in_shape))
    elif method == "percentile":
        lambdas = _activations_percentile(ops, skips, images.double().reshape(-1, *ops[0].in_shape), percentile)
    else:
        codes = torch.round(images.double().reshape(images.shape[0], -1) * 255).to(torch.int64)
        x = rate_encode(codes, steps, seed=seed)
        lambdas = _spike_norm(ops, skips, groups, x, reset, shared_thresholds)
        return lambdas, groups
    for g in groups if shared_thresholds else ():  # rule 2: one λ per group (the largest, so no member's activation exceeds its threshold)
        shared = max(lambdas[m - 1] for m in g)
        for m in g:
            lambdas[m - 1] = shared
    return lambdas, groups


def convert_residual(model: torch.nn.Module, calibration_images, *, input_shape: Sequence[int],
                     method: str = "data", weight_bits: int = 8, membrane_bits: int = 24,
                     neuron: NeuronParams | None = None, spikenorm_steps: int = 100, seed: int = 0,
                     percentile: float = DEFAULT_PERCENTILE, shared_thresholds: bool = True,
                     input_coding: str = "rate", phases: int | None = None, skip_periods: int = 0
                     ) -> ResidualConversion:
    """Import ``model`` with its residual blocks, normalise (``"data"``, ``"percentile"``, ``"model"`` or
    ``"spikenorm"``) under
    Sengupta's rules and quantise into a validated :class:`IntegerNetwork` with skip connections.

    ``input_coding``: ``"rate"`` (default; ``neuron`` for every layer, IF reset by subtraction unless given) or
    ``"weighted"`` (Kim 2018, ``phases`` = K, ``skip_periods`` = S; not with Spike-Norm, whose λ come from rate
    spike trains; the neurons are fixed, 'ws' hidden and 'acc' output; module docstring). Input codes:
    :meth:`ResidualConversion.input_codes`."""
    weighted = input_coding == "weighted"
    if weighted:
        if phases is None:
            raise SnnCosimError("input_coding='weighted' needs phases=K, the bits per period (Kim 2018: 4 for MNIST)")
        phases, skip_periods = check_phases(phases, skip_periods)
        if method == "spikenorm":
            raise SnnCosimError("Spike-Norm measures λ on rate-coded spike trains; with input_coding='weighted' use "
                                "method='data', 'percentile' or 'model'")
        if neuron is not None and neuron != NeuronParams("ws", "subtract"):
            raise SnnCosimError(f"weighted spikes fix the neurons ('ws' reset subtract, the output 'acc'); leave "
                                f"neuron unset instead of {neuron}")
    elif input_coding != "rate":
        raise SnnCosimError(f"residual conversion supports input_coding 'rate' or 'weighted', not {input_coding!r}")
    elif phases is not None or skip_periods:
        raise SnnCosimError("phases/skip_periods belong to input_coding='weighted'; leave them unset")
    neuron = neuron or DEFAULT_NEURON
    ops, skips = import_residual_network(model, input_shape)
    neurons = weighted_neurons(len(ops)) if weighted else [neuron] * len(ops)
    images = calibration_to_unit(calibration_images) if calibration_images is not None else None
    if weighted and images is not None:
        images = _quantise_calibration(images, phases)  # what the ANN sees of K-bit inputs
    lambdas, groups = residual_lambdas(ops, skips, method, images, steps=spikenorm_steps, reset=neuron.reset,
                                       seed=seed, percentile=percentile, shared_thresholds=shared_thresholds)
    input_lambda, bias_factor = 1.0, 1.0
    if weighted:  # Kim 2018 §4.1 (golden.conversion.normalize.for_weighted_spikes): activations into [0, 1 − 2^-K]
        ceiling = weighted_ceiling(phases)
        lambdas = [lam / ceiling for lam in lambdas]
        input_lambda = (1 << PIXEL_BITS) / ((1 << PIXEL_BITS) - 1)  # ANN input = 256/255 · code/2^K
        bias_factor = 1.0 / ceiling  # Kim's β = b'/(1 − 2^-K)
    w_max = signed_range(weight_bits)[1]
    by_target = {s.target: s for s in skips}
    layers, ir_skips, scales = [], [], []
    for index, (op, layer_neuron) in enumerate(zip(ops, neurons), start=1):
        lam_prev = lambdas[index - 2] if index > 1 else input_lambda
        lam = lambdas[index - 1]
        weight = np.asarray(op.weight, dtype=np.float64) * lam_prev / lam
        skip = by_target.get(index)
        skip_w = _skip_weight(skip, ops) * lambdas[skip.source - 1] / lam if skip is not None else None
        largest = max(float(np.max(np.abs(weight))), float(np.max(np.abs(skip_w))) if skip is not None else 0.0)
        scale = max(1, math.floor(w_max / largest)) if largest > 0 else 1
        scales.append(scale)
        theta = np.full(op.n_channels_out, scale, dtype=np.int64)
        bias = np.rint(np.asarray(op.bias, dtype=np.float64) / lam * bias_factor * scale).astype(np.int64)
        if op.kind == "avgpool2d":
            layers.append(build_layer(op, int(np.rint(float(weight) * scale)), None, theta, layer_neuron))
        else:
            layers.append(build_layer(op, np.rint(weight * scale).astype(np.int64), bias, theta, layer_neuron))
        if skip is not None:
            sw = np.rint(skip_w * scale).astype(np.int64)
            if skip.op is not None:
                ir_skips.append(SkipConnection(index, skip.source, sw, tuple(skip.op.stride), tuple(skip.op.padding)))
            else:
                ir_skips.append(SkipConnection(index, skip.source, sw))
    metadata = {"conversion": f"residual-{method}" + ("" if shared_thresholds else "-unshared"), "lambdas": [float(v) for v in lambdas], "scales": scales,
                "groups": groups, "reset": "subtract" if weighted else neuron.reset}
    coding = {}
    if weighted:
        metadata.update(input_coding="weighted", phases=phases, skip_periods=skip_periods, input_lambda=input_lambda,
                        bias_factor=bias_factor, output_neuron="acc")
        coding = dict(input_coding="weighted", input_bits=phases, phases=phases, skip_periods=skip_periods)
        # the IR's validation checks the phase-1 headroom << (K−1) of every layer and junction (WidthError)
    net = IntegerNetwork(tuple(int(s) for s in input_shape), layers, weight_bits=weight_bits,
                         membrane_bits=membrane_bits, metadata=metadata, skips=ir_skips, **coding).validate()
    return ResidualConversion(net, lambdas, groups, ops, skips)


# ----------------------------------------------------------------------------------------------- a small ResNet
class BasicBlock(torch.nn.Module):
    """``relu(conv(relu(conv(x))) + shortcut(x))``; the shortcut is the identity or a 1×1 strided conv."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.relu2 = nn.ReLU()
        self.down = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        y = self.conv2(self.relu1(self.conv1(x)))
        return self.relu2(y + (self.down(x) if self.down is not None else x))


def make_resnet(width: int = 8, blocks: int = 3) -> torch.nn.Module:
    """Sengupta-style small ResNet for 28×28 MNIST, bias-free, average pooling: two plain 3×3 convs, ``blocks``
    basic blocks (the second downsamples with a 1×1 stride-2 shortcut and doubles the width), 2×2 average pool,
    linear classifier. ``blocks = 3``: 2 + 6 convs + 1 shortcut conv + 1 linear = 10 weight layers."""
    nn = torch.nn
    layers = [nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1, bias=False),
              nn.ReLU()]
    c = width
    for b in range(blocks):
        c_out = 2 * width if b >= 1 else width
        layers.append(BasicBlock(c, c_out, 2 if b == 1 else 1))
        c = c_out
    layers += [nn.AvgPool2d(2), nn.Flatten(), nn.Linear(c * 7 * 7, 10, bias=False)]
    return nn.Sequential(*layers)


def default_resnet(cache_dir_path=None, *, width: int = 8, blocks: int = 3, epochs: int = 6, train_size: int | None = None,
                   seed: int = 0, progress: bool = False) -> torch.nn.Module:
    """:func:`make_resnet` trained on the embedded MNIST train part, cached as ``resnet-<recipe hash>.pt`` (like
    ``golden.training.ann_trainer.default_mlp``); ``model.test_accuracy`` holds the test-part accuracy."""
    import hashlib
    import json

    from golden.data.mnist import default_split
    from golden.training.ann_trainer import cache_dir, cached_model, evaluate, train

    recipe = {"width": width, "blocks": blocks, "epochs": epochs, "train_size": train_size, "seed": seed, "v": 1}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir(cache_dir_path) / f"resnet-{key}.pt"

    def fit():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make_resnet(width, blocks)
        split = default_split()
        images, labels = split.train_images, split.train_labels
        if train_size is not None:
            images, labels = images[:train_size], labels[:train_size]
        train(model, images.unsqueeze(1), labels, epochs=epochs, batch_size=100, lr=2e-3, seed=seed,
              progress=progress)
        return model, evaluate(model, split.test_images.unsqueeze(1), split.test_labels)

    return cached_model(path, lambda: make_resnet(width, blocks), fit, recipe)
