"""IntegerNetwork → NIR graph (the ``nir`` package; docs/nir.md).

A rate-coded IF/LIF network is written in **integer units** (scale 1): every synapse node holds the integer
weights and biases as float64 (exact), every neuron node ``r`` = the integer gain of its input (1 for dense and
conv layers, the pool weight for pooling layers, times ``2^k`` for LIF), ``v_threshold = θ − 0.5`` (NIR fires at
``v > v_threshold``; on the integer membrane that is ``v ≥ θ``) and ``v_reset = 0``. An LIF layer with
``leak_shift`` k has ``τ = dt·2^k`` and ``r = 2^k`` with ``dt`` = :data:`EXPORT_DT` (snnTorch's convention
``r = τ/dt``): the Euler step ``v += dt/τ·(−v + r·I)`` is ``v − v·2^-k + I``. What NIR cannot say natively —
reset by subtraction, the membrane floor, the widths and saturation, the input code width and scale, the
layer names and the network's digest — is kept in the nodes' and the graph's ``metadata`` (keys in
docs/nir.md), so that :func:`golden.nir.importer.import_nir` gets the same integer network back bit for bit.

Refused (:class:`NirExportError`, one line saying why): weighted-spike and FS networks (their neurons have
phase-dependent thresholds or send multi-spike codes, which NIR's IF/LIF have not), direct-coded inputs and
lateral inhibition.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from golden.core.errors import SnnCosimError
from golden.core.network import IntegerNetwork

FORMAT = "snncosim-nir"  # graph metadata["snncosim_format"]
FORMAT_VERSION = 1
EXPORT_DT = 1e-4  # the time step the exported LIF time constants refer to (snnTorch's default)


class NirExportError(SnnCosimError):
    """A network that NIR cannot carry."""


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - the extra is missing
        raise SnnCosimError("NIR support needs the 'nir' package: pip install 'snncosim[nir]' (or pip install nir)") \
            from None
    return nir


def check_exportable(network: IntegerNetwork) -> None:
    """Raise :class:`NirExportError` unless ``network`` is a rate-coded IF/LIF network without inhibition."""
    kinds = sorted({layer.neuron.kind for layer in network.layers})
    if network.is_fs or network.input_coding in ("weighted", "fs") or set(kinds) & {"ws", "acc", "fs"}:
        what = "an FS network" if network.is_fs else "a weighted-spike network"
        raise NirExportError(
            f"{what} cannot be exported to NIR: its neurons ({', '.join(kinds)}) use phase-dependent thresholds "
            f"and shifts or send multi-spike codes over K = {network.phases} phases, which NIR's IF/LIF neurons "
            f"(one threshold, binary spikes, no global phase) cannot express; only rate-coded IF/LIF networks can")
    if network.input_coding != "rate":
        raise NirExportError(f"input coding {network.input_coding!r} cannot be exported to NIR: the graph's input "
                             f"is spikes, so only rate-coded networks can")
    for index, layer in enumerate(network.layers, start=1):
        if layer.kind == "dense" and layer.inhibition is not None:
            raise NirExportError(f"layer {index} ({layer.name or layer.kind}) has lateral inhibition, which NIR's "
                                 f"IF/LIF neurons cannot express (it acts on the membranes after the spikes)")


def _node_names(network: IntegerNetwork) -> list[str]:
    return [f"L{index}" for index in range(1, len(network.layers) + 1)]


def _input_scale(network: IntegerNetwork):
    meta = network.metadata or {}
    value = meta.get("input_scale")
    if value is None and isinstance(meta.get("input"), dict):
        value = meta["input"].get("scale")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def export_nir(network: IntegerNetwork):
    """The NIR graph (``nir.NIRGraph``) of a rate-coded IF/LIF ``network`` (module docstring)."""
    nir = _nir()
    network.validate()
    check_exportable(network)
    names = _node_names(network)
    nodes: dict = {"input": nir.Input(input_type=np.array(network.input_shape, dtype=np.int64))}
    edges: list[tuple[str, str]] = []
    neuron_of = ["input"] + [f"{name}_neuron" for name in names]

    def source(index: int, target_dense: bool, prefix: str) -> str:
        """The node feeding a synapse from layer ``index`` (0: the input): a Flatten in between when a dense
        synapse reads a (c, h, w) source."""
        shape = network.layer_shape(index)
        if target_dense and len(shape) == 3:
            flat = f"{prefix}_flatten"
            nodes[flat] = nir.Flatten(input_type={"input": np.array(shape, dtype=np.int64)}, start_dim=0, end_dim=-1)
            edges.append((neuron_of[index], flat))
            return flat
        return neuron_of[index]

    for index, (layer, name) in enumerate(zip(network.layers, names), start=1):
        synapse = f"{name}_{layer.kind}"
        in_shape = network.layer_shape(index - 1)
        gain = 1
        if layer.kind == "dense":
            nodes[synapse] = nir.Affine(weight=np.asarray(layer.weight, dtype=np.float64),
                                        bias=np.asarray(layer.bias, dtype=np.float64))
        elif layer.kind == "conv2d":
            nodes[synapse] = nir.Conv2d(
                input_shape=(int(in_shape[1]), int(in_shape[2])), weight=np.asarray(layer.weight, dtype=np.float64),
                stride=tuple(int(v) for v in layer.stride), padding=tuple(int(v) for v in layer.padding),
                dilation=(1, 1), groups=1, bias=np.asarray(layer.bias, dtype=np.float64))
        else:
            nodes[synapse] = nir.SumPool2d(kernel_size=np.array(layer.kernel, dtype=np.int64),
                                           stride=np.array(layer.stride, dtype=np.int64),
                                           padding=np.zeros(2, dtype=np.int64))
            gain = int(layer.weight)
        edges.append((source(index - 1, layer.kind == "dense", f"{name}_in"), synapse))
        neuron = neuron_of[index]
        nodes[neuron] = _neuron_node(nir, network, index, layer, gain)
        edges.append((synapse, neuron))
        skip = network.skip_into(index)
        if skip is not None:
            skip_node = f"skip{skip.source}_{index}"
            weight = np.asarray(skip.weight, dtype=np.float64)
            if skip.kind == "conv2d":
                src_shape = network.layer_shape(skip.source)
                nodes[skip_node] = nir.Conv2d(
                    input_shape=(int(src_shape[1]), int(src_shape[2])), weight=weight,
                    stride=tuple(int(v) for v in skip.stride), padding=tuple(int(v) for v in skip.padding),
                    dilation=(1, 1), groups=1, bias=np.zeros(weight.shape[0]), metadata={"snncosim_skip": 1})
            else:
                nodes[skip_node] = nir.Linear(weight=weight, metadata={"snncosim_skip": 1})
            edges.append((source(skip.source, skip.kind == "dense", f"{skip_node}_in"), skip_node))
            edges.append((skip_node, neuron))
    nodes["output"] = nir.Output(output_type=np.array(network.layers[-1].out_shape, dtype=np.int64))
    edges.append((neuron_of[-1], "output"))
    meta = {"snncosim_format": FORMAT, "snncosim_version": FORMAT_VERSION, "dt": EXPORT_DT,
            "input_coding": str(network.input_coding), "input_bits": int(network.input_bits),
            "weight_bits": int(network.weight_bits), "membrane_bits": int(network.membrane_bits),
            "saturation": "every membrane write saturates to membrane_bits (two's complement)",
            "input_shape": np.array(network.input_shape, dtype=np.int64), "network_sha256": network.digest()}
    scale = _input_scale(network)
    if scale is not None:
        meta["input_scale"] = scale
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _neuron_node(nir, network: IntegerNetwork, index: int, layer, gain: int):
    shape = tuple(int(v) for v in layer.out_shape)
    threshold = np.asarray(layer.threshold, dtype=np.float64)
    if len(shape) == 3:  # per channel in the IR, per neuron in NIR (sinabs' v_mem-shaped arrays)
        threshold = np.broadcast_to(threshold[:, None, None], shape)
    ones = np.ones(shape, dtype=np.float64)
    neuron = layer.neuron
    meta = {"snncosim_layer": int(index), "snncosim_kind": str(layer.kind), "snncosim_name": str(layer.name),
            "snncosim_reset": str(neuron.reset), "snncosim_leak_shift": int(neuron.leak_shift)}
    if neuron.floor is not None:
        meta["snncosim_floor"] = int(neuron.floor)
    if neuron.floor_threshold:
        meta["snncosim_floor_threshold"] = 1
    v_threshold = np.array(threshold - 0.5)
    if neuron.kind == "lif":
        k = int(neuron.leak_shift)
        return nir.LIF(tau=ones * (EXPORT_DT * 2.0 ** k), r=ones * float(gain) * 2.0 ** k, v_leak=ones * 0.0,
                       v_threshold=v_threshold, v_reset=ones * 0.0, metadata=meta)
    return nir.IF(r=ones * float(gain), v_threshold=v_threshold, v_reset=ones * 0.0, metadata=meta)


def is_snncosim_nir(path: str | os.PathLike) -> bool:
    """True when ``path`` is an HDF5 file holding a NIR graph that :func:`write_nir` wrote (the graph's
    ``snncosim_format`` metadata)."""
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            value = handle["node"]["metadata"]["snncosim_format"][()]
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)) == FORMAT


def check_nir_output(path: str | os.PathLike, *, force: bool = False, option: str = "-o") -> Path:
    """Raise :class:`golden.core.files.OutputPathError` unless ``path`` may receive a ``.nir`` file: it does not
    exist (its folder can be written), or it is a ``.nir`` file that snncosim wrote earlier (replaced, like every
    same-kind output). A user's file, a link or a directory is never replaced, ``force`` or not (``force`` lets
    nothing else through: there is no other snncosim output kind that is a single ``.nir`` file)."""
    from golden.core.files import OutputPathError, check_writable_file

    path = Path(path)
    if path.is_symlink():
        raise OutputPathError(f"{option} {path}: is a symbolic link; snncosim does not write through links "
                              f"(give the real path)")
    check_writable_file(path, option)
    if path.exists() and not is_snncosim_nir(path):
        raise OutputPathError(f"{option} {path}: a file of that name exists and is not a NIR graph written by "
                              f"snncosim; snncosim never replaces it (choose another path)")
    return path


def write_nir(network: IntegerNetwork, path: str | os.PathLike, *, force: bool = False, option: str = "-o") -> Path:
    """Export ``network`` (:func:`export_nir`) and write it to ``path`` atomically: the graph is serialised to
    memory, then written through a temporary sibling renamed into place (golden.core.files); nothing is written
    when the export is refused. Output rules: :func:`check_nir_output`."""
    import io

    nir = _nir()
    path = check_nir_output(path, force=force, option=option)
    graph = export_nir(network)
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    from golden.core.files import write_bytes_atomic

    return write_bytes_atomic(path, buffer.getvalue())
