"""Simulation of an :class:`~golden.core.network.IntegerNetwork`: the bit-accurate integer golden model and a float model.

Time order (SPEC §2): for t = 1..T, for l = 1..L, layer l consumes the spikes layer l−1 emitted at the **same**
step t (layer 0 = the input). Every image starts from zero state; images of a batch are independent (the same as
the hardware's state reset between images).

Exactness. The synaptic input ``I = Σ_i W[j,i]·x_i`` is computed as a matrix product in floating point on integer
values, which is exact as long as every partial sum stays below the format's integer range: ``Σ_i |W[j,i]| ·
max x < 2^53`` (float64). :class:`IntegerSimulator` checks this bound per layer (and uses float32, exact below
2^24, on the CPU when the bound allows it); conv and pooling are computed as ``unfold`` (im2col, a pure copy) plus a
matrix product, so no library-chosen algorithm (Winograd, FFT) can round. Membranes are int64. The result is
therefore identical on every device.

Weighted spikes (Kim 2018, docs/spec.md §3a). The global step counter t starts at 1 with every image; 'ws' and
'acc' neurons take their phase ``k = 1 + (t−1) mod K`` from it. A network whose output layer is the non-spiking
accumulator 'acc' predicts the argmax of that layer's membrane after the last step (ties to the lowest index);
its accuracy at T steps (:func:`accuracy_curve`) is the argmax of the accumulator at step T, i.e. of the
accumulator's trajectory, not of spike counts.

FS networks (Stöckl & Maass 2021, docs/spec.md §3b): one image takes L·K local steps in windows of K steps; in
window w layer w−1 fires (the input in window 1) and layer w collects its spikes, weighted by the source's
d_src[t]; all other layers are idle (nothing changes, every counter is 0, recorded membranes are 0). The 'acc'
output layer collects in window L; the prediction is the argmax of its membrane after step L·K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, WidthError
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, layer_inhibition
from golden.core.trace import Trace
from golden.simulation import counting, fastops
from golden.simulation.neurons import FloatFsNeuron, FloatNeuron, FsNeuron, IntegerFsNeuron, IntegerNeuron, Neuron

__all__ = ["IntegerSimulator", "FloatSimulator", "CurvePoint", "accuracy_curve",
           "accuracy_and_spikes_curve", "predict", "default_device"]

_EXACT_LIMIT = {torch.float64: 2 ** 53, torch.float32: 2 ** 24}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict(output_counts) -> np.ndarray:
    """``argmax`` over the last axis of output spike counts (or of 'acc' membranes), ties to the lowest index
    (SPEC §3)."""
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

    def of_spikes(self, spikes: torch.Tensor, dtype: torch.dtype,
                  integer_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`forward` of the binary input spikes of S steps, ``bool [S, B, n_in]`` → ``[S, B, n_out]``, computed
        in ``dtype`` (the module's floating dtype), and the input spikes per (step, image) when that came for free
        (else None). A dense layer on the CPU with a small :class:`fastops.PatternTable` (few outputs) looks the sums
        of 8 inputs at a time up (:func:`fastops.pattern_synaptic_sum`); one whose inputs change rarely (fewer than
        ``fastops.SPARSE_DENSITY`` of the entries are the rarer event of their input over the S steps) sums weight
        rows instead of multiplying (:func:`fastops.complement_synaptic_sum`); both give the same integers as the
        product, exactly, and were measured faster. Only for ``integer_weights``: float weights would be summed in
        another order, so they always take the product."""
        steps, batch = spikes.shape[0], spikes.shape[1]
        if integer_weights and self.kind == "dense" and spikes.device.type == "cpu" and spikes.numel():
            table = self._pattern_table()
            if table is not None:
                return fastops.pattern_synaptic_sum(spikes, table)
            plan = fastops.ComplementPlan(spikes)
            if plan.events < fastops.SPARSE_DENSITY * spikes.numel():
                return fastops.complement_synaptic_sum(spikes, self.weight_t, plan, self._counting_rows())
        rows = spikes.reshape(steps * batch, -1)
        return self(rows.to(dtype)).reshape(steps, batch, -1), None

    def _pattern_table(self) -> fastops.PatternTable | None:
        """The layer's :class:`fastops.PatternTable` (made once) where it fits ``fastops.PATTERN_TABLE_BYTES``."""
        if not hasattr(self, "_table"):
            fits = fastops.PatternTable.size_bytes(self.n_in, self.n_out, self.weight_t.dtype) \
                <= fastops.PATTERN_TABLE_BYTES
            self._table = fastops.PatternTable(self.weight_t) if fits else None
        return self._table

    def _counting_rows(self) -> torch.Tensor:
        """The layer's :func:`fastops.counting_rows` (made once)."""
        if not hasattr(self, "_rows"):
            self._rows = fastops.counting_rows(self.weight_t)
        return self._rows

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
_CHUNK_ELEMENTS = 1 << 24  # bound on the widest tensor of a time chunk (elements; see _Simulator._time_chunk)
_IM2COL_ELEMENTS = 1 << 21  # bound on the im2col columns of a time chunk
_STATS = ("s_in", "acs", "spikes", "saturations", "pool_words")  # pool_words: R_w of pool layers (needs lanes)


class _Simulator:
    """Shared time/layer loop of both simulators."""

    integer_weights = True  # integer-valued weights: any summation order gives the same (exact) sums

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
        self.fs = network.input_coding == "fs" or any(
            _kind(layer) == "fs" for layer in network.layers)
        if self.fs:
            self.fs_sources = counting.fs_source_weights(network)
        self.synapses = nn.ModuleList([Synapses(layer, dtype) for layer in network.layers]).to(self.device)
        self.neurons = nn.ModuleList([make_neuron(layer) for layer in network.layers]).to(self.device)
        self.fan_out = [torch.as_tensor(counting.fan_out(layer), dtype=torch.float64, device=self.device)
                        for layer in network.layers]
        # dense layers: every input reaches all n_out neurons, so ACs = S_in · n_out (no product needed)
        self.uniform_fan_out = [layer.n_out if isinstance(layer, DenseLayer) else None for layer in network.layers]
        self.pool_layers = [isinstance(layer, AvgPool2dLayer) for layer in network.layers]
        # residual junctions (docs/spec.md §4a): layer index (0-based) → (source index, synapses, fan-out)
        self.skip_synapses = {}
        for skip in network.skips:
            skip_layer = network.skip_layer(skip)
            self.skip_synapses[skip.target - 1] = (
                int(skip.source), Synapses(skip_layer, dtype).to(self.device),
                torch.as_tensor(counting.fan_out(skip_layer), dtype=torch.float64, device=self.device))
        for l, neuron in enumerate(self.neurons):
            # binary inputs through the layer's own synapses only (no direct codes, no junction's skip sum)
            if isinstance(neuron, IntegerNeuron) and l not in self.skip_synapses and not (l == 0 and self.direct):
                reach = network.layers[l].fan_in_abs_max()  # |Σ_i W[j,i]·x_i| of one step, every layer kind
                neuron.input_bounds = (-reach, reach)

    @property
    def accumulator_output(self) -> bool:
        """True when the output layer is the non-spiking accumulator ('acc'): predictions come from its membrane."""
        return not self.neurons[-1].spiking

    def _steps(self, x_all: torch.Tensor, *, spike_layers: Sequence[int] = (), membrane_layers: Sequence[int] = (),
               stats: Sequence[str] = (), lanes: int | None = None, out_spikes: dict | None = None,
               out_membranes: dict | None = None):
        """Run one batch ``x_all [T, B, n_0]`` (on the device) from zero state, global steps t = 1..T.

        Returns ``(spikes, membranes, stats)``: dicts layer index (0-based) → ``[B, T, n_l]`` for the requested
        layers, and name → ``int64 [B, T, L]`` for the requested statistics (``_STATS``; ``pool_words`` needs
        ``lanes``). ``out_spikes`` / ``out_membranes`` (layer → ``[B, T, n_l]`` tensor of the right dtype, e.g. a
        view of the caller's result array) are filled in place of new tensors. The neurons keep their final state
        (``self.neurons[l].v``) afterwards."""
        if "pool_words" in stats and lanes is None:
            raise SnnCosimError("the pool_words statistic needs the crossbar width (lanes)")
        steps, batch = x_all.shape[0], x_all.shape[1]
        n_layers = len(self.neurons)
        for neuron in self.neurons:
            neuron.reset_state(batch, device=self.device)
        out_spikes, out_membranes = out_spikes or {}, out_membranes or {}
        spikes = {l: out_spikes[l] if l in out_spikes else
                  torch.empty((batch, steps, self.neurons[l].n), dtype=torch.bool, device=self.device)
                  for l in spike_layers}
        membranes = {l: out_membranes[l] if l in out_membranes else
                     torch.empty((batch, steps, self.neurons[l].n), dtype=self.neurons[l].threshold.dtype,
                                 device=self.device) for l in membrane_layers}
        record = {k: torch.zeros((batch, steps, n_layers), dtype=torch.int64, device=self.device) for k in stats}
        if self.fs:
            self._fs_steps(x_all, spikes, membranes, record, lanes)
            return spikes, membranes, record
        skips = self.skip_synapses
        if skips:
            for name in ("skip_s_in", "skip_acs"):
                if name.removeprefix("skip_") in record:
                    record[name] = torch.zeros((batch, steps, n_layers), dtype=torch.int64, device=self.device)
        chunk = self._time_chunk(batch, steps)
        for first in range(0, steps, chunk):
            self._layer_major(x_all[first:first + chunk], first, spikes, membranes, record, lanes)
        return spikes, membranes, record

    def _time_chunk(self, batch: int, steps: int) -> int:
        """Steps simulated at once, layer by layer: as many as keep the widest per-layer tensor (synaptic input,
        im2col columns) of the chunk below ``_CHUNK_ELEMENTS``, and the im2col columns of conv and pool layers below
        ``_IM2COL_ELEMENTS`` (big im2col copies were slower per element than one step at a time: measured)."""
        chunk = _CHUNK_ELEMENTS // max(1, batch * self._widest())
        spatial = [s for s in self.synapses if s.kind != "dense"]
        spatial += [s for _, s, _ in self.skip_synapses.values() if s.kind != "dense"]
        if spatial:
            chunk = min(chunk, _IM2COL_ELEMENTS // max(1, batch * max(self._width(s) for s in spatial)))
        return max(1, min(steps, chunk))

    def _widest(self) -> int:
        """Elements per image of the widest per-step tensor (inputs, synaptic sums, im2col columns)."""
        return max([self.network.n_inputs] + [self._width(s) for s in self.synapses]
                   + [self._width(s) for _, s, _ in self.skip_synapses.values()])

    @staticmethod
    def _width(synapses: Synapses) -> int:
        if synapses.kind == "dense":
            return max(synapses.n_in, synapses.n_out)
        c, h, w = synapses.in_shape
        _, ho, wo = synapses.out_shape
        return max(synapses.n_in, synapses.n_out, c * synapses.kernel[0] * synapses.kernel[1] * ho * wo)

    def _layer_major(self, x_chunk: torch.Tensor, first: int, spikes: dict, membranes: dict, record: dict,
                     lanes: int | None) -> None:
        """Steps ``first+1 .. first+S`` of one batch, ``x_chunk [S, B, n_0]``, layer after layer: layer l takes all S
        steps of layer l−1's spikes at once (layer l at step t only needs layer l−1's spikes of step t and its
        own state), so the synaptic sums and the counts are one call per layer and chunk; only the neuron update
        goes step by step. Fills the dicts of :meth:`_steps` for these steps."""
        steps, batch = x_chunk.shape[0], x_chunk.shape[1]
        span = slice(first, first + steps)
        skips = self.skip_synapses
        outs = [x_chunk]  # spikes of these steps [S, B, n]: the input, then every layer (skip sources)
        for l, (synapses, neuron) in enumerate(zip(self.synapses, self.neurons)):
            x = outs[l]
            spiking_input = not (l == 0 and self.direct)
            if spiking_input:
                # counts [S, B] when they came with the sums
                current, counts = synapses.of_spikes(x, self.dtype, self.integer_weights)
                if counts is None and ("s_in" in record or "acs" in record):
                    counts = fastops.count_true(x)
            else:
                current = synapses(x.reshape(steps * batch, -1).to(self.dtype)).reshape(steps, batch, -1)
            if "s_in" in record:
                record["s_in"][:, span, l] = counts.t() if spiking_input else self.network.n_inputs
            if "acs" in record and spiking_input:
                if self.uniform_fan_out[l] is not None:
                    record["acs"][:, span, l] = (counts * self.uniform_fan_out[l]).t()
                else:
                    record["acs"][:, span, l] = (x.to(torch.float64) @ self.fan_out[l]).to(torch.int64).t()
            if "pool_words" in record and spiking_input and self.pool_layers[l]:
                record["pool_words"][:, span, l] = counting.pool_word_events(self.network.layers[l], x, lanes).t()
            if l in skips:  # residual junction: + the skip source's spikes of the same steps through its synapses
                source, skip_synapses, fan = skips[l]
                src = outs[source]
                skip_current, src_counts = skip_synapses.of_spikes(src, self.dtype, self.integer_weights)
                current = current + skip_current
                if "skip_s_in" in record:
                    record["skip_s_in"][:, span, l] = (fastops.count_true(src) if src_counts is None
                                                       else src_counts).t()
                if "skip_acs" in record:
                    skip_acs = (src.to(torch.float64) @ fan).to(torch.int64).t()
                    record["skip_acs"][:, span, l] = skip_acs
                    if "acs" in record:
                        record["acs"][:, span, l] += skip_acs
            out = torch.empty((steps, batch, neuron.n), dtype=torch.bool, device=self.device)
            # the neuron writes its membranes straight into the result (a step-major view of [B, T, n]: no copy)
            mem = membranes[l][:, span].transpose(0, 1) if l in membranes else None
            sat = torch.zeros((steps, batch), dtype=torch.int64, device=self.device) \
                if "saturations" in record else None
            neuron.run_steps(current.reshape(steps, batch, -1), first + 1, out, mem, sat)
            outs.append(out)
            if l in spikes:
                spikes[l][:, span] = out.transpose(0, 1)
            if "spikes" in record:
                record["spikes"][:, span, l] = fastops.count_true(out).t()
            if sat is not None:
                record["saturations"][:, span, l] = sat.t()

    def _fs_steps(self, x_all: torch.Tensor, spikes: dict, membranes: dict, record: dict,
                  lanes: int | None = None) -> None:
        """The FS schedule of docs/spec.md §3b on one batch (fills the dicts of :meth:`_steps` in place; entries of
        idle layers stay 0)."""
        steps = x_all.shape[0]
        n_layers, phases = len(self.neurons), int(self.network.phases)
        count = lambda flags: torch.count_nonzero(flags, dim=-1)  # noqa: E731
        for spk in spikes.values():
            spk.zero_()
        for mem in membranes.values():
            mem.zero_()

        def note(l: int, t: int, neuron: FsNeuron, out: torch.Tensor) -> None:
            if l in spikes:
                spikes[l][:, t] = out
            if l in membranes:
                membranes[l][:, t] = neuron.v
            if "spikes" in record:
                record["spikes"][:, t, l] = count(out)
            if "saturations" in record and neuron.saturated is not None:
                record["saturations"][:, t, l] = count(neuron.saturated)

        # residual junctions (docs/spec.md §3b): the spikes a skip source emits in its fire window (the input:
        # window 1) are kept per image, [K, B, n_k], and delivered at the same phase of the junction's window
        skips = self.skip_synapses
        kept = {source: [None] * phases for source, _, _ in skips.values()}
        if skips:
            for name in ("skip_s_in", "skip_acs"):
                if name.removeprefix("skip_") in record:
                    record[name] = torch.zeros_like(record[name.removeprefix("skip_")])
        for s in range(steps):
            window, phase = divmod(s, phases)  # 0-based window w−1 and phase t−1
            source = x_all[s] if window == 0 else None
            firing = window - 1  # 0-based layer that fires in this window
            if 0 <= firing < n_layers - 1:
                neuron = self.neurons[firing]
                source = neuron.fire(phase + 1)
                note(firing, s, neuron, source)
            if window in kept:  # window w−1 carries the spikes of source w−1 (input or layer)
                kept[window][phase] = source
            if window < n_layers:
                l = window
                if "s_in" in record:
                    record["s_in"][:, s, l] = count(source)
                if "acs" in record:
                    if self.uniform_fan_out[l] is not None:
                        record["acs"][:, s, l] = count(source) * self.uniform_fan_out[l]
                    else:
                        record["acs"][:, s, l] = (source.to(torch.float64) @ self.fan_out[l]).to(torch.int64)
                if "pool_words" in record and self.pool_layers[l]:
                    record["pool_words"][:, s, l] = counting.pool_word_events(self.network.layers[l], source, lanes)
                neuron = self.neurons[l]
                current = self.synapses[l](source.to(self.dtype))
                if l in skips:  # + d_k[t]·Σ S·z^k(t) of the skip source's fire window, exact in the membrane dtype
                    k, synapses, fan = skips[l]
                    src = kept[k][phase]
                    skip_current = synapses(src.to(self.dtype))
                    dtype = neuron.v.dtype
                    current = (current.to(dtype) * self.fs_sources[l][phase]
                               + skip_current.to(dtype) * self.fs_sources[k][phase])
                    neuron.collect(current, 1, phase == 0)
                    if "skip_s_in" in record:
                        record["skip_s_in"][:, s, l] = count(src)
                    if "skip_acs" in record:
                        record["skip_acs"][:, s, l] = (src.to(torch.float64) @ fan).to(torch.int64)
                        if "acs" in record:
                            record["acs"][:, s, l] += record["skip_acs"][:, s, l]
                else:
                    neuron.collect(current, self.fs_sources[l][phase], phase == 0)
                note(l, s, neuron, torch.zeros_like(neuron.v, dtype=torch.bool))

    def _inputs(self, inputs) -> torch.Tensor:
        x = _as_time_major(inputs, self.network.n_inputs, self.direct, self.network.input_bits)
        return _fs_inputs(x, self.network) if self.fs else x

    def _batches(self, inputs, batch_size, progress: bool, desc: str):
        """Yield ``(start, stop, x_all on the device)`` over the images of time-major ``inputs``."""
        n_images = inputs.shape[1]
        batch_size = _check_batch_size(batch_size, n_images)
        widest = batch_size * self._widest()  # elements of the widest per-step tensor: sets the threads
        with torch.no_grad(), fastops.limited_threads(widest), \
                tqdm(total=n_images, unit="img", disable=not progress, leave=False, desc=desc) as bar:
            for start in range(0, n_images, batch_size):
                stop = min(n_images, start + batch_size)
                x = inputs[:, start:stop].to(self.device)
                # CPU: the strided slice as it is (the complement sum gathers from it; a copy measured slower)
                yield start, stop, x if x.device.type == "cpu" else x.contiguous()
                bar.update(stop - start)

    def _trace(self, input_spikes, lanes: int, record_membranes: bool | None, batch_size, progress: bool, desc: str,
               membrane_dtype, meta: dict) -> Trace:
        """The :class:`Trace` of every image of ``input_spikes`` (what both simulators' ``run`` return): spikes per
        layer, membranes (``membrane_dtype``) when ``record_membranes`` (None: exactly for an 'acc' output layer),
        counters for a ``lanes``-wide engine (:mod:`golden.simulation.counting`), image cycles, predictions, the
        input spikes (not for direct input) and ``meta`` (plus the cycle constants, coding, K, S, FS latency)."""
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise SnnCosimError(f"lanes must be a positive integer, got {lanes!r}")
        if record_membranes is None:
            record_membranes = self.accumulator_output
        inputs = self._inputs(input_spikes)
        steps, n_images = inputs.shape[0], inputs.shape[1]
        n_layers = len(self.network.layers)
        sizes = self.network.layer_sizes
        spikes = [np.empty((n_images, steps, n), dtype=bool) for n in sizes[1:]]
        membranes = [np.empty((n_images, steps, n), dtype=membrane_dtype) for n in sizes[1:]] \
            if record_membranes else None
        counters = np.empty((n_images, steps, n_layers, len(COUNTER_NAMES)), dtype=np.int64)
        final_output = np.empty((n_images, sizes[-1]), dtype=membrane_dtype)
        every = list(range(n_layers))
        direct = self.device.type == "cpu"  # CPU: the layers write straight into the result arrays
        for start, stop, x_all in self._batches(inputs, batch_size, progress, desc):
            out_spikes = {l: torch.from_numpy(spikes[l][start:stop]) for l in every} if direct else None
            out_membranes = None
            if direct and record_membranes:  # the same dtype as the neuron's state (else: a copy below)
                views = {l: torch.from_numpy(membranes[l][start:stop]) for l in every}
                out_membranes = {l: v for l, v in views.items() if v.dtype == self.neurons[l].threshold.dtype}
            spk, mem, stats = self._steps(x_all, spike_layers=every, membrane_layers=every if record_membranes else (),
                                          stats=_STATS, lanes=lanes, out_spikes=out_spikes,
                                          out_membranes=out_membranes)
            for l in range(n_layers):
                if not direct:
                    spikes[l][start:stop] = spk[l].cpu().numpy()
                if record_membranes and not (out_membranes and l in out_membranes):
                    membranes[l][start:stop] = mem[l].cpu().numpy()
            final_output[start:stop] = self.neurons[-1].v.cpu().numpy()
            assemble = counting.assemble_fs_counters if self.fs else counting.assemble_counters
            skip_stats = {"skip_s_in": stats["skip_s_in"], "skip_acs": stats["skip_acs"]} if self.skip_synapses else {}
            counters[start:stop] = assemble(
                stats["s_in"], stats["acs"], stats["spikes"], stats["saturations"], self.network,
                lanes, pool_words=stats["pool_words"], **skip_stats).cpu().numpy()
        image_cycles = counters[..., COUNTER_NAMES.index("cycles")].sum(axis=(1, 2)) + cycle_model.C_IMAGE
        if self.accumulator_output:
            predictions = predict(final_output)
        else:
            predictions = predict(spikes[-1].sum(axis=1, dtype=np.int64))
        input_record = None
        if not self.direct:
            input_record = inputs.permute(1, 0, 2).cpu().numpy().astype(bool, copy=False)
        meta = {"source": meta["source"], "lanes": lanes, "c_layer": cycle_model.C_LAYER,
                "c_image": cycle_model.C_IMAGE, "input_coding": self.network.input_coding,
                **{k: v for k, v in meta.items() if k != "source"}}
        if self.network.phases:
            meta.update(phases=int(self.network.phases), skip_periods=int(self.network.skip_periods))
        if self.fs:
            meta.update(fs=True, latency_steps=int(self.network.fs_latency))
        return Trace(spikes=spikes, counters=counters, image_cycles=image_cycles.astype(np.int64),
                     predictions=predictions, membranes=membranes, input_spikes=input_record, meta=meta)

    def output_spikes(self, inputs, *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Output-layer spikes only, ``bool [N, T, n_out]`` (light: nothing else is kept)."""
        inputs = self._inputs(inputs)
        out = np.empty((inputs.shape[1], inputs.shape[0], self.network.n_outputs), dtype=bool)
        last = len(self.neurons) - 1
        for start, stop, x_all in self._batches(inputs, batch_size, progress, "output"):
            spk, _, _ = self._steps(x_all, spike_layers=[last])
            out[start:stop] = spk[last].cpu().numpy()
        return out

    def _score_trajectory(self, x_all: torch.Tensor, stats: Sequence[str] = ()):
        """The decision values of every step ``[B, T, n_out]`` (the 'acc' membrane, or the cumulative output spike
        counts of a spiking output layer) and the requested statistics."""
        last = len(self.neurons) - 1
        if self.accumulator_output:
            _, mem, record = self._steps(x_all, membrane_layers=[last], stats=stats)
            return mem[last], record
        spk, _, record = self._steps(x_all, spike_layers=[last], stats=stats)
        return torch.cumsum(spk[last], dim=1, dtype=torch.int64), record

    def output_trajectory(self, inputs, *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """``[N, T, n_out]`` decision values after each step: the output 'acc' layer's membrane (int64 for the
        integer model, in units of 2^-K; float64 for the float model), or for a spiking output layer the
        cumulative output spike counts (int64). ``predict(trajectory[:, T-1])`` is the prediction after T steps;
        :func:`golden.simulation.early_decision.early_decision` reads this array."""
        inputs = self._inputs(inputs)
        dtype = self.neurons[-1].threshold.dtype if self.accumulator_output else torch.int64
        out = np.empty((inputs.shape[1], inputs.shape[0], self.network.n_outputs),
                       dtype=np.int64 if dtype == torch.int64 else np.float64)
        for start, stop, x_all in self._batches(inputs, batch_size, progress, "trajectory"):
            scores, _ = self._score_trajectory(x_all)
            out[start:stop] = scores.cpu().numpy()
        return out


def _kind(layer) -> str:
    return layer.neuron.kind if isinstance(layer.neuron, NeuronParams) else layer.neuron.get("kind")


def _fs_inputs(x: torch.Tensor, network) -> torch.Tensor:
    """FS input spikes ``[T, B, n_0]`` with K ≤ T ≤ L·K, silent after window 1, padded to L·K steps."""
    phases = int(network.phases)
    latency = len(network.layers) * phases
    if not phases <= x.shape[0] <= latency:
        raise SnnCosimError(f"an FS network takes inputs of K = {phases} to L·K = {latency} steps (one image), "
                            f"got {x.shape[0]}; use fs_encode(codes, {phases}, steps={latency})")
    if x.shape[0] > phases and bool(x[phases:].any()):
        raise SnnCosimError(f"FS input spikes after window 1 (step > K = {phases}); the input is sent once, MSB "
                            f"first (fs_encode)")
    if x.shape[0] < latency:
        pad = torch.zeros((latency - x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
        x = torch.cat([x, pad])
    return x


def _weighted_args(network) -> dict:
    return {"phases": int(network.phases), "skip_periods": int(network.skip_periods)}


# ----------------------------------------------------------------------------------------------- integer
class IntegerSimulator(_Simulator):
    """The golden model: bit-accurate integer simulation of an :class:`IntegerNetwork` (SPEC §1–§5).

    ``device`` defaults to CUDA when present, else CPU; results are identical on every device."""

    def __init__(self, network: IntegerNetwork, device=None):
        # validates the network; recorded in every trace (compare refuses traces of other networks)
        self.network_digest = network.digest()
        device = default_device() if device is None else torch.device(device)
        dtype = self._compute_dtype(network, device)
        weighted = _weighted_args(network)

        def make(layer) -> Neuron | FsNeuron:
            if network.is_fs:
                return IntegerFsNeuron(layer.neuron, _per_neuron(layer, layer.threshold),
                                       _per_neuron(layer, layer.bias), network.membrane_bits)
            return IntegerNeuron(layer.neuron, _per_neuron(layer, layer.threshold), _per_neuron(layer, layer.bias),
                                 network.membrane_bits, inhibition=layer_inhibition(layer), **weighted)

        self._build(network, make, dtype, device)

    @staticmethod
    def _compute_dtype(network: IntegerNetwork, device: torch.device) -> torch.dtype:
        """float64, or float32 on the CPU when every layer's bound is below 2^24; error when even float64
        could round (``Σ|W| · max input ≥ 2^53``)."""
        worst = 0
        for index, layer in enumerate(network.layers, start=1):
            max_in = (2 ** network.input_bits - 1) if (index == 1 and network.input_coding == "direct") else 1
            bound = layer.fan_in_abs_max() * max_in
            skip = network.skip_into(index)
            if skip is not None:  # main + skip synaptic input of a residual junction
                bound += network.skip_layer(skip).fan_in_abs_max()
            if bound >= _EXACT_LIMIT[torch.float64]:
                raise WidthError(
                    f"layer {index}: synaptic input can reach {bound} >= 2^53, which the simulator cannot sum "
                    f"exactly; reduce weight_bits or the fan-in")
            worst = max(worst, bound)
            if network.is_fs:  # v + d·I (+ d_k·I_skip at a junction) in int64
                d_tables = counting.fs_source_weights(network)
                d_max = max(abs(int(d)) for d in d_tables[index - 1])
                reach = d_max * layer.fan_in_abs_max() * max_in
                if skip is not None:
                    reach += max(abs(int(d)) for d in d_tables[skip.source]) * network.skip_layer(skip).fan_in_abs_max()
                if reach + 2 ** (network.membrane_bits - 1) >= 2 ** 63:
                    raise WidthError(f"layer {index}: d·I can reach {reach}, beyond int64; reduce the FS "
                                     f"weights d or the fan-in")
        if device.type == "cpu" and worst < _EXACT_LIMIT[torch.float32]:
            return torch.float32
        return torch.float64

    def run(self, input_spikes, *, lanes: int = 8, record_membranes: bool | None = None,
            batch_size: int | None = None, progress: bool = False) -> Trace:
        """Simulate every image of ``input_spikes`` (``bool [T, B, n_0]``, or int codes for input coding
        "direct") and return the full :class:`Trace`: spikes per layer, membranes (end of step, after reset)
        when ``record_membranes``, counters ``[N, T, L, 9]`` for a ``lanes``-wide engine, image cycles,
        predictions and the input spikes.

        ``record_membranes=None`` (default) records them exactly when the output layer is the non-spiking 'acc'
        accumulator, whose membrane is that layer's only output. Predictions: argmax of the output spike counts,
        or of the 'acc' membrane after the last step (ties to the lowest index)."""
        meta = {"source": "golden", "network_sha256": self.network_digest}
        return self._trace(input_spikes, lanes, record_membranes, batch_size, progress, "golden", np.int64, meta)


# ----------------------------------------------------------------------------------------------- float
class FloatSimulator(_Simulator):
    """The same network structure with float64 weights, biases and thresholds and no saturation (accuracy studies).

    Takes an :class:`IntegerNetwork`-shaped object whose arrays are floats (``golden.conversion.convert``'s
    ``float_network``: normalised weights, thresholds 1.0); an integer network works too. A "direct" first
    layer receives the given input values as they are. Weighted-spike layers ('ws', 'acc') use the network's
    ``phases`` and ``skip_periods`` and Kim's Eq. 8–10 (the bias arrays hold Kim's β)."""

    integer_weights = False  # float weights: sums keep the matrix product's order (the same results as before)

    def __init__(self, network: IntegerNetwork, device=None):
        weighted = _weighted_args(network)

        fs = network.input_coding == "fs" or any(_kind(layer) == "fs" for layer in network.layers)

        def make(layer) -> Neuron | FsNeuron:
            params = layer.neuron if isinstance(layer.neuron, NeuronParams) else NeuronParams(**layer.neuron)
            if fs:
                return FloatFsNeuron(params, _per_neuron(layer, np.asarray(layer.threshold, dtype=np.float64)),
                                     _per_neuron(layer, np.asarray(layer.bias, dtype=np.float64)))
            inhibition = layer_inhibition(layer)
            if inhibition is not None:
                inhibition = np.asarray(inhibition, dtype=np.float64)
            return FloatNeuron(params, _per_neuron(layer, np.asarray(layer.threshold, dtype=np.float64)),
                               _per_neuron(layer, np.asarray(layer.bias, dtype=np.float64)), inhibition=inhibition,
                               **weighted)

        if not network.layers:
            raise SnnCosimError("the network has no layers")
        for index, layer in enumerate(network.layers[:-1], start=1):
            kind = layer.neuron.kind if isinstance(layer.neuron, NeuronParams) else layer.neuron.get("kind")
            if kind == "acc":
                raise SnnCosimError(f"layer {index}: the non-spiking accumulator ('acc') can only be the output layer")
        self._build(network, make, torch.float64, device)

    def _inputs(self, inputs) -> torch.Tensor:
        if self.direct:
            if isinstance(inputs, np.ndarray):
                inputs = torch.from_numpy(np.ascontiguousarray(inputs))
            if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or inputs.shape[2] != self.network.n_inputs:
                raise SnnCosimError(f"inputs must have shape [T, B, {self.network.n_inputs}] (time-major)")
            return inputs
        return super()._inputs(inputs)

    def run(self, inputs, *, lanes: int = 8, record_membranes: bool | None = None, batch_size: int | None = None,
            progress: bool = False) -> Trace:
        """Simulate every image of ``inputs`` (``bool [T, B, n_0]``, or the input values of a "direct" first
        layer) and return a :class:`Trace` of the same form as :meth:`IntegerSimulator.run`'s, with float64
        membranes (recorded by the same rule, ``record_membranes=None``: exactly for an 'acc' output layer, whose
        trajectory is Kim's V^L) and ``meta["source"] = "float"``. The counters are the integer model's definitions
        (:mod:`golden.simulation.counting`, for a ``lanes``-wide engine) applied to the float spikes; the float
        model never saturates (``saturations`` 0). Predictions: argmax of the output spike counts, or of the 'acc'
        membrane after the last step (ties to the lowest index).

        Memory: like the integer model, every layer's spikes ``bool [N, T, n_l]`` are kept (and, with membranes,
        8 bytes per neuron and step); ``record_membranes=False`` keeps big accuracy runs small."""
        return self._trace(inputs, lanes, record_membranes, batch_size, progress, "float", np.float64,
                           {"source": "float"})


# ----------------------------------------------------------------------------------------------- accuracy
@dataclass(frozen=True)
class CurvePoint:
    """Accuracy and cumulative activity after ``steps`` steps (means per image over steps 1..steps).

    ``spikes``: spikes emitted by all layers of the network (hidden and output; an 'acc' output never spikes);
    ``layer_spikes``: the same per layer; ``input_spikes``: spikes of the input layer (0 for "direct" input);
    ``acs``: accumulate operations of all layers (SPEC §5)."""

    steps: int
    accuracy: float
    spikes: float
    layer_spikes: tuple[float, ...]
    input_spikes: float
    acs: float


def _check_curve_args(input_spikes, labels, steps_list) -> tuple[list[int], np.ndarray]:
    try:
        steps_list = sorted({int(s) for s in steps_list})
    except (TypeError, ValueError):
        raise SnnCosimError(f"steps_list must be a sequence of positive step counts, got {steps_list!r}") from None
    if not steps_list or steps_list[0] < 1:
        raise SnnCosimError(f"steps_list must hold positive step counts, got {steps_list}")
    if not hasattr(input_spikes, "shape") or len(input_spikes.shape) != 3:
        raise SnnCosimError("inputs must be a time-major tensor or array [T, B, n_in]")
    available = int(input_spikes.shape[0])
    if steps_list[-1] > available:
        raise SnnCosimError(
            f"accuracy at {steps_list[-1]} steps needs {steps_list[-1]} input steps, the input has {available}")
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if labels.shape[0] != int(input_spikes.shape[1]):
        raise SnnCosimError(f"{labels.shape[0]} labels for {int(input_spikes.shape[1])} images")
    return steps_list, labels


def _curve_run(simulator: _Simulator, input_spikes, steps_list: list[int], stats: Sequence[str], batch_size,
               progress: bool):
    """One run of ``max(steps_list)`` steps: predictions ``[N, S]`` at every requested step count and the
    cumulative statistics ``name → int64 [N, S, L]``."""
    inputs = simulator._inputs(input_spikes[:steps_list[-1]])
    n_images = inputs.shape[1]
    index = torch.as_tensor([t - 1 for t in steps_list], dtype=torch.int64)
    predictions = np.empty((n_images, len(steps_list)), dtype=np.int64)
    cumulative = {k: np.empty((n_images, len(steps_list), len(simulator.neurons)), dtype=np.int64) for k in stats}
    for start, stop, x_all in simulator._batches(inputs, batch_size, progress, "curve"):
        scores, record = simulator._score_trajectory(x_all, stats)
        predictions[start:stop] = predict(scores[:, index.to(scores.device)].cpu().numpy())
        for k in stats:
            cumulative[k][start:stop] = torch.cumsum(record[k], dim=1)[:, index.to(scores.device)].cpu().numpy()
    return predictions, cumulative


def accuracy_curve(simulator: _Simulator, input_spikes, labels, steps_list: Sequence[int], *,
                   batch_size: int | None = None, progress: bool = False) -> dict[int, float]:
    """Accuracy after each number of steps in ``steps_list``, from ONE run of ``max(steps_list)`` steps: the
    prediction at ``T`` is the argmax (ties to the lowest index) of the output spike counts of steps 1..T, or
    for an 'acc' output layer of its membrane at step T (the accumulator's trajectory)."""
    steps_list, labels = _check_curve_args(input_spikes, labels, steps_list)
    predictions, _ = _curve_run(simulator, input_spikes, steps_list, (), batch_size, progress)
    return {t: float((predictions[:, i] == labels).mean()) for i, t in enumerate(steps_list)}


def accuracy_and_spikes_curve(simulator: _Simulator, input_spikes, labels, steps_list: Sequence[int], *,
                              batch_size: int | None = None, progress: bool = False) -> dict[int, CurvePoint]:
    """:func:`accuracy_curve` plus the cumulative spikes (all layers, per layer, input) and ACs per image after
    each number of steps, from one run; works for rate-coded and weighted-spike networks alike."""
    steps_list, labels = _check_curve_args(input_spikes, labels, steps_list)
    predictions, cum = _curve_run(simulator, input_spikes, steps_list, ("s_in", "acs", "spikes"), batch_size,
                                  progress)
    direct = simulator.direct
    out = {}
    for i, t in enumerate(steps_list):
        layer_spikes = cum["spikes"][:, i].mean(axis=0)
        out[t] = CurvePoint(
            steps=t, accuracy=float((predictions[:, i] == labels).mean()),
            spikes=float(cum["spikes"][:, i].sum(axis=-1).mean()),
            layer_spikes=tuple(float(v) for v in layer_spikes),
            input_spikes=0.0 if direct else float(cum["s_in"][:, i, 0].mean()),
            acs=float(cum["acs"][:, i].sum(axis=-1).mean()))
    return out
