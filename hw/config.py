"""Engine configuration: the sizes and widths one hardware build serves (docs/architecture.md, "The network engine").

An :class:`EngineConfig` fixes everything the Verilog depends on. Networks of the same shape and widths (IF-zero,
IF-subtract, LIF, any weights) run on one build: their numbers are loaded at run time through the configuration
port (``hw.config_image``). The config is a frozen, hashable dataclass of plain integers; :meth:`digest` is a
stable key for build caches (``hash()`` is stable too, but only within one Python version).

Fitting a network onto a build (``EngineConfig.for_network``, ``check_fits``, ``check_supported`` and the ``*_for``
width helpers) is :mod:`hw.fitting`; the list of the build's memories (``EngineConfig.memories``) is
:mod:`hw.memory_map`. Both are re-exported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, WidthError
from golden.core.geometry import Geometry
from golden.core.network import IntegerNetwork
from golden.core.register_map import MAX_LAYERS, PARAM_BITS, REGION_SHIFT, SKIP_WEIGHT_BASE

__all__ = [
    "EngineConfig", "check_supported", "MIN_C_LAYER", "MIN_C_IMAGE", "STEP_BITS", "LAYER_BITS", "GROUP_BITS",
    "PREDICTION_BITS", "SPIKE_COUNT_BITS", "N_COUNTERS", "MAX_PHASE_BITS", "phase_bits_for", "MAX_FS_SHIFT_BITS",
    "IMAGE_BITS", "fs_input_weights", "fs_shift_bits_for",
]

# Fixed port and field widths of docs/architecture.md (the configuration port's address and data layout is the
# register map, golden.core.register_map).
STEP_BITS = 16  # n_steps, rec_step, sum_step
LAYER_BITS = 8  # rec_layer, sum_layer
GROUP_BITS = 16  # rec_group
PREDICTION_BITS = 16
SPIKE_COUNT_BITS = STEP_BITS  # output spike counters: at most one spike per step
N_COUNTERS = len(COUNTER_NAMES)
MAX_FS_SHIFT_BITS = 5  # shifts 0..31
IMAGE_BITS = 16  # n_images, pred_image
MAX_PHASE_BITS = 4  # the IR allows K ≤ 16: shifts 0..15

# The shortest fixed costs the engine's pipeline allows (docs/hardware.md, "Cycle accounting"): DRAIN + SUMMARY
# per (step, layer), the start cycle per image. Larger golden.core.cycle_model constants are met with idle cycles.
MIN_C_LAYER = 2
MIN_C_IMAGE = 1


def _cycle_constants() -> tuple[int, int]:
    return int(cycle_model.C_LAYER), int(cycle_model.C_IMAGE)


@dataclass(frozen=True)
class EngineConfig:
    """Sizes and widths of one engine build.

    ``layer_sizes`` = ``[n_0, n_1, …, n_L]``; ``lanes`` = P (neurons updated / synapses added per cycle);
    ``weight_bits``, ``bias_bits``, ``acc_bits`` (ACC words and the neuron's exact sum), signed; ``threshold_bits``
    unsigned (defaults: ``bias_bits = M``, ``threshold_bits = M − 1``); ``membrane_bits`` = M, the saturation
    width (must equal the network's); ``counter_bits`` = W, the width of every hardware counter. ``phase_bits``
    (0 = none) adds the weighted-spike hardware (Kim 2018): the global phase counter, the ``ws``/``acc`` neuron
    modes and their shifters; it runs networks of up to ``K = 2^phase_bits`` phases. ``fs_shift_bits`` (0 = none;
    needs ``phase_bits > 0``) adds the FS hardware (Stöckl & Maass 2021): per-layer K-entry tables (T, h, d), the
    FS neuron lanes, the pipelined image stream and its ports; spike weights ``d = ±2^k`` with
    ``k < 2^fs_shift_bits``. ``c_layer`` and ``c_image`` default to ``golden.core.cycle_model``'s constants.
    ``inhibition`` (per layer 0/1, () = none) adds the lateral-inhibition hardware of Lee 2016 to the flagged
    dense layers (docs/spec.md §3c, docs/architecture.md "Lateral inhibition"): the u memory, an own-spike and
    saturation-flag memory, the INHIBIT pass; the pass runs when the layer's params bit 12 is set.
    """

    layer_sizes: tuple[int, ...]
    lanes: int = 8
    weight_bits: int = 8
    membrane_bits: int = 24
    acc_bits: int = 32
    bias_bits: int | None = None  # default: membrane_bits
    threshold_bits: int | None = None  # default: membrane_bits − 1
    counter_bits: int = 32
    phase_bits: int = 0  # 0: no weighted-spike hardware; else the phase shift sh = K − k has phase_bits bits
    fs_shift_bits: int = 0  # 0: no FS hardware; else the FS spike-weight shift k (d = ±2^k) has fs_shift_bits bits
    c_layer: int | None = None
    c_image: int | None = None
    # per layer: () for dense, else the conv/pool Geometry (golden.core.geometry.geometry_of's values); () = all dense
    spatial: tuple = ()
    # per layer: 1 = lateral-inhibition hardware (Lee 2016) for that dense layer; () = none
    inhibition: tuple = ()
    # residual junctions: (target, source, *conv skip geometry or nothing for a dense skip) per skip connection
    skips: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "layer_sizes", tuple(int(n) for n in self.layer_sizes))
        object.__setattr__(self, "inhibition", tuple(int(bool(v)) for v in self.inhibition))
        if self.inhibition and not any(self.inhibition):
            object.__setattr__(self, "inhibition", ())
        object.__setattr__(self, "spatial", tuple(Geometry.of(g) for g in self.spatial))
        if self.spatial and not any(self.spatial):
            object.__setattr__(self, "spatial", ())
        object.__setattr__(self, "skips", tuple(sorted(tuple(int(v) for v in s) for s in self.skips)))
        c_layer, c_image = _cycle_constants()
        if self.bias_bits is None:
            object.__setattr__(self, "bias_bits", self.membrane_bits)
        if self.threshold_bits is None:
            object.__setattr__(self, "threshold_bits", self.membrane_bits - 1)
        if self.c_layer is None:
            object.__setattr__(self, "c_layer", c_layer)
        if self.c_image is None:
            object.__setattr__(self, "c_image", c_image)
        self._validate()

    # ------------------------------------------------------------------------------------------- validation
    def _validate(self) -> None:
        for name in ("lanes", "weight_bits", "membrane_bits", "acc_bits", "bias_bits", "threshold_bits",
                     "counter_bits", "phase_bits", "fs_shift_bits", "c_layer", "c_image"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SnnCosimError(f"EngineConfig.{name} must be an integer, got {value!r}")
        sizes = self.layer_sizes
        if len(sizes) < 2:
            raise SnnCosimError(f"layer_sizes needs the input size and at least one layer, got {list(sizes)}")
        if len(sizes) - 1 > MAX_LAYERS:
            raise SnnCosimError(f"the engine addresses at most {MAX_LAYERS} layers, got {len(sizes) - 1}")
        if any(not 1 <= n < (1 << PREDICTION_BITS) for n in sizes):
            raise SnnCosimError(f"every layer size must lie in 1..{(1 << PREDICTION_BITS) - 1}, got {list(sizes)}")
        if not 1 <= self.lanes <= 1024:
            raise SnnCosimError(f"lanes must lie in 1..1024, got {self.lanes}")
        if not 2 <= self.weight_bits <= 32:
            raise WidthError(f"weight_bits must lie in 2..32, got {self.weight_bits}")
        if not 4 <= self.membrane_bits <= 62:
            raise WidthError(f"membrane_bits must lie in 4..62, got {self.membrane_bits}")
        if not 2 <= self.bias_bits <= 64 or not 2 <= self.acc_bits <= 64:
            raise WidthError(f"bias_bits and acc_bits must lie in 2..64, got {self.bias_bits}, {self.acc_bits}")
        if not 1 <= self.threshold_bits <= self.membrane_bits - 1:
            raise WidthError(f"threshold_bits must lie in 1..membrane_bits-1={self.membrane_bits - 1} "
                             f"(thresholds are positive membrane values), got {self.threshold_bits}")
        if not 8 <= self.counter_bits <= 64:
            raise WidthError(f"counter_bits must lie in 8..64, got {self.counter_bits}")
        if not 0 <= self.phase_bits <= MAX_PHASE_BITS:
            raise WidthError(f"phase_bits must lie in 0..{MAX_PHASE_BITS} (K ≤ {1 << MAX_PHASE_BITS} phases), "
                             f"got {self.phase_bits}")
        if not 0 <= self.fs_shift_bits <= MAX_FS_SHIFT_BITS:
            raise WidthError(f"fs_shift_bits must lie in 0..{MAX_FS_SHIFT_BITS} (FS weights up to "
                             f"±2^{(1 << MAX_FS_SHIFT_BITS) - 1}), got {self.fs_shift_bits}")
        if self.fs_shift_bits and not self.phase_bits:
            raise SnnCosimError("the FS hardware (fs_shift_bits > 0) needs the phase counter: set phase_bits > 0")
        if self.spatial:
            if len(self.spatial) != self.n_layers:
                raise SnnCosimError(f"spatial has {len(self.spatial)} entries for {self.n_layers} layers")
            if self.spatial[-1]:
                raise SnnCosimError("the output layer must be dense")
            for l, geo in enumerate(self.spatial, start=1):
                if geo and (not isinstance(geo, Geometry) or geo.c_in * geo.in_positions != self.layer_sizes[l - 1]
                            or geo.c_out * geo.out_positions != self.layer_sizes[l]):
                    raise SnnCosimError(f"layer {l}: spatial geometry {geo} does not match layer_sizes")
        self._validate_skips()
        for l in range(1, self.n_layers + 1):
            if self.weight_words(l) > (1 << REGION_SHIFT):
                raise SnnCosimError(f"layer {l} needs {self.weight_words(l)} weight words; a configuration region "
                                    f"addresses {1 << REGION_SHIFT}")
        if self.inhibition:
            if len(self.inhibition) != self.n_layers:
                raise SnnCosimError(f"inhibition has {len(self.inhibition)} entries for {self.n_layers} layers")
            if any(flag and self.geometry(l) for l, flag in enumerate(self.inhibition, start=1)):
                raise SnnCosimError("lateral inhibition is supported for dense layers only")
            if self.fs:
                raise SnnCosimError("lateral inhibition is not supported in FS builds")
            if cycle_model.C_INHIBIT != 1:
                raise SnnCosimError(f"the INHIBIT pass drains in 1 cycle; golden.core.cycle_model.C_INHIBIT = "
                                    f"{cycle_model.C_INHIBIT} is not met by the engine")
        if self.c_layer < MIN_C_LAYER or self.c_image < MIN_C_IMAGE:
            raise SnnCosimError(
                f"C_LAYER={self.c_layer}, C_IMAGE={self.c_image} are below the engine's pipeline minimum "
                f"({MIN_C_LAYER}, {MIN_C_IMAGE}); raise them in golden/core/cycle_model.py")

    def _validate_skips(self) -> None:
        targets = set()
        for skip in self.skips:
            target, source, geo = skip[0], skip[1], Geometry.of(skip[2:])
            if not 1 <= source <= target - 2 or target > self.n_layers or target in targets:
                raise SnnCosimError(f"skip {skip[:2]}: needs 1 <= source <= target-2 <= {self.n_layers - 2} and one "
                                    f"skip per target")
            targets.add(target)
            if self.fs:
                raise SnnCosimError("skip connections are not supported in FS builds")
            tgeo, sgeo = self.geometry(target), self.geometry(source)
            if tgeo and tgeo.is_pool:
                raise SnnCosimError(f"skip {skip[:2]}: a pooling layer cannot be a junction")
            if bool(geo) != bool(tgeo) or (geo and (not isinstance(geo, Geometry) or geo.is_pool
                                                   or geo.out_shape != tgeo.out_shape
                                                   or not sgeo or geo.in_shape != sgeo.out_shape)):
                raise SnnCosimError(f"skip {skip[:2]}: geometry {geo} does not match the source and target layers")
            if self.skip_weight_words(target) > SKIP_WEIGHT_BASE or self.weight_words(target) > SKIP_WEIGHT_BASE:
                raise SnnCosimError(f"junction layer {target}: weight memories above {SKIP_WEIGHT_BASE} words "
                                    f"collide with the skip weights in its configuration region")

    # ------------------------------------------------------------------------------------------- residual junctions
    def skip_of(self, l: int) -> tuple | None:
        """``(source, conv skip Geometry or ())`` of junction layer ``l``, None when ``l`` has no skip."""
        for skip in self.skips:
            if skip[0] == l:
                return skip[1], Geometry.of(skip[2:])
        return None

    def skip_words(self, l: int) -> int:
        """``W_skip``: mask words of junction ``l``'s skip source: ``h·w·ceil(c/P)`` for a conv/pool source, else
        ``ceil(n_source / P)``."""
        source, _ = self.skip_of(l)
        geo = self.geometry(source)
        if geo:
            return geo.out_positions * -(-geo.c_out // self.lanes)
        return -(-self.layer_sizes[source] // self.lanes)

    def skip_weight_words(self, l: int) -> int:
        """Depth of junction ``l``'s skip weight memory: ``c_src·kh·kw·G_l`` (conv skip), ``W_skip·P·G_l`` (dense
        skip from a conv/pool source, rows in its hardware order), ``n_source·G_l`` (dense skip)."""
        source, geo = self.skip_of(l)
        if geo:
            return geo.c_in * geo.taps * self.groups(l)
        if self.geometry(source):
            return self.skip_words(l) * self.lanes * self.groups(l)
        return self.layer_sizes[source] * self.groups(l)

    # ------------------------------------------------------------------------------------------- geometry
    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def groups(self, l: int) -> int:
        """``G_l = ceil(n_l / P)`` lane groups of layer ``l`` (``l = 0`` gives the input's word count ``W_1`` of a
        dense first layer); for a conv/pool layer ``ceil(c_out / P)`` channel groups."""
        if not 0 <= l <= self.n_layers:
            raise SnnCosimError(f"layer {l} is not in 0..{self.n_layers}")
        if l and self.geometry(l):
            return -(-self.geometry(l).c_out // self.lanes)
        return -(-self.layer_sizes[l] // self.lanes)

    def geometry(self, l: int) -> Geometry | tuple[()]:
        """The conv/pool :class:`Geometry` of layer ``l``, ``()`` for dense."""
        return self.spatial[l - 1] if self.spatial else ()

    def plans(self):
        return cycle_model.layer_plans(self.layer_sizes, self.spatial, self.lanes)

    def inhibits(self, l: int) -> bool:
        """True when layer ``l`` has the lateral-inhibition hardware."""
        return bool(self.inhibition) and bool(self.inhibition[l - 1])

    @property
    def spike_count_bits(self) -> int:
        """Width of the layer spike count n (and of m = n − s) in the INHIBIT pass: the largest inhibited layer."""
        return max(1, max((self.layer_sizes[l] for l in range(1, self.n_layers + 1) if self.inhibits(l)),
                          default=1).bit_length())

    def words(self, l: int) -> int:
        """``W_l``: spike-mask words layer ``l`` reads per step: ``ceil(n_{l-1} / P)`` (= ``groups(l - 1)``), or
        ``h·w·ceil(c/P)`` for a spatial source in hardware order."""
        if not self.spatial:
            return self.groups(l - 1)
        return self.plans()[l - 1].words

    def state_words(self, l: int) -> int:
        """Membrane / spike-mask words of layer ``l``: ``G_l``, or ``h_out·w_out·G_l`` for conv/pool."""
        if not self.spatial:
            return self.groups(l)
        return self.plans()[l - 1].state_words

    def spatial_source(self, l: int) -> bool:
        """True when layer ``l`` reads its source in hardware order (position-major, channel groups)."""
        return bool(self.spatial) and bool(self.geometry(l) or (l >= 2 and self.geometry(l - 1)))

    def weight_words(self, l: int) -> int:
        """Depth of layer ``l``'s weight memory: ``n_{l-1} · G_l`` (dense), ``W_l·P·G_l`` (dense reading a spatial
        source), ``c_in·kh·kw·G_l`` (conv), 1 (pool: the pool weight in every lane)."""
        geo = self.geometry(l)
        if geo:
            return 1 if geo.is_pool else geo.c_in * geo.taps * self.groups(l)
        if self.spatial_source(l):
            return self.words(l) * self.lanes * self.groups(l)
        return self.layer_sizes[l - 1] * self.groups(l)

    @property
    def max_groups(self) -> int:
        """Depth of the shared accumulator memory (the largest state depth)."""
        return max(self.state_words(l) for l in range(1, self.n_layers + 1))

    def hardware_order(self, l: int) -> np.ndarray:
        """``int64 [words · P]``: the neuron (torch flatten order (c, y, x)) at bit ``word·P + p`` of layer
        ``l``'s spike-mask / record words (``l = 0``: the input words on ``spike_in``), −1 for padding lanes.
        Spatial layers (and the input of a conv/pool layer 1) are position-major with channel groups: word
        ``q·G + g``, lane p is channel ``g·P + p`` at position ``q = y·w + x``."""
        P = self.lanes
        if l == 0 and self.geometry(1):
            c, h, w = self.geometry(1).in_shape
        elif l >= 1 and self.geometry(l):
            c, h, w = self.geometry(l).out_shape
        else:
            n = self.layer_sizes[l]
            order = np.arange(self.groups(l) * P, dtype=np.int64)
            order[n:] = -1
            return order
        G = -(-c // P)
        q, g, p = np.meshgrid(np.arange(h * w), np.arange(G), np.arange(P), indexing="ij")
        channel = g * P + p
        return np.where(channel < c, channel * (h * w) + q, -1).reshape(-1).astype(np.int64)

    def input_words(self, spikes) -> np.ndarray:
        """``bool [..., n_0]`` input spikes → ``object [..., W_1]`` spike_in words in the engine's input order
        (padding lanes 0)."""
        spikes = np.asarray(spikes, dtype=bool)
        order = self.hardware_order(0)
        bits = np.where(order >= 0, spikes[..., np.maximum(order, 0)], False)
        bits = bits.reshape(*spikes.shape[:-1], -1, self.lanes).astype(object)
        return sum(bits[..., p] << p for p in range(self.lanes))

    @property
    def cfg_data_bits(self) -> int:
        """Width of ``cfg_data``: the widest configuration word (weights, biases, thresholds, params, floor and,
        with weighted spikes, the 16-bit ``S·K``)."""
        p = self.lanes
        return max(p * self.weight_bits, p * self.bias_bits, p * self.threshold_bits, self.membrane_bits,
                   PARAM_BITS, STEP_BITS if self.phase_bits else 0)

    @property
    def fs(self) -> bool:
        """True for a build with the FS hardware (tables, FS lanes, image stream)."""
        return self.fs_shift_bits > 0

    @property
    def max_phases(self) -> int:
        """The largest K this build runs (0 without weighted-spike hardware)."""
        return 1 << self.phase_bits if self.phase_bits else 0

    def memories(self) -> list[tuple[str, int, int]]:
        """``(name, depth, width)`` of every memory of the engine (docs/hardware.md, "Resources";
        :func:`hw.memory_map.engine_memories`)."""
        return _engine_memories(self)

    @property
    def memory_bits(self) -> int:
        return sum(depth * width for _, depth, width in self.memories())

    def fs_max_images(self, phases: int) -> int:
        """The most images one FS start may stream with K = ``phases``: its global steps ``2K·(N−1) + L·K`` must
        fit the 16-bit step counter (``rec_step``/``sum_step``); longer runs take several starts."""
        phases = int(phases)
        if not 1 <= phases <= max(self.max_phases, 1):
            raise SnnCosimError(f"K = {phases} is not in 1..{self.max_phases}")
        spare = (1 << STEP_BITS) - 1 - self.n_layers * phases
        return max(0, min(spare // (2 * phases) + 1, (1 << IMAGE_BITS) - 1))

    def layer_cycles(self, l: int, s_in: int) -> int:
        """``W_l + S_in·G_l + G_l + C_LAYER`` (docs/architecture.md), plus the INHIBIT pass ``G_l + C_INHIBIT``
        for a layer with inhibition hardware (assuming its params enable it)."""
        extra = self.groups(l) + 1 if self.inhibits(l) else 0
        return self.words(l) + s_in * self.groups(l) + self.groups(l) + self.c_layer + extra

    # ------------------------------------------------------------------------------------------- keys
    def as_dict(self) -> dict:
        """Every field; ``fs_shift_bits`` only when set, so builds without FS hardware keep their digests."""
        out = dataclasses.asdict(self) | {"layer_sizes": list(self.layer_sizes)}
        if not self.fs_shift_bits:
            del out["fs_shift_bits"]
        if not self.inhibition:
            del out["inhibition"]
        if not self.spatial:
            del out["spatial"]
        else:
            out["spatial"] = [list(g) for g in self.spatial]
        if not self.skips:
            del out["skips"]
        else:
            out["skips"] = [list(s) for s in self.skips]
        return out

    def digest(self) -> str:
        """A stable SHA-256 (hex, 16 characters) of every field: the Verilator build-cache key."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------------------- networks
    @classmethod
    def for_network(cls, net: IntegerNetwork, lanes: int = 8, **overrides) -> "EngineConfig":
        """The smallest engine that runs ``net`` with ``lanes`` lanes; ``overrides`` widen fields (e.g.
        ``acc_bits=32`` for a build that later networks of the same shape also fit). Raises if ``net`` does
        not fit the result (:func:`hw.fitting.config_for_network`)."""
        return _fitting.config_for_network(cls, net, lanes, **overrides)

    def check_fits(self, net: IntegerNetwork) -> None:
        """Raise a one-line :class:`WidthError` (or :class:`UnsupportedLayerError`) unless ``net`` runs on this
        engine: same sizes, same membrane width, and every weight, bias, threshold and synaptic sum fits
        (:func:`hw.fitting.check_fits`)."""
        _fitting.check_fits(self, net)


# The network-fitting helpers live in hw.fitting, the memory list in hw.memory_map; both import this module's
# constants, so they are imported after everything above is defined. Re-exported: the public helpers.
from . import fitting as _fitting  # noqa: E402
from .fitting import check_supported, fs_input_weights, fs_shift_bits_for, phase_bits_for  # noqa: E402,F401
from .memory_map import engine_memories as _engine_memories  # noqa: E402
