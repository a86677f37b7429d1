"""Cycle model of the RTL engine's schedule (docs/architecture.md, "Schedule of one image").

For every step t and layer l the engine spends

    cycles(t, l) = W_l + S_in(t, l) · G_l + G_l + C_LAYER

clock cycles, where ``W_l = ceil(n_{l-1} / P)`` mask words of the spike source are fetched, every set input bit
costs one cycle per lane group (``G_l = ceil(n_l / P)``), the UPDATE pass costs one cycle per group and
``C_LAYER`` is the fixed cost of one (step, layer) (pipeline fill/drain, state transitions). An image costs

    cycles(image) = Σ_t Σ_l cycles(t, l) + C_IMAGE.

Residual junctions (:func:`skip_plans`): a junction layer adds a second ACCUMULATE pass over its skip source,
``W_skip + E_skip·G_l`` cycles (``E_skip`` = skip-source spikes for a dense skip, reached positions for a conv
skip), before its UPDATE.

Conv2d / avgpool2d layers (:func:`layer_plans`, :func:`spatial_cycles`): ``W_l + R·G_l + Q_l·G_l + C_LAYER``
(conv) and ``W_l + R_w + Q_l·G_l + C_LAYER`` (pool, word-parallel), ``R`` = Σ over input spikes of the output
positions each reaches, ``R_w`` = Σ over non-empty source mask words of the output positions the word's position
reaches (:func:`golden.simulation.counting.pool_word_events`), ``Q_l = h_out·w_out``, ``G_l = ceil(c_out/P)``; a spatial
source is read as ``h·w·ceil(c/P)`` words.

The two constants below are the only numbers the hardware may tune; ``hw/engine.py`` must meet them exactly.
Every function accepts Python ints, numpy arrays or torch tensors for the per-step quantities (vectorised).

Lateral inhibition (docs/spec.md §3c): a dense layer with WTA strengths adds an INHIBIT pass after UPDATE,
``G_l + C_INHIBIT`` cycles per step (:attr:`LayerPlan.inhibit_cycles`), so ``cycles(t, l) = W_l + S_in·G_l + 2·G_l
+ C_LAYER + C_INHIBIT`` for such a layer.

FS networks (docs/spec.md §3b): an image takes L·K local steps; layer l is active only in its collect window
(l) and fire window (l+1) (:func:`fs_windows`, :func:`fs_active`). Active (step, layer) entries cost the formula
above (``S_in`` = 0 in fire steps); idle ones cost 0 cycles. :func:`fs_stream_cycles` streams images every 2K steps
(latency L·K) and gives the sequential total and the layer-parallel pipeline bound. An FS residual junction
(golden model only) pays the skip pass ``W_skip + E_skip·G_l`` in each of its active steps, ``E_skip`` = the skip
source's spikes delayed by (l−k−1)·K steps into its collect window (0 in its fire steps).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from golden.core.errors import SnnCosimError
from golden.core.geometry import Geometry, geometry_of

C_LAYER = 2
C_IMAGE = 1
C_INHIBIT = 1  # the INHIBIT pass of a layer with lateral inhibition: G_l issue cycles + C_INHIBIT (its drain)


def _check_lanes(lanes: int) -> int:
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise SnnCosimError(f"lanes (crossbar width P) must be a positive integer, got {lanes!r}")
    return lanes


def lane_groups(n, lanes: int):
    """``ceil(n / P)``: the number of P-wide words that hold ``n`` neurons (or ``n`` input bits)."""
    _check_lanes(lanes)
    return (n + lanes - 1) // lanes


def layer_cycles(s_in, n_prev: int, n_l: int, lanes: int):
    """Cycles of one (step, layer): ``W_l + S_in·G_l + G_l + C_LAYER``; ``s_in`` may be an array of any shape."""
    groups = lane_groups(n_l, lanes)
    return lane_groups(n_prev, lanes) + s_in * groups + groups + C_LAYER


def step_cycles(s_in, layer_sizes: Sequence[int], lanes: int):
    """Cycles of every (…, layer) for ``s_in`` of shape ``[..., L]`` (input spikes of each layer), same shape.

    ``layer_sizes`` is ``[n_0, n_1, ..., n_L]``."""
    sizes = list(layer_sizes)
    if s_in.shape[-1] != len(sizes) - 1:
        raise SnnCosimError(f"s_in has {s_in.shape[-1]} layers but layer_sizes describes {len(sizes) - 1}")
    out = s_in * 0
    for l in range(1, len(sizes)):
        out[..., l - 1] = layer_cycles(s_in[..., l - 1], sizes[l - 1], sizes[l], lanes)
    return out


def image_cycles(s_in, layer_sizes: Sequence[int], lanes: int):
    """Total cycles of each image: ``Σ_t Σ_l cycles(t, l) + C_IMAGE`` for ``s_in`` of shape ``[..., T, L]``;
    returns shape ``[...]``."""
    per = step_cycles(s_in, layer_sizes, lanes)
    return per.sum(-1).sum(-1) + C_IMAGE


def fixed_overhead_per_step(layer_sizes: Sequence[int], lanes: int) -> int:
    """Cycles of one step that do not depend on the spikes: ``Σ_l (W_l + G_l + C_LAYER)``."""
    sizes = list(layer_sizes)
    return int(sum(lane_groups(sizes[l - 1], lanes) + lane_groups(sizes[l], lanes) + C_LAYER
                   for l in range(1, len(sizes))))


def fixed_overhead(layer_sizes: Sequence[int], lanes: int, steps: int, images: int = 1) -> int:
    """Spike-independent cycles of ``images`` images of ``steps`` steps, ``C_IMAGE`` included."""
    return int(images) * (int(steps) * fixed_overhead_per_step(layer_sizes, lanes) + C_IMAGE)


def ac_bound_ratio(total_cycles: int, total_acs: int, lanes: int, fixed: int) -> float:
    """``(cycles − fixed) / (ACs / P)``: how far the accumulate phase is from one AC per lane per cycle.

    The benchmark's bound is ``cycles ≤ 1.25 · ACs / P + fixed``, i.e. a ratio ≤ 1.25 (it is ≥ 1 and exceeds 1
    only through padding lanes, ``G_l · P > n_l``). ``fixed`` is the run's total spike-independent overhead
    (:func:`fixed_overhead`). With no ACs the ratio is 0.0 when nothing but the overhead was spent, else inf."""
    _check_lanes(lanes)
    variable = total_cycles - fixed
    if total_acs == 0:
        return 0.0 if variable <= 0 else float("inf")
    return float(variable) * lanes / float(total_acs)


# ----------------------------------------------------------------------------------------------- FS networks
def _check_fs(n_layers: int, phases: int) -> tuple[int, int]:
    for name, value in (("n_layers", n_layers), ("phases", phases)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SnnCosimError(f"{name} must be a positive integer, got {value!r}")
    return int(n_layers), int(phases)


def fs_windows(n_layers: int, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-image schedule of an FS network (docs/spec.md §3b): ``(collect, fire)``, ``bool [L·K, L]`` over the
    local steps s = 1..L·K (row s−1) and layers l = 1..L (column l−1). Window ``w = ceil(s/K)``: layer l collects
    in window l and, unless it is the output layer, fires in window l+1."""
    n_layers, phases = _check_fs(n_layers, phases)
    window = np.arange(n_layers * phases) // phases + 1  # 1-based window of every local step
    layer = np.arange(1, n_layers + 1)
    collect = window[:, None] == layer[None, :]
    fire = (window[:, None] == layer[None, :] + 1) & (layer[None, :] < n_layers)
    return collect, fire


def fs_active(n_layers: int, phases: int) -> np.ndarray:
    """``bool [L·K, L]``: the (local step, layer) entries an FS image uses; all others cost 0 cycles and count
    nothing (the engine skips idle layers)."""
    collect, fire = fs_windows(n_layers, phases)
    return collect | fire


@dataclass(frozen=True)
class FsStream:
    """An FS stream of N images, image n (0-based) entering at global step ``2K·n + 1`` (docs/spec.md §3b).

    ``step_cycles[g, l]``: cycles layer l+1 spends at global step g+1 (from the image it works on then, 0 when
    idle); ``occupant[g, l]``: that image's index (−1 when idle). ``total_cycles`` = Σ step_cycles + C_IMAGE, the
    cycles of one engine that evaluates the active layers of every global step one after the other (= Σ of the
    per-image trace cycles without their C_IMAGE, plus one C_IMAGE); ``pipelined_cycles`` = Σ_g max_l
    step_cycles[g, l] + C_IMAGE, the bound for an engine that runs the layers of a global step in parallel (one
    unit per layer). ``latency_steps`` = L·K, ``period_steps`` = 2K, ``global_steps`` = 2K·(N−1) + L·K (vs N·L·K
    without streaming)."""

    n_images: int
    n_layers: int
    phases: int
    step_cycles: np.ndarray
    occupant: np.ndarray
    total_cycles: int
    pipelined_cycles: int

    @property
    def latency_steps(self) -> int:
        return self.n_layers * self.phases

    @property
    def period_steps(self) -> int:
        return 2 * self.phases

    @property
    def global_steps(self) -> int:
        return int(self.step_cycles.shape[0])

    @property
    def unstreamed_steps(self) -> int:
        """Steps when each image starts after the previous one ends: N·L·K."""
        return self.n_images * self.latency_steps


def fs_stream_schedule(n_layers: int, phases: int, n_images: int) -> np.ndarray:
    """``int64 [G, L]``: which image (0-based) layer l+1 works on at global step g+1 when image n enters at global
    step ``2K·n + 1``; −1 when the layer is idle. Raises :class:`SnnCosimError` if two images ever needed the same
    layer at the same step (they do not: a layer works for 2K consecutive steps per image, collect then fire,
    so one membrane register per neuron suffices)."""
    n_layers, phases = _check_fs(n_layers, phases)
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise SnnCosimError(f"n_images must be a positive integer, got {n_images!r}")
    active = fs_active(n_layers, phases)
    local = n_layers * phases
    steps = 2 * phases * (int(n_images) - 1) + local
    occupant = np.full((steps, n_layers), -1, dtype=np.int64)
    for n in range(int(n_images)):
        start = 2 * phases * n
        block = occupant[start:start + local]
        if np.any((block >= 0) & active):
            raise SnnCosimError("FS streaming conflict: two images need one layer at one step")
        block[active] = n
    return occupant


def fs_stream_cycles(cycles, phases: int) -> FsStream:
    """Stream the per-image FS cycles ``cycles`` (``[N, L·K, L]``: a golden trace's ``counter("cycles")``, idle
    entries 0) with one image every 2K steps; see :class:`FsStream`."""
    cycles = np.asarray(cycles, dtype=np.int64)
    if cycles.ndim != 3:
        raise SnnCosimError(f"cycles must be [N, L·K, L], got shape {cycles.shape}")
    n_images, local, n_layers = cycles.shape
    phases = _check_fs(n_layers, phases)[1]
    if local != n_layers * phases:
        raise SnnCosimError(f"cycles have {local} steps per image but L·K = {n_layers * phases}")
    occupant = fs_stream_schedule(n_layers, phases, n_images)
    active = fs_active(n_layers, phases)
    if np.any(cycles[:, ~active]):
        raise SnnCosimError("cycles of idle FS (step, layer) entries must be 0")
    step_cycles = np.zeros(occupant.shape, dtype=np.int64)
    for n in range(n_images):
        start = 2 * phases * n
        step_cycles[start:start + local] += cycles[n]
    total = int(step_cycles.sum()) + C_IMAGE
    pipelined = int(step_cycles.max(axis=1).sum()) + C_IMAGE
    return FsStream(int(n_images), int(n_layers), int(phases), step_cycles, occupant, total, pipelined)


# ----------------------------------------------------------------------------------------------- conv / pool layers
@dataclass(frozen=True)
class LayerPlan:
    """What one (step, layer) costs in the engine's schedule (docs/architecture.md, "Convolution").

    ``words`` W_l: mask words of the spike source; ``groups`` G_l: lane groups of the layer's output channels
    (dense: of its neurons); ``state_words`` = positions · G_l (dense: G_l), the UPDATE pass and the membrane /
    spike-mask depth; ``per_event``: cycles (and weight words) of one event — a (input spike, reached position)
    pair for conv (G_l), a (non-empty source word, reached position) pair for pool (1: all P lanes at once), an
    input spike for dense (G_l); ``reach_div``: ACs per reached position (c_out for conv, 1 for pool, 0 for
    dense; pool events are not ACs / reach_div but R_w, see :func:`golden.simulation.counting.pool_word_events`)."""

    kind: str
    words: int
    groups: int
    state_words: int
    per_event: int
    reach_div: int
    inhibit: bool = False  # lateral inhibition (docs/spec.md §3c): an INHIBIT pass of G_l + C_INHIBIT cycles

    @property
    def inhibit_cycles(self) -> int:
        """Cycles of the INHIBIT pass of one (step, layer): ``G_l + C_INHIBIT`` when the layer inhibits, else 0."""
        return self.groups + C_INHIBIT if self.inhibit else 0


def _spatial_source(layer_sizes, spatial, l: int, lanes: int, input_shape=None) -> int | None:
    """Words of layer l's source when it is read in hardware order (position-major, channel groups), else None."""
    if spatial[l - 1]:
        geo = spatial[l - 1]
        return geo.in_positions * lane_groups(geo.c_in, lanes)
    if l >= 2 and spatial[l - 2]:
        source = spatial[l - 2]
        return source.out_positions * lane_groups(source.c_out, lanes)
    return None


def layer_plans(layer_sizes: Sequence[int], spatial: Sequence[tuple], lanes: int) -> list[LayerPlan]:
    """The :class:`LayerPlan` of every layer l = 1..L. A layer reads its source in *hardware order* when the
    source is spatial (the input of a conv/pool layer 1, or a conv/pool layer's spike masks): ``h·w·ceil(c/P)``
    words, word ``q·ceil(c/P) + g`` holding channels ``g·P..g·P+P−1`` of position ``q = y·w + x``; otherwise
    ``ceil(n_{l-1}/P)`` words in neuron order."""
    _check_lanes(lanes)
    sizes = [int(n) for n in layer_sizes]
    spatial = [Geometry.of(geo) for geo in spatial] if spatial else [()] * (len(sizes) - 1)
    plans = []
    for l in range(1, len(sizes)):
        words = _spatial_source(sizes, spatial, l, lanes)
        if words is None:
            words = lane_groups(sizes[l - 1], lanes)
        geo = spatial[l - 1]
        if geo:
            groups = lane_groups(geo.c_out, lanes)
            plans.append(LayerPlan("avgpool2d" if geo.is_pool else "conv2d", words, groups,
                                   geo.out_positions * groups, 1 if geo.is_pool else groups,
                                   1 if geo.is_pool else geo.c_out))
        else:
            groups = lane_groups(sizes[l], lanes)
            plans.append(LayerPlan("dense", words, groups, groups, groups, 0))
    return plans


def network_plans(network, lanes: int) -> list[LayerPlan]:
    """The :class:`LayerPlan` of every layer of ``network``, ``inhibit`` set for layers with lateral inhibition."""
    plans = layer_plans(network.layer_sizes, [geometry_of(layer) for layer in network.layers], lanes)
    return [replace(plan, inhibit=layer.kind == "dense" and layer.inhibition is not None)
            for plan, layer in zip(plans, network.layers)]


# ----------------------------------------------------------------------------------------------- residual junctions
# A skip pass (docs/architecture.md, "Residual junctions"): after its main ACCUMULATE pass, junction layer l reads
# the W_skip mask words of its skip source k (hardware order when k is a conv/pool layer, else neuron order) and
# adds the skip weights into the same ACC words, then UPDATEs as usual:
#     cycles(t, l) = W_l + E_l·e_l + W_skip + E_skip·G_l + (state words) + C_LAYER
# with E_skip = S_skip (input spikes of the skip source, dense skip) or R_skip (Σ over skip-source spikes of the
# output positions each reaches through the skip kernel, conv skip).
def skip_source_words(network, source: int, lanes: int) -> int:
    """Mask words of skip source ``source`` in the order the engine reads them: ``h·w·ceil(c/P)`` for a conv/pool
    layer (position-major), else ``ceil(n/P)``; the input (source 0) as layer 1 reads it."""
    if source == 0:
        return network_plans(network, lanes)[0].words
    layer = network.layers[source - 1]
    if layer.kind != "dense":
        c, h, w = (int(v) for v in layer.out_shape)
        return h * w * lane_groups(c, lanes)
    return lane_groups(layer.n_out, lanes)


def skip_plans(network, lanes: int) -> dict[int, LayerPlan]:
    """Target layer (1-based) → the :class:`LayerPlan` of its skip pass: ``words`` = W_skip, ``groups`` = the
    junction's G_l, ``per_event`` = G_l, ``reach_div`` = c_out (conv skip) or 0 (dense skip); ``state_words`` 0."""
    _check_lanes(lanes)
    plans = {}
    for skip in network.skips:
        target = network.layers[skip.target - 1]
        groups = lane_groups(target.out_shape[0] if target.kind != "dense" else target.n_out, lanes)
        words = skip_source_words(network, skip.source, lanes)
        reach_div = int(target.out_shape[0]) if skip.kind == "conv2d" else 0
        plans[int(skip.target)] = LayerPlan("skip-" + skip.kind, words, groups, 0, groups, reach_div)
    return plans


def spatial_cycles(plan: LayerPlan, reach):
    """Cycles of one conv/pool (step, layer): ``W_l + E·e + positions·G_l + C_LAYER`` with ``E`` = ``R`` (conv: Σ
    over input spikes of the output positions each reaches, ``e`` = G_l) or ``R_w`` (pool: Σ over non-empty source
    mask words of the output positions each word's position reaches, ``e`` = 1)."""
    return plan.words + reach * plan.per_event + plan.state_words + C_LAYER


def reach_table(geo: "Geometry | tuple") -> list[list[tuple[int, int]]]:
    """For every input position ``q = iy·w + ix`` of a conv/pool layer, the ``(output position oq = oy·wo + ox,
    kernel tap ky·kw + kx)`` pairs whose receptive field contains it (stride and zero padding aware), ascending oq:
    the order in which the engine visits them."""
    geo = Geometry.of(geo)
    h, w, ho, wo, kh, kw = geo.h_in, geo.w_in, geo.h_out, geo.w_out, geo.kernel_h, geo.kernel_w
    sy, sx, py, px = geo.stride_y, geo.stride_x, geo.pad_y, geo.pad_x
    table = []
    for iy in range(h):
        for ix in range(w):
            row = []
            for oy in range(ho):
                ky = iy + py - oy * sy
                if not 0 <= ky < kh:
                    continue
                for ox in range(wo):
                    kx = ix + px - ox * sx
                    if 0 <= kx < kw:
                        row.append((oy * wo + ox, ky * kw + kx))
            table.append(row)
    return table
