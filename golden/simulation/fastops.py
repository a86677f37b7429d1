"""Exact kernels of the simulator's hot path, chosen per device by measurement (issue 14).

* :func:`count_true` — spikes per row (``bool [..., n] → int64 [...]``). On the CPU numpy sums the bytes 10–40×
  faster than ``torch.sum``/``count_nonzero`` of a bool tensor; elsewhere torch.
* :func:`complement_synaptic_sum` — ``Σ_i W[j,i]·x_i`` of the binary spikes of S steps at once as sums of weight
  rows (``embedding_bag``), visiting per image and input only the rarer event (spikes of mostly silent inputs,
  silences of mostly firing ones: :class:`ComplementPlan`). The same integers as the matrix product with a fraction
  of the work; exact under the simulator's bound: every partial sum of ± integer weights stays below the float
  format's exact range.
* :class:`PatternTable` / :func:`pattern_synaptic_sum` — the same sums for layers with few outputs (an output layer
  of ten classes): the inputs are packed 8 to a byte (``np.packbits``) and every byte looks up the precomputed sum
  of its 8 weight rows (a table of 256 patterns per group of 8 inputs, plus a column of spike counts), so a row of
  n inputs costs n/8 lookups whatever its spikes; exact for the same reason. Used where the table is small
  (``PATTERN_TABLE_BYTES``): 6.5x faster than the rarer-event sums on MNIST's 256 → 10 layer (measured).
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

__all__ = ["count_true", "counting_rows", "complement_synaptic_sum", "ComplementPlan", "PatternTable",
           "pattern_synaptic_sum", "SPARSE_DENSITY", "PATTERN_TABLE_BYTES", "NUMPY_ON_CPU", "limited_threads",
           "ELEMENTS_PER_THREAD"]

NUMPY_ON_CPU = True  # IF/LIF step loops on the CPU in numpy (faster there); False: torch, as on a GPU
SPARSE_DENSITY = 0.3  # dense CPU layers whose rarer events (ComplementPlan) are fewer sum weight rows, not a GEMM
PATTERN_TABLE_BYTES = 1 << 21  # dense CPU layers whose pattern table (PatternTable) is at most this big look sums up
ELEMENTS_PER_THREAD = 1 << 21  # one intra-op thread per this many elements of the widest per-step tensor


def count_true(flags: torch.Tensor) -> torch.Tensor:
    """``int64 [...]``: the number of True entries along the last axis of ``bool [..., n]`` (same device)."""
    if flags.device.type == "cpu" and flags.dtype == torch.bool:
        array = flags.numpy()
        return torch.from_numpy(array.view(np.uint8).sum(axis=-1, dtype=np.int64))
    return flags.sum(dim=-1, dtype=torch.int64)


def counting_rows(weight_t: torch.Tensor) -> torch.Tensor:
    """``[n_in, n_out + 1]``: the weight rows ``weight_t`` with a column of ones, so that a sum of rows also counts
    them (the kernels below return the spikes per row from that column: exact, as the sums are)."""
    return torch.cat([weight_t, weight_t.new_ones((weight_t.shape[0], 1))], dim=1).contiguous()


def complement_synaptic_sum(spikes: torch.Tensor, weight_t: torch.Tensor, plan: "ComplementPlan",
                            rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``spikes @ weight_t`` for CPU ``bool [S, B, n_in]`` spikes of S steps → ``[S, B, n_out]`` in the weights'
    dtype, and the spikes per (step, image) ``int64 [S, B]`` (the count the layer's ``s_in`` needs), by the
    complement trick: per image, the inputs that spike in more than half of the S steps (``plan.mostly_on``)
    contribute ``Σ W`` once and their *silent* steps are subtracted; all other inputs add their spikes. Only the
    rarer event of each input is visited (on rate-coded MNIST 1/5 of the spikes), and only inputs that change at
    all in the S steps (``plan.changing``: never-on and always-on inputs have no events) are scanned for them. The
    result is the same integers: every partial sum is a sum of ± weights, below the bound that makes the float
    dtype exact. ``rows``: :func:`counting_rows` of ``weight_t`` (made here when not given).

    One ``embedding_bag`` over rows ``[W | 1]`` with a weight of +1 per spike and −1 per silence (measured 1.5x
    faster than a doubled table ``[W; −W]``, which no longer fits the core's cache); the bags (step, image) are
    contiguous runs of the events, so their starts are found by binary search."""
    steps, batch, n = spikes.shape
    rows = counting_rows(weight_t) if rows is None else rows
    on = plan.mostly_on.numpy().reshape(-1)  # [B·n]
    changing = plan.changing  # the (image, input) pairs b·n + i with events, ascending
    index_dtype = np.int32 if spikes.numel() < 2 ** 31 else np.int64  # of the table rows and bag offsets
    pair_on = on[changing]  # per changing pair: mostly on (its events are silences: subtract its weights)
    pair_input = (changing % n).astype(index_dtype)
    pair_sign = np.where(pair_on, -1.0, 1.0).astype(np.float32 if rows.dtype == torch.float32 else np.float64)
    # the events, step by step over the changing pairs: spikes XOR mostly-on; flat = s·A + a, ascending
    events = np.take(spikes.numpy().reshape(steps, batch * n), changing, axis=1)
    events ^= pair_on
    flat = np.flatnonzero(events)
    width = max(1, changing.size)  # A (flat is empty when no pair changes)
    pair = flat % width
    # bag (s, b) starts at the first event at or after s·A + (b's first pair)
    first_pair = np.searchsorted(changing, np.arange(batch, dtype=changing.dtype) * n)
    starts = (np.arange(steps, dtype=np.int64)[:, None] * width + first_pair[None, :]).reshape(-1)
    offsets = np.searchsorted(flat, starts).astype(index_dtype)
    sums = F.embedding_bag(torch.from_numpy(pair_input[pair]), rows, torch.from_numpy(offsets), mode="sum",
                           per_sample_weights=torch.from_numpy(pair_sign[pair]))
    sums = sums.reshape(steps, batch, -1)
    # + Σ [W | 1] of each image's mostly-on inputs (their weights and their count), once per image
    on_flat = np.flatnonzero(on)
    on_starts = np.searchsorted(on_flat, np.arange(batch, dtype=np.int64) * n).astype(index_dtype)
    sums += F.embedding_bag(torch.from_numpy((on_flat % n).astype(index_dtype)), rows, torch.from_numpy(on_starts),
                            mode="sum")
    return sums[..., :-1], sums[..., -1].to(torch.int64)


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


class PatternTable:
    """Per group of 8 inputs (``⌈n_in / 8⌉`` groups, the last padded with zero weights), the sum of the weight rows
    of each of the 256 spike patterns, and in one more column the pattern's number of spikes: ``rows``
    ``[groups · 256, n_out + 1]`` in the weights' dtype, row ``g · 256 + byte`` for the byte ``np.packbits`` makes
    of inputs ``8g .. 8g + 7`` (the first input in the byte's top bit). Every entry is a sum of at most 8 integer
    weights (or a count), so it is exact wherever the layer's whole sums are."""

    def __init__(self, weight_t: torch.Tensor):
        n_in, n_out = weight_t.shape
        self.groups = -(-n_in // 8)
        padded = weight_t.new_zeros((self.groups * 8, n_out + 1))
        padded[:n_in, :n_out] = weight_t
        padded[:n_in, n_out] = 1
        bits = (torch.arange(256)[:, None] >> (7 - torch.arange(8))[None, :]) & 1  # pattern → its 8 input bits
        rows = torch.einsum("pk,gko->gpo", bits.to(weight_t.dtype), padded.reshape(self.groups, 8, n_out + 1))
        self.rows = rows.reshape(self.groups * 256, n_out + 1).contiguous()
        self.group_base = np.arange(self.groups, dtype=np.int32) * 256

    @staticmethod
    def size_bytes(n_in: int, n_out: int, dtype: torch.dtype) -> int:
        return -(-n_in // 8) * 256 * (n_out + 1) * dtype.itemsize


def pattern_synaptic_sum(spikes: torch.Tensor, table: PatternTable) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`complement_synaptic_sum` returns (``[S, B, n_out]`` sums, ``int64 [S, B]`` spikes per row) for CPU
    ``bool [S, B, n_in]`` spikes, by one table lookup per byte of 8 packed inputs: ``⌈n_in / 8⌉`` lookups per (step,
    image), one ``embedding_bag`` for the chunk."""
    steps, batch, n = spikes.shape
    packed = np.packbits(spikes.numpy().reshape(steps * batch, n), axis=1)  # [S·B, groups] uint8
    index = packed.astype(np.int64 if packed.size >= 2 ** 31 else np.int32)
    index += table.group_base
    offsets = np.arange(0, index.size, table.groups, dtype=index.dtype)
    sums = F.embedding_bag(torch.from_numpy(index.reshape(-1)), table.rows, torch.from_numpy(offsets), mode="sum")
    counts = sums[:, -1].to(torch.int64).reshape(steps, batch)
    return sums[:, :-1].reshape(steps, batch, -1), counts


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
