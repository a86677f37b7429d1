"""NIR graph (the ``nir`` package) → IntegerNetwork (docs/nir.md).

Maps, per spiking layer (one IF/LIF node and the synapse nodes before it):

* ``Affine`` / ``Linear`` (bias 0) → a dense layer (a ``Flatten`` before it is implied by the dense layer);
* ``Conv2d`` (groups 1, dilation 1, integer or ``valid``/``same`` padding) → a conv2d layer;
* ``SumPool2d`` / ``AvgPool2d`` (no padding) followed by the neuron node → an avgpool2d layer; a pool followed by
  an ``Affine`` is folded into its weights (exact), one followed by a ``Conv2d`` too where that is exact
  (pool stride = kernel, and no conv padding or a map that the kernel divides);
* ``IF`` → ``NeuronParams("if", "zero")``; ``LIF`` with ``v_leak`` = 0 → ``"lif"`` with ``leak_shift`` = the k
  whose ``2^-k`` is nearest to the leak ``dt/τ`` per step (the relative error is recorded and refused above
  ``leak_tolerance``); ``v_reset`` must be 0 (NIR resets to ``v_reset``); ``CubaLIF`` only with ``tau_syn`` = dt
  (no synaptic memory; its input gain ``w_in`` joins ``r``);
* a neuron node with two incoming paths (a residual add) → a :class:`golden.core.network.SkipConnection` from
  the earlier layer (or the input), through its own ``Affine``/``Linear``/``Conv2d`` node or a plain edge
  (an identity);
* ``Input`` / ``Output``; anything else is refused naming the node and its type.

Discretisation (the conventions of snnTorch, Norse and sinabs): an IF node adds ``r·I`` per step; an LIF node
takes the Euler step ``v += dt/τ·(v_leak − v + r·I)``, so its input gain is ``g = r·dt/τ``. ``dt`` is the
``dt`` argument, else the graph's ``metadata["dt"]``, else snnTorch's ``r = τ/dt`` (``dt = τ/r``) when r ≠ 1.

Quantisation (one stated scale per layer): the membrane of neuron j is divided by its gain g_j (which leaves
IF/LIF spikes unchanged), so the layer's synapses keep their float weights W and bias b and the neuron gets the
threshold ``t_j = v_threshold_j / g_j``; then with ``s = (2^(weight_bits−1) − 1) / max|W|`` (over the layer's
and its skip's weights; or the ``scale`` argument) ``W_int = round(W·s)``, ``b_int = round(b·s)`` and
``θ_j = ⌊t_j·s⌋ + 1`` (NIR fires at ``v > v_threshold``, the integer neuron at ``v ≥ θ``: exact for integer
membranes). Conv and pool layers need ``t`` constant over each channel's positions.

A graph written by :func:`golden.nir.exporter.write_nir` (``metadata["snncosim_format"]``) is read back
**exactly**: scale 1, its widths, resets, leaks, floors and names from the metadata, and its digest checked.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.core.errors import SnnCosimError
from golden.core.network import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, SkipConnection,
                                 signed_range)
from golden.nir.exporter import FORMAT, FORMAT_VERSION, _nir

NEURON_TYPES = ("IF", "LIF", "CubaLIF")  # CubaLIF only with tau_syn = dt (no synaptic memory)
SYNAPSE_TYPES = ("Affine", "Linear", "Conv2d")
POOL_TYPES = ("SumPool2d", "AvgPool2d")
SUPPORTED_TYPES = NEURON_TYPES + SYNAPSE_TYPES + POOL_TYPES + ("Flatten", "Input", "Output")
CUBA_REASON = ("its synaptic current is a second state variable (tau_syn); the integer IF/LIF neuron adds the "
               "synaptic input to the membrane directly, so only tau_syn = dt (no synaptic memory: snnTorch's "
               "Synaptic with alpha = 0) maps to it")
REFUSED = {
    "CubaLI": "a non-spiking current-based integrator; every layer of a rate-coded integer network spikes (IF/LIF)",
    "LI": "a non-spiking leaky integrator (a readout); every layer of a rate-coded integer network spikes (IF/LIF)",
    "I": "a non-spiking integrator; every layer of a rate-coded integer network spikes (IF/LIF)",
    "Delay": "a synaptic delay; every layer consumes the spikes its source emitted at the same step",
    "Scale": "an element-wise scale between nodes; fold it into the weights before exporting",
    "Threshold": "a stateless threshold (no membrane kept between steps); the integer neurons are IF/LIF",
    "Conv1d": "a 1-D convolution; the integer network has dense, 2-D convolution and pooling layers",
    "NIRGraph": "a subgraph (snnTorch writes recurrent layers so); recurrent connections are not supported",
}
DEFAULT_LEAK_TOLERANCE = 0.5


class NirImportError(SnnCosimError):
    """A NIR file or graph that cannot become an integer network (one line naming the file or node)."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def read_nir_file(path: str | os.PathLike):
    """``nir.read(path)`` with every failure (missing, not HDF5, not a NIR graph, damaged) as one
    :class:`NirImportError` line naming the file."""
    nir = _nir()
    path = Path(path)
    if not path.exists():
        raise NirImportError(f"{path}: no such file")
    if path.is_dir():
        raise NirImportError(f"{path}: is a directory, not a NIR file")
    try:
        graph = nir.read(path)
    except Exception as exc:  # noqa: BLE001 - h5py, nir and numpy raise many kinds; each is one line
        try:  # nir's type inference refuses some exporters' graphs (sinabs' Flatten of shape [0, 0, 0, 0]); the
            graph = nir.read(path, type_check=False)  # checks below name the node when a shape really is wrong
        except Exception:  # noqa: BLE001
            reason = _one_line(exc)[:300]
            if reason in ("AssertionError", "KeyError"):
                reason += ": an unknown node type or a node without its fields"
            raise NirImportError(f"{path}: not a readable NIR graph ({reason})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NirImportError(f"{path}: holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


# ----------------------------------------------------------------------------------------------- graph structure
@dataclass
class _Path:
    source: str  # a neuron node or the Input node
    ops: list  # node names from the source (exclusive) to the neuron (exclusive), in order


@dataclass
class _Synapse:
    kind: str  # dense | conv2d | avgpool2d
    nodes: list
    weight: object  # float array (dense/conv) or float (pool)
    bias: np.ndarray | None = None
    in_shape: tuple = ()
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    kernel: tuple = (1, 1)
    out_shape: tuple = ()


@dataclass
class _Layer:
    neuron: str
    main: _Synapse
    skip: _Synapse | None = None
    skip_source: int = 0
    notes: list = field(default_factory=list)


def _type(node) -> str:
    return type(node).__name__


def _describe(name: str, node) -> str:
    return f"node {name!r} ({_type(node)})"


def _pair(value, what: str, where: str) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(np.isfinite(arr.astype(float))) or np.any(arr != np.round(arr)):
        raise NirImportError(f"{where}: {what} must be one or two integers, got {np.asarray(value).tolist()}")
    return int(arr[0]), int(arr[1])


def _float_array(value, what: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NirImportError(f"{where}: {what} is not an array of numbers") from None
    if not np.all(np.isfinite(arr)):
        raise NirImportError(f"{where}: {what} holds NaN or infinite values")
    return arr


def _shape(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    arr = np.asarray(value).reshape(-1)
    return tuple(int(v) for v in arr)


class _Graph:
    """The checked structure of a NIR graph: a chain of spiking layers with at most one skip per junction."""

    def __init__(self, graph, label: str, input_shape=None):
        self.graph, self.label, self.given_shape = graph, label, input_shape
        self.nodes = dict(graph.nodes)
        for name, node in self.nodes.items():
            kind = _type(node)
            if kind in REFUSED:
                raise NirImportError(f"{label}: {_describe(name, node)} is not supported: {REFUSED[kind]}")
            if kind not in SUPPORTED_TYPES:
                raise NirImportError(f"{label}: {_describe(name, node)} is not supported (supported: "
                                     f"{', '.join(SUPPORTED_TYPES)})")
        self.preds = {name: [] for name in self.nodes}
        self.succs = {name: [] for name in self.nodes}
        for edge in graph.edges:
            a, b = (str(v) for v in edge)
            for end in (a, b):
                if end not in self.nodes:
                    raise NirImportError(f"{label}: edge ({a!r}, {b!r}) names a node {end!r} that the graph lacks")
            self.preds[b].append(a)
            self.succs[a].append(b)
        inputs = [n for n, node in self.nodes.items() if _type(node) == "Input"]
        outputs = [n for n, node in self.nodes.items() if _type(node) == "Output"]
        if len(inputs) != 1 or len(outputs) != 1:
            raise NirImportError(f"{label}: the graph has {len(inputs)} Input and {len(outputs)} Output nodes; an "
                                 f"integer network has one input and one output")
        self.input, self.output = inputs[0], outputs[0]
        self.layers = self._order()

    def is_neuron(self, name: str) -> bool:
        return _type(self.nodes[name]) in NEURON_TYPES

    def _path_into(self, neuron: str, pred: str) -> _Path:
        ops = []
        current = pred
        for _ in range(len(self.nodes) + 1):
            node = self.nodes[current]
            if self.is_neuron(current) or current == self.input:
                return _Path(current, ops)
            if current == self.output:
                raise NirImportError(f"{self.label}: the Output node {current!r} feeds other nodes")
            if len(self.preds[current]) != 1:
                raise NirImportError(
                    f"{self.label}: {_describe(current, node)} has {len(self.preds[current])} inputs; only neuron "
                    f"nodes (IF/LIF) may sum several inputs (a residual junction)")
            if len(self.succs[current]) != 1:
                raise NirImportError(
                    f"{self.label}: {_describe(current, node)} feeds {len(self.succs[current])} nodes; only neuron "
                    f"nodes and the Input may fan out")
            ops.insert(0, current)
            current = self.preds[current][0]
        raise NirImportError(f"{self.label}: a cycle without a neuron node before {neuron!r}")

    def _order(self) -> list[tuple[str, list[_Path]]]:
        neurons = [n for n in self.nodes if self.is_neuron(n)]
        if not neurons:
            raise NirImportError(f"{self.label}: the graph has no IF or LIF node; an integer network needs at least "
                                 f"one spiking layer")
        paths = {}
        for neuron in neurons:
            preds = self.preds[neuron]
            if not preds:
                raise NirImportError(f"{self.label}: {_describe(neuron, self.nodes[neuron])} has no input")
            if len(preds) > 2:
                raise NirImportError(f"{self.label}: {_describe(neuron, self.nodes[neuron])} sums {len(preds)} "
                                     f"inputs; a junction takes at most two (the previous layer and one skip)")
            paths[neuron] = [self._path_into(neuron, pred) for pred in preds]
        # topological order of the neuron nodes (the chain of a network with skips has exactly one)
        deps = {n: {p.source for p in paths[n] if p.source != self.input} for n in neurons}
        order, ready = [], sorted(n for n in neurons if not deps[n])
        placed: set = set()
        while ready:
            if len(ready) > 1:
                raise NirImportError(f"{self.label}: nodes {ready[0]!r} and {ready[1]!r} are parallel branches; the "
                                     f"integer network is a chain of layers (with at most one skip per junction)")
            current = ready.pop()
            order.append(current)
            placed.add(current)
            ready = sorted(n for n in neurons if n not in placed and n not in ready and deps[n] <= placed)
        if len(order) != len(neurons):
            rest = sorted(set(neurons) - placed)
            raise NirImportError(f"{self.label}: {_describe(rest[0], self.nodes[rest[0]])} is part of a recurrent "
                                 f"loop; recurrent connections are not supported")
        index = {self.input: 0, **{n: i for i, n in enumerate(order, start=1)}}
        layers = []
        for position, neuron in enumerate(order, start=1):
            sources = [index[p.source] for p in paths[neuron]]
            if position - 1 not in sources:
                raise NirImportError(f"{self.label}: {_describe(neuron, self.nodes[neuron])} does not read the layer "
                                     f"before it; the integer network is a chain of layers")
            if sorted(sources) == [position - 1, position - 1]:
                raise NirImportError(f"{self.label}: {_describe(neuron, self.nodes[neuron])} receives two paths from "
                                     f"the same layer; a skip must come from an earlier layer")
            main = next(p for p in paths[neuron] if index[p.source] == position - 1)
            rest = [p for p in paths[neuron] if p is not main]
            layers.append((neuron, [main] + rest))
        last = order[-1]
        out_preds = self.preds[self.output]
        if out_preds != [last]:
            culprit = out_preds[0] if out_preds else None
            what = (f"{_describe(culprit, self.nodes[culprit])}" if culprit is not None else "nothing")
            raise NirImportError(f"{self.label}: the Output node must be fed by the last spiking layer {last!r} "
                                 f"alone, it is fed by {what}{' and more' if len(out_preds) > 1 else ''} (the "
                                 f"output layer of an integer network is IF/LIF neurons)")
        used = {self.input, self.output, *order}
        for neuron, neuron_paths in layers:
            for p in neuron_paths:
                used.update(p.ops)
        for name, node in self.nodes.items():
            if name not in used:
                raise NirImportError(f"{self.label}: {_describe(name, node)} is not on a path from the input to the "
                                     f"output")
        for neuron in order[:-1]:
            if not self.succs[neuron]:
                raise NirImportError(f"{self.label}: {_describe(neuron, self.nodes[neuron])} feeds nothing")
        return layers

    def input_shape(self) -> tuple[int, ...]:
        """The Input node's shape; else (nirtorch leaves it None before a convolution) the given ``input_shape``,
        or what the first node says: an Affine/Linear's inputs, a Conv2d's channels and input_shape."""
        node = self.nodes[self.input]
        shape = _shape(node.input_type.get("input") if isinstance(node.input_type, dict) else None)
        if self.given_shape is not None:
            given = tuple(int(v) for v in self.given_shape)
            if shape and min(shape) >= 1 and int(np.prod(shape)) != int(np.prod(given)):
                raise NirImportError(f"{self.label}: input_shape {given} does not match the Input node's {shape}")
            shape = given
        if not shape or min(shape) < 1:
            shape = self._first_node_shape() or shape
        if not shape or min(shape) < 1:
            raise NirImportError(f"{self.label}: the Input node {self.input!r} has no usable shape ({shape}); give "
                                 f"the input shape")
        if len(shape) in (2, 4) and shape[0] == 1:  # a batch dimension of 1
            shape = shape[1:]
        if len(shape) not in (1, 3):
            raise NirImportError(f"{self.label}: input shape {shape}: an integer network takes (n,) or (c, h, w)")
        return shape

    def _first_node_shape(self) -> tuple[int, ...] | None:
        succs = self.succs[self.input]
        first = self.nodes[succs[0]] if len(succs) == 1 else None
        if _type(first) in ("Affine", "Linear") and np.ndim(first.weight) == 2:
            return (int(np.shape(first.weight)[1]),)
        if _type(first) == "Conv2d" and np.ndim(first.weight) == 4:
            hw = _shape(getattr(first, "input_shape", None))
            if hw and len(hw) == 2:
                return (int(np.shape(first.weight)[1]), *hw)
        return None


# ----------------------------------------------------------------------------------------------- synapses
def _conv_padding(node, kernel: tuple[int, int], stride: tuple[int, int], where: str) -> tuple[int, int]:
    padding = node.padding
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            return (0, 0)
        if padding == "same" and stride == (1, 1) and kernel[0] % 2 and kernel[1] % 2:
            return (kernel[0] // 2, kernel[1] // 2)
        raise NirImportError(f"{where}: padding {padding!r} is supported only as 'valid' or as 'same' with stride 1 "
                             f"and an odd kernel")
    pad = _pair(padding, "padding", where)
    if min(pad) < 0:
        raise NirImportError(f"{where}: padding must be >= 0, got {pad}")
    return pad


def _dense(graph: _Graph, name: str, in_shape: tuple) -> _Synapse:
    node, where = graph.nodes[name], f"{graph.label}: {_describe(name, graph.nodes[name])}"
    weight = _float_array(node.weight, "weight", where)
    if weight.ndim != 2 or 0 in weight.shape:
        raise NirImportError(f"{where}: weight must be a non-empty [n_out, n_in] matrix, got shape {weight.shape}")
    n_in = int(np.prod(in_shape))
    if weight.shape[1] != n_in:
        raise NirImportError(f"{where}: weight takes {weight.shape[1]} inputs but its source gives {n_in} "
                             f"(shape {tuple(in_shape)})")
    if _type(node) == "Affine":
        bias = _float_array(node.bias, "bias", where).reshape(-1) if np.size(node.bias) != 1 else \
            np.full(weight.shape[0], float(np.asarray(node.bias).reshape(-1)[0]))
        if bias.shape != (weight.shape[0],):
            raise NirImportError(f"{where}: bias has {bias.size} entries for {weight.shape[0]} outputs")
    else:
        bias = np.zeros(weight.shape[0])
    return _Synapse("dense", [name], weight, bias, tuple(in_shape), out_shape=(weight.shape[0],))


def _conv(graph: _Graph, name: str, in_shape: tuple) -> _Synapse:
    node, where = graph.nodes[name], f"{graph.label}: {_describe(name, graph.nodes[name])}"
    if len(in_shape) != 3:
        raise NirImportError(f"{where}: needs a (c, h, w) input, its source gives {tuple(in_shape)} (a Flatten "
                             f"before a convolution?)")
    weight = _float_array(node.weight, "weight", where)
    if weight.ndim != 4 or 0 in weight.shape:
        raise NirImportError(f"{where}: weight must be [c_out, c_in, kh, kw], got shape {weight.shape}")
    if int(np.asarray(node.groups).reshape(-1)[0]) != 1:
        raise NirImportError(f"{where}: groups = {np.asarray(node.groups).tolist()}; only groups = 1 is supported")
    if _pair(node.dilation, "dilation", where) != (1, 1):
        raise NirImportError(f"{where}: dilation {np.asarray(node.dilation).tolist()}; only 1 is supported")
    if weight.shape[1] != in_shape[0]:
        raise NirImportError(f"{where}: weight takes {weight.shape[1]} input channels, its source has "
                             f"{in_shape[0]} (shape {tuple(in_shape)})")
    declared = _shape(getattr(node, "input_shape", None))
    if declared and tuple(declared) != tuple(in_shape[1:]):
        raise NirImportError(f"{where}: input_shape {declared} does not match its source's (h, w) = "
                             f"{tuple(in_shape[1:])}")
    stride = _pair(node.stride, "stride", where)
    if min(stride) < 1:
        raise NirImportError(f"{where}: stride must be >= 1, got {stride}")
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    padding = _conv_padding(node, kernel, stride, where)
    bias = _float_array(node.bias, "bias", where).reshape(-1)
    if bias.size == 1 and weight.shape[0] != 1:
        bias = np.full(weight.shape[0], bias[0])
    if bias.shape != (weight.shape[0],):
        raise NirImportError(f"{where}: bias has {bias.size} entries for {weight.shape[0]} output channels")
    out = _conv_out(in_shape, weight.shape[0], kernel, stride, padding)
    if min(out) < 1:
        raise NirImportError(f"{where}: the kernel {kernel} is larger than the padded input {tuple(in_shape)}")
    return _Synapse("conv2d", [name], weight, bias, tuple(in_shape), stride, padding, kernel, out)


def _conv_out(in_shape, c_out, kernel, stride, padding) -> tuple[int, int, int]:
    _, h, w = in_shape
    return (int(c_out), (h + 2 * padding[0] - kernel[0]) // stride[0] + 1,
            (w + 2 * padding[1] - kernel[1]) // stride[1] + 1)


def _pool(graph: _Graph, name: str, in_shape: tuple) -> _Synapse:
    node, where = graph.nodes[name], f"{graph.label}: {_describe(name, graph.nodes[name])}"
    if len(in_shape) != 3:
        raise NirImportError(f"{where}: needs a (c, h, w) input, its source gives {tuple(in_shape)}")
    kernel = _pair(node.kernel_size, "kernel_size", where)
    stride = _pair(kernel if node.stride is None else node.stride, "stride", where)
    padding = _pair(0 if node.padding is None else node.padding, "padding", where)
    if min(kernel) < 1 or min(stride) < 1:
        raise NirImportError(f"{where}: kernel_size and stride must be >= 1, got {kernel}, {stride}")
    if padding != (0, 0):
        raise NirImportError(f"{where}: padding {padding}: the integer pooling layer has no padding")
    c, h, w = in_shape
    out = (c, (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1)
    if min(out) < 1:
        raise NirImportError(f"{where}: the window {kernel} is larger than the input {tuple(in_shape)}")
    weight = 1.0 if _type(node) == "SumPool2d" else 1.0 / (kernel[0] * kernel[1])
    return _Synapse("avgpool2d", [name], weight, np.zeros(c), tuple(in_shape), stride, (0, 0), kernel, out)


def _fold_pool_dense(pool: _Synapse, dense: _Synapse) -> _Synapse:
    """Pool then Affine = one dense layer on the pool's input (exact: both are linear)."""
    c, h, w = pool.in_shape
    _, ho, wo = pool.out_shape
    src = dense.weight.reshape(dense.weight.shape[0], c, ho, wo)
    weight = np.zeros((dense.weight.shape[0], c, h, w))
    (sy, sx), (kh, kw) = pool.stride, pool.kernel
    for ky in range(kh):
        for kx in range(kw):
            weight[:, :, ky:ky + sy * (ho - 1) + 1:sy, kx:kx + sx * (wo - 1) + 1:sx] += src * pool.weight
    return _Synapse("dense", pool.nodes + dense.nodes, weight.reshape(weight.shape[0], -1), dense.bias,
                    pool.in_shape, out_shape=dense.out_shape)


def _fold_pool_conv(graph: _Graph, pool: _Synapse, conv: _Synapse) -> _Synapse:
    """Pool (stride = kernel) then Conv2d = one conv with a kernel of k·K taps, stride s·k, padding p·k; exact when
    the pool's kernel divides the map or the conv has no padding (the pool drops the remainder rows)."""
    where = f"{graph.label}: nodes {pool.nodes[0]!r} and {conv.nodes[0]!r}"
    c, h, w = pool.in_shape
    (kh, kw), (ph, pw) = pool.kernel, conv.padding
    if pool.stride != pool.kernel or (conv.padding != (0, 0) and (h % kh or w % kw)):
        raise NirImportError(f"{where} ({_type(graph.nodes[pool.nodes[0]])} then Conv2d): a pool feeding a "
                             f"convolution without neurons between is supported only with pool stride = kernel "
                             f"and (no conv padding or a map divisible by the pool); put an IF/LIF after the pool")
    weight = np.repeat(np.repeat(conv.weight, kh, axis=2), kw, axis=3) * pool.weight
    stride = (conv.stride[0] * kh, conv.stride[1] * kw)
    padding = (ph * kh, pw * kw)
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    out = _conv_out(pool.in_shape, weight.shape[0], kernel, stride, padding)
    if out != tuple(conv.out_shape):
        raise NirImportError(f"{where}: the pool and the convolution cannot be folded exactly (shapes {out} != "
                             f"{tuple(conv.out_shape)})")
    return _Synapse("conv2d", pool.nodes + conv.nodes, weight, conv.bias, pool.in_shape, stride, padding, kernel, out)


def _identity(in_shape: tuple) -> _Synapse:
    if len(in_shape) == 3:
        c = in_shape[0]
        weight = np.zeros((c, c, 1, 1))
        weight[np.arange(c), np.arange(c), 0, 0] = 1.0
        return _Synapse("conv2d", [], weight, np.zeros(c), tuple(in_shape), (1, 1), (0, 0), (1, 1), tuple(in_shape))
    n = int(np.prod(in_shape))
    return _Synapse("dense", [], np.eye(n), np.zeros(n), tuple(in_shape), out_shape=(n,))


def _synapse(graph: _Graph, ops: list, in_shape: tuple, neuron: str) -> _Synapse:
    shape = tuple(in_shape)
    core = []
    for name in ops:
        node = graph.nodes[name]
        if _type(node) == "Flatten":
            declared = _shape(node.input_type.get("input") if isinstance(node.input_type, dict) else None)
            if declared and int(np.prod(declared)) not in (0, int(np.prod(shape))):
                raise NirImportError(f"{graph.label}: {_describe(name, node)}: input {declared} does not match its "
                                     f"source's shape {shape}")
            shape = (int(np.prod(shape)),)
            continue
        if _type(node) in ("Conv2d",) + POOL_TYPES and core and _type(graph.nodes[core[-1][0]]) in ("Affine", "Linear"):
            raise NirImportError(f"{graph.label}: {_describe(name, node)} follows a dense node")
        core.append((name, shape))
        if _type(node) in POOL_TYPES:
            shape = _pool(graph, name, shape).out_shape
        elif _type(node) == "Conv2d":
            shape = _conv(graph, name, shape).out_shape
        else:
            shape = _dense(graph, name, shape).out_shape
    kinds = [_type(graph.nodes[name]) for name, _ in core]
    if not core:
        return _identity(shape)
    first, first_shape = core[0]
    if len(core) == 1:
        if kinds[0] in POOL_TYPES:
            return _pool(graph, first, first_shape)
        return (_conv if kinds[0] == "Conv2d" else _dense)(graph, first, first_shape)
    if len(core) == 2 and kinds[0] in POOL_TYPES:
        pool = _pool(graph, first, first_shape)
        second, second_shape = core[1]
        if kinds[1] in ("Affine", "Linear"):
            return _fold_pool_dense(pool, _dense(graph, second, second_shape))
        if kinds[1] == "Conv2d":
            return _fold_pool_conv(graph, pool, _conv(graph, second, second_shape))
    names = ", ".join(f"{name!r} ({kind})" for (name, _), kind in zip(core, kinds))
    raise NirImportError(f"{graph.label}: nodes {names} lie between two spiking layers before {neuron!r}; a layer's "
                         f"synapses are one Affine/Linear/Conv2d or one SumPool2d/AvgPool2d node (a pool may be "
                         f"folded into the Affine/Conv2d after it)")


# ----------------------------------------------------------------------------------------------- neurons
def _per_unit(graph: _Graph, neuron: str, what: str, value, out_shape: tuple) -> np.ndarray:
    """A neuron parameter as a per-neuron array of ``out_shape`` (scalars and per-channel arrays broadcast)."""
    where = f"{graph.label}: {_describe(neuron, graph.nodes[neuron])}"
    arr = _float_array(value, what, where)
    if arr.size == 1:
        return np.full(out_shape, float(arr.reshape(-1)[0]))
    while arr.ndim > len(out_shape) and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape == tuple(out_shape):
        return arr
    if len(out_shape) == 1 and arr.size == out_shape[0]:
        return arr.reshape(out_shape)
    if len(out_shape) == 3 and arr.shape in ((out_shape[0],), (out_shape[0], 1, 1)):
        return np.broadcast_to(arr.reshape(-1, 1, 1), out_shape).copy()
    raise NirImportError(f"{where}: {what} has shape {arr.shape}, but the layer before it has {tuple(out_shape)} "
                         f"neurons")


def _per_channel(graph: _Graph, neuron: str, what: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr
    flat = arr.reshape(arr.shape[0], -1)
    if not np.allclose(flat, flat[:, :1], rtol=1e-9, atol=0):
        raise NirImportError(f"{graph.label}: {_describe(neuron, graph.nodes[neuron])}: {what} differs between "
                             f"positions of one channel; a convolution or pooling layer has one value per channel")
    return flat[:, 0].copy()


@dataclass
class _Neuron:
    kind: str  # if | lif
    gain: np.ndarray  # per unit (dense) or per channel
    threshold: np.ndarray  # v_threshold per unit / channel
    leak_shift: int = 0
    leak_error: float = 0.0
    leak: float = 0.0  # dt/τ
    r: np.ndarray | None = None
    dt: float | None = None  # the LIF time step used (given, from the graph, or inferred as τ/r)


def _neuron(graph: _Graph, neuron: str, out_shape: tuple, dt, membrane_bits: int, leak_tolerance: float) -> _Neuron:
    node = graph.nodes[neuron]
    where = f"{graph.label}: {_describe(neuron, node)}"
    unit = lambda what: _per_unit(graph, neuron, what, getattr(node, what), out_shape)  # noqa: E731
    r, v_threshold = unit("r"), unit("v_threshold")
    v_reset = unit("v_reset") if getattr(node, "v_reset", None) is not None else np.zeros(out_shape)
    if np.any(v_reset != 0):
        raise NirImportError(f"{where}: v_reset = {float(v_reset.reshape(-1)[np.argmax(v_reset.reshape(-1) != 0)]):g}; "
                             f"the integer neuron resets to 0 (or subtracts its threshold)")
    if np.any(v_threshold <= 0):
        raise NirImportError(f"{where}: v_threshold must be positive, got {float(v_threshold.min()):g}")
    if np.any(r <= 0):
        raise NirImportError(f"{where}: r must be positive, got {float(r.min()):g}")
    if _type(node) == "IF":
        gain = r
        result = _Neuron("if", gain, v_threshold, r=r)
    else:
        v_leak = unit("v_leak")
        if np.any(v_leak != 0):
            raise NirImportError(f"{where}: v_leak = {float(v_leak.reshape(-1)[np.argmax(v_leak.reshape(-1) != 0)]):g}"
                                 f"; the integer LIF neuron leaks towards 0 (v_leak must be 0)")
        cuba = _type(node) == "CubaLIF"
        tau = unit("tau_mem" if cuba else "tau")
        if np.any(tau <= 0):
            raise NirImportError(f"{where}: tau must be positive, got {float(tau.min()):g}")
        if dt is None:
            if cuba and np.all(r == 1):
                raise NirImportError(f"{where} is not supported: {CUBA_REASON}; dt is not known, give it")
            if np.all(r == 1):
                raise NirImportError(f"{where}: tau = {float(tau.reshape(-1)[0]):g} without the time step it refers "
                                     f"to; give dt (Norse: 0.001 s by default; sinabs: 1 step)")
            ratios = (tau / r).reshape(-1)
            if not np.allclose(ratios, ratios[0], rtol=1e-6):
                raise NirImportError(f"{where}: tau/r differs between neurons, so the time step cannot be inferred "
                                     f"(snnTorch writes r = tau/dt); give dt")
            dt = float(ratios[0])
        leak = dt / tau
        w_in = np.ones(out_shape)
        if cuba:
            tau_syn = unit("tau_syn")
            if not np.allclose(tau_syn, dt, rtol=1e-6, atol=0):
                raise NirImportError(f"{where} is not supported: {CUBA_REASON}; here tau_syn = "
                                     f"{float(tau_syn.reshape(-1)[0]):g}, dt = {dt:g}")
            w_in = unit("w_in")
            if np.any(w_in <= 0):
                raise NirImportError(f"{where}: w_in must be positive, got {float(w_in.min()):g}")
        k_values = np.clip(np.rint(-np.log2(leak)), 1, membrane_bits - 1).astype(int)
        if len(set(k_values.reshape(-1).tolist())) != 1:
            raise NirImportError(f"{where}: the leaks dt/tau of its neurons map to different shifts "
                                 f"{sorted(set(k_values.reshape(-1).tolist()))}; the integer LIF has one leak_shift "
                                 f"per layer")
        k = int(k_values.reshape(-1)[0])
        error = float(np.max(np.abs(2.0 ** -k / leak - 1)))
        worst = float(leak.reshape(-1)[np.argmax(np.abs(2.0 ** -k / leak - 1).reshape(-1))])
        if error > leak_tolerance:
            raise NirImportError(f"{where}: the leak dt/tau = {worst:.4g} per step is {error:.0%} away from the "
                                 f"nearest shift 2^-{k} = {2.0 ** -k:.4g} (the integer LIF leaks v >>> k; tolerance "
                                 f"{leak_tolerance:.0%}); use IF, another dt, or a larger tolerance")
        result = _Neuron("lif", r * leak * w_in, v_threshold, k, error, worst, r=r, dt=float(dt))
    return result


# ----------------------------------------------------------------------------------------------- import
def import_nir(graph_or_path, *, weight_bits: int = 8, membrane_bits: int = 24, input_bits: int = 8, scale=None,
               dt: float | None = None, leak_tolerance: float = DEFAULT_LEAK_TOLERANCE,
               input_shape=None, label: str | None = None) -> IntegerNetwork:
    """The integer network of a NIR graph (a ``nir.NIRGraph`` or the path of a ``.nir`` file). Module docstring:
    the mapping and the quantisation; ``scale`` fixes the per-layer scale s (one number, or one per layer),
    ``dt`` the LIF time step, ``input_shape`` the input's (n,) or (c, h, w) where the Input node lacks it
    (nirtorch's graphs starting with a convolution). The result's ``metadata["nir"]`` records the source, the node
    count, each layer's nodes, scale and LIF leak error; ``metadata["input"]`` the input scale when the graph states
    it. Raises
    :class:`NirImportError` (a :class:`SnnCosimError`, one line naming the file or node) on everything it cannot
    map, :class:`golden.core.errors.WidthError` when the quantised numbers do not fit the widths."""
    nir = _nir()
    if isinstance(graph_or_path, (str, os.PathLike)):
        graph = read_nir_file(graph_or_path)
        label = label or str(graph_or_path)
    else:
        graph = graph_or_path
        label = label or "NIR graph"
        if not isinstance(graph, nir.NIRGraph):
            raise NirImportError(f"{label}: expected a nir.NIRGraph, got {type(graph).__name__}")
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if _text(meta.get("snncosim_format")) == FORMAT:
        return _import_exact(graph, meta, label)
    for name, value in (("weight_bits", weight_bits), ("membrane_bits", membrane_bits), ("input_bits", input_bits)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise NirImportError(f"{name} must be an integer, got {value!r}")
    if not 2 <= weight_bits <= 32:
        raise NirImportError(f"weight_bits must be in 2..32, got {weight_bits}")
    if not 4 <= membrane_bits <= 62:
        raise NirImportError(f"membrane_bits must be in 4..62, got {membrane_bits}")
    if dt is None and meta.get("dt") is not None:
        dt = _positive(meta.get("dt"), "the graph's metadata dt", label)
    elif dt is not None:
        dt = _positive(dt, "dt", label)
    structure = _Graph(graph, label, input_shape)
    layers = _layers(structure)
    scales = _scales(scale, len(layers), label)
    w_max = signed_range(weight_bits)[1]
    ir_layers, skips, records = [], [], []
    for index, layer in enumerate(layers, start=1):
        neuron = _neuron(structure, layer.neuron, layer.main.out_shape, dt, membrane_bits, leak_tolerance)
        spatial = len(layer.main.out_shape) == 3
        gain, v_threshold = neuron.gain, neuron.threshold
        t = v_threshold / gain
        if spatial:
            t = _per_channel(structure, layer.neuron, "v_threshold / gain", t)
        weights = [np.abs(np.asarray(layer.main.weight, dtype=np.float64)).max()]
        if layer.skip is not None:
            weights.append(np.abs(layer.skip.weight).max())
        largest = float(max(weights))
        s = scales[index - 1]
        if s is None:
            s = w_max / largest if largest > 0 else 1.0
        params = NeuronParams(neuron.kind, "zero", neuron.leak_shift)
        theta = _threshold(t * s)
        name = (layer.main.nodes[-1] if layer.main.nodes else layer.neuron)
        main = layer.main
        if main.kind == "dense":
            ir = DenseLayer(_round(main.weight * s), _round(_bias(layer) * s), theta, params, name)
        elif main.kind == "conv2d":
            ir = Conv2dLayer(_round(main.weight * s), _round(_bias(layer) * s), theta, tuple(main.in_shape),
                             tuple(main.stride), tuple(main.padding), params, name)
        else:
            ir = AvgPool2dLayer(int(np.rint(main.weight * s)), theta, tuple(main.in_shape), tuple(main.kernel),
                                tuple(main.stride), params, name)
        ir_layers.append(ir)
        record = {"neuron": layer.neuron, "nodes": list(main.nodes), "scale": float(s)}
        if layer.skip is not None:
            skip = layer.skip
            skips.append(SkipConnection(index, layer.skip_source, _round(skip.weight * s),
                                        tuple(skip.stride), tuple(skip.padding)))
            record["skip"] = {"source": int(layer.skip_source), "nodes": list(skip.nodes)}
        if neuron.kind == "lif":
            record.update(dt=neuron.dt, leak_shift=int(neuron.leak_shift), leak_dt_over_tau=float(neuron.leak),
                          leak_relative_error=float(neuron.leak_error))
        records.append(record)
    notes = [f"{r['neuron']}: LIF leak dt/tau = {r['leak_dt_over_tau']:.4g} per step mapped to 2^-{r['leak_shift']} "
             f"({r['leak_relative_error']:.1%} off)" for r in records if "leak_shift" in r]
    metadata = {"nir": {"source": label, "exact": False, "nodes": len(graph.nodes), "dt": dt, "layers": records,
                        "notes": notes,
                        "threshold_rule": "theta = floor(v_threshold / gain * scale) + 1 (NIR fires at v > "
                                          "v_threshold, the integer neuron at v >= theta)"}}
    input_scale = meta.get("input_scale")
    if input_scale is not None:
        metadata["input"] = {"scale": _positive(input_scale, "the graph's metadata input_scale", label),
                             "bits": int(input_bits)}
    network = IntegerNetwork(input_shape=structure.input_shape(), layers=ir_layers, weight_bits=weight_bits,
                             membrane_bits=membrane_bits, input_coding="rate", input_bits=input_bits,
                             metadata=metadata, skips=skips)
    return network.validate()


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, np.str_)):
        return str(value)
    return None


def _positive(value, what: str, label: str) -> float:
    try:
        number = float(np.asarray(value).reshape(-1)[0]) if np.size(value) == 1 else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not (math.isfinite(number) and number > 0):
        raise NirImportError(f"{label}: {what} must be a positive number, got {value!r}")
    return number


def _scales(scale, n_layers: int, label: str) -> list:
    if scale is None:
        return [None] * n_layers
    values = list(scale) if isinstance(scale, (list, tuple, np.ndarray)) else [scale] * n_layers
    if len(values) != n_layers:
        raise NirImportError(f"{label}: {len(values)} scales given for {n_layers} layers")
    return [_positive(v, "scale", label) for v in values]


def _round(values) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)


def _threshold(x: np.ndarray) -> np.ndarray:
    """``⌊x⌋ + 1``, the smallest integer θ with ``v ≥ θ ⇔ v > x`` for integers v; values within 1e-9 of an integer
    count as that integer (float noise of ``v_threshold/gain·s``)."""
    x = np.asarray(x, dtype=np.float64)
    near = np.rint(x)
    x = np.where(np.abs(x - near) <= 1e-9 * np.maximum(1.0, np.abs(x)), near, x)
    return (np.floor(x) + 1).astype(np.int64)


def _bias(layer: _Layer) -> np.ndarray:
    """The junction's bias: its own synapse node's plus its skip node's (a Conv2d/Affine skip may carry one)."""
    bias = np.asarray(layer.main.bias, dtype=np.float64)
    return bias if layer.skip is None else bias + np.asarray(layer.skip.bias, dtype=np.float64)


def _layers(structure: _Graph) -> list[_Layer]:
    shapes = [structure.input_shape()]
    index = {structure.input: 0}
    layers = []
    for position, (neuron, paths) in enumerate(structure.layers, start=1):
        main = _synapse(structure, paths[0].ops, shapes[position - 1], neuron)
        layer = _Layer(neuron, main)
        if len(paths) == 2:
            source = index[paths[1].source]
            skip = _synapse(structure, paths[1].ops, shapes[source], neuron)
            where = f"{structure.label}: {_describe(neuron, structure.nodes[neuron])}"
            if skip.kind == "avgpool2d" or main.kind == "avgpool2d":
                raise NirImportError(f"{where}: a residual junction through a pooling node is not supported (the "
                                     f"integer network's pooling layers take no skip)")
            if tuple(skip.out_shape) != tuple(main.out_shape):
                raise NirImportError(f"{where}: its two inputs have shapes {tuple(main.out_shape)} and "
                                     f"{tuple(skip.out_shape)}")
            if main.kind == "conv2d" and skip.kind != "conv2d":
                raise NirImportError(f"{where}: a convolution junction needs a Conv2d (or identity) skip, got a "
                                     f"dense one")
            if main.kind == "dense" and skip.kind == "conv2d":  # an identity skip from a flat source
                raise NirImportError(f"{where}: a dense junction needs an Affine/Linear skip")
            layer.skip, layer.skip_source = skip, source
        layers.append(layer)
        shapes.append(tuple(main.out_shape))
        index[neuron] = position
    return layers


# ----------------------------------------------------------------------------------------------- exact import
def _import_exact(graph, meta: dict, label: str) -> IntegerNetwork:
    """A graph written by :func:`golden.nir.exporter.write_nir`: the integers back bit for bit."""
    version = meta.get("snncosim_version")
    if not isinstance(version, (int, np.integer)) or int(version) != FORMAT_VERSION:
        raise NirImportError(f"{label}: snncosim NIR format version {version!r} is not supported (this snncosim "
                             f"reads {FORMAT_VERSION})")
    try:
        widths = {name: int(meta[name]) for name in ("weight_bits", "membrane_bits", "input_bits")}
        digest = _text(meta["network_sha256"])
        coding = _text(meta["input_coding"])
    except (KeyError, TypeError, ValueError) as exc:
        raise NirImportError(f"{label}: the snncosim metadata of the graph is incomplete ({_one_line(exc)})") from None
    structure = _Graph(graph, label)
    layers = _layers(structure)
    ir_layers, skips = [], []
    for index, layer in enumerate(layers, start=1):
        node = structure.nodes[layer.neuron]
        nmeta = node.metadata if isinstance(node.metadata, dict) else {}
        where = f"{label}: {_describe(layer.neuron, node)}"
        if _type(node) not in ("IF", "LIF"):
            raise NirImportError(f"{where}: an snncosim graph holds IF and LIF neurons only")
        try:
            reset = _text(nmeta["snncosim_reset"])
            leak_shift = int(nmeta["snncosim_leak_shift"])
            name = _text(nmeta["snncosim_name"])
            floor = int(nmeta["snncosim_floor"]) if "snncosim_floor" in nmeta else None
            floor_threshold = bool(int(nmeta.get("snncosim_floor_threshold", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise NirImportError(f"{where}: its snncosim metadata is incomplete ({_one_line(exc)})") from None
        main = layer.main
        shape = tuple(main.out_shape)
        unit = lambda what: _per_unit(structure, layer.neuron, what, getattr(node, what), shape)  # noqa: E731
        gain = unit("r") / (2.0 ** leak_shift if _type(node) == "LIF" else 1.0)
        threshold = unit("v_threshold") + 0.5
        if len(shape) == 3:
            gain = _per_channel(structure, layer.neuron, "r", gain)
            threshold = _per_channel(structure, layer.neuron, "v_threshold", threshold)
        kind = "lif" if _type(node) == "LIF" else "if"
        params = NeuronParams(kind, reset, leak_shift, floor, floor_threshold=floor_threshold)
        theta = _exact_int(threshold, "v_threshold + 0.5", where)
        if main.kind == "avgpool2d":
            weights = _exact_int(gain, "the pool weight r", where)
            if len(set(weights.tolist())) != 1:
                raise NirImportError(f"{where}: the pool weight r differs between channels")
            ir = AvgPool2dLayer(int(weights[0]), theta, tuple(main.in_shape), tuple(main.kernel), tuple(main.stride),
                                params, name)
        else:
            if np.any(gain != 1):
                raise NirImportError(f"{where}: r must be {'2^leak_shift' if kind == 'lif' else '1'} in an snncosim "
                                     f"graph")
            syn_where = f"{label}: node {main.nodes[-1]!r}" if main.nodes else where
            weight, bias = _exact_int(main.weight, "weight", syn_where), _exact_int(_bias(layer), "bias", syn_where)
            if main.kind == "dense":
                ir = DenseLayer(weight, bias, theta, params, name)
            else:
                ir = Conv2dLayer(weight, bias, theta, tuple(main.in_shape), tuple(main.stride), tuple(main.padding),
                                 params, name)
        ir_layers.append(ir)
        if layer.skip is not None:
            skip_where = f"{label}: node {layer.skip.nodes[-1]!r}" if layer.skip.nodes else where
            skips.append(SkipConnection(index, layer.skip_source, _exact_int(layer.skip.weight, "weight", skip_where),
                                        tuple(layer.skip.stride), tuple(layer.skip.padding)))
    metadata = {"nir": {"source": label, "exact": True, "nodes": len(graph.nodes),
                        "layers": [{"neuron": layer.neuron, "nodes": list(layer.main.nodes), "scale": 1.0}
                                   for layer in layers], "notes": []}}
    input_scale = meta.get("input_scale")
    if input_scale is not None:
        metadata["input"] = {"scale": _positive(input_scale, "the graph's metadata input_scale", label),
                             "bits": widths["input_bits"]}
    network = IntegerNetwork(input_shape=structure.input_shape(), layers=ir_layers, input_coding=coding,
                             metadata=metadata, skips=skips, **widths)
    network.validate()
    if network.digest() != digest:
        raise NirImportError(f"{label}: the graph's integers do not give the network_sha256 it records; the file was "
                             f"edited or is damaged")
    return network


def _exact_int(values, what: str, where: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    rounded = np.rint(arr)
    if not np.array_equal(arr, rounded) or np.any(np.abs(rounded) >= 2.0 ** 53):
        raise NirImportError(f"{where}: {what} holds non-integer values in an snncosim graph (edited or damaged)")
    return rounded.astype(np.int64)
