"""Operation counts per (image, step, layer) (SPEC §5, docs/spec.md §5); the ANN's own MAC count is
:mod:`golden.core.macs`.

The nine counters, in :data:`COUNTER_NAMES` order, of layer ``l`` at step ``t`` (``S_in`` = spikes layer ``l−1``
emitted at step ``t``, layer 0 = the input; ``P`` lanes; ``G_l = ceil(n_l/P)``):

* ``cycles``         — the cycle model (:mod:`golden.core.cycle_model`): ``W_l + S_in·G_l + G_l + C_LAYER``
* ``acs``            — Σ over input spikes of the spike's fan-out: ``S_in·n_l`` for dense layers; for conv/pool the
  number of output neurons the spiking input actually reaches (zero padding and stride taken into account)
* ``macs``           — 0 for spiking input; for a "direct" first layer the layer's ANN MACs every step
* ``spikes``         — spikes emitted by layer ``l`` at step ``t``
* ``neuron_updates`` — ``n_l``
* ``weight_reads``   — ``S_in·G_l`` (weight words read)
* ``state_reads``, ``state_writes`` — ``G_l`` each
* ``saturations``    — neurons of layer ``l`` whose membrane write saturated at step ``t``

Lateral inhibition (docs/spec.md §3c; dense IF/LIF layers with WTA strengths ``u``): the INHIBIT pass adds
``G_l + C_INHIBIT`` cycles, ``G_l`` state reads and ``G_l`` state writes, and one MAC (``u_i·m_i``) per neuron with
``m_i = n − s_i > 0`` (``n_l`` when the layer emitted n ≥ 2 spikes, ``n_l − 1`` when n = 1, 0 when n = 0);
a neuron that saturates in the integrate or in the inhibition counts once.

For a "direct" first layer every input is visited every step: ``S_in(t, 1) := n_0`` in cycles and weight reads,
and ``acs = 0``. Conv and pool layers follow the engine's convolution schedule (docs/architecture.md,
"Convolution"; :func:`golden.core.cycle_model.layer_plans`): with ``R`` = Σ over input spikes of the output positions
each reaches (``acs / c_out`` for conv), ``Q = h_out·w_out`` positions and ``G_l = ceil(c_out/P)`` channel
groups, conv: ``cycles = W_l + R·G_l + Q·G_l + C_LAYER`` and ``weight_reads = R·G_l``; pool (word-parallel: input
channel = output channel, so a source word lines up lane for lane with its output channel group): ``cycles = W_l +
R_w + Q·G_l + C_LAYER`` and ``weight_reads = R_w`` with ``R_w`` = Σ over the non-empty source mask words of the
output positions the word's position reaches (:func:`pool_word_events`), while ``acs = R`` still counts every
(spike, reached position) pair; ``state_reads = state_writes = Q·G_l``. ``W_l`` is the number of source mask words
in the engine's order (``h·w·ceil(c/P)`` for a spatial source, also for a dense layer reading a conv/pool layer).

Weighted-spike networks (Kim 2018, docs/spec.md §3a) use exactly these definitions: the phase shifts ``<< (K−k)``
are part of each AC and of the UPDATE datapath (no extra ACs or cycles); a 'ws' layer's spikes are counted like any
other; the non-spiking output accumulator 'acc' emits 0 spikes, and in its gated steps (t ≤ S·K) the crossbar still
adds its input spikes (``acs``, ``weight_reads`` and ``cycles`` as usual), every neuron counts as updated and no
membrane write can saturate.

FS networks (Stöckl & Maass 2021, docs/spec.md §3b): only the (image, local step, layer) entries in a layer's
collect or fire window count; every counter of an idle entry, ``cycles`` included, is 0. In a collect step the
source's spikes carry the weight ``d_src[t]``: when it is a signed power of two (±2^k, a shift) each (spike,
synapse) pair is one AC, otherwise one MAC (``macs`` = the same fan-out sum, ``acs`` = 0). Fire steps have no
input spikes (``S_in = 0``). ``neuron_updates``, ``state_reads``/``state_writes`` count as above for active
entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError
from golden.core.macs import ann_macs_per_layer
from golden.core.network import AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork
from golden.core.trace import Trace

__all__ = [
    "COUNTER_NAMES", "LayerGeometry", "layer_geometry", "fan_out",
    "assemble_counters", "counters_from_spikes", "spikes_per_neuron", "totals_per_layer", "spike_counts",
    "fs_source_weights", "fs_multiplies", "fs_skip_delay", "fs_delayed_skip_spikes",
    "assemble_fs_counters", "fs_spikes_per_neuron",
    "position_reach", "pool_word_events",
]

_K = {name: k for k, name in enumerate(COUNTER_NAMES)}


def _axis_cover(size: int, kernel: int, stride: int, pad: int, out: int) -> np.ndarray:
    """For each input position along one axis, how many (output position, kernel tap) pairs read it."""
    ys = np.arange(size)[:, None] + pad - np.arange(kernel)[None, :]
    valid = (ys >= 0) & (ys % stride == 0) & (ys // stride < out)
    return valid.sum(axis=1).astype(np.int64)


def fan_out(layer) -> np.ndarray:
    """``int64 [n_in]``: number of output neurons each input neuron of ``layer`` connects to (inputs flattened in
    (c, h, w) order). Dense: ``n_out`` for every input, whatever the weight values."""
    if isinstance(layer, DenseLayer):
        return np.full(layer.n_in, layer.n_out, dtype=np.int64)
    if isinstance(layer, Conv2dLayer):
        c_out, _, kh, kw = layer.weight.shape
        c_in, h, w = layer.in_shape
        _, ho, wo = layer.out_shape
        cy = _axis_cover(h, kh, layer.stride[0], layer.padding[0], ho)
        cx = _axis_cover(w, kw, layer.stride[1], layer.padding[1], wo)
        per_pixel = int(c_out) * np.outer(cy, cx)
        return np.broadcast_to(per_pixel, (c_in, h, w)).reshape(-1).astype(np.int64)
    if isinstance(layer, AvgPool2dLayer):
        c, h, w = layer.in_shape
        _, ho, wo = layer.out_shape
        cy = _axis_cover(h, layer.kernel[0], layer.stride[0], 0, ho)
        cx = _axis_cover(w, layer.kernel[1], layer.stride[1], 0, wo)
        return np.broadcast_to(np.outer(cy, cx), (c, h, w)).reshape(-1).astype(np.int64)
    raise SnnCosimError(f"cannot count the operations of layer kind {getattr(layer, 'kind', type(layer).__name__)!r}")


def position_reach(layer) -> np.ndarray:
    """``int64 [h·w]``: for every input position ``q = y·w + x`` of an avgpool2d layer, the number of output
    positions whose window contains it (stride aware; 0 for uncovered rows and columns)."""
    if not isinstance(layer, AvgPool2dLayer):
        raise SnnCosimError(f"position_reach needs an avgpool2d layer, got {getattr(layer, 'kind', layer)!r}")
    _, h, w = layer.in_shape
    _, ho, wo = layer.out_shape
    cy = _axis_cover(h, layer.kernel[0], layer.stride[0], 0, ho)
    cx = _axis_cover(w, layer.kernel[1], layer.stride[1], 0, wo)
    return np.outer(cy, cx).reshape(-1).astype(np.int64)


def pool_word_events(layer, source, lanes: int):
    """``R_w`` of an avgpool2d layer: Σ over the non-empty source mask words — position ``q``, channel group ``g``
    (channels ``g·P..g·P+P−1`` at ``q``, the engine's hardware order) — of the output positions ``q`` reaches: the
    pool layer's EVENT cycles (one per (word, reached position), all P lanes at once). ``source``: spikes
    ``[..., n_in]`` in (c, h, w) order, torch or numpy; returns int64 ``[...]`` of the same kind."""
    c, h, w = layer.in_shape
    groups = cycle_model.lane_groups(c, lanes)
    reach = position_reach(layer)
    if isinstance(source, torch.Tensor):
        x = (source != 0).reshape(*source.shape[:-1], c, h * w)
        if groups * lanes > c:
            x = torch.cat([x, x.new_zeros((*x.shape[:-2], groups * lanes - c, h * w))], dim=-2)
        words = x.reshape(*x.shape[:-2], groups, lanes, h * w).any(dim=-2)  # [..., G, h·w]
        return (words.to(torch.int64) * torch.as_tensor(reach, device=source.device)).sum(dim=(-2, -1))
    x = (np.asarray(source) != 0).reshape(*np.shape(source)[:-1], c, h * w)
    if groups * lanes > c:
        x = np.concatenate([x, np.zeros((*x.shape[:-2], groups * lanes - c, h * w), dtype=bool)], axis=-2)
    words = x.reshape(*x.shape[:-2], groups, lanes, h * w).any(axis=-2)
    return (words.astype(np.int64) * reach).sum(axis=(-2, -1))


@dataclass(frozen=True)
class LayerGeometry:
    """What the counters need to know about layer ``index`` (1-based)."""

    index: int
    kind: str
    n_in: int
    n_out: int
    fan_out: np.ndarray  # int64 [n_in]
    direct: bool  # a "direct"-coded first layer (codes in, MACs)
    macs_per_step: int  # MACs of one step when direct, else 0


def layer_geometry(network: IntegerNetwork) -> list[LayerGeometry]:
    macs = ann_macs_per_layer(network)
    geo = []
    for index, layer in enumerate(network.layers, start=1):
        direct = index == 1 and network.input_coding == "direct"
        geo.append(LayerGeometry(index, layer.kind, layer.n_in, layer.n_out, fan_out(layer), direct,
                                 macs[index - 1] if direct else 0))
    return geo


def _like(template, values):
    if isinstance(template, torch.Tensor):
        return torch.as_tensor(values, dtype=torch.int64, device=template.device)
    return np.asarray(values, dtype=np.int64)


def assemble_counters(s_in, acs, spikes, saturations, network: IntegerNetwork, lanes: int, *, skip_s_in=None,
                      skip_acs=None, pool_words=None):
    """The ``int64 [..., L, 9]`` counters from per-(…, layer) statistics of shape ``[..., L]``: input spikes
    ``s_in`` (already ``n_0`` for a direct first layer), ``acs``, output ``spikes`` and ``saturations``.
    Works on torch tensors (any device) and numpy arrays alike.

    Networks with residual junctions also need ``skip_s_in`` (spikes of each junction's skip source) and
    ``skip_acs`` (the ACs of the skip pass, already included in ``acs``); the skip pass adds ``W_skip +
    E_skip·G_l`` cycles and ``E_skip·G_l`` weight reads (docs/spec.md §6).

    Networks with avgpool2d layers also need ``pool_words`` ``[..., L]``: ``R_w`` (:func:`pool_word_events`) of
    each pool layer (other entries ignored); a direct-coded pool layer 1 visits every source word."""
    geo = layer_geometry(network)
    skips = cycle_model.skip_plans(network, lanes)
    if skips and (skip_s_in is None or skip_acs is None):
        raise SnnCosimError("a network with skip connections needs skip_s_in and skip_acs to count its operations")
    if s_in.shape[-1] != len(geo):
        raise SnnCosimError(f"statistics have {s_in.shape[-1]} layers, the network {len(geo)}")
    if pool_words is None and any(isinstance(layer, AvgPool2dLayer) and not g.direct
                                  for layer, g in zip(network.layers, geo)):
        raise SnnCosimError("a network with avgpool2d layers needs pool_words (R_w) to count its cycles")
    is_torch = isinstance(s_in, torch.Tensor)
    if is_torch:
        out = torch.zeros((*s_in.shape, len(COUNTER_NAMES)), dtype=torch.int64, device=s_in.device)
    else:
        out = np.zeros((*s_in.shape, len(COUNTER_NAMES)), dtype=np.int64)
    s_in = s_in.to(torch.int64) if is_torch else np.asarray(s_in, dtype=np.int64)
    plans = cycle_model.network_plans(network, lanes)
    acs = acs.to(torch.int64) if is_torch else np.asarray(acs, dtype=np.int64)
    # events: dense — input spikes (each costs G_l cycles and weight words); conv — (input spike, reached output
    # position) pairs R = ACs / c_out; pool — (non-empty source word, reached position) pairs R_w; a direct layer
    # visits every input (every source word) every step
    events = s_in * 0
    main_acs = acs
    if skips:
        skip_s_in = skip_s_in.to(torch.int64) if is_torch else np.asarray(skip_s_in, dtype=np.int64)
        skip_acs = skip_acs.to(torch.int64) if is_torch else np.asarray(skip_acs, dtype=np.int64)
        main_acs = acs - skip_acs
    for index, (g, plan, layer) in enumerate(zip(geo, plans, network.layers)):
        if plan.kind == "avgpool2d":
            if g.direct:
                events[..., index] = cycle_model.lane_groups(layer.in_shape[0], lanes) * int(
                    position_reach(layer).sum())
            else:
                words = pool_words.to(torch.int64) if is_torch else np.asarray(pool_words, dtype=np.int64)
                events[..., index] = words[..., index]
        elif plan.reach_div:
            if g.direct:
                events[..., index] = int(g.fan_out.sum()) // plan.reach_div
            else:
                events[..., index] = main_acs[..., index] // plan.reach_div
        else:
            events[..., index] = s_in[..., index]
    per_event = _like(s_in, [plan.per_event for plan in plans])
    words = _like(s_in, [plan.words for plan in plans])
    state = _like(s_in, [plan.state_words for plan in plans])
    n_out = _like(s_in, [g.n_out for g in geo])
    macs = _like(s_in, [g.macs_per_step for g in geo])
    # lateral inhibition (docs/spec.md §3c): the INHIBIT pass reads and writes the G_l membrane words once more and
    # multiplies u_i·m_i for every neuron with m_i = n − s_i > 0: n_l neurons when n ≥ 2, n_l − 1 when n = 1
    inhibit = _like(s_in, [int(plan.inhibit) for plan in plans])
    inhibit_cycles = _like(s_in, [plan.inhibit_cycles for plan in plans])
    layer_spikes = spikes.to(torch.int64) if is_torch else np.asarray(spikes, dtype=np.int64)
    inhibited = inhibit * (n_out * (layer_spikes > 0) - 1 * (layer_spikes == 1))
    out[..., _K["cycles"]] = words + events * per_event + state + cycle_model.C_LAYER + inhibit_cycles
    out[..., _K["acs"]] = acs
    out[..., _K["macs"]] = macs + inhibited
    out[..., _K["spikes"]] = spikes
    out[..., _K["neuron_updates"]] = n_out
    out[..., _K["weight_reads"]] = events * per_event
    out[..., _K["state_reads"]] = state + inhibit * state
    out[..., _K["state_writes"]] = state + inhibit * state
    out[..., _K["saturations"]] = saturations
    for target, plan in skips.items():  # the skip pass of each residual junction
        index = target - 1
        skip_events = (skip_acs[..., index] // plan.reach_div) if plan.reach_div else skip_s_in[..., index]
        out[..., index, _K["cycles"]] += plan.words + skip_events * plan.per_event
        out[..., index, _K["weight_reads"]] += skip_events * plan.per_event
    return out


def _to_torch(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def counters_from_spikes(network: IntegerNetwork, inputs, spikes, saturations, lanes: int) -> torch.Tensor:
    """Counters ``int64 [N, T, L, 9]`` from recorded activity: ``inputs`` ``[N, T, n_0]`` (bool spikes, or codes
    for a direct network), ``spikes`` a list of ``bool [N, T, n_l]``, ``saturations`` ``[N, T, L]``."""
    geo = layer_geometry(network)
    sources = [_to_torch(inputs)] + [_to_torch(s) for s in spikes[:-1]]
    if network.is_fs:  # layer l collects layer l−1's spikes of the same local step; fire steps have none
        collect, _ = cycle_model.fs_windows(len(geo), int(network.phases))
        masks = torch.as_tensor(collect.T.copy())  # [L, L·K]
    device = sources[0].device
    s_in, acs, pool_words = [], [], []
    for index, (g, src) in enumerate(zip(geo, sources)):
        src = src.to(device)
        if network.is_fs:
            src = src & masks[index].to(device)[None, :, None]
        layer = network.layers[index]
        pool_words.append(pool_word_events(layer, src, lanes) if isinstance(layer, AvgPool2dLayer) and not g.direct
                          else torch.zeros(src.shape[:2], dtype=torch.int64, device=device))
        if g.direct:
            s_in.append(torch.full(src.shape[:2], g.n_in, dtype=torch.int64, device=device))
            acs.append(torch.zeros(src.shape[:2], dtype=torch.int64, device=device))
        else:
            s_in.append(src.sum(-1, dtype=torch.int64))
            fo = torch.as_tensor(g.fan_out, dtype=torch.float64, device=device)
            acs.append((src.to(torch.float64) @ fo).to(torch.int64))
    out_spikes = torch.stack([_to_torch(s).to(device).sum(-1, dtype=torch.int64) for s in spikes], -1)
    skip_stats = {}
    if network.skips:  # residual junctions: the skip pass reads the skip source's spikes
        all_sources = [_to_torch(inputs)] + [_to_torch(s) for s in spikes]
        skip_s_in = torch.zeros_like(out_spikes)
        skip_acs = torch.zeros_like(out_spikes)
        for skip in network.skips:
            src = all_sources[skip.source].to(device)
            if network.is_fs:  # the source's fire-window spikes, delayed (l−k−1)·K steps into the collect window
                src = fs_delayed_skip_spikes(src, skip, int(network.phases)) & masks[skip.target - 1].to(
                    device)[None, :, None]
            fo = torch.as_tensor(fan_out(network.skip_layer(skip)), dtype=torch.float64, device=device)
            skip_s_in[..., skip.target - 1] = src.sum(-1, dtype=torch.int64)
            skip_acs[..., skip.target - 1] = (src.to(torch.float64) @ fo).to(torch.int64)
        acs[:] = [a + skip_acs[..., i] for i, a in enumerate(acs)]
        skip_stats = {"skip_s_in": skip_s_in, "skip_acs": skip_acs}
    pool_words = torch.stack(pool_words, -1)
    if network.is_fs:
        return assemble_fs_counters(torch.stack(s_in, -1), torch.stack(acs, -1), out_spikes,
                                    _to_torch(saturations).to(device, torch.int64), network, lanes,
                                    pool_words=pool_words, **skip_stats)
    return assemble_counters(torch.stack(s_in, -1), torch.stack(acs, -1), out_spikes,
                             _to_torch(saturations).to(device, torch.int64), network, lanes, pool_words=pool_words,
                             **skip_stats)


def spike_counts(spikes) -> np.ndarray:
    """``[N, T, n]`` spikes → ``int64 [N, n]`` spikes per neuron over all steps."""
    return np.asarray(_to_torch(spikes).sum(1, dtype=torch.int64).cpu())


def spikes_per_neuron(trace: Trace) -> list[np.ndarray]:
    """Mean spikes per neuron per image, ``float64 [n_l]`` for every layer."""
    return [np.asarray(s, dtype=bool).sum(axis=(0, 1)) / max(trace.n_images, 1) for s in trace.spikes]


def totals_per_layer(trace: Trace) -> dict[str, np.ndarray]:
    """Every counter summed over images and steps: name → ``int64 [L]``."""
    return {name: trace.counters[..., k].sum(axis=(0, 1)) for k, name in enumerate(COUNTER_NAMES)}


# ----------------------------------------------------------------------------------------------- FS networks
def fs_source_weights(network: IntegerNetwork) -> list[tuple]:
    """Per layer l = 1..L, the weights d_src[1..K] that the spikes it collects carry: the input's ``2^(K−t)`` for
    layer 1, layer l−1's ``fs_weight`` otherwise (docs/spec.md §3b)."""
    phases = int(network.phases)
    inputs = tuple(1 << (phases - t) for t in range(1, phases + 1))
    return [inputs] + [tuple(layer.neuron.fs_weight) for layer in network.layers[:-1]]


def fs_skip_delay(skip, phases: int) -> int:
    """Steps the FS delay line holds a skip source's spikes: ``(l − k − 1)·K`` (docs/spec.md §3b)."""
    return (int(skip.target) - int(skip.source) - 1) * int(phases)


def fs_delayed_skip_spikes(source_spikes, skip, phases: int):
    """``[N, L·K, n_k]`` spikes of skip source k (per image, local steps) → the same shifted later by
    :func:`fs_skip_delay` steps (zeros enter): what the junction receives at each local step."""
    src = _to_torch(source_spikes)
    delay = fs_skip_delay(skip, phases)
    out = torch.zeros_like(src)
    if delay < src.shape[1]:
        out[:, delay:] = src[:, :src.shape[1] - delay]
    return out


def _is_shift(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return False
    a = abs(int(value))
    return a != 0 and a & (a - 1) == 0


def fs_multiplies(network: IntegerNetwork) -> np.ndarray:
    """``bool [L, K]``: True where layer l's source weight d_src[t] is not a signed power of two, so that its
    (spike, synapse) pairs count as MACs instead of ACs."""
    return np.array([[not _is_shift(d) for d in weights] for weights in fs_source_weights(network)], dtype=bool)


def _fs_step_masks(network: IntegerNetwork) -> tuple[np.ndarray, np.ndarray]:
    """``active [L·K, L]`` and ``multiply [L·K, L]`` (collect steps whose source weight is a multiply)."""
    n_layers, phases = len(network.layers), int(network.phases)
    collect, fire = cycle_model.fs_windows(n_layers, phases)
    mult = fs_multiplies(network)  # [L, K]
    phase = np.arange(n_layers * phases) % phases
    multiply = collect & mult.T[phase]  # [L·K, L]
    return collect | fire, multiply


def _fs_skip_multiplies(network: IntegerNetwork) -> np.ndarray:
    """``bool [L·K, L]``: collect steps of a residual junction whose *skip* source weight d_k[t] is not a signed
    power of two (its skip (spike, synapse) pairs are MACs); False for layers without a skip."""
    n_layers, phases = len(network.layers), int(network.phases)
    collect, _ = cycle_model.fs_windows(n_layers, phases)
    mult = fs_multiplies(network)  # row k: the weights of source k's spikes (k = 0: the input)
    out = np.zeros_like(collect)
    phase = np.arange(n_layers * phases) % phases
    for skip in network.skips:
        out[:, skip.target - 1] = collect[:, skip.target - 1] & mult[skip.source][phase]
    return out


def assemble_fs_counters(s_in, synaptic, spikes, saturations, network: IntegerNetwork, lanes: int, *,
                         pool_words=None, skip_s_in=None, skip_acs=None):
    """The ``int64 [N, L·K, L, 9]`` counters of an FS network from per-(image, step, layer) statistics: input
    spikes ``s_in``, the fan-out sum of the input spikes ``synaptic`` (ACs or MACs, split here by
    :func:`fs_multiplies`), output ``spikes`` and ``saturations``, ``pool_words`` (R_w of pool layers, see
    :func:`assemble_counters`); idle entries are zeroed. Torch or numpy.

    Residual junctions (docs/spec.md §3b): ``skip_s_in`` / ``skip_acs`` are the delayed skip-source spikes and
    their fan-out sum in the junction's collect steps (``skip_acs`` included in ``synaptic``); the skip pass costs
    ``W_skip + E_skip·G_l`` cycles in every active step of the junction (E_skip = 0 in its fire steps), and its
    (spike, synapse) pairs are ACs or MACs by the skip source's own d_k[t]."""
    counters = assemble_counters(s_in, synaptic, spikes, saturations, network, lanes, pool_words=pool_words,
                                 skip_s_in=skip_s_in, skip_acs=skip_acs)
    active, multiply = _fs_step_masks(network)
    if counters.shape[-3] != active.shape[0]:
        raise SnnCosimError(f"FS statistics have {counters.shape[-3]} steps, the network needs L·K = "
                            f"{active.shape[0]}")
    active = _like(counters, active.astype(np.int64))
    multiply = _like(counters, multiply.astype(np.int64))
    synaptic = counters[..., _K["acs"]]
    skip_part = synaptic * 0
    if network.skips:
        skip_part = skip_acs.to(torch.int64) if isinstance(skip_acs, torch.Tensor) else \
            np.asarray(skip_acs, dtype=np.int64)
    skip_multiply = _like(counters, _fs_skip_multiplies(network).astype(np.int64))
    main_part = synaptic - skip_part
    counters[..., _K["macs"]] = main_part * multiply + skip_part * skip_multiply
    counters[..., _K["acs"]] = main_part * (1 - multiply) + skip_part * (1 - skip_multiply)
    return counters * active[..., None]


def fs_spikes_per_neuron(trace: Trace) -> list[float]:
    """Mean spikes per neuron and image of every layer of an FS trace (the paper's "spikes per neuron")."""
    return [float(np.asarray(s, dtype=bool).sum() / max(trace.n_images * s.shape[-1], 1)) for s in trace.spikes]
