"""Simulation of an :class:`~golden.ir.IntegerNetwork`: the bit-accurate integer golden model and a float model.

Time order (SPEC §2): for t = 1..T, for l = 1..L, layer l consumes the spikes layer l−1 emitted at the **same**
step t (layer 0 = the input). Every image starts from zero state; images of a batch are independent (the same as
the hardware's state reset between images).

Exactness. The synaptic input ``I = Σ_i W[j,i]·x_i`` is computed as a matrix product in floating point on integer
values, which is exact as long as every partial sum stays below the format's integer range: ``Σ_i |W[j,i]| ·
max x < 2^53`` (float64). :class:`IntegerSimulator` checks this bound per layer (and uses float32, exact below
2^24, on the CPU when the bound allows it); conv and pooling are computed as ``unfold`` (im2col, a pure copy) plus a
matrix product, so no library-chosen algorithm (Winograd, FFT) can round. Membranes are int64. The result is
therefore identical on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import counting, cycle_model
from .errors import SnnCosimError, WidthError
from .ir import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams
from .neurons import FloatNeuron, IntegerNeuron, Neuron
from .trace import COUNTER_NAMES, Trace

__all__ = ["IntegerSimulator", "FloatSimulator", "FloatRun", "accuracy_curve", "predict", "default_device"]

_EXACT_LIMIT = {torch.float64: 2 ** 53, torch.float32: 2 ** 24}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict(output_counts) -> np.ndarray:
    """``argmax`` over the last axis of output spike counts, ties to the lowest index (SPEC §3)."""
    counts = np.asarray(output_counts.cpu() if isinstance(output_counts, torch.Tensor) else output_counts)
    return np.argmax(counts, axis=-1).astype(np.int64)  # numpy returns the first maximum


# ----------------------------------------------------------------------------------------------- synapses
class Synapses(nn.Module):
    """``x [B, n_in] → Σ_i W[j,i]·x_i`` as ``[B, n_out]`` in the module's floating dtype (no bias)."""

    def __init__(self, layer, dtype: torch.dtype):
        super().__init__()
        self.kind = layer.kind
        self.n_in, self.n_out = layer.n_in, layer.n_out
        if isinstance(layer, DenseLayer):
            w = torch.as_tensor(np.asarray(layer.weight), dtype=dtype)
            self.register_buffer("weight_t", w.t().contiguous(), persistent=False)  # [n_in, n_out]
        elif isinstance(layer, Conv2dLayer):
            w = torch.as_tensor(np.asarray(layer.weight), dtype=dtype)
            self.register_buffer("weight_t", w.reshape(w.shape[0], -1).t().contiguous(), persistent=False)
            self.in_shape = tuple(int(s) for s in layer.in_shape)
            self.kernel = (int(w.shape[2]), int(w.shape[3]))
            self.stride, self.padding = tuple(layer.stride), tuple(layer.padding)
            self.out_shape = layer.out_shape
        elif isinstance(layer, AvgPool2dLayer):
            self.pool_weight = layer.weight  # int (integer model) or float (float model)
            self.in_shape = tuple(int(s) for s in layer.in_shape)
            self.kernel, self.stride, self.padding = tuple(layer.kernel), tuple(layer.stride), (0, 0)
            self.out_shape = layer.out_shape
        else:
            raise SnnCosimError(f"cannot simulate layer kind {getattr(layer, 'kind', type(layer).__name__)!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if self.kind == "dense":
            return x @ self.weight_t
        cols = F.unfold(x.reshape(batch, *self.in_shape), self.kernel, padding=self.padding, stride=self.stride)
        if self.kind == "conv2d":  # cols [B, c_in·kh·kw, L]
            out = (cols.transpose(1, 2) @ self.weight_t).transpose(1, 2)  # [B, c_out, L]
        else:
            c = self.in_shape[0]
            out = cols.reshape(batch, c, self.kernel[0] * self.kernel[1], -1).sum(2) * self.pool_weight
        return out.reshape(batch, -1)  # (c, h, w) order


def _per_neuron(layer, values) -> np.ndarray:
    """Per-channel threshold/bias of conv and pool layers → one value per output neuron (c, h, w order)."""
    values = np.asarray(values)
    if layer.kind == "dense":
        return values.reshape(-1)
    _, ho, wo = layer.out_shape
    return np.repeat(values.reshape(-1), ho * wo)


def _as_time_major(inputs, n_inputs: int, direct: bool, input_bits: int) -> torch.Tensor:
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    elif not isinstance(inputs, torch.Tensor):
        raise SnnCosimError(f"inputs must be a torch tensor or numpy array [T, B, n_in], got {type(inputs).__name__}")
    if inputs.dim() != 3 or inputs.shape[2] != n_inputs:
        raise SnnCosimError(
            f"inputs must have shape [T, B, {n_inputs}] (time-major), got {tuple(inputs.shape)}")
    if inputs.shape[0] < 1 or inputs.shape[1] < 1:
        raise SnnCosimError(f"inputs must hold at least one step and one image, got {tuple(inputs.shape)}")
    if inputs.dtype.is_floating_point or inputs.dtype.is_complex:
        raise SnnCosimError(f"inputs must be {'integer codes' if direct else 'bool spikes'}, got {inputs.dtype}")
    if direct:
        hi = 2 ** input_bits - 1
        lo_v, hi_v = int(inputs.min()), int(inputs.max())
        if lo_v < 0 or hi_v > hi:
            raise SnnCosimError(f"direct input codes span [{lo_v}, {hi_v}] but input_bits={input_bits} allows [0, {hi}]")
    elif inputs.dtype != torch.bool:
        if int(inputs.min()) < 0 or int(inputs.max()) > 1:
            raise SnnCosimError("rate-coded inputs must be spikes (bool or 0/1); use input_coding 'direct' for codes")
        inputs = inputs != 0
    return inputs


DEFAULT_BATCH_SIZE = 512  # images per batch when batch_size=None (results never depend on it)


def _check_batch_size(batch_size, n_images: int) -> int:
    if batch_size is None:
        return max(1, min(n_images, DEFAULT_BATCH_SIZE))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SnnCosimError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return batch_size


# ----------------------------------------------------------------------------------------------- common engine
class _Simulator:
    """Shared time/layer loop of both simulators."""

    network: IntegerNetwork
    synapses: nn.ModuleList
    neurons: nn.ModuleList
    device: torch.device
    dtype: torch.dtype
    direct: bool

    def _build(self, network: IntegerNetwork, make_neuron, dtype: torch.dtype, device) -> None:
        self.network = network
        self.device = default_device() if device is None else torch.device(device)
        self.dtype = dtype
        self.direct = network.input_coding == "direct"
        self.synapses = nn.ModuleList([Synapses(layer, dtype) for layer in network.layers]).to(self.device)
        self.neurons = nn.ModuleList([make_neuron(layer) for layer in network.layers]).to(self.device)
        self.fan_out = [torch.as_tensor(counting.fan_out(layer), dtype=torch.float64, device=self.device)
                        for layer in network.layers]

    def _steps(self, x_all: torch.Tensor, *, record_all: bool, record_membranes: bool, record_stats: bool):
        """Run one batch ``x_all [T, B, n_0]`` (on the device). Returns (spikes list [B, T, n_l] — all layers or
        only the output one —, membranes list or None, stats dict of [B, T, L] int64 or None)."""
        steps, batch = x_all.shape[0], x_all.shape[1]
        n_layers = len(self.neurons)
        for neuron in self.neurons:
            neuron.reset_state(batch, device=self.device)
        record_layers = range(n_layers) if record_all else [n_layers - 1]
        spikes = {l: torch.empty((batch, steps, self.neurons[l].n), dtype=torch.bool, device=self.device)
                  for l in record_layers}
        membranes = None
        if record_membranes:
            membranes = [torch.empty((batch, steps, n.n), dtype=n.threshold.dtype, device=self.device)
                         for n in self.neurons]
        stats = None
        if record_stats:
            stats = {k: torch.zeros((batch, steps, n_layers), dtype=torch.int64, device=self.device)
                     for k in ("s_in", "acs", "spikes", "saturations")}
        for t in range(steps):
            x = x_all[t]
            for l in range(n_layers):
                xf = x.to(self.dtype)
                if stats is not None:
                    if l == 0 and self.direct:
                        stats["s_in"][:, t, l] = self.network.n_inputs
                    else:
                        stats["s_in"][:, t, l] = x.sum(-1, dtype=torch.int64)
                        stats["acs"][:, t, l] = (x.to(torch.float64) @ self.fan_out[l]).to(torch.int64)
                current = self.synapses[l](xf)
                x = self.neurons[l](current)
                if l in spikes:
                    spikes[l][:, t] = x
                if membranes is not None:
                    membranes[l][:, t] = self.neurons[l].v
                if stats is not None:
                    stats["spikes"][:, t, l] = x.sum(-1, dtype=torch.int64)
                    saturated = getattr(self.neurons[l], "saturated", None)
                    if saturated is not None:
                        stats["saturations"][:, t, l] = saturated.sum(-1, dtype=torch.int64)
        return [spikes[l] for l in record_layers], membranes, stats

    def _inputs(self, inputs) -> torch.Tensor:
        return _as_time_major(inputs, self.network.n_inputs, self.direct, self.network.input_bits)

    def output_spikes(self, inputs, *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Output-layer spikes only, ``bool [N, T, n_out]`` (light: nothing else is kept)."""
        inputs = self._inputs(inputs)
        steps, n_images = inputs.shape[0], inputs.shape[1]
        batch_size = _check_batch_size(batch_size, n_images)
        out = np.empty((n_images, steps, self.network.n_outputs), dtype=bool)
        with torch.no_grad(), tqdm(total=n_images, unit="img", disable=not progress, leave=False) as bar:
            for start in range(0, n_images, batch_size):
                stop = min(n_images, start + batch_size)
                x_all = inputs[:, start:stop].to(self.device)
                (spk,), _, _ = self._steps(x_all, record_all=False, record_membranes=False, record_stats=False)
                out[start:stop] = spk.cpu().numpy()
                bar.update(stop - start)
        return out


# ----------------------------------------------------------------------------------------------- integer
class IntegerSimulator(_Simulator):
    """The golden model: bit-accurate integer simulation of an :class:`IntegerNetwork` (SPEC §1–§5).

    ``device`` defaults to CUDA when present, else CPU; results are identical on every device."""

    def __init__(self, network: IntegerNetwork, device=None):
        network.validate()
        device = default_device() if device is None else torch.device(device)
        dtype = self._compute_dtype(network, device)

        def make(layer) -> Neuron:
            return IntegerNeuron(layer.neuron, _per_neuron(layer, layer.threshold), _per_neuron(layer, layer.bias),
                                 network.membrane_bits)

        self._build(network, make, dtype, device)

    @staticmethod
    def _compute_dtype(network: IntegerNetwork, device: torch.device) -> torch.dtype:
        """float64, or float32 on the CPU when every layer's bound is below 2^24; error when even float64
        could round (``Σ|W| · max input ≥ 2^53``)."""
        worst = 0
        for index, layer in enumerate(network.layers, start=1):
            max_in = (2 ** network.input_bits - 1) if (index == 1 and network.input_coding == "direct") else 1
            bound = layer.fan_in_abs_max() * max_in
            if bound >= _EXACT_LIMIT[torch.float64]:
                raise WidthError(
                    f"layer {index}: synaptic input can reach {bound} >= 2^53, which the simulator cannot sum "
                    f"exactly; reduce weight_bits or the fan-in")
            worst = max(worst, bound)
        if device.type == "cpu" and worst < _EXACT_LIMIT[torch.float32]:
            return torch.float32
        return torch.float64

    def run(self, input_spikes, *, lanes: int = 8, record_membranes: bool = False, batch_size: int | None = None,
            progress: bool = False) -> Trace:
        """Simulate every image of ``input_spikes`` (``bool [T, B, n_0]``, or int codes for input coding
        "direct") and return the full :class:`Trace`: spikes per layer, membranes (end of step, after reset)
        when ``record_membranes``, counters ``[N, T, L, 9]`` for a ``lanes``-wide engine, image cycles,
        predictions and the input spikes."""
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise SnnCosimError(f"lanes must be a positive integer, got {lanes!r}")
        inputs = self._inputs(input_spikes)
        steps, n_images = inputs.shape[0], inputs.shape[1]
        batch_size = _check_batch_size(batch_size, n_images)
        n_layers = len(self.network.layers)
        sizes = self.network.layer_sizes
        spikes = [np.empty((n_images, steps, n), dtype=bool) for n in sizes[1:]]
        membranes = [np.empty((n_images, steps, n), dtype=np.int64) for n in sizes[1:]] if record_membranes else None
        counters = np.empty((n_images, steps, n_layers, len(COUNTER_NAMES)), dtype=np.int64)
        with torch.no_grad(), tqdm(total=n_images, unit="img", disable=not progress, leave=False,
                                   desc="golden") as bar:
            for start in range(0, n_images, batch_size):
                stop = min(n_images, start + batch_size)
                x_all = inputs[:, start:stop].to(self.device)
                spk, mem, stats = self._steps(x_all, record_all=True, record_membranes=record_membranes,
                                              record_stats=True)
                for l in range(n_layers):
                    spikes[l][start:stop] = spk[l].cpu().numpy()
                    if mem is not None:
                        membranes[l][start:stop] = mem[l].cpu().numpy()
                counters[start:stop] = counting.assemble_counters(
                    stats["s_in"], stats["acs"], stats["spikes"], stats["saturations"], self.network,
                    lanes).cpu().numpy()
                bar.update(stop - start)
        image_cycles = counters[..., COUNTER_NAMES.index("cycles")].sum(axis=(1, 2)) + cycle_model.C_IMAGE
        predictions = predict(spikes[-1].sum(axis=1, dtype=np.int64))
        input_record = None
        if not self.direct:
            input_record = inputs.permute(1, 0, 2).cpu().numpy().astype(bool, copy=False)
        meta = {"source": "golden", "lanes": lanes, "c_layer": cycle_model.C_LAYER,
                "c_image": cycle_model.C_IMAGE, "input_coding": self.network.input_coding}
        return Trace(spikes=spikes, counters=counters, image_cycles=image_cycles.astype(np.int64),
                     predictions=predictions, membranes=membranes, input_spikes=input_record, meta=meta)


# ----------------------------------------------------------------------------------------------- float
@dataclass
class FloatRun:
    """Result of :meth:`FloatSimulator.run`: spikes per neuron over all steps (``int64 [N, n_l]`` per layer),
    spikes per (image, step, layer) ``int64 [N, T, L]``, synaptic operations (ACs, or MACs for a direct first
    layer, as in :mod:`golden.counting`) per (image, step, layer), output spikes ``bool [N, T, n_out]`` and
    predictions ``int64 [N]``."""

    spike_counts: list[np.ndarray]
    step_spikes: np.ndarray
    synaptic_ops: np.ndarray
    output_spikes: np.ndarray
    predictions: np.ndarray


class FloatSimulator(_Simulator):
    """The same network structure with float64 weights, biases and thresholds and no saturation (accuracy studies).

    Takes an :class:`IntegerNetwork`-shaped object whose arrays are floats (``golden.convert``'s
    ``float_network``: normalised weights, thresholds 1.0); an integer network works too. A "direct" first
    layer receives the given input values as they are."""

    def __init__(self, network: IntegerNetwork, device=None):
        def make(layer) -> Neuron:
            params = layer.neuron if isinstance(layer.neuron, NeuronParams) else NeuronParams(**layer.neuron)
            return FloatNeuron(params, _per_neuron(layer, np.asarray(layer.threshold, dtype=np.float64)),
                               _per_neuron(layer, np.asarray(layer.bias, dtype=np.float64)))

        if not network.layers:
            raise SnnCosimError("the network has no layers")
        self._build(network, make, torch.float64, device)

    def _inputs(self, inputs) -> torch.Tensor:
        if self.direct:
            if isinstance(inputs, np.ndarray):
                inputs = torch.from_numpy(np.ascontiguousarray(inputs))
            if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or inputs.shape[2] != self.network.n_inputs:
                raise SnnCosimError(f"inputs must have shape [T, B, {self.network.n_inputs}] (time-major)")
            return inputs
        return super()._inputs(inputs)

    def run(self, inputs, *, batch_size: int | None = None, progress: bool = False) -> FloatRun:
        inputs = self._inputs(inputs)
        steps, n_images = inputs.shape[0], inputs.shape[1]
        batch_size = _check_batch_size(batch_size, n_images)
        sizes = self.network.layer_sizes
        n_layers = len(sizes) - 1
        counts = [np.zeros((n_images, n), dtype=np.int64) for n in sizes[1:]]
        step_spikes = np.zeros((n_images, steps, n_layers), dtype=np.int64)
        ops = np.zeros((n_images, steps, n_layers), dtype=np.int64)
        out = np.empty((n_images, steps, sizes[-1]), dtype=bool)
        geo = counting.layer_geometry(self.network) if self.direct else None
        with torch.no_grad(), tqdm(total=n_images, unit="img", disable=not progress, leave=False,
                                   desc="float") as bar:
            for start in range(0, n_images, batch_size):
                stop = min(n_images, start + batch_size)
                spk, _, stats = self._steps(inputs[:, start:stop].to(self.device), record_all=True,
                                            record_membranes=False, record_stats=True)
                for l in range(n_layers):
                    counts[l][start:stop] = spk[l].sum(1, dtype=torch.int64).cpu().numpy()
                out[start:stop] = spk[-1].cpu().numpy()
                step_spikes[start:stop] = stats["spikes"].cpu().numpy()
                ops[start:stop] = stats["acs"].cpu().numpy()
                if geo is not None:
                    ops[start:stop, :, 0] = geo[0].macs_per_step
                bar.update(stop - start)
        return FloatRun(spike_counts=counts, step_spikes=step_spikes, synaptic_ops=ops, output_spikes=out,
                        predictions=predict(counts[-1]))


# ----------------------------------------------------------------------------------------------- accuracy
def accuracy_curve(simulator: _Simulator, input_spikes, labels, steps_list: Sequence[int], *,
                   batch_size: int | None = None, progress: bool = False) -> dict[int, float]:
    """Accuracy after each number of steps in ``steps_list``, from ONE run of ``max(steps_list)`` steps: the
    prediction at ``T`` is the argmax (ties to the lowest index) of the output spike counts of steps 1..T."""
    steps_list = sorted({int(s) for s in steps_list})
    if not steps_list or steps_list[0] < 1:
        raise SnnCosimError(f"steps_list must hold positive step counts, got {steps_list}")
    t_max = steps_list[-1]
    available = int(input_spikes.shape[0])
    if t_max > available:
        raise SnnCosimError(f"accuracy at {t_max} steps needs {t_max} input steps, the input has {available}")
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if labels.shape[0] != int(input_spikes.shape[1]):
        raise SnnCosimError(f"{labels.shape[0]} labels for {int(input_spikes.shape[1])} images")
    out = simulator.output_spikes(input_spikes[:t_max], batch_size=batch_size, progress=progress)
    cumulative = np.cumsum(out, axis=1, dtype=np.int64)
    return {t: float((predict(cumulative[:, t - 1]) == labels).mean()) for t in steps_list}
