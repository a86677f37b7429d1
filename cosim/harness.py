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

FS builds (``EngineConfig.fs_shift_bits > 0``) get a harness with the engine's ``n_images`` / ``pred_valid`` /
``pred_image`` ports (the template's ``// @if FS`` sections; other builds render exactly as before): one ``start``
streams up to ``+snn_fs_chunk=C`` images, the stimulus holds each image's K window-1 steps (header ``N K W_1``),
``image`` in the R/S/D lines is the index of the stream's first image, steps are global, and every prediction beat
adds ``P image pred_image prediction cycles``. :func:`parse_fs_trace_file` maps the beats back to per-image
arrays of the golden form ``[N, L·K, ...]`` (docs/hardware.md, "FS neurons and the image stream").
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.digest import live_lanes
from golden.core.errors import SnnCosimError, WidthError
from golden.core.files import write_text_atomic
from hw.ports import engine_ports

from .beats import RecordBeats, SummaryBeats, decode_beats, decode_fs_beats

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
    fs: bool = False  # FS build: the n_images / pred_valid / pred_image ports and the image stream
    # per layer 1..L, the lanes of its record beats that hold a neuron (bit g·P + p; golden.core.digest.live_lanes):
    # the digest counts the others as 0. Empty: every lane counts (a harness not made for one engine)
    live: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("lanes", "membrane_bits", "counter_bits", "cfg_data_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WidthError(f"harness {name} must be a positive integer, got {value!r}")
        if not isinstance(self.fs, bool):
            raise WidthError(f"harness fs must be True or False, got {self.fs!r}")
        if self.membrane_bits > 62 or self.counter_bits > 63:
            raise WidthError("harness: membrane_bits must be <= 62 and counter_bits <= 63 (int64 traces)")

    @classmethod
    def from_engine_config(cls, config) -> "HarnessParams":
        orders = [config.hardware_order(l) for l in range(1, config.n_layers + 1)] if config.spatial else None
        masks = tuple(int("".join("1" if n >= 0 else "0" for n in order[::-1]) or "0", 2)
                      for order in live_lanes(config.layer_sizes, int(config.lanes), orders))
        return cls(lanes=int(config.lanes), membrane_bits=int(config.membrane_bits),
                   counter_bits=int(config.counter_bits), cfg_data_bits=int(config.cfg_data_bits),
                   fs=bool(config.fs), live=masks)

    def live_table(self) -> tuple[int, int, str]:
        """``(L, LIVE_BITS, entries)`` of the template's ``LIVE`` table (every lane live when ``live`` is empty)."""
        masks = self.live or ((1 << 64) - 1,)
        bits = max(64, max(m.bit_length() for m in masks))
        return len(masks), bits, ", ".join(f"{bits}'h{m:x}" for m in masks)


CLOCKS = {
    # no clock here: clk is an input of tb_top that cosim/hdl/clock_main.cpp (the simulation's main) toggles, one
    # cycle per time slot, without --timing. The default: ~1.5x faster than "fast" (scripts/bench_scale.py --clocks)
    "cpp": "  // clk is the input port toggled by the simulation's C++ main (cosim/hdl/clock_main.cpp)",
    # one time slot per cycle: rising edge, then (after a #0) falling edge at the same time (--timing)
    "fast": "  logic clk = 1'b0;\n  always begin #10 clk = 1'b1; #0 clk = 1'b0; end",
    # the usual clock, for waveforms (--timing)
    "waves": "  logic clk = 1'b0;\n  always #5 clk = ~clk;",
    # no clock here: cocotb's GPI clock drives clk (built without --timing). Measured 3.3x slower than "fast"
    # (scripts/bench_scale.py --clocks); kept as the comparison the benchmark prints, not for users
    "gpi": "  logic clk = 1'b0;\n  // clk is driven from outside (cocotb's GPI clock, cosim.tb_engine)",
}

# where the clock lives: the C++ main ("cpp", the default), the harness ("verilog", --timing) or cocotb's GPI clock
HARNESS_CLOCKS = ("cpp", "verilog", "gpi")


def _select_sections(text: str, flags: dict[str, bool]) -> str:
    """Keep the lines of the template's ``// @if NAME`` / ``// @else`` / ``// @endif`` sections (whole lines, not
    nested) that ``flags[NAME]`` selects; the marker lines themselves go."""
    out, mode = [], None  # mode: None outside a section, else True/False = keep the current branch
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker.startswith("// @if "):
            name = marker[len("// @if "):].strip()
            if mode is not None or name not in flags:
                raise SnnCosimError(f"harness template line {number}: bad section {marker!r}")
            mode = bool(flags[name])
        elif marker == "// @else":
            if mode is None:
                raise SnnCosimError(f"harness template line {number}: @else outside a section")
            mode = not mode
        elif marker == "// @endif":
            if mode is None:
                raise SnnCosimError(f"harness template line {number}: @endif outside a section")
            mode = None
        elif mode is None or mode:
            out.append(line)
    if mode is not None:
        raise SnnCosimError("harness template: a section is not closed")
    return "".join(out)


# The harness's own name for an engine port whose name its sequencer already uses for something else
_SIGNAL_NAMES = {"n_images": "stream_images"}  # n_images: the job's images; stream_images: images of this start


def _engine_signals(params: HarnessParams) -> tuple[str, str]:
    """The harness's declarations of one signal per port of ``snn_engine`` (:func:`hw.ports.engine_ports`; inputs
    are ``logic`` driven by the sequencer, 0 at time 0, outputs ``wire``) and the instance's port connections."""
    ports = engine_ports(params)
    declarations, connections = [], []
    for port in ports:
        signal = _SIGNAL_NAMES.get(port.name, port.name)
        kind = "logic" if port.direction == "in" else "wire "
        width = f"[{port.width - 1}:0]" if port.width > 1 else ""
        init = " = '0" if port.direction == "in" else ""
        note = f"  // port {port.name}" if signal != port.name else ""
        declarations.append(f"  {kind} {width:<10} {signal}{init};{note}")
        connections.append(f"    .{port.name}({signal})")
    return "\n".join(declarations), ",\n".join(connections)


def clock_main_path() -> Path:
    """cosim/hdl/clock_main.cpp: the simulation main of "cpp"-clock builds (it toggles ``clk``)."""
    return Path(str(resources.files("cosim.hdl").joinpath("clock_main.cpp")))


def harness_clock_style(clock: str, waves: bool = False) -> str:
    """The :data:`CLOCKS` entry of a harness whose clock lives at ``clock`` (:data:`HARNESS_CLOCKS`): waveforms
    take the Verilog 50 % duty-cycle clock whatever ``clock`` says, so that both edges show."""
    if clock not in HARNESS_CLOCKS:
        raise SnnCosimError(f"clock must be one of {', '.join(HARNESS_CLOCKS)}, got {clock!r}")
    if waves:
        return "waves"
    return {"cpp": "cpp", "verilog": "fast", "gpi": "gpi"}[clock]


def harness_verilog(params: HarnessParams, *, waves: bool = False, clock: str = "cpp") -> str:
    """The SystemVerilog text of ``tb_top`` for ``params``: ``clock = "cpp"`` (an input clk that the C++ main
    cosim/hdl/clock_main.cpp toggles), ``"verilog"`` (the harness's own clock, --timing) or ``"gpi"`` (cocotb's GPI
    clock); ``waves`` selects the Verilog 50 % duty-cycle clock (:func:`harness_clock_style`). FS builds
    (``params.fs``) get the template's ``// @if FS`` sections; other builds render as if they did not exist."""
    style = harness_clock_style(clock, waves)
    text = resources.files("cosim.hdl").joinpath("harness.sv.tmpl").read_text()
    text = _select_sections(text, {"FS": params.fs})
    signals, connections = _engine_signals(params)
    n_layers, live_bits, live = params.live_table()
    for key, value in {"L": n_layers, "LIVE_BITS": live_bits, "LIVE": live, "P": params.lanes,
                       "M": params.membrane_bits, "W": params.counter_bits,
                       "CFGW": params.cfg_data_bits, "CLOCK": CLOCKS[style], "CLOCK_STYLE": style,
                       "PORTS": "(input logic clk)" if style == "cpp" else "",
                       "ENGINE_SIGNALS": signals, "ENGINE_CONNECTIONS": connections}.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise SnnCosimError("harness template has an unknown placeholder")
    return text


def _write_if_changed(path: Path, text: str) -> Path:
    if not path.is_file() or path.read_text() != text:
        write_text_atomic(path, text)
    return path


def content_hash(*texts: str | bytes) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- hex helpers
def _hex_digits(bits: int) -> int:
    return (bits + 3) // 4


_HEX_ASCII = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_lines(values: np.ndarray, bits: int) -> bytes:
    """The bit rows ``values`` (``bool [n, bits]``, column k = bit k) as fixed-width lowercase hex lines, each
    ending in a newline, as one bytes object (vectorised: ~50x faster than formatting row by row)."""
    values = np.asarray(values, dtype=bool)
    n = values.shape[0]
    n_bytes = (bits + 7) // 8
    padded = np.zeros((n, n_bytes * 8), dtype=bool)
    padded[:, :bits] = values
    packed = np.packbits(padded, axis=1, bitorder="little")[:, ::-1]  # most significant byte first
    digits = _hex_digits(bits)
    text = np.empty((n, 2 * n_bytes + 1), dtype=np.uint8)
    text[:, 0:2 * n_bytes:2] = _HEX_ASCII[packed >> 4]
    text[:, 1:2 * n_bytes:2] = _HEX_ASCII[packed & 15]
    text[:, -1] = ord("\n")
    return text[:, 2 * n_bytes - digits:].tobytes()


def format_hex_words(values: np.ndarray, bits: int) -> list[str]:
    """Fixed-width hex strings of the bit rows ``values`` (``bool [n, bits]``, column k = bit k)."""
    return hex_lines(values, bits).decode("ascii").splitlines()


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
def write_stimulus_file(input_spikes: np.ndarray, lanes: int, path: str | os.PathLike,
                        order: np.ndarray | None = None) -> int:
    """Write ``bool [N, T, n_0]`` input spikes as ``W_1 = ceil(n_0 / P)`` words per step; returns W_1. ``order``
    (``EngineConfig.hardware_order(0)``, for a conv/pool layer 1) gives the input neuron of every bit instead
    (−1: padding lane, 0)."""
    spikes = np.asarray(input_spikes, dtype=bool)
    if spikes.ndim != 3:
        raise SnnCosimError(f"input spikes must have shape [N, T, n_inputs], got {spikes.shape}")
    n, t, n_in = spikes.shape
    if order is not None:
        order = np.asarray(order, dtype=np.int64)
        words_per_step = len(order) // lanes
        padded = np.ascontiguousarray(np.where(order >= 0, spikes[..., np.maximum(order, 0)], False))
    else:
        words_per_step = (n_in + lanes - 1) // lanes
        padded = np.zeros((n, t, words_per_step * lanes), dtype=bool)
        padded[..., :n_in] = spikes
    rows = padded.reshape(n * t * words_per_step, lanes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(f"{n} {t} {words_per_step}\n".encode())
        chunk = 1 << 18
        for start in range(0, rows.shape[0], chunk):
            handle.write(hex_lines(rows[start:start + chunk], lanes))
    return words_per_step


# ----------------------------------------------------------------------------------------------- trace file
@dataclass
class HarnessTrace:
    """The trace text file, parsed. Arrays are indexed like :class:`golden.core.trace.Trace`; ``problems`` lists
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
    fs: "FsStreams | None" = None  # FS runs: the streams (one per start) and the prediction beats
    digests: np.ndarray | None = None  # per-step runs: uint64 [N], each image's H line (0 where missing)


@dataclass
class FsStreams:
    """What an FS run's starts reported. Stream k covers images ``bases[k] .. bases[k] + counts[k] − 1``;
    ``totals [S, 9]``, ``cycles [S]`` (the engine's ``image_cycles`` at ``done``: the whole stream, one C_IMAGE),
    ``predictions [S]`` (the last image's) and ``harness_cycles [S]`` come from its ``done``; ``expected_cycles
    [S]`` is ``golden.core.cycle_model.fs_stream_cycles`` of the per-image cycles the beats gave and
    ``pipelined_cycles [S]`` the layer-parallel bound of the same stream; ``pred_cycles [N]`` is the cycle of each
    image's prediction beat counted from its stream's start (−1 when missing)."""

    phases: int
    bases: np.ndarray
    counts: np.ndarray
    totals: np.ndarray
    cycles: np.ndarray
    predictions: np.ndarray
    harness_cycles: np.ndarray
    expected_cycles: np.ndarray
    pipelined_cycles: np.ndarray
    pred_cycles: np.ndarray
    digests: np.ndarray | None = None  # uint64 [S]: each stream's H line (docs/spec.md "Per-image digest", FS)


def _read_trace_lines(path: Path, with_predictions: bool = False):
    """``(lines by kind, error, problems)`` of a trace file; kinds R, S, D (and P for FS runs)."""
    lines: dict[str, list[list[str]]] = {"R": [], "S": [], "D": [], "P": [], "H": []}
    accepted = "RSDPH" if with_predictions else "RSDH"
    problems: list[str] = []
    error = None
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            kind = line[:1]
            if kind and kind in accepted:
                lines[kind].append(line.split())
            elif kind == "E":
                parts = line.split()
                code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                error = f"{ERROR_MESSAGES.get(code, f'harness error {code}')} ({' '.join(parts[2:])})"
            elif line.strip():
                problems.append(f"{path.name}:{number}: unreadable line {line.strip()[:60]!r}")
    return lines, error, problems


def _int_columns(path: Path, rows: list[list[str]], count: int, what: str) -> np.ndarray:
    try:
        return np.array([[int(x) for x in row[1:1 + count]] for row in rows], dtype=np.int64).reshape(-1, count)
    except (ValueError, IndexError):
        raise SnnCosimError(f"{path}: malformed {what} line in the RTL trace") from None


def _hex_column(path: Path, rows: list[list[str]], col: int, bits: int, fields: int, signed: bool,
                what: str) -> np.ndarray:
    try:
        return unpack_hex_fields([row[col] for row in rows], bits, fields, signed)
    except (ValueError, IndexError):
        raise SnnCosimError(f"{path}: {what} of the RTL trace is not a hex word (X or Z bits?)") from None


def _record_beats(path: Path, rows: list[list[str]], params: HarnessParams) -> RecordBeats:
    """The ``R image step layer group spikes membranes`` lines as :class:`cosim.beats.RecordBeats`."""
    if not rows:
        return RecordBeats(*(np.zeros(0, dtype=np.int64),) * 4, np.zeros((0, params.lanes), dtype=np.int64),
                           np.zeros((0, params.lanes), dtype=np.int64))
    idx = _int_columns(path, rows, 4, "record")
    return RecordBeats(*idx.T, _hex_column(path, rows, 5, 1, params.lanes, False, "rec_spikes"),
                       _hex_column(path, rows, 6, params.membrane_bits, params.lanes, True, "rec_membranes"))


def _summary_beats(path: Path, rows: list[list[str]], params: HarnessParams) -> SummaryBeats:
    """The ``S image step layer counters`` lines as :class:`cosim.beats.SummaryBeats`."""
    if not rows:
        return SummaryBeats(*(np.zeros(0, dtype=np.int64),) * 3, np.zeros((0, N_COUNTERS), dtype=np.int64))
    idx = _int_columns(path, rows, 3, "summary")
    return SummaryBeats(*idx.T, _hex_column(path, rows, 4, params.counter_bits, N_COUNTERS, False, "sum_counters"))


def parse_trace_file(path: str | os.PathLike, params: HarnessParams, layer_sizes: Sequence[int], n_images: int,
                     n_steps: int, orders: Sequence[np.ndarray] | None = None) -> HarnessTrace:
    """Parse the harness's trace text file for a network of ``layer_sizes`` (``[n_0, ..., n_L]``). ``orders``
    (``[EngineConfig.hardware_order(l) for l = 1..L]``, for networks with conv/pool layers) maps the bit
    ``group·P + p`` of each layer's record beats to its neuron (torch order; −1 padding)."""
    path = Path(path)
    if not path.is_file():
        raise SnnCosimError(f"{path}: the RTL run wrote no trace file")
    lanes, w_bits = params.lanes, params.counter_bits
    sizes = list(layer_sizes)
    lines, error, problems = _read_trace_lines(path)
    rec, summ, done = lines["R"], lines["S"], lines["D"]
    beats = decode_beats(_record_beats(path, rec, params), _summary_beats(path, summ, params), sizes, lanes,
                         n_images, n_steps, orders, problems)
    counters = beats.counters
    image_cycles = np.zeros(n_images, dtype=np.int64)
    predictions = np.full(n_images, -1, dtype=np.int64)
    harness_cycles = np.zeros(n_images, dtype=np.int64)
    total_counters = np.zeros((n_images, N_COUNTERS), dtype=np.int64)

    def columns(rows: list[list[str]], count: int, what: str) -> np.ndarray:
        return _int_columns(path, rows, count, what)

    def hexcol(rows: list[list[str]], col: int, bits: int, fields: int, signed: bool, what: str) -> np.ndarray:
        return _hex_column(path, rows, col, bits, fields, signed, what)

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
    digests = np.zeros(n_images, dtype=np.uint64)
    for row in lines["H"]:
        if len(row) == 3 and row[1].isdigit() and 0 <= int(row[1]) < n_images:
            digests[int(row[1])] = np.uint64(int(row[2], 16))
    return HarnessTrace(
        spikes=beats.spikes, membranes=beats.membranes, counters=counters, image_cycles=image_cycles,
        predictions=predictions, harness_cycles=harness_cycles, total_counters=total_counters,
        images_done=images_done, error=error, problems=problems, digests=digests)


@dataclass
class DigestTrace:
    """A trace file written with ``+snn_digest_only`` (D and H lines only), parsed: per image its ``image_cycles``,
    ``predictions``, ``harness_cycles``, ``total_counters [N, 9]`` and ``digests`` (``uint64``, docs/spec.md
    "Per-image digest"); ``seen [N]`` says which images had both lines."""

    image_cycles: np.ndarray
    predictions: np.ndarray
    harness_cycles: np.ndarray
    total_counters: np.ndarray
    digests: np.ndarray
    seen: np.ndarray
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def parse_digest_file(path: str | os.PathLike, params: HarnessParams, n_images: int) -> DigestTrace:
    """Parse the D and H lines of a digest-only trace file of ``n_images`` images (R/S lines, if any, are not
    decoded); a missing or repeated D or H line of an image is listed in ``problems``."""
    path = Path(path)
    if not path.is_file():
        raise SnnCosimError(f"{path}: the RTL run wrote no trace file")
    lines, error, problems = _read_trace_lines(path)
    out = DigestTrace(np.zeros(n_images, dtype=np.int64), np.full(n_images, -1, dtype=np.int64),
                      np.zeros(n_images, dtype=np.int64), np.zeros((n_images, N_COUNTERS), dtype=np.int64),
                      np.zeros(n_images, dtype=np.uint64), np.zeros(n_images, dtype=bool), error, problems)
    seen = {kind: np.zeros(n_images, dtype=np.int64) for kind in "DH"}
    if lines["D"]:
        idx = _int_columns(path, lines["D"], 4, "done")
        ok = (idx[:, 0] >= 0) & (idx[:, 0] < n_images)
        img = idx[ok, 0]
        np.add.at(seen["D"], img, 1)
        out.image_cycles[img], out.predictions[img], out.harness_cycles[img] = idx[ok, 1], idx[ok, 2], idx[ok, 3]
        out.total_counters[img] = _hex_column(path, lines["D"], 5, params.counter_bits, N_COUNTERS, False,
                                              "total_counters")[ok]
    for row in lines["H"]:
        try:
            i, value = int(row[1]), int(row[2], 16)
        except (ValueError, IndexError):
            raise SnnCosimError(f"{path}: malformed digest line in the RTL trace") from None
        if 0 <= i < n_images:
            seen["H"][i] += 1
            out.digests[i] = np.uint64(value)
    if error is None:
        for kind, what in (("D", "done"), ("H", "digest")):
            bad = np.flatnonzero(seen[kind] != 1)
            if bad.size:
                i = int(bad[0])
                problems.append(f"image {i} has {int(seen[kind][i])} {what} lines (expected 1)")
    out.seen = (seen["D"] == 1) & (seen["H"] == 1)
    return out


# ----------------------------------------------------------------------------------------------- FS streams
def fs_stream_layout(n_images: int, images_per_start: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bases, counts)`` of the starts that stream ``n_images`` FS images, ``images_per_start`` at most per start
    (the harness's ``+snn_fs_chunk``): start k covers images ``bases[k] .. bases[k] + counts[k] − 1``."""
    if n_images < 1 or images_per_start < 1:
        raise SnnCosimError(f"an FS stream needs at least one image per start, got {n_images} images, "
                            f"{images_per_start} per start")
    bases = np.arange(0, n_images, images_per_start, dtype=np.int64)
    counts = np.minimum(images_per_start, n_images - bases)
    return bases, counts


def _fs_prediction_lines(path: Path, rows: list[list[str]], bases: np.ndarray, counts: np.ndarray,
                         problems: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(predictions, pred_cycles, seen)`` per image ``[N]`` from the ``P base index prediction cycles`` lines (one
    per image, in order within each stream; ``problems`` gets a beat beyond its stream and beats out of order)."""
    n_streams, n_images = len(bases), int(counts.sum())
    predictions = np.full(n_images, -1, dtype=np.int64)
    pred_cycles = np.full(n_images, -1, dtype=np.int64)
    seen = np.zeros(n_images, dtype=np.int64)
    if not rows:
        return predictions, pred_cycles, seen
    idx = _int_columns(path, rows, 4, "prediction")
    base, index, value, cyc = idx.T
    sid = np.clip(np.searchsorted(bases, base), 0, n_streams - 1)
    ok = (bases[sid] == base) & (index >= 0) & (index < counts[sid])
    if not ok.all():
        j = int(np.argmin(ok))
        problems.append(f"prediction beat for image {index[j]} of the stream of image {base[j]}, beyond it")
    img = bases[sid] + index
    np.add.at(seen, img[ok], 1)
    predictions[img[ok]] = value[ok]
    pred_cycles[img[ok]] = cyc[ok]
    for k in range(n_streams):
        order = index[ok & (sid == k)]
        if (np.diff(order) <= 0).any():
            problems.append(f"prediction beats of the stream of image {int(bases[k])} are out of order: "
                            f"{order[:8].tolist()}")
            break
    return predictions, pred_cycles, seen


@dataclass
class FsDoneLines:
    """Per FS stream ``[S]``: what its ``D`` line says (``totals [S, 9]``, ``cycles``, ``predictions`` — the last
    image's —, ``harness_cycles``) and how many ``D`` lines it had (``seen``)."""

    totals: np.ndarray
    cycles: np.ndarray
    predictions: np.ndarray
    harness_cycles: np.ndarray
    seen: np.ndarray


def _fs_stream_ids(path: Path, rows: list[list[str]], bases: np.ndarray, what: str,
                   problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(stream index, ok)`` of lines whose first field is a stream's base image."""
    base = _int_columns(path, rows, 1, what)[:, 0]
    sid = np.clip(np.searchsorted(bases, base), 0, len(bases) - 1)
    ok = bases[sid] == base
    if not ok.all():
        problems.append(f"{what} line for a stream starting at image {int(base[np.argmin(ok)])}, which was never "
                        f"started")
    return sid, ok


def _fs_done_lines(path: Path, rows: list[list[str]], bases: np.ndarray, counter_bits: int,
                   problems: list[str]) -> FsDoneLines:
    n_streams = len(bases)
    out = FsDoneLines(np.zeros((n_streams, N_COUNTERS), dtype=np.int64), np.zeros(n_streams, dtype=np.int64),
                      np.full(n_streams, -1, dtype=np.int64), np.zeros(n_streams, dtype=np.int64),
                      np.zeros(n_streams, dtype=np.int64))
    if not rows:
        return out
    idx = _int_columns(path, rows, 4, "done")
    sid, ok = _fs_stream_ids(path, rows, bases, "done", problems)
    tot = _hex_column(path, rows, 5, counter_bits, N_COUNTERS, False, "total_counters")
    np.add.at(out.seen, sid[ok], 1)
    out.cycles[sid[ok]] = idx[ok, 1]
    out.predictions[sid[ok]] = idx[ok, 2]
    out.harness_cycles[sid[ok]] = idx[ok, 3]
    out.totals[sid[ok]] = tot[ok]
    return out


def _fs_digest_lines(path: Path, rows: list[list[str]], bases: np.ndarray,
                     problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(digests uint64 [S], seen [S])`` from the ``H base digest`` lines (one per stream, after its D line)."""
    digests = np.zeros(len(bases), dtype=np.uint64)
    seen = np.zeros(len(bases), dtype=np.int64)
    if not rows:
        return digests, seen
    try:
        values = [int(row[2], 16) for row in rows]
    except (ValueError, IndexError):
        raise SnnCosimError(f"{path}: malformed digest line in the RTL trace") from None
    sid, ok = _fs_stream_ids(path, rows, bases, "digest", problems)
    np.add.at(seen, sid[ok], 1)
    digests[sid[ok]] = np.array(values, dtype=np.uint64)[ok]
    return digests, seen


def _fs_count_problems(seen_predictions: np.ndarray, problems: list[str]) -> None:
    missing = np.flatnonzero(seen_predictions == 0)
    if missing.size:
        problems.append(f"image {int(missing[0])} has no prediction beat")
    dup = np.flatnonzero(seen_predictions > 1)
    if dup.size:
        problems.append(f"image {int(dup[0])} has {int(seen_predictions[dup[0]])} prediction beats")


@dataclass
class FsDigestTrace:
    """A digest-only trace file of an FS run (``+snn_digest_only``: P, D and H lines), parsed: per image its
    ``predictions`` and ``pred_cycles`` (the cycle of its prediction beat since its stream's start); per stream
    ``done`` (:class:`FsDoneLines`) and ``digests`` (``uint64 [S]``). An image's own cycles and counters are not
    observable here, only its stream's."""

    bases: np.ndarray
    counts: np.ndarray
    predictions: np.ndarray
    pred_cycles: np.ndarray
    done: FsDoneLines
    digests: np.ndarray
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def parse_fs_digest_file(path: str | os.PathLike, params: HarnessParams, bases: np.ndarray,
                         counts: np.ndarray) -> FsDigestTrace:
    """Parse the P, D and H lines of a digest-only FS trace file (starts ``bases`` / ``counts``,
    :func:`fs_stream_layout`); R/S lines, if any, are not decoded. ``problems`` lists a missing, repeated or
    misplaced prediction beat, a stream without exactly one D and one H line, and a done line whose prediction
    is not its last image's prediction beat."""
    path = Path(path)
    if not path.is_file():
        raise SnnCosimError(f"{path}: the RTL run wrote no trace file")
    bases, counts = np.asarray(bases, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    lines, error, problems = _read_trace_lines(path, with_predictions=True)
    predictions, pred_cycles, seen_p = _fs_prediction_lines(path, lines["P"], bases, counts, problems)
    done = _fs_done_lines(path, lines["D"], bases, params.counter_bits, problems)
    digests, seen_h = _fs_digest_lines(path, lines["H"], bases, problems)
    if error is None:
        _fs_count_problems(seen_p, problems)
        for k, (b, c) in enumerate(zip(bases.tolist(), counts.tolist())):
            where = f"stream of images {b}..{b + c - 1}"
            if done.seen[k] != 1 or seen_h[k] != 1:
                problems.append(f"{where}: {int(done.seen[k])} done and {int(seen_h[k])} digest lines (expected 1)")
            elif done.predictions[k] != predictions[b + c - 1]:
                problems.append(f"{where}: prediction at done is {int(done.predictions[k])} but the last image's "
                                f"prediction beat said {int(predictions[b + c - 1])}")
    return FsDigestTrace(bases, counts, predictions, pred_cycles, done, digests, error, problems)


def parse_fs_trace_file(path: str | os.PathLike, params: HarnessParams, layer_sizes: Sequence[int], phases: int,
                        bases: np.ndarray, counts: np.ndarray, c_image: int | None = None,
                        orders: Sequence[np.ndarray] | None = None) -> HarnessTrace:
    """Parse the trace file of an FS run (starts ``bases``/``counts``, :func:`fs_stream_layout`) into per-image
    arrays of the golden FS form: ``[N, L·K, ...]`` local steps, idle (step, layer) entries all zero (they have
    no beats), ``image_cycles`` = Σ of the image's beat cycles + C_IMAGE, predictions from the prediction beats.
    ``total_counters`` and ``harness_cycles`` of the result are per *stream* (``[S, 9]``, ``[S]``); the streams'
    own reports are in ``fs`` (:class:`FsStreams`). ``problems`` lists every inconsistency: missing, duplicate
    or misplaced beats, stream totals that are not the sum of their images' counters, stream cycles that are not
    ``golden.core.cycle_model.fs_stream_cycles`` of the per-image cycles, prediction beats out of order. ``orders``:
    as for :func:`parse_trace_file` (networks with conv/pool layers)."""
    path = Path(path)
    if not path.is_file():
        raise SnnCosimError(f"{path}: the RTL run wrote no trace file")
    lanes, w_bits = params.lanes, params.counter_bits
    c_image = cycle_model.C_IMAGE if c_image is None else int(c_image)
    sizes = list(layer_sizes)
    n_layers = len(sizes) - 1
    phases = int(phases)
    bases, counts = np.asarray(bases, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    n_streams = len(bases)
    active = cycle_model.fs_active(n_layers, phases)  # [L·K, L]
    lines, error, problems = _read_trace_lines(path, with_predictions=True)
    rec, summ, done, preds = lines["R"], lines["S"], lines["D"], lines["P"]
    beats = decode_fs_beats(_record_beats(path, rec, params), _summary_beats(path, summ, params), sizes, lanes,
                            phases, bases, counts, active, orders, problems)
    counters = beats.counters
    image_cycles = counters[..., COUNTER_NAMES.index("cycles")].sum(axis=(1, 2)) + c_image

    predictions, pred_cycles, seen_p = _fs_prediction_lines(path, preds, bases, counts, problems)
    done_lines = _fs_done_lines(path, done, bases, w_bits, problems)
    totals, stream_cycles, stream_predictions = done_lines.totals, done_lines.cycles, done_lines.predictions
    harness_cycles, seen_d = done_lines.harness_cycles, done_lines.seen
    digests, _ = _fs_digest_lines(path, lines["H"], bases, problems)
    expected = np.zeros(n_streams, dtype=np.int64)
    pipelined = np.zeros(n_streams, dtype=np.int64)
    cycles_k = COUNTER_NAMES.index("cycles")
    for k in range(n_streams):
        b, c = int(bases[k]), int(counts[k])
        stream = cycle_model.fs_stream_cycles(counters[b:b + c, :, :, cycles_k], phases)
        expected[k] = stream.total_cycles - cycle_model.C_IMAGE + c_image
        pipelined[k] = stream.pipelined_cycles - cycle_model.C_IMAGE + c_image
    images_done = int(counts[seen_d > 0].sum())
    if error is None:
        _fs_count_problems(seen_p, problems)
        mask = (1 << w_bits) - 1
        for k in range(n_streams):
            b, c = int(bases[k]), int(counts[k])
            where = f"stream of images {b}..{b + c - 1}"
            if seen_d[k] != 1:
                problems.append(f"{where}: {'no' if seen_d[k] == 0 else int(seen_d[k])} done beat"
                                f"{'s' if seen_d[k] > 1 else ''}")
                continue
            sums = counters[b:b + c].sum(axis=(0, 1, 2)) & mask
            if (sums != totals[k]).any():
                j = int(np.argmax(sums != totals[k]))
                problems.append(f"{where}: total counter {COUNTER_NAMES[j]}={int(totals[k, j])} but its images' "
                                f"per-step sum is {int(sums[j])}")
            per_image = int(image_cycles[b:b + c].sum()) - (c - 1) * c_image
            if stream_cycles[k] != per_image or stream_cycles[k] != expected[k]:
                problems.append(f"{where}: the engine's stream cycles {int(stream_cycles[k])} differ from the sum "
                                f"of its images' cycles minus (N-1)*C_IMAGE ({per_image}) or fs_stream_cycles "
                                f"({int(expected[k])})")
            if stream_predictions[k] != predictions[b + c - 1]:
                problems.append(f"{where}: prediction at done is {int(stream_predictions[k])} but the last image's "
                                f"prediction beat said {int(predictions[b + c - 1])}")
    streams = FsStreams(phases=phases, bases=bases, counts=counts, totals=totals, cycles=stream_cycles,
                        predictions=stream_predictions, harness_cycles=harness_cycles, expected_cycles=expected,
                        pipelined_cycles=pipelined, pred_cycles=pred_cycles, digests=digests)
    return HarnessTrace(
        spikes=beats.spikes, membranes=beats.membranes, counters=counters, image_cycles=image_cycles,
        predictions=predictions, harness_cycles=harness_cycles, total_counters=totals, images_done=images_done,
        error=error, problems=problems, fs=streams)
