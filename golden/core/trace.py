"""Traces: what one run (golden or RTL) did, image by image, step by step, layer by layer (SPEC §6).

A :class:`Trace` is saved as one ``.npz`` (no pickles) so a user can compare a golden and an RTL run again later
without re-running either (``snncosim compare GOLDEN RTL``). :func:`compare` checks SPEC §6 equivalence and
reports the first difference in (image, step, layer, neuron) order — after checking that both traces were made
from the same input spikes and the same network (``meta["input_sha256"]``, ``meta["network_sha256"]``), when
both know them: traces of different inputs or networks are not compared (their differences are no RTL bug).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError
from golden.core.files import make_public, temporary_sibling

TRACE_VERSION = 1
INPUT_DIGEST_KEY = "input_sha256"  # meta: SHA-256 of the input spikes (input_spikes_digest)
NETWORK_DIGEST_KEY = "network_sha256"  # meta: the network's IntegerNetwork.digest(), set by whoever knows it
_INPUT_DIGEST_TAG = b"snncosim-input-spikes-sha256-v1\0"


def input_spikes_digest(input_spikes) -> str:
    """SHA-256 (hex) of input spikes ``bool [N, T, n_0]``: their shape, then one byte (0 or 1) per entry in C
    order. Any array is taken as ``bool`` first, as :meth:`Trace.save` stores it."""
    spikes = np.asarray(input_spikes)
    digest = hashlib.sha256(_INPUT_DIGEST_TAG)
    digest.update(json.dumps([int(n) for n in spikes.shape]).encode() + b"\0")
    if spikes.ndim == 0 or spikes.shape[0] == 0:
        digest.update(np.ascontiguousarray(spikes, dtype=bool).tobytes())
        return digest.hexdigest()
    per_image = max(1, int(np.prod(spikes.shape[1:])))
    chunk = max(1, (1 << 24) // per_image)  # about 16 MB at a time
    for start in range(0, spikes.shape[0], chunk):
        digest.update(np.ascontiguousarray(spikes[start:start + chunk], dtype=bool).tobytes())
    return digest.hexdigest()


@dataclass
class Trace:
    """Per-layer spikes ``bool [N, T, n_l]``, optional membranes ``int64 [N, T, n_l]`` (end of step; ``float64``
    in a trace of the float model, ``meta["source"] = "float"``), counters
    ``int64 [N, T, L, len(COUNTER_NAMES)]``, total cycles per image ``int64 [N]`` and predictions ``int64 [N]``.
    ``input_spikes`` (``bool [N, T, n_0]``) is kept when known so a run can be replayed.

    ``meta["input_sha256"]`` is the SHA-256 of the input spikes (:func:`input_spikes_digest`): :meth:`save`
    writes it whenever ``input_spikes`` are there, :meth:`load` checks it against them, :meth:`select` recomputes
    it; a trace without input spikes (direct input) keeps one a caller set. ``meta["network_sha256"]`` is the
    network's :meth:`golden.core.network.IntegerNetwork.digest` where the maker of the trace knows it. :func:`compare`
    refuses traces whose inputs or networks differ."""

    spikes: list[np.ndarray]
    counters: np.ndarray
    image_cycles: np.ndarray
    predictions: np.ndarray
    membranes: list[np.ndarray] | None = None
    input_spikes: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return int(self.counters.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.counters.shape[1])

    @property
    def n_layers(self) -> int:
        return len(self.spikes)

    def counter(self, name: str) -> np.ndarray:
        """``int64 [N, T, L]`` values of one counter."""
        return self.counters[..., COUNTER_NAMES.index(name)]

    def totals(self) -> dict[str, int]:
        """Every counter summed over images, steps and layers."""
        return {name: int(self.counters[..., k].sum()) for k, name in enumerate(COUNTER_NAMES)}

    def input_digest(self) -> str | None:
        """SHA-256 of the input spikes: computed from ``input_spikes`` when present, else ``meta["input_sha256"]``
        (set by a caller, or read from a file), else None (unknown)."""
        if self.input_spikes is not None:
            return input_spikes_digest(self.input_spikes)
        value = self.meta.get(INPUT_DIGEST_KEY)
        return str(value) if value else None

    def network_digest(self) -> str | None:
        """``meta["network_sha256"]``: the digest of the network the trace was made with, or None (unknown)."""
        value = self.meta.get(NETWORK_DIGEST_KEY)
        return str(value) if value else None

    def select(self, images) -> "Trace":
        """The sub-trace of the given image indices. Its ``meta["input_sha256"]`` is that of the selected input
        spikes; without input spikes it is dropped (the whole run's digest says nothing about a part of it),
        unless the selection is every image in order."""
        idx = np.asarray(images)
        input_spikes = None if self.input_spikes is None else self.input_spikes[idx]
        meta = dict(self.meta)
        if input_spikes is not None:
            meta[INPUT_DIGEST_KEY] = input_spikes_digest(input_spikes)
        elif INPUT_DIGEST_KEY in meta:
            everything = np.arange(self.n_images)
            chosen = everything[idx].reshape(-1)
            if chosen.shape != everything.shape or (chosen != everything).any():
                del meta[INPUT_DIGEST_KEY]
        return Trace(
            spikes=[s[idx] for s in self.spikes],
            counters=self.counters[idx],
            image_cycles=self.image_cycles[idx],
            predictions=self.predictions[idx],
            membranes=None if self.membranes is None else [m[idx] for m in self.membranes],
            input_spikes=input_spikes,
            meta=meta,
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        input_digest = self.input_digest()
        if input_digest is not None:
            meta[INPUT_DIGEST_KEY] = input_digest
        arrays = {
            "counters": np.asarray(self.counters, dtype=np.int64),
            "image_cycles": np.asarray(self.image_cycles, dtype=np.int64),
            "predictions": np.asarray(self.predictions, dtype=np.int64),
            "meta": np.array(json.dumps({"version": TRACE_VERSION, "counter_names": COUNTER_NAMES, **meta})),
        }
        for layer, spikes in enumerate(self.spikes, start=1):
            arrays[f"spikes_L{layer}"] = np.packbits(np.asarray(spikes, dtype=bool), axis=-1)
            arrays[f"n_L{layer}"] = np.array(spikes.shape[-1])
        if self.membranes is not None:
            for layer, membrane in enumerate(self.membranes, start=1):
                floating = np.issubdtype(np.asarray(membrane).dtype, np.floating)  # the float model's
                arrays[f"membrane_L{layer}"] = np.asarray(membrane, dtype=np.float64 if floating else np.int64)
        if self.input_spikes is not None:
            arrays["input_spikes"] = np.packbits(np.asarray(self.input_spikes, dtype=bool), axis=-1)
            arrays["n_L0"] = np.array(self.input_spikes.shape[-1])
        tmp = temporary_sibling(path, ".npz")
        try:
            np.savez_compressed(tmp, **arrays)
            make_public(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Trace":
        path = Path(path)
        if not path.is_file():
            raise SnnCosimError(f"{path}: no such trace file")
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                if meta.pop("version", None) != TRACE_VERSION:
                    raise SnnCosimError(f"{path}: unsupported trace version")
                if tuple(meta.pop("counter_names", ())) != COUNTER_NAMES:
                    raise SnnCosimError(f"{path}: trace has different counters than this snncosim")
                n_layers = sum(1 for key in npz.files if key.startswith("spikes_L"))
                unpack = lambda key, n: np.unpackbits(npz[key], axis=-1, count=int(n)).astype(bool)  # noqa: E731
                spikes = [unpack(f"spikes_L{l}", npz[f"n_L{l}"]) for l in range(1, n_layers + 1)]
                membranes = None
                if "membrane_L1" in npz.files:
                    membranes = [npz[f"membrane_L{l}"] for l in range(1, n_layers + 1)]
                input_spikes = unpack("input_spikes", npz["n_L0"]) if "input_spikes" in npz.files else None
                trace = cls(spikes=spikes, counters=npz["counters"], image_cycles=npz["image_cycles"],
                            predictions=npz["predictions"], membranes=membranes, input_spikes=input_spikes,
                            meta=meta)
        except SnnCosimError:
            raise
        except Exception as exc:  # zip/npz/json damage of any kind
            raise SnnCosimError(f"{path}: not a readable snncosim trace ({exc.__class__.__name__}: {exc})") from None
        recorded = meta.get(INPUT_DIGEST_KEY)
        if input_spikes is not None and recorded is not None and recorded != trace.input_digest():
            raise SnnCosimError(f"{path}: the input spikes do not match their recorded SHA-256 (input_sha256): the "
                                f"file was edited or is damaged")
        return trace


@dataclass(frozen=True)
class Difference:
    """The first place where two traces disagree. ``step`` and ``layer`` are 1-based, ``neuron`` 0-based
    (``None`` for per-layer quantities such as counters); ``image`` is the index in the run."""

    image: int
    step: int | None
    layer: int | None
    neuron: int | None
    quantity: str
    golden: int
    rtl: int

    def __str__(self) -> str:
        where = [f"image {self.image}"]
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.layer is not None:
            where.append(f"layer {self.layer}")
        if self.neuron is not None:
            where.append(f"neuron {self.neuron}")
        return f"{', '.join(where)}: {self.quantity} golden={self.golden} rtl={self.rtl}"


@dataclass(frozen=True)
class Comparison:
    equivalent: bool
    first_difference: Difference | None
    checked: tuple[str, ...]
    n_images: int
    n_steps: int
    n_layers: int

    def summary(self) -> str:
        scope = f"{self.n_images} images x {self.n_steps} steps x {self.n_layers} layers"
        if self.equivalent:
            return f"EQUIVALENT ({scope}; checked {', '.join(self.checked)})"
        return f"MISMATCH at {self.first_difference} ({scope})"


def compare(golden: Trace, rtl: Trace) -> Comparison:
    """SPEC §6: spikes, membranes (when both traced), every counter, cycles per image and predictions.

    The first difference is the earliest (image, step, layer) at which anything differs; within that
    (image, step, layer) spikes come before membranes before counters, and the lowest neuron index first.

    First of all, traces made from different networks or different input spikes (where both traces know them:
    ``meta["network_sha256"]``, the input spikes or ``meta["input_sha256"]``) raise :class:`SnnCosimError`: their
    differences would say nothing about the RTL."""
    check_same_origin(golden, rtl)
    if golden.n_layers != rtl.n_layers or golden.counters.shape != rtl.counters.shape:
        raise SnnCosimError(
            f"traces have different shapes: golden {golden.n_images} images x {golden.n_steps} steps x "
            f"{golden.n_layers} layers, rtl {rtl.n_images} x {rtl.n_steps} x {rtl.n_layers}")
    checked = ["spikes"]
    with_membranes = golden.membranes is not None and rtl.membranes is not None
    if with_membranes:
        checked.append("membranes")
    checked += ["counters", "image_cycles", "predictions"]
    n, t, n_layers = golden.n_images, golden.n_steps, golden.n_layers
    # earliest (image, step, layer) with any difference, as a flat index over that grid
    bad = np.zeros((n, t, n_layers), dtype=bool)
    for l in range(n_layers):
        bad[:, :, l] |= (golden.spikes[l] != rtl.spikes[l]).any(axis=-1)
        if with_membranes:
            bad[:, :, l] |= (golden.membranes[l] != rtl.membranes[l]).any(axis=-1)
    bad |= (golden.counters != rtl.counters).any(axis=-1)
    first: Difference | None = None
    if bad.any():
        i, s, l = np.unravel_index(int(np.argmax(bad.reshape(-1))), bad.shape)
        i, s, l = int(i), int(s), int(l)
        g_spk, r_spk = golden.spikes[l][i, s], rtl.spikes[l][i, s]
        if (g_spk != r_spk).any():
            j = int(np.argmax(g_spk != r_spk))
            first = Difference(i, s + 1, l + 1, j, "spike", int(g_spk[j]), int(r_spk[j]))
        elif with_membranes and (golden.membranes[l][i, s] != rtl.membranes[l][i, s]).any():
            g_m, r_m = golden.membranes[l][i, s], rtl.membranes[l][i, s]
            j = int(np.argmax(g_m != r_m))
            first = Difference(i, s + 1, l + 1, j, "membrane", int(g_m[j]), int(r_m[j]))
        else:
            k = int(np.argmax(golden.counters[i, s, l] != rtl.counters[i, s, l]))
            first = Difference(i, s + 1, l + 1, None, f"counter {COUNTER_NAMES[k]}",
                               int(golden.counters[i, s, l, k]), int(rtl.counters[i, s, l, k]))
    else:
        for name in ("image_cycles", "predictions"):
            g_arr, r_arr = getattr(golden, name), getattr(rtl, name)
            if (g_arr != r_arr).any():
                i = int(np.argmax(g_arr != r_arr))
                first = Difference(i, None, None, None, name.rstrip("s").replace("_", " "),
                                   int(g_arr[i]), int(r_arr[i]))
                break
    return Comparison(first is None, first, tuple(checked), n, t, n_layers)


def check_same_origin(golden: Trace, rtl: Trace) -> None:
    """Raise :class:`SnnCosimError` (one line) when the two traces were made with different networks or from
    different input spikes, as far as both know them; names the first differing (image, step, input) when both
    hold their input spikes."""
    g_net, r_net = golden.network_digest(), rtl.network_digest()
    if g_net is not None and r_net is not None and g_net != r_net:
        raise SnnCosimError(f"the traces were made with different networks (network_sha256 golden {g_net[:16]}, "
                            f"rtl {r_net[:16]}) and cannot be compared")
    if golden.input_spikes is not None and rtl.input_spikes is not None:
        g_in, r_in = np.asarray(golden.input_spikes, dtype=bool), np.asarray(rtl.input_spikes, dtype=bool)
        if g_in.shape != r_in.shape:
            raise SnnCosimError(f"the traces were made from different input spikes (golden {_shape(g_in)}, rtl "
                                f"{_shape(r_in)} images x steps x inputs) and cannot be compared")
        differs = g_in != r_in
        if differs.any():
            at = tuple(int(v) for v in np.unravel_index(int(np.argmax(differs.reshape(-1))), differs.shape))
            where = f"image {at[0]}, step {at[1] + 1}, input {at[2]}" if len(at) == 3 else f"index {at}"
            raise SnnCosimError(f"the traces were made from different input spikes (first difference: {where}: "
                                f"golden {int(g_in[at])} rtl {int(r_in[at])}) and cannot be compared")
        return
    g_in, r_in = golden.input_digest(), rtl.input_digest()
    if g_in is not None and r_in is not None and g_in != r_in:
        raise SnnCosimError(f"the traces were made from different input spikes (input_sha256 golden {g_in[:16]}, "
                            f"rtl {r_in[:16]}) and cannot be compared")


def _shape(array: np.ndarray) -> str:
    return " x ".join(str(n) for n in array.shape)
