"""Exact kernels of the simulator's hot path, chosen per device by measurement (issue 14).

* :func:`count_true` — spikes per row (``bool [..., n] → int64 [...]``). On the CPU numpy sums the bytes 10–40×
  faster than ``torch.sum``/``count_nonzero`` of a bool tensor; elsewhere torch.
* :func:`complement_synaptic_sum` — ``Σ_i W[j,i]·x_i`` of the binary spikes of S steps at once as sums of weight
  rows (``embedding_bag``), visiting per image and input only the rarer event (spikes of mostly silent inputs,
  silences of mostly firing ones: :class:`ComplementPlan`). The same integers as the matrix product with a fraction
  of the work; exact under the simulator's bound: every partial sum of ± integer weights stays below the float
  format's exact range.
* :func:`limited_threads` — torch's intra-op threads for the work at hand: small tensors run on one thread (two
  threads fighting for loaded cores made the golden phase of ``snncosim run`` 20–30× slower), big ones on up to
  the caller's setting, which is restored afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["count_true", "complement_synaptic_sum", "ComplementPlan",
           "SPARSE_DENSITY", "NUMPY_ON_CPU", "limited_threads", "ELEMENTS_PER_THREAD"]

NUMPY_ON_CPU = True  # IF/LIF step loops on the CPU in numpy (faster there); False: torch, as on a GPU
SPARSE_DENSITY = 0.3  # dense CPU layers whose rarer events (ComplementPlan) are fewer sum weight rows, not a GEMM
ELEMENTS_PER_THREAD = 1 << 21  # one intra-op thread per this many elements of the widest per-step tensor


def count_true(flags: torch.Tensor) -> torch.Tensor:
    """``int64 [...]``: the number of True entries along the last axis of ``bool [..., n]`` (same device)."""
    if flags.device.type == "cpu" and flags.dtype == torch.bool:
        array = flags.numpy()
        return torch.from_numpy(array.view(np.uint8).sum(axis=-1, dtype=np.int64))
    return flags.sum(dim=-1, dtype=torch.int64)


def complement_synaptic_sum(spikes: torch.Tensor, weight_t: torch.Tensor,
                            plan: "ComplementPlan") -> tuple[torch.Tensor, torch.Tensor]:
    """``spikes @ weight_t`` for CPU ``bool [S, B, n_in]`` spikes of S steps → ``[S, B, n_out]`` in the weights'
    dtype, and the spikes per (step, image) ``int64 [S, B]`` (the count the layer's ``s_in`` needs), by the
    complement trick: per image, the inputs that spike in more than half of the S steps (``plan.mostly_on``)
    contribute ``Σ W`` once and their *silent* steps are subtracted; all other inputs add their spikes. Only the
    rarer event of each input is visited (on rate-coded MNIST 1/5 of the spikes), and only inputs that change at
    all in the S steps (``plan.changing``: never-on and always-on inputs have no events) are scanned for them. The
    result is the same integers: every partial sum is a sum of ± weights, below the bound that makes the float
    dtype exact."""
    steps, batch, n = spikes.shape
    on = plan.mostly_on.numpy().reshape(-1)  # [B·n]
    changing = plan.changing  # the (image, input) pairs b·n + i with events, ascending
    index_dtype = np.int32 if spikes.numel() < 2 ** 31 else np.int64  # of the table rows and bag offsets
    pair_on = on[changing]  # per changing pair: mostly on (its events are silences: subtract its weights)
    pair_row = (changing % n).astype(index_dtype) + pair_on.astype(index_dtype) * n  # rows n.. of the table: −W
    pair_image = (changing // n).astype(index_dtype)
    # the events, step by step over the changing pairs: spikes XOR mostly-on
    events = np.take(spikes.numpy().reshape(steps, batch * n), changing, axis=1)
    events ^= pair_on
    flat = np.flatnonzero(events)  # = s·A + a, ascending
    width = max(1, changing.size)  # A (flat is empty when no pair changes)
    step, pair = np.divmod(flat, width)
    lookup = pair_row[pair]
    silence = pair_on[pair]
    row = step * batch + pair_image[pair]  # = s·B + b, ascending
    # events per row, spikes and silences apart: one integer count over 2·row + silence
    by_kind = np.bincount(2 * row + silence, minlength=2 * steps * batch).reshape(-1, 2)
    per_row = by_kind.sum(axis=1)
    offsets = np.zeros(steps * batch, dtype=index_dtype)
    np.cumsum(per_row[:-1], out=offsets[1:])
    table = torch.cat([weight_t, -weight_t])
    current = F.embedding_bag(torch.from_numpy(lookup), table, torch.from_numpy(offsets), mode="sum")
    current = current.reshape(steps, batch, -1)
    mostly_on = plan.mostly_on.to(weight_t.dtype)  # [B, n]
    current += mostly_on @ weight_t  # Σ W of the mostly-on inputs, per image
    # spikes = events of the other inputs + (mostly-on inputs − their silences)
    counts = by_kind[:, 0] - by_kind[:, 1] + np.tile(on.reshape(batch, n).sum(axis=1, dtype=np.int64), steps)
    return current, torch.from_numpy(counts.reshape(steps, batch))


class ComplementPlan:
    """Which inputs of each image spike in more than half of a chunk's S steps (``mostly_on``, ``bool [B, n]``),
    which (image, input) pairs change at all (``changing``: flat indices ``b·n + i`` of the pairs spiking in
    some but not all steps) and how many events :func:`complement_synaptic_sum` visits (``events``), from the
    per-(image, input) spike counts."""

    def __init__(self, spikes: torch.Tensor):
        steps = spikes.shape[0]
        # [B, n]; summed in bytes while they cannot overflow (3x faster than widening every element)
        narrow = np.uint8 if steps < 256 else np.int32
        counts = spikes.numpy().view(np.uint8).sum(axis=0, dtype=narrow).astype(np.int32)
        self.mostly_on = torch.from_numpy(counts * 2 > steps)
        index_dtype = np.int32 if counts.size < 2 ** 31 else np.int64
        self.changing = np.flatnonzero((counts > 0) & (counts < steps)).astype(index_dtype)
        self.events = int(np.minimum(counts, steps - counts).sum())


@contextlib.contextmanager
def limited_threads(elements: int) -> Iterator[int]:
    """Run the block with ``min(caller's threads, ceil(elements / ELEMENTS_PER_THREAD))`` intra-op threads (at
    least 1); the caller's setting is restored afterwards. Yields the number used."""
    before = torch.get_num_threads()
    wanted = max(1, min(before, -(-int(elements) // ELEMENTS_PER_THREAD)))
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
