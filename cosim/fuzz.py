"""Coverage-directed random co-simulation (issue 11): random integer networks and inputs for a few fixed engine
shapes, and coverage bins measured on what a run actually did.

* :data:`SHAPES` — the engine shapes (one Verilator build each). Everything a build fixes (layer sizes, lanes P,
  membrane width, conv/pool geometry, residual skips, lateral-inhibition hardware) is fixed per shape; everything
  loaded at run time varies per network: neuron kind, reset, leak, floors, WTA strengths, coding (rate, weighted
  spikes with K phases and S skipped periods, FS with random tables), weights, biases, thresholds, inputs.
* :func:`generate` — one seeded random :class:`Case` (network + time-major input spikes) of a shape; the
  optional ``family`` ("rate", "weighted", "fs") steers it.
* :func:`measure` — the coverage bins one run hit, from the network and its trace (golden or RTL: for an
  equivalent run they are the same), never from what the generator intended; :data:`BINS` describes each bin.
* :func:`directed_cases` — draw seeded candidates cheaply on the golden model and keep those that hit a bin no
  kept candidate hit yet, until every bin is hit (what ``cosim/tests/test_coverage_random.py`` co-simulates);
  ``scripts/fuzz_cosim.py`` runs every candidate on the RTL instead, for as long as it is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import zlib
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from golden.core.errors import WidthError
from golden.core.network import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, SkipConnection,
                                 layer_inhibition, signed_range)

__all__ = ["BINS", "SHAPES", "Shape", "Case", "generate", "measure", "directed_cases", "format_table",
           "engine_config", "golden_run", "golden_run_for", "single_thread",
           "CI_SHAPES"]

# --------------------------------------------------------------------------------------------------- bins
# name -> how it is measured (docs/cosim.md, "Coverage-directed random co-simulation"). Hits are counted per
# (image, step, layer) entry or per neuron event as stated; lo/hi are the membrane's saturation bounds.
BINS: dict[str, str] = {
    "fs-fire-midrange": "FS FIRE step: a spike from a membrane (value before the step) in [lo/2, hi/2] (not saturated)",
    "fs-fire-clip": "FS FIRE step whose v − h·z write saturated (saturation counter > 0 in a fire step)",
    "fs-k1": "FS network with K = 1 whose hidden layers spiked",
    "ws-k1": "weighted-spike network with K = 1 whose ws layers spiked",
    "ws-spike": "weighted-spike network with K > 1 whose ws layers spiked",
    "ws-skip-periods": "S > 0: input events (ACs) into the gated 'acc' output layer at a step t <= S·K",
    "layer-n-eq-P": "events into a layer whose lane width (dense n, conv/pool c_out) is exactly P (one group)",
    "layer-P-not-dividing": "events into a layer whose lane width is not a multiple of P (padding lanes)",
    "sat-hi": "(step, layer) with saturations > 0 and a membrane at the upper bound hi",
    "sat-lo": "(step, layer) with saturations > 0 and a membrane at the lower bound lo",
    "inhibit-clip-lo": "lateral inhibition: a neuron with u·m > 0 (inhibited) ends the step at lo (no floor)",
    "inhibit-floor": "lateral inhibition: a neuron with u·m > 0 ends the step at its floor (fixed or −θ) above lo",
    "floor-hit": "IF/LIF neuron with a floor (fixed or −θ, above lo) ends a step at the floor",
    "acc-raw-add-add": "G_l = 1: two spikes in one source word in a step, back-to-back adds to ACC[0] (RAW)",
    "acc-raw-add-update": "G_l = 1: a spike in the last source word, its add followed by UPDATE's read of ACC[0]",
    "conv": "events into a conv2d layer",
    "pool": "events into an avgpool2d layer",
    "residual-skip": "a junction's skip source spiked at the step (the skip pass adds)",
    "lif-leak-pos": "LIF neuron whose previous membrane v > 0 leaks (v >>> leak_shift != 0)",
    "lif-leak-neg": "LIF neuron whose previous membrane v < 0 leaks (arithmetic shift of a negative value)",
    "reset-zero": "IF/LIF spike with reset 'zero'",
    "reset-subtract": "IF/LIF spike with reset 'subtract' that leaves v − θ ≠ 0 (not inhibited at that step)",
}


# --------------------------------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Shape:
    """One engine build: the fixed structure of every network generated for it.

    ``layers``: ``("dense", n)``, ``("conv", c_out, kernel, stride, padding)`` or ``("pool", kernel, stride)``;
    ``skips``: ``(target, source, stride)`` (a 1×1 conv skip of that stride into a conv junction, a dense skip
    into a dense one); ``inhibit``: 1-based dense layers with lateral-inhibition hardware; ``families``: the
    codings generated ("rate", "weighted", "fs"); ``max_phases``: K ≤ this (weighted / FS)."""

    name: str
    lanes: int
    input_shape: tuple
    layers: tuple
    membrane_bits: int
    weight_bits: int
    families: tuple
    max_phases: int = 4
    skips: tuple = ()
    inhibit: tuple = ()
    fs_shift_bits: int = 0


SHAPES: dict[str, Shape] = {shape.name: shape for shape in (
    # dense, FS + weighted-spike hardware: layer 1 is exactly one lane group (n = P = 4, G = 1: the ACC RAW
    # cases), layers 2 and 3 leave padding lanes (7 and 3 neurons), 12-bit membranes (saturation at both bounds)
    Shape("dense-fs", lanes=4, input_shape=(10,), layers=(("dense", 4), ("dense", 7), ("dense", 3)),
          membrane_bits=12, weight_bits=6, families=("rate", "weighted", "fs"), max_phases=4, fs_shift_bits=2),
    # conv (stride, padding) → conv junction with a 1×1 stride-2 skip → pool → dense junction (dense skip from a
    # conv layer) with WTA → dense output with WTA; conv1 has c_out = P, the others padding lanes; 11-bit
    # membranes; weighted-spike hardware too (FS builds cannot have skips or inhibition)
    Shape("conv-res-wta", lanes=4, input_shape=(2, 5, 5),
          layers=(("conv", 4, (3, 3), (1, 1), (1, 1)), ("conv", 3, (3, 3), (2, 2), (1, 1)),
                  ("conv", 3, (3, 3), (1, 1), (1, 1)), ("pool", (2, 2), (1, 1)), ("dense", 6), ("dense", 5)),
          skips=((3, 1, (2, 2)), (5, 3, None)), inhibit=(5, 6),
          membrane_bits=11, weight_bits=5, families=("rate", "weighted"), max_phases=4),
    # scripts/fuzz_cosim.py only: odd P = 3, dense layers with WTA after dense layers (layer 2 is one group,
    # n = P), K up to 8, 10-bit membranes
    Shape("dense-wta-p3", lanes=3, input_shape=(13,), layers=(("dense", 8), ("dense", 3), ("dense", 5)),
          inhibit=(1, 3), membrane_bits=10, weight_bits=7, families=("rate", "weighted"), max_phases=8),
)}
CI_SHAPES = ("dense-fs", "conv-res-wta")  # the two builds of cosim/tests/test_coverage_random.py


@dataclass
class Case:
    """One generated network and its time-major input spikes ``bool [T, N, n_0]`` (what the backends take)."""

    shape: str
    seed: int
    family: str
    net: IntegerNetwork
    spikes: np.ndarray
    description: str

    @property
    def lanes(self) -> int:
        return SHAPES[self.shape].lanes


# --------------------------------------------------------------------------------------------------- building
def _weights(rng, size, w_max: int, mood: str) -> np.ndarray:
    """Random signed integers in [−w_max, w_max]: balanced, mostly negative or mostly positive."""
    scale = max(1.0, rng.uniform(0.25, 1.0) * w_max)
    mean = {"negative": -0.6, "balanced": 0.0, "positive": 0.6}[mood] * scale
    return np.clip(np.rint(rng.normal(mean, 0.7 * scale, size)), -w_max, w_max).astype(np.int64)


def _mood(rng) -> str:
    return str(rng.choice(["negative", "balanced", "positive", "positive"]))


def _rate_neuron(rng, lo: int) -> NeuronParams:
    kind = str(rng.choice(["if", "lif"]))
    reset = str(rng.choice(["zero", "subtract"]))
    floor_kind = str(rng.choice(["none", "none", "fixed", "theta"]))
    extra = {}
    if floor_kind == "fixed":
        extra["floor"] = int(rng.choice([lo, int(rng.integers(lo, 0))]))
    elif floor_kind == "theta":
        extra["floor_threshold"] = True
    leak = int(rng.integers(1, 5)) if kind == "lif" else 0
    return NeuronParams(kind, reset, leak_shift=leak, **extra)


def _fs_neuron(rng, K: int, hi: int, lo: int, fs_shift_bits: int) -> NeuronParams:
    """ReLU tables (θ·2^(K−t)), or random signed tables (any T, h; d = ±2^k) that can clip in FIRE."""
    from golden.conversion.fs_tables import relu_integer_table

    k_max = (1 << fs_shift_bits) - 1
    if rng.random() < 0.5:
        theta = int(rng.integers(1, max(2, (hi >> (K - 1)) // 4)))
        table = relu_integer_table(K, theta)
        return NeuronParams("fs", fs_threshold=table.threshold, fs_reset=table.reset, fs_weight=table.weight)
    span = int(hi * rng.uniform(0.05, 1.0))
    T = [int(v) for v in rng.integers(-span, span + 1, K)]
    h = [int(v) for v in rng.integers(-span, span + 1, K)]
    d = [int(rng.choice([-1, 1, 1])) << int(rng.integers(0, k_max + 1)) for _ in range(K)]
    return NeuronParams("fs", fs_threshold=tuple(max(lo, min(hi, v)) for v in T),
                        fs_reset=tuple(max(lo, min(hi, v)) for v in h), fs_weight=tuple(d))


def _structure(shape: Shape):
    """Per layer ``(kind, in_shape, out_shape, spec)`` of ``shape``."""
    out, cur = [], tuple(shape.input_shape)
    for spec in shape.layers:
        if spec[0] == "dense":
            nxt = (spec[1],)
        elif spec[0] == "conv":
            c_out, k, s, p = spec[1:]
            nxt = (c_out,) + tuple((d + 2 * pp - kk) // ss + 1 for d, pp, kk, ss in zip(cur[1:], p, k, s))
        else:
            k, s = spec[1:]
            nxt = (cur[0],) + tuple((d - kk) // ss + 1 for d, kk, ss in zip(cur[1:], k, s))
        out.append((spec[0], cur, nxt, spec))
        cur = nxt
    return out


def _build(shape: Shape, rng, family: str, K: int) -> IntegerNetwork:
    M = shape.membrane_bits
    lo, hi = signed_range(M)
    w_max = (1 << (shape.weight_bits - 1)) - 1
    structure = _structure(shape)
    n_layers = len(structure)
    skip_of = {t: (s, stride) for t, s, stride in shape.skips}
    shift = K - 1 if family == "weighted" else 0
    budget = hi >> shift  # weighted spikes: θ and one step's |I + b| must fit after << (K−1)

    def fan_count(index, spec, in_shape):
        if spec[0] == "dense":
            n = int(np.prod(in_shape))
        elif spec[0] == "conv":
            n = in_shape[0] * spec[2][0] * spec[2][1]
        else:
            return 0
        if index in skip_of:  # the junction's skip synapses add to one step's input
            src_shape = structure[skip_of[index][0] - 1][2]
            n += src_shape[0] if spec[0] == "conv" else int(np.prod(src_shape))
        return n

    layers, skips = [], []
    for index, (kind, in_shape, _, spec) in enumerate(structure, start=1):
        last = index == n_layers
        n_ch = spec[1] if kind in ("dense", "conv") else in_shape[0]
        mood = _mood(rng)
        count = max(1, fan_count(index, spec, in_shape))
        lw = w_max if family != "weighted" else max(1, min(w_max, budget // (2 * count)))
        if family == "fs":
            neuron = NeuronParams("acc") if last else _fs_neuron(rng, K, hi, lo, shape.fs_shift_bits)
        elif family == "weighted":
            neuron = NeuronParams("acc") if last and rng.random() < 0.75 else NeuronParams("ws", "subtract")
        else:
            neuron = _rate_neuron(rng, lo)
        theta_hi = max(2, min(hi, budget) // int(rng.choice([1, 4, 16])))
        threshold = rng.integers(1, theta_hi, n_ch).astype(np.int64)
        b_max = max(1, min(budget // 8, int(lw * rng.uniform(0.5, 3))))
        bias = rng.integers(-b_max, b_max + 1, n_ch).astype(np.int64)
        if kind == "dense":
            n_in = int(np.prod(in_shape))
            inhibition = None
            if index in shape.inhibit and family == "rate" and rng.random() < 0.7:
                if rng.random() < 0.5:
                    inhibition = np.rint(rng.uniform(0.2, 1.0) * threshold).astype(np.int64)
                else:
                    inhibition = rng.integers(hi // 8, hi // 2, n_ch).astype(np.int64)
            layers.append(DenseLayer(_weights(rng, (spec[1], n_in), lw, mood), bias, threshold, neuron,
                                     name=f"fc{index}", inhibition=inhibition))
        elif kind == "conv":
            c_out, k, s, p = spec[1:]
            layers.append(Conv2dLayer(_weights(rng, (c_out, in_shape[0]) + tuple(k), lw, mood), bias, threshold,
                                      tuple(in_shape), tuple(s), tuple(p), neuron, name=f"conv{index}"))
        else:
            k, s = spec[1:]
            pool_w = int(rng.integers(1, max(2, min(w_max, budget // (k[0] * k[1] * 2)) + 1)))
            layers.append(AvgPool2dLayer(pool_w, threshold, tuple(in_shape), tuple(k), tuple(s), neuron,
                                         name=f"pool{index}"))
        if index in skip_of:
            source, stride = skip_of[index]
            src_shape = structure[source - 1][2]
            if kind == "conv":
                weight = _weights(rng, (spec[1], src_shape[0], 1, 1), lw, _mood(rng))
                skips.append(SkipConnection(index, source, weight, tuple(stride), (0, 0)))
            else:
                weight = _weights(rng, (spec[1], int(np.prod(src_shape))), lw, _mood(rng))
                skips.append(SkipConnection(index, source, weight))
    coding = {}
    if family == "weighted":
        coding = dict(input_coding="weighted", input_bits=K, phases=K, skip_periods=int(rng.choice([0, 1, 1, 2])))
    elif family == "fs":
        coding = dict(input_coding="fs", input_bits=K, phases=K)
    net = IntegerNetwork(tuple(shape.input_shape), layers, weight_bits=shape.weight_bits, membrane_bits=M,
                         skips=skips, **coding)
    for _ in range(12):  # weighted spikes: halve the weights until the IR's phase-1 headroom check passes
        try:
            return net.validate()
        except WidthError:
            if family != "weighted":
                raise
            net = _halved(net)
    return net.validate()


def _halved(net: IntegerNetwork) -> IntegerNetwork:
    def half(a):
        return (np.asarray(a, dtype=np.int64) / 2).astype(np.int64)  # toward zero

    layers = []
    for layer in net.layers:
        if layer.kind == "avgpool2d":
            layers.append(replace(layer, weight=max(1, int(layer.weight) // 2),
                                  threshold=np.maximum(1, half(layer.threshold))))
        else:
            layers.append(replace(layer, weight=half(layer.weight), bias=half(layer.bias),
                                  threshold=np.maximum(1, half(layer.threshold))))
    skips = [replace(s, weight=half(s.weight)) for s in net.skips]
    return dataclasses.replace(net, layers=layers, skips=skips)


def _inputs(shape: Shape, rng, net: IntegerNetwork, family: str) -> np.ndarray:
    """Time-major spikes ``[T, N, n_0]``: rate (random per-input rates), weighted (K-bit codes, 2–5 periods after S
    skipped ones) or FS (K-bit codes, L·K steps)."""
    import torch

    from golden.simulation.encoding import fs_encode, weighted_encode

    n_images = int(rng.integers(2, 4))
    n = net.n_inputs
    if family == "rate":
        steps = int(rng.integers(6, 15))
        lo_rate = rng.uniform(0.0, 0.3)
        p = rng.uniform(lo_rate, rng.uniform(lo_rate + 0.05, 1.0), size=(n_images, 1, n))
        return (rng.random((n_images, steps, n)) < p).transpose(1, 0, 2)  # drawn image-major, as always
    K = net.phases
    codes = rng.integers(0, 1 << K, (n_images, n))
    codes[rng.random((n_images, n)) < rng.uniform(0, 0.6)] = 0  # some silent inputs
    if family == "weighted":
        steps = (net.skip_periods + int(rng.integers(2, 6))) * K
        return weighted_encode(torch.as_tensor(codes), steps, K).numpy()
    return fs_encode(torch.as_tensor(codes), K, steps=net.fs_latency).numpy()


def generate(shape: Shape | str, seed: int, family: str | None = None) -> Case:
    """The random case ``seed`` of ``shape`` (deterministic: the same shape, seed and family give the same
    network and spikes)."""
    shape = SHAPES[shape] if isinstance(shape, str) else shape
    rng = np.random.default_rng([zlib.crc32(shape.name.encode()), int(seed), zlib.crc32(str(family).encode())])
    family = family or str(rng.choice(shape.families))
    if family not in shape.families:
        raise ValueError(f"shape {shape.name} does not generate {family!r} networks")
    K = int(rng.integers(1, shape.max_phases + 1)) if family != "rate" else 0
    net = _build(shape, rng, family, K)
    spikes = _inputs(shape, rng, net, family)
    kinds = "/".join(sorted({layer.neuron.kind for layer in net.layers}))
    extra = f" K={K}" + (f" S={net.skip_periods}" if family == "weighted" else "") if K else ""
    wta = sum(layer_inhibition(layer) is not None for layer in net.layers)
    desc = (f"{shape.name} seed {seed}: {family} {kinds}{extra}{f' wta×{wta}' if wta else ''}, "
            f"{spikes.shape[1]} images × {spikes.shape[0]} steps")
    return Case(shape.name, int(seed), family, net, spikes, desc)


def engine_config(shape: Shape | str):
    """The one :class:`hw.config.EngineConfig` of ``shape``: widths generous enough for every generated network."""
    from hw.config import EngineConfig

    shape = SHAPES[shape] if isinstance(shape, str) else shape
    template = generate(shape, 0, "rate").net
    if shape.inhibit:  # the inhibition hardware, whatever the template drew
        layers = [replace(layer, inhibition=np.ones(layer.n_out, dtype=np.int64)) if i in shape.inhibit else layer
                  for i, layer in enumerate(template.layers, start=1)]
        template = dataclasses.replace(template, layers=layers).validate()
    M = shape.membrane_bits
    overrides = dict(acc_bits=M + 6, bias_bits=M, threshold_bits=M - 1, phase_bits=max(1, (shape.max_phases - 1)
                                                                                         .bit_length()))
    if shape.fs_shift_bits:
        overrides["fs_shift_bits"] = shape.fs_shift_bits
    return EngineConfig.for_network(template, lanes=shape.lanes, **overrides)


# --------------------------------------------------------------------------------------------------- measuring
def _lane_width(layer) -> int:
    return layer.n_out if layer.kind == "dense" else layer.out_shape[0]


def measure(net: IntegerNetwork, trace, lanes: int) -> Counter:
    """Hits per bin of :data:`BINS` in one run: ``trace`` (golden or RTL) of ``net`` with ``lanes`` lanes."""
    from golden.core.counters import COUNTER_NAMES

    hits: Counter = Counter()
    lo, hi = signed_range(net.membrane_bits)
    P = int(lanes)
    counters = np.asarray(trace.counters)
    sat = counters[..., COUNTER_NAMES.index("saturations")]
    reads = counters[..., COUNTER_NAMES.index("weight_reads")]
    acs = counters[..., COUNTER_NAMES.index("acs")]
    spikes = [np.asarray(s, dtype=bool) for s in trace.spikes]
    mem = [np.asarray(m, dtype=np.int64) for m in trace.membranes]
    inputs = np.asarray(trace.input_spikes, dtype=bool)
    N, T = inputs.shape[0], inputs.shape[1]
    K = int(net.phases or 0)
    fs = net.is_fs

    def add(name, value):
        value = int(value)
        if value:
            hits[name] += value

    def previous(m):  # membrane before each step (0 at the first step of an image)
        return np.concatenate([np.zeros_like(m[:, :1]), m[:, :-1]], axis=1)

    for i, layer in enumerate(net.layers):  # i: 0-based layer index
        neuron = layer.neuron
        per_neuron = (lambda a: np.repeat(np.asarray(a), int(np.prod(layer.out_shape[1:])))
                      if layer.kind != "dense" else np.asarray(a))
        events = reads[:, :, i] > 0
        width = _lane_width(layer)
        if width == P:
            add("layer-n-eq-P", events.sum())
        if width % P:
            add("layer-P-not-dividing", events.sum())
        if layer.kind == "conv2d":
            add("conv", events.sum())
        if layer.kind == "avgpool2d":
            add("pool", events.sum())
        v, s = mem[i], spikes[i]
        at_hi = (v == hi).any(axis=-1) & (sat[:, :, i] > 0)
        at_lo = (v == lo).any(axis=-1) & (sat[:, :, i] > 0)
        add("sat-hi", at_hi.sum())
        add("sat-lo", at_lo.sum())
        # FS: FIRE steps of hidden layer i are window i+2 (1-based), steps (i+1)K .. (i+2)K−1 (0-based)
        if fs and neuron.kind == "fs":
            fire = slice((i + 1) * K, (i + 2) * K)
            before = previous(v)[:, fire]
            z = s[:, fire]
            add("fs-fire-midrange", (z & (before >= lo // 2) & (before <= hi // 2)).sum())
            add("fs-fire-clip", (sat[:, fire, i] > 0).sum())
            if K == 1:
                add("fs-k1", z.sum())
        if neuron.kind == "ws":
            add("ws-k1" if K == 1 else "ws-spike", s.sum())
        if neuron.kind == "acc" and not fs and net.skip_periods:
            add("ws-skip-periods", (acs[:, :net.skip_periods * K, i] > 0).sum())
        if neuron.kind in ("if", "lif"):
            threshold = per_neuron(layer.threshold)
            if neuron.floor is not None:
                floor = np.full(v.shape[-1], int(neuron.floor))
            elif neuron.floor_threshold:
                floor = -threshold
            else:
                floor = np.full(v.shape[-1], lo)
            has_floor = floor > lo
            add("floor-hit", ((v == floor) & has_floor).sum())
            if neuron.kind == "lif":
                pv = previous(v)
                add("lif-leak-pos", ((pv >> neuron.leak_shift) != 0)[pv > 0].sum())
                add("lif-leak-neg", (pv < 0).sum())
            u = layer_inhibition(layer)
            inhibited = np.zeros_like(s)
            if u is not None:  # m_i = spikes of the other neurons of the layer at this step
                m = s.sum(axis=-1, keepdims=True) - s
                inhibited = (np.asarray(u)[None, None, :] * m) > 0
                add("inhibit-clip-lo", (inhibited & (v == lo) & ~has_floor).sum())
                add("inhibit-floor", (inhibited & (v == floor) & has_floor).sum())
            if neuron.reset == "zero":
                add("reset-zero", s.sum())
            else:  # the recorded v is v − θ unless the inhibition changed it afterwards
                add("reset-subtract", (s & (v != 0) & ~inhibited).sum())
        # the accumulator's read-during-write (hw/crossbar.py): with G_l = 1 every event adds into ACC[0];
        # events of one source word are issued back to back, and UPDATE's read of ACC[0] follows the last
        # event of the last word (the next word costs a FETCH cycle; a junction's skip pass comes in between)
        skip = net.skip_into(i + 1)
        if layer.kind == "dense" and -(-layer.n_out // P) == 1:
            source = inputs if i == 0 else spikes[i - 1]
            if i == 0 or net.layers[i - 1].kind == "dense":
                n_src = source.shape[-1]
                W = -(-n_src // P)
                padded = np.zeros((N, T, W * P), dtype=bool)
                padded[..., :n_src] = source
                per_word = padded.reshape(N, T, W, P).sum(axis=-1)
                add("acc-raw-add-add", np.maximum(per_word - 1, 0).sum())
                if skip is None:
                    add("acc-raw-add-update", (per_word[..., -1] > 0).sum())
        if skip is not None and not fs:
            src = inputs if skip.source == 0 else spikes[skip.source - 1]
            add("residual-skip", src.any(axis=-1).sum())
    return hits


# --------------------------------------------------------------------------------------------------- directing
# Which (shape, family) can hit a bin: the search draws its next candidates from the families that can still hit
# an empty bin (the bins are measured all the same; this only steers the draw).
_HINTS = {
    "fs-fire-midrange": ("fs",), "fs-fire-clip": ("fs",), "fs-k1": ("fs",),
    "ws-k1": ("weighted",), "ws-spike": ("weighted",), "ws-skip-periods": ("weighted",),
    "inhibit-clip-lo": ("rate",), "inhibit-floor": ("rate",), "floor-hit": ("rate",),
    "lif-leak-pos": ("rate",), "lif-leak-neg": ("rate",), "reset-zero": ("rate",), "reset-subtract": ("rate",),
}
_SHAPE_HINTS = {"inhibit-clip-lo": "conv-res-wta", "inhibit-floor": "conv-res-wta", "conv": "conv-res-wta",
                "pool": "conv-res-wta", "residual-skip": "conv-res-wta", "acc-raw-add-add": "dense-fs",
                "acc-raw-add-update": "dense-fs", "fs-fire-midrange": "dense-fs", "fs-fire-clip": "dense-fs",
                "fs-k1": "dense-fs"}


@contextlib.contextmanager
def single_thread():
    """torch on one thread while it runs: these networks are tiny, and on a small shared machine torch's thread
    pool makes a golden run of a conv network 20× slower (0.7 s instead of 0.03 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def golden_run(case: Case):
    """The golden trace of ``case`` (membranes recorded, counters for the shape's lanes)."""
    return golden_run_for(case.net, case.spikes, case.lanes)


def golden_run_for(net: IntegerNetwork, spikes: np.ndarray, lanes: int):
    """The golden trace of ``net`` on time-major ``spikes`` ``[T, N, n_0]`` (membranes recorded, counters for
    ``lanes``)."""
    from cosim.session import golden_reference

    return golden_reference(net, spikes, lanes=lanes)


def directed_cases(shapes=None, *, per_bin: int = 1, max_candidates: int = 600, seed: int = 0, bins=None):
    """Draw seeded candidates (golden model only) and keep each one that hits a bin that fewer than ``per_bin``
    kept cases hit so far.

    ``shapes`` default to :data:`CI_SHAPES`. Returns ``(kept, covered, drawn)``: the kept :class:`Case` objects
    (each with ``.hits``, its measured bins), the sum of their hits per bin and the number of candidates drawn.
    Stops when ``per_bin`` kept cases hit every bin of ``bins`` (default: :data:`BINS`) or after
    ``max_candidates``. Each draw is steered towards a bin still short of cases (the shape and coding that can
    hit it); bins are measured all the same. Deterministic for a given ``seed``."""
    shapes = [SHAPES[s] if isinstance(s, str) else s for s in (shapes or CI_SHAPES)]
    names = [s.name for s in shapes]
    wanted = sorted(set(bins or BINS))
    covered: Counter = Counter()
    cases_per_bin: Counter = Counter()
    kept = []
    drawn = 0
    rng = np.random.default_rng(seed)
    with single_thread():
        while drawn < max_candidates:
            short = [b for b in wanted if cases_per_bin[b] < per_bin]
            if not short:
                break
            target = short[int(rng.integers(len(short)))]
            hinted = _SHAPE_HINTS.get(target)
            shape = SHAPES[hinted] if hinted in names else shapes[drawn % len(shapes)]
            families = [f for f in _HINTS.get(target, shape.families) if f in shape.families] or list(shape.families)
            family = families[int(rng.integers(len(families)))]
            case = generate(shape, seed * 1_000_003 + drawn, family)
            drawn += 1
            case.hits = measure(case.net, golden_run(case), shape.lanes)
            if any(cases_per_bin[b] < per_bin for b in case.hits if b in wanted):
                kept.append(case)
                covered.update(case.hits)
                cases_per_bin.update(set(case.hits))
    return kept, covered, drawn


def format_table(covered: Counter, bins=None) -> list[str]:
    """``bin  hits  what`` lines, every bin of ``bins`` (default :data:`BINS`) listed, empty ones marked."""
    bins = list(bins or BINS)
    width = max(len(b) for b in bins)
    lines = [f"{'bin':<{width}}  {'hits':>8}  measured as"]
    for name in bins:
        count = covered.get(name, 0)
        lines.append(f"{name:<{width}}  {count if count else 'EMPTY':>8}  {BINS.get(name, '')}")
    return lines
