"""Cycle model of the RTL engine's schedule (docs/architecture.md, "Schedule of one image").

For every step t and layer l the engine spends

    cycles(t, l) = W_l + S_in(t, l) · G_l + G_l + C_LAYER

clock cycles, where ``W_l = ceil(n_{l-1} / P)`` mask words of the spike source are fetched, every set input bit
costs one cycle per lane group (``G_l = ceil(n_l / P)``), the UPDATE pass costs one cycle per group and
``C_LAYER`` is the fixed cost of one (step, layer) (pipeline fill/drain, state transitions). An image costs

    cycles(image) = Σ_t Σ_l cycles(t, l) + C_IMAGE.

The two constants below are the only numbers the hardware may tune; ``hw/engine.py`` must meet them exactly.
Every function accepts Python ints, numpy arrays or torch tensors for the per-step quantities (vectorised).
"""

from __future__ import annotations

from typing import Sequence

from .errors import SnnCosimError

C_LAYER = 2
C_IMAGE = 1


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


def spike_cycles_lower_bound(total_acs: int, lanes: int) -> float:
    """``ACs / P``: the cycles an ideal P-lane crossbar needs for the accumulations alone."""
    return total_acs / _check_lanes(lanes)


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
