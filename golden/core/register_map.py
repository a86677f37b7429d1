"""The engine's register map: where the run-time configuration of an integer network goes (the configuration
write port ``cfg_valid / cfg_addr / cfg_data``). Written once here, torch-free and Amaranth-free: the configuration
image (``hw.config_image.config_words``) packs words with it and the hardware's decoders (``hw.neuron.LayerParams``
and ``NeuronControl``, ``hw.global_registers``, ``hw.fs.FsTables``, ``hw.neuron.InhibitStrengths``, the per-layer
memories) decode them with it.

Address map: ``cfg_addr = region << 24 | index``; for layer ``l`` (1-based)

========================  =======================  =====================================================
region                    index                    data (lane ``p`` of a P-lane word at ``[p·bits +: bits]``)
========================  =======================  =====================================================
``4(l−1) + 0`` weights    ``i·G_l + g``            ``W[g·P + p, i]``, ``weight_bits`` two's complement
``4(l−1) + 0`` skip       ``2^23 + j``             junction l's skip weights, laid out as a layer's weights
                                                   (conv skip: ``j = (ci·kh·kw + tap)·G_l + g``; dense skip:
                                                   ``j = i·G_l + g``, rows in the source's hardware order)
``4(l−1) + 1`` bias       ``g``                    ``bias[g·P + p]``, ``bias_bits`` two's complement
``4(l−1) + 2`` threshold  ``g``                    ``θ[g·P + p]``, ``threshold_bits`` unsigned
``4(l−1) + 3`` params     ``0``                    bit 0 kind (0 IF, 1 LIF), bit 1 reset (0 zero, 1 subtract),
                                                   bits 2..7 leak_shift, bit 8 floor enable, bit 9 ``ws``
                                                   (weighted spike), bit 10 ``acc`` (output accumulator),
                                                   bit 11 floor at −θ_j, bit 12 lateral inhibition (Lee 2016)
``4(l−1) + 3`` params     ``1``                    floor, ``membrane_bits`` two's complement
``4(l−1) + 3`` FS table   ``0x100 + t − 1``        ``T_l[t]``, ``membrane_bits`` two's complement (FS, l < L)
``4(l−1) + 3`` FS table   ``0x200 + t − 1``        ``h_l[t]``, ``membrane_bits`` two's complement (FS, l < L)
``4(l−1) + 3`` FS table   ``0x300 + t − 1``        ``d_in[t] = ±2^k`` of the spikes layer l *receives* (layer
                                                   l−1's ``fs_weight``; the input's ``2^(K−t)`` for l = 1):
                                                   bits 0..5 k, bit 6 set for negative d (FS builds)
``4(l−1) + 3`` inhibition ``0x400 + g``            ``u[g·P + p]``, ``threshold_bits`` unsigned: WTA strengths
                                                   (layers built with inhibition hardware, docs/spec.md §3c)
``0xFF`` global           ``0``                    K, the number of phases (0 = no weighted spikes)
``0xFF`` global           ``1``                    ``S·K``: an ``acc`` layer integrates only for steps t > S·K
``0xFF`` global           ``2``                    1 = FS stream schedule, 0 = per-step schedule (FS builds)
========================  =======================  =====================================================

"""

from __future__ import annotations

from golden.core.errors import UnsupportedLayerError

__all__ = [
    "CFG_ADDR_BITS", "REGION_SHIFT", "WEIGHTS", "BIAS", "THRESHOLD", "PARAMS", "PARAMS_CONTROL", "PARAMS_FLOOR",
    "SKIP_WEIGHT_BASE", "FS_THRESHOLD_BASE", "FS_RESET_BASE", "FS_WEIGHT_BASE", "FS_SHIFT_FIELD_BITS",
    "FS_NEGATIVE_BIT", "INHIBIT_BASE", "GLOBAL_REGION", "GLOBAL_PHASES", "GLOBAL_SKIP_LAST", "GLOBAL_FS_MODE",
    "MAX_LAYERS", "LEAK_SHIFT_BITS", "PARAM_FIELDS", "PARAM_BITS", "region_address", "global_address",
    "params_word", "fs_weight_code", "power_of_two_shift",
]

CFG_ADDR_BITS = 32
REGION_SHIFT = 24  # cfg_addr = region << 24 | index
# the four regions of layer l (1-based): 4(l−1) + field
WEIGHTS, BIAS, THRESHOLD, PARAMS = 0, 1, 2, 3
PARAMS_CONTROL = 0  # params region index 0: the params word (PARAM_FIELDS)
PARAMS_FLOOR = 1  # params region index 1: the floor, membrane_bits two's complement
# Residual junctions: the skip weights of junction layer l live in its weight region from this index on
SKIP_WEIGHT_BASE = 1 << (REGION_SHIFT - 1)
# FS tables of layer l live in its params region at these index bases (+ t−1 for t = 1..K):
FS_THRESHOLD_BASE = 0x100  # T_l[t], membrane_bits two's complement
FS_RESET_BASE = 0x200  # h_l[t], membrane_bits two's complement
FS_WEIGHT_BASE = 0x300  # d_in[t] of the spikes layer l receives: bits 0..5 shift k, bit 6 negative (d = ±2^k)
FS_SHIFT_FIELD_BITS = 6
FS_NEGATIVE_BIT = 6
# Lateral inhibition (Lee 2016, docs/spec.md §3c): word 0x400 + g of layer l's params region holds the WTA
# strengths u of group g (P lanes × threshold_bits, unsigned), for layers built with inhibition hardware.
INHIBIT_BASE = 0x400
# Region 0xFF holds the global (whole-network) registers; layers use four regions each below it.
GLOBAL_REGION = (1 << (CFG_ADDR_BITS - REGION_SHIFT)) - 1
GLOBAL_PHASES = 0  # index 0: K, the number of phases (0 = no weighted spikes)
GLOBAL_SKIP_LAST = 1  # index 1: S·K, the last step in which an 'acc' output layer does not integrate
GLOBAL_FS_MODE = 2  # index 2 (FS builds only): 1 = the pipelined FS schedule (Stöckl & Maass 2021), 0 = per step
MAX_LAYERS = GLOBAL_REGION // 4  # 63: regions 0..251

# The params word, low bit first: (field, bits). hw.neuron.NeuronControl is this layout as an Amaranth struct.
LEAK_SHIFT_BITS = 6
PARAM_FIELDS = (
    ("lif", 1),  # bit 0: 0 = IF, 1 = LIF
    ("subtract", 1),  # bit 1, reset: 0 = to zero, 1 = subtract θ (θ_k for ws)
    ("leak_shift", LEAK_SHIFT_BITS),  # bits 2..7
    ("floor_en", 1),  # bit 8
    ("ws", 1),  # bit 9: weighted spike, input and threshold shifted by the phase
    ("acc", 1),  # bit 10: non-spiking output accumulator, phase-shifted input, gated by t > S·K
    ("floor_theta", 1),  # bit 11: floor at −θ_j (Lee 2016; excludes floor_en)
    ("inhibit", 1),  # bit 12: lateral inhibition, the layer's INHIBIT pass runs after UPDATE
)
PARAM_BITS = sum(bits for _, bits in PARAM_FIELDS)


def region_address(layer: int, field: int, index: int) -> int:
    """``cfg_addr`` of ``field`` (WEIGHTS, BIAS, THRESHOLD, PARAMS) of 1-based ``layer``."""
    return (4 * (layer - 1) + field) << REGION_SHIFT | index


def global_address(index: int) -> int:
    """``cfg_addr`` of global register ``index`` (GLOBAL_PHASES, GLOBAL_SKIP_LAST, GLOBAL_FS_MODE)."""
    return GLOBAL_REGION << REGION_SHIFT | index


def params_word(neuron, inhibition: bool) -> int:
    """The params word (:data:`PARAM_FIELDS`) of a layer with ``neuron`` (:class:`~golden.core.network.NeuronParams`)
    and lateral ``inhibition`` on or off."""
    values = {"lif": int(neuron.kind == "lif"), "subtract": int(neuron.reset == "subtract"),
              "leak_shift": int(neuron.leak_shift), "floor_en": int(neuron.floor is not None),
              "ws": int(neuron.kind == "ws"), "acc": int(neuron.kind == "acc"),
              "floor_theta": int(bool(neuron.floor_threshold)), "inhibit": int(bool(inhibition))}
    word, offset = 0, 0
    for name, bits in PARAM_FIELDS:
        if not 0 <= values[name] < 1 << bits:
            raise ValueError(f"params field {name} = {values[name]} does not fit {bits} bits")
        word |= values[name] << offset
        offset += bits
    return word


def power_of_two_shift(value: int) -> int | None:
    """k for ``|value| = 2^k``, else None."""
    a = abs(int(value))
    return a.bit_length() - 1 if a and a & (a - 1) == 0 else None


def fs_weight_code(d: int) -> int:
    """The configuration word of an FS spike weight ``d = ±2^k``: bits 0..5 k, bit 6 set for negative d."""
    shift = power_of_two_shift(d)
    if shift is None or shift >= 1 << FS_SHIFT_FIELD_BITS:
        raise UnsupportedLayerError(f"FS weight d = {d} is not a signed power of two 2^k with k < "
                                    f"{1 << FS_SHIFT_FIELD_BITS}")
    return shift | int(d < 0) << FS_NEGATIVE_BIT
