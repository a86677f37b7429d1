"""Engine configuration: the sizes and widths one hardware build serves (docs/architecture.md, "The network engine").

An :class:`EngineConfig` fixes everything the Verilog depends on. Networks of the same shape and widths (IF-zero,
IF-subtract, LIF, any weights) run on one build: their numbers are loaded at run time through the configuration
port (``hw.config_image``). The config is a frozen, hashable dataclass of plain integers; :meth:`digest` is a
stable key for build caches (``hash()`` is stable too, but only within one Python version).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from golden.errors import SnnCosimError, UnsupportedLayerError, WidthError
from golden.ir import IntegerNetwork, signed_bits_for, signed_range

__all__ = [
    "EngineConfig", "Geometry", "check_supported", "MIN_C_LAYER", "MIN_C_IMAGE",
    "CFG_ADDR_BITS", "REGION_SHIFT", "STEP_BITS", "LAYER_BITS", "GROUP_BITS", "PREDICTION_BITS",
    "SPIKE_COUNT_BITS", "LEAK_SHIFT_BITS", "PARAM_BITS", "N_COUNTERS", "MAX_LAYERS", "MAX_PHASE_BITS",
    "GLOBAL_REGION", "GLOBAL_PHASES", "GLOBAL_SKIP_LAST", "GLOBAL_FS_MODE", "phase_bits_for",
    "FS_THRESHOLD_BASE", "FS_RESET_BASE", "FS_WEIGHT_BASE", "FS_SHIFT_FIELD_BITS", "FS_NEGATIVE_BIT",
    "MAX_FS_SHIFT_BITS", "IMAGE_BITS", "SKIP_WEIGHT_BASE", "fs_weight_code", "fs_input_weights", "fs_shift_bits_for",
    "INHIBIT_BASE",
]

# Fixed port and field widths of docs/architecture.md.
CFG_ADDR_BITS = 32
REGION_SHIFT = 24  # cfg_addr = region << 24 | index
STEP_BITS = 16  # n_steps, rec_step, sum_step
LAYER_BITS = 8  # rec_layer, sum_layer
GROUP_BITS = 16  # rec_group
PREDICTION_BITS = 16
SPIKE_COUNT_BITS = STEP_BITS  # output spike counters: at most one spike per step
LEAK_SHIFT_BITS = 6  # neuron params word bits 2..7
PARAM_BITS = 13  # neuron params word: kind, reset, leak_shift[6], floor enable, ws, acc, floor −θ, inhibit
N_COUNTERS = 9  # len(golden.trace.COUNTER_NAMES)
# Region 0xFF holds the global (whole-network) registers of weighted spikes; layers use four regions each below it.
GLOBAL_REGION = (1 << (CFG_ADDR_BITS - REGION_SHIFT)) - 1
GLOBAL_PHASES = 0  # index 0: K, the number of phases (0 = no weighted spikes)
GLOBAL_SKIP_LAST = 1  # index 1: S·K, the last step in which an 'acc' output layer does not integrate
GLOBAL_FS_MODE = 2  # index 2 (FS builds only): 1 = the pipelined FS schedule (Stöckl & Maass 2021), 0 = per step
# FS tables of layer l live in its params region 4(l−1)+3 at these index bases (+ t−1 for t = 1..K):
FS_THRESHOLD_BASE = 0x100  # T_l[t], membrane_bits two's complement
FS_RESET_BASE = 0x200  # h_l[t], membrane_bits two's complement
FS_WEIGHT_BASE = 0x300  # d_in[t] of the spikes layer l receives: bits 0..5 shift k, bit 6 negative (d = ±2^k)
FS_SHIFT_FIELD_BITS = 6
FS_NEGATIVE_BIT = 6
MAX_FS_SHIFT_BITS = 5  # shifts 0..31
# Lateral inhibition (Lee 2016, docs/spec.md §3c): word 0x400 + g of layer l's params region holds the WTA
# strengths u of group g (P lanes × threshold_bits, unsigned), for layers built with inhibition hardware.
INHIBIT_BASE = 0x400
IMAGE_BITS = 16  # n_images, pred_image
MAX_LAYERS = GLOBAL_REGION // 4  # 63: regions 0..251
MAX_PHASE_BITS = 4  # the IR allows K ≤ 16: shifts 0..15
# Residual junctions: the skip weights of junction layer l live in its weight region 4(l−1)+0 from this index on
SKIP_WEIGHT_BASE = 1 << (REGION_SHIFT - 1)

# The shortest fixed costs the engine's pipeline allows (docs/hardware.md, "Cycle accounting"): DRAIN + SUMMARY
# per (step, layer), the start cycle per image. Larger golden.cycle_model constants are met with idle cycles.
MIN_C_LAYER = 2
MIN_C_IMAGE = 1


class Geometry(NamedTuple):
    """The geometry of one conv2d / avgpool2d layer (or conv skip) as plain integers, in the order of
    ``golden.cycle_model.SPATIAL_FIELDS`` (``spatial_of`` gives the same values as a bare tuple; a Geometry is a
    tuple, so it hashes, compares and serialises as one). Dense layers have no Geometry: ``()``."""

    pool: int  # 1: avgpool2d, 0: conv2d
    c_in: int
    h_in: int
    w_in: int
    c_out: int
    h_out: int
    w_out: int
    kernel_h: int
    kernel_w: int
    stride_y: int
    stride_x: int
    pad_y: int
    pad_x: int

    @classmethod
    def of(cls, values) -> "Geometry | tuple[()]":
        """``values`` (a geometry tuple, or ``()`` for dense) as a Geometry of ints, ``()`` for dense; a tuple of
        the wrong length comes back as a plain tuple (EngineConfig's validation names it)."""
        values = tuple(int(v) for v in values)
        return cls(*values) if len(values) == len(cls._fields) else values

    @property
    def is_pool(self) -> bool:
        return bool(self.pool)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.c_in, self.h_in, self.w_in

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.c_out, self.h_out, self.w_out

    @property
    def in_positions(self) -> int:
        """``h_in · w_in``: input positions (source mask words per channel group)."""
        return self.h_in * self.w_in

    @property
    def out_positions(self) -> int:
        """``h_out · w_out``: output positions."""
        return self.h_out * self.w_out

    @property
    def taps(self) -> int:
        """``kernel_h · kernel_w``: kernel taps per input channel."""
        return self.kernel_h * self.kernel_w


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
    for skip in getattr(net, "skips", None) or []:
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


def _power_of_two_shift(value: int) -> int | None:
    a = abs(int(value))
    return a.bit_length() - 1 if a and a & (a - 1) == 0 else None


def fs_shift_bits_for(net: IntegerNetwork) -> int:
    """Width of the FS weight shift k (d = ±2^k) that ``net`` needs (at least 1); general integers raise."""
    largest = 0
    for l, table in enumerate(fs_input_weights(net), start=1):
        for t, d in enumerate(table, start=1):
            shift = _power_of_two_shift(d)
            if shift is None:
                source = "the input" if l == 1 else f"layer {l - 1}"
                raise UnsupportedLayerError(
                    f"FS weight d[{t}] = {d} of {source} is not a signed power of two; "
                    f"the engine shifts instead of multiplying (quantise the table with shift_only=True)")
            largest = max(largest, shift)
    return max(1, largest.bit_length())


def fs_weight_code(d: int) -> int:
    """The configuration word of an FS spike weight ``d = ±2^k``: bits 0..5 k, bit 6 set for negative d."""
    shift = _power_of_two_shift(d)
    if shift is None or shift >= 1 << FS_SHIFT_FIELD_BITS:
        raise UnsupportedLayerError(f"FS weight d = {d} is not a signed power of two 2^k with k < "
                                    f"{1 << FS_SHIFT_FIELD_BITS}")
    return shift | int(d < 0) << FS_NEGATIVE_BIT


def _cycle_constants() -> tuple[int, int]:
    from golden import cycle_model  # the one place the constants are defined

    return int(cycle_model.C_LAYER), int(cycle_model.C_IMAGE)


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
        skip = net.skip_into(index) if getattr(net, "skips", None) else None
        if skip is not None:  # a residual junction also adds its skip synapses' input
            sw = np.asarray(skip.weight, dtype=np.int64)
            w = w + np.abs(sw.reshape(sw.shape[0], -1)).sum(axis=1)
        bound = max(bound, int((w + b).max(initial=0)))
    return bound


def _skips_of(net: IntegerNetwork) -> tuple:
    """``(target, source, *geometry)`` of every skip connection (geometry: the conv skip's SPATIAL_FIELDS tuple,
    empty for a dense skip)."""
    from golden import cycle_model

    return tuple((int(s.target), int(s.source)) + tuple(cycle_model.spatial_of(net.skip_layer(s)))
                 for s in getattr(net, "skips", None) or [])


def _spatial_of(net: IntegerNetwork) -> tuple:
    from golden import cycle_model

    geo = tuple(cycle_model.spatial_of(layer) for layer in net.layers)
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
    u = getattr(layer, "inhibition", None)
    return np.zeros(0, dtype=np.int64) if u is None else np.asarray(u, dtype=np.int64)


def _inhibition_of(net: IntegerNetwork) -> tuple:
    """``EngineConfig.inhibition`` for ``net``: 1 per layer with lateral inhibition, () when none has it."""
    flags = tuple(int(getattr(layer, "inhibition", None) is not None) for layer in net.layers)
    return flags if any(flags) else ()


@dataclass(frozen=True)
class EngineConfig:
    """Sizes and widths of one engine build.

    ``layer_sizes`` = ``[n_0, n_1, …, n_L]``; ``lanes`` = P (neurons updated / synapses added per cycle);
    ``weight_bits``, ``bias_bits``, ``acc_bits`` (ACC words and the neuron's exact sum), signed; ``threshold_bits``
    unsigned (defaults: ``bias_bits = M``, ``threshold_bits = M − 1``); ``membrane_bits`` = M, the saturation
    width (must equal the network's); ``counter_bits`` = W, the width of every hardware counter. ``phase_bits``
    (0 = none) adds the weighted-spike hardware (Kim 2018): the global phase counter, the ``ws``/``acc`` neuron
    modes and their shifters; it runs networks of up to ``K = 2^phase_bits`` phases. ``fs_shift_bits`` (0 = none;
    needs ``phase_bits > 0``) adds the FS hardware (Stöckl & Maass 2021): per-layer K-entry tables (T, h, d), the
    FS neuron lanes, the pipelined image stream and its ports; spike weights ``d = ±2^k`` with
    ``k < 2^fs_shift_bits``. ``c_layer`` and ``c_image`` default to ``golden.cycle_model``'s constants.
    ``inhibition`` (per layer 0/1, () = none) adds the lateral-inhibition hardware of Lee 2016 to the flagged
    dense layers (docs/spec.md §3c, docs/architecture.md "Lateral inhibition"): the u memory, an own-spike and
    saturation-flag memory, the INHIBIT pass; the pass runs when the layer's params bit 12 is set.
    """

    layer_sizes: tuple[int, ...]
    lanes: int = 8
    weight_bits: int = 8
    membrane_bits: int = 24
    acc_bits: int = 32
    bias_bits: int | None = None  # default: membrane_bits
    threshold_bits: int | None = None  # default: membrane_bits − 1
    counter_bits: int = 32
    phase_bits: int = 0  # 0: no weighted-spike hardware; else the phase shift sh = K − k has phase_bits bits
    fs_shift_bits: int = 0  # 0: no FS hardware; else the FS spike-weight shift k (d = ±2^k) has fs_shift_bits bits
    c_layer: int | None = None
    c_image: int | None = None
    # per layer: () for dense, else the conv/pool Geometry (golden.cycle_model.spatial_of's values); () = all dense
    spatial: tuple = ()
    # per layer: 1 = lateral-inhibition hardware (Lee 2016) for that dense layer; () = none
    inhibition: tuple = ()
    # residual junctions: (target, source, *conv skip geometry or nothing for a dense skip) per skip connection
    skips: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "layer_sizes", tuple(int(n) for n in self.layer_sizes))
        object.__setattr__(self, "inhibition", tuple(int(bool(v)) for v in self.inhibition))
        if self.inhibition and not any(self.inhibition):
            object.__setattr__(self, "inhibition", ())
        object.__setattr__(self, "spatial", tuple(Geometry.of(g) for g in self.spatial))
        if self.spatial and not any(self.spatial):
            object.__setattr__(self, "spatial", ())
        object.__setattr__(self, "skips", tuple(sorted(tuple(int(v) for v in s) for s in self.skips)))
        c_layer, c_image = _cycle_constants()
        if self.bias_bits is None:
            object.__setattr__(self, "bias_bits", self.membrane_bits)
        if self.threshold_bits is None:
            object.__setattr__(self, "threshold_bits", self.membrane_bits - 1)
        if self.c_layer is None:
            object.__setattr__(self, "c_layer", c_layer)
        if self.c_image is None:
            object.__setattr__(self, "c_image", c_image)
        self._validate()

    # ------------------------------------------------------------------------------------------- validation
    def _validate(self) -> None:
        for name in ("lanes", "weight_bits", "membrane_bits", "acc_bits", "bias_bits", "threshold_bits",
                     "counter_bits", "phase_bits", "fs_shift_bits", "c_layer", "c_image"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SnnCosimError(f"EngineConfig.{name} must be an integer, got {value!r}")
        sizes = self.layer_sizes
        if len(sizes) < 2:
            raise SnnCosimError(f"layer_sizes needs the input size and at least one layer, got {list(sizes)}")
        if len(sizes) - 1 > MAX_LAYERS:
            raise SnnCosimError(f"the engine addresses at most {MAX_LAYERS} layers, got {len(sizes) - 1}")
        if any(not 1 <= n < (1 << PREDICTION_BITS) for n in sizes):
            raise SnnCosimError(f"every layer size must lie in 1..{(1 << PREDICTION_BITS) - 1}, got {list(sizes)}")
        if not 1 <= self.lanes <= 1024:
            raise SnnCosimError(f"lanes must lie in 1..1024, got {self.lanes}")
        if not 2 <= self.weight_bits <= 32:
            raise WidthError(f"weight_bits must lie in 2..32, got {self.weight_bits}")
        if not 4 <= self.membrane_bits <= 62:
            raise WidthError(f"membrane_bits must lie in 4..62, got {self.membrane_bits}")
        if not 2 <= self.bias_bits <= 64 or not 2 <= self.acc_bits <= 64:
            raise WidthError(f"bias_bits and acc_bits must lie in 2..64, got {self.bias_bits}, {self.acc_bits}")
        if not 1 <= self.threshold_bits <= self.membrane_bits - 1:
            raise WidthError(f"threshold_bits must lie in 1..membrane_bits-1={self.membrane_bits - 1} "
                             f"(thresholds are positive membrane values), got {self.threshold_bits}")
        if not 8 <= self.counter_bits <= 64:
            raise WidthError(f"counter_bits must lie in 8..64, got {self.counter_bits}")
        if not 0 <= self.phase_bits <= MAX_PHASE_BITS:
            raise WidthError(f"phase_bits must lie in 0..{MAX_PHASE_BITS} (K ≤ {1 << MAX_PHASE_BITS} phases), "
                             f"got {self.phase_bits}")
        if not 0 <= self.fs_shift_bits <= MAX_FS_SHIFT_BITS:
            raise WidthError(f"fs_shift_bits must lie in 0..{MAX_FS_SHIFT_BITS} (FS weights up to "
                             f"±2^{(1 << MAX_FS_SHIFT_BITS) - 1}), got {self.fs_shift_bits}")
        if self.fs_shift_bits and not self.phase_bits:
            raise SnnCosimError("the FS hardware (fs_shift_bits > 0) needs the phase counter: set phase_bits > 0")
        if self.spatial:
            if len(self.spatial) != self.n_layers:
                raise SnnCosimError(f"spatial has {len(self.spatial)} entries for {self.n_layers} layers")
            if self.spatial[-1]:
                raise SnnCosimError("the output layer must be dense")
            for l, geo in enumerate(self.spatial, start=1):
                if geo and (not isinstance(geo, Geometry) or geo.c_in * geo.in_positions != self.layer_sizes[l - 1]
                            or geo.c_out * geo.out_positions != self.layer_sizes[l]):
                    raise SnnCosimError(f"layer {l}: spatial geometry {geo} does not match layer_sizes")
        self._validate_skips()
        for l in range(1, self.n_layers + 1):
            if self.weight_words(l) > (1 << REGION_SHIFT):
                raise SnnCosimError(f"layer {l} needs {self.weight_words(l)} weight words; a configuration region "
                                    f"addresses {1 << REGION_SHIFT}")
        if self.inhibition:
            from golden import cycle_model

            if len(self.inhibition) != self.n_layers:
                raise SnnCosimError(f"inhibition has {len(self.inhibition)} entries for {self.n_layers} layers")
            if any(flag and self.geometry(l) for l, flag in enumerate(self.inhibition, start=1)):
                raise SnnCosimError("lateral inhibition is supported for dense layers only")
            if self.fs:
                raise SnnCosimError("lateral inhibition is not supported in FS builds")
            if cycle_model.C_INHIBIT != 1:
                raise SnnCosimError(f"the INHIBIT pass drains in 1 cycle; golden.cycle_model.C_INHIBIT = "
                                    f"{cycle_model.C_INHIBIT} is not met by the engine")
        if self.c_layer < MIN_C_LAYER or self.c_image < MIN_C_IMAGE:
            raise SnnCosimError(
                f"C_LAYER={self.c_layer}, C_IMAGE={self.c_image} are below the engine's pipeline minimum "
                f"({MIN_C_LAYER}, {MIN_C_IMAGE}); raise them in golden/cycle_model.py")

    def _validate_skips(self) -> None:
        targets = set()
        for skip in self.skips:
            target, source, geo = skip[0], skip[1], Geometry.of(skip[2:])
            if not 1 <= source <= target - 2 or target > self.n_layers or target in targets:
                raise SnnCosimError(f"skip {skip[:2]}: needs 1 <= source <= target-2 <= {self.n_layers - 2} and one "
                                    f"skip per target")
            targets.add(target)
            if self.fs:
                raise SnnCosimError("skip connections are not supported in FS builds")
            tgeo, sgeo = self.geometry(target), self.geometry(source)
            if tgeo and tgeo.is_pool:
                raise SnnCosimError(f"skip {skip[:2]}: a pooling layer cannot be a junction")
            if bool(geo) != bool(tgeo) or (geo and (not isinstance(geo, Geometry) or geo.is_pool
                                                   or geo.out_shape != tgeo.out_shape
                                                   or not sgeo or geo.in_shape != sgeo.out_shape)):
                raise SnnCosimError(f"skip {skip[:2]}: geometry {geo} does not match the source and target layers")
            if self.skip_weight_words(target) > SKIP_WEIGHT_BASE or self.weight_words(target) > SKIP_WEIGHT_BASE:
                raise SnnCosimError(f"junction layer {target}: weight memories above {SKIP_WEIGHT_BASE} words "
                                    f"collide with the skip weights in its configuration region")

    # ------------------------------------------------------------------------------------------- residual junctions
    def skip_of(self, l: int) -> tuple | None:
        """``(source, conv skip Geometry or ())`` of junction layer ``l``, None when ``l`` has no skip."""
        for skip in self.skips:
            if skip[0] == l:
                return skip[1], Geometry.of(skip[2:])
        return None

    def skip_words(self, l: int) -> int:
        """``W_skip``: mask words of junction ``l``'s skip source: ``h·w·ceil(c/P)`` for a conv/pool source, else
        ``ceil(n_source / P)``."""
        source, _ = self.skip_of(l)
        geo = self.geometry(source)
        if geo:
            return geo.out_positions * -(-geo.c_out // self.lanes)
        return -(-self.layer_sizes[source] // self.lanes)

    def skip_weight_words(self, l: int) -> int:
        """Depth of junction ``l``'s skip weight memory: ``c_src·kh·kw·G_l`` (conv skip), ``W_skip·P·G_l`` (dense
        skip from a conv/pool source, rows in its hardware order), ``n_source·G_l`` (dense skip)."""
        source, geo = self.skip_of(l)
        if geo:
            return geo.c_in * geo.taps * self.groups(l)
        if self.geometry(source):
            return self.skip_words(l) * self.lanes * self.groups(l)
        return self.layer_sizes[source] * self.groups(l)

    # ------------------------------------------------------------------------------------------- geometry
    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def groups(self, l: int) -> int:
        """``G_l = ceil(n_l / P)`` lane groups of layer ``l`` (``l = 0`` gives the input's word count ``W_1`` of a
        dense first layer); for a conv/pool layer ``ceil(c_out / P)`` channel groups."""
        if not 0 <= l <= self.n_layers:
            raise SnnCosimError(f"layer {l} is not in 0..{self.n_layers}")
        if l and self.geometry(l):
            return -(-self.geometry(l).c_out // self.lanes)
        return -(-self.layer_sizes[l] // self.lanes)

    def geometry(self, l: int) -> Geometry | tuple[()]:
        """The conv/pool :class:`Geometry` of layer ``l``, ``()`` for dense."""
        return self.spatial[l - 1] if self.spatial else ()

    def plans(self):
        from golden import cycle_model

        return cycle_model.layer_plans(self.layer_sizes, self.spatial, self.lanes)

    def inhibits(self, l: int) -> bool:
        """True when layer ``l`` has the lateral-inhibition hardware."""
        return bool(self.inhibition) and bool(self.inhibition[l - 1])

    @property
    def spike_count_bits(self) -> int:
        """Width of the layer spike count n (and of m = n − s) in the INHIBIT pass: the largest inhibited layer."""
        return max(1, max((self.layer_sizes[l] for l in range(1, self.n_layers + 1) if self.inhibits(l)),
                          default=1).bit_length())

    def words(self, l: int) -> int:
        """``W_l``: spike-mask words layer ``l`` reads per step: ``ceil(n_{l-1} / P)`` (= ``groups(l - 1)``), or
        ``h·w·ceil(c/P)`` for a spatial source in hardware order."""
        if not self.spatial:
            return self.groups(l - 1)
        return self.plans()[l - 1].words

    def state_words(self, l: int) -> int:
        """Membrane / spike-mask words of layer ``l``: ``G_l``, or ``h_out·w_out·G_l`` for conv/pool."""
        if not self.spatial:
            return self.groups(l)
        return self.plans()[l - 1].state_words

    def spatial_source(self, l: int) -> bool:
        """True when layer ``l`` reads its source in hardware order (position-major, channel groups)."""
        return bool(self.spatial) and bool(self.geometry(l) or (l >= 2 and self.geometry(l - 1)))

    def weight_words(self, l: int) -> int:
        """Depth of layer ``l``'s weight memory: ``n_{l-1} · G_l`` (dense), ``W_l·P·G_l`` (dense reading a spatial
        source), ``c_in·kh·kw·G_l`` (conv), 1 (pool: the pool weight in every lane)."""
        geo = self.geometry(l)
        if geo:
            return 1 if geo.is_pool else geo.c_in * geo.taps * self.groups(l)
        if self.spatial_source(l):
            return self.words(l) * self.lanes * self.groups(l)
        return self.layer_sizes[l - 1] * self.groups(l)

    @property
    def max_groups(self) -> int:
        """Depth of the shared accumulator memory (the largest state depth)."""
        return max(self.state_words(l) for l in range(1, self.n_layers + 1))

    def hardware_order(self, l: int) -> np.ndarray:
        """``int64 [words · P]``: the neuron (torch flatten order (c, y, x)) at bit ``word·P + p`` of layer
        ``l``'s spike-mask / record words (``l = 0``: the input words on ``spike_in``), −1 for padding lanes.
        Spatial layers (and the input of a conv/pool layer 1) are position-major with channel groups: word
        ``q·G + g``, lane p is channel ``g·P + p`` at position ``q = y·w + x``."""
        P = self.lanes
        if l == 0 and self.geometry(1):
            c, h, w = self.geometry(1).in_shape
        elif l >= 1 and self.geometry(l):
            c, h, w = self.geometry(l).out_shape
        else:
            n = self.layer_sizes[l]
            order = np.arange(self.groups(l) * P, dtype=np.int64)
            order[n:] = -1
            return order
        G = -(-c // P)
        q, g, p = np.meshgrid(np.arange(h * w), np.arange(G), np.arange(P), indexing="ij")
        channel = g * P + p
        return np.where(channel < c, channel * (h * w) + q, -1).reshape(-1).astype(np.int64)

    def input_words(self, spikes) -> np.ndarray:
        """``bool [..., n_0]`` input spikes → ``object [..., W_1]`` spike_in words in the engine's input order
        (padding lanes 0)."""
        spikes = np.asarray(spikes, dtype=bool)
        order = self.hardware_order(0)
        bits = np.where(order >= 0, spikes[..., np.maximum(order, 0)], False)
        bits = bits.reshape(*spikes.shape[:-1], -1, self.lanes).astype(object)
        return sum(bits[..., p] << p for p in range(self.lanes))

    @property
    def cfg_data_bits(self) -> int:
        """Width of ``cfg_data``: the widest configuration word (weights, biases, thresholds, params, floor and,
        with weighted spikes, the 16-bit ``S·K``)."""
        p = self.lanes
        return max(p * self.weight_bits, p * self.bias_bits, p * self.threshold_bits, self.membrane_bits,
                   PARAM_BITS, STEP_BITS if self.phase_bits else 0)

    @property
    def fs(self) -> bool:
        """True for a build with the FS hardware (tables, FS lanes, image stream)."""
        return self.fs_shift_bits > 0

    @property
    def max_phases(self) -> int:
        """The largest K this build runs (0 without weighted-spike hardware)."""
        return 1 << self.phase_bits if self.phase_bits else 0

    def memories(self) -> list[tuple[str, int, int]]:
        """``(name, depth, width)`` of every memory of the engine (docs/hardware.md, "Resources")."""
        P, M = self.lanes, self.membrane_bits
        out = []
        for l in range(1, self.n_layers + 1):
            G = self.groups(l)
            S = self.state_words(l)
            out += [(f"weights_{l}", self.weight_words(l), P * self.weight_bits),
                    (f"bias_{l}", G, P * self.bias_bits), (f"threshold_{l}", G, P * self.threshold_bits),
                    (f"membrane_{l}", S, P * M)]
            if l < self.n_layers:
                out.append((f"spikes_{l}", S, P))
            if self.inhibits(l):
                out += [(f"inhibit_{l}", G, P * self.threshold_bits), (f"own_{l}", G, 2 * P)]
            if self.fs:
                K = self.max_phases
                if l < self.n_layers:
                    out += [(f"fs_threshold_{l}", K, M), (f"fs_reset_{l}", K, M)]
                out.append((f"fs_weight_{l}", K, self.fs_shift_bits + 1))
        for l in range(1, self.n_layers + 1):  # residual junctions: the skip pass's weights
            if self.skip_of(l):
                out.append((f"skip_weights_{l}", self.skip_weight_words(l), P * self.weight_bits))
        for l in range(1, self.n_layers + 1):  # conv/pool geometry ROMs (constants of the build)
            geo = self.geometry(l)
            if geo:
                from golden import cycle_model

                entries = max(1, sum(len(row) for row in cycle_model.reach_table(geo)))
                index_bits = max(1, entries.bit_length())
                out += [(f"reach_start_{l}", geo.in_positions + 1, index_bits),
                        (f"reach_end_{l}", geo.in_positions, index_bits),
                        (f"reach_oq_{l}", entries, max(1, (geo.out_positions * self.groups(l)).bit_length())),
                        (f"reach_tap_{l}", entries, max(1, (geo.taps * self.groups(l)).bit_length()))]
        out += [("out_counts", self.groups(self.n_layers), P * SPIKE_COUNT_BITS),
                ("acc", self.max_groups, P * self.acc_bits)]
        return out

    @property
    def memory_bits(self) -> int:
        return sum(depth * width for _, depth, width in self.memories())

    def fs_max_images(self, phases: int) -> int:
        """The most images one FS start may stream with K = ``phases``: its global steps ``2K·(N−1) + L·K`` must
        fit the 16-bit step counter (``rec_step``/``sum_step``); longer runs take several starts."""
        phases = int(phases)
        if not 1 <= phases <= max(self.max_phases, 1):
            raise SnnCosimError(f"K = {phases} is not in 1..{self.max_phases}")
        spare = (1 << STEP_BITS) - 1 - self.n_layers * phases
        return max(0, min(spare // (2 * phases) + 1, (1 << IMAGE_BITS) - 1))

    def layer_cycles(self, l: int, s_in: int) -> int:
        """``W_l + S_in·G_l + G_l + C_LAYER`` (docs/architecture.md), plus the INHIBIT pass ``G_l + C_INHIBIT``
        for a layer with inhibition hardware (assuming its params enable it)."""
        extra = self.groups(l) + 1 if self.inhibits(l) else 0
        return self.words(l) + s_in * self.groups(l) + self.groups(l) + self.c_layer + extra

    # ------------------------------------------------------------------------------------------- keys
    def as_dict(self) -> dict:
        """Every field; ``fs_shift_bits`` only when set, so builds without FS hardware keep their digests."""
        out = dataclasses.asdict(self) | {"layer_sizes": list(self.layer_sizes)}
        if not self.fs_shift_bits:
            del out["fs_shift_bits"]
        if not self.inhibition:
            del out["inhibition"]
        if not self.spatial:
            del out["spatial"]
        else:
            out["spatial"] = [list(g) for g in self.spatial]
        if not self.skips:
            del out["skips"]
        else:
            out["skips"] = [list(s) for s in self.skips]
        return out

    def digest(self) -> str:
        """A stable SHA-256 (hex, 16 characters) of every field: the Verilator build-cache key."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------------------- networks
    @classmethod
    def for_network(cls, net: IntegerNetwork, lanes: int = 8, **overrides) -> "EngineConfig":
        """The smallest engine that runs ``net`` with ``lanes`` lanes; ``overrides`` widen fields (e.g.
        ``acc_bits=32`` for a build that later networks of the same shape also fit). Raises if ``net`` does
        not fit the result."""
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
        config = cls(**fields)
        config.check_fits(net)
        return config

    def check_fits(self, net: IntegerNetwork) -> None:
        """Raise a one-line :class:`WidthError` (or :class:`UnsupportedLayerError`) unless ``net`` runs on this
        engine: same sizes, same membrane width, and every weight, bias, threshold and synaptic sum fits."""
        check_supported(net)
        if tuple(net.layer_sizes) != self.layer_sizes:
            raise WidthError(f"network layer sizes {list(net.layer_sizes)} differ from the engine's "
                             f"{list(self.layer_sizes)}")
        if _spatial_of(net) != self.spatial:
            raise WidthError(f"network conv/pool geometry {_spatial_of(net)} differs from the engine's "
                             f"{self.spatial}")
        if _skips_of(net) != self.skips:
            raise WidthError(f"network skip connections {_skips_of(net)} differ from the engine's {self.skips}")
        if net.membrane_bits != self.membrane_bits:
            raise WidthError(f"network membrane_bits={net.membrane_bits} differs from the engine's "
                             f"{self.membrane_bits} (saturation happens at that width, so they must be equal)")
        w_lo, w_hi = signed_range(self.weight_bits)
        b_lo, b_hi = signed_range(self.bias_bits)
        for index, layer in enumerate(net.layers, start=1):
            weight = np.asarray(layer.weight, dtype=np.int64)
            if weight.size and (weight.min() < w_lo or weight.max() > w_hi):
                raise WidthError(f"layer {index}: weights span [{weight.min()}, {weight.max()}] but the engine's "
                                 f"weight_bits={self.weight_bits} holds [{w_lo}, {w_hi}]")
            bias = np.asarray(layer.bias, dtype=np.int64)
            if bias.size and (bias.min() < b_lo or bias.max() > b_hi):
                raise WidthError(f"layer {index}: biases span [{bias.min()}, {bias.max()}] but the engine's "
                                 f"bias_bits={self.bias_bits} holds [{b_lo}, {b_hi}]")
            skip = net.skip_into(index) if getattr(net, "skips", None) else None
            skip_w = np.asarray(skip.weight, dtype=np.int64) if skip is not None else np.zeros(0, np.int64)
            if skip_w.size and (skip_w.min() < w_lo or skip_w.max() > w_hi):
                raise WidthError(f"layer {index}: skip weights span [{skip_w.min()}, {skip_w.max()}] but the engine's "
                                 f"weight_bits={self.weight_bits} holds [{w_lo}, {w_hi}]")
            theta = int(np.max(layer.threshold, initial=1))
            if theta >= 1 << self.threshold_bits:
                raise WidthError(f"layer {index}: threshold {theta} does not fit the engine's unsigned "
                                 f"threshold_bits={self.threshold_bits}")
            u = _inhibition(layer)
            if getattr(layer, "inhibition", None) is not None and not self.inhibits(index):
                raise UnsupportedLayerError(
                    f"layer {index} has lateral inhibition but the engine was built without inhibition hardware "
                    f"for it; build it with EngineConfig.for_network (inhibition={_inhibition_of(net)})")
            if u.size and int(u.max()) >= 1 << self.threshold_bits:
                raise WidthError(f"layer {index}: inhibition strength {int(u.max())} does not fit the engine's "
                                 f"unsigned threshold_bits={self.threshold_bits}")
            if layer.neuron.leak_shift >= 1 << LEAK_SHIFT_BITS:
                raise WidthError(f"layer {index}: leak_shift {layer.neuron.leak_shift} exceeds "
                                 f"{(1 << LEAK_SHIFT_BITS) - 1}")
        self._check_fs(net)
        self._check_phases(net)
        bound = _synaptic_bound(net)
        a_lo, a_hi = signed_range(self.acc_bits)
        if bound > a_hi:
            raise WidthError(f"a neuron's synaptic input plus bias can reach ±{bound} but the engine's "
                             f"acc_bits={self.acc_bits} holds [{a_lo}, {a_hi}]; use acc_bits="
                             f"{signed_bits_for(-bound, bound)}")

    def _check_fs(self, net: IntegerNetwork) -> None:
        """FS networks need the FS hardware, ``K ≤ 2^phase_bits`` and every spike weight a shift that fits."""
        if not _fs_layers(net):
            return
        if not self.fs:
            raise UnsupportedLayerError(
                f"the network uses FS neurons but the engine was built without FS hardware (fs_shift_bits=0); "
                f"build it with fs_shift_bits={fs_shift_bits_for(net)}")
        if net.phases > self.max_phases:
            raise WidthError(f"FS networks of K = {net.phases} steps need phase_bits={phase_bits_for(net.phases)} "
                             f"but the engine's phase_bits={self.phase_bits} runs at most K = {self.max_phases}")
        need = fs_shift_bits_for(net)  # raises for weights that are not signed powers of two
        if need > self.fs_shift_bits:
            raise WidthError(f"the network's FS spike weights need shifts of fs_shift_bits={need} but the engine "
                             f"has fs_shift_bits={self.fs_shift_bits}")

    def _check_phases(self, net: IntegerNetwork) -> None:
        """Weighted-spike layers need the phase hardware, ``K ≤ 2^phase_bits`` and ``S·K`` in a step number."""
        weighted = _weighted_layers(net)
        if not weighted:
            return
        index, kind = weighted[0]
        if not self.phase_bits:
            raise UnsupportedLayerError(
                f"layer {index} is a weighted-spike {kind!r} layer but the engine was built without weighted-spike "
                f"hardware (phase_bits=0); build it with phase_bits={phase_bits_for(net.phases)}")
        if net.phases > self.max_phases:
            raise WidthError(f"K = {net.phases} phases need phase_bits={phase_bits_for(net.phases)} but the "
                             f"engine's phase_bits={self.phase_bits} runs at most K = {self.max_phases}")
        skip_last = net.skip_periods * net.phases
        if skip_last >= 1 << STEP_BITS:
            raise WidthError(f"S·K = {net.skip_periods}·{net.phases} = {skip_last} skipped steps do not fit the "
                             f"{STEP_BITS}-bit step counter (at most {(1 << STEP_BITS) - 1})")
