"""Per-image digests of a run (docs/spec.md, "Per-image digest"): what the co-simulation harness folds on the RTL
side, computed from a :class:`golden.core.trace.Trace`. numpy only (no torch).

The harness (``cosim/hdl/harness.sv.tmpl``) sees every record beat (one group of P lanes of one layer at one step:
P spike bits and P signed M-bit membranes), every summary beat (the nine W-bit counters of one layer at one step)
and one done beat per image (its cycles, prediction and nine W-bit totals). It hashes each beat on its own:

* the beat's 64-bit words: a header ``kind << 56 | layer << 48 | step << 32 | group`` (kind ``0x52`` R,
  ``0x53`` S, ``0x44`` D; 0 where a beat has no layer/step/group), then its fields packed little-end first into
  64-bit words (R: the spike word, then the membranes, lane p at bits ``[p·M +: M]``, two's complement; S: the
  counters, counter k at bits ``[k·W +: W]``; D: ``image_cycles``, ``prediction``, then the totals packed as S);
  lanes that hold no neuron (padding: :func:`live_lanes`) count as spike 0, membrane 0;
* ``h = SEED``; for every word ``w``: ``h = rotl64(h ^ w, 27) · MULT`` (mod 2^64); then ``finish(h)``:
  ``h ^= h >> 31; h ·= FINISH_MULT; h ^= h >> 32``. Every step is a bijection of h, so a change in any one word
  always changes the beat's hash.

The image's digest is the sum (mod 2^64) of the hashes of all its beats: independent of the order in which the
engine emits them, and changed by any change of a single beat. An FS stream (one start that streams several images
through the layer pipeline) has one digest, :func:`fs_stream_digests`: its images' beats at their global steps
(only the active (step, layer) entries have beats) and the stream's one done beat.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from golden.core.counters import COUNTER_NAMES

SEED = 0x243F6A8885A308D3
MULT = 0x9E3779B97F4A7C15
FINISH_MULT = 0xBF58476D1CE4E5B9
ROTATE = 27
KIND_RECORD, KIND_SUMMARY, KIND_DONE = 0x52, 0x53, 0x44
N_COUNTERS = len(COUNTER_NAMES)

_U64 = np.uint64


def _mix(h: np.ndarray, w: np.ndarray) -> np.ndarray:
    x = h ^ w
    x = (x << _U64(ROTATE)) | (x >> _U64(64 - ROTATE))
    return x * _U64(MULT)


def _finish(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(31))
    h = h * _U64(FINISH_MULT)
    return h ^ (h >> _U64(32))


def beat_hashes(words: np.ndarray) -> np.ndarray:
    """``uint64 [...]``: the hash of each beat given as its 64-bit words ``uint64 [..., n_words]`` (header first)."""
    words = np.asarray(words, dtype=_U64)
    with np.errstate(over="ignore"):
        h = np.full(words.shape[:-1], SEED, dtype=_U64)
        for k in range(words.shape[-1]):
            h = _mix(h, words[..., k])
        return _finish(h)


def header(kind: int, layer, step, group) -> np.ndarray:
    """The header word(s) of beats (broadcast over the arrays given)."""
    return (_U64(kind) << _U64(56)) | (np.asarray(layer, dtype=_U64) << _U64(48)) \
        | (np.asarray(step, dtype=_U64) << _U64(32)) | np.asarray(group, dtype=_U64)


def pack_fields(values: np.ndarray, bits: int) -> np.ndarray:
    """``int64 [..., n]`` fields (two's complement, ``bits`` wide each, field k at bits ``[k·bits +: bits]``) →
    ``uint64 [..., ceil(n·bits / 64)]`` words, least significant word first."""
    values = np.asarray(values)
    n = values.shape[-1]
    out = np.zeros(values.shape[:-1] + (-(-n * bits // 64),), dtype=_U64)
    mask = _U64((1 << bits) - 1) if bits < 64 else _U64(0xFFFFFFFFFFFFFFFF)
    for k in range(n):
        v = values[..., k].astype(np.int64).view(_U64) & mask
        offset = k * bits
        word, shift = divmod(offset, 64)
        out[..., word] |= v << _U64(shift)
        if shift and shift + bits > 64:
            out[..., word + 1] |= v >> _U64(64 - shift)
    return out


def live_lanes(layer_sizes: Sequence[int], lanes: int, orders: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """Per layer l = 1..L, the neuron of every lane ``g·P + p`` of its record beats (−1: a padding lane):
    ``orders[l − 1]`` (``EngineConfig.hardware_order(l)``, conv/pool networks) or neurons ``0..n_l − 1`` then
    padding up to a whole group."""
    out = []
    for l in range(1, len(layer_sizes)):
        if orders is not None:
            out.append(np.asarray(orders[l - 1], dtype=np.int64))
            continue
        n = int(layer_sizes[l])
        groups = -(-n // lanes)
        order = np.arange(groups * lanes, dtype=np.int64)
        order[order >= n] = -1
        out.append(order)
    return out


def record_words(spikes: np.ndarray, membranes: np.ndarray, layer: int, order: np.ndarray, lanes: int,
                 membrane_bits: int, step_offset: np.ndarray | None = None) -> np.ndarray:
    """``uint64 [N, T, G, 2 + words]``: the words of layer ``layer``'s record beats (``spikes`` ``bool [N, T, n_l]``,
    ``membranes`` ``int64 [N, T, n_l]``, ``order`` its :func:`live_lanes` entry). The header's step of local step
    t of image i is ``t + step_offset[i]`` (default 0: an image's own steps; FS streams: its global steps)."""
    n_img, n_steps = spikes.shape[:2]
    groups = len(order) // lanes
    live = order >= 0
    index = np.maximum(order, 0)
    spk = np.where(live, spikes[..., index], False).reshape(n_img, n_steps, groups, lanes)
    mem = np.where(live, membranes[..., index], 0).reshape(n_img, n_steps, groups, lanes)
    step = _steps(n_img, n_steps, step_offset)[:, :, None]
    group = np.arange(groups)[None, None, :]
    head = np.broadcast_to(header(KIND_RECORD, layer, step, group), (n_img, n_steps, groups))
    return np.concatenate([head[..., None], pack_fields(spk, 1), pack_fields(mem, membrane_bits)], axis=-1)


def _steps(n_img: int, n_steps: int, step_offset: np.ndarray | None) -> np.ndarray:
    """``int64 [N, T]``: the header step of every (image, local step)."""
    step = np.broadcast_to(np.arange(1, n_steps + 1, dtype=np.int64)[None, :], (n_img, n_steps))
    if step_offset is None:
        return step
    return step + np.asarray(step_offset, dtype=np.int64)[:, None]


def done_hashes(cycles, predictions, totals: np.ndarray, counter_bits: int) -> np.ndarray:
    """``uint64 [n]``: the hashes of ``n`` done beats (``cycles`` and ``predictions`` ``[n]``, ``totals [n, 9]``)."""
    cycles = np.asarray(cycles, dtype=np.int64)
    words = np.concatenate([np.full((len(cycles), 1), header(KIND_DONE, 0, 0, 0), dtype=_U64),
                            cycles.view(_U64)[:, None],
                            np.asarray(predictions, dtype=np.int64).view(_U64)[:, None],
                            pack_fields(np.asarray(totals, dtype=np.int64), counter_bits)], axis=-1)
    return beat_hashes(words)


def step_beat_sums(trace, lanes: int, membrane_bits: int, counter_bits: int,
                   orders: Sequence[np.ndarray] | None = None, layer_sizes: Sequence[int] | None = None,
                   step_offset: np.ndarray | None = None, active: np.ndarray | None = None) -> np.ndarray:
    """``uint64 [N]``: per image of ``trace`` (membranes recorded) the sum of the hashes of its record and summary
    beats, all but its done beat. ``step_offset [N]`` as in :func:`record_words`; ``active`` (``bool [T, L]``,
    default all) marks the (local step, layer) entries that have beats (FS: ``cycle_model.fs_active``)."""
    if trace.membranes is None:
        raise ValueError("digests need a trace with membranes recorded")
    sizes = list(layer_sizes) if layer_sizes is not None else [0] + [s.shape[-1] for s in trace.spikes]
    n_img, n_steps, n_layers = trace.counters.shape[:3]
    if active is None:
        active = np.ones((n_steps, n_layers), dtype=bool)
    active = np.asarray(active, dtype=bool)
    if active.shape != (n_steps, n_layers):
        raise ValueError(f"active must be [T, L] = [{n_steps}, {n_layers}], got {active.shape}")
    zero = _U64(0)
    total = np.zeros(n_img, dtype=_U64)
    with np.errstate(over="ignore"):
        for l, order in enumerate(live_lanes(sizes, lanes, orders), start=1):
            words = record_words(trace.spikes[l - 1], trace.membranes[l - 1], l, order, lanes, membrane_bits,
                                 step_offset)
            hashes = np.where(active[None, :, l - 1, None], beat_hashes(words), zero)
            total += hashes.sum(axis=(1, 2), dtype=_U64)
        step = _steps(n_img, n_steps, step_offset)[:, :, None]
        layer = np.arange(1, n_layers + 1)[None, None, :]
        head = np.broadcast_to(header(KIND_SUMMARY, layer, step, 0), (n_img, n_steps, n_layers))
        words = np.concatenate([head[..., None], pack_fields(trace.counters, counter_bits)], axis=-1)
        total += np.where(active[None], beat_hashes(words), zero).sum(axis=(1, 2), dtype=_U64)
    return total


def image_digests(trace, lanes: int, membrane_bits: int, counter_bits: int,
                  orders: Sequence[np.ndarray] | None = None, layer_sizes: Sequence[int] | None = None) -> np.ndarray:
    """``uint64 [N]``: the digest of every image of ``trace`` (membranes recorded) as the harness of an engine with
    ``lanes`` P, ``membrane_bits`` M and ``counter_bits`` W computes it. ``orders`` as in :func:`live_lanes`;
    ``layer_sizes`` ``[n_0, ..., n_L]`` defaults to the trace's own (``n_0`` is not used)."""
    beats = step_beat_sums(trace, lanes, membrane_bits, counter_bits, orders, layer_sizes)
    done = done_hashes(trace.image_cycles, trace.predictions, trace.counters.sum(axis=(1, 2)), counter_bits)
    with np.errstate(over="ignore"):
        return beats + done


def fs_stream_digests(trace, bases, counts, phases: int, lanes: int, membrane_bits: int, counter_bits: int,
                      orders: Sequence[np.ndarray] | None = None,
                      layer_sizes: Sequence[int] | None = None) -> np.ndarray:
    """``uint64 [S]``: the digest of every FS stream (start) k, images ``bases[k] .. bases[k] + counts[k] − 1`` of
    ``trace`` (a golden FS trace ``[N, L·K, ...]``, membranes recorded; the streams cover its images in order), as
    the harness computes it (docs/spec.md, "Per-image digest", FS streams): the beats of the active (step, layer)
    entries of each image (``cycle_model.fs_active``), local step s of the stream's j-th image at global step
    ``s + 2K·j``, and one done beat per stream: its cycles (Σ of its images' per-entry cycles + one C_IMAGE, i.e.
    ``cycle_model.fs_stream_cycles(...).total_cycles``), the last image's prediction, the stream's totals."""
    from golden.core.counters import COUNTER_NAMES as names
    from golden.core.cycle_model import fs_active

    bases, counts = np.asarray(bases, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    n_img, n_steps, n_layers = trace.counters.shape[:3]
    if counts.size == 0 or (counts < 1).any() or bases[0] != 0 or (bases[1:] != np.cumsum(counts)[:-1]).any() \
            or int(counts.sum()) != n_img:
        raise ValueError(f"the streams (bases {bases.tolist()}, counts {counts.tolist()}) must cover the trace's "
                         f"{n_img} images in order")
    stream = np.repeat(np.arange(len(bases)), counts)
    position = np.arange(n_img, dtype=np.int64) - bases[stream]
    active = fs_active(n_layers, int(phases))
    beats = step_beat_sums(trace, lanes, membrane_bits, counter_bits, orders, layer_sizes,
                           step_offset=2 * int(phases) * position, active=active)
    per_image = trace.counters.sum(axis=(1, 2))  # [N, 9]
    cycles = per_image[:, names.index("cycles")]
    c_image = np.asarray(trace.image_cycles, dtype=np.int64)[bases] - cycles[bases]  # each image's own C_IMAGE
    last = bases + counts - 1
    totals = np.add.reduceat(per_image, bases, axis=0)
    done = done_hashes(np.add.reduceat(cycles, bases) + c_image, np.asarray(trace.predictions)[last], totals,
                       counter_bits)
    out = np.zeros(len(bases), dtype=_U64)
    with np.errstate(over="ignore"):
        np.add.at(out, stream, beats)
        return out + done
