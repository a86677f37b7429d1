"""One point of ``snncosim sweep``, as a Dask worker runs it: convert the torch model for the point (or take its
.snn network), run the golden model on the point's test images (accuracy, counters, energy per chip), then the
first ``rtl_images`` of them on the RTL engine under Verilator (the build is shared on disk: :func:`cosim.runner.
build` serialises builds of one key with a lock file, so workers never build into the same directory at once) and
compare. The figures come back as one flat row; any exception becomes a row with status ``failed``, its one-line
error and its traceback, so that no point is ever dropped.

Rate-coded spikes are drawn per image index (``encode_inputs(first_index=...)``), so a data shard's images get the
spikes they would get in one unsharded run: shards of one point add up to the unsharded figures.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.core.errors import SnnCosimError, TraceMismatch

from .sweep_grid import DEFAULT_LANES, DEFAULT_PHASES, DEFAULT_STEPS

__all__ = ["ModelSource", "NetworkSource", "Settings", "Task", "run_task", "base_row", "failed_row",
           "worker_environment", "source_digest"]

GOLDEN_CHUNK = 1000  # images per golden-model batch (bounded memory; the spikes do not depend on it)
_CACHE_LIMIT = 8


@dataclass(frozen=True)
class ModelSource:
    """A torch model converted at each point: the default MLP (``model``, pickled with the task), or the user's
    ``FILE.py:FUNCTION`` shipped as its text (and ``weights`` as bytes) so that workers on other machines need no
    copy of it; a worker that sees the same file at ``path`` loads it from there (its sibling imports work)."""

    label: str
    model: object = None
    path: str = ""
    module_text: str = ""
    function: str = ""
    weights: bytes | None = None

    @property
    def digest(self) -> str:
        data = hashlib.sha256()
        for part in (self.label, self.path, self.module_text, self.function):
            data.update(part.encode() + b"\0")
        data.update(self.weights or b"")
        return data.hexdigest()


@dataclass(frozen=True)
class NetworkSource:
    """Saved integer networks by grid value (the ``network`` key), read and checked by the client."""

    networks: dict


@dataclass(frozen=True)
class Settings:
    """What every point shares: RTL images per point, the test images (None: the whole test part), the number of
    data shards, the Verilator build directory (None: the worker's own default), the chip models, torch threads."""

    rtl_images: int
    test_images: int | None
    shards: int
    build_dir: str | None
    chips: tuple = ()
    threads: int = 1


@dataclass(frozen=True)
class Task:
    """Point ``index`` of the sweep: the grid values it was given and its data shard."""

    index: int
    point: dict
    shard: int = 0

    @property
    def params(self) -> dict:
        return dict(self.point)


@dataclass
class _Caches:
    models: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)


_caches = _Caches()  # per worker process: points of one conversion share it (T, P, seed and shards do not convert)


# ----------------------------------------------------------------------------------------------- rows
def base_row(task: Task, source) -> dict:
    """The parameters of a point as far as they are known before it runs (defaults filled in); a finished point
    replaces them with what ran (the network's coding, K, widths, T)."""
    point = task.point
    row: dict = {"point": task.index}
    if isinstance(source, NetworkSource):
        network = source.networks[point["network"]]
        row["network"] = point["network"]
        row["coding"] = "fs" if network.is_fs else network.input_coding
        row["T"] = point.get("T", network.fs_latency if network.is_fs else DEFAULT_STEPS.get(row["coding"], 64))
        row["K"] = int(network.phases) or None
        row["weight_bits"], row["membrane_bits"] = int(network.weight_bits), int(network.membrane_bits)
    else:
        coding = point.get("coding", "rate")
        row["network"] = source.label
        row["coding"] = coding
        row["T"] = point.get("T", DEFAULT_STEPS.get(coding))
        row["K"] = point.get("K", DEFAULT_PHASES.get(coding))
        row["weight_bits"] = point.get("weight_bits", 8)
        row["membrane_bits"] = point.get("membrane_bits", 24)
    row["P"] = point.get("P", DEFAULT_LANES)
    row["seed"] = point.get("seed", 0)
    row["shard"] = task.shard
    row["params"] = task.params
    return row


def failed_row(task: Task, source, error: BaseException | str, trace_text: str, status: str = "failed",
               worker: str | None = None) -> dict:
    """The row of a point that raised ``error`` (on its worker, or on Dask's side: then ``worker`` says so)."""
    row = base_row(task, source)
    message = error if isinstance(error, str) else _one_line(error)
    row.update(status=status, verdict="MISMATCH" if status == "mismatch" else None, error=message,
               traceback=trace_text, worker=worker or _worker_name())
    return row


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _worker_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


# ----------------------------------------------------------------------------------------------- the task
def run_task(task: Task, source, data, settings: Settings) -> dict:
    """Run one point; never raises an ordinary exception (it becomes a ``failed`` row, or ``mismatch`` when the
    RTL's own output is inconsistent)."""
    try:
        return _run(task, source, data, settings)
    except TraceMismatch as exc:
        return failed_row(task, source, exc, traceback.format_exc(), status="mismatch")
    except Exception as exc:  # noqa: BLE001 - reported in the results with its traceback, never dropped
        return failed_row(task, source, exc, traceback.format_exc())


def _run(task: Task, source, data, settings: Settings) -> dict:
    import torch

    torch.set_num_threads(settings.threads)
    row = base_row(task, source)
    point = task.point
    network, ann_accuracy, convert_seconds = _network(point, source, data)
    codes, labels = data.test_part(settings.test_images)
    start, stop = shard_bounds(len(codes), settings.shards, task.shard)
    codes, labels = codes[start:stop], labels[start:stop]
    lanes = point.get("P", DEFAULT_LANES)
    seed = point.get("seed", 0)
    steps = point.get("T")

    t0 = time.perf_counter()
    correct, counts = _golden(network, codes, labels, start, steps, lanes, seed)
    golden_seconds = time.perf_counter() - t0
    from golden.simulation.inputs import default_steps

    row.update(coding="fs" if network.is_fs else network.input_coding,
               T=int(steps if steps is not None else default_steps(network)), K=int(network.phases) or None,
               weight_bits=int(network.weight_bits), membrane_bits=int(network.membrane_bits),
               layers="-".join(str(n) for n in network.layer_sizes))
    row.update(status="ok", verdict="not run", first_difference=None, ann_accuracy=ann_accuracy,
               golden_accuracy=correct / len(codes), test_images=len(codes), first_test_image=start,
               rtl_images=0, cycles_per_image=counts.total_cycles / counts.images,
               acs_per_image=counts.total("acs") / counts.images,
               spikes_per_image=counts.total("spikes") / counts.images,
               energy_pj_per_image=_energy(network, counts, lanes, settings.chips),
               convert_seconds=convert_seconds, golden_seconds=golden_seconds)
    if settings.rtl_images:
        row.update(_rtl(network, codes[:settings.rtl_images], start, steps, lanes, seed, settings.build_dir))
        if row["verdict"] != "EQUIVALENT":
            row["status"] = "mismatch"
    row.update(worker=_worker_name(), error=None, traceback=None)
    return row


def shard_bounds(n_images: int, shards: int, shard: int) -> tuple[int, int]:
    """Images ``[start, stop)`` of shard ``shard`` of ``shards`` contiguous, near-equal shards."""
    return shard * n_images // shards, (shard + 1) * n_images // shards


def _network(point: dict, source, data):
    """``(network, ANN accuracy or None, conversion seconds)``; a conversion is cached per worker process. A saved
    network's ANN accuracy is the one its file records (``metadata.ann.accuracy``), when it records one."""
    if isinstance(source, NetworkSource):
        network = source.networks[point["network"]]
        return network, _recorded_ann_accuracy(network), 0.0
    recipe = _recipe(point)
    key = (source.digest, data.name, tuple(sorted(recipe.items())))
    cached = _caches.networks.get(key)
    if cached is not None:
        return cached[0], cached[1], 0.0
    from cosim import api

    t0 = time.perf_counter()
    network = api.convert(_model(source), data, **recipe)
    seconds = time.perf_counter() - t0
    accuracy = _recorded_ann_accuracy(network)
    _remember(_caches.networks, key, (network, accuracy))
    return network, accuracy, seconds


def _recorded_ann_accuracy(network) -> float | None:
    ann = network.metadata.get("ann") if isinstance(network.metadata, dict) else None
    accuracy = ann.get("accuracy") if isinstance(ann, dict) else None
    value = accuracy.get("value") if isinstance(accuracy, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _recipe(point: dict) -> dict:
    """The conversion of a point, as :func:`cosim.api.convert` keywords (snncosim convert's defaults)."""
    from golden.core.network import NeuronParams

    coding = point.get("coding", "rate")
    recipe = {"coding": coding, "norm": point.get("norm", "data"), "weight_bits": point.get("weight_bits", 8),
              "membrane_bits": point.get("membrane_bits", 24), "percentile": point.get("percentile", 99.9),
              "spikenorm_images": 256}
    if coding == "rate":
        kind = point.get("neuron", "if")
        from golden.conversion import DEFAULT_NEURON

        reset = point.get("reset", DEFAULT_NEURON.reset)
        recipe["neuron"] = NeuronParams(kind, reset, point.get("leak_shift", 4) if kind == "lif" else 0, None)
    else:
        recipe["phases"] = point.get("K", DEFAULT_PHASES[coding])
        if coding == "weighted":
            recipe["skip_periods"] = point.get("S", 0)
    return recipe


def _model(source: ModelSource):
    if source.model is not None:
        return source.model
    model = _caches.models.get(source.digest)
    if model is None:
        model = _load_shipped_model(source)
        _remember(_caches.models, source.digest, model)
    return model


def _load_shipped_model(source: ModelSource):
    from .user_model import load_user_model  # the one loader of FILE.py:FUNCTION (checks, one-line errors)

    local = Path(source.path)
    try:
        same = local.is_file() and local.read_text() == source.module_text
    except (OSError, UnicodeDecodeError):
        same = False
    folder = Path(tempfile.mkdtemp(prefix="snncosim-sweep-model-"))
    try:
        module = local if same else folder / local.name
        if not same:
            module.write_text(source.module_text)
        weights = None
        if source.weights is not None:
            weights = folder / "weights.pt"
            weights.write_bytes(source.weights)
        return load_user_model(f"{module}:{source.function}", weights)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remember(cache: dict, key, value) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _golden(network, codes, labels, first_index: int, steps, lanes: int, seed: int):
    """Correct predictions and the operation counts (``golden.energy.estimate.Counts``) of the golden model on
    ``codes``, in batches of :data:`GOLDEN_CHUNK` images."""
    from golden.core.counters import COUNTER_NAMES
    from golden.energy.estimate import Counts
    from golden.simulation.inputs import encode_inputs
    from golden.simulation.simulate import IntegerSimulator

    if len(codes) == 0:
        raise SnnCosimError("the point's data shard holds no test images")
    simulator = IntegerSimulator(network)
    correct = 0
    per_layer = np.zeros((len(network.layers), len(COUNTER_NAMES)), dtype=np.int64)
    image_cycles = 0
    for a in range(0, len(codes), GOLDEN_CHUNK):
        b = min(a + GOLDEN_CHUNK, len(codes))
        spikes = encode_inputs(network, codes[a:b], steps, seed=seed, first_index=first_index + a)
        trace = simulator.run(spikes, lanes=lanes)
        correct += int((np.asarray(trace.predictions) == labels[a:b]).sum())
        per_layer += trace.counters.sum(axis=(0, 1))
        image_cycles += int(trace.image_cycles.sum())
    rows = tuple(tuple(int(v) for v in row) for row in per_layer)
    layer_cycles = int(per_layer[:, COUNTER_NAMES.index("cycles")].sum())
    return correct, Counts(rows, len(codes), image_cycles - layer_cycles, True, "golden")


def _energy(network, counts, lanes: int, chips) -> dict:
    """SNN energy per image (pJ) on each chip model; None where a chip cannot price the network's operations."""
    from golden.core.macs import ann_macs_per_layer
    from golden.energy.estimate import WordWidths, compare_chips

    if not chips:
        return {}
    comparisons = compare_chips(counts, ann_macs_per_layer(network), chips, WordWidths.of(network, lanes))
    return {c.chip.name: None if c.snn is None else float(c.snn.per_image_pj) for c in comparisons}


def _rtl(network, codes, first_index: int, steps, lanes: int, seed: int, build_dir) -> dict:
    """The RTL engine (built or reused) on ``codes`` and the golden model on the same spikes, compared."""
    from cosim.session import cosimulate, golden_reference
    from golden.core.trace import compare
    from golden.simulation.inputs import encode_inputs

    spikes = encode_inputs(network, codes, steps, seed=seed, first_index=first_index)
    run = cosimulate(network, spikes, lanes=lanes, build_dir=build_dir)
    golden = golden_reference(network, spikes, lanes=lanes)
    comparison = compare(golden, run.trace)
    return {"verdict": "EQUIVALENT" if comparison.equivalent else "MISMATCH",
            "first_difference": None if comparison.equivalent else str(comparison.first_difference),
            "rtl_images": len(codes), "rtl_cycles_per_image": float(np.mean(run.trace.image_cycles)),
            "build_seconds": run.build_seconds + run.generate_seconds, "build_cached": bool(run.build_cached),
            "rtl_seconds": run.wall_seconds, "rtl_images_per_second": run.images_per_second}


_SOURCE_SUFFIXES = (".py", ".sv", ".v", ".tmpl", ".json", ".yaml")


def source_digest() -> str:
    """A digest of the snncosim sources this process runs: the hardware generator's (``hw.SOURCE_DIGEST``) and
    every source file of the golden model and the co-simulation (harness templates, chip models and tables
    included). Two processes with the same digest compute the same figures and verdicts."""
    import cosim
    import golden
    import hw

    digest = hashlib.sha256(hw.SOURCE_DIGEST.encode())
    for package in (golden, cosim):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*")):
            if path.suffix in _SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def worker_environment() -> dict:
    """What a worker runs (checked by the client before it submits: every worker must run this snncosim)."""
    return {"sources": source_digest(), "python": ".".join(map(str, sys.version_info[:2])),
            "host": socket.gethostname()}
