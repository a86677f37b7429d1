"""The engine's record and summary beats → golden-form arrays: the one decoder of the Verilator trace parser
(:mod:`cosim.harness`) and the Amaranth-simulator tests (``tests/test_hw_engine.py``, ``tests/test_hw_fs.py``).

A record beat (``rec_valid``) carries ``(image, step, layer, group)`` and, per lane p of the group, a spike bit and a
signed ``M``-bit membrane; a summary beat (``sum_valid``) carries ``(image, step, layer)`` and the nine counters
(:data:`golden.core.counters.COUNTER_NAMES`). ``image`` is whatever names the image on the producer's side: the
harness's image index (per-step networks) or the index of the stream's first image (FS: steps are global and
:func:`fs_locate` maps them back to per-image local steps, docs/hardware.md). The decoders scatter the beats into
per-layer ``[N, T, n_l]`` spikes and membranes (torch neuron order, ``orders`` = ``EngineConfig.hardware_order``)
and ``[N, T, L, 9]`` counters, count every beat per (image, step, layer[, group]) and list each missing, duplicate
or misplaced beat in ``problems`` (each one an RTL bug). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from golden.core.counters import COUNTER_NAMES

N_COUNTERS = len(COUNTER_NAMES)


# ----------------------------------------------------------------------------------------------- beats
@dataclass
class RecordBeats:
    """Record beats, one row each: ``image``, ``step`` (1-based), ``layer`` (1-based), ``group`` ``int64 [B]``,
    ``spikes`` ``[B, P]`` (0/1) and ``membranes`` ``int64 [B, P]`` (signed)."""

    image: np.ndarray
    step: np.ndarray
    layer: np.ndarray
    group: np.ndarray
    spikes: np.ndarray
    membranes: np.ndarray

    @classmethod
    def from_words(cls, rows: Sequence[tuple[int, int, int, int, int, int]], lanes: int,
                   membrane_bits: int) -> "RecordBeats":
        """From ``(image, step, layer, group, rec_spikes, rec_membranes)`` rows of port values (Python ints)."""
        index = np.array([row[:4] for row in rows], dtype=np.int64).reshape(-1, 4)
        return cls(*index.T, unpack_words([row[4] for row in rows], 1, lanes, False),
                   unpack_words([row[5] for row in rows], membrane_bits, lanes, True))


@dataclass
class SummaryBeats:
    """Summary beats, one row each: ``image``, ``step``, ``layer`` ``int64 [B]`` and ``counters`` ``int64 [B, 9]``."""

    image: np.ndarray
    step: np.ndarray
    layer: np.ndarray
    counters: np.ndarray

    @classmethod
    def from_words(cls, rows: Sequence[tuple[int, int, int, int]], counter_bits: int) -> "SummaryBeats":
        """From ``(image, step, layer, sum_counters)`` rows of port values (Python ints)."""
        index = np.array([row[:3] for row in rows], dtype=np.int64).reshape(-1, 3)
        return cls(*index.T, unpack_words([row[3] for row in rows], counter_bits, N_COUNTERS, False))


def unpack_words(values: Sequence[int], field_bits: int, n_fields: int, signed: bool) -> np.ndarray:
    """Python-int words → ``int64 [len(values), n_fields]``: field k is bits ``[k·field_bits +: field_bits]``
    (two's complement when ``signed``)."""
    out = np.zeros((len(values), n_fields), dtype=np.int64)
    mask = (1 << field_bits) - 1
    for i, value in enumerate(values):
        value = int(value)
        for k in range(n_fields):
            v = (value >> (k * field_bits)) & mask
            out[i, k] = v - (1 << field_bits) if signed and v >> (field_bits - 1) else v
    return out


@dataclass
class DecodedBeats:
    """What :func:`decode_beats` / :func:`decode_fs_beats` give: per-layer spikes ``bool [N, T, n_l]`` and
    membranes ``int64 [N, T, n_l]`` (neuron order), counters ``int64 [N, T, L, 9]`` (0 where no beat came) and
    the ``problems`` found (missing, duplicate or misplaced beats)."""

    spikes: list[np.ndarray]
    membranes: list[np.ndarray]
    counters: np.ndarray
    problems: list[str] = field(default_factory=list)


def _groups(layer_sizes: Sequence[int], lanes: int, orders) -> list[int]:
    sizes = list(layer_sizes)
    if orders is not None:
        return [len(order) // lanes for order in orders]
    return [(sizes[l] + lanes - 1) // lanes for l in range(1, len(sizes))]


def scatter_records(spikes, membranes, seen, ok, layer, img, step, group, spk, mem, lanes: int) -> None:
    """Write the valid (``ok``) record beats into the per-layer ``[N, T, G·P]`` arrays (lane p of group g is column
    ``g·P + p``; ``step`` is 1-based) and count every (image, step, group) seen, for the missing/duplicate check."""
    for l in range(len(spikes)):
        sel = ok & (layer == l + 1)
        i, s, g = img[sel], step[sel] - 1, group[sel]
        np.add.at(seen[l], (i, s, g), 1)
        cols = g[:, None] * lanes + np.arange(lanes)[None, :]
        spikes[l][i[:, None], s[:, None], cols] = spk[sel].astype(bool)
        membranes[l][i[:, None], s[:, None], cols] = mem[sel]


def check_counts(seen: list[np.ndarray], what: str, problems: list[str], where: str,
                 layer_offset: bool = False) -> None:
    """Append the first (image, step, layer[, group]) whose beat count is not 1 to ``problems``."""
    for l, count in enumerate(seen):
        if (count == 1).all():
            continue
        bad = np.argwhere(count != 1)[0]
        index = [int(v) for v in bad]
        if layer_offset:
            index = [index[0], index[1] + 1, index[2] + 1]
        else:
            index = [index[0], index[1] + 1, l + 1, index[2]]
        n = int(count[tuple(bad)])
        problems.append(f"{'missing' if n == 0 else f'{n} copies of the'} {what} at {where.format(*index)}")
        return


def first_bad_count(seen: np.ndarray, expected: np.ndarray):
    """Index of the first entry whose beat count differs from ``expected`` (broadcast), else None."""
    bad = seen != expected
    if not bad.any():
        return None
    return tuple(int(v) for v in np.argwhere(bad)[0])


def to_neuron_order(spikes, membranes, orders, sizes) -> None:
    """Hardware order (``orders[l]`` = ``EngineConfig.hardware_order(l + 1)``: the neuron of every lane, −1
    padding) → torch neuron order, in place; nothing for ``orders=None``."""
    if orders is None:
        return
    for l, order in enumerate(orders):
        order = np.asarray(order, dtype=np.int64)
        valid = np.flatnonzero(order >= 0)
        for arrays in (spikes, membranes):
            out = np.zeros(arrays[l].shape[:2] + (sizes[l + 1],), dtype=arrays[l].dtype)
            out[..., order[valid]] = arrays[l][..., valid]
            arrays[l] = out


def _finish(spikes, membranes, counters, problems, orders, sizes) -> DecodedBeats:
    to_neuron_order(spikes, membranes, orders, sizes)
    return DecodedBeats(spikes=[s[..., :n] for s, n in zip(spikes, sizes[1:])],
                        membranes=[m[..., :n] for m, n in zip(membranes, sizes[1:])],
                        counters=counters, problems=problems)


# ----------------------------------------------------------------------------------------------- per-step networks
def decode_beats(records: RecordBeats, summaries: SummaryBeats, layer_sizes: Sequence[int], lanes: int,
                 n_images: int, n_steps: int, orders: Sequence[np.ndarray] | None = None,
                 problems: list[str] | None = None) -> DecodedBeats:
    """Beats of per-step networks (one record beat per (image, step, layer, group), one summary beat per (image,
    step, layer)) → :class:`DecodedBeats`; ``problems`` (appended to, and returned in the result) gets the first
    beat out of range and the first missing or duplicate beat of each kind."""
    problems = [] if problems is None else problems
    sizes = list(layer_sizes)
    n_layers = len(sizes) - 1
    groups = _groups(sizes, lanes, orders)
    spikes = [np.zeros((n_images, n_steps, g * lanes), dtype=bool) for g in groups]
    membranes = [np.zeros((n_images, n_steps, g * lanes), dtype=np.int64) for g in groups]
    counters = np.zeros((n_images, n_steps, n_layers, N_COUNTERS), dtype=np.int64)

    # record beats: one per (image, step, layer, group)
    seen = [np.zeros((n_images, n_steps, g), dtype=np.int64) for g in groups]
    if len(records.image):
        img, step, layer, group = records.image, records.step, records.layer, records.group
        ok = (img >= 0) & (img < n_images) & (step >= 1) & (step <= n_steps) & (layer >= 1) & (layer <= n_layers)
        ok &= group >= 0
        ok[ok] &= group[ok] < np.array(groups)[layer[ok] - 1]
        if not ok.all():
            j = int(np.argmin(ok))
            problems.append(f"record beat out of range: image {img[j]} step {step[j]} layer {layer[j]} "
                            f"group {group[j]}")
        scatter_records(spikes, membranes, seen, ok, layer, img, step, group, records.spikes, records.membranes,
                        lanes)
    check_counts(seen, "record beat", problems, "image {} step {} layer {} group {}")

    # summary beats: one per (image, step, layer)
    seen_s = np.zeros((n_images, n_steps, n_layers), dtype=np.int64)
    if len(summaries.image):
        img, step, layer = summaries.image, summaries.step, summaries.layer
        ok = (img >= 0) & (img < n_images) & (step >= 1) & (step <= n_steps) & (layer >= 1) & (layer <= n_layers)
        if not ok.all():
            j = int(np.argmin(ok))
            problems.append(f"summary beat out of range: image {img[j]} step {step[j]} layer {layer[j]}")
        np.add.at(seen_s, (img[ok], step[ok] - 1, layer[ok] - 1), 1)
        counters[img[ok], step[ok] - 1, layer[ok] - 1] = summaries.counters[ok]
    check_counts([seen_s], "summary beat", problems, "image {} step {} layer {}", layer_offset=True)
    return _finish(spikes, membranes, counters, problems, orders, sizes)


# ----------------------------------------------------------------------------------------------- FS streams
def fs_locate(base: np.ndarray, step: np.ndarray, layer: np.ndarray, bases: np.ndarray, counts: np.ndarray,
              phases: int, active: np.ndarray):
    """Map beats ``(stream base, global step g, layer l)`` to ``(image, local step s, ok)``: window
    ``w = (g − 1)//K + 1``, image ``n = (w − l) >> 1`` of the stream, ``s = g − 2K·n`` (docs/hardware.md); ``ok``
    only for a known stream, an image of it and an active (s, l) entry of the golden schedule."""
    n_layers = active.shape[1]
    sid = np.clip(np.searchsorted(bases, base), 0, len(bases) - 1)
    known = bases[sid] == base
    window = (step - 1) // phases + 1
    n = np.right_shift(window - layer, 1)
    local = step - 2 * phases * n
    ok = known & (step >= 1) & (layer >= 1) & (layer <= n_layers) & (n >= 0) & (n < counts[sid])
    ok &= (local >= 1) & (local <= active.shape[0])
    ok[ok] &= active[local[ok] - 1, layer[ok] - 1]
    return bases[sid] + n, local, ok


def decode_fs_beats(records: RecordBeats, summaries: SummaryBeats, layer_sizes: Sequence[int], lanes: int,
                    phases: int, bases: np.ndarray, counts: np.ndarray, active: np.ndarray,
                    orders: Sequence[np.ndarray] | None = None, problems: list[str] | None = None) -> DecodedBeats:
    """Beats of an FS image stream (``image`` = the stream's first image, global steps; starts ``bases`` /
    ``counts``; ``active`` = ``golden.core.cycle_model.fs_active(L, K)``) → per-image :class:`DecodedBeats` of
    the golden FS form ``[N, L·K, ...]`` (idle entries have no beats and stay 0); ``problems`` gets the first beat
    of no active entry and the first missing or duplicate beat of each kind."""
    problems = [] if problems is None else problems
    sizes = list(layer_sizes)
    n_layers = len(sizes) - 1
    steps = n_layers * int(phases)
    n_images = int(np.asarray(counts).sum())
    groups = _groups(sizes, lanes, orders)
    spikes = [np.zeros((n_images, steps, g * lanes), dtype=bool) for g in groups]
    membranes = [np.zeros((n_images, steps, g * lanes), dtype=np.int64) for g in groups]
    counters = np.zeros((n_images, steps, n_layers, N_COUNTERS), dtype=np.int64)

    # record beats: one per active (image, local step, layer, group)
    seen = [np.zeros((n_images, steps, g), dtype=np.int64) for g in groups]
    if len(records.image):
        base, step, layer, group = records.image, records.step, records.layer, records.group
        img, local, ok = fs_locate(base, step, layer, bases, counts, phases, active)
        ok &= group >= 0
        ok[ok] &= group[ok] < np.array(groups)[layer[ok] - 1]
        if not ok.all():
            j = int(np.argmin(ok))
            problems.append(f"record beat of no active entry: stream of image {base[j]}, global step {step[j]}, "
                            f"layer {layer[j]}, group {group[j]}")
        scatter_records(spikes, membranes, seen, ok, layer, img, local, group, records.spikes, records.membranes,
                        lanes)
    for l in range(n_layers):
        bad = first_bad_count(seen[l], active[None, :, l, None].astype(np.int64))
        if bad is not None:
            i, s, g = bad
            n = int(seen[l][bad])
            problems.append(f"{'missing' if n == 0 else f'{n} copies of the'} record beat at image {i} step "
                            f"{s + 1} layer {l + 1} group {g}")
            break

    # summary beats: one per active (image, local step, layer)
    seen_s = np.zeros((n_images, steps, n_layers), dtype=np.int64)
    if len(summaries.image):
        base, step, layer = summaries.image, summaries.step, summaries.layer
        img, local, ok = fs_locate(base, step, layer, bases, counts, phases, active)
        if not ok.all():
            j = int(np.argmin(ok))
            problems.append(f"summary beat of no active entry: stream of image {base[j]}, global step {step[j]}, "
                            f"layer {layer[j]}")
        np.add.at(seen_s, (img[ok], local[ok] - 1, layer[ok] - 1), 1)
        counters[img[ok], local[ok] - 1, layer[ok] - 1] = summaries.counters[ok]
    bad = first_bad_count(seen_s, active[None].astype(np.int64))
    if bad is not None:
        i, s, l = bad
        n = int(seen_s[bad])
        problems.append(f"{'missing' if n == 0 else f'{n} copies of the'} summary beat at image {i} step {s + 1} "
                        f"layer {l + 1}")
    return _finish(spikes, membranes, counters, problems, orders, sizes)
