"""Import a trained torch ANN as a flat list of affine operations (the conversion's starting point).

Diehl et al. 2015 §III give the recipe for convertible ANNs: ReLU units, (zero) biases, dropout only in training,
and **average** pooling instead of max pooling. :func:`import_network` reads such a network — an ``nn.Sequential``
(nested ones included) or any module whose ``forward`` is a plain chain of layer calls, seen through
``torch.fx.symbolic_trace`` — and returns one :class:`AffineOp` per spiking layer:

* ``nn.Linear`` → ``linear``; ``nn.Conv2d`` (stride, zero padding, ``groups=1``, no dilation) → ``conv2d``;
* ``nn.AvgPool2d`` (no padding, no ceil mode) → ``avgpool2d`` with the fixed weight ``1/k²`` (Diehl eq. 2:
  "average pooling = eq. (2) with kernel weights fixed to 1/size(W)");
* ``nn.ReLU`` sets ``relu_after`` on the preceding op; ``nn.Flatten`` is implicit (dense layers flatten their input);
* ``nn.Dropout*`` and ``nn.Identity`` are dropped (dropout acts in training only, Diehl eq. 3);
* ``nn.BatchNorm1d/2d`` directly after a Linear/Conv2d is folded exactly into it with its eval-mode statistics:
  ``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β`` (per output channel).

Everything else raises :class:`~golden.core.errors.UnsupportedLayerError` naming the module path, its type and what to
use instead. Weights and biases are kept in ``float64``. The import is checked by running the model (eval mode)
and the imported ops on the same random input: if they disagree, the model does something the importer cannot see
and the import is refused rather than silently wrong.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, replace
from typing import Literal, Sequence

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from golden.core.errors import UnsupportedLayerError

OpKind = Literal["linear", "conv2d", "avgpool2d"]


@dataclass(frozen=True)
class AffineOp:
    """One spiking layer of the imported ANN: an affine map, optionally followed by a ReLU.

    ``weight``: ``linear`` (n_out, n_in), ``conv2d`` (c_out, c_in, kh, kw), ``avgpool2d`` a 0-d array holding the
    common weight of every window element (1/(kh·kw) before normalisation). ``bias``: (n_out,) for linear, (c_out,)
    for conv/pool (always zero for pool). Shapes exclude the batch dimension; a ``linear`` op flattens its input.
    """

    kind: OpKind
    name: str
    weight: np.ndarray
    bias: np.ndarray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    relu_after: bool = False
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def n_channels_out(self) -> int:
        """Length of the bias/threshold arrays: neurons for linear, output channels for conv/pool."""
        return int(self.out_shape[0])

    def max_weight(self) -> float:
        """Largest single weight (Diehl Alg. 2's ``max_wt``)."""
        return float(np.max(self.weight))

    def max_positive_input(self) -> float:
        """Largest per-step positive input of one neuron for inputs in [0, 1]: max_i Σ_j max(0, W_ij) (Diehl Alg. 1).

        For conv this is the full kernel (zero padding can only lower it); for pooling ``kh·kw·w``.
        """
        if self.kind == "avgpool2d":
            return float(max(0.0, float(self.weight)) * self.kernel[0] * self.kernel[1])
        positive = np.clip(self.weight, 0.0, None).reshape(self.weight.shape[0], -1).sum(axis=1)
        return float(positive.max(initial=0.0))

    def scaled(self, weight_factor: float, bias_factor: float) -> "AffineOp":
        """A copy with ``W·weight_factor`` and ``b·bias_factor``."""
        return replace(self, weight=self.weight * weight_factor, bias=self.bias * bias_factor)

    def describe(self) -> dict:
        """Plain-Python summary (for metadata)."""
        return {"name": self.name, "kind": self.kind, "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "relu_after": self.relu_after,
                "kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding)}


@dataclass(frozen=True)
class ResidualSkip:
    """A residual addition of the imported ANN: layer ``target``'s pre-ReLU output (1-based op index) adds the
    ReLU output of layer ``source`` (0 = the network input), through the projection ``op`` (a 1×1 strided
    ``conv2d`` AffineOp) or, when ``op`` is None, unchanged (identity)."""

    target: int
    source: int
    op: AffineOp | None = None


# ------------------------------------------------------------------------------------------------ forward
def apply_op(op: AffineOp, x: torch.Tensor) -> torch.Tensor:
    """Apply one op (and its ReLU) to a batch ``x`` of shape ``[B, *op.in_shape]`` (any float dtype)."""
    weight = torch.as_tensor(op.weight, dtype=x.dtype)
    bias = torch.as_tensor(op.bias, dtype=x.dtype)
    if op.kind == "linear":
        y = F.linear(x.reshape(x.shape[0], -1), weight, bias)
    elif op.kind == "conv2d":
        y = F.conv2d(x.reshape(x.shape[0], *op.in_shape), weight, bias, stride=op.stride, padding=op.padding)
    else:
        window_sum = F.avg_pool2d(x.reshape(x.shape[0], *op.in_shape), op.kernel, op.stride) * (
            op.kernel[0] * op.kernel[1])
        y = window_sum * weight
    return torch.relu(y) if op.relu_after else y


def forward_ops(ops: Sequence[AffineOp], x: torch.Tensor, *, return_all: bool = False,
                skips: Sequence[ResidualSkip] = ()):
    """Run the imported network on a batch; with ``return_all`` return every layer's output (a list). ``skips``
    (:func:`import_residual_network`): layer ``target`` adds the shortcut of layer ``source``'s output before its
    ReLU."""
    outputs = [x]
    by_target = {s.target: s for s in skips}
    for index, op in enumerate(ops, start=1):
        skip = by_target.get(index)
        if skip is None:
            x = apply_op(op, x)
        else:
            y = apply_op(replace(op, relu_after=False), x)
            src = outputs[skip.source]
            short = apply_op(skip.op, src) if skip.op is not None else src.reshape(y.shape)
            x = y + short.reshape(y.shape)
            x = torch.relu(x) if op.relu_after else x
        outputs.append(x)
    return outputs[1:] if return_all else x


# ------------------------------------------------------------------------------------------------ import
_DROPPED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
            nn.Identity)
_SMOOTH_ACTIVATIONS = (nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.ReLU6,
                       nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Softplus, nn.PReLU, nn.RReLU,
                       nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.Threshold)
_RESHAPES = {"view", "reshape", "flatten"}
_ADDITIONS = {operator.add, operator.iadd, torch.add}
_RELU_CALLS = {F.relu, torch.relu, torch.relu_, F.relu_}


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _where(node: torch.fx.Node, top: str) -> str:
    """Names the module whose forward made a functional call: "'path' (Class).forward" or "the model's forward"."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return top
    path, entry = list(stack.items())[-1]
    cls = entry[1] if isinstance(entry, tuple) and len(entry) > 1 else None
    cls_name = getattr(cls, "__name__", str(cls)) if cls is not None else "module"
    return f"'{path}' ({cls_name}).forward"


class _Importer:
    """Walks the fx graph of a model, building :class:`AffineOp` s while tracking the activation shape."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...] | None):
        self.model = model
        self.top = f"{type(model).__name__}.forward"
        self.input_shape = input_shape
        self.shape: tuple[int, ...] | None = input_shape
        self.ops: list[AffineOp] = []
        self.last_was_relu = False  # a ReLU directly preceded the current position (BatchNorm check)
        self.skips: list[ResidualSkip] = []  # residual additions (import_residual_network)

    # -------------------------------------------------------------------------------------------- helpers
    def _require_shape(self, name: str, module: nn.Module) -> tuple[int, ...]:
        if self.shape is None:
            raise UnsupportedLayerError(
                f"layer '{name}' ({type(module).__name__}) comes first and does not fix the input size; "
                f"pass input_shape=(channels, height, width)")
        return self.shape

    def _set_relu(self, name: str) -> None:
        if not self.ops:
            raise UnsupportedLayerError(f"ReLU '{name}' is applied to the network input; remove it (inputs are "
                                        f"non-negative) or place it after a Linear/Conv2d")
        self.ops[-1] = replace(self.ops[-1], relu_after=True)

    # -------------------------------------------------------------------------------------------- layers
    def linear(self, name: str, module: nn.Linear) -> None:
        n_in = module.in_features
        if self.shape is None:
            self.shape = self.input_shape = (n_in,)
        if int(np.prod(self.shape)) != n_in:
            raise UnsupportedLayerError(
                f"layer '{name}' (Linear) expects {n_in} inputs but receives {int(np.prod(self.shape))} "
                f"(shape {tuple(self.shape)}); pass the input_shape the model was trained on")
        weight = module.weight.detach().double().numpy().copy()
        bias = (module.bias.detach().double().numpy().copy() if module.bias is not None
                else np.zeros(module.out_features))
        self.ops.append(AffineOp("linear", name, weight, bias, tuple(self.shape), (module.out_features,)))
        self.shape = (module.out_features,)

    def conv2d(self, name: str, module: nn.Conv2d) -> None:
        if module.groups != 1:
            raise UnsupportedLayerError(f"layer '{name}' (Conv2d) has groups={module.groups}; only groups=1 is "
                                        f"supported, use a plain Conv2d")
        if _pair(module.dilation) != (1, 1):
            raise UnsupportedLayerError(f"layer '{name}' (Conv2d) has dilation={module.dilation}; only dilation=1 "
                                        f"is supported")
        if module.padding_mode != "zeros":
            raise UnsupportedLayerError(f"layer '{name}' (Conv2d) has padding_mode={module.padding_mode!r}; only "
                                        f"'zeros' is supported")
        kernel = _pair(module.kernel_size)
        if isinstance(module.padding, str):
            if module.padding == "valid":
                padding = (0, 0)
            elif all(k % 2 == 1 for k in kernel) and _pair(module.stride) == (1, 1):
                padding = (kernel[0] // 2, kernel[1] // 2)
            else:
                raise UnsupportedLayerError(f"layer '{name}' (Conv2d) uses padding='same' with an even kernel; "
                                            f"give the padding as integers")
        else:
            padding = _pair(module.padding)
        shape = self._require_shape(name, module)
        if len(shape) != 3 or shape[0] != module.in_channels:
            raise UnsupportedLayerError(
                f"layer '{name}' (Conv2d) expects input (channels={module.in_channels}, height, width) but "
                f"receives shape {tuple(shape)}; pass the input_shape the model was trained on")
        stride = _pair(module.stride)
        _, h, w = shape
        ho = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
        wo = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
        if ho < 1 or wo < 1:
            raise UnsupportedLayerError(f"layer '{name}' (Conv2d) kernel {kernel} does not fit its input "
                                        f"{tuple(shape)}")
        weight = module.weight.detach().double().numpy().copy()
        bias = (module.bias.detach().double().numpy().copy() if module.bias is not None
                else np.zeros(module.out_channels))
        out_shape = (module.out_channels, ho, wo)
        self.ops.append(AffineOp("conv2d", name, weight, bias, tuple(shape), out_shape,
                                 kernel=kernel, stride=stride, padding=padding))
        self.shape = out_shape

    def avgpool2d(self, name: str, module: nn.AvgPool2d) -> None:
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        if _pair(module.padding) != (0, 0) or module.ceil_mode or module.divisor_override is not None:
            raise UnsupportedLayerError(f"layer '{name}' (AvgPool2d) uses padding, ceil_mode or divisor_override; "
                                        f"use AvgPool2d(kernel_size, stride) without them")
        shape = self._require_shape(name, module)
        if len(shape) != 3:
            raise UnsupportedLayerError(f"layer '{name}' (AvgPool2d) needs a (channels, height, width) input but "
                                        f"receives shape {tuple(shape)}")
        c, h, w = shape
        out_shape = (c, (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1)
        if out_shape[1] < 1 or out_shape[2] < 1:
            raise UnsupportedLayerError(f"layer '{name}' (AvgPool2d) kernel {kernel} does not fit its input "
                                        f"{tuple(shape)}")
        # Inputs of a pool are non-negative (a ReLU or the input image precedes it), so the pool's own output is
        # non-negative and its ReLU is the identity: pool units are IF neurons like any other (Diehl §II-B).
        self.ops.append(AffineOp("avgpool2d", name, np.array(1.0 / (kernel[0] * kernel[1])), np.zeros(c),
                                 tuple(shape), out_shape, relu_after=True, kernel=kernel, stride=stride))
        self.shape = out_shape

    def batchnorm(self, name: str, module: nn.modules.batchnorm._BatchNorm) -> None:
        previous = self.ops[-1] if self.ops else None
        if previous is None or previous.kind == "avgpool2d" or self.last_was_relu:
            raise UnsupportedLayerError(
                f"layer '{name}' ({type(module).__name__}) does not directly follow a Linear or Conv2d; place "
                f"BatchNorm right after a Linear/Conv2d (before its ReLU) so it can be folded into it")
        if module.running_mean is None or module.running_var is None:
            raise UnsupportedLayerError(f"layer '{name}' ({type(module).__name__}) has no running statistics "
                                        f"(track_running_stats=False); train it with running statistics")
        expected = 2 if previous.kind == "linear" else 4
        if (isinstance(module, nn.BatchNorm2d)) != (previous.kind == "conv2d"):
            raise UnsupportedLayerError(f"layer '{name}' ({type(module).__name__}) does not match the preceding "
                                        f"{previous.kind} layer; use BatchNorm1d after Linear, BatchNorm2d after "
                                        f"Conv2d")
        if module.num_features != previous.n_channels_out:
            raise UnsupportedLayerError(f"layer '{name}' ({type(module).__name__}) has {module.num_features} "
                                        f"features but '{previous.name}' has {previous.n_channels_out} outputs")
        mean = module.running_mean.detach().double().numpy()
        var = module.running_var.detach().double().numpy()
        gamma = module.weight.detach().double().numpy() if module.weight is not None else np.ones_like(mean)
        beta = module.bias.detach().double().numpy() if module.bias is not None else np.zeros_like(mean)
        factor = gamma / np.sqrt(var + module.eps)
        weight = previous.weight * factor.reshape((-1,) + (1,) * (expected - 1))
        bias = (previous.bias - mean) * factor + beta
        self.ops[-1] = replace(previous, weight=weight, bias=bias, name=f"{previous.name}+{name}")

    def flatten(self, name: str, start_dim: int = 1, end_dim: int = -1) -> None:
        if (start_dim, end_dim) != (1, -1):
            raise UnsupportedLayerError(f"layer '{name}' flattens dims {start_dim}..{end_dim}; only "
                                        f"Flatten(start_dim=1, end_dim=-1) is supported")
        if self.shape is not None:
            self.shape = (int(np.prod(self.shape)),)

    # -------------------------------------------------------------------------------------------- modules
    def module(self, name: str, module: nn.Module) -> None:
        kind = type(module).__name__
        was_relu, self.last_was_relu = self.last_was_relu, False
        if isinstance(module, nn.Linear):
            self.linear(name, module)
        elif isinstance(module, nn.Conv2d):
            self.conv2d(name, module)
        elif isinstance(module, nn.AvgPool2d):
            self.avgpool2d(name, module)
        elif isinstance(module, nn.ReLU):
            self._set_relu(name)
            self.last_was_relu = True
        elif isinstance(module, nn.Flatten):
            self.flatten(name, module.start_dim, module.end_dim)
            self.last_was_relu = was_relu
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.last_was_relu = was_relu
            self.batchnorm(name, module)
        elif isinstance(module, _DROPPED):
            self.last_was_relu = was_relu
        elif isinstance(module, (nn.MaxPool2d, nn.MaxPool1d, nn.AdaptiveMaxPool2d)):
            raise UnsupportedLayerError(f"layer '{name}' ({kind}) is max pooling; use AvgPool2d (Diehl 2015 §3: "
                                        f"average pooling converts to IF neurons)")
        elif isinstance(module, _SMOOTH_ACTIVATIONS):
            raise UnsupportedLayerError(f"layer '{name}' ({kind}) is not a ReLU; use nn.ReLU (rate-coded IF "
                                        f"neurons approximate ReLU only)")
        elif isinstance(module, (nn.Softmax, nn.LogSoftmax)):
            raise UnsupportedLayerError(f"layer '{name}' ({kind}) is not supported; remove it (the SNN's class is "
                                        f"the argmax of the output layer, which softmax does not change)")
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            raise UnsupportedLayerError(f"layer '{name}' ({kind}) is not supported; use AvgPool2d with an explicit "
                                        f"kernel_size and stride")
        else:
            raise UnsupportedLayerError(f"layer '{name}' ({kind}) is not supported; use Linear, Conv2d, AvgPool2d, "
                                        f"ReLU, Flatten, Dropout or BatchNorm")

    # -------------------------------------------------------------------------------------------- graph
    def _shortcut_conv(self, node: torch.fx.Node, module: nn.Module) -> bool:
        """A Conv2d on a branch point whose only user is an addition: a residual block's projection shortcut."""
        if not isinstance(module, nn.Conv2d) or len(node.users) != 1:
            return False
        user = next(iter(node.users))
        source = node.all_input_nodes[0] if len(node.all_input_nodes) == 1 else None
        return (user.op == "call_function" and user.target in _ADDITIONS and source is not None
                and len(source.users) >= 2)

    def _addition(self, node: torch.fx.Node, current, produced: dict, shapes: dict, shortcuts: dict) -> None:
        """``main + shortcut`` of a residual block (Sengupta 2019 §6): the main operand is the last layer's
        pre-ReLU output, the other a ReLU output (or the input) of an earlier layer, directly or through a
        projection conv; a ReLU must follow (checked by the caller)."""
        where = _where(node, self.top)
        operands = [a for a in node.args if isinstance(a, torch.fx.Node)]
        if len(operands) != 2 or len(node.args) != 2 or node.kwargs:
            raise UnsupportedLayerError(f"{where}: only additions of two tensors form residual junctions")
        if current not in operands or not self.ops or self.ops[-1].relu_after:
            raise UnsupportedLayerError(f"{where}: a residual addition must add a shortcut to the previous layer's "
                                        f"output before its ReLU (Sengupta 2019 §6: ReLU at each junction)")
        other = operands[1] if operands[0] is current else operands[0]
        shortcut = shortcuts.get(other)
        source = shortcut[0] if shortcut is not None else other
        if source not in produced:
            raise UnsupportedLayerError(f"{where}: the shortcut must start at the network input or at a ReLU "
                                        f"output (spikes), not at '{source.name}'")
        op = shortcut[1] if shortcut is not None else None
        target = len(self.ops)
        if produced[source] >= target - 1:
            raise UnsupportedLayerError(f"{where}: the shortcut skips no layer; a residual block needs at least "
                                        f"one layer on its main path before the junction")
        out_shape = op.out_shape if op is not None else shapes[source]
        if tuple(out_shape) != tuple(self.ops[-1].out_shape):
            raise UnsupportedLayerError(f"{where}: the shortcut has shape {tuple(out_shape)} but the main path "
                                        f"{tuple(self.ops[-1].out_shape)}; use a 1×1 strided Conv2d shortcut")
        self.skips.append(ResidualSkip(target, produced[source], op))

    def run(self) -> list[AffineOp]:
        graph = _trace(self.model)
        modules = dict(self.model.named_modules())
        current: torch.fx.Node | None = None
        produced: dict = {}  # node → the layer (1-based, 0 = input) whose ReLU output (spikes) it holds
        shapes: dict = {}
        shortcuts: dict = {}  # node → (source node, AffineOp) of a projection shortcut
        junction = None  # an addition that still needs its ReLU
        for node in graph.nodes:
            if node.op == "placeholder":
                if current is not None:
                    raise UnsupportedLayerError("the model's forward takes more than one input; only single-input "
                                                "networks can be converted")
                current = node
                produced[node], shapes[node] = 0, self.shape
                continue
            is_relu = (node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU)) or (
                node.op == "call_function" and node.target in _RELU_CALLS) or (
                node.op == "call_method" and node.target in ("relu", "relu_"))
            if junction is not None and not (is_relu and node.all_input_nodes == [junction]):
                raise UnsupportedLayerError(f"{_where(junction, self.top)}: the residual addition is not followed "
                                            f"by a ReLU (Sengupta 2019 §6: ReLU at each junction)")
            if junction is not None and is_relu and node.all_input_nodes == [junction]:
                self._set_relu(str(node.name))
                junction, current = None, node
                produced[node], shapes[node] = len(self.ops), self.shape
                continue
            if node.op == "call_module" and self._shortcut_conv(node, modules[str(node.target)]):
                source = node.all_input_nodes[0]
                if source not in shapes:
                    raise UnsupportedLayerError(f"shortcut '{node.target}' reads a tensor the converter cannot see")
                saved, self.shape = self.shape, shapes[source]
                self.conv2d(str(node.target), modules[str(node.target)])
                shortcuts[node] = (source, self.ops.pop())
                self.shape = saved
                continue
            if node.op == "call_function" and node.target in _ADDITIONS:
                self._addition(node, current, produced, shapes, shortcuts)
                junction = current = node
                shapes[node] = self.shape
                continue
            if node.op == "get_attr":
                raise UnsupportedLayerError(f"{_where(node, self.top)} reads the parameter '{node.target}' directly in "
                                            f"forward; use nn.Linear/nn.Conv2d modules")
            if node.op == "output":
                if node.args[0] is not current:
                    raise UnsupportedLayerError("the model's output is not the result of its last layer; only a "
                                                "plain chain of layers can be converted")
                break
            if node.op == "call_function" and node.target in _RELU_CALLS or (
                    node.op == "call_method" and node.target in ("relu", "relu_")):
                raise UnsupportedLayerError(f"{_where(node, self.top)} calls relu as a function; use nn.ReLU "
                                            f"modules so the converter can see them")
            if node.op == "call_method" and node.target == "size":
                continue  # a shape query, used by x.view(x.size(0), -1)
            tensor_inputs = [a for a in node.all_input_nodes
                             if not (a.op == "call_method" and a.target == "size")]
            if tensor_inputs != [current]:
                raise UnsupportedLayerError(f"{_where(node, self.top)}: '{node.name}' does not take the previous "
                                            f"layer's output as its only input; branches and residual connections are "
                                            f"not yet supported")
            if node.op == "call_module":
                self.module(str(node.target), modules[str(node.target)])
                if self.ops and self.ops[-1].relu_after and (isinstance(modules[str(node.target)], (
                        nn.ReLU, nn.AvgPool2d)) or current in produced):
                    produced[node] = len(self.ops)  # a ReLU output (or passed through dropout/flatten)
            elif node.op == "call_method" and node.target in _RESHAPES or (
                    node.op == "call_function" and node.target is torch.flatten):
                self.flatten(f"{node.name} in {_where(node, self.top)}")  # checked by the output comparison below
            else:
                target = getattr(node.target, "__name__", str(node.target))
                raise UnsupportedLayerError(f"{_where(node, self.top)} calls '{target}'; only nn.Linear, "
                                            f"nn.Conv2d, nn.AvgPool2d, nn.ReLU, nn.Flatten, dropout and batch-norm "
                                            f"modules can be converted")
            current = node
            shapes[node] = self.shape
        if junction is not None:
            raise UnsupportedLayerError(f"{_where(junction, self.top)}: the residual addition is not followed by a "
                                        f"ReLU (Sengupta 2019 §6: ReLU at each junction)")
        if not self.ops:
            raise UnsupportedLayerError("the model has no Linear or Conv2d layer to convert")
        for op in self.ops[:-1]:
            if not op.relu_after:
                raise UnsupportedLayerError(f"hidden layer '{op.name}' ({op.kind}) is not followed by nn.ReLU; every "
                                            f"hidden layer must end in a ReLU to become IF neurons (Diehl 2015 §3)")
        return self.ops


def _trace(model: nn.Module) -> torch.fx.Graph:
    try:
        return torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - any tracing failure means "not a plain chain"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UnsupportedLayerError(f"{type(model).__name__}.forward cannot be traced by torch.fx ({first_line}); "
                                    f"write the network as an nn.Sequential of supported layers") from None


def _check_against_model(model: nn.Module, ops: list[AffineOp], input_shape: tuple[int, ...],
                         skips: Sequence[ResidualSkip] = ()) -> None:
    """Run model and ops on one random non-negative batch; refuse the import if they disagree."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((4, *input_shape), generator=generator, dtype=torch.float64)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            expected = _run_model_float64(model, x)
    except Exception as exc:  # noqa: BLE001
        raise UnsupportedLayerError(f"the model cannot run on inputs of shape {tuple(input_shape)} "
                                    f"({exc.__class__.__name__}); pass the input_shape it was trained on") from None
    finally:
        model.train(was_training)
    got = forward_ops(ops, x, skips=skips)
    if expected.shape[0] != 4 or expected.reshape(4, -1).shape != got.reshape(4, -1).shape or not torch.allclose(
            expected.reshape(4, -1), got.reshape(4, -1), rtol=1e-6, atol=1e-8 * (1 + float(expected.abs().max()))):
        raise UnsupportedLayerError(f"{type(model).__name__}: the imported layers do not reproduce the model's "
                                    f"output (its forward does something besides a chain of supported layers); "
                                    f"write it as an nn.Sequential")


def _run_model_float64(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Evaluate ``model`` in float64 without changing the caller's model (a deep copy is converted)."""
    return copy.deepcopy(model).double()(x)


def import_network(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[AffineOp]:
    """Import ``model`` (eval-mode semantics) as a list of :class:`AffineOp`, one per spiking layer.

    ``input_shape`` is the shape of one sample without the batch dimension, e.g. ``(784,)``, ``(28, 28)`` or
    ``(1, 28, 28)``; it may be omitted when the first weighted layer is a Linear (then ``(in_features,)``), and is
    required when it is a Conv2d. Raises :class:`UnsupportedLayerError` for anything that cannot be converted.
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedLayerError(f"expected a torch.nn.Module, got {type(model).__name__}")
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
    if shape is not None and (not shape or min(shape) < 1):
        raise UnsupportedLayerError(f"input_shape={shape} is not a valid sample shape; give e.g. (784,) or (1, 28, 28)")
    importer = _Importer(model, shape)
    ops = importer.run()
    if importer.skips:
        raise UnsupportedLayerError(f"{type(model).__name__} has residual additions; convert it with "
                                    f"golden.conversion.residual.convert_residual (import_residual_network)")
    if shape is None:
        shape = ops[0].in_shape
    _check_against_model(model, ops, shape)
    return ops


def import_residual_network(model: nn.Module, input_shape: Sequence[int]) -> tuple[list[AffineOp],
                                                                                   list[ResidualSkip]]:
    """:func:`import_network` for networks with residual blocks (``relu(main + shortcut)``, the shortcut the
    identity or a projection ``nn.Conv2d`` on an earlier ReLU output; Sengupta 2019 §6): the ops and the
    :class:`ResidualSkip` list, checked against the model's output."""
    if not isinstance(model, nn.Module):
        raise UnsupportedLayerError(f"expected a torch.nn.Module, got {type(model).__name__}")
    shape = tuple(int(s) for s in input_shape)
    importer = _Importer(model, shape)
    ops = importer.run()
    _check_against_model(model, ops, shape, importer.skips)
    return ops, list(importer.skips)


def network_input_shape(ops: Sequence[AffineOp]) -> tuple[int, ...]:
    """The sample shape the first op consumes (``(n,)`` for a dense-first network, ``(c, h, w)`` for conv)."""
    first = ops[0]
    return (int(np.prod(first.in_shape)),) if first.kind == "linear" else tuple(first.in_shape)


__all__ = ["AffineOp", "ResidualSkip", "apply_op", "forward_ops", "import_network", "import_residual_network", "network_input_shape"]
