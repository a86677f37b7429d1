"""Fitting networks onto engine builds: whether the engine runs a network at all (:func:`check_supported`), the
widths a network needs (``*_for``, the ``_`` helpers), the smallest :class:`~hw.config.EngineConfig` of a network
(:func:`config_for_network`, which is ``EngineConfig.for_network``) and whether a network fits a given build
(:func:`check_fits`, which is ``EngineConfig.check_fits``). ``hw.config`` re-exports the public helpers."""

from __future__ import annotations

import dataclasses

import numpy as np

from golden.core.errors import SnnCosimError, UnsupportedLayerError, WidthError
from golden.core.geometry import geometry_of
from golden.core.network import IntegerNetwork, layer_inhibition, signed_bits_for, signed_range
from golden.core.register_map import LEAK_SHIFT_BITS, power_of_two_shift

from .config import STEP_BITS

__all__ = ["check_supported", "phase_bits_for", "fs_input_weights", "fs_shift_bits_for",
           "config_for_network", "check_fits"]


def check_supported(net: IntegerNetwork) -> None:
    """Raise if the network uses something the engine cannot run (direct input coding; conv/pool layers as the
    output layer).

    Rate, weighted (Kim 2018) and FS (Stöckl & Maass 2021) input codings all reach the engine as spike bits on
    ``spike_in``: the golden encoder makes them once and the RTL receives the same spikes. Conv2d and avgpool2d
    layers run on the convolution schedule (docs/architecture.md, "Convolution")."""
    for index, layer in enumerate(net.layers, start=1):
        if layer.kind != "dense":
            if index == len(net.layers):
                raise UnsupportedLayerError(
                    f"{layer.kind} layer {index}: the output layer must be dense in hardware (the prediction "
                    f"indexes neurons in lane order)")
    for skip in net.skips:
        if _fs_layers(net):
            raise UnsupportedLayerError(
                f"skip connection {skip.source} -> {skip.target} in an FS network: golden model only. The junction "
                f"receives the skip source's fire-window spikes (l−k−1)·K = "
                f"{(skip.target - skip.source - 1) * int(net.phases)} steps later (docs/spec.md §3b), and the "
                f"engine has no delay-line buffer for them")
        if skip.source == 0:
            raise UnsupportedLayerError(
                f"skip connection 0 -> {skip.target}: the engine cannot re-read the input stream; a residual "
                f"shortcut must start at a layer (Sengupta 2019: plain input layers before the first block)")
    if net.input_coding not in ("rate", "weighted", "fs"):
        raise UnsupportedLayerError(
            f"input_coding {net.input_coding!r}: not yet in hardware (golden model only; the engine takes "
            f"spike input, use input_coding 'rate', 'weighted' or 'fs')")


def phase_bits_for(phases: int) -> int:
    """Width of the phase shift ``sh = K − k`` in ``0..K−1`` (at least 1): the engine's ``phase_bits`` for K."""
    return max(1, (int(phases) - 1).bit_length())


def _weighted_layers(net: IntegerNetwork) -> list[tuple[int, str]]:
    """``(1-based layer, kind)`` of every weighted-spike ('ws') or output-accumulator ('acc') layer."""
    return [(index, layer.neuron.kind) for index, layer in enumerate(net.layers, start=1)
            if layer.neuron.kind in ("ws", "acc")]


def _fs_layers(net: IntegerNetwork) -> bool:
    return net.input_coding == "fs" or any(layer.neuron.kind == "fs" for layer in net.layers)


def fs_input_weights(net: IntegerNetwork) -> list[tuple[int, ...]]:
    """``d_in`` of every layer l = 1..L of an FS network: the spike weights of its source (the input's
    ``2^(K−t)`` for layer 1, layer l−1's ``fs_weight`` otherwise)."""
    K = int(net.phases)
    tables = [tuple(1 << (K - t) for t in range(1, K + 1))]
    tables += [tuple(int(d) for d in layer.neuron.fs_weight) for layer in net.layers[:-1]]
    return tables


def fs_shift_bits_for(net: IntegerNetwork) -> int:
    """Width of the FS weight shift k (d = ±2^k) that ``net`` needs (at least 1); general integers raise."""
    largest = 0
    for l, table in enumerate(fs_input_weights(net), start=1):
        for t, d in enumerate(table, start=1):
            shift = power_of_two_shift(d)
            if shift is None:
                source = "the input" if l == 1 else f"layer {l - 1}"
                raise UnsupportedLayerError(
                    f"FS weight d[{t}] = {d} of {source} is not a signed power of two; "
                    f"the engine shifts instead of multiplying (quantise the table with shift_only=True)")
            largest = max(largest, shift)
    return max(1, largest.bit_length())


def _synaptic_bound(net: IntegerNetwork) -> int:
    """max over neurons of Σ_i |W[j,i]| + |bias_j|: bounds |synaptic input + bias| of one step."""
    bound = 0
    for index, layer in enumerate(net.layers, start=1):
        if layer.kind == "avgpool2d":
            bound = max(bound, layer.fan_in_abs_max())
            continue
        weight = np.asarray(layer.weight, dtype=np.int64)
        w = np.abs(weight.reshape(weight.shape[0], -1)).sum(axis=1)
        b = np.abs(np.asarray(layer.bias, dtype=np.int64))
        skip = net.skip_into(index)
        if skip is not None:  # a residual junction also adds its skip synapses' input
            sw = np.asarray(skip.weight, dtype=np.int64)
            w = w + np.abs(sw.reshape(sw.shape[0], -1)).sum(axis=1)
        bound = max(bound, int((w + b).max(initial=0)))
    return bound


def _skips_of(net: IntegerNetwork) -> tuple:
    """``(target, source, *geometry)`` of every skip connection (geometry: the conv skip's SPATIAL_FIELDS tuple,
    empty for a dense skip)."""
    return tuple((int(s.target), int(s.source)) + tuple(geometry_of(net.skip_layer(s))) for s in net.skips)


def _spatial_of(net: IntegerNetwork) -> tuple:
    geo = tuple(geometry_of(layer) for layer in net.layers)
    return geo if any(geo) else ()


def _bias_span(net: IntegerNetwork) -> tuple[int, int]:
    lo = min((int(np.min(layer.bias, initial=0)) for layer in net.layers), default=0)
    hi = max((int(np.max(layer.bias, initial=0)) for layer in net.layers), default=0)
    return min(lo, 0), max(hi, 0)


def _threshold_max(net: IntegerNetwork) -> int:
    """The largest threshold or WTA strength u (both are stored as threshold_bits-wide unsigned lanes)."""
    return max(max(int(np.max(layer.threshold, initial=1)), int(np.max(_inhibition(layer), initial=0)))
               for layer in net.layers)


def _inhibition(layer) -> np.ndarray:
    """The layer's WTA strengths u (docs/spec.md §3c), empty when it has no lateral inhibition."""
    u = layer_inhibition(layer)
    return np.zeros(0, dtype=np.int64) if u is None else np.asarray(u, dtype=np.int64)


def _inhibition_of(net: IntegerNetwork) -> tuple:
    """``EngineConfig.inhibition`` for ``net``: 1 per layer with lateral inhibition, () when none has it."""
    flags = tuple(int(layer_inhibition(layer) is not None) for layer in net.layers)
    return flags if any(flags) else ()


def config_for_network(cls, net: IntegerNetwork, lanes: int = 8, **overrides):
    """``EngineConfig.for_network``: the smallest engine (of class ``cls``) that runs ``net`` with ``lanes`` lanes;
    ``overrides`` widen fields (e.g. ``acc_bits=32`` for a build that later networks of the same shape also fit).
    Raises if ``net`` does not fit the result."""
    check_supported(net)
    names = {f.name for f in dataclasses.fields(cls)} - {"layer_sizes"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SnnCosimError(f"EngineConfig has no field {unknown[0]!r}; fields: {', '.join(sorted(names))}")
    bound = _synaptic_bound(net)
    b_lo, b_hi = _bias_span(net)
    weighted = bool(_weighted_layers(net))
    fs = _fs_layers(net)
    fields = dict(
        layer_sizes=tuple(net.layer_sizes),
        lanes=lanes,
        weight_bits=int(net.weight_bits),
        membrane_bits=int(net.membrane_bits),
        acc_bits=signed_bits_for(-bound, bound),
        bias_bits=signed_bits_for(b_lo, b_hi),
        threshold_bits=max(_threshold_max(net).bit_length(), 1),
        phase_bits=phase_bits_for(net.phases) if weighted or fs else 0,
        fs_shift_bits=fs_shift_bits_for(net) if fs else 0,
        spatial=_spatial_of(net),
        inhibition=_inhibition_of(net),
        skips=_skips_of(net),
    )
    fields.update(overrides)
    engine = cls(**fields)
    engine.check_fits(net)
    return engine


def check_fits(config, net: IntegerNetwork) -> None:
    """Raise a one-line :class:`WidthError` (or :class:`UnsupportedLayerError`) unless ``net`` runs on the
    engine ``config``: same sizes, same membrane width, and every weight, bias, threshold and synaptic sum fits."""
    check_supported(net)
    if tuple(net.layer_sizes) != config.layer_sizes:
        raise WidthError(f"network layer sizes {list(net.layer_sizes)} differ from the engine's "
                         f"{list(config.layer_sizes)}")
    if _spatial_of(net) != config.spatial:
        raise WidthError(f"network conv/pool geometry {_spatial_of(net)} differs from the engine's "
                         f"{config.spatial}")
    if _skips_of(net) != config.skips:
        raise WidthError(f"network skip connections {_skips_of(net)} differ from the engine's {config.skips}")
    if net.membrane_bits != config.membrane_bits:
        raise WidthError(f"network membrane_bits={net.membrane_bits} differs from the engine's "
                         f"{config.membrane_bits} (saturation happens at that width, so they must be equal)")
    w_lo, w_hi = signed_range(config.weight_bits)
    b_lo, b_hi = signed_range(config.bias_bits)
    for index, layer in enumerate(net.layers, start=1):
        weight = np.asarray(layer.weight, dtype=np.int64)
        if weight.size and (weight.min() < w_lo or weight.max() > w_hi):
            raise WidthError(f"layer {index}: weights span [{weight.min()}, {weight.max()}] but the engine's "
                             f"weight_bits={config.weight_bits} holds [{w_lo}, {w_hi}]")
        bias = np.asarray(layer.bias, dtype=np.int64)
        if bias.size and (bias.min() < b_lo or bias.max() > b_hi):
            raise WidthError(f"layer {index}: biases span [{bias.min()}, {bias.max()}] but the engine's "
                             f"bias_bits={config.bias_bits} holds [{b_lo}, {b_hi}]")
        skip = net.skip_into(index)
        skip_w = np.asarray(skip.weight, dtype=np.int64) if skip is not None else np.zeros(0, np.int64)
        if skip_w.size and (skip_w.min() < w_lo or skip_w.max() > w_hi):
            raise WidthError(f"layer {index}: skip weights span [{skip_w.min()}, {skip_w.max()}] but the engine's "
                             f"weight_bits={config.weight_bits} holds [{w_lo}, {w_hi}]")
        theta = int(np.max(layer.threshold, initial=1))
        if theta >= 1 << config.threshold_bits:
            raise WidthError(f"layer {index}: threshold {theta} does not fit the engine's unsigned "
                             f"threshold_bits={config.threshold_bits}")
        u = _inhibition(layer)
        if layer_inhibition(layer) is not None and not config.inhibits(index):
            raise UnsupportedLayerError(
                f"layer {index} has lateral inhibition but the engine was built without inhibition hardware "
                f"for it; build it with EngineConfig.for_network (inhibition={_inhibition_of(net)})")
        if u.size and int(u.max()) >= 1 << config.threshold_bits:
            raise WidthError(f"layer {index}: inhibition strength {int(u.max())} does not fit the engine's "
                             f"unsigned threshold_bits={config.threshold_bits}")
        if layer.neuron.leak_shift >= 1 << LEAK_SHIFT_BITS:
            raise WidthError(f"layer {index}: leak_shift {layer.neuron.leak_shift} exceeds "
                             f"{(1 << LEAK_SHIFT_BITS) - 1}")
    _check_fs(config, net)
    _check_phases(config, net)
    bound = _synaptic_bound(net)
    a_lo, a_hi = signed_range(config.acc_bits)
    if bound > a_hi:
        raise WidthError(f"a neuron's synaptic input plus bias can reach ±{bound} but the engine's "
                         f"acc_bits={config.acc_bits} holds [{a_lo}, {a_hi}]; use acc_bits="
                         f"{signed_bits_for(-bound, bound)}")


def _check_fs(config, net: IntegerNetwork) -> None:
    """FS networks need the FS hardware, ``K ≤ 2^phase_bits`` and every spike weight a shift that fits."""
    if not _fs_layers(net):
        return
    if not config.fs:
        raise UnsupportedLayerError(
            f"the network uses FS neurons but the engine was built without FS hardware (fs_shift_bits=0); "
            f"build it with fs_shift_bits={fs_shift_bits_for(net)}")
    if net.phases > config.max_phases:
        raise WidthError(f"FS networks of K = {net.phases} steps need phase_bits={phase_bits_for(net.phases)} "
                         f"but the engine's phase_bits={config.phase_bits} runs at most K = {config.max_phases}")
    need = fs_shift_bits_for(net)  # raises for weights that are not signed powers of two
    if need > config.fs_shift_bits:
        raise WidthError(f"the network's FS spike weights need shifts of fs_shift_bits={need} but the engine "
                         f"has fs_shift_bits={config.fs_shift_bits}")


def _check_phases(config, net: IntegerNetwork) -> None:
    """Weighted-spike layers need the phase hardware, ``K ≤ 2^phase_bits`` and ``S·K`` in a step number."""
    weighted = _weighted_layers(net)
    if not weighted:
        return
    index, kind = weighted[0]
    if not config.phase_bits:
        raise UnsupportedLayerError(
            f"layer {index} is a weighted-spike {kind!r} layer but the engine was built without weighted-spike "
            f"hardware (phase_bits=0); build it with phase_bits={phase_bits_for(net.phases)}")
    if net.phases > config.max_phases:
        raise WidthError(f"K = {net.phases} phases need phase_bits={phase_bits_for(net.phases)} but the "
                         f"engine's phase_bits={config.phase_bits} runs at most K = {config.max_phases}")
    skip_last = net.skip_periods * net.phases
    if skip_last >= 1 << STEP_BITS:
        raise WidthError(f"S·K = {net.skip_periods}·{net.phases} = {skip_last} skipped steps do not fit the "
                         f"{STEP_BITS}-bit step counter (at most {(1 << STEP_BITS) - 1})")
