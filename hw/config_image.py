"""The run-time configuration image: an integer network as writes to the engine's ``cfg`` port.

Addresses, regions and the params word: :mod:`golden.core.register_map` (the one register map).

Padding lanes (``g·P + p ≥ n_l``) hold 0 everywhere; the engine also masks their spikes and counts. The global
words 0 and 1 are written only for engines with weighted-spike hardware (``config.phase_bits > 0``); the FS table
words and global word 2 only for engines with FS hardware (``config.fs``), for t = 1..K.

Hex file format (:func:`write_config_hex`, read by the cosim harness with ``$fscanf`` and by the FPGA top
``snn_top.v`` with ``$readmemh``): one write per line, ``AAAAAAAA DDDD…`` — the address as 8 upper-case hex
digits, one space, the data as ``ceil(cfg_data_bits / 4)`` hex digits — in the order the words are to be written.
``$readmemh`` into a memory of ``max(32, cfg_data_bits)``-bit words therefore sees address, data, address, data….
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from golden.core.errors import SnnCosimError
from golden.core.files import write_text_atomic
from golden.core.network import IntegerNetwork, layer_inhibition
from golden.core.register_map import (BIAS, FS_RESET_BASE, FS_THRESHOLD_BASE, FS_WEIGHT_BASE, GLOBAL_FS_MODE,
                                      GLOBAL_PHASES, GLOBAL_SKIP_LAST, INHIBIT_BASE, PARAMS, PARAMS_CONTROL,
                                      PARAMS_FLOOR, SKIP_WEIGHT_BASE, THRESHOLD, WEIGHTS, fs_weight_code,
                                      global_address, params_word, region_address)

from .config import EngineConfig, fs_input_weights

__all__ = ["config_words", "write_config_hex", "read_config_hex", "address_runs", "write_top_roms", "run_length_bits"]


def _pack(lanes: np.ndarray, bits: int) -> list[int]:
    """``[..., P]`` signed or unsigned integers → one int per row, lane p at bits ``[p·bits +: bits]``."""
    values = (np.asarray(lanes, dtype=np.int64) & ((1 << bits) - 1)).astype(object)
    packed = np.zeros(values.shape[:-1], dtype=object)
    for p in range(values.shape[-1]):
        packed = packed + (values[..., p] << (p * bits))
    return [int(v) for v in packed.reshape(-1)]


def _lane_padded(values: np.ndarray, groups: int, lanes: int) -> np.ndarray:
    """Pad the neuron axis (axis 0) to ``groups · lanes`` with zeros."""
    out = np.zeros((groups * lanes,) + values.shape[1:], dtype=np.int64)
    out[: values.shape[0]] = values
    return out


def config_words(net: IntegerNetwork, config: EngineConfig) -> list[tuple[int, int]]:
    """Every ``(cfg_addr, cfg_data)`` write that loads ``net`` into an engine built for ``config``, layer by
    layer: weights, biases, thresholds, neuron parameters (and, for engines with FS hardware, the layer's FS table
    entries T, h and d_in for t = 1..K of an FS network); then, for engines with weighted-spike hardware, the
    global K and S·K, and for FS engines the schedule word (1 for FS networks). Raises unless ``net`` fits
    ``config``."""
    config.check_fits(net)
    P = config.lanes
    words: list[tuple[int, int]] = []
    fs = config.fs and net.is_fs
    d_in = fs_input_weights(net) if fs else None
    M_mask = (1 << config.membrane_bits) - 1
    for l, layer in enumerate(net.layers, start=1):
        G = config.groups(l)
        if layer.kind == "conv2d":  # address (ci·kh·kw + ky·kw + kx)·G + g, lane p: W[g·P + p, ci, ky, kx]
            kernel = np.asarray(layer.weight, dtype=np.int64)
            c_out = kernel.shape[0]
            weight = _lane_padded(kernel.reshape(c_out, -1), G, P)  # [G·P, c_in·kh·kw]
            by_input = weight.T.reshape(-1, G, P)
        elif layer.kind == "avgpool2d":  # one word: the pool weight in every lane (masked per lane in EVENT)
            by_input = np.full((1, P), int(layer.weight), dtype=np.int64)
        else:
            weight = _lane_padded(np.asarray(layer.weight, dtype=np.int64), G, P)  # [G·P, n_in]
            if config.spatial_source(l):  # rows in the source's hardware order (padding lanes: zero rows)
                order = config.hardware_order(l - 1)
                weight = np.where(order[None, :] >= 0, weight[:, np.maximum(order, 0)], 0)
            by_input = weight.T.reshape(-1, G, P)  # address i·G + g, lane p
        for index, value in enumerate(_pack(by_input, config.weight_bits)):
            words.append((region_address(l, WEIGHTS, index), value))
        skip = net.skip_into(l) if net.skips else None
        if skip is not None:  # residual junction: the skip weights, laid out as a conv / dense layer's weights
            for index, value in enumerate(_pack(_skip_by_input(skip, config, l), config.weight_bits)):
                words.append((region_address(l, WEIGHTS, SKIP_WEIGHT_BASE + index), value))
        for field, array, bits in ((BIAS, layer.bias, config.bias_bits),
                                   (THRESHOLD, layer.threshold, config.threshold_bits)):
            packed = _pack(_lane_padded(np.asarray(array, dtype=np.int64), G, P).reshape(G, P), bits)
            words += [(region_address(l, field, g), value) for g, value in enumerate(packed)]
        neuron = layer.neuron
        inhibition = layer_inhibition(layer)
        floor = 0 if neuron.floor is None else int(neuron.floor) & ((1 << config.membrane_bits) - 1)
        words += [(region_address(l, PARAMS, PARAMS_CONTROL), params_word(neuron, inhibition is not None)),
                  (region_address(l, PARAMS, PARAMS_FLOOR), floor)]
        if config.inhibits(l):  # every word of the u memory, zeros for a layer without inhibition
            u = np.zeros(G * P, dtype=np.int64) if inhibition is None else np.asarray(inhibition, dtype=np.int64)
            packed = _pack(_lane_padded(u, G, P).reshape(G, P), config.threshold_bits)
            words += [(region_address(l, PARAMS, INHIBIT_BASE + g), value) for g, value in enumerate(packed)]
        if fs:
            for t in range(net.phases):
                if l < len(net.layers):  # the output layer ('acc') never fires
                    words += [(region_address(l, PARAMS, FS_THRESHOLD_BASE + t), int(neuron.fs_threshold[t]) & M_mask),
                              (region_address(l, PARAMS, FS_RESET_BASE + t), int(neuron.fs_reset[t]) & M_mask)]
                words.append((region_address(l, PARAMS, FS_WEIGHT_BASE + t), fs_weight_code(d_in[l - 1][t])))
    if config.phase_bits:
        phases = int(net.phases)
        words += [(global_address(GLOBAL_PHASES), phases),
                  (global_address(GLOBAL_SKIP_LAST), int(net.skip_periods) * phases)]
    if config.fs:
        words.append((global_address(GLOBAL_FS_MODE), int(net.is_fs)))
    return words


def _skip_by_input(skip, config: EngineConfig, l: int) -> np.ndarray:
    """Skip weights of junction ``l`` as ``[words, G_l, P]`` in address order (conv: ``(ci·kh·kw + tap)·G + g``;
    dense: ``i·G + g`` with rows in the source's hardware order when it is a conv/pool layer)."""
    P, G = config.lanes, config.groups(l)
    kernel = np.asarray(skip.weight, dtype=np.int64)
    weight = _lane_padded(kernel.reshape(kernel.shape[0], -1), G, P)  # [G·P, c_in·kh·kw or n_src]
    if kernel.ndim == 2 and config.geometry(skip.source):
        order = config.hardware_order(skip.source)
        weight = np.where(order[None, :] >= 0, weight[:, np.maximum(order, 0)], 0)
    return weight.T.reshape(-1, G, P)


def write_config_hex(words: list[tuple[int, int]], path: str | os.PathLike, data_bits: int | None = None) -> Path:
    """Write ``words`` as ``AAAAAAAA DDDD…`` lines (module docstring), atomically. ``data_bits`` (normally
    ``config.cfg_data_bits``) fixes the data digits; by default the widest word decides."""
    path = Path(path)
    if data_bits is None:
        data_bits = max((max(d.bit_length() for _, d in words) if words else 0), 1)
    digits = -(-data_bits // 4)
    lines = []
    for addr, value in words:
        if not 0 <= addr < 1 << 32 or not 0 <= value < 1 << data_bits:
            raise SnnCosimError(f"configuration word ({addr:#x}, {value:#x}) does not fit 32 address bits and "
                                f"{data_bits} data bits")
        lines.append(f"{addr:08X} {value:0{digits}X}\n")
    write_text_atomic(path, "".join(lines))
    return path


def read_config_hex(path: str | os.PathLike) -> list[tuple[int, int]]:
    """Parse a file written by :func:`write_config_hex` back into ``(addr, data)`` pairs."""
    words = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SnnCosimError(f"{path}:{number}: expected 'ADDR DATA' in hex, got {line!r}")
        try:
            words.append((int(fields[0], 16), int(fields[1], 16)))
        except ValueError:
            raise SnnCosimError(f"{path}:{number}: not hexadecimal: {line!r}") from None
    return words


def address_runs(words: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(first address, length)`` of each maximal run of consecutive addresses in ``words``, in order: the FPGA top
    (``snn_top.v``) rebuilds the addresses from this short table and keeps only the data words in block RAM."""
    runs: list[list[int]] = []
    for addr, _ in words:
        if runs and addr == runs[-1][0] + runs[-1][1]:
            runs[-1][1] += 1
        else:
            runs.append([addr, 1])
    return [(first, length) for first, length in runs]


def write_top_roms(words: list[tuple[int, int]], folder: str | os.PathLike, data_bits: int) -> tuple[Path, Path]:
    """The FPGA top's ROM files in ``folder``: ``config_data.hex`` (one data word per line, in write order) and
    ``config_runs.hex`` (one run per line: ``(length − 1) << 32 | first address``), both read with ``$readmemh``."""
    folder = Path(folder)
    data_digits = -(-data_bits // 4)
    run_digits = -(-(32 + run_length_bits(len(words))) // 4)
    data = write_text_atomic(folder / "config_data.hex", "".join(f"{value:0{data_digits}X}\n" for _, value in words))
    runs = write_text_atomic(folder / "config_runs.hex", "".join(
        f"{(length - 1) << 32 | first:0{run_digits}X}\n" for first, length in address_runs(words)))
    return data, runs


def run_length_bits(n_words: int) -> int:
    """Bits of a run's ``length − 1`` (and of the top's data-word pointer) for ``n_words`` writes."""
    return max(1, (n_words - 1).bit_length())
