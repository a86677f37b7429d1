"""The integer network: the one description that the golden model simulates and the hardware is built from.

SPEC §1: the RTL sees integers only. Conversion (``golden.conversion.convert``) produces an :class:`IntegerNetwork`; the
integer simulator (``golden.simulation.simulate``), the hardware elaboration (``hw``) and the co-simulation (``cosim``) all
read this object, and it is saved and loaded in a versioned, integer-only file format
(``docs/file-format.md``): a directory holding ``network.yaml`` (manifest) and ``arrays.npz`` (integer arrays,
loaded with ``allow_pickle=False``). The manifest holds two SHA-256 checksums: ``arrays_sha256`` over the bytes of
``arrays.npz`` and ``network_sha256`` over the whole network (:meth:`IntegerNetwork.digest`: every manifest field
but ``metadata``, plus every array), and is checked against a strict schema (types, ranges, required keys, no
unknown keys) on load and, through :meth:`IntegerNetwork.validate`, on save.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from golden.core.errors import NetworkFileError, WidthError
from golden.core.files import staged_output

FORMAT_NAME = "snncosim-integer-network"
FORMAT_VERSION = 2  # the newest version written; plain networks are still written as 1
READABLE_VERSIONS = (1, 2)  # version 2 adds lateral inhibition, floor_threshold and the `skips` list

NeuronKind = Literal["if", "lif", "ws", "acc", "fs"]
ResetMode = Literal["zero", "subtract"]
InputCoding = Literal["rate", "direct", "weighted", "fs"]
NEURON_KINDS = ("if", "lif", "ws", "acc", "fs")
INPUT_CODINGS = ("rate", "direct", "weighted", "fs")
FS_TABLE_FIELDS = ("fs_threshold", "fs_reset", "fs_weight")
MAX_PHASES = 16  # K: input codes of K bits (input_bits <= 16), a 4-bit phase counter
RESET_MODES = ("zero", "subtract")
LAYER_KINDS = ("dense", "conv2d", "avgpool2d")
SKIP_KINDS = ("dense", "conv2d")
NETWORK_DIGEST_TAG = b"snncosim-network-sha256-v1\0"  # changes only with the canonical form of digest()
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def signed_range(bits: int) -> tuple[int, int]:
    """Inclusive range of a two's-complement number of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi] (at least 2)."""
    bits = 2
    while not (signed_range(bits)[0] <= lo and hi <= signed_range(bits)[1]):
        bits += 1
    return bits


def _table_entry(value):
    """A table entry as a plain Python number (numpy scalars unwrapped; floats kept for float networks)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _as_table(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    try:
        return tuple(_table_entry(v) for v in value)
    except TypeError:
        raise NetworkFileError(f"an FS table must be a sequence of numbers, got {value!r}") from None


# ----------------------------------------------------------------------------------------------- field checks
def _is_int(value) -> bool:
    """A Python or numpy integer; bools (Python or numpy) are not integers here."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _show(value) -> str:
    """A value for a one-line message: its repr, with the type named where the repr hides it, at most 80 chars."""
    if isinstance(value, (bool, np.bool_)):
        text = f"{bool(value)} (a boolean)"
    elif isinstance(value, str):
        text = f"{value!r} (a string)"
    elif isinstance(value, np.generic):
        text = f"{value.item()!r} (numpy {value.dtype})"
    elif isinstance(value, (list, tuple, dict)) or value is None or isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = f"{value!r} ({type(value).__name__})"
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _one_line(exc: BaseException) -> str:
    """``Class: first line of the message`` of an exception raised by a library (zip, zlib, numpy)."""
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:200]}" if lines else exc.__class__.__name__


def _range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"in {lo}..{hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"


class _Fields:
    """Checks of single fields that raise one line ``PREFIX FIELD: PROBLEM``: the file's schema (PREFIX = the
    manifest's path, FIELD = ``layers[0].neuron.floor``) and the same checks on a network built in Python."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def fail(self, field: str, problem: str, error: type = NetworkFileError):
        raise error(f"{self.prefix}{field}: {problem}")

    def integer(self, value, field: str, lo=None, hi=None, error: type = WidthError) -> int:
        if not _is_int(value):
            self.fail(field, f"must be an integer, got {_show(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(field, f"must be {_range_text(lo, hi)}, got {int(value)}", error)
        return int(value)

    def choice(self, value, field: str, choices) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(field, f"must be one of {', '.join(repr(c) for c in choices)}, got {_show(value)}")
        return value

    def boolean(self, value, field: str) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            self.fail(field, f"must be true or false, got {_show(value)}")
        return bool(value)

    def string(self, value, field: str) -> str:
        if not isinstance(value, str):
            self.fail(field, f"must be a string, got {_show(value)}")
        return value

    def int_list(self, value, field: str, lengths: tuple[int, ...], lo: int) -> list[int]:
        """A list (or tuple) of ``lengths`` integers, each ``>= lo``."""
        count = " or ".join(str(n) for n in lengths)
        what = "positive integers" if lo == 1 else f"integers >= {lo}"
        if not isinstance(value, (list, tuple)) or len(value) not in lengths:
            self.fail(field, f"must be a list of {count} {what}, got {_show(value)}")
        return [self.integer(v, f"{field}[{k}]", lo, None, NetworkFileError) for k, v in enumerate(value)]

    def mapping(self, value, field: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
        """A mapping with every ``required`` key and no key outside ``required + optional``."""
        if not isinstance(value, dict):
            self.fail(field, f"must be a mapping, got {_show(value)}")
        allowed = required + optional
        for key in value:
            if key not in allowed:
                self.fail(_join(field, str(key)), f"unknown key (allowed here: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(_join(field, key), "required key missing")
        return value

    def sha256(self, value, field: str) -> str:
        if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
            self.fail(field, f"must be a SHA-256 as 64 lowercase hex digits, got {_show(value)}")
        return value


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


# The manifest schema (docs/file-format.md). Keys per mapping: (required, optional).
_TOP_KEYS = (("format", "version", "input_shape", "input_coding", "input_bits", "weight_bits", "membrane_bits",
              "layers", "arrays_sha256"),
             ("phases", "skip_periods", "skips", "metadata", "network_sha256"))
_LAYER_KEYS = {"dense": (("kind", "neuron"), ("name",)),
               "conv2d": (("kind", "neuron", "in_shape", "stride", "padding"), ("name",)),
               "avgpool2d": (("kind", "neuron", "weight", "kernel", "stride", "in_shape"), ("name",))}
_NEURON_KEYS = (("kind", "reset"), ("leak_shift", "floor", "floor_threshold") + FS_TABLE_FIELDS)
_SKIP_KEYS = {"dense": (("target", "source", "kind"), ()),
              "conv2d": (("target", "source", "kind", "stride", "padding"), ())}
# the arrays of each layer kind: name -> (number of dimensions, required)
_LAYER_ARRAYS = {"dense": {"weight": (2, True), "bias": (1, True), "threshold": (1, True), "inhibition": (1, False)},
                 "conv2d": {"weight": (4, True), "bias": (1, True), "threshold": (1, True)},
                 "avgpool2d": {"threshold": (1, True)}}


def _check_manifest(manifest, file: str) -> None:
    """The strict schema of ``network.yaml`` (docs/file-format.md): types, ranges, required keys, no unknown keys.
    Cross-field rules that need the arrays (shapes, widths of the arrays, kinds per position) are
    :meth:`IntegerNetwork.validate`'s."""
    f = _Fields(f"{file}: ")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = f" (format: {_show(manifest.get('format'))})" if isinstance(manifest, dict) else ""
        raise NetworkFileError(f"{file}: not a {FORMAT_NAME} manifest{found}")
    if "version" not in manifest:
        f.fail("version", "required key missing")
    version = manifest["version"]
    if not _is_int(version) or version not in READABLE_VERSIONS:
        raise NetworkFileError(f"{file}: version: format version {_show(version)} is not supported "
                               f"(this snncosim reads versions {', '.join(str(v) for v in READABLE_VERSIONS)})")
    f.mapping(manifest, "", *_TOP_KEYS)
    f.int_list(manifest["input_shape"], "input_shape", (1, 3), 1)
    f.choice(manifest["input_coding"], "input_coding", INPUT_CODINGS)
    f.integer(manifest["input_bits"], "input_bits", 1, 16)
    f.integer(manifest["weight_bits"], "weight_bits", 2, 32)
    membrane_bits = f.integer(manifest["membrane_bits"], "membrane_bits", 4, 62)
    if "phases" in manifest:
        f.integer(manifest["phases"], "phases", 0, MAX_PHASES)
    if "skip_periods" in manifest:
        f.integer(manifest["skip_periods"], "skip_periods", 0, None, NetworkFileError)
    layers = manifest["layers"]
    if not isinstance(layers, list) or not layers:
        f.fail("layers", f"must be a non-empty list of layers, got {_show(layers)}")
    for index, entry in enumerate(layers):
        _check_layer_entry(f, entry, f"layers[{index}]", membrane_bits, version)
    skips = manifest.get("skips")
    if skips is not None:
        if not isinstance(skips, list):
            f.fail("skips", f"must be a list of skip connections, got {_show(skips)}")
        if skips and version == 1:
            f.fail("skips", "skip connections need format version 2")
        for index, entry in enumerate(skips):
            field = f"skips[{index}]"
            kind = f.choice(f.mapping(entry, field, ("kind",), ("target", "source", "stride", "padding"))["kind"],
                            f"{field}.kind", SKIP_KINDS)
            f.mapping(entry, field, *_SKIP_KEYS[kind])
            f.integer(entry["target"], f"{field}.target", 1, None, NetworkFileError)
            f.integer(entry["source"], f"{field}.source", 0, None, NetworkFileError)
            if kind == "conv2d":
                f.int_list(entry["stride"], f"{field}.stride", (2,), 1)
                f.int_list(entry["padding"], f"{field}.padding", (2,), 0)
    if manifest.get("metadata") is not None and not isinstance(manifest["metadata"], dict):
        f.fail("metadata", f"must be a mapping, got {_show(manifest['metadata'])}")
    f.sha256(manifest["arrays_sha256"], "arrays_sha256")
    if "network_sha256" in manifest:
        f.sha256(manifest["network_sha256"], "network_sha256")


def _check_layer_entry(f: _Fields, entry, field: str, membrane_bits: int, version: int) -> None:
    if not isinstance(entry, dict):
        f.fail(field, f"must be a mapping, got {_show(entry)}")
    if "kind" not in entry:
        f.fail(f"{field}.kind", "required key missing")
    kind = f.choice(entry["kind"], f"{field}.kind", LAYER_KINDS)
    f.mapping(entry, field, *_LAYER_KEYS[kind])
    if "name" in entry:
        f.string(entry["name"], f"{field}.name")
    if kind == "conv2d":
        f.int_list(entry["in_shape"], f"{field}.in_shape", (3,), 1)
        f.int_list(entry["stride"], f"{field}.stride", (2,), 1)
        f.int_list(entry["padding"], f"{field}.padding", (2,), 0)
    elif kind == "avgpool2d":
        f.integer(entry["weight"], f"{field}.weight")
        f.int_list(entry["kernel"], f"{field}.kernel", (2,), 1)
        f.int_list(entry["stride"], f"{field}.stride", (2,), 1)
        f.int_list(entry["in_shape"], f"{field}.in_shape", (3,), 1)
    neuron, where = entry["neuron"], f"{field}.neuron"
    f.mapping(neuron, where, *_NEURON_KEYS)
    f.choice(neuron["kind"], f"{where}.kind", NEURON_KINDS)
    f.choice(neuron["reset"], f"{where}.reset", RESET_MODES)
    if "leak_shift" in neuron:
        f.integer(neuron["leak_shift"], f"{where}.leak_shift", 0, membrane_bits - 1)
    lo, hi = signed_range(membrane_bits)
    if neuron.get("floor") is not None:
        f.integer(neuron["floor"], f"{where}.floor", lo, 0)
    if "floor_threshold" in neuron and f.boolean(neuron["floor_threshold"], f"{where}.floor_threshold") \
            and version == 1:
        f.fail(f"{where}.floor_threshold", "the floor at −θ needs format version 2")
    for name in FS_TABLE_FIELDS:
        if name in neuron:
            table = neuron[name]
            if not isinstance(table, list):
                f.fail(f"{where}.{name}", f"must be a list of integers, got {_show(table)}")
            for k, value in enumerate(table):
                f.integer(value, f"{where}.{name}[{k}]", lo, hi)


def _expected_arrays(manifest: dict) -> dict[str, tuple[int, bool]]:
    """Every array a (schema-checked) manifest uses: name -> (number of dimensions, required)."""
    expected = {}
    for index, entry in enumerate(manifest["layers"]):
        for name, spec in _LAYER_ARRAYS[entry["kind"]].items():
            expected[f"layer{index}.{name}"] = spec
    for index, entry in enumerate(manifest.get("skips") or []):
        expected[f"skip{index}.weight"] = (4 if entry["kind"] == "conv2d" else 2, True)
    return expected


def _read_arrays(arrays_path: Path, blob: bytes, expected: dict[str, tuple[int, bool]], version: int) -> dict:
    """The arrays of ``arrays.npz`` as int64, each checked (readable, integer, its number of dimensions, not
    empty); missing and unexpected arrays are refused. Every defect is one :class:`NetworkFileError` line."""
    if not blob.startswith(b"PK"):
        raise NetworkFileError(f"{arrays_path}: not an npz archive (expected a zip file of .npy arrays)")
    try:
        npz = np.load(io.BytesIO(blob), allow_pickle=False)
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError, ...
        raise NetworkFileError(f"{arrays_path}: damaged npz archive ({_one_line(exc)})") from None
    arrays = {}
    with npz:
        names = list(npz.files)
        for name in names:
            if name not in expected:
                raise NetworkFileError(f"{arrays_path}: {name}: unexpected array (network.yaml has no use for it)")
            if names.count(name) > 1:
                raise NetworkFileError(f"{arrays_path}: {name}: the archive holds this array twice")
        for name, (_, required) in expected.items():
            if required and name not in names:
                raise NetworkFileError(f"{arrays_path}: {name}: missing array")
        for name in names:
            ndim = expected[name][0]
            if name.endswith(".inhibition") and version == 1:
                raise NetworkFileError(f"{arrays_path}: {name}: lateral inhibition needs format version 2")
            try:
                array = npz[name]
            except Exception as exc:  # BadZipFile (CRC), zlib.error, a damaged .npy header, pickled objects
                raise NetworkFileError(f"{arrays_path}: {name}: cannot be read ({_one_line(exc)})") from None
            if not isinstance(array, np.ndarray):
                raise NetworkFileError(f"{arrays_path}: {name}: not a .npy array")
            if array.dtype.kind not in "iu":
                raise NetworkFileError(f"{arrays_path}: {name}: must hold integers, got dtype {array.dtype}")
            if array.ndim != ndim:
                raise NetworkFileError(f"{arrays_path}: {name}: must have {ndim} dimension{'s' * (ndim > 1)}, got "
                                       f"shape {tuple(array.shape)}")
            if array.size == 0:
                raise NetworkFileError(f"{arrays_path}: {name}: is empty (shape {tuple(array.shape)}); every layer "
                                       f"needs at least one neuron and one input")
            if array.dtype.kind == "u" and int(array.max()) > np.iinfo(np.int64).max:
                raise NetworkFileError(f"{arrays_path}: {name}: values exceed the int64 range")
            arrays[name] = array.astype(np.int64)
    return arrays


class _ManifestLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _ManifestLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                    key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_ManifestLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_manifest(manifest_path: Path):
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise NetworkFileError(f"{manifest_path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NetworkFileError(f"{manifest_path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_ManifestLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise NetworkFileError(f"{manifest_path}: not valid YAML ({where}{' '.join(str(problem).split())})") from None


def _digest_of(fields: dict, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over a canonical serialisation: the manifest fields as compact JSON with sorted keys, then every
    array in name order as its name, shape and little-endian int64 bytes (each part length-prefixed)."""
    digest = hashlib.sha256(NETWORK_DIGEST_TAG)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
    digest.update(len(text).to_bytes(8, "little") + text)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name], dtype="<i8")
        head = json.dumps([name, [int(n) for n in array.shape]]).encode()
        digest.update(len(head).to_bytes(8, "little") + head)
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class NeuronParams:
    """Per-layer neuron model (SPEC §3). ``leak_shift`` is used by LIF only; ``floor`` is optional (LIF, Lee 2016).

    ``ws`` is Kim 2018's weighted-spike neuron in the bit-shift scaled form (reset by subtracting the phase
    threshold ``θ << (K−k)``); ``acc`` is the non-spiking output accumulator of a weighted-spike or FS network
    (weighted: ``v += I << (K−k)`` for ``t > S·K``; FS: it collects in the last window; class = argmax v). Both
    need ``IntegerNetwork.phases`` = K ≥ 1.

    ``fs`` is Stöckl & Maass 2021's few-spikes neuron (docs/spec.md §3b): ``fs_threshold`` = (T_1..T_K),
    ``fs_reset`` = (h_1..h_K) and ``fs_weight`` = (d_1..d_K), integer tuples of length K (lists, e.g. from YAML,
    become tuples). ``T``/``h`` are the activation's table times the layer's integer scale; ``d`` is the weight
    the layer's output spikes carry into the next layer's COLLECT. The ``reset`` field is ignored by ``fs``
    (it always subtracts h[t]). The tables are empty for every other kind."""

    kind: NeuronKind = "if"
    reset: ResetMode = "zero"
    leak_shift: int = 0
    floor: int | None = None
    fs_threshold: tuple = ()
    fs_reset: tuple = ()
    fs_weight: tuple = ()
    floor_threshold: bool = False  # IF/LIF: after saturation v = max(v, −θ_j), the neuron's own threshold (Lee 2016)

    def __post_init__(self) -> None:
        for name in FS_TABLE_FIELDS:
            object.__setattr__(self, name, _as_table(getattr(self, name)))

    def validate(self, membrane_bits: int, where: str) -> None:
        if self.kind not in NEURON_KINDS:
            raise NetworkFileError(f"{where}: neuron kind {self.kind!r} is not one of "
                                   f"{', '.join(repr(k) for k in NEURON_KINDS)}")
        if self.kind == "ws" and self.reset != "subtract":
            raise NetworkFileError(f"{where}: a weighted-spike neuron resets by subtraction (Kim 2018 Eq. 10)")
        if self.kind in ("ws", "acc", "fs") and (self.leak_shift != 0 or self.floor is not None):
            raise NetworkFileError(f"{where}: {self.kind} neurons have no leak and no floor")
        if self.reset not in ("zero", "subtract"):
            raise NetworkFileError(f"{where}: reset {self.reset!r} is not one of 'zero', 'subtract'")
        if self.kind == "lif" and not 1 <= self.leak_shift < membrane_bits:
            raise WidthError(
                f"{where}: LIF leak_shift must be in 1..{membrane_bits - 1} for membrane_bits={membrane_bits}, "
                f"got {self.leak_shift}")
        if self.kind == "if" and self.leak_shift != 0:
            raise NetworkFileError(f"{where}: an IF neuron has no leak; leak_shift must be 0")
        if not isinstance(self.floor_threshold, (bool, np.bool_)):
            raise NetworkFileError(f"{where}: floor_threshold must be true or false, got {self.floor_threshold!r}")
        if self.floor_threshold and self.kind not in ("if", "lif"):
            raise NetworkFileError(f"{where}: floor_threshold (v >= −θ) belongs to IF/LIF neurons, not {self.kind!r}")
        if self.floor_threshold and self.floor is not None:
            raise NetworkFileError(f"{where}: floor and floor_threshold exclude each other (one membrane floor)")
        if self.floor is not None:
            lo, hi = signed_range(membrane_bits)
            if not lo <= self.floor <= 0:
                raise WidthError(f"{where}: membrane floor {self.floor} must lie in [{lo}, 0]")
        self._validate_fs_tables(membrane_bits, where)

    def _validate_fs_tables(self, membrane_bits: int, where: str) -> None:
        tables = {name: getattr(self, name) for name in FS_TABLE_FIELDS}
        if self.kind != "fs":
            given = [name for name, table in tables.items() if table]
            if given:
                raise NetworkFileError(f"{where}: {', '.join(given)} belong to FS neurons (kind 'fs'), not "
                                       f"{self.kind!r}")
            return
        lengths = {len(table) for table in tables.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise NetworkFileError(
                f"{where}: an FS neuron needs fs_threshold, fs_reset and fs_weight of the same length K >= 1, got "
                f"lengths {', '.join(str(len(t)) for t in tables.values())}")
        lo, hi = signed_range(membrane_bits)
        for name, table in tables.items():
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in table):
                raise NetworkFileError(f"{where}: {name} must hold integers, got {list(table)}")
            if min(table) < lo or max(table) > hi:
                need = signed_bits_for(min(table), max(table))
                raise WidthError(f"{where}: {name} spans [{min(table)}, {max(table)}] but membrane_bits="
                                 f"{membrane_bits} holds [{lo}, {hi}]; use membrane_bits={need}")

    @property
    def spiking(self) -> bool:
        """False for the non-spiking output accumulator."""
        return self.kind != "acc"

    @property
    def fs_phases(self) -> int:
        """K of an FS neuron (the table length), 0 for other kinds."""
        return len(self.fs_threshold) if self.kind == "fs" else 0

    def to_dict(self) -> dict:
        """Plain-Python form for the file format: the FS tables (as lists) only for FS neurons."""
        out = {"kind": str(self.kind), "reset": str(self.reset), "leak_shift": int(self.leak_shift),
               "floor": None if self.floor is None else int(self.floor)}
        if self.floor_threshold:
            out["floor_threshold"] = True
        if self.kind == "fs" or any(getattr(self, name) for name in FS_TABLE_FIELDS):
            out.update({name: [int(v) for v in getattr(self, name)] for name in FS_TABLE_FIELDS})
        return out

    def check_fields(self, where: str) -> None:
        """The types of the fields (the file's schema for a neuron built in Python): kind and reset from their
        lists, leak_shift an integer, floor an integer or None — never a bool, a float or a string."""
        f = _Fields()
        f.choice(self.kind, f"{where}: neuron.kind", NEURON_KINDS)
        f.choice(self.reset, f"{where}: neuron.reset", RESET_MODES)
        f.integer(self.leak_shift, f"{where}: neuron.leak_shift")
        if self.floor is not None:
            f.integer(self.floor, f"{where}: neuron.floor")
        f.boolean(self.floor_threshold, f"{where}: neuron.floor_threshold")


@dataclass(frozen=True)
class DenseLayer:
    """Fully connected spiking layer: ``I_j = Σ_i W[j, i]·x_i + bias_j`` then the neuron model.

    ``inhibition`` (optional, IF/LIF only): per-neuron WTA strengths ``u_j`` (int64 ``[n_out]``, ``0 ≤ u_j ≤
    2^(M−1)−1``); after the neuron update of a step every neuron i loses ``u_i·m_i``, ``m_i`` = spikes of the
    other neurons of the layer at that step (docs/spec.md §3c; Lee 2016 exports ``u_j = round(|κ|·θ_j)``)."""

    weight: np.ndarray  # int64 (n_out, n_in)
    bias: np.ndarray  # int64 (n_out,)
    threshold: np.ndarray  # int64 (n_out,), every entry >= 1
    neuron: NeuronParams = NeuronParams()
    name: str = ""
    inhibition: np.ndarray | None = None  # int64 (n_out,): WTA strengths u_j, or None

    kind = "dense"

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.n_out,)

    def fan_in_abs_max(self) -> int:
        """Largest Σ_i |W[j, i]| over neurons j: bounds the synaptic input of one step (binary spikes)."""
        return int(np.abs(self.weight).sum(axis=1).max(initial=0))


@dataclass(frozen=True)
class Conv2dLayer:
    """2-D convolution (cross-correlation as in torch) with stride and zero padding; thresholds per out channel."""

    weight: np.ndarray  # int64 (c_out, c_in, kh, kw)
    bias: np.ndarray  # int64 (c_out,)
    threshold: np.ndarray  # int64 (c_out,)
    in_shape: tuple[int, int, int]  # (c_in, h, w)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    neuron: NeuronParams = NeuronParams()
    name: str = ""

    kind = "conv2d"

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c_out, _, kh, kw = self.weight.shape
        _, h, w = self.in_shape
        ho = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
        return (int(c_out), int(ho), int(wo))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def fan_in_abs_max(self) -> int:
        return int(np.abs(self.weight).reshape(self.weight.shape[0], -1).sum(axis=1).max(initial=0))


@dataclass(frozen=True)
class AvgPool2dLayer:
    """Average pooling as spiking neurons: every input in the window adds the integer ``weight``; per-channel θ."""

    weight: int
    threshold: np.ndarray  # int64 (c,)
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    neuron: NeuronParams = NeuronParams()
    name: str = ""

    kind = "avgpool2d"

    @property
    def bias(self) -> np.ndarray:
        return np.zeros(self.in_shape[0], dtype=np.int64)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, (h - self.kernel[0]) // self.stride[0] + 1, (w - self.kernel[1]) // self.stride[1] + 1)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def fan_in_abs_max(self) -> int:
        return abs(int(self.weight)) * self.kernel[0] * self.kernel[1]


Layer = DenseLayer | Conv2dLayer | AvgPool2dLayer


def layer_inhibition(layer: Layer) -> np.ndarray | None:
    """The WTA strengths of a layer with lateral inhibition (:attr:`DenseLayer.inhibition`); ``None`` for a dense
    layer without and for every conv2d / avgpool2d layer (they have no inhibition)."""
    return layer.inhibition if layer.kind == "dense" else None


@dataclass(frozen=True)
class SkipConnection:
    """A residual shortcut (Sengupta 2019 §6): junction layer ``target`` (1-based) receives, besides layer
    ``target−1``'s spikes, the spikes that layer ``source`` emitted at the **same** step through its own integer
    synapses (``source`` = 0 is the network input; ``source ≤ target − 2``). The junction neuron integrates the
    sum of both synaptic inputs (exact), then its normal neuron model (docs/spec.md §4a). In an FS network the
    source's fire-window spikes arrive delayed by ``(target − source − 1)·K`` steps, in the junction's collect
    window, weighted by the source's d[t] (docs/spec.md §3b, "Residual junctions in FS networks").

    ``weight``: for a dense target ``[n_target, n_source]`` (the source flattened in (c, h, w) order); for a
    conv2d target ``[c_out, c_source, kh, kw]``, a convolution of the source's spike map with ``stride`` and zero
    ``padding`` whose output shape must equal the target's (an identity shortcut is a 1×1 kernel holding an
    integer scale on its diagonal; a downsampling shortcut a 1×1 kernel of stride 2). At most one skip per
    target layer; pooling layers take none."""

    target: int
    source: int
    weight: np.ndarray  # int64 [n_target, n_source] or [c_out, c_source, kh, kw]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def kind(self) -> str:
        return "conv2d" if np.ndim(self.weight) == 4 else "dense"

    def as_layer(self, in_shape: tuple[int, ...]) -> "DenseLayer | Conv2dLayer":
        """The skip's synapses as a layer object (zero bias, unit thresholds) reading a source of ``in_shape``:
        lets the simulator, counters and cycle model reuse the dense / conv machinery."""
        weight = np.asarray(self.weight)
        n = weight.shape[0]
        ones = np.ones(n, dtype=np.int64)
        zeros = np.zeros(n, dtype=weight.dtype if np.issubdtype(weight.dtype, np.floating) else np.int64)
        if self.kind == "conv2d":
            return Conv2dLayer(weight, zeros, ones, tuple(int(v) for v in in_shape), tuple(self.stride),
                               tuple(self.padding), name=f"skip{self.source}->{self.target}")
        return DenseLayer(weight, zeros, ones, name=f"skip{self.source}->{self.target}")

    def to_dict(self) -> dict:
        out = {"target": int(self.target), "source": int(self.source), "kind": self.kind}
        if self.kind == "conv2d":
            out.update(stride=[int(v) for v in self.stride], padding=[int(v) for v in self.padding])
        return out


def identity_skip(target: int, source: int, channels: int, scale: int = 1, stride: int = 1) -> SkipConnection:
    """An identity (``stride`` 1) or strided-identity (downsampling, Sengupta's type-A without zero channels)
    shortcut of ``channels`` channels whose every synapse has the integer weight ``scale``."""
    weight = np.zeros((channels, channels, 1, 1), dtype=np.int64)
    weight[np.arange(channels), np.arange(channels), 0, 0] = int(scale)
    return SkipConnection(int(target), int(source), weight, (int(stride), int(stride)), (0, 0))


@dataclass
class IntegerNetwork:
    """A converted (or directly trained) spiking network in integers only.

    ``input_shape`` is the shape of one input sample (``(784,)`` or ``(c, h, w)``). Inputs are integer codes in
    ``[0, 2**input_bits - 1]``: with ``input_coding == "rate"`` each code becomes Bernoulli spikes of probability
    ``max_rate * code / (2**input_bits - 1)`` per step; with ``"direct"`` the first layer receives the code
    itself every step (its products count as MACs); with ``"weighted"`` (Kim 2018) ``input_bits == phases`` = K and
    the code emits bit ``K−k`` at phase ``k = 1 + (t−1) mod K`` (MSB first). Layer ``l`` consumes the spikes of
    layer ``l-1`` (layer 0 is the input). Dense layers flatten their input. ``phases`` (K) and ``skip_periods``
    (S, output integration starts at t > S·K) are 0 for networks without weighted-spike layers.

    FS networks (Stöckl & Maass 2021, docs/spec.md §3b): ``input_coding == "fs"``, ``phases`` = K = ``input_bits``
    (codes sent MSB first during window 1), hidden layers ``kind="fs"`` with tables of length K, the output layer
    ``kind="acc"`` (it collects in window L and never fires); one image takes L·K steps.
    """

    input_shape: tuple[int, ...]
    layers: list[Layer]
    weight_bits: int = 8
    membrane_bits: int = 24
    input_coding: InputCoding = "rate"
    input_bits: int = 8
    metadata: dict = field(default_factory=dict)
    phases: int = 0
    skip_periods: int = 0
    skips: list = field(default_factory=list)  # SkipConnection residual shortcuts (sorted by target)

    # ----------------------------------------------------------------------------------------------- shape
    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def layer_sizes(self) -> list[int]:
        """[n_0 (inputs), n_1, ..., n_L]."""
        return [self.n_inputs] + [layer.n_out for layer in self.layers]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    def layer_shape(self, index: int) -> tuple[int, ...]:
        """Shape of layer ``index``'s spikes (0: the input)."""
        return tuple(self.input_shape) if index == 0 else tuple(self.layers[index - 1].out_shape)

    def skip_into(self, target: int) -> "SkipConnection | None":
        """The skip connection whose junction is layer ``target`` (1-based), or None."""
        for skip in self.skips:
            if skip.target == target:
                return skip
        return None

    def skip_layer(self, skip: SkipConnection):
        """``skip``'s synapses as a dense / conv layer object reading its source (see SkipConnection.as_layer)."""
        return skip.as_layer(self.layer_shape(skip.source))

    # ----------------------------------------------------------------------------------------------- checks
    def validate(self) -> "IntegerNetwork":
        """Check the fields' types (the file format's schema, docs/file-format.md: integers are never bools,
        floats or strings), shapes, integer arrays and that every number fits its width (SPEC §1). Returns
        ``self``; :meth:`save` calls it, :meth:`load` too (after the manifest's own schema)."""
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise NetworkFileError("the network has no layers")
        self._check_fields()
        if not 2 <= self.weight_bits <= 32:
            raise WidthError(f"weight_bits must be in 2..32, got {self.weight_bits}")
        if not 4 <= self.membrane_bits <= 62:
            raise WidthError(f"membrane_bits must be in 4..62, got {self.membrane_bits}")
        if self.input_coding not in INPUT_CODINGS:
            raise NetworkFileError(f"input_coding {self.input_coding!r} is not one of "
                                   f"{', '.join(repr(c) for c in INPUT_CODINGS)}")
        self._validate_phases()
        if not 1 <= self.input_bits <= 16:
            raise WidthError(f"input_bits must be in 1..16, got {self.input_bits}")
        w_lo, w_hi = signed_range(self.weight_bits)
        v_lo, v_hi = signed_range(self.membrane_bits)
        n_prev = self.n_inputs
        shape_prev: tuple[int, ...] = tuple(self.input_shape)
        for index, layer in enumerate(self.layers, start=1):
            where = f"layer {index} ({layer.kind}{' ' + layer.name if layer.name else ''})"
            self._check_layer_shape(layer, where)
            if layer.kind == "dense":
                if layer.weight.ndim != 2 or layer.n_in != n_prev:
                    raise NetworkFileError(
                        f"{where}: weight shape {tuple(layer.weight.shape)} does not take {n_prev} inputs")
            else:
                if tuple(layer.in_shape) != tuple(shape_prev):
                    raise NetworkFileError(f"{where}: input shape {tuple(layer.in_shape)} != {tuple(shape_prev)}")
            for array_name in ("weight", "bias", "threshold"):
                arr = np.asarray(getattr(layer, array_name))
                if not np.issubdtype(arr.dtype, np.integer):
                    raise NetworkFileError(f"{where}: {array_name} must be integers, got {arr.dtype}")
            weights = np.asarray(layer.weight)
            if weights.size and (weights.min() < w_lo or weights.max() > w_hi):
                raise WidthError(
                    f"{where}: weights span [{weights.min()}, {weights.max()}] but weight_bits={self.weight_bits} "
                    f"holds [{w_lo}, {w_hi}]; use weight_bits={signed_bits_for(int(weights.min()), int(weights.max()))}")
            thr = np.asarray(layer.threshold)
            expected = (layer.n_out,) if layer.kind == "dense" else (layer.out_shape[0],)
            if thr.shape != expected:
                raise NetworkFileError(f"{where}: threshold shape {thr.shape} != {expected}")
            if thr.min() < 1:
                raise NetworkFileError(f"{where}: thresholds must be at least 1 (a neuron fires when v >= θ), got "
                                       f"{int(thr.min())}")
            if thr.max() > v_hi:
                raise WidthError(
                    f"{where}: thresholds span [{thr.min()}, {thr.max()}] but must lie in [1, {v_hi}] "
                    f"(membrane_bits={self.membrane_bits}); use membrane_bits="
                    f"{signed_bits_for(0, int(thr.max()))}")
            bias = np.asarray(layer.bias)
            if bias.shape != expected:
                raise NetworkFileError(f"{where}: bias shape {bias.shape} != {expected}")
            if bias.size and (bias.min() < v_lo or bias.max() > v_hi):
                raise WidthError(f"{where}: biases do not fit membrane_bits={self.membrane_bits}")
            layer.neuron.validate(self.membrane_bits, where)
            self._check_inhibition(layer, where)
            if layer.neuron.kind == "acc" and index != len(self.layers):
                raise NetworkFileError(f"{where}: the non-spiking accumulator ('acc') can only be the output layer")
            if self.is_fs:
                self._check_fs_layer(layer, index, where)
            elif layer.neuron.kind in ("ws", "acc"):
                self._check_phase_headroom(layer, where)
            n_prev = layer.n_out
            shape_prev = layer.out_shape
        self._validate_skips()
        return self

    def _check_fields(self) -> None:
        """The schema of docs/file-format.md for a network built in Python: the same types the manifest needs."""
        f = _Fields()
        f.int_list(self.input_shape, "input_shape", (1, 3), 1)
        for name in ("input_bits", "weight_bits", "membrane_bits", "phases", "skip_periods"):
            f.integer(getattr(self, name), name)
        f.choice(self.input_coding, "input_coding", INPUT_CODINGS)
        if not isinstance(self.metadata, dict):
            f.fail("metadata", f"must be a dict, got {_show(self.metadata)}")
        for index, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, (DenseLayer, Conv2dLayer, AvgPool2dLayer)):
                f.fail(f"layer {index}", f"must be a DenseLayer, Conv2dLayer or AvgPool2dLayer, got "
                                         f"{type(layer).__name__}")
            where = f"layer {index} ({layer.kind})"
            f.string(layer.name, f"{where}: name")
            if not isinstance(layer.neuron, NeuronParams):
                f.fail(f"{where}: neuron", f"must be a NeuronParams, got {type(layer.neuron).__name__}")
            layer.neuron.check_fields(where)
            if layer.kind == "conv2d":
                f.int_list(layer.in_shape, f"{where}: in_shape", (3,), 1)
                f.int_list(layer.stride, f"{where}: stride", (2,), 1)
                f.int_list(layer.padding, f"{where}: padding", (2,), 0)
            elif layer.kind == "avgpool2d":
                f.integer(layer.weight, f"{where}: weight")
                f.int_list(layer.kernel, f"{where}: kernel", (2,), 1)
                f.int_list(layer.stride, f"{where}: stride", (2,), 1)
                f.int_list(layer.in_shape, f"{where}: in_shape", (3,), 1)

    @staticmethod
    def _check_layer_shape(layer: Layer, where: str) -> None:
        """A weight of the right rank with no empty dimension, a conv kernel taking the input's channels, and a
        non-empty output (a layer of 0 neurons is refused)."""
        if layer.kind != "avgpool2d":
            weight = np.asarray(layer.weight)
            rank, form = (2, "[n_out, n_in]") if layer.kind == "dense" else (4, "[c_out, c_in, kh, kw]")
            if weight.ndim != rank:
                raise NetworkFileError(f"{where}: weight must have the shape {form}, got {tuple(weight.shape)}")
            if 0 in weight.shape:
                raise NetworkFileError(f"{where}: weight shape {tuple(weight.shape)} is empty; a layer needs at "
                                       f"least one neuron and one input")
            if layer.kind == "conv2d" and weight.shape[1] != layer.in_shape[0]:
                raise NetworkFileError(f"{where}: weight takes {weight.shape[1]} input channels, the input "
                                       f"{tuple(layer.in_shape)} has {layer.in_shape[0]}")
        if min(layer.out_shape) < 1:
            raise NetworkFileError(f"{where}: output shape {tuple(layer.out_shape)} is empty (the window is larger "
                                   f"than the padded input); a layer needs at least one neuron")

    def _check_inhibition(self, layer: Layer, where: str) -> None:
        """WTA strengths u_j of a dense IF/LIF layer (docs/spec.md §3c): integers in [0, 2^(M−1)−1], shape [n_out]."""
        inhibition = layer_inhibition(layer)
        if inhibition is None:
            return
        if layer.neuron.kind not in ("if", "lif"):
            raise NetworkFileError(f"{where}: lateral inhibition needs IF/LIF neurons, not {layer.neuron.kind!r}")
        arr = np.asarray(inhibition)
        if not np.issubdtype(arr.dtype, np.integer):
            raise NetworkFileError(f"{where}: inhibition must be integers, got {arr.dtype}")
        if arr.shape != (layer.n_out,):
            raise NetworkFileError(f"{where}: inhibition shape {arr.shape} != {(layer.n_out,)}")
        v_hi = signed_range(self.membrane_bits)[1]
        if arr.size and (arr.min() < 0 or arr.max() > v_hi):
            raise WidthError(
                f"{where}: inhibition strengths span [{arr.min()}, {arr.max()}] but must lie in [0, {v_hi}] "
                f"(membrane_bits={self.membrane_bits}); use membrane_bits={signed_bits_for(0, max(int(arr.max()), 1))}")

    def _validate_skips(self) -> None:
        """Residual shortcuts: source/target indices, one per junction, weight shapes and widths."""
        if not isinstance(self.skips, (list, tuple)):
            raise NetworkFileError(f"skips must be a list of SkipConnection, got {type(self.skips).__name__}")
        self.skips = sorted(self.skips, key=lambda s: int(s.target))
        w_lo, w_hi = signed_range(self.weight_bits)
        seen = set()
        n_layers = len(self.layers)
        for skip in self.skips:
            if not isinstance(skip, SkipConnection):
                raise NetworkFileError(f"skips must hold SkipConnection objects, got {type(skip).__name__}")
            where = f"skip connection {skip.source} -> {skip.target}"
            if not (isinstance(skip.target, (int, np.integer)) and isinstance(skip.source, (int, np.integer))):
                raise NetworkFileError(f"{where}: source and target must be layer indices (integers)")
            if not 1 <= skip.target <= n_layers:
                raise NetworkFileError(f"{where}: target must be a layer 1..{n_layers}")
            if not 0 <= skip.source <= skip.target - 2:
                raise NetworkFileError(f"{where}: the source must be the input (0) or a layer before "
                                       f"{skip.target - 1} (layer {skip.target - 1} is the junction's main input)")
            if skip.target in seen:
                raise NetworkFileError(f"{where}: layer {skip.target} already has a skip connection (one per junction)")
            seen.add(skip.target)
            if skip.source == 0 and self.input_coding == "direct":
                raise NetworkFileError(f"{where}: a skip from a 'direct'-coded input is not supported (the input "
                                       f"is codes, not spikes)")
            target = self.layers[skip.target - 1]
            src_shape = self.layer_shape(skip.source)
            weight = np.asarray(skip.weight)
            if not np.issubdtype(weight.dtype, np.integer):
                raise NetworkFileError(f"{where}: weight must be integers, got {weight.dtype}")
            if target.kind == "avgpool2d":
                raise NetworkFileError(f"{where}: a pooling layer cannot be a residual junction")
            if target.kind == "dense":
                n_src = int(np.prod(src_shape))
                if weight.shape != (target.n_out, n_src):
                    raise NetworkFileError(f"{where}: a dense junction takes a [{target.n_out}, {n_src}] skip "
                                           f"weight, got {tuple(weight.shape)}")
            else:
                if weight.ndim != 4 or len(src_shape) != 3:
                    raise NetworkFileError(f"{where}: a conv2d junction takes a conv skip [c_out, c_in, kh, kw] from "
                                           f"a (c, h, w) source, got weight {tuple(weight.shape)}, source {src_shape}")
                if len(tuple(skip.stride)) != 2 or len(tuple(skip.padding)) != 2 or min(skip.stride) < 1 \
                        or min(skip.padding) < 0:
                    raise NetworkFileError(f"{where}: stride must be two positive and padding two non-negative "
                                           f"integers, got {skip.stride}, {skip.padding}")
                if weight.shape[1] != src_shape[0]:
                    raise NetworkFileError(f"{where}: weight takes {weight.shape[1]} input channels, the source "
                                           f"has {src_shape[0]}")
                out = skip.as_layer(src_shape).out_shape
                if tuple(out) != tuple(target.out_shape):
                    raise NetworkFileError(f"{where}: the skip produces shape {tuple(out)} but the junction's "
                                           f"output is {tuple(target.out_shape)}")
            if weight.size and (weight.min() < w_lo or weight.max() > w_hi):
                raise WidthError(
                    f"{where}: weights span [{weight.min()}, {weight.max()}] but weight_bits={self.weight_bits} "
                    f"holds [{w_lo}, {w_hi}]; use weight_bits={signed_bits_for(int(weight.min()), int(weight.max()))}")
            if target.neuron.kind in ("ws", "acc") and not self.is_fs:  # FS junctions: docs/spec.md §3b
                layer = self.skip_layer(skip)
                v_hi = signed_range(self.membrane_bits)[1]
                need = (target.fan_in_abs_max() + layer.fan_in_abs_max()
                        + int(np.max(np.abs(target.bias)))) << (self.phases - 1)
                if need > v_hi:
                    raise WidthError(f"{where}: with K = {self.phases} phases one step's input {need} does not fit "
                                     f"membrane_bits={self.membrane_bits}; use membrane_bits="
                                     f"{signed_bits_for(-need, need)}")

    @property
    def is_fs(self) -> bool:
        """True for an FS network (input coding "fs" or any 'fs' layer; docs/spec.md §3b)."""
        return self.input_coding == "fs" or any(layer.neuron.kind == "fs" for layer in self.layers)

    @property
    def fs_latency(self) -> int:
        """Steps of one image of an FS network, L·K (0 for other networks)."""
        return len(self.layers) * self.phases if self.is_fs else 0

    def _validate_fs(self) -> None:
        if not isinstance(self.phases, int) or not 1 <= self.phases <= MAX_PHASES:
            raise WidthError(f"FS neurons need phases K in 1..{MAX_PHASES} (input codes of K bits), got "
                             f"{self.phases}")
        if self.skip_periods:
            raise NetworkFileError(f"skip_periods belongs to weighted spikes; an FS network needs 0, got "
                                   f"{self.skip_periods}")
        if self.input_coding != "fs":
            raise NetworkFileError(f"an FS network needs input_coding 'fs' (codes sent MSB first in window 1), "
                                   f"got {self.input_coding!r}")
        if self.input_bits != self.phases:
            raise WidthError(f"FS input codes have K = {self.phases} bits, but input_bits = {self.input_bits}")
        last = len(self.layers)
        for index, layer in enumerate(self.layers, start=1):
            kind = layer.neuron.kind
            want = "acc" if index == last else "fs"
            if kind != want:
                raise NetworkFileError(
                    f"layer {index}: an FS network has 'fs' hidden layers and an 'acc' output layer, got {kind!r}")

    def _check_fs_layer(self, layer: Layer, index: int, where: str) -> None:
        """FS tables of length K (docs/spec.md §3b); their entries were checked against membrane_bits."""
        if layer.neuron.kind == "fs" and layer.neuron.fs_phases != self.phases:
            raise NetworkFileError(f"{where}: FS tables have {layer.neuron.fs_phases} entries but phases K = "
                                   f"{self.phases}")

    def _validate_phases(self) -> None:
        if self.is_fs:
            self._validate_fs()
            return
        kinds = {layer.neuron.kind for layer in self.layers}
        weighted = self.input_coding == "weighted" or bool(kinds & {"ws", "acc"})
        if not weighted:
            if self.phases or self.skip_periods:
                raise NetworkFileError("phases/skip_periods are set but no layer uses weighted spikes")
            return
        if not 1 <= self.phases <= 16:
            raise WidthError(f"weighted spikes need phases K in 1..16, got {self.phases}")
        if self.skip_periods < 0:
            raise NetworkFileError(f"skip_periods must be >= 0, got {self.skip_periods}")
        if self.input_coding == "weighted" and self.input_bits != self.phases:
            raise WidthError(f"weighted input codes have K = {self.phases} bits, but input_bits = {self.input_bits}")

    def _check_phase_headroom(self, layer: Layer, where: str) -> None:
        """The phase-1 threshold θ << (K−1) and one step's input I << (K−1) must be representable (SPEC §3 WS)."""
        v_hi = signed_range(self.membrane_bits)[1]
        shift = self.phases - 1
        need = max(int(np.max(layer.threshold)), layer.fan_in_abs_max() + int(np.max(np.abs(layer.bias)))) << shift
        if need > v_hi:
            extra = f"the membrane needs {shift} extra bit{'s' if shift > 1 else ''}: " if shift else ""
            raise WidthError(
                f"{where}: with K = {self.phases} phase{'s' if self.phases > 1 else ''} {extra}the largest threshold "
                f"or one step's input, {need}, does not fit membrane_bits={self.membrane_bits}; use membrane_bits="
                f"{signed_bits_for(-need, need)}")

    # ----------------------------------------------------------------------------------------------- file format
    def save(self, path: str | os.PathLike, *, force: bool = False, option: str = "output") -> Path:
        """Write the network as a directory ``path`` (``network.yaml`` + ``arrays.npz``), atomically
        (:func:`golden.core.files.staged_output`): an earlier network directory there is replaced, an earlier snncosim
        output of another kind only with ``force``, and anything else (a user's file or directory) never.
        The manifest carries ``arrays_sha256`` (the bytes of arrays.npz) and ``network_sha256`` (:meth:`digest`)."""
        self.validate()
        path = Path(path)
        fields, arrays = self._file_contents()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        blob = buffer.getvalue()
        metadata = _plain(self.metadata)
        try:
            yaml.safe_dump(metadata)
        except yaml.YAMLError as exc:
            raise NetworkFileError(f"metadata: holds a value that YAML cannot store ({_one_line(exc)})") from None
        manifest = {
            "format": FORMAT_NAME,
            "version": self._format_version(),
            **fields,
            "arrays_sha256": hashlib.sha256(blob).hexdigest(),
            "network_sha256": _digest_of(fields, arrays),
            "metadata": metadata,
        }
        with staged_output(path, "network", force=force, option=option) as staging:
            (staging / "arrays.npz").write_bytes(blob)
            (staging / "network.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return path

    def digest(self) -> str:
        """SHA-256 (hex) of what the network computes, the ``network_sha256`` that :meth:`save` writes: a
        canonical serialisation of every manifest field except ``format``, ``version``, the checksums and the
        free-form ``metadata`` (input shape, coding and widths, phases, every layer's kind, name, neuron and
        geometry, the skips), followed by every array as int64 (docs/file-format.md). Equal networks have equal
        digests, whether built in Python or loaded. Validates the network first."""
        self.validate()
        return _digest_of(*self._file_contents())

    def _file_contents(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(fields, arrays)``: the manifest's semantic fields as plain Python values, exactly as :meth:`save`
        writes them, and the int64 arrays of arrays.npz by name."""
        arrays: dict[str, np.ndarray] = {}
        layer_entries = []
        for index, layer in enumerate(self.layers):
            entry: dict = {"kind": layer.kind, "name": str(layer.name), "neuron": layer.neuron.to_dict()}
            if layer.kind == "avgpool2d":
                entry.update(weight=int(layer.weight), kernel=[int(v) for v in layer.kernel],
                             stride=[int(v) for v in layer.stride], in_shape=[int(v) for v in layer.in_shape])
                arrays[f"layer{index}.threshold"] = np.asarray(layer.threshold, dtype=np.int64)
            else:
                for array_name in ("weight", "bias", "threshold"):
                    arrays[f"layer{index}.{array_name}"] = np.asarray(getattr(layer, array_name), dtype=np.int64)
                if layer_inhibition(layer) is not None:
                    arrays[f"layer{index}.inhibition"] = np.asarray(layer.inhibition, dtype=np.int64)
                if layer.kind == "conv2d":
                    entry.update(in_shape=[int(v) for v in layer.in_shape], stride=[int(v) for v in layer.stride],
                                 padding=[int(v) for v in layer.padding])
            layer_entries.append(entry)
        skip_entries = []
        for index, skip in enumerate(self.skips):
            skip_entries.append(skip.to_dict())
            arrays[f"skip{index}.weight"] = np.asarray(skip.weight, dtype=np.int64)
        fields = {
            "input_shape": [int(v) for v in self.input_shape],
            "input_coding": str(self.input_coding),
            "input_bits": int(self.input_bits),
            "weight_bits": int(self.weight_bits),
            "membrane_bits": int(self.membrane_bits),
            "phases": int(self.phases),
            "skip_periods": int(self.skip_periods),
            "layers": layer_entries,
            **({"skips": skip_entries} if skip_entries else {}),
        }
        return fields, arrays

    def _format_version(self) -> int:
        """The lowest version that holds this network: 2 when a layer uses lateral inhibition or floor_threshold,
        or the network has skip connections (docs/file-format.md), else 1, so that files without these features
        stay readable by older readers."""
        lee = any(layer_inhibition(layer) is not None or layer.neuron.floor_threshold
                  for layer in self.layers)
        return FORMAT_VERSION if lee or self.skips else 1

    @classmethod
    def load(cls, path: str | os.PathLike) -> "IntegerNetwork":
        """Read a network directory written by :meth:`save` (any readable version). Every defect is one line,
        a :class:`NetworkFileError` (or :class:`WidthError`) naming the file and the field or array: the
        manifest's schema (:func:`_check_manifest`), ``arrays_sha256``, every array (readable, integer, its rank,
        none missing or extra), ``network_sha256`` (when present: files written before it lack it) and finally
        :meth:`validate`."""
        path = Path(path)
        manifest_path, arrays_path = path / "network.yaml", path / "arrays.npz"
        if not path.is_dir() or not manifest_path.is_file() or not arrays_path.is_file():
            raise NetworkFileError(
                f"{path}: not an integer-network directory (expected network.yaml and arrays.npz inside)")
        manifest = _read_manifest(manifest_path)
        _check_manifest(manifest, str(manifest_path))
        try:
            blob = arrays_path.read_bytes()
        except OSError as exc:
            raise NetworkFileError(f"{arrays_path}: cannot be read ({exc.strerror or exc.__class__.__name__})") \
                from None
        if hashlib.sha256(blob).hexdigest() != manifest["arrays_sha256"]:
            raise NetworkFileError(f"{arrays_path}: checksum mismatch (arrays_sha256 in network.yaml), the file is "
                                   f"corrupted or was edited")
        arrays = _read_arrays(arrays_path, blob, _expected_arrays(manifest), manifest["version"])
        try:
            network = cls._from_manifest(manifest, arrays)
            if "network_sha256" in manifest and _digest_of(*network._file_contents()) != manifest["network_sha256"]:
                raise NetworkFileError(
                    f"{manifest_path}: network_sha256: checksum mismatch over the manifest and arrays.npz, the file "
                    f"was edited or is damaged (to change a network, change it in Python and save it)")
            network.validate()
        except (NetworkFileError, WidthError) as exc:
            if str(exc).startswith(str(path)):
                raise
            raise exc.__class__(f"{path}: {exc}") from None
        except Exception as exc:  # a combination the schema and the checks above do not foresee
            raise NetworkFileError(f"{path}: malformed network file ({_one_line(exc)})") from None
        return network

    @classmethod
    def _from_manifest(cls, manifest: dict, arrays: dict[str, np.ndarray]) -> "IntegerNetwork":
        """The network a schema-checked manifest and its checked arrays describe (not yet validated)."""
        layers: list[Layer] = []
        for index, entry in enumerate(manifest["layers"]):
            neuron = NeuronParams(**entry["neuron"])
            kind, name = entry["kind"], entry.get("name", "")
            get = lambda array_name: arrays[f"layer{index}.{array_name}"]  # noqa: E731
            if kind == "dense":
                layer = DenseLayer(get("weight"), get("bias"), get("threshold"), neuron, name,
                                   arrays.get(f"layer{index}.inhibition"))
            elif kind == "conv2d":
                layer = Conv2dLayer(get("weight"), get("bias"), get("threshold"), tuple(entry["in_shape"]),
                                    tuple(entry["stride"]), tuple(entry["padding"]), neuron, name)
            else:
                layer = AvgPool2dLayer(int(entry["weight"]), get("threshold"), tuple(entry["in_shape"]),
                                       tuple(entry["kernel"]), tuple(entry["stride"]), neuron, name)
            layers.append(layer)
        skips = []
        for index, entry in enumerate(manifest.get("skips") or []):
            skips.append(SkipConnection(int(entry["target"]), int(entry["source"]), arrays[f"skip{index}.weight"],
                                        tuple(entry.get("stride", (1, 1))), tuple(entry.get("padding", (0, 0)))))
        return cls(
            input_shape=tuple(manifest["input_shape"]),
            layers=layers,
            weight_bits=manifest["weight_bits"],
            membrane_bits=manifest["membrane_bits"],
            input_coding=manifest["input_coding"],
            input_bits=manifest["input_bits"],
            metadata=manifest.get("metadata") or {},
            phases=manifest.get("phases", 0),
            skip_periods=manifest.get("skip_periods", 0),
            skips=skips,
        )


def _plain(value):
    """Convert numpy scalars/arrays inside metadata to plain YAML-safe Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
