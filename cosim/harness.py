"""The Verilog test harness ``tb_top`` and the text files it exchanges with Python.

``tb_top`` (``hdl/harness.sv.tmpl``, rendered for the engine's widths) instantiates ``snn_engine``, makes the clock
itself (Verilator ``--timing``), streams the configuration words and the input spike words from text files and
writes every record beat, summary beat and per-image result to a trace text file. This module renders the
template, writes the two input files and parses the trace file back into arrays (vectorised: a run of thousands
of images parses in seconds).

File formats (all hex words are fixed-width, most significant digit first):

* configuration: ``ADDR DATA`` per line (``ADDR`` 32 bits, ``DATA`` ``cfg_data_bits``);
* stimulus: a header ``N T WORDS_PER_STEP``, then ``N·T·WORDS_PER_STEP`` lines of one ``P``-bit word each,
  image-major, then step, then word; bit ``p`` of word ``w`` is input neuron ``w·P + p``;
* trace: ``R image step layer group spikes membranes`` / ``S image step layer counters`` /
  ``D image image_cycles prediction harness_cycles total_counters`` / ``E code ...`` (see the template header).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from golden.errors import SnnCosimError, WidthError
from golden.trace import COUNTER_NAMES

N_COUNTERS = len(COUNTER_NAMES)
TOPLEVEL = "tb_top"
ENGINE_MODULE = "snn_engine"

ERROR_MESSAGES = {
    1: "the harness could not open its job files",
    2: "the stimulus file has a bad header",
    3: "the stimulus file ended before the engine had taken every input word",
    4: "an image did not finish within the watchdog limit (the engine hangs)",
    5: "the engine signalled done before it had taken every input word of the image",
}


@dataclass(frozen=True)
class HarnessParams:
    """Widths the harness is generated for (those of :class:`hw.config.EngineConfig`)."""

    lanes: int
    membrane_bits: int
    counter_bits: int
    cfg_data_bits: int

    def __post_init__(self) -> None:
        for name in ("lanes", "membrane_bits", "counter_bits", "cfg_data_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WidthError(f"harness {name} must be a positive integer, got {value!r}")
        if self.membrane_bits > 62 or self.counter_bits > 63:
            raise WidthError("harness: membrane_bits must be <= 62 and counter_bits <= 63 (int64 traces)")

    @classmethod
    def from_engine_config(cls, config) -> "HarnessParams":
        return cls(lanes=int(config.lanes), membrane_bits=int(config.membrane_bits),
                   counter_bits=int(config.counter_bits), cfg_data_bits=int(config.cfg_data_bits))


CLOCKS = {
    # one time slot per cycle: rising edge, then (after a #0) falling edge at the same time
    "fast": "  always begin #10 clk = 1'b1; #0 clk = 1'b0; end",
    # the usual clock, for waveforms
    "waves": "  always #5 clk = ~clk;",
}


def harness_verilog(params: HarnessParams, *, waves: bool = False) -> str:
    """The SystemVerilog text of ``tb_top`` for ``params``; ``waves`` selects the 50 % duty-cycle clock."""
    text = resources.files("cosim.hdl").joinpath("harness.sv.tmpl").read_text()
    style = "waves" if waves else "fast"
    for key, value in {"P": params.lanes, "M": params.membrane_bits, "W": params.counter_bits,
                       "CFGW": params.cfg_data_bits, "CLOCK": CLOCKS[style], "CLOCK_STYLE": style}.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise SnnCosimError("harness template has an unknown placeholder")
    return text


def _write_if_changed(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def write_harness(params: HarnessParams, path: str | os.PathLike, *, waves: bool = False) -> Path:
    """Write ``tb_top`` to ``path`` (untouched when identical, so builds keyed on it stay cached)."""
    return _write_if_changed(Path(path), harness_verilog(params, waves=waves))


def content_hash(*texts: str | bytes) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- hex helpers
def _hex_digits(bits: int) -> int:
    return (bits + 3) // 4


def format_hex_words(values: np.ndarray, bits: int) -> list[str]:
    """Fixed-width hex strings of the bit rows ``values`` (``bool [n, bits]``, column k = bit k)."""
    values = np.asarray(values, dtype=bool)
    n = values.shape[0]
    n_bytes = (bits + 7) // 8
    padded = np.zeros((n, n_bytes * 8), dtype=bool)
    padded[:, :bits] = values
    packed = np.packbits(padded, axis=1, bitorder="little")[:, ::-1]  # most significant byte first
    text = packed.tobytes().hex()
    width = 2 * n_bytes
    digits = _hex_digits(bits)
    return [text[i * width + width - digits:(i + 1) * width] for i in range(n)]


def unpack_hex_fields(words: Sequence[str], field_bits: int, n_fields: int, signed: bool) -> np.ndarray:
    """Parse fixed-width hex words into ``int64 [len(words), n_fields]``: field k is bits
    ``[k·field_bits +: field_bits]``. Raises :class:`ValueError` on non-hex text (an X/Z printed by a simulator)."""
    n = len(words)
    out = np.empty((n, n_fields), dtype=np.int64)
    if n == 0:
        return out
    total_bits = field_bits * n_fields
    digits = _hex_digits(total_bits)
    if digits % 2:
        digits += 1
    n_bytes = digits // 2
    chunk = max(1, (1 << 23) // max(1, n_bytes * 8))
    weights = (np.uint64(1) << np.arange(field_bits, dtype=np.uint64))
    for start in range(0, n, chunk):
        part = words[start:start + chunk]
        text = "".join(word.rjust(digits, "0") for word in part)
        if len(text) != digits * len(part):
            raise ValueError("hex word wider than its field")
        raw = np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(len(part), n_bytes)
        bits = np.unpackbits(raw[:, ::-1], axis=1, bitorder="little")[:, :total_bits]
        bits = bits.reshape(len(part), n_fields, field_bits).astype(np.uint64)
        values = (bits * weights).sum(axis=-1, dtype=np.uint64)
        if signed:
            values = values.astype(np.int64)
            values = np.where(bits[..., -1] == 1, values - (np.int64(1) << np.int64(field_bits)), values) \
                if field_bits < 64 else values
        out[start:start + len(part)] = values.astype(np.int64)
    return out


# ----------------------------------------------------------------------------------------------- input files
def write_config_file(words: Iterable[tuple[int, int]], path: str | os.PathLike, cfg_data_bits: int) -> int:
    """Write configuration ``(address, data)`` words; returns how many. Data are two's complement in
    ``cfg_data_bits`` (negative data are wrapped)."""
    mask = (1 << cfg_data_bits) - 1
    digits = _hex_digits(cfg_data_bits)
    lines = []
    for address, data in words:
        address, data = int(address), int(data)
        if not 0 <= address < (1 << 32):
            raise WidthError(f"configuration address {address:#x} does not fit 32 bits")
        if data < -(1 << (cfg_data_bits - 1)) or data > mask:
            raise WidthError(f"configuration data {data:#x} does not fit cfg_data_bits={cfg_data_bits}")
        lines.append(f"{address:08x} {data & mask:0{digits}x}\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return len(lines)


def write_stimulus_file(input_spikes: np.ndarray, lanes: int, path: str | os.PathLike) -> int:
    """Write ``bool [N, T, n_0]`` input spikes as ``W_1 = ceil(n_0 / P)`` words per step; returns W_1."""
    spikes = np.asarray(input_spikes, dtype=bool)
    if spikes.ndim != 3:
        raise SnnCosimError(f"input spikes must have shape [N, T, n_inputs], got {spikes.shape}")
    n, t, n_in = spikes.shape
    words_per_step = (n_in + lanes - 1) // lanes
    padded = np.zeros((n, t, words_per_step * lanes), dtype=bool)
    padded[..., :n_in] = spikes
    rows = padded.reshape(n * t * words_per_step, lanes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(f"{n} {t} {words_per_step}\n")
        chunk = 1 << 16
        for start in range(0, rows.shape[0], chunk):
            handle.write("\n".join(format_hex_words(rows[start:start + chunk], lanes)))
            handle.write("\n")
    return words_per_step


# ----------------------------------------------------------------------------------------------- trace file
@dataclass
class HarnessTrace:
    """The trace text file, parsed. Arrays are indexed like :class:`golden.trace.Trace`; ``problems`` lists
    every inconsistency of the RTL's own output (missing/duplicate beats, totals that are not the sum of the
    per-step counters, ...): each one is an RTL bug report."""

    spikes: list[np.ndarray]
    membranes: list[np.ndarray]
    counters: np.ndarray
    image_cycles: np.ndarray
    predictions: np.ndarray
    harness_cycles: np.ndarray
    total_counters: np.ndarray
    images_done: int
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def parse_trace_file(path: str | os.PathLike, params: HarnessParams, layer_sizes: Sequence[int], n_images: int,
                     n_steps: int) -> HarnessTrace:
    """Parse the harness's trace text file for a network of ``layer_sizes`` (``[n_0, ..., n_L]``)."""
    path = Path(path)
    if not path.is_file():
        raise SnnCosimError(f"{path}: the RTL run wrote no trace file")
    lanes, m_bits, w_bits = params.lanes, params.membrane_bits, params.counter_bits
    sizes = list(layer_sizes)
    n_layers = len(sizes) - 1
    groups = [(sizes[l] + lanes - 1) // lanes for l in range(1, n_layers + 1)]
    rec: list[list[str]] = []
    summ: list[list[str]] = []
    done: list[list[str]] = []
    problems: list[str] = []
    error = None
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            kind = line[:1]
            if kind == "R":
                rec.append(line.split())
            elif kind == "S":
                summ.append(line.split())
            elif kind == "D":
                done.append(line.split())
            elif kind == "E":
                parts = line.split()
                code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                error = f"{ERROR_MESSAGES.get(code, f'harness error {code}')} ({' '.join(parts[2:])})"
            elif line.strip():
                problems.append(f"{path.name}:{number}: unreadable line {line.strip()[:60]!r}")

    spikes = [np.zeros((n_images, n_steps, g * lanes), dtype=bool) for g in groups]
    membranes = [np.zeros((n_images, n_steps, g * lanes), dtype=np.int64) for g in groups]
    counters = np.zeros((n_images, n_steps, n_layers, N_COUNTERS), dtype=np.int64)
    image_cycles = np.zeros(n_images, dtype=np.int64)
    predictions = np.full(n_images, -1, dtype=np.int64)
    harness_cycles = np.zeros(n_images, dtype=np.int64)
    total_counters = np.zeros((n_images, N_COUNTERS), dtype=np.int64)

    def columns(rows: list[list[str]], count: int, what: str) -> np.ndarray:
        try:
            return np.array([[int(x) for x in row[1:1 + count]] for row in rows], dtype=np.int64).reshape(-1, count)
        except (ValueError, IndexError):
            raise SnnCosimError(f"{path}: malformed {what} line in the RTL trace") from None

    def hexcol(rows: list[list[str]], col: int, bits: int, fields: int, signed: bool, what: str) -> np.ndarray:
        try:
            return unpack_hex_fields([row[col] for row in rows], bits, fields, signed)
        except (ValueError, IndexError):
            raise SnnCosimError(f"{path}: {what} of the RTL trace is not a hex word (X or Z bits?)") from None

    # record beats: one per (image, step, layer, group)
    if rec:
        idx = columns(rec, 4, "record")
        img, step, layer, group = idx.T
        ok = (img >= 0) & (img < n_images) & (step >= 1) & (step <= n_steps) & (layer >= 1) & (layer <= n_layers)
        ok &= group >= 0
        ok[ok] &= group[ok] < np.array(groups)[layer[ok] - 1]
        if not ok.all():
            j = int(np.argmin(ok))
            problems.append(f"record beat out of range: image {img[j]} step {step[j]} layer {layer[j]} "
                            f"group {group[j]}")
        spk = hexcol(rec, 5, 1, lanes, False, "rec_spikes")
        mem = hexcol(rec, 6, m_bits, lanes, True, "rec_membranes")
        seen = [np.zeros((n_images, n_steps, g), dtype=np.int64) for g in groups]
        for l in range(n_layers):
            sel = ok & (layer == l + 1)
            i, s, g = img[sel], step[sel] - 1, group[sel]
            np.add.at(seen[l], (i, s, g), 1)
            cols = g[:, None] * lanes + np.arange(lanes)[None, :]
            spikes[l][i[:, None], s[:, None], cols] = spk[sel].astype(bool)
            membranes[l][i[:, None], s[:, None], cols] = mem[sel]
        _check_counts(seen, "record beat", problems, "image {} step {} layer {} group {}", n_images)
    else:
        seen = [np.zeros((n_images, n_steps, g), dtype=np.int64) for g in groups]
        _check_counts(seen, "record beat", problems, "image {} step {} layer {} group {}", n_images)

    # summary beats: one per (image, step, layer)
    seen_s = np.zeros((n_images, n_steps, n_layers), dtype=np.int64)
    if summ:
        idx = columns(summ, 3, "summary")
        img, step, layer = idx.T
        ok = (img >= 0) & (img < n_images) & (step >= 1) & (step <= n_steps) & (layer >= 1) & (layer <= n_layers)
        if not ok.all():
            j = int(np.argmin(ok))
            problems.append(f"summary beat out of range: image {img[j]} step {step[j]} layer {layer[j]}")
        cnt = hexcol(summ, 4, w_bits, N_COUNTERS, False, "sum_counters")
        np.add.at(seen_s, (img[ok], step[ok] - 1, layer[ok] - 1), 1)
        counters[img[ok], step[ok] - 1, layer[ok] - 1] = cnt[ok]
    _check_counts([seen_s], "summary beat", problems,
                  "image {} step {} layer {}", n_images, layer_offset=True)

    # per-image results
    seen_d = np.zeros(n_images, dtype=np.int64)
    if done:
        idx = columns(done, 4, "done")
        img = idx[:, 0]
        ok = (img >= 0) & (img < n_images)
        tot = hexcol(done, 5, w_bits, N_COUNTERS, False, "total_counters")
        np.add.at(seen_d, img[ok], 1)
        image_cycles[img[ok]] = idx[ok, 1]
        predictions[img[ok]] = idx[ok, 2]
        harness_cycles[img[ok]] = idx[ok, 3]
        total_counters[img[ok]] = tot[ok]
    images_done = int((seen_d > 0).sum())
    if error is None:
        missing = np.flatnonzero(seen_d == 0)
        if missing.size:
            problems.append(f"image {int(missing[0])} has no done beat")
        dup = np.flatnonzero(seen_d > 1)
        if dup.size:
            problems.append(f"image {int(dup[0])} signalled done {int(seen_d[dup[0]])} times")
        # the hardware totals must be the sums of the per-(step, layer) counters
        sums = counters.sum(axis=(1, 2))
        bad = np.argwhere((sums != total_counters) & (seen_d > 0)[:, None])
        if bad.size:
            i, k = (int(v) for v in bad[0])
            problems.append(f"image {i}: total counter {COUNTER_NAMES[k]}={int(total_counters[i, k])} but its "
                            f"per-step sum is {int(sums[i, k])}")
        short = (image_cycles < counters[..., COUNTER_NAMES.index("cycles")].sum(axis=(1, 2))) & (seen_d > 0)
        if short.any():
            i = int(np.argmax(short))
            problems.append(f"image {i}: image_cycles {int(image_cycles[i])} is less than the sum of its "
                            f"per-step cycles")
    return HarnessTrace(
        spikes=[s[..., :n] for s, n in zip(spikes, sizes[1:])],
        membranes=[m[..., :n] for m, n in zip(membranes, sizes[1:])],
        counters=counters, image_cycles=image_cycles, predictions=predictions, harness_cycles=harness_cycles,
        total_counters=total_counters, images_done=images_done, error=error, problems=problems)


def _check_counts(seen: list[np.ndarray], what: str, problems: list[str], where: str, n_images: int,
                  layer_offset: bool = False) -> None:
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
