"""The integer network's file format (docs/file-format.md): a directory holding ``network.yaml`` (the manifest,
checked against a strict schema) and ``arrays.npz`` (integer arrays, loaded with ``allow_pickle=False``), with two
SHA-256 checksums: ``arrays_sha256`` over the bytes of arrays.npz and ``network_sha256`` (:func:`network_digest`)
over every manifest field but ``metadata`` plus every array. :meth:`IntegerNetwork.save`, ``.load`` and
``.digest`` call this module."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import yaml

from golden.core.errors import NetworkFileError, WidthError
from golden.core.files import staged_output
from golden.core.network import (FS_TABLE_FIELDS, INPUT_CODINGS, LAYER_KINDS, MAX_PHASES, NEURON_KINDS, RESET_MODES,
                                 SKIP_KINDS, AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, Layer,
                                 NeuronParams, SkipConnection, layer_inhibition, signed_range)
from golden.core.schema import Fields, is_int, one_line, show

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS", "save_network", "load_network", "network_digest",
           "file_contents"]

FORMAT_NAME = "snncosim-integer-network"
FORMAT_VERSION = 2  # the newest version written; plain networks are still written as 1
READABLE_VERSIONS = (1, 2)  # version 2 adds lateral inhibition, floor_threshold and the `skips` list
NETWORK_DIGEST_TAG = b"snncosim-network-sha256-v1\0"  # changes only with the canonical form of network_digest()


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
    f = Fields(f"{file}: ")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = f" (format: {show(manifest.get('format'))})" if isinstance(manifest, dict) else ""
        raise NetworkFileError(f"{file}: not a {FORMAT_NAME} manifest{found}")
    if "version" not in manifest:
        f.fail("version", "required key missing")
    version = manifest["version"]
    if not is_int(version) or version not in READABLE_VERSIONS:
        raise NetworkFileError(f"{file}: version: format version {show(version)} is not supported "
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
        f.fail("layers", f"must be a non-empty list of layers, got {show(layers)}")
    for index, entry in enumerate(layers):
        _check_layer_entry(f, entry, f"layers[{index}]", membrane_bits, version)
    skips = manifest.get("skips")
    if skips is not None:
        if not isinstance(skips, list):
            f.fail("skips", f"must be a list of skip connections, got {show(skips)}")
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
        f.fail("metadata", f"must be a mapping, got {show(manifest['metadata'])}")
    f.sha256(manifest["arrays_sha256"], "arrays_sha256")
    if "network_sha256" in manifest:
        f.sha256(manifest["network_sha256"], "network_sha256")


def _check_layer_entry(f: Fields, entry, field: str, membrane_bits: int, version: int) -> None:
    if not isinstance(entry, dict):
        f.fail(field, f"must be a mapping, got {show(entry)}")
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
                f.fail(f"{where}.{name}", f"must be a list of integers, got {show(table)}")
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
        raise NetworkFileError(f"{arrays_path}: damaged npz archive ({one_line(exc)})") from None
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
                raise NetworkFileError(f"{arrays_path}: {name}: cannot be read ({one_line(exc)})") from None
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


def save_network(network: IntegerNetwork, path: str | os.PathLike, *, force: bool = False,
                 option: str = "output") -> Path:
    """Write the network as a directory ``path`` (``network.yaml`` + ``arrays.npz``), atomically
    (:func:`golden.core.files.staged_output`): an earlier network directory there is replaced, an earlier snncosim
    output of another kind only with ``force``, and anything else (a user's file or directory) never.
    The manifest carries ``arrays_sha256`` (the bytes of arrays.npz) and ``network_sha256`` (:func:`network_digest`)."""
    network.validate()
    path = Path(path)
    fields, arrays = file_contents(network)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    blob = buffer.getvalue()
    metadata = _plain(network.metadata)
    try:
        yaml.safe_dump(metadata)
    except yaml.YAMLError as exc:
        raise NetworkFileError(f"metadata: holds a value that YAML cannot store ({one_line(exc)})") from None
    manifest = {
        "format": FORMAT_NAME,
        "version": format_version(network),
        **fields,
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        "network_sha256": _digest_of(fields, arrays),
        "metadata": metadata,
    }
    with staged_output(path, "network", force=force, option=option) as staging:
        (staging / "arrays.npz").write_bytes(blob)
        (staging / "network.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path

def network_digest(network: IntegerNetwork) -> str:
    """SHA-256 (hex) of what the network computes, the ``network_sha256`` that :func:`save_network` writes: a
    canonical serialisation of every manifest field except ``format``, ``version``, the checksums and the
    free-form ``metadata`` (input shape, coding and widths, phases, every layer's kind, name, neuron and
    geometry, the skips), followed by every array as int64 (docs/file-format.md). Equal networks have equal
    digests, whether built in Python or loaded. Validates the network first."""
    network.validate()
    return _digest_of(*file_contents(network))

def file_contents(network: IntegerNetwork) -> tuple[dict, dict[str, np.ndarray]]:
    """``(fields, arrays)``: the manifest's semantic fields as plain Python values, exactly as :func:`save_network`
    writes them, and the int64 arrays of arrays.npz by name."""
    arrays: dict[str, np.ndarray] = {}
    layer_entries = []
    for index, layer in enumerate(network.layers):
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
    for index, skip in enumerate(network.skips):
        skip_entries.append(skip.to_dict())
        arrays[f"skip{index}.weight"] = np.asarray(skip.weight, dtype=np.int64)
    fields = {
        "input_shape": [int(v) for v in network.input_shape],
        "input_coding": str(network.input_coding),
        "input_bits": int(network.input_bits),
        "weight_bits": int(network.weight_bits),
        "membrane_bits": int(network.membrane_bits),
        "phases": int(network.phases),
        "skip_periods": int(network.skip_periods),
        "layers": layer_entries,
        **({"skips": skip_entries} if skip_entries else {}),
    }
    return fields, arrays

def format_version(network: IntegerNetwork) -> int:
    """The lowest version that holds this network: 2 when a layer uses lateral inhibition or floor_threshold,
    or the network has skip connections (docs/file-format.md), else 1, so that files without these features
    stay readable by older readers."""
    lee = any(layer_inhibition(layer) is not None or layer.neuron.floor_threshold
              for layer in network.layers)
    return FORMAT_VERSION if lee or network.skips else 1

def load_network(path: str | os.PathLike) -> IntegerNetwork:
    """Read a network directory written by :func:`save_network` (any readable version). Every defect is one line,
    a :class:`NetworkFileError` (or :class:`WidthError`) naming the file and the field or array: the
    manifest's schema (:func:`_check_manifest`), ``arrays_sha256``, every array (readable, integer, its rank,
    none missing or extra), ``network_sha256`` (when present: files written before it lack it) and finally
    :meth:`IntegerNetwork.validate`."""
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
        network = _network_from_manifest(manifest, arrays)
        if "network_sha256" in manifest and _digest_of(*file_contents(network)) != manifest["network_sha256"]:
            raise NetworkFileError(
                f"{manifest_path}: network_sha256: checksum mismatch over the manifest and arrays.npz, the file "
                f"was edited or is damaged (to change a network, change it in Python and save it)")
        network.validate()
    except (NetworkFileError, WidthError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise exc.__class__(f"{path}: {exc}") from None
    except Exception as exc:  # a combination the schema and the checks above do not foresee
        raise NetworkFileError(f"{path}: malformed network file ({one_line(exc)})") from None
    return network

def _network_from_manifest(manifest: dict, arrays: dict[str, np.ndarray]) -> IntegerNetwork:
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
    return IntegerNetwork(
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
