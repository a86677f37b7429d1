"""The integer network: the one description that the golden model simulates and the hardware is built from.

SPEC §1: the RTL sees integers only. Conversion (``golden.conversion.convert``) produces an :class:`IntegerNetwork`; the
integer simulator (``golden.simulation.simulate``), the hardware elaboration (``hw``) and the co-simulation (``cosim``) all
read this object. This module holds the data and its validation (:meth:`IntegerNetwork.validate`); the versioned,
integer-only file format (``docs/file-format.md``) is :mod:`golden.core.network_file`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from golden.core.errors import NetworkFileError, WidthError
from golden.core.schema import Fields, show

NeuronKind = Literal["if", "lif", "ws", "acc", "fs"]
ResetMode = Literal["zero", "subtract"]
InputCoding = Literal["rate", "direct", "weighted", "fs"]
NEURON_KINDS = ("if", "lif", "ws", "acc", "fs")
INPUT_CODINGS = ("rate", "direct", "weighted", "fs")
FS_TABLE_FIELDS = ("fs_threshold", "fs_reset", "fs_weight")
MAX_PHASES = 16  # K: input codes of K bits (input_bits <= 16), a 4-bit phase counter
RESET_MODES = ("zero", "subtract")
LAYER_KINDS = ("dense", "conv2d", "avgpool2d")
SKIP_KINDS = ("dense", "conv2d")


def signed_range(bits: int) -> tuple[int, int]:
    """Inclusive range of a two's-complement number of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi] (at least 2)."""
    bits = 2
    while not (signed_range(bits)[0] <= lo and hi <= signed_range(bits)[1]):
        bits += 1
    return bits


def _table_entry(value):
    """A table entry as a plain Python number (numpy scalars unwrapped; floats kept for float networks)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _as_table(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    try:
        return tuple(_table_entry(v) for v in value)
    except TypeError:
        raise NetworkFileError(f"an FS table must be a sequence of numbers, got {value!r}") from None


@dataclass(frozen=True)
class NeuronParams:
    """Per-layer neuron model (SPEC §3). ``leak_shift`` is used by LIF only; ``floor`` is optional (LIF, Lee 2016).

    ``ws`` is Kim 2018's weighted-spike neuron in the bit-shift scaled form (reset by subtracting the phase
    threshold ``θ << (K−k)``); ``acc`` is the non-spiking output accumulator of a weighted-spike or FS network
    (weighted: ``v += I << (K−k)`` for ``t > S·K``; FS: it collects in the last window; class = argmax v). Both
    need ``IntegerNetwork.phases`` = K ≥ 1.

    ``fs`` is Stöckl & Maass 2021's few-spikes neuron (docs/spec.md §3b): ``fs_threshold`` = (T_1..T_K),
    ``fs_reset`` = (h_1..h_K) and ``fs_weight`` = (d_1..d_K), integer tuples of length K (lists, e.g. from YAML,
    become tuples). ``T``/``h`` are the activation's table times the layer's integer scale; ``d`` is the weight
    the layer's output spikes carry into the next layer's COLLECT. The ``reset`` field is ignored by ``fs``
    (it always subtracts h[t]). The tables are empty for every other kind."""

    kind: NeuronKind = "if"
    reset: ResetMode = "zero"
    leak_shift: int = 0
    floor: int | None = None
    fs_threshold: tuple = ()
    fs_reset: tuple = ()
    fs_weight: tuple = ()
    floor_threshold: bool = False  # IF/LIF: after saturation v = max(v, −θ_j), the neuron's own threshold (Lee 2016)

    def __post_init__(self) -> None:
        for name in FS_TABLE_FIELDS:
            object.__setattr__(self, name, _as_table(getattr(self, name)))

    def validate(self, membrane_bits: int, where: str) -> None:
        if self.kind not in NEURON_KINDS:
            raise NetworkFileError(f"{where}: neuron kind {self.kind!r} is not one of "
                                   f"{', '.join(repr(k) for k in NEURON_KINDS)}")
        if self.kind == "ws" and self.reset != "subtract":
            raise NetworkFileError(f"{where}: a weighted-spike neuron resets by subtraction (Kim 2018 Eq. 10)")
        if self.kind in ("ws", "acc", "fs") and (self.leak_shift != 0 or self.floor is not None):
            raise NetworkFileError(f"{where}: {self.kind} neurons have no leak and no floor")
        if self.reset not in ("zero", "subtract"):
            raise NetworkFileError(f"{where}: reset {self.reset!r} is not one of 'zero', 'subtract'")
        if self.kind == "lif" and not 1 <= self.leak_shift < membrane_bits:
            raise WidthError(
                f"{where}: LIF leak_shift must be in 1..{membrane_bits - 1} for membrane_bits={membrane_bits}, "
                f"got {self.leak_shift}")
        if self.kind == "if" and self.leak_shift != 0:
            raise NetworkFileError(f"{where}: an IF neuron has no leak; leak_shift must be 0")
        if not isinstance(self.floor_threshold, (bool, np.bool_)):
            raise NetworkFileError(f"{where}: floor_threshold must be true or false, got {self.floor_threshold!r}")
        if self.floor_threshold and self.kind not in ("if", "lif"):
            raise NetworkFileError(f"{where}: floor_threshold (v >= −θ) belongs to IF/LIF neurons, not {self.kind!r}")
        if self.floor_threshold and self.floor is not None:
            raise NetworkFileError(f"{where}: floor and floor_threshold exclude each other (one membrane floor)")
        if self.floor is not None:
            lo, hi = signed_range(membrane_bits)
            if not lo <= self.floor <= 0:
                raise WidthError(f"{where}: membrane floor {self.floor} must lie in [{lo}, 0]")
        self._validate_fs_tables(membrane_bits, where)

    def _validate_fs_tables(self, membrane_bits: int, where: str) -> None:
        tables = {name: getattr(self, name) for name in FS_TABLE_FIELDS}
        if self.kind != "fs":
            given = [name for name, table in tables.items() if table]
            if given:
                raise NetworkFileError(f"{where}: {', '.join(given)} belong to FS neurons (kind 'fs'), not "
                                       f"{self.kind!r}")
            return
        lengths = {len(table) for table in tables.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise NetworkFileError(
                f"{where}: an FS neuron needs fs_threshold, fs_reset and fs_weight of the same length K >= 1, got "
                f"lengths {', '.join(str(len(t)) for t in tables.values())}")
        lo, hi = signed_range(membrane_bits)
        for name, table in tables.items():
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in table):
                raise NetworkFileError(f"{where}: {name} must hold integers, got {list(table)}")
            if min(table) < lo or max(table) > hi:
                need = signed_bits_for(min(table), max(table))
                raise WidthError(f"{where}: {name} spans [{min(table)}, {max(table)}] but membrane_bits="
                                 f"{membrane_bits} holds [{lo}, {hi}]; use membrane_bits={need}")

    @property
    def spiking(self) -> bool:
        """False for the non-spiking output accumulator."""
        return self.kind != "acc"

    @property
    def fs_phases(self) -> int:
        """K of an FS neuron (the table length), 0 for other kinds."""
        return len(self.fs_threshold) if self.kind == "fs" else 0

    def to_dict(self) -> dict:
        """Plain-Python form for the file format: the FS tables (as lists) only for FS neurons."""
        out = {"kind": str(self.kind), "reset": str(self.reset), "leak_shift": int(self.leak_shift),
               "floor": None if self.floor is None else int(self.floor)}
        if self.floor_threshold:
            out["floor_threshold"] = True
        if self.kind == "fs" or any(getattr(self, name) for name in FS_TABLE_FIELDS):
            out.update({name: [int(v) for v in getattr(self, name)] for name in FS_TABLE_FIELDS})
        return out

    def check_fields(self, where: str) -> None:
        """The types of the fields (the file's schema for a neuron built in Python): kind and reset from their
        lists, leak_shift an integer, floor an integer or None — never a bool, a float or a string."""
        f = Fields()
        f.choice(self.kind, f"{where}: neuron.kind", NEURON_KINDS)
        f.choice(self.reset, f"{where}: neuron.reset", RESET_MODES)
        f.integer(self.leak_shift, f"{where}: neuron.leak_shift")
        if self.floor is not None:
            f.integer(self.floor, f"{where}: neuron.floor")
        f.boolean(self.floor_threshold, f"{where}: neuron.floor_threshold")


@dataclass(frozen=True)
class DenseLayer:
    """Fully connected spiking layer: ``I_j = Σ_i W[j, i]·x_i + bias_j`` then the neuron model.

    ``inhibition`` (optional, IF/LIF only): per-neuron WTA strengths ``u_j`` (int64 ``[n_out]``, ``0 ≤ u_j ≤
    2^(M−1)−1``); after the neuron update of a step every neuron i loses ``u_i·m_i``, ``m_i`` = spikes of the
    other neurons of the layer at that step (docs/spec.md §3c; Lee 2016 exports ``u_j = round(|κ|·θ_j)``)."""

    weight: np.ndarray  # int64 (n_out, n_in)
    bias: np.ndarray  # int64 (n_out,)
    threshold: np.ndarray  # int64 (n_out,), every entry >= 1
    neuron: NeuronParams = NeuronParams()
    name: str = ""
    inhibition: np.ndarray | None = None  # int64 (n_out,): WTA strengths u_j, or None

    kind = "dense"

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.n_out,)

    def fan_in_abs_max(self) -> int:
        """Largest Σ_i |W[j, i]| over neurons j: bounds the synaptic input of one step (binary spikes)."""
        return int(np.abs(self.weight).sum(axis=1).max(initial=0))


@dataclass(frozen=True)
class Conv2dLayer:
    """2-D convolution (cross-correlation as in torch) with stride and zero padding; thresholds per out channel."""

    weight: np.ndarray  # int64 (c_out, c_in, kh, kw)
    bias: np.ndarray  # int64 (c_out,)
    threshold: np.ndarray  # int64 (c_out,)
    in_shape: tuple[int, int, int]  # (c_in, h, w)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    neuron: NeuronParams = NeuronParams()
    name: str = ""

    kind = "conv2d"

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c_out, _, kh, kw = self.weight.shape
        _, h, w = self.in_shape
        ho = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
        return (int(c_out), int(ho), int(wo))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def fan_in_abs_max(self) -> int:
        return int(np.abs(self.weight).reshape(self.weight.shape[0], -1).sum(axis=1).max(initial=0))


@dataclass(frozen=True)
class AvgPool2dLayer:
    """Average pooling as spiking neurons: every input in the window adds the integer ``weight``; per-channel θ."""

    weight: int
    threshold: np.ndarray  # int64 (c,)
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    neuron: NeuronParams = NeuronParams()
    name: str = ""

    kind = "avgpool2d"

    @property
    def bias(self) -> np.ndarray:
        return np.zeros(self.in_shape[0], dtype=np.int64)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, (h - self.kernel[0]) // self.stride[0] + 1, (w - self.kernel[1]) // self.stride[1] + 1)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def fan_in_abs_max(self) -> int:
        return abs(int(self.weight)) * self.kernel[0] * self.kernel[1]


Layer = DenseLayer | Conv2dLayer | AvgPool2dLayer


def layer_inhibition(layer: Layer) -> np.ndarray | None:
    """The WTA strengths of a layer with lateral inhibition (:attr:`DenseLayer.inhibition`); ``None`` for a dense
    layer without and for every conv2d / avgpool2d layer (they have no inhibition)."""
    return layer.inhibition if layer.kind == "dense" else None


@dataclass(frozen=True)
class SkipConnection:
    """A residual shortcut (Sengupta 2019 §6): junction layer ``target`` (1-based) receives, besides layer
    ``target−1``'s spikes, the spikes that layer ``source`` emitted at the **same** step through its own integer
    synapses (``source`` = 0 is the network input; ``source ≤ target − 2``). The junction neuron integrates the
    sum of both synaptic inputs (exact), then its normal neuron model (docs/spec.md §4a). In an FS network the
    source's fire-window spikes arrive delayed by ``(target − source − 1)·K`` steps, in the junction's collect
    window, weighted by the source's d[t] (docs/spec.md §3b, "Residual junctions in FS networks").

    ``weight``: for a dense target ``[n_target, n_source]`` (the source flattened in (c, h, w) order); for a
    conv2d target ``[c_out, c_source, kh, kw]``, a convolution of the source's spike map with ``stride`` and zero
    ``padding`` whose output shape must equal the target's (an identity shortcut is a 1×1 kernel holding an
    integer scale on its diagonal; a downsampling shortcut a 1×1 kernel of stride 2). At most one skip per
    target layer; pooling layers take none."""

    target: int
    source: int
    weight: np.ndarray  # int64 [n_target, n_source] or [c_out, c_source, kh, kw]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def kind(self) -> str:
        return "conv2d" if np.ndim(self.weight) == 4 else "dense"

    def as_layer(self, in_shape: tuple[int, ...]) -> "DenseLayer | Conv2dLayer":
        """The skip's synapses as a layer object (zero bias, unit thresholds) reading a source of ``in_shape``:
        lets the simulator, counters and cycle model reuse the dense / conv machinery."""
        weight = np.asarray(self.weight)
        n = weight.shape[0]
        ones = np.ones(n, dtype=np.int64)
        zeros = np.zeros(n, dtype=weight.dtype if np.issubdtype(weight.dtype, np.floating) else np.int64)
        if self.kind == "conv2d":
            return Conv2dLayer(weight, zeros, ones, tuple(int(v) for v in in_shape), tuple(self.stride),
                               tuple(self.padding), name=f"skip{self.source}->{self.target}")
        return DenseLayer(weight, zeros, ones, name=f"skip{self.source}->{self.target}")

    def to_dict(self) -> dict:
        out = {"target": int(self.target), "source": int(self.source), "kind": self.kind}
        if self.kind == "conv2d":
            out.update(stride=[int(v) for v in self.stride], padding=[int(v) for v in self.padding])
        return out


def identity_skip(target: int, source: int, channels: int, scale: int = 1, stride: int = 1) -> SkipConnection:
    """An identity (``stride`` 1) or strided-identity (downsampling, Sengupta's type-A without zero channels)
    shortcut of ``channels`` channels whose every synapse has the integer weight ``scale``."""
    weight = np.zeros((channels, channels, 1, 1), dtype=np.int64)
    weight[np.arange(channels), np.arange(channels), 0, 0] = int(scale)
    return SkipConnection(int(target), int(source), weight, (int(stride), int(stride)), (0, 0))


@dataclass
class IntegerNetwork:
    """A converted (or directly trained) spiking network in integers only.

    ``input_shape`` is the shape of one input sample (``(784,)`` or ``(c, h, w)``). Inputs are integer codes in
    ``[0, 2**input_bits - 1]``: with ``input_coding == "rate"`` each code becomes Bernoulli spikes of probability
    ``max_rate * code / (2**input_bits - 1)`` per step; with ``"direct"`` the first layer receives the code
    itself every step (its products count as MACs); with ``"weighted"`` (Kim 2018) ``input_bits == phases`` = K and
    the code emits bit ``K−k`` at phase ``k = 1 + (t−1) mod K`` (MSB first). Layer ``l`` consumes the spikes of
    layer ``l-1`` (layer 0 is the input). Dense layers flatten their input. ``phases`` (K) and ``skip_periods``
    (S, output integration starts at t > S·K) are 0 for networks without weighted-spike layers.

    FS networks (Stöckl & Maass 2021, docs/spec.md §3b): ``input_coding == "fs"``, ``phases`` = K = ``input_bits``
    (codes sent MSB first during window 1), hidden layers ``kind="fs"`` with tables of length K, the output layer
    ``kind="acc"`` (it collects in window L and never fires); one image takes L·K steps.
    """

    input_shape: tuple[int, ...]
    layers: list[Layer]
    weight_bits: int = 8
    membrane_bits: int = 24
    input_coding: InputCoding = "rate"
    input_bits: int = 8
    metadata: dict = field(default_factory=dict)
    phases: int = 0
    skip_periods: int = 0
    skips: list = field(default_factory=list)  # SkipConnection residual shortcuts (sorted by target)

    # ----------------------------------------------------------------------------------------------- shape
    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def layer_sizes(self) -> list[int]:
        """[n_0 (inputs), n_1, ..., n_L]."""
        return [self.n_inputs] + [layer.n_out for layer in self.layers]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    def layer_shape(self, index: int) -> tuple[int, ...]:
        """Shape of layer ``index``'s spikes (0: the input)."""
        return tuple(self.input_shape) if index == 0 else tuple(self.layers[index - 1].out_shape)

    def skip_into(self, target: int) -> "SkipConnection | None":
        """The skip connection whose junction is layer ``target`` (1-based), or None."""
        for skip in self.skips:
            if skip.target == target:
                return skip
        return None

    def skip_layer(self, skip: SkipConnection):
        """``skip``'s synapses as a dense / conv layer object reading its source (see SkipConnection.as_layer)."""
        return skip.as_layer(self.layer_shape(skip.source))

    # ----------------------------------------------------------------------------------------------- checks
    def validate(self) -> "IntegerNetwork":
        """Check the fields' types (the file format's schema, docs/file-format.md: integers are never bools,
        floats or strings), shapes, integer arrays and that every number fits its width (SPEC §1). Returns
        ``self``; :meth:`save` calls it, :meth:`load` too (after the manifest's own schema)."""
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise NetworkFileError("the network has no layers")
        self._check_fields()
        if not 2 <= self.weight_bits <= 32:
            raise WidthError(f"weight_bits must be in 2..32, got {self.weight_bits}")
        if not 4 <= self.membrane_bits <= 62:
            raise WidthError(f"membrane_bits must be in 4..62, got {self.membrane_bits}")
        if self.input_coding not in INPUT_CODINGS:
            raise NetworkFileError(f"input_coding {self.input_coding!r} is not one of "
                                   f"{', '.join(repr(c) for c in INPUT_CODINGS)}")
        self._validate_phases()
        if not 1 <= self.input_bits <= 16:
            raise WidthError(f"input_bits must be in 1..16, got {self.input_bits}")
        w_lo, w_hi = signed_range(self.weight_bits)
        v_lo, v_hi = signed_range(self.membrane_bits)
        n_prev = self.n_inputs
        shape_prev: tuple[int, ...] = tuple(self.input_shape)
        for index, layer in enumerate(self.layers, start=1):
            where = f"layer {index} ({layer.kind}{' ' + layer.name if layer.name else ''})"
            self._check_layer_shape(layer, where)
            if layer.kind == "dense":
                if layer.weight.ndim != 2 or layer.n_in != n_prev:
                    raise NetworkFileError(
                        f"{where}: weight shape {tuple(layer.weight.shape)} does not take {n_prev} inputs")
            else:
                if tuple(layer.in_shape) != tuple(shape_prev):
                    raise NetworkFileError(f"{where}: input shape {tuple(layer.in_shape)} != {tuple(shape_prev)}")
            for array_name in ("weight", "bias", "threshold"):
                arr = np.asarray(getattr(layer, array_name))
                if not np.issubdtype(arr.dtype, np.integer):
                    raise NetworkFileError(f"{where}: {array_name} must be integers, got {arr.dtype}")
            weights = np.asarray(layer.weight)
            if weights.size and (weights.min() < w_lo or weights.max() > w_hi):
                raise WidthError(
                    f"{where}: weights span [{weights.min()}, {weights.max()}] but weight_bits={self.weight_bits} "
                    f"holds [{w_lo}, {w_hi}]; use weight_bits={signed_bits_for(int(weights.min()), int(weights.max()))}")
            thr = np.asarray(layer.threshold)
            expected = (layer.n_out,) if layer.kind == "dense" else (layer.out_shape[0],)
            if thr.shape != expected:
                raise NetworkFileError(f"{where}: threshold shape {thr.shape} != {expected}")
            if thr.min() < 1:
                raise NetworkFileError(f"{where}: thresholds must be at least 1 (a neuron fires when v >= θ), got "
                                       f"{int(thr.min())}")
            if thr.max() > v_hi:
                raise WidthError(
                    f"{where}: thresholds span [{thr.min()}, {thr.max()}] but must lie in [1, {v_hi}] "
                    f"(membrane_bits={self.membrane_bits}); use membrane_bits="
                    f"{signed_bits_for(0, int(thr.max()))}")
            bias = np.asarray(layer.bias)
            if bias.shape != expected:
                raise NetworkFileError(f"{where}: bias shape {bias.shape} != {expected}")
            if bias.size and (bias.min() < v_lo or bias.max() > v_hi):
                raise WidthError(f"{where}: biases do not fit membrane_bits={self.membrane_bits}")
            layer.neuron.validate(self.membrane_bits, where)
            self._check_inhibition(layer, where)
            if layer.neuron.kind == "acc" and index != len(self.layers):
                raise NetworkFileError(f"{where}: the non-spiking accumulator ('acc') can only be the output layer")
            if self.is_fs:
                self._check_fs_layer(layer, index, where)
            elif layer.neuron.kind in ("ws", "acc"):
                self._check_phase_headroom(layer, where)
            n_prev = layer.n_out
            shape_prev = layer.out_shape
        self._validate_skips()
        return self

    def _check_fields(self) -> None:
        """The schema of docs/file-format.md for a network built in Python: the same types the manifest needs."""
        f = Fields()
        f.int_list(self.input_shape, "input_shape", (1, 3), 1)
        for name in ("input_bits", "weight_bits", "membrane_bits", "phases", "skip_periods"):
            f.integer(getattr(self, name), name)
        f.choice(self.input_coding, "input_coding", INPUT_CODINGS)
        if not isinstance(self.metadata, dict):
            f.fail("metadata", f"must be a dict, got {show(self.metadata)}")
        for index, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, (DenseLayer, Conv2dLayer, AvgPool2dLayer)):
                f.fail(f"layer {index}", f"must be a DenseLayer, Conv2dLayer or AvgPool2dLayer, got "
                                         f"{type(layer).__name__}")
            where = f"layer {index} ({layer.kind})"
            f.string(layer.name, f"{where}: name")
            if not isinstance(layer.neuron, NeuronParams):
                f.fail(f"{where}: neuron", f"must be a NeuronParams, got {type(layer.neuron).__name__}")
            layer.neuron.check_fields(where)
            if layer.kind == "conv2d":
                f.int_list(layer.in_shape, f"{where}: in_shape", (3,), 1)
                f.int_list(layer.stride, f"{where}: stride", (2,), 1)
                f.int_list(layer.padding, f"{where}: padding", (2,), 0)
            elif layer.kind == "avgpool2d":
                f.integer(layer.weight, f"{where}: weight")
                f.int_list(layer.kernel, f"{where}: kernel", (2,), 1)
                f.int_list(layer.stride, f"{where}: stride", (2,), 1)
                f.int_list(layer.in_shape, f"{where}: in_shape", (3,), 1)

    @staticmethod
    def _check_layer_shape(layer: Layer, where: str) -> None:
        """A weight of the right rank with no empty dimension, a conv kernel taking the input's channels, and a
        non-empty output (a layer of 0 neurons is refused)."""
        if layer.kind != "avgpool2d":
            weight = np.asarray(layer.weight)
            rank, form = (2, "[n_out, n_in]") if layer.kind == "dense" else (4, "[c_out, c_in, kh, kw]")
            if weight.ndim != rank:
                raise NetworkFileError(f"{where}: weight must have the shape {form}, got {tuple(weight.shape)}")
            if 0 in weight.shape:
                raise NetworkFileError(f"{where}: weight shape {tuple(weight.shape)} is empty; a layer needs at "
                                       f"least one neuron and one input")
            if layer.kind == "conv2d" and weight.shape[1] != layer.in_shape[0]:
                raise NetworkFileError(f"{where}: weight takes {weight.shape[1]} input channels, the input "
                                       f"{tuple(layer.in_shape)} has {layer.in_shape[0]}")
        if min(layer.out_shape) < 1:
            raise NetworkFileError(f"{where}: output shape {tuple(layer.out_shape)} is empty (the window is larger "
                                   f"than the padded input); a layer needs at least one neuron")

    def _check_inhibition(self, layer: Layer, where: str) -> None:
        """WTA strengths u_j of a dense IF/LIF layer (docs/spec.md §3c): integers in [0, 2^(M−1)−1], shape [n_out]."""
        inhibition = layer_inhibition(layer)
        if inhibition is None:
            return
        if layer.neuron.kind not in ("if", "lif"):
            raise NetworkFileError(f"{where}: lateral inhibition needs IF/LIF neurons, not {layer.neuron.kind!r}")
        arr = np.asarray(inhibition)
        if not np.issubdtype(arr.dtype, np.integer):
            raise NetworkFileError(f"{where}: inhibition must be integers, got {arr.dtype}")
        if arr.shape != (layer.n_out,):
            raise NetworkFileError(f"{where}: inhibition shape {arr.shape} != {(layer.n_out,)}")
        v_hi = signed_range(self.membrane_bits)[1]
        if arr.size and (arr.min() < 0 or arr.max() > v_hi):
            raise WidthError(
                f"{where}: inhibition strengths span [{arr.min()}, {arr.max()}] but must lie in [0, {v_hi}] "
                f"(membrane_bits={self.membrane_bits}); use membrane_bits={signed_bits_for(0, max(int(arr.max()), 1))}")

    def _validate_skips(self) -> None:
        """Residual shortcuts: source/target indices, one per junction, weight shapes and widths."""
        if not isinstance(self.skips, (list, tuple)):
            raise NetworkFileError(f"skips must be a list of SkipConnection, got {type(self.skips).__name__}")
        self.skips = sorted(self.skips, key=lambda s: int(s.target))
        w_lo, w_hi = signed_range(self.weight_bits)
        seen = set()
        n_layers = len(self.layers)
        for skip in self.skips:
            if not isinstance(skip, SkipConnection):
                raise NetworkFileError(f"skips must hold SkipConnection objects, got {type(skip).__name__}")
            where = f"skip connection {skip.source} -> {skip.target}"
            if not (isinstance(skip.target, (int, np.integer)) and isinstance(skip.source, (int, np.integer))):
                raise NetworkFileError(f"{where}: source and target must be layer indices (integers)")
            if not 1 <= skip.target <= n_layers:
                raise NetworkFileError(f"{where}: target must be a layer 1..{n_layers}")
            if not 0 <= skip.source <= skip.target - 2:
                raise NetworkFileError(f"{where}: the source must be the input (0) or a layer before "
                                       f"{skip.target - 1} (layer {skip.target - 1} is the junction's main input)")
            if skip.target in seen:
                raise NetworkFileError(f"{where}: layer {skip.target} already has a skip connection (one per junction)")
            seen.add(skip.target)
            if skip.source == 0 and self.input_coding == "direct":
                raise NetworkFileError(f"{where}: a skip from a 'direct'-coded input is not supported (the input "
                                       f"is codes, not spikes)")
            target = self.layers[skip.target - 1]
            src_shape = self.layer_shape(skip.source)
            weight = np.asarray(skip.weight)
            if not np.issubdtype(weight.dtype, np.integer):
                raise NetworkFileError(f"{where}: weight must be integers, got {weight.dtype}")
            if target.kind == "avgpool2d":
                raise NetworkFileError(f"{where}: a pooling layer cannot be a residual junction")
            if target.kind == "dense":
                n_src = int(np.prod(src_shape))
                if weight.shape != (target.n_out, n_src):
                    raise NetworkFileError(f"{where}: a dense junction takes a [{target.n_out}, {n_src}] skip "
                                           f"weight, got {tuple(weight.shape)}")
            else:
                if weight.ndim != 4 or len(src_shape) != 3:
                    raise NetworkFileError(f"{where}: a conv2d junction takes a conv skip [c_out, c_in, kh, kw] from "
                                           f"a (c, h, w) source, got weight {tuple(weight.shape)}, source {src_shape}")
                if len(tuple(skip.stride)) != 2 or len(tuple(skip.padding)) != 2 or min(skip.stride) < 1 \
                        or min(skip.padding) < 0:
                    raise NetworkFileError(f"{where}: stride must be two positive and padding two non-negative "
                                           f"integers, got {skip.stride}, {skip.padding}")
                if weight.shape[1] != src_shape[0]:
                    raise NetworkFileError(f"{where}: weight takes {weight.shape[1]} input channels, the source "
                                           f"has {src_shape[0]}")
                out = skip.as_layer(src_shape).out_shape
                if tuple(out) != tuple(target.out_shape):
                    raise NetworkFileError(f"{where}: the skip produces shape {tuple(out)} but the junction's "
                                           f"output is {tuple(target.out_shape)}")
            if weight.size and (weight.min() < w_lo or weight.max() > w_hi):
                raise WidthError(
                    f"{where}: weights span [{weight.min()}, {weight.max()}] but weight_bits={self.weight_bits} "
                    f"holds [{w_lo}, {w_hi}]; use weight_bits={signed_bits_for(int(weight.min()), int(weight.max()))}")
            if target.neuron.kind in ("ws", "acc") and not self.is_fs:  # FS junctions: docs/spec.md §3b
                layer = self.skip_layer(skip)
                v_hi = signed_range(self.membrane_bits)[1]
                need = (target.fan_in_abs_max() + layer.fan_in_abs_max()
                        + int(np.max(np.abs(target.bias)))) << (self.phases - 1)
                if need > v_hi:
                    raise WidthError(f"{where}: with K = {self.phases} phases one step's input {need} does not fit "
                                     f"membrane_bits={self.membrane_bits}; use membrane_bits="
                                     f"{signed_bits_for(-need, need)}")

    @property
    def is_fs(self) -> bool:
        """True for an FS network (input coding "fs" or any 'fs' layer; docs/spec.md §3b)."""
        return self.input_coding == "fs" or any(layer.neuron.kind == "fs" for layer in self.layers)

    @property
    def fs_latency(self) -> int:
        """Steps of one image of an FS network, L·K (0 for other networks)."""
        return len(self.layers) * self.phases if self.is_fs else 0

    def _validate_fs(self) -> None:
        if not isinstance(self.phases, int) or not 1 <= self.phases <= MAX_PHASES:
            raise WidthError(f"FS neurons need phases K in 1..{MAX_PHASES} (input codes of K bits), got "
                             f"{self.phases}")
        if self.skip_periods:
            raise NetworkFileError(f"skip_periods belongs to weighted spikes; an FS network needs 0, got "
                                   f"{self.skip_periods}")
        if self.input_coding != "fs":
            raise NetworkFileError(f"an FS network needs input_coding 'fs' (codes sent MSB first in window 1), "
                                   f"got {self.input_coding!r}")
        if self.input_bits != self.phases:
            raise WidthError(f"FS input codes have K = {self.phases} bits, but input_bits = {self.input_bits}")
        last = len(self.layers)
        for index, layer in enumerate(self.layers, start=1):
            kind = layer.neuron.kind
            want = "acc" if index == last else "fs"
            if kind != want:
                raise NetworkFileError(
                    f"layer {index}: an FS network has 'fs' hidden layers and an 'acc' output layer, got {kind!r}")

    def _check_fs_layer(self, layer: Layer, index: int, where: str) -> None:
        """FS tables of length K (docs/spec.md §3b); their entries were checked against membrane_bits."""
        if layer.neuron.kind == "fs" and layer.neuron.fs_phases != self.phases:
            raise NetworkFileError(f"{where}: FS tables have {layer.neuron.fs_phases} entries but phases K = "
                                   f"{self.phases}")

    def _validate_phases(self) -> None:
        if self.is_fs:
            self._validate_fs()
            return
        kinds = {layer.neuron.kind for layer in self.layers}
        weighted = self.input_coding == "weighted" or bool(kinds & {"ws", "acc"})
        if not weighted:
            if self.phases or self.skip_periods:
                raise NetworkFileError("phases/skip_periods are set but no layer uses weighted spikes")
            return
        if not 1 <= self.phases <= 16:
            raise WidthError(f"weighted spikes need phases K in 1..16, got {self.phases}")
        if self.skip_periods < 0:
            raise NetworkFileError(f"skip_periods must be >= 0, got {self.skip_periods}")
        if self.input_coding == "weighted" and self.input_bits != self.phases:
            raise WidthError(f"weighted input codes have K = {self.phases} bits, but input_bits = {self.input_bits}")

    def _check_phase_headroom(self, layer: Layer, where: str) -> None:
        """The phase-1 threshold θ << (K−1) and one step's input I << (K−1) must be representable (SPEC §3 WS)."""
        v_hi = signed_range(self.membrane_bits)[1]
        shift = self.phases - 1
        need = max(int(np.max(layer.threshold)), layer.fan_in_abs_max() + int(np.max(np.abs(layer.bias)))) << shift
        if need > v_hi:
            extra = f"the membrane needs {shift} extra bit{'s' if shift > 1 else ''}: " if shift else ""
            raise WidthError(
                f"{where}: with K = {self.phases} phase{'s' if self.phases > 1 else ''} {extra}the largest threshold "
                f"or one step's input, {need}, does not fit membrane_bits={self.membrane_bits}; use membrane_bits="
                f"{signed_bits_for(-need, need)}")

    # ----------------------------------------------------------------------------------------------- file format
    def save(self, path: str | os.PathLike, *, force: bool = False, option: str = "output") -> Path:
        """Write the network as a directory ``path`` (``network.yaml`` + ``arrays.npz``), atomically; an earlier
        network directory there is replaced, an earlier snncosim output of another kind only with ``force``, a
        user's file or directory never (:func:`golden.core.network_file.save_network`)."""
        return network_file.save_network(self, path, force=force, option=option)

    def digest(self) -> str:
        """SHA-256 (hex) of what the network computes: every manifest field except the free-form ``metadata``,
        and every array (:func:`golden.core.network_file.network_digest`). Validates the network first."""
        return network_file.network_digest(self)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "IntegerNetwork":
        """Read a network directory written by :meth:`save`; every defect is one line naming the file and the
        field or array (:func:`golden.core.network_file.load_network`)."""
        return network_file.load_network(path)


# the file format reads and writes the classes above
from golden.core import network_file  # noqa: E402
